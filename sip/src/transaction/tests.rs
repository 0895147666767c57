//! Layer-level tests: matching, absorbing, and the timers as the UA sees them.

use super::*;
use crate::message::{response_to, validate_request};
use std::time::Duration;

const PEER: &str = "127.0.0.1:5061";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn request(method: &str, branch: &str, cseq_method: &str) -> Request {
    Request::try_from(format!(
        "{method} sip:bot@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n\
         From: sipp <sip:sipp@127.0.0.1:5061>;tag=1\r\n\
         To: <sip:bot@127.0.0.1:5060>\r\n\
         Call-ID: layer-1@127.0.0.1\r\n\
         CSeq: 1 {cseq_method}\r\n\
         Contact: sip:sipp@127.0.0.1:5061\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    ))
    .unwrap()
}

fn key_of(req: &Request) -> TxKey {
    TxKey::server(&req.method, &validate_request(req).unwrap())
}

fn drain(layer: &mut TransactionLayer) -> Vec<String> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| {
            let text = String::from_utf8(t.payload.to_vec()).unwrap();
            text.lines().next().unwrap_or("").to_string()
        })
        .collect()
}

fn events(layer: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// Drives `handle_timeout` at every deadline up to `until`, like the shell would.
fn advance(layer: &mut TransactionLayer, until: Instant) {
    while let Some(at) = layer.next_deadline() {
        if at > until {
            break;
        }
        layer.handle_timeout(at);
    }
}

fn new_invite(layer: &mut TransactionLayer) -> (Request, TxKey) {
    let invite = request("INVITE", "z9hG4bK-inv", "INVITE");
    let key = key_of(&invite);
    assert_eq!(
        layer.match_request(Instant::now(), &invite.method, &key),
        ServerMatch::PassUp
    );
    let trying = response_to(&invite, 100, "Trying", None);
    layer
        .create_invite_server(key.clone(), Transport::Udp, peer(), &trying)
        .unwrap();
    (invite, key)
}

#[test]
fn ack_and_cancel_keys_find_the_invite() {
    let invite = key_of(&request("INVITE", "z9hG4bK-x", "INVITE"));
    let ack = key_of(&request("ACK", "z9hG4bK-x", "ACK"));
    let cancel = key_of(&request("CANCEL", "z9hG4bK-x", "CANCEL"));
    assert_eq!(invite, ack);
    assert_ne!(invite, cancel);
    assert_eq!(cancel.with_method(&Method::Invite), invite);
}

#[test]
fn rfc2543_requests_are_keyed_by_content() {
    let a = key_of(&request("INVITE", "old-style", "INVITE"));
    let ack = key_of(&request("ACK", "old-style", "ACK"));
    assert_eq!(a, ack);
    let mut other = request("INVITE", "old-style", "INVITE");
    other.headers.retain(|h| !matches!(h, Header::CallId(_)));
    other.headers.push(Header::CallId("another".into()));
    assert_ne!(a, key_of(&other));
}

#[test]
fn invite_gets_100_at_once_and_retransmissions_are_absorbed() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    assert_eq!(drain(&mut layer), vec!["SIP/2.0 100 Trying"]);
    assert_eq!(
        layer.match_request(t0, &invite.method, &key),
        ServerMatch::Retransmission
    );
    assert_eq!(drain(&mut layer), vec!["SIP/2.0 100 Trying"]);
    let ringing = response_to(&invite, 180, "Ringing", Some("gw"));
    layer.respond(t0, &key, &ringing).unwrap();
    layer.match_request(t0, &invite.method, &key);
    assert_eq!(
        drain(&mut layer),
        vec!["SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]
    );
    assert_eq!(layer.stats().retransmissions_absorbed, 2);
}

#[test]
fn non_2xx_ack_is_absorbed_and_the_transaction_ends_after_timer_i() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    layer
        .respond(
            t0,
            &key,
            &response_to(&invite, 486, "Busy Here", Some("gw")),
        )
        .unwrap();
    drain(&mut layer);
    advance(&mut layer, t0 + Duration::from_millis(600));
    assert_eq!(drain(&mut layer), vec!["SIP/2.0 486 Busy Here"], "Timer G");
    let ack = request("ACK", "z9hG4bK-inv", "ACK");
    assert_eq!(
        layer.match_request(t0 + Duration::from_secs(1), &Method::Ack, &key_of(&ack)),
        ServerMatch::AckAbsorbed
    );
    advance(&mut layer, t0 + Duration::from_secs(60));
    assert!(
        drain(&mut layer).is_empty(),
        "no retransmission after the ACK"
    );
    assert_eq!(events(&mut layer), vec![TxEvent::Terminated { key }]);
    assert!(layer.is_empty());
}

#[test]
fn timer_h_reports_the_missing_ack() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    layer
        .respond(t0, &key, &response_to(&invite, 603, "Decline", Some("gw")))
        .unwrap();
    advance(&mut layer, t0 + Duration::from_secs(60));
    assert_eq!(
        events(&mut layer),
        vec![
            TxEvent::NoAck { key: key.clone() },
            TxEvent::Terminated { key }
        ]
    );
    assert_eq!(layer.stats().ack_timeouts, 1);
    assert_eq!(layer.stats().retransmissions_sent, 10);
}

