//! Twilio Media Streams bots: the gateway connects to the bot's WebSocket (`ws://` or
//! `wss://`) and plays Twilio's part of a bidirectional stream. The protocol lives in
//! [`super::twilio_proto`]; this is the thin tokio shell that moves its frames.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn, Instrument};

use super::link::{self, BotEnd, BotLink};
use super::twilio_proto::{Output, TwilioStream};
use super::{BotEvent, CallInfo};
use crate::config::{BotConfig, ConfigError};

/// `[bot.twilio]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioBotConfig {
    /// The bot's WebSocket URL, `ws://host:port/path` or `wss://…`.
    pub url: String,
    /// Sent to the bot in `start.customParameters` (besides the call's SIP identity).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Also send a (non-Twilio) `bargeIn` event when the gateway cuts the bot's audio.
    pub barge_in_event: bool,
    /// PEM file of the CA(s) that sign the bot's certificate (`wss://`); empty = the
    /// operating system's trust store.
    pub tls_ca: String,
}

impl TwilioBotConfig {
    /// The URL is checked only when this kind is used (`in_use`); the default is empty.
    pub fn validate(&self, in_use: bool) -> Result<(), ConfigError> {
        if in_use {
            check_ws_url(&self.url).map_err(|problem| ConfigError::Invalid {
                key: "bot.twilio.url".into(),
                problem,
            })?;
        }
        // Checked whatever the kind: a bad file never waits for the kind to change.
        if !self.tls_ca.is_empty() {
            load_roots(&self.tls_ca).map_err(|problem| ConfigError::Invalid {
                key: "bot.twilio.tls_ca".into(),
                problem,
            })?;
        }
        Ok(())
    }
}

fn check_ws_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or("must start with ws:// or wss://")?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("has no host".into());
    }
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    url.into_client_request()
        .map(|_| ())
        .map_err(|e| format!("not a valid WebSocket URL: {e}"))
}

/// How many malformed bot frames are logged at warn level per call (all are counted).
const MALFORMED_WARN_LIMIT: u64 = 10;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The CA certificates of a PEM file.
fn load_roots(pem: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        rustls::pki_types::CertificateDer::pem_file_iter(pem).map_err(|e| format!("{pem}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{pem}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{pem}: unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{pem}: no certificate in the file"));
    }
    Ok(roots)
}

/// The operating system's trust store.
fn native_roots() -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the store cannot parse is skipped, like every TLS client does.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no CA certificates found in the system trust store".to_string());
    }
    Ok(roots)
}

/// TLS for `wss://`: rustls with ring, trusting `tls_ca` (or the system store when empty).
/// Built once per CA file and shared by every call.
fn tls_connector(tls_ca: &str) -> Result<Connector, String> {
    type Cache = Mutex<HashMap<String, Arc<rustls::ClientConfig>>>;
    static TLS: OnceLock<Cache> = OnceLock::new();
    let cache = TLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(config) = cache.get(tls_ca) {
        return Ok(Connector::Rustls(config.clone()));
    }
    let roots = if tls_ca.is_empty() {
        native_roots()?
    } else {
        load_roots(tls_ca)?
    };
    // ring, not aws-lc-rs: it builds without cmake and is what the gRPC client uses too.
    // (rustls deprecates it only for lacking post-quantum key exchange.)
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| format!("TLS setup: {e}"))?;
    cache.insert(tls_ca.to_string(), config.clone());
    Ok(Connector::Rustls(config))
}

/// Connects to the bot (within `bot.connect_timeout_ms`), sends `connected`, and runs the
/// stream as a link task. `start` goes out with the call's `CallStarted` event.
pub async fn connect(bot: &BotConfig, info: &CallInfo) -> Result<BotLink, String> {
    let cfg = &bot.twilio;
    let connector = if cfg.url.starts_with("wss://") {
        Some(tls_connector(&cfg.tls_ca)?)
    } else {
        None
    };
    let timeout = Duration::from_millis(bot.connect_timeout_ms);
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(cfg.url.as_str(), None, true, connector);
    let (mut ws, _response) = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => return Err(format!("twilio bot {}: {e}", cfg.url)),
        Err(_) => {
            return Err(format!(
                "twilio bot {}: no connection within {timeout:?}",
                cfg.url
            ))
        }
    };
    let stream_sid = format!("MZ{:032x}", rand::random::<u128>());
    let stream = TwilioStream::new(
        stream_sid.clone(),
        info.call_id.clone(),
        cfg.parameters.clone(),
        cfg.barge_in_event,
    );
    let write_timeout = Duration::from_millis(bot.stall_timeout_ms);
    tokio::time::timeout(write_timeout, ws.send(Message::text(stream.connected())))
        .await
        .map_err(|_| "twilio bot: `connected` not accepted in time".to_string())?
        .map_err(|e| format!("twilio bot: {e}"))?;
    info!(url = %cfg.url, %stream_sid, "twilio bot connected");
    let (link, end) = link::pair();
    tokio::spawn(run(ws, stream, end, write_timeout).in_current_span());
    Ok(link)
}

/// Why the stream task ended.
enum Ended {
    CallOver,
    BotGone(String),
}

