//! INVITE client transaction (RFC 3261 §17.1.1): Timer A retransmits (UDP, T1 doubling),
//! Timer B = 64·T1 gives up, 1xx → Proceeding, 2xx → Terminated and up to the TU (which ACKs
//! it), 300-699 → Completed with an ACK generated here (§17.1.1.3) and Timer D absorbing
//! retransmitted finals (≥ 32 s on UDP, 0 on TCP).

use std::time::Instant;

use bytes::Bytes;
use rsip::{Header, Headers, Method, Request, Response};

use super::{Fired, Timeout};
use crate::message::encode_request;
use crate::timers::{earliest, Backoff, TimerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// What to do with a response that matched the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// Hand the response to the TU.
    pub pass_up: bool,
    /// Send this (the ACK for a non-2xx final, first or again).
    pub send: Option<Bytes>,
}

#[derive(Debug, Clone)]
pub struct InviteClient {
    state: InviteClientState,
    reliable: bool,
    timers: TimerConfig,
    invite: Request,
    invite_bytes: Bytes,
    /// Timer A.
    retransmit: Option<Backoff>,
    /// Timer B.
    timeout: Option<Instant>,
    /// Timer D.
    end: Option<Instant>,
    ack: Option<Bytes>,
}

impl InviteClient {
    /// Starts in Calling; the caller sends `invite_bytes` right away.
    pub fn new(
        now: Instant,
        reliable: bool,
        timers: TimerConfig,
        invite: Request,
        invite_bytes: Bytes,
    ) -> Self {
        Self {
            state: InviteClientState::Calling,
            reliable,
            timers,
            invite,
            invite_bytes,
            // §17.1.1.2: Timer A doubles without the T2 cap.
            retransmit: (!reliable).then(|| Backoff::start(now, timers.t1, None)),
            timeout: Some(now + timers.transaction_timeout()),
            end: None,
            ack: None,
        }
    }

    pub fn state(&self) -> InviteClientState {
        self.state
    }

    pub fn on_response(&mut self, now: Instant, response: &Response) -> ClientResponse {
        let code = response.status_code.code();
        let active = matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        );
        match code {
            100..=199 if active => {
                self.state = InviteClientState::Proceeding;
                self.retransmit = None;
                self.timeout = None;
                pass(None)
            }
            200..=299 if active => {
                self.terminate();
                pass(None)
            }
            300..=699 if active => {
                let ack = encode_request(&ack_for_failure(&self.invite, response));
                self.ack = Some(ack.clone());
                self.state = InviteClientState::Completed;
                self.retransmit = None;
                self.timeout = None;
                self.end = Some(now + self.timers.timer_d(self.reliable));
                pass(Some(ack))
            }
            300..=699 if self.state == InviteClientState::Completed => ClientResponse {
                pass_up: false,
                send: self.ack.clone(),
            },
            _ => ClientResponse {
                pass_up: false,
                send: None,
            },
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(
            earliest(self.retransmit.map(|b| b.due), self.timeout),
            self.end,
        )
    }

    pub fn on_timeout(&mut self, now: Instant) -> Option<Fired> {
        if self.timeout.is_some_and(|t| t <= now) {
            self.terminate();
            return Some(Fired::TimedOut(Timeout::NoResponse));
        }
        if self.end.is_some_and(|t| t <= now) {
            self.terminate();
            return Some(Fired::Terminated);
        }
        let backoff = self.retransmit.as_mut()?;
        if backoff.due > now {
            return None;
        }
        backoff.fire(now);
        Some(Fired::Retransmit(self.invite_bytes.clone()))
    }

    fn terminate(&mut self) {
        self.state = InviteClientState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.end = None;
    }
}

fn pass(send: Option<Bytes>) -> ClientResponse {
    ClientResponse {
        pass_up: true,
        send,
    }
}

