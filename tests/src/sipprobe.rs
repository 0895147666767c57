//! Raw SIP over UDP for readiness checks and the malformed-message corpus.
//!
//! Templates may contain placeholders, replaced at send time so that responses (routed by the
//! Via sent-by, RFC 3261 §18.2.2) reach the probe's socket and each send is a new transaction:
//! `{{LOCAL}}` (probe ip:port), `{{TARGET}}` (gateway ip:port), `{{BRANCH}}`, `{{CALLID}}`, `{{TAG}}`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static UNIQUE: AtomicU64 = AtomicU64::new(1);

fn unique() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A response received by the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResponse {
    pub status: u16,
    pub text: String,
}

/// Status code of a SIP response (`SIP/2.0 NNN ...`), None for anything else.
pub fn parse_status(datagram: &[u8]) -> Option<u16> {
    let rest = datagram.strip_prefix(b"SIP/2.0 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?;
    let status: u16 = code.parse().ok()?;
    (100..700).contains(&status).then_some(status)
}

/// First value of header `name` (case-insensitive, compact form accepted) in a SIP message.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let compact = match name.to_ascii_lowercase().as_str() {
        "via" => Some("v"),
        "from" => Some("f"),
        "to" => Some("t"),
        "call-id" => Some("i"),
        "content-length" => Some("l"),
        "content-type" => Some("c"),
        _ => None,
    };
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        let matches =
            key.eq_ignore_ascii_case(name) || compact.is_some_and(|c| key.eq_ignore_ascii_case(c));
        matches.then(|| value.trim())
    })
}

/// The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): same Request-URI,
/// top Via, From, Call-ID and CSeq number as the INVITE, To from the response (with its tag).
pub fn ack_for_non_2xx(invite: &str, response: &str) -> Option<String> {
    let request_uri = invite.lines().next()?.split(' ').nth(1)?;
    let cseq_number = header(invite, "CSeq")?.split_whitespace().next()?;
    Some(format!(
        "ACK {request_uri} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq_number} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header(invite, "Via")?,
        header(invite, "From")?,
        header(response, "To")?,
        header(invite, "Call-ID")?,
    ))
}

/// A UDP socket on 127.0.0.1 talking to one SIP target.
#[derive(Debug)]
pub struct SipProbe {
    socket: UdpSocket,
    local: SocketAddr,
    target: SocketAddr,
}

impl SipProbe {
    pub fn new(target: SocketAddr) -> std::io::Result<SipProbe> {
        SipProbe::bind(target, 0)
    }

    /// Probe on a specific local port (0 = any).
    pub fn bind(target: SocketAddr, port: u16) -> std::io::Result<SipProbe> {
        let socket = UdpSocket::bind(("127.0.0.1", port))?;
        let local = socket.local_addr()?;
        Ok(SipProbe {
            socket,
            local,
            target,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Replaces the placeholders (see module docs). Bytes outside placeholders are untouched,
    /// so binary junk passes through as is.
    pub fn render(&self, template: &[u8]) -> Vec<u8> {
        let id = unique();
        let replacements: [(&[u8], String); 5] = [
            (b"{{LOCAL}}", self.local.to_string()),
            (b"{{TARGET}}", self.target.to_string()),
            (b"{{BRANCH}}", format!("z9hG4bK-probe-{id}")),
            (b"{{CALLID}}", format!("probe-{id}@127.0.0.1")),
            (b"{{TAG}}", format!("t{id}")),
        ];
        let mut out = Vec::with_capacity(template.len() + 64);
        let mut i = 0;
        'outer: while i < template.len() {
            for (needle, value) in &replacements {
                if template[i..].starts_with(needle) {
                    out.extend_from_slice(value.as_bytes());
                    i += needle.len();
                    continue 'outer;
                }
            }
            out.push(template[i]);
            i += 1;
        }
        out
    }

    pub fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.socket.send_to(bytes, self.target).map(|_| ())
    }

    /// Next SIP response within `timeout` (any status), None on timeout.
    pub fn next_response(&self, timeout: Duration) -> Option<SipResponse> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let Ok((n, _)) = self.socket.recv_from(&mut buf) else {
                if Instant::now() >= deadline {
                    return None;
                }
                continue;
            };
            let datagram = buf.get(..n)?;
            if let Some(status) = parse_status(datagram) {
                return Some(SipResponse {
                    status,
                    text: String::from_utf8_lossy(datagram).into_owned(),
                });
            }
        }
    }

    /// First final (≥ 200) response within `timeout`, skipping provisional ones.
    pub fn final_response(&self, timeout: Duration) -> Option<SipResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let response = self.next_response(left)?;
            if response.status >= 200 {
                return Some(response);
            }
        }
    }

    /// Sends an OPTIONS and returns the final status, if any arrived within `timeout`.
    pub fn options(&self, timeout: Duration) -> Option<u16> {
        let request = self.render(OPTIONS_TEMPLATE.as_bytes());
        self.send(&request).ok()?;
        self.final_response(timeout).map(|r| r.status)
    }
}

