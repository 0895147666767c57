//! UA tests in virtual time, with SIPp-style messages as fixtures.

mod calls;
mod dialogs;
mod errors;
mod refer;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::message::{headers, parse, status_parts, Inbound};

pub(super) const UA_ADDR: &str = "127.0.0.1:5060";
pub(super) const SIPP: &str = "127.0.0.1:5061";

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) const OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

pub(super) const ANSWER: &str = "v=0\r\n\
o=gw 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n";

/// A request as SIPp sends it. `to_tag` adds a tag to To (in-dialog); `extra` are extra
/// header lines (each ending in CRLF).
pub(super) struct Req<'a> {
    pub method: &'a str,
    pub call_id: &'a str,
    pub branch: &'a str,
    pub cseq: u32,
    pub to_tag: Option<&'a str>,
    pub extra: &'a str,
    pub body: &'a str,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, call_id: &'a str, branch: &'a str, cseq: u32) -> Self {
        Self {
            method,
            call_id,
            branch,
            cseq,
            to_tag: None,
            extra: "",
            body: "",
        }
    }

    pub fn in_dialog(mut self, tag: &'a str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    pub fn extra(mut self, extra: &'a str) -> Self {
        self.extra = extra;
        self
    }

    pub fn body(mut self, body: &'a str) -> Self {
        self.body = body;
        self
    }

    pub fn build(&self) -> String {
        let to_tag = self.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let content_type = if self.body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        let cseq_method = self.method;
        format!(
            "{method} sip:bot@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n\
             From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001\r\n\
             To: <sip:bot@127.0.0.1:5060>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {cseq_method}\r\n\
             Contact: sip:sipp@127.0.0.1:5061\r\n\
             Max-Forwards: 70\r\n\
             Subject: Performance Test\r\n\
             {extra}{content_type}Content-Length: {len}\r\n\
             \r\n\
             {body}",
            method = self.method,
            branch = self.branch,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra,
            len = self.body.len(),
            body = self.body,
        )
    }
}

/// One transmit, decoded.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub transport: Transport,
    pub destination: SocketAddr,
    pub text: String,
    pub message: Inbound,
}

impl Sent {
    /// Code and reason phrase as written on the wire (rsip's parser forgets the phrase).
    pub fn status(&self) -> Option<(u16, String)> {
        let Inbound::Response(r) = &self.message else {
            return None;
        };
        let line = self.text.lines().next()?;
        let reason = line.splitn(3, ' ').nth(2)?;
        Some((status_parts(&r.status_code).0, reason.to_string()))
    }

    pub fn code(&self) -> u16 {
        self.status().map(|(c, _)| c).unwrap_or(0)
    }

    pub fn method(&self) -> Option<String> {
        match &self.message {
            Inbound::Request(r) => Some(r.method.to_string()),
            _ => None,
        }
    }

    fn headers(&self) -> &rsip::Headers {
        match &self.message {
            Inbound::Request(r) => &r.headers,
            Inbound::Response(r) => &r.headers,
            Inbound::ExtensionMethod { request, .. } => &request.headers,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        headers::find(self.headers(), name).map(str::to_string)
    }

    pub fn header_all(&self, name: &'static str) -> Vec<String> {
        headers::find_all(self.headers(), name)
            .map(str::to_string)
            .collect()
    }

    pub fn body(&self) -> String {
        match &self.message {
            Inbound::Request(r) => String::from_utf8_lossy(&r.body).into_owned(),
            Inbound::Response(r) => String::from_utf8_lossy(&r.body).into_owned(),
            Inbound::ExtensionMethod { request, .. } => {
                String::from_utf8_lossy(&request.body).into_owned()
            }
        }
    }

    /// The To tag of a response (our local tag).
    pub fn to_tag(&self) -> String {
        let to = self.header("To").unwrap_or_default();
        headers::tag(&to).unwrap_or_default().to_string()
    }
}

/// The UA plus a virtual clock.
pub(super) struct Harness {
    pub ua: UserAgent,
    pub t0: Instant,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(UaConfig::new(addr(UA_ADDR)))
    }

    pub fn with_config(cfg: UaConfig) -> Self {
        let t0 = Instant::now();
        Self {
            ua: UserAgent::new(cfg),
            t0,
            now: t0,
        }
    }

    pub fn send(&mut self, raw: &str) {
        self.send_from(Transport::Udp, SIPP, raw);
    }

    pub fn send_from(&mut self, transport: Transport, source: &str, raw: &str) {
        self.ua
            .handle_input(self.now, transport, addr(source), raw.as_bytes());
    }

    /// Moves the clock forward, running every deadline on the way like the shell does.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.ua.next_deadline() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.ua.handle_timeout(self.now);
        }
        self.now = until;
    }

    pub fn elapsed_ms(&self) -> u128 {
        (self.now - self.t0).as_millis()
    }

    pub fn sent(&mut self) -> Vec<Sent> {
        std::iter::from_fn(|| self.ua.poll_transmit())
            .map(|t| Sent {
                transport: t.transport,
                destination: t.destination,
                text: String::from_utf8(t.payload.to_vec()).unwrap(),
                message: parse(&t.payload, 100_000).unwrap(),
            })
            .collect()
    }

    pub fn codes(&mut self) -> Vec<u16> {
        self.sent().iter().map(Sent::code).collect()
    }

    pub fn events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    /// Sends an INVITE and returns the call handle from its IncomingCall event.
    pub fn incoming(&mut self, invite: &str) -> CallHandle {
        self.send(invite);
        match self.events().as_slice() {
            [UaEvent::IncomingCall { call, .. }] => *call,
            other => panic!("expected one IncomingCall, got {other:?}"),
        }
    }

    /// INVITE → answer → ACK; returns the call and our To tag.
    pub fn established(&mut self, call_id: &str) -> (CallHandle, String) {
        let call = self.incoming(
            &Req::new("INVITE", call_id, "z9hG4bK-inv", 1)
                .body(OFFER)
                .build(),
        );
        self.ua.answer(self.now, call, Some(ANSWER.into())).unwrap();
        let sent = self.sent();
        let ok = sent.iter().find(|s| s.code() == 200).expect("200 sent");
        let tag = ok.to_tag();
        self.send(
            &Req::new("ACK", call_id, "z9hG4bK-ack", 1)
                .in_dialog(&tag)
                .build(),
        );
        assert_eq!(
            self.events(),
            vec![UaEvent::CallConfirmed { call, answer: None }]
        );
        (call, tag)
    }
}
