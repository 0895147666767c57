//! In-dialog behaviour: re-INVITE, UPDATE, INFO, session timers, routing, transports.

use super::*;

#[test]
fn reinvite_goes_to_the_application_and_its_answer_back() {
    let mut h = Harness::new();
    let (call, tag) = h.established("re-1");
    h.sent();
    let reinvite = Req::new("INVITE", "re-1", "z9hG4bK-re1", 2)
        .in_dialog(&tag)
        .body(OFFER)
        .build();
    h.send(&reinvite);
    assert_eq!(h.codes(), vec![100]);
    assert_eq!(
        h.events(),
        vec![UaEvent::ReInvite {
            call,
            offer: Some(OFFER.into())
        }]
    );
    // A second re-INVITE before we answered the first: 500 with Retry-After (§14.2).
    h.send(
        &Req::new("INVITE", "re-1", "z9hG4bK-re1b", 3)
            .in_dialog(&tag)
            .body(OFFER)
            .build(),
    );
    let sent = h.sent();
    assert_eq!(sent[1].status(), Some((500, "Request Pending".into())));
    assert!(sent[1].header("Retry-After").is_some());
    h.send(
        &Req::new("ACK", "re-1", "z9hG4bK-re1b", 3)
            .in_dialog(&tag)
            .build(),
    );
    assert!(h.sent().is_empty(), "the 500's ACK is absorbed");

    h.ua.respond_reinvite(h.now, call, Ok(ANSWER.into()))
        .unwrap();
    let ok = h.sent().remove(0);
    assert_eq!(ok.code(), 200);
    assert_eq!(ok.header("CSeq").as_deref(), Some("2 INVITE"));
    assert_eq!(ok.body(), ANSWER);
    assert_eq!(
        ok.header("Contact").as_deref(),
        Some("<sip:gw@127.0.0.1:5060>")
    );
    assert_eq!(
        h.ua.respond_reinvite(h.now, call, Ok(ANSWER.into())),
        Err(UaError::InvalidState("no re-INVITE or UPDATE pending"))
    );
    h.send(
        &Req::new("ACK", "re-1", "z9hG4bK-re1ack", 2)
            .in_dialog(&tag)
            .build(),
    );
    assert!(h.events().is_empty(), "plain re-INVITE ACK needs no event");
    h.advance(Duration::from_secs(40));
    assert!(h.sent().is_empty(), "re-INVITE 2xx stopped by its ACK");
    assert!(h.events().is_empty());
}

#[test]
fn reinvite_can_be_refused_and_the_call_continues() {
    let mut h = Harness::new();
    let (call, tag) = h.established("re-2");
    h.send(
        &Req::new("INVITE", "re-2", "z9hG4bK-re2", 2)
            .in_dialog(&tag)
            .body(OFFER)
            .build(),
    );
    h.events();
    h.sent();
    assert_eq!(
        h.ua.respond_reinvite(h.now, call, Err((200, "x".into()))),
        Err(UaError::InvalidStatus(200))
    );
    h.ua.respond_reinvite(h.now, call, Err((488, "Not Acceptable Here".into())))
        .unwrap();
    assert_eq!(
        h.sent()[0].status(),
        Some((488, "Not Acceptable Here".into()))
    );
    h.ua.hangup(h.now, call).unwrap();
    assert_eq!(h.sent()[0].method().as_deref(), Some("BYE"));
}

#[test]
fn reinvite_while_our_delayed_offer_is_outstanding_is_glare() {
    let mut h = Harness::new();
    let call = h.incoming(&Req::new("INVITE", "re-3", "z9hG4bK-re3", 1).build());
    h.ua.answer(h.now, call, Some(OFFER.into())).unwrap();
    let tag = h.sent()[1].to_tag();
    h.send(
        &Req::new("INVITE", "re-3", "z9hG4bK-re3b", 2)
            .in_dialog(&tag)
            .body(OFFER)
            .build(),
    );
    assert_eq!(h.codes(), vec![100, 491]);
    h.send(
        &Req::new("UPDATE", "re-3", "z9hG4bK-re3c", 3)
            .in_dialog(&tag)
            .body(OFFER)
            .build(),
    );
    assert_eq!(h.codes(), vec![491]);
    assert!(h.events().is_empty());
}