/// §17.1.1.3: the ACK for a non-2xx final: same Request-URI, Call-ID, From, CSeq number and
/// top Via as the INVITE, the To of the response (with its tag), and the INVITE's Route set.
pub fn ack_for_failure(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = invite.headers.iter().find(|h| matches!(h, Header::Via(_))) {
        headers.push(via.clone());
    }
    for header in invite.headers.iter() {
        match header {
            Header::Route(_) | Header::From(_) | Header::CallId(_) | Header::MaxForwards(_) => {
                headers.push(header.clone())
            }
            _ => {}
        }
    }
    if let Some(to) = response.headers.iter().find(|h| matches!(h, Header::To(_))) {
        headers.push(to.clone());
    }
    let seq = crate::message::headers::find(&invite.headers, "CSeq")
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("1");
    headers.push(Header::CSeq(format!("{seq} ACK").into()));
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{headers::find, response_to};
    use std::time::Duration;

    fn invite() -> Request {
        Request::try_from(
            "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n\
             Route: <sip:proxy.example.com;lr>\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:gw@10.0.0.1>;tag=ours\r\n\
             To: <sip:bob@10.0.0.2>\r\n\
             Call-ID: c1@10.0.0.1\r\n\
             CSeq: 17 INVITE\r\n\
             Contact: <sip:gw@10.0.0.1>\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .unwrap()
    }

    fn response(code: u16) -> Response {
        response_to(&invite(), code, "x", Some("theirs"))
    }

    fn new_tx(t0: Instant, reliable: bool) -> InviteClient {
        InviteClient::new(
            t0,
            reliable,
            TimerConfig::default(),
            invite(),
            Bytes::from_static(b"INVITE"),
        )
    }

    fn run(tx: &mut InviteClient, t0: Instant, until: Duration) -> Vec<(u128, Fired)> {
        let mut out = Vec::new();
        while let Some(at) = tx.next_deadline() {
            if at > t0 + until {
                break;
            }
            while let Some(f) = tx.on_timeout(at) {
                out.push(((at - t0).as_millis(), f));
            }
        }
        out
    }

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b() {
        let t0 = Instant::now();
        let mut tx = new_tx(t0, false);
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        let times: Vec<u128> = fired
            .iter()
            .filter(|(_, f)| matches!(f, Fired::Retransmit(_)))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(
            fired.last(),
            Some(&(32_000, Fired::TimedOut(Timeout::NoResponse)))
        );
    }

    #[test]
    fn provisional_stops_retransmissions_and_timer_b() {
        let t0 = Instant::now();
        let mut tx = new_tx(t0, false);
        assert!(tx.on_response(t0, &response(180)).pass_up);
        assert_eq!(tx.state(), InviteClientState::Proceeding);
        assert_eq!(tx.next_deadline(), None);
    }

    #[test]
    fn success_terminates_and_is_passed_up_without_ack() {
        let t0 = Instant::now();
        let mut tx = new_tx(t0, false);
        let r = tx.on_response(t0, &response(200));
        assert_eq!(
            r,
            ClientResponse {
                pass_up: true,
                send: None
            }
        );
        assert_eq!(tx.state(), InviteClientState::Terminated);
    }

    #[test]
    fn failure_is_acked_here_and_timer_d_absorbs_retransmissions() {
        let t0 = Instant::now();
        let mut tx = new_tx(t0, false);
        let first = tx.on_response(t0, &response(486));
        assert!(first.pass_up);
        let ack = String::from_utf8(first.send.clone().unwrap().to_vec()).unwrap();
        assert!(ack.starts_with("ACK sip:bob@10.0.0.2 SIP/2.0\r\n"), "{ack}");
        assert!(ack.contains("CSeq: 17 ACK\r\n"));
        assert!(ack.contains("To: <sip:bob@10.0.0.2>;tag=theirs\r\n"));
        assert!(ack.contains("branch=z9hG4bKabc"));
        assert!(ack.contains("Route: <sip:proxy.example.com;lr>\r\n"));
        assert!(!ack.contains("Contact"));

        let again = tx.on_response(t0 + Duration::from_secs(1), &response(486));
        assert_eq!(
            again,
            ClientResponse {
                pass_up: false,
                send: first.send
            }
        );
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(fired, vec![(32_000, Fired::Terminated)]);
    }

    #[test]
    fn tcp_has_no_timer_a_and_zero_timer_d() {
        let t0 = Instant::now();
        let mut tx = new_tx(t0, true);
        assert_eq!(tx.next_deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_response(t0, &response(500));
        assert_eq!(tx.on_timeout(t0), Some(Fired::Terminated));
    }

    #[test]
    fn ack_keeps_the_invite_call_id_and_from() {
        let ack = ack_for_failure(&invite(), &response(404));
        assert_eq!(find(&ack.headers, "Call-ID"), Some("c1@10.0.0.1"));
        assert_eq!(
            find(&ack.headers, "From"),
            Some("<sip:gw@10.0.0.1>;tag=ours")
        );
    }
}
