//! The HTTP routing hook's client: one JSON POST per new call, bounded by
//! `routing.hook.timeout_ms`. Plain `http://` (a routing service sits next to the gateway);
//! the decision logic is in `routing.rs`.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Larger answers are refused (a routing answer is a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Checks that `url` is an `http://host[:port]/path` URI.
pub fn parse_url(url: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// is supported".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(uri)
}

fn client() -> &'static Client<HttpConnector, Full<Bytes>> {
    // One pool for every call: the hook is usually one service, keep-alive saves a connect.
    static CLIENT: OnceLock<Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        Client::builder(TokioExecutor::new()).build(http)
    })
}

/// POSTs `body` to `url`; the answer's body if the status is 2xx. Everything (connect, send,
/// answer) within `timeout`.
pub async fn ask(
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let uri = parse_url(url)?;
    let request = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let response = client()
            .request(request)
            .await
            .map_err(|e| format!("hook request failed: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("hook answer body: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("hook answered HTTP {status}"));
        }
        Ok(body.to_vec())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("hook did not answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host() {
        assert!(parse_url("http://127.0.0.1:8080/route").is_ok());
        assert!(parse_url("http://router/route").is_ok());
        for bad in ["https://x/", "ftp://x/", "127.0.0.1:80", "http:///x", ""] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
