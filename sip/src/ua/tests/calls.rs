//! Call set-up and tear-down flows.

use super::*;

#[test]
fn incoming_call_gets_100_at_once_and_an_event_with_the_caller_details() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", "call-1", "z9hG4bK-1", 1)
        .extra(
            "P-Asserted-Identity: \"Alice\" <sip:+4930123@carrier.example>\r\n\
             X-Bot-Context: campaign=42\r\n\
             Diversion: <sip:+4930999@carrier.example>;reason=unconditional\r\n\
             User-Agent: SIPp\r\n",
        )
        .body(OFFER)
        .build();
    h.send(&invite);
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some((100, "Trying".into())));
    assert_eq!(sent[0].destination, addr(SIPP));
    assert_eq!(sent[0].to_tag(), "", "no To tag needed on 100");
    match h.events().as_slice() {
        [UaEvent::IncomingCall {
            call_id,
            from,
            to,
            to_user,
            request_uri,
            source,
            transport,
            offer,
            headers,
            ..
        }] => {
            assert_eq!(call_id, "call-1");
            assert_eq!(from, "sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001");
            assert_eq!(to, "<sip:bot@127.0.0.1:5060>");
            assert_eq!(to_user.as_deref(), Some("bot"));
            assert_eq!(request_uri, "sip:bot@127.0.0.1:5060");
            assert_eq!(*source, addr(SIPP));
            assert_eq!(*transport, Transport::Udp);
            assert_eq!(offer.as_deref(), Some(OFFER));
            assert_eq!(
                headers.get("p-asserted-identity"),
                Some("\"Alice\" <sip:+4930123@carrier.example>")
            );
            assert_eq!(headers.get("X-Bot-Context"), Some("campaign=42"));
            assert_eq!(headers.get_all("Diversion").count(), 1);
            assert_eq!(headers.get("User-Agent"), Some("SIPp"));
            assert_eq!(
                headers.get("Max-Forwards"),
                None,
                "only identity/context headers"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(h.ua.stats().calls_offered, 1);
}

#[test]
fn retransmitted_invite_is_absorbed() {
    let mut h = Harness::new();
    let invite = Req::new("INVITE", "call-2", "z9hG4bK-2", 1)
        .body(OFFER)
        .build();
    let call = h.incoming(&invite);
    h.sent();
    h.send(&invite);
    assert_eq!(h.codes(), vec![100], "last provisional resent");
    assert!(h.events().is_empty(), "no second IncomingCall");
    h.ua.send_provisional(h.now, call, 180).unwrap();
    let ringing = h.sent();
    assert_eq!(ringing[0].code(), 180);
    assert!(
        !ringing[0].to_tag().is_empty(),
        "180 establishes the early dialog"
    );
    assert_eq!(
        ringing[0].header("Contact").as_deref(),
        Some("<sip:gw@127.0.0.1:5060>")
    );
    h.send(&invite);
    assert_eq!(h.codes(), vec![180]);
    assert_eq!(h.ua.stats().retransmissions_absorbed, 2);
}

#[test]
fn answered_call_retransmits_2xx_until_the_ack() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-3", "z9hG4bK-3", 1)
            .body(OFFER)
            .build(),
    );
    h.sent();
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let ok = h.sent().remove(0);
    assert_eq!(ok.status(), Some((200, "OK".into())));
    assert_eq!(ok.body(), ANSWER);
    assert_eq!(
        ok.header("Content-Type").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(
        ok.header("Contact").as_deref(),
        Some("<sip:gw@127.0.0.1:5060>")
    );
    assert!(ok
        .header("Allow")
        .unwrap()
        .contains("INVITE, ACK, CANCEL, BYE"));
    assert_eq!(ok.header("Supported").as_deref(), Some("timer"));
    assert_eq!(ok.header("Session-Expires"), None, "not asked for");
    let tag = ok.to_tag();
    assert_eq!(tag.len(), 16);

    h.advance(Duration::from_millis(1600));
    let retransmitted = h.sent();
    assert_eq!(retransmitted.len(), 2, "at 0.5 s and 1.5 s");
    assert!(retransmitted.iter().all(|s| s.text == ok.text));

    h.send(
        &Req::new("ACK", "call-3", "z9hG4bK-3ack", 1)
            .in_dialog(&tag)
            .build(),
    );
    assert_eq!(
        h.events(),
        vec![UaEvent::CallConfirmed { call, answer: None }]
    );
    h.send(
        &Req::new("ACK", "call-3", "z9hG4bK-3ack2", 1)
            .in_dialog(&tag)
            .build(),
    );
    assert!(
        h.events().is_empty(),
        "repeated ACKs are not new confirmations"
    );
    h.advance(Duration::from_secs(40));
    assert!(h.sent().is_empty(), "no retransmission after the ACK");
    assert!(h.events().is_empty());
    assert_eq!(h.ua.stats().active_calls, 1);
}

#[test]
fn ack_that_never_arrives_ends_the_call_with_a_bye() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-4", "z9hG4bK-4", 1)
            .body(OFFER)
            .build(),
    );
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    h.sent();
    h.advance(Duration::from_millis(31_999));
    assert_eq!(h.sent().len(), 10, "2xx retransmissions up to T2 spacing");
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::AckTimeout
        }]
    );
    let bye = h.sent().remove(0);
    assert_eq!(bye.method().as_deref(), Some("BYE"));
    assert_eq!(bye.destination, addr(SIPP));
    assert_eq!(h.ua.stats().ack_timeouts, 1);
    // The BYE's outcome owes no second event.
    h.advance(Duration::from_secs(40));
    assert!(h.events().is_empty());
    assert_eq!(h.ua.stats().active_calls, 0);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-5", "z9hG4bK-5", 1)
            .body(OFFER)
            .build(),
    );
    h.ua.send_provisional(h.now, call, 180).unwrap();
    let tag = h.sent()[1].to_tag();
    h.send(&Req::new("CANCEL", "call-5", "z9hG4bK-5", 1).build());
    let sent = h.sent();
    let statuses: Vec<(u16, String)> = sent.iter().filter_map(Sent::status).collect();
    assert_eq!(
        statuses,
        vec![(200, "OK".into()), (487, "Request Terminated".into())]
    );
    assert_eq!(sent[0].header("CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(sent[1].header("CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(sent[1].to_tag(), tag, "487 keeps the early dialog's tag");
    assert_eq!(h.events(), vec![UaEvent::CallCancelled { call }]);
    assert_eq!(
        h.ua.answer(h.now, call, Some(ANSWER.into())),
        Err(UaError::UnknownCall)
    );

    // The ACK for the 487 carries the INVITE's branch and is absorbed.
    h.send(
        &Req::new("ACK", "call-5", "z9hG4bK-5", 1)
            .in_dialog(&tag)
            .build(),
    );
    assert!(h.sent().is_empty());
    assert_eq!(h.ua.stats().stray_messages, 0);
    // A CANCEL for an unknown INVITE gets 481.
    h.send(&Req::new("CANCEL", "nope", "z9hG4bK-none", 1).build());
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn cancel_after_the_answer_has_no_effect() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-5b", "z9hG4bK-5b", 1)
            .body(OFFER)
            .build(),
    );
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    h.sent();
    h.send(&Req::new("CANCEL", "call-5b", "z9hG4bK-5b", 1).build());
    assert_eq!(h.codes(), vec![200]);
    assert!(h.events().is_empty());
}

