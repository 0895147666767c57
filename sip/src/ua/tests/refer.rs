//! Requests we send inside a call: REFER (RFC 3515, the bot's transfer of the caller, with the
//! NOTIFY sipfrag progress) and INFO (the bot's DTMF).

use super::*;

/// A NOTIFY from SIPp in the call's dialog carrying a sipfrag status line.
fn notify(call_id: &str, tag: &str, cseq: u32, branch: &str, frag: &str, state: &str) -> String {
    format!(
        "NOTIFY sip:gw@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n\
         From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001\r\n\
         To: <sip:bot@127.0.0.1:5060>;tag={tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} NOTIFY\r\n\
         Contact: sip:sipp@127.0.0.1:5061\r\n\
         Max-Forwards: 70\r\n\
         Event: refer\r\n\
         Subscription-State: {state}\r\n\
         Content-Type: message/sipfrag;version=2.0\r\n\
         Content-Length: {len}\r\n\
         \r\n\
         {frag}",
        len = frag.len(),
    )
}

/// The peer's response to one of our requests, copying its headers.
fn response_to(req: &Sent, status: &str) -> String {
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        req.header("Via").unwrap(),
        req.header("From").unwrap(),
        req.header("To").unwrap(),
        req.header("Call-ID").unwrap(),
        req.header("CSeq").unwrap()
    )
}

fn progress(call: CallHandle, status: u16, from_notify: bool) -> UaEvent {
    UaEvent::TransferProgress {
        call,
        status,
        from_notify,
    }
}

#[test]
fn refer_202_then_notify_trying_and_200() {
    let mut h = Harness::new();
    let (call, tag) = h.established("refer-1");
    h.sent();
    h.ua.refer(h.now, call, "sip:agent@10.0.0.9:5060").unwrap();
    assert_eq!(
        h.ua.refer(h.now, call, "sip:other@10.0.0.9"),
        Err(UaError::InvalidState("a REFER is already pending"))
    );
    let refer = h.sent().remove(0);
    assert_eq!(refer.method().as_deref(), Some("REFER"));
    assert!(refer
        .text
        .starts_with("REFER sip:sipp@127.0.0.1:5061 SIP/2.0\r\n"));
    assert_eq!(
        refer.header("Refer-To").as_deref(),
        Some("<sip:agent@10.0.0.9:5060>")
    );
    assert!(refer.header("CSeq").unwrap().ends_with(" REFER"));
    assert!(refer.header("Contact").is_some(), "REFER is target refresh");
    assert_eq!(
        refer.header("Referred-By").as_deref(),
        Some("<sip:gw@127.0.0.1:5060>")
    );

    h.send(&response_to(&refer, "202 Accepted"));
    assert_eq!(h.events(), vec![progress(call, 202, false)]);

    h.send(&notify(
        "refer-1",
        &tag,
        2,
        "z9hG4bK-n1",
        "SIP/2.0 100 Trying\r\n",
        "active;expires=60",
    ));
    assert_eq!(h.codes(), vec![200], "NOTIFY answered 200");
    assert_eq!(h.events(), vec![progress(call, 100, true)]);

    h.send(&notify(
        "refer-1",
        &tag,
        3,
        "z9hG4bK-n2",
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    ));
    assert_eq!(h.codes(), vec![200]);
    assert_eq!(h.events(), vec![progress(call, 200, true)]);

    // The subscription is over: a later NOTIFY is answered but reports nothing, and a new
    // REFER is allowed.
    h.send(&notify(
        "refer-1",
        &tag,
        4,
        "z9hG4bK-n3",
        "SIP/2.0 200 OK\r\n",
        "terminated",
    ));
    assert_eq!(h.codes(), vec![200]);
    assert!(h.events().is_empty());
    h.ua.refer(h.now, call, "sip:again@10.0.0.9").unwrap();
}