/// A minimal valid OPTIONS (used as the readiness probe).
pub const OPTIONS_TEMPLATE: &str = "OPTIONS sip:{{TARGET}} SIP/2.0\r\n\
Via: SIP/2.0/UDP {{LOCAL}};branch={{BRANCH}}\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@{{LOCAL}}>;tag={{TAG}}\r\n\
To: <sip:{{TARGET}}>\r\n\
Call-ID: {{CALLID}}\r\n\
CSeq: 1 OPTIONS\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

/// Sends `template` (placeholders rendered) from a fresh socket; returns the first final status
/// within `timeout`, None if nothing (final) came back. A non-2xx final response to an INVITE is
/// acknowledged so the gateway stops retransmitting it.
pub fn send_udp_and_wait_response(
    target: SocketAddr,
    template: &[u8],
    timeout: Duration,
) -> Option<u16> {
    let probe = SipProbe::new(target).ok()?;
    let request = probe.render(template);
    probe.send(&request).ok()?;
    let response = probe.final_response(timeout)?;
    let request_text = String::from_utf8_lossy(&request);
    if request_text.starts_with("INVITE ") && response.status >= 300 {
        if let Some(ack) = ack_for_non_2xx(&request_text, &response.text) {
            // Best effort: without the ACK the gateway just retransmits until Timer H.
            let _ = probe.send(ack.as_bytes());
        }
    }
    Some(response.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        assert_eq!(
            parse_status(b"SIP/2.0 488 Not Acceptable Here\r\n"),
            Some(488)
        );
        assert_eq!(parse_status(b"SIP/2.0 200"), Some(200));
        assert_eq!(parse_status(b"SIP/2.0 99 x"), None);
        assert_eq!(parse_status(b"SIP/2.0 abc"), None);
        assert_eq!(parse_status(b"INVITE sip:x SIP/2.0"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn headers_and_ack() {
        let invite = "INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:bot@x>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n\r\nv=0\r\nTo: body\r\n";
        let response = "SIP/2.0 488 Not Acceptable Here\r\nTo: <sip:bot@x>;tag=gw\r\n\r\n";
        assert_eq!(
            header(invite, "Via"),
            Some("SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1")
        );
        assert_eq!(
            header(invite, "to"),
            Some("<sip:bot@x>"),
            "body lines are not headers"
        );
        assert_eq!(header(invite, "Missing"), None);
        let ack = ack_for_non_2xx(invite, response).unwrap();
        assert!(ack.starts_with("ACK sip:bot@127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(ack.contains("To: <sip:bot@x>;tag=gw\r\n"));
        assert!(ack.contains("CSeq: 7 ACK\r\n"));
        assert!(ack.contains("branch=z9hG4bK1"));
        assert_eq!(ack_for_non_2xx("garbage", response), None);
    }

    #[test]
    fn render_replaces_placeholders_and_keeps_binary() {
        let target: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let probe = SipProbe::new(target).unwrap();
        let a = probe.render(b"x {{TARGET}} {{LOCAL}} {{BRANCH}} \xff\x00{{");
        let text = String::from_utf8_lossy(&a);
        assert!(text.starts_with(&format!(
            "x 127.0.0.1:5060 {} z9hG4bK-probe-",
            probe.local_addr()
        )));
        assert!(a.ends_with(b" \xff\x00{{"));
        assert_ne!(
            probe.render(b"{{BRANCH}}"),
            probe.render(b"{{BRANCH}}"),
            "unique per send"
        );
    }

    #[test]
    fn probe_against_a_fake_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.starts_with("OPTIONS sip:"));
            server.send_to(b"SIP/2.0 100 Trying\r\n\r\n", from).unwrap();
            server.send_to(b"not sip", from).unwrap();
            server.send_to(b"SIP/2.0 200 OK\r\n\r\n", from).unwrap();
        });
        let probe = SipProbe::new(target).unwrap();
        assert_eq!(probe.options(Duration::from_secs(2)), Some(200));
        handle.join().unwrap();
        // Nobody answers now: timeout gives None.
        assert_eq!(probe.options(Duration::from_millis(100)), None);
    }
}
