use super::*;

const INVITE: &str = "INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001\r\n\
To: <sip:bot@127.0.0.1:5060>\r\n\
Call-ID: 1-4242@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 14\r\n\
\r\n\
v=0\r\no=x\r\ns=-\r\n";

fn request(raw: &str) -> Request {
    match parse(raw.as_bytes(), DEFAULT_MAX_MESSAGE_BYTES).unwrap() {
        Inbound::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Replaces one header line of the fixture (or removes it when `new` is empty).
fn with_header(raw: &str, old_prefix: &str, new: &str) -> String {
    raw.split("\r\n")
        .filter_map(|line| {
            if line.starts_with(old_prefix) {
                (!new.is_empty()).then(|| new.to_string())
            } else {
                Some(line.to_string())
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn parses_a_sipp_invite_and_summarizes_it() {
    let req = request(INVITE);
    let s = validate_request(&req).unwrap();
    assert_eq!(s.call_id, "1-4242@127.0.0.1");
    assert_eq!(s.cseq, 1);
    assert_eq!(s.from_tag.as_deref(), Some("4242SIPpTag001"));
    assert_eq!(s.to_tag, None);
    assert_eq!(s.via.branch(), Some("z9hG4bK-4242-1-0"));
    assert_eq!(req.body.len(), 14);
}

#[test]
fn garbage_and_oversize_input_is_an_error() {
    assert!(matches!(
        parse(b"\x00\x01garbage\r\n\r\n", 1000),
        Err(ParseError::Malformed(_))
    ));
    assert_eq!(parse(b"\r\n\r\n", 1000), Err(ParseError::Empty));
    assert_eq!(
        parse(INVITE.as_bytes(), 100),
        Err(ParseError::TooLarge {
            size: INVITE.len(),
            max: 100
        })
    );
    assert!(is_keepalive(b"\r\n\r\n"));
    assert!(!is_keepalive(b""));
    assert!(!is_keepalive(INVITE.as_bytes()));
}

#[test]
fn extension_methods_are_kept_apart() {
    let raw = INVITE
        .replace("INVITE sip:", "FROBNICATE sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 FROBNICATE");
    match parse(raw.as_bytes(), DEFAULT_MAX_MESSAGE_BYTES).unwrap() {
        Inbound::ExtensionMethod { method, request } => {
            assert_eq!(method, "FROBNICATE");
            assert!(validate_request_as(&request, &method).is_ok());
            assert_eq!(
                validate_request(&request).unwrap_err().reason,
                "CSeq method mismatch",
                "the placeholder method must never validate as the real one"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn compact_forms_and_excess_body_bytes() {
    let raw = "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc\r\n\
f: <sip:a@10.0.0.1>;tag=1\r\n\
t: <sip:gw@127.0.0.1>\r\n\
i: compact@10.0.0.1\r\n\
CSeq: 7 OPTIONS\r\n\
l: 2\r\n\
\r\n\
okEXTRA";
    let req = request(raw);
    assert_eq!(req.body, b"ok");
    let s = validate_request(&req).unwrap();
    assert_eq!(s.call_id, "compact@10.0.0.1");
    assert_eq!(s.cseq, 7);
}

#[test]
fn malformed_but_parseable_requests_get_specific_reasons() {
    let cases: &[(&str, &str, u16, &str)] = &[
        ("Call-ID:", "", 400, "Missing Call-ID"),
        ("Call-ID:", "Call-ID: ", 400, "Missing Call-ID"),
        ("CSeq:", "", 400, "Missing CSeq"),
        ("CSeq:", "CSeq: 1 BYE", 400, "CSeq method mismatch"),
        ("CSeq:", "CSeq: one INVITE", 400, "Bad CSeq"),
        ("CSeq:", "CSeq: 4294967295 INVITE", 400, "Bad CSeq"),
        ("CSeq:", "CSeq: 1", 400, "Bad CSeq"),
        (
            "Content-Length:",
            "Content-Length: 99",
            400,
            "Bad Content-Length",
        ),
        (
            "Content-Length:",
            "Content-Length: x",
            400,
            "Bad Content-Length",
        ),
        ("Via:", "", 400, "Missing Via"),
        ("Via:", "Via: SIP/2.0/UDP", 400, "Bad Via"),
        ("From:", "", 400, "Missing From"),
        ("To:", "", 400, "Missing To"),
        (
            "Max-Forwards:",
            "Max-Forwards: lots",
            400,
            "Bad Max-Forwards",
        ),
        ("Max-Forwards:", "Max-Forwards: 0", 483, "Too Many Hops"),
    ];
    for (prefix, replacement, code, reason) in cases {
        let raw = with_header(INVITE, prefix, replacement);
        let req = request(&raw);
        let err = validate_request(&req).unwrap_err();
        assert_eq!(
            (err.code, err.reason.as_str()),
            (*code, *reason),
            "{prefix} -> {replacement:?}"
        );
    }
}

#[test]
fn missing_from_tag_and_max_forwards_are_tolerated() {
    let raw = with_header(INVITE, "From:", "From: <sip:old@10.0.0.1>");
    let raw = with_header(&raw, "Max-Forwards:", "");
    let s = validate_request(&request(&raw)).unwrap();
    assert_eq!(s.from_tag, None);
}

#[test]
fn responses_copy_the_dialog_headers_and_add_a_to_tag() {
    let req = request(INVITE);
    let resp = response_to(&req, 486, "Busy Here", Some("gwtag"));
    let text = String::from_utf8(encode_response(&resp).to_vec()).unwrap();
    assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
    assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-1-0\r\n"));
    assert!(text.contains("To: <sip:bot@127.0.0.1:5060>;tag=gwtag\r\n"));
    assert!(text.contains("From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag001\r\n"));
    assert!(text.contains("Call-ID: 1-4242@127.0.0.1\r\n"));
    assert!(text.contains("CSeq: 1 INVITE\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    assert!(
        !text.contains("Contact"),
        "headers outside §8.2.6.2 are not copied"
    );
    // The encoded response parses back (what the peer will see).
    assert!(matches!(
        parse(text.as_bytes(), 10_000),
        Ok(Inbound::Response(_))
    ));
}

#[test]
fn existing_to_tags_are_kept() {
    let raw = with_header(INVITE, "To:", "To: <sip:bot@127.0.0.1:5060>;tag=existing");
    let resp = response_to(&request(&raw), 200, "OK", Some("new"));
    assert_eq!(
        headers::find(&resp.headers, "To"),
        Some("<sip:bot@127.0.0.1:5060>;tag=existing")
    );
}

#[test]
fn bodies_set_content_type_and_length() {
    let req = request(INVITE);
    let mut resp = response_to(&req, 200, "OK", Some("t"));
    set_body(
        &mut resp.headers,
        &mut resp.body,
        "application/sdp",
        b"v=0\r\n".to_vec(),
    );
    let text = String::from_utf8(encode_response(&resp).to_vec()).unwrap();
    assert!(text.contains("Content-Type: application/sdp\r\n"));
    assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
}

#[test]
fn request_encoding_rewrites_content_length() {
    let req = request(&with_header(
        INVITE,
        "Content-Length:",
        "Content-Length: 14",
    ));
    let text = String::from_utf8(encode_request(&req).to_vec()).unwrap();
    assert!(
        text.starts_with("INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("Content-Length").count(), 1);
}

#[test]
fn status_parts_avoid_rsip_camel_case() {
    assert_eq!(
        status_parts(&StatusCode::RequestTerminated),
        (487, "Request Terminated")
    );
    assert_eq!(
        status_parts(&StatusCode::Other(499, "Custom".into())),
        (499, "Custom")
    );
    assert_eq!(reason_phrase(299), "OK");
}