#[test]
fn refused_refer_and_failed_transfer_are_reported() {
    let mut h = Harness::new();
    let (call, tag) = h.established("refer-2");
    h.sent();
    h.ua.refer(h.now, call, "sip:agent@10.0.0.9").unwrap();
    let refer = h.sent().remove(0);
    h.send(&response_to(&refer, "603 Decline"));
    assert_eq!(h.events(), vec![progress(call, 603, false)]);

    // Retry, accepted, but the target is busy.
    h.ua.refer(h.now, call, "sip:agent@10.0.0.9").unwrap();
    let refer = h.sent().remove(0);
    h.send(&response_to(&refer, "202 Accepted"));
    h.events();
    h.send(&notify(
        "refer-2",
        &tag,
        2,
        "z9hG4bK-n1",
        "SIP/2.0 486 Busy Here\r\n",
        "terminated",
    ));
    assert_eq!(h.events(), vec![progress(call, 486, true)]);
    assert_eq!(h.ua.stats().active_calls, 1, "the call goes on");
}

#[test]
fn unanswered_refer_times_out_as_408() {
    let mut h = Harness::new();
    let (call, _) = h.established("refer-3");
    h.sent();
    h.ua.refer(h.now, call, "sip:agent@10.0.0.9").unwrap();
    h.advance(Duration::from_secs(40));
    assert_eq!(h.events(), vec![progress(call, 408, false)]);
}

#[test]
fn notify_outside_a_transfer_is_answered_and_ignored() {
    let mut h = Harness::new();
    let (_, tag) = h.established("refer-4");
    h.sent();
    h.send(&notify(
        "refer-4",
        &tag,
        2,
        "z9hG4bK-n1",
        "SIP/2.0 200 OK\r\n",
        "terminated",
    ));
    assert_eq!(h.codes(), vec![200]);
    assert!(h.events().is_empty());
    // Outside any dialog NOTIFY is 481.
    h.send(&notify(
        "no-such-call",
        "nope",
        1,
        "z9hG4bK-n2",
        "SIP/2.0 200 OK\r\n",
        "terminated",
    ));
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn refer_needs_a_confirmed_call_and_a_bare_uri() {
    let mut h = Harness::new();
    let call = h.incoming(
        &Req::new("INVITE", "refer-5", "z9hG4bK-inv", 1)
            .body(OFFER)
            .build(),
    );
    assert!(
        h.ua.refer(h.now, call, "sip:a@b").is_err(),
        "not answered yet"
    );
    let mut h = Harness::new();
    let (call, _) = h.established("refer-6");
    assert!(h.ua.refer(h.now, call, "sip:a@b>\r\nX: y").is_err());
}

#[test]
fn sipfrag_status_lines() {
    use crate::ua::call::sipfrag_status;
    assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
    assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing"), Some(180));
    assert_eq!(sipfrag_status(b"INVITE sip:a@b SIP/2.0\r\n"), None);
    assert_eq!(sipfrag_status(b"SIP/2.0 99 Nope\r\n"), None);
    assert_eq!(sipfrag_status(b""), None);
}

#[test]
fn info_goes_out_in_the_dialog_with_its_body() {
    let mut h = Harness::new();
    let (call, _) = h.established("info-1");
    h.sent();
    h.ua.send_info(
        h.now,
        call,
        "application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
    )
    .unwrap();
    let info = h.sent().remove(0);
    assert_eq!(info.method().as_deref(), Some("INFO"));
    assert!(info
        .text
        .starts_with("INFO sip:sipp@127.0.0.1:5061 SIP/2.0\r\n"));
    assert_eq!(
        info.header("Content-Type").as_deref(),
        Some("application/dtmf-relay")
    );
    assert_eq!(info.body(), "Signal=5\r\nDuration=160\r\n");
    h.send(&response_to(&info, "200 OK"));
    assert!(h.events().is_empty(), "nothing to report");
    assert_eq!(h.ua.stats().active_calls, 1);
}