#[test]
fn reinvite_without_sdp_gets_our_offer_and_the_ack_brings_the_answer() {
    let mut h = Harness::new();
    let (call, tag) = h.established("re-4");
    h.send(
        &Req::new("INVITE", "re-4", "z9hG4bK-re4", 2)
            .in_dialog(&tag)
            .build(),
    );
    assert_eq!(h.events(), vec![UaEvent::ReInvite { call, offer: None }]);
    h.ua.respond_reinvite(h.now, call, Ok(OFFER.into()))
        .unwrap();
    h.send(
        &Req::new("ACK", "re-4", "z9hG4bK-re4a", 2)
            .in_dialog(&tag)
            .body(ANSWER)
            .build(),
    );
    assert_eq!(
        h.events(),
        vec![UaEvent::CallConfirmed {
            call,
            answer: Some(ANSWER.into())
        }]
    );
}

#[test]
fn update_without_sdp_is_answered_here_and_with_sdp_goes_to_the_application() {
    let mut h = Harness::new();
    let (call, tag) = h.established("up-1");
    h.sent();
    h.send(
        &Req::new("UPDATE", "up-1", "z9hG4bK-up1", 2)
            .in_dialog(&tag)
            .build(),
    );
    let ok = h.sent().remove(0);
    assert_eq!(ok.code(), 200);
    assert_eq!(
        ok.header("Contact").as_deref(),
        Some("<sip:gw@127.0.0.1:5060>")
    );
    assert!(h.events().is_empty());

    h.send(
        &Req::new("UPDATE", "up-1", "z9hG4bK-up2", 3)
            .in_dialog(&tag)
            .body(OFFER)
            .build(),
    );
    assert!(h.sent().is_empty(), "waits for the application");
    assert_eq!(
        h.events(),
        vec![UaEvent::ReInvite {
            call,
            offer: Some(OFFER.into())
        }]
    );
    h.ua.respond_reinvite(h.now, call, Ok(ANSWER.into()))
        .unwrap();
    let ok = h.sent().remove(0);
    assert_eq!(ok.header("CSeq").as_deref(), Some("3 UPDATE"));
    assert_eq!(ok.body(), ANSWER);
}

#[test]
fn info_and_prack_and_options_in_dialog() {
    let mut h = Harness::new();
    let (call, tag) = h.established("info-1");
    h.sent();
    let info = Req::new("INFO", "info-1", "z9hG4bK-i1", 2)
        .in_dialog(&tag)
        .extra("Content-Type: application/dtmf-relay\r\n")
        .build()
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n",
        );
    h.send(&info);
    assert_eq!(h.codes(), vec![200]);
    assert_eq!(
        h.events(),
        vec![UaEvent::Info {
            call,
            content_type: Some("application/dtmf-relay".into()),
            body: "Signal=5\r\nDuration=160\r\n".into()
        }]
    );
    h.send(
        &Req::new("PRACK", "info-1", "z9hG4bK-p1", 3)
            .in_dialog(&tag)
            .build(),
    );
    assert_eq!(h.codes(), vec![200]);
    h.send(
        &Req::new("OPTIONS", "info-1", "z9hG4bK-o1", 4)
            .in_dialog(&tag)
            .build(),
    );
    assert_eq!(h.codes(), vec![200]);
}

#[test]
fn lower_cseq_in_dialog_gets_500() {
    let mut h = Harness::new();
    let (_, tag) = h.established("cseq-1");
    h.sent();
    h.send(
        &Req::new("INFO", "cseq-1", "z9hG4bK-c1", 5)
            .in_dialog(&tag)
            .build(),
    );
    h.send(
        &Req::new("INFO", "cseq-1", "z9hG4bK-c2", 4)
            .in_dialog(&tag)
            .build(),
    );
    let sent = h.sent();
    assert_eq!(sent[0].code(), 200);
    assert_eq!(sent[1].status(), Some((500, "CSeq Out Of Order".into())));
    h.events();
}

fn timer_invite(call_id: &str, session_expires: &str) -> String {
    let extra = format!("Session-Expires: {session_expires}\r\nSupported: timer\r\nMin-SE: 90\r\n");
    let branch = format!("z9hG4bK-{call_id}");
    Req::new("INVITE", call_id, &branch, 1)
        .extra(&extra)
        .body(OFFER)
        .build()
}

