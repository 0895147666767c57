//! Bad input and methods we do not serve: the UA answers precisely and keeps working.

use super::*;

fn without_line(raw: &str, prefix: &str) -> String {
    raw.split("\r\n")
        .filter(|l| !l.starts_with(prefix))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn replace_line(raw: &str, prefix: &str, new: &str) -> String {
    raw.split("\r\n")
        .map(|l| if l.starts_with(prefix) { new } else { l })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn malformed_but_parseable_requests_get_400_with_the_reason() {
    let invite = Req::new("INVITE", "bad-1", "z9hG4bK-bad", 1)
        .body(OFFER)
        .build();
    let corpus = [
        (without_line(&invite, "Call-ID:"), 400, "Missing Call-ID"),
        (without_line(&invite, "CSeq:"), 400, "Missing CSeq"),
        (
            replace_line(&invite, "CSeq:", "CSeq: 1 OPTIONS"),
            400,
            "CSeq method mismatch",
        ),
        (
            replace_line(&invite, "Content-Length:", "Content-Length: 4000"),
            400,
            "Bad Content-Length",
        ),
        (
            replace_line(&invite, "Content-Length:", "Content-Length: -1"),
            400,
            "Bad Content-Length",
        ),
        (
            replace_line(&invite, "Max-Forwards:", "Max-Forwards: 0"),
            483,
            "Too Many Hops",
        ),
        (without_line(&invite, "Contact:"), 400, "Missing Contact"),
        (
            replace_line(&invite, "Contact:", "Contact: <mailto:a@b>"),
            400,
            "Bad Contact",
        ),
        (
            replace_line(&invite, "Via:", "Via: SIP/2.0/UDP"),
            400,
            "Bad Via",
        ),
    ];
    let mut h = Harness::new();
    for (i, (raw, code, reason)) in corpus.iter().enumerate() {
        // A fresh branch each: a repeated branch would be a retransmission.
        let raw = raw.replace("z9hG4bK-bad", &format!("z9hG4bK-bad{i}"));
        h.send(&raw);
        let last = h
            .sent()
            .pop()
            .unwrap_or_else(|| panic!("no answer to {reason}"));
        assert_eq!(last.status(), Some((*code, reason.to_string())), "{raw}");
        assert_ne!(last.to_tag(), "", "final responses carry a To tag");
    }
    assert!(h.events().is_empty());
    assert_eq!(h.ua.stats().bad_requests, corpus.len() as u64);
    assert_eq!(h.ua.stats().active_calls, 0);

    // A missing From tag is tolerated (RFC 2543 peers).
    let old = replace_line(&invite, "From:", "From: <sip:old@127.0.0.1:5061>");
    h.send(&old);
    assert!(matches!(
        h.events().as_slice(),
        [UaEvent::IncomingCall { .. }]
    ));
}

#[test]
fn a_request_without_via_is_answered_to_its_source() {
    let mut h = Harness::new();
    let raw = without_line(&Req::new("OPTIONS", "bad-2", "x", 1).build(), "Via:");
    h.send_from(Transport::Udp, "127.0.0.1:7777", &raw);
    let sent = h.sent();
    assert_eq!(sent[0].status(), Some((400, "Missing Via".into())));
    assert_eq!(sent[0].destination, addr("127.0.0.1:7777"));
}

#[test]
fn garbage_is_dropped_and_counted_and_the_ua_keeps_serving() {
    let mut h = Harness::new();
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 abc\r\n\r\n",
    ] {
        h.ua.handle_input(h.now, Transport::Udp, addr(SIPP), junk);
    }
    let mut huge = Req::new("OPTIONS", "huge", "z9hG4bK-h", 1).build();
    huge.push_str(&"x".repeat(70_000));
    h.send(&huge);
    assert!(h.sent().is_empty(), "never answered");
    assert_eq!(h.ua.stats().parse_errors, 5);
    h.send("\r\n\r\n");
    assert_eq!(h.ua.stats().keepalives, 1);
    assert_eq!(h.ua.stats().parse_errors, 5);

    h.incoming(
        &Req::new("INVITE", "after-junk", "z9hG4bK-aj", 1)
            .body(OFFER)
            .build(),
    );
}

#[test]
fn options_out_of_dialog_advertises_capabilities() {
    let mut h = Harness::new();
    h.send(&Req::new("OPTIONS", "ping-1", "z9hG4bK-o1", 1).build());
    let ok = h.sent().remove(0);
    assert_eq!(ok.status(), Some((200, "OK".into())));
    assert_eq!(
        ok.header("Allow").as_deref(),
        Some("INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, NOTIFY")
    );
    assert_eq!(ok.header("Accept").as_deref(), Some("application/sdp"));
    assert_eq!(ok.header("Supported").as_deref(), Some("timer"));
    assert!(ok.header("Server").unwrap().starts_with("bargein-sip/"));
    assert!(h.events().is_empty());
}

#[test]
fn unknown_and_unserved_methods() {
    let mut h = Harness::new();
    h.send(&Req::new("FROBNICATE", "m-1", "z9hG4bK-m1", 1).build());
    let sent = h.sent();
    assert_eq!(sent[0].status(), Some((501, "Not Implemented".into())));
    assert_eq!(sent[0].header("CSeq").as_deref(), Some("1 FROBNICATE"));
    assert_ne!(sent[0].to_tag(), "");

    h.send(&Req::new("REGISTER", "m-2", "z9hG4bK-m2", 1).build());
    let sent = h.sent();
    assert_eq!(sent[0].code(), 405);
    assert!(sent[0].header("Allow").unwrap().contains("INVITE"));

    h.send(&Req::new("MESSAGE", "m-3", "z9hG4bK-m3", 1).build());
    assert_eq!(h.codes(), vec![405]);

    // In-dialog methods without a dialog.
    h.send(&Req::new("BYE", "m-4", "z9hG4bK-m4", 1).build());
    assert_eq!(h.codes(), vec![481]);
    h.send(
        &Req::new("BYE", "m-5", "z9hG4bK-m5", 1)
            .in_dialog("unknown")
            .build(),
    );
    assert_eq!(h.codes(), vec![481]);
    h.send(
        &Req::new("INFO", "m-6", "z9hG4bK-m6", 1)
            .in_dialog("unknown")
            .build(),
    );
    assert_eq!(h.codes(), vec![481]);
    // ACK for nothing: dropped.
    h.send(
        &Req::new("ACK", "m-7", "z9hG4bK-m7", 1)
            .in_dialog("unknown")
            .build(),
    );
    assert!(h.sent().is_empty());
    assert_eq!(h.ua.stats().stray_messages, 1);
}

#[test]
fn methods_outside_the_configured_allow_list_get_405() {
    let mut cfg = UaConfig::new(addr(UA_ADDR));
    cfg.allow_methods.retain(|m| *m != rsip::Method::Info);
    let mut h = Harness::with_config(cfg);
    let (_, tag) = h.established("cfg-1");
    h.sent();
    h.send(
        &Req::new("INFO", "cfg-1", "z9hG4bK-ci", 2)
            .in_dialog(&tag)
            .build(),
    );
    let sent = h.sent();
    assert_eq!(sent[0].code(), 405);
    assert!(!sent[0].header("Allow").unwrap().contains("INFO"));
}

#[test]
fn unsupported_required_extension_gets_420() {
    let mut h = Harness::new();
    h.send(
        &Req::new("INVITE", "ext-1", "z9hG4bK-e1", 1)
            .extra("Require: 100rel, timer\r\n")
            .body(OFFER)
            .build(),
    );
    let sent = h.sent();
    assert_eq!(
        sent.iter().map(Sent::code).collect::<Vec<_>>(),
        vec![100, 420]
    );
    assert_eq!(sent[1].header("Unsupported").as_deref(), Some("100rel"));
    assert!(h.events().is_empty());
}

#[test]
fn non_sdp_body_gets_415() {
    let mut h = Harness::new();
    let raw = Req::new("INVITE", "ct-1", "z9hG4bK-ct", 1)
        .body(OFFER)
        .build()
        .replace(
            "Content-Type: application/sdp",
            "Content-Type: multipart/mixed;boundary=x",
        );
    h.send(&raw);
    let sent = h.sent();
    assert_eq!(sent.last().unwrap().code(), 415);
    assert_eq!(
        sent.last().unwrap().header("Accept").as_deref(),
        Some("application/sdp")
    );
}

#[test]
fn stray_responses_are_counted() {
    let mut h = Harness::new();
    h.send(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnothing\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n",
    );
    assert_eq!(h.ua.stats().stray_messages, 1);
    assert!(h.sent().is_empty());
}

#[test]
fn responses_follow_rport_and_received() {
    let mut h = Harness::new();
    let raw = Req::new("OPTIONS", "nat-1", "z9hG4bK-n1", 1)
        .build()
        .replace(
            "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-n1",
            "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-n1;rport",
        );
    h.send_from(Transport::Udp, "203.0.113.9:31000", &raw);
    let ok = h.sent().remove(0);
    assert_eq!(ok.destination, addr("203.0.113.9:31000"));
    assert_eq!(
        ok.header("Via").as_deref(),
        Some("SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-n1;rport=31000;received=203.0.113.9")
    );

    // Without rport: received IP, sent-by port.
    let raw = Req::new("OPTIONS", "nat-2", "z9hG4bK-n2", 1)
        .build()
        .replace(
            "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-n2",
            "Via: SIP/2.0/UDP 192.168.1.20:5070;branch=z9hG4bK-n2",
        );
    h.send_from(Transport::Udp, "203.0.113.9:31000", &raw);
    assert_eq!(h.sent()[0].destination, addr("203.0.113.9:5070"));
}