#[test]
fn bye_from_the_peer_is_answered_and_ends_the_call() {
    let mut h = Harness::new();
    let (call, tag) = h.established("call-6");
    h.sent();
    let bye = Req::new("BYE", "call-6", "z9hG4bK-6bye", 2)
        .in_dialog(&tag)
        .build();
    h.send(&bye);
    assert_eq!(h.codes(), vec![200]);
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::RemoteHangup
        }]
    );
    h.send(&bye);
    assert_eq!(
        h.codes(),
        vec![200],
        "retransmitted BYE answered from the transaction"
    );
    assert!(h.events().is_empty());
    assert_eq!(h.ua.hangup(h.now, call), Err(UaError::UnknownCall));
}

#[test]
fn our_bye_completes_with_the_response() {
    let mut h = Harness::new();
    let (call, tag) = h.established("call-7");
    h.sent();
    h.ua.hangup(h.now, call).unwrap();
    assert_eq!(
        h.ua.hangup(h.now, call),
        Err(UaError::InvalidState("hangup already in progress"))
    );
    let bye = h.sent().remove(0);
    assert_eq!(bye.method().as_deref(), Some("BYE"));
    assert!(
        bye.text
            .starts_with("BYE sip:sipp@127.0.0.1:5061 SIP/2.0\r\n"),
        "{}",
        bye.text
    );
    assert_eq!(bye.destination, addr(SIPP));
    assert_eq!(
        bye.header("From").as_deref(),
        Some(format!("<sip:bot@127.0.0.1:5060>;tag={tag}").as_str())
    );
    assert_eq!(
        bye.header("To").as_deref(),
        Some("sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001")
    );
    assert!(bye
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"));
    assert!(bye.header("CSeq").unwrap().ends_with(" BYE"));
    assert!(h.events().is_empty(), "ended only when the BYE completes");

    // SIPp answers the BYE with a 200 copying our Via.
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: call-7\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        bye.header("Via").unwrap(),
        bye.header("From").unwrap(),
        bye.header("To").unwrap(),
        bye.header("CSeq").unwrap()
    );
    h.send(&ok);
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::LocalHangup
        }]
    );
    h.send(&ok);
    assert!(h.events().is_empty(), "retransmitted 200 absorbed");
    assert_eq!(h.ua.stats().active_calls, 0);
}