#[test]
fn session_timer_expiry_sends_bye() {
    let mut h = Harness::new();
    let call = h.incoming(&timer_invite("st-1", "90"));
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let ok = h.sent().remove(1);
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("90;refresher=uac")
    );
    assert_eq!(ok.header("Require").as_deref(), Some("timer"));
    h.send(
        &Req::new("ACK", "st-1", "z9hG4bK-sta", 1)
            .in_dialog(&ok.to_tag())
            .build(),
    );
    h.events();
    h.advance(Duration::from_millis(59_999));
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(1));
    // 90 s minus min(32 s, 30 s) = 60 s.
    assert_eq!(h.elapsed_ms(), 60_000);
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::SessionTimerExpired
        }]
    );
    assert_eq!(h.sent().last().unwrap().method().as_deref(), Some("BYE"));
    assert_eq!(h.ua.stats().session_timer_expiries, 1);
}

#[test]
fn session_refresh_pushes_the_expiry_back() {
    let mut h = Harness::new();
    let call = h.incoming(&timer_invite("st-2", "120;refresher=uac"));
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let tag = h.sent()[1].to_tag();
    h.send(
        &Req::new("ACK", "st-2", "z9hG4bK-st2a", 1)
            .in_dialog(&tag)
            .build(),
    );
    h.events();
    h.advance(Duration::from_secs(60));
    h.send(
        &Req::new("UPDATE", "st-2", "z9hG4bK-st2u", 2)
            .in_dialog(&tag)
            .extra("Session-Expires: 120;refresher=uac\r\nSupported: timer\r\n")
            .build(),
    );
    let ok = h.sent().pop().unwrap();
    assert_eq!(
        ok.header("Session-Expires").as_deref(),
        Some("120;refresher=uac")
    );
    // 120 s minus min(32 s, 40 s): would have expired at 88 s, now at 60 + 88 = 148 s.
    h.advance(Duration::from_secs(87));
    assert!(h.events().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::SessionTimerExpired
        }]
    );
}

#[test]
fn session_timer_edge_cases() {
    let mut h = Harness::new();
    h.send(&timer_invite("st-3", "30"));
    let sent = h.sent();
    assert_eq!(
        sent[1].status(),
        Some((422, "Session Interval Too Small".into()))
    );
    assert_eq!(sent[1].header("Min-SE").as_deref(), Some("90"));
    assert!(h.events().is_empty());

    // A peer that wants us to refresh gets no session timer at all.
    let call = h.incoming(&timer_invite("st-4", "1800;refresher=uas"));
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let ok = h.sent().remove(1);
    assert_eq!(ok.header("Session-Expires"), None);
    assert_eq!(ok.header("Require"), None);
}