#[test]
fn timer_l_reports_the_missing_2xx_ack_and_an_ack_stops_it() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    layer
        .respond(t0, &key, &response_to(&invite, 200, "OK", Some("gw")))
        .unwrap();
    advance(&mut layer, t0 + Duration::from_secs(2));
    assert_eq!(
        drain(&mut layer).len(),
        1 + 1 + 2,
        "100, 200, two retransmissions"
    );
    assert!(layer.ack_2xx(&key));
    advance(&mut layer, t0 + Duration::from_secs(60));
    assert!(drain(&mut layer).is_empty());
    assert_eq!(events(&mut layer), vec![TxEvent::Terminated { key }]);

    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    layer
        .respond(t0, &key, &response_to(&invite, 200, "OK", Some("gw")))
        .unwrap();
    advance(&mut layer, t0 + Duration::from_secs(60));
    assert_eq!(
        events(&mut layer),
        vec![
            TxEvent::No2xxAck { key: key.clone() },
            TxEvent::Terminated { key }
        ]
    );
}

#[test]
fn non_invite_server_repeats_its_final_then_ends_after_timer_j() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let bye = request("BYE", "z9hG4bK-bye", "BYE");
    let key = key_of(&bye);
    layer
        .create_server(key.clone(), Transport::Udp, peer())
        .unwrap();
    assert_eq!(
        layer.create_server(key.clone(), Transport::Udp, peer()),
        Err(TxError::Duplicate)
    );
    assert_eq!(
        layer.match_request(t0, &bye.method, &key),
        ServerMatch::Retransmission
    );
    assert!(
        drain(&mut layer).is_empty(),
        "nothing to repeat while Trying"
    );
    layer
        .respond(t0, &key, &response_to(&bye, 200, "OK", None))
        .unwrap();
    layer.match_request(t0, &bye.method, &key);
    assert_eq!(drain(&mut layer), vec!["SIP/2.0 200 OK", "SIP/2.0 200 OK"]);
    advance(&mut layer, t0 + Duration::from_millis(31_999));
    assert!(!layer.is_empty());
    advance(&mut layer, t0 + Duration::from_secs(32));
    assert!(layer.is_empty());
    assert_eq!(
        layer.respond(t0, &key, &response_to(&bye, 200, "OK", None)),
        Err(TxError::UnknownTransaction)
    );
}

#[test]
fn respond_rejects_bad_codes() {
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let (invite, key) = new_invite(&mut layer);
    let bad = response_to(&invite, 99, "Odd", None);
    assert_eq!(
        layer.respond(Instant::now(), &key, &bad),
        Err(TxError::BadStatus(99))
    );
}

fn our_bye() -> Request {
    Request::try_from(
        "BYE sip:sipp@127.0.0.1:5061 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours;rport\r\n\
         From: <sip:bot@127.0.0.1:5060>;tag=gw\r\n\
         To: sipp <sip:sipp@127.0.0.1:5061>;tag=1\r\n\
         Call-ID: layer-1@127.0.0.1\r\n\
         CSeq: 2 BYE\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
    )
    .unwrap()
}

#[test]
fn client_transaction_retransmits_matches_and_absorbs() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let bye = our_bye();
    let key = layer
        .send_request(t0, &bye, Transport::Udp, peer())
        .unwrap();
    assert_eq!(
        drain(&mut layer),
        vec!["BYE sip:sipp@127.0.0.1:5061 SIP/2.0"]
    );
    advance(&mut layer, t0 + Duration::from_millis(1600));
    assert_eq!(drain(&mut layer).len(), 2, "Timer E at 0.5 s and 1.5 s");

    let ok = response_to(&bye, 200, "OK", None);
    assert_eq!(layer.receive_response(t0, &ok), ResponseMatch::PassUp(key));
    assert_eq!(layer.receive_response(t0, &ok), ResponseMatch::Absorbed);
    let mut stray = ok.clone();
    stray.headers.retain(|h| !matches!(h, Header::Via(_)));
    stray.headers.push(Header::Via(
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKother".into(),
    ));
    assert_eq!(layer.receive_response(t0, &stray), ResponseMatch::Unmatched);
}

#[test]
fn client_timeout_is_reported() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(t0, &our_bye(), Transport::Tcp, peer())
        .unwrap();
    advance(&mut layer, t0 + Duration::from_secs(31));
    assert_eq!(drain(&mut layer).len(), 1, "no retransmission over TCP");
    advance(&mut layer, t0 + Duration::from_secs(33));
    assert_eq!(
        events(&mut layer),
        vec![
            TxEvent::NoResponse { key: key.clone() },
            TxEvent::Terminated { key }
        ]
    );
}

#[test]
fn acks_and_branchless_requests_are_refused_as_client_transactions() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut ack = our_bye();
    ack.method = Method::Ack;
    assert_eq!(
        layer.send_request(t0, &ack, Transport::Udp, peer()),
        Err(TxError::AckIsNotATransaction)
    );
    let mut no_via = our_bye();
    no_via.headers.retain(|h| !matches!(h, Header::Via(_)));
    assert_eq!(
        layer.send_request(t0, &no_via, Transport::Udp, peer()),
        Err(TxError::NoBranch)
    );
}