#[test]
fn unanswered_bye_times_out() {
    let mut h = Harness::new();
    let (call, _) = h.established("call-8");
    h.sent();
    h.ua.hangup(h.now, call).unwrap();
    h.advance(Duration::from_millis(31_999));
    assert_eq!(h.sent().len(), 1 + 10, "BYE plus Timer E retransmissions");
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::ByeTimeout
        }]
    );
    assert_eq!(h.ua.stats().transaction_timeouts, 1);
}

#[test]
fn hangup_before_the_ack_waits_for_it() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-9", "z9hG4bK-9", 1)
            .body(OFFER)
            .build(),
    );
    h.ua.answer(h.now, call, Some(ANSWER.into())).unwrap();
    let tag = h.sent()[1].to_tag();
    h.ua.hangup(h.now, call).unwrap();
    assert!(h.sent().is_empty(), "§15: no BYE before the ACK");
    h.send(
        &Req::new("ACK", "call-9", "z9hG4bK-9ack", 1)
            .in_dialog(&tag)
            .build(),
    );
    assert_eq!(
        h.events(),
        vec![UaEvent::CallConfirmed { call, answer: None }]
    );
    assert_eq!(h.sent()[0].method().as_deref(), Some("BYE"));
}

#[test]
fn hangup_before_the_answer_refuses_with_480() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-10", "z9hG4bK-10", 1)
            .body(OFFER)
            .build(),
    );
    h.sent();
    h.ua.hangup(h.now, call).unwrap();
    assert_eq!(h.codes(), vec![480]);
    assert_eq!(
        h.events(),
        vec![UaEvent::CallEnded {
            call,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn delayed_offer_answer_arrives_in_the_ack() {
    let mut h = Harness::new();
    let call = h.incoming(&Req::new("INVITE", "call-11", "z9hG4bK-11", 1).build());
    assert_eq!(h.ua.answer(h.now, call, None), Err(UaError::SdpRequired));
    h.sent();
    // No offer in the INVITE: our 200 carries the offer.
    h.ua.answer(h.now, call, Some(OFFER.into())).unwrap();
    let ok = h.sent().remove(0);
    assert_eq!(ok.body(), OFFER);
    h.send(
        &Req::new("ACK", "call-11", "z9hG4bK-11ack", 1)
            .in_dialog(&ok.to_tag())
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
fn rejected_call_retransmits_until_acked_and_raises_no_event() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-12", "z9hG4bK-12", 1)
            .body(OFFER)
            .build(),
    );
    h.sent();
    assert_eq!(
        h.ua.reject(h.now, call, 200, "no"),
        Err(UaError::InvalidStatus(200))
    );
    h.ua.reject(h.now, call, 486, "Busy Here").unwrap();
    let busy = h.sent().remove(0);
    assert_eq!(busy.status(), Some((486, "Busy Here".into())));
    assert_eq!(
        h.ua.answer(h.now, call, Some(ANSWER.into())),
        Err(UaError::UnknownCall)
    );
    h.advance(Duration::from_millis(600));
    assert_eq!(h.codes(), vec![486], "Timer G");
    h.send(
        &Req::new("ACK", "call-12", "z9hG4bK-12", 1)
            .in_dialog(&busy.to_tag())
            .build(),
    );
    h.advance(Duration::from_secs(60));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ua.stats().active_transactions, 0);
}

#[test]
fn timer_h_without_ack_is_counted() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "call-13", "z9hG4bK-13", 1)
            .body(OFFER)
            .build(),
    );
    h.ua.reject(h.now, call, 503, "Service Unavailable")
        .unwrap();
    h.advance(Duration::from_secs(33));
    assert_eq!(h.ua.stats().ack_timeouts, 1);
    assert!(h.events().is_empty());
}

#[test]
fn merged_request_gets_482() {
    let mut h = Harness::new();
    h.incoming(
        &Req::new("INVITE", "call-14", "z9hG4bK-14a", 1)
            .body(OFFER)
            .build(),
    );
    h.sent();
    h.send(
        &Req::new("INVITE", "call-14", "z9hG4bK-14b", 1)
            .body(OFFER)
            .build(),
    );
    assert_eq!(h.codes(), vec![100, 482]);
    assert!(h.events().is_empty());
}