async fn run(mut ws: Ws, mut stream: TwilioStream, mut end: BotEnd, write_timeout: Duration) {
    let outcome = pump(&mut ws, &mut stream, &mut end, write_timeout).await;
    let s = stream.stats();
    match &outcome {
        Ended::CallOver => {
            // Close politely; a bot that does not answer the close is not waited for long.
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        }
        Ended::BotGone(why) => warn!(why, "twilio bot gone"),
    }
    info!(
        media_sent = s.media_sent,
        media_received = s.media_received,
        marks_received = s.marks_received,
        marks_echoed = s.marks_echoed,
        clears = s.clears,
        malformed = s.malformed,
        "twilio stream stats"
    );
    // Dropping `end` here tells the call the bot is gone (if the call is still up).
}

async fn pump(
    ws: &mut Ws,
    stream: &mut TwilioStream,
    end: &mut BotEnd,
    write_timeout: Duration,
) -> Ended {
    loop {
        tokio::select! {
            // Events first: a barge-in's mark echoes must not wait behind caller audio.
            biased;
            ev = end.events.recv() => {
                let Some(ev) = ev else {
                    // The call dropped its link without CallEnded: still end the stream properly.
                    if !stream.is_stopped() {
                        let stop = stream.stop();
                        let _ = send_frames(ws, vec![stop], write_timeout).await;
                    }
                    return Ended::CallOver;
                };
                let last = matches!(ev, BotEvent::CallEnded { .. });
                let out = stream.on_event(&ev);
                if let Err(e) = apply(ws, end, out, write_timeout, stream).await {
                    return e;
                }
                if last {
                    return Ended::CallOver;
                }
            }
            Some(audio) = end.audio.recv() => {
                if let Some(frame) = stream.caller_audio(&audio) {
                    if let Err(e) = send_frames(ws, vec![frame], write_timeout).await {
                        return e;
                    }
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let out = stream.on_bot_text(text.as_str());
                    if let Err(e) = apply(ws, end, out, write_timeout, stream).await {
                        return e;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    // Twilio speaks JSON text frames only.
                    let out = Output {
                        ignored: Some("binary frame".into()),
                        ..Output::default()
                    };
                    stream.count_malformed();
                    if let Err(e) = apply(ws, end, out, write_timeout, stream).await {
                        return e;
                    }
                }
                // Pings are answered by tungstenite on the next write/flush.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    return Ended::BotGone(format!("bot closed the WebSocket ({frame:?})"))
                }
                Some(Err(e)) => return Ended::BotGone(format!("WebSocket error: {e}")),
                None => return Ended::BotGone("WebSocket closed".into()),
            },
        }
    }
}

/// Sends the frames of one step, then its commands to the call.
async fn apply(
    ws: &mut Ws,
    end: &mut BotEnd,
    out: Output,
    write_timeout: Duration,
    stream: &TwilioStream,
) -> Result<(), Ended> {
    if let Some(why) = &out.ignored {
        let n = stream.stats().malformed;
        if n <= MALFORMED_WARN_LIMIT {
            warn!(malformed = n, why, "twilio bot message ignored");
        } else {
            debug!(malformed = n, why, "twilio bot message ignored");
        }
    }
    send_frames(ws, out.frames, write_timeout).await?;
    for cmd in out.commands {
        if end.commands.send(cmd).await.is_err() {
            return Err(Ended::CallOver);
        }
    }
    Ok(())
}

async fn send_frames(ws: &mut Ws, frames: Vec<String>, timeout: Duration) -> Result<(), Ended> {
    if frames.is_empty() {
        return Ok(());
    }
    let send_all = async {
        for f in frames {
            ws.feed(Message::text(f)).await?;
        }
        ws.flush().await
    };
    match tokio::time::timeout(timeout, send_all).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Ended::BotGone(format!("WebSocket send: {e}"))),
        Err(_) => Err(Ended::BotGone(format!(
            "bot has not read for {timeout:?} (stalled)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Custom parameter names reach the bot as written (Twilio bots read e.g. `customerId`).
    #[test]
    fn parameter_names_keep_their_case() {
        let text = "url = \"ws://h/\"\nbarge_in_event = true\ntls_ca = \"\"\n[parameters]\ncustomerId = \"42\"\n";
        let cfg: TwilioBotConfig = ::config::Config::builder()
            .add_source(::config::File::from_str(text, ::config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap();
        assert_eq!(
            cfg.parameters.get("customerId").map(String::as_str),
            Some("42")
        );
        assert!(cfg.barge_in_event);
    }

    #[test]
    fn urls_are_checked_only_when_used() {
        let mut c = TwilioBotConfig {
            url: String::new(),
            parameters: BTreeMap::new(),
            barge_in_event: false,
            tls_ca: String::new(),
        };
        c.validate(false).unwrap();
        for bad in ["", "http://x/", "ws://", "ws:///path", "wss://:443/"] {
            c.url = bad.into();
            match c.validate(true) {
                Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "bot.twilio.url"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        for good in [
            "ws://127.0.0.1:8080/media",
            "wss://bot.example.com/stream?x=1",
        ] {
            c.url = good.into();
            c.validate(true).unwrap();
        }
        // A CA file must exist and hold certificates, even while the kind is not twilio.
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        for bad in ["/nonexistent/ca.pem", not_pem] {
            c.tls_ca = bad.into();
            match c.validate(false) {
                Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "bot.twilio.tls_ca"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