/// The SIPp UAC behind a Kamailio-style Record-Routing proxy.
const INVITE_VIA_PROXY: &str = "INVITE sip:bot@10.0.0.5:5060 SIP/2.0\r\n\
Record-Route: <sip:10.0.0.2;lr;ftag=4242SIPpTag001>\r\n\
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKproxy1\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5061;received=10.0.0.9;branch=z9hG4bK-4242-1-0\r\n\
From: sipp <sip:sipp@10.0.0.9:5061>;tag=4242SIPpTag001\r\n\
To: <sip:bot@10.0.0.5:5060>\r\n\
Call-ID: rr-1@10.0.0.9\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@10.0.0.9:5061\r\n\
Max-Forwards: 69\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn dialog_through_a_record_routing_proxy() {
    let mut h = Harness::with_config(UaConfig::new(addr("10.0.0.5:5060")));
    h.send_from(Transport::Udp, "10.0.0.2:5060", INVITE_VIA_PROXY);
    let call = match h.events().as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    h.ua.answer(h.now, call, Some(OFFER.into())).unwrap();
    let sent = h.sent();
    let ok = &sent[1];
    assert_eq!(
        ok.destination,
        addr("10.0.0.2:5060"),
        "responses follow the top Via"
    );
    assert_eq!(
        ok.header("Record-Route").as_deref(),
        Some("<sip:10.0.0.2;lr;ftag=4242SIPpTag001>")
    );
    assert_eq!(ok.header_all("Via").len(), 2);
    let tag = ok.to_tag();

    // The ACK comes back through the proxy.
    let ack = format!(
        "ACK sip:sipp@10.0.0.5:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKproxy2\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5061;branch=z9hG4bK-4242-1-2\r\n\
         From: sipp <sip:sipp@10.0.0.9:5061>;tag=4242SIPpTag001\r\n\
         To: <sip:bot@10.0.0.5:5060>;tag={tag}\r\n\
         Call-ID: rr-1@10.0.0.9\r\nCSeq: 1 ACK\r\nMax-Forwards: 69\r\nContent-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    h.send_from(Transport::Udp, "10.0.0.2:5060", &ack);
    assert_eq!(
        h.events(),
        vec![UaEvent::CallConfirmed {
            call,
            answer: Some(ANSWER.into())
        }]
    );

    h.ua.hangup(h.now, call).unwrap();
    let bye = h.sent().remove(0);
    assert!(
        bye.text
            .starts_with("BYE sip:sipp@10.0.0.9:5061 SIP/2.0\r\n"),
        "{}",
        bye.text
    );
    assert_eq!(
        bye.header_all("Route"),
        vec!["<sip:10.0.0.2;lr;ftag=4242SIPpTag001>"]
    );
    assert_eq!(bye.destination, addr("10.0.0.2:5060"), "sent to the proxy");
    assert!(bye
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK"));
}

#[test]
fn tcp_calls_answer_and_hang_up_on_the_connection() {
    let mut h = Harness::new();
    let raw = Req::new("INVITE", "tcp-1", "z9hG4bK-t1", 1)
        .body(OFFER)
        .build()
        .replace("SIP/2.0/UDP 127.0.0.1:5061", "SIP/2.0/TCP 127.0.0.1:5061")
        .replace(
            "Contact: sip:sipp@127.0.0.1:5061",
            "Contact: <sip:sipp@127.0.0.1:5061;transport=tcp>",
        );
    h.send_from(Transport::Tcp, "127.0.0.1:45000", &raw);
    let call = match h.events().as_slice() {
        [UaEvent::IncomingCall {
            call, transport, ..
        }] => {
            assert_eq!(*transport, Transport::Tcp);
            *call
        }
        other => panic!("{other:?}"),
    };
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let sent = h.sent();
    assert!(sent
        .iter()
        .all(|s| s.transport == Transport::Tcp && s.destination == addr("127.0.0.1:45000")));
    let ok = &sent[1];
    assert_eq!(
        ok.header("Contact").as_deref(),
        Some("<sip:gw@127.0.0.1:5060;transport=tcp>")
    );
    let ack = Req::new("ACK", "tcp-1", "z9hG4bK-t1a", 1)
        .in_dialog(&ok.to_tag())
        .build()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    h.send_from(Transport::Tcp, "127.0.0.1:45000", &ack);
    h.events();
    h.ua.hangup(h.now, call).unwrap();
    let bye = h.sent().remove(0);
    assert_eq!(bye.transport, Transport::Tcp);
    assert_eq!(bye.destination, addr("127.0.0.1:45000"), "connection reuse");
    assert!(bye.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    h.advance(Duration::from_secs(10));
    assert!(h.sent().is_empty(), "no retransmission over TCP");
}

#[test]
fn requests_over_1300_bytes_switch_to_tcp() {
    let mut h = Harness::new();
    let routes: String = (0..30)
        .map(|i| format!("Record-Route: <sip:10.1.0.{i};lr;ftag=abcdefghijklmnop>\r\n"))
        .collect();
    let call = h.incoming(
        &Req::new("INVITE", "big-1", "z9hG4bK-b1", 1)
            .extra(&routes)
            .body(OFFER)
            .build(),
    );
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let tag = h.sent()[1].to_tag();
    h.send(
        &Req::new("ACK", "big-1", "z9hG4bK-b1a", 1)
            .in_dialog(&tag)
            .build(),
    );
    h.events();
    h.ua.hangup(h.now, call).unwrap();
    let bye = h.sent().remove(0);
    assert!(bye.text.len() > 1300);
    assert_eq!(bye.transport, Transport::Tcp);
    assert!(bye.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert_eq!(bye.destination, addr("10.1.0.0:5060"));
}
