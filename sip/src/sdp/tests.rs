use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::negotiate::normalize_ptime;
use super::*;

fn local() -> LocalMedia {
    LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 40000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        ptime_ms: 20,
        dtmf: true,
        session_id: 1234,
        session_version: 1,
    }
}

/// Builds an offer from a session-level part and media sections, with CRLF endings.
fn sdp(lines: &[&str]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text
}

const HEADER: [&str; 5] = [
    "v=0",
    "o=carrier 99 7 IN IP4 192.0.2.1",
    "s=call",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
];

fn offer_with(media: &[&str]) -> String {
    let mut lines: Vec<&str> = HEADER.to_vec();
    lines.extend_from_slice(media);
    sdp(&lines)
}

fn basic_offer() -> String {
    offer_with(&[
        "m=audio 30000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ])
}

#[test]
fn basic_offer_is_answered_with_first_codec_and_dtmf() {
    let (answer, negotiated) = answer_offer(&basic_offer(), &local()).unwrap();
    assert_eq!(
        negotiated,
        NegotiatedMedia {
            remote_rtp: "192.0.2.10:30000".parse().unwrap(),
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            ptime_ms: 20,
            remote_direction: Direction::SendRecv,
            local_direction: Direction::SendRecv,
            media_index: 0,
        }
    );
    assert_eq!(
        answer,
        "v=0\r\no=- 1234 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

#[test]
fn answer_parses_back_with_our_values() {
    let mut ours = local();
    ours.session_version = 42;
    let (answer, _) = answer_offer(&basic_offer(), &ours).unwrap();
    let parsed = SessionDescription::parse(&answer).unwrap();
    assert_eq!(parsed.origin.session_id, "1234");
    assert_eq!(parsed.origin.session_version, "42");
    assert_eq!(parsed.connection, Some(ours.ip));
    let media = &parsed.media[0];
    assert_eq!(media.port, 40000);
    assert_eq!(media.formats, vec!["0", "101"]);
    assert_eq!(media.direction, Some(Direction::SendRecv));
}

#[test]
fn offerer_order_wins_over_our_preference() {
    let offer = offer_with(&[
        "m=audio 30000 RTP/AVP 8 0 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.payload_type, 8);
    assert!(answer.contains("m=audio 40000 RTP/AVP 8 101\r\n"));
    assert!(answer.contains("a=rtpmap:8 PCMA/8000\r\n"));
    assert!(!answer.contains("PCMU"));
}

#[test]
fn codecs_we_do_not_accept_are_skipped() {
    let mut ours = local();
    ours.codecs = vec![Codec::Pcma];
    let (_, negotiated) = answer_offer(&basic_offer(), &ours).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.payload_type, 8);
}

#[test]
fn srtp_line_is_rejected_and_plain_rtp_line_answered() {
    let offer = offer_with(&[
        "m=audio 30000 RTP/SAVP 0 8",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcdef",
        "m=audio 30002 RTP/AVP 0 8",
    ]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.media_index, 1);
    assert_eq!(negotiated.remote_rtp.port(), 30002);
    let parsed = SessionDescription::parse(&answer).unwrap();
    assert_eq!(parsed.media.len(), 2);
    assert_eq!(parsed.media[0].port, 0);
    assert_eq!(parsed.media[0].proto, "RTP/SAVP");
    assert_eq!(parsed.media[0].formats, vec!["0", "8"]);
    assert_eq!(parsed.media[1].port, 40000);
    assert_eq!(parsed.media[1].proto, "RTP/AVP");
}

#[test]
fn video_line_is_rejected_keeping_its_format_list() {
    let offer = offer_with(&[
        "m=video 30010 RTP/AVP 96 97",
        "a=rtpmap:96 H264/90000",
        "a=rtpmap:97 VP8/90000",
        "m=audio 30000 RTP/AVP 0",
        "m=audio 30020 RTP/AVP 8",
    ]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.media_index, 1);
    assert!(answer.contains("m=video 0 RTP/AVP 96 97\r\n"));
    // A second usable audio line is still rejected: we handle one stream.
    assert!(answer.contains("m=audio 0 RTP/AVP 8\r\n"));
    assert!(answer.contains("m=audio 40000 RTP/AVP 0\r\n"));
    let video_position = answer.find("m=video").unwrap();
    let audio_position = answer.find("m=audio 40000").unwrap();
    assert!(
        video_position < audio_position,
        "m-line order must mirror the offer"
    );
}

#[test]
fn avpf_is_accepted_and_echoed() {
    let offer = offer_with(&["m=audio 30000 RTP/AVPF 0"]);
    let (answer, _) = answer_offer(&offer, &local()).unwrap();
    assert!(answer.contains("m=audio 40000 RTP/AVPF 0\r\n"));
}

#[test]
fn offer_without_common_codec_is_refused() {
    let offer = offer_with(&["m=audio 30000 RTP/AVP 18", "a=rtpmap:18 G729/8000"]);
    assert_eq!(
        answer_offer(&offer, &local()).unwrap_err(),
        SdpError::NoCommonCodec
    );
    // PCMU only on a disabled stream or over SRTP is not usable either.
    let offer = offer_with(&["m=audio 0 RTP/AVP 0", "m=audio 30000 RTP/SAVP 0"]);
    assert_eq!(
        answer_offer(&offer, &local()).unwrap_err(),
        SdpError::NoCommonCodec
    );
    let no_media = offer_with(&[]);
    assert_eq!(
        answer_offer(&no_media, &local()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn wrong_clock_rate_or_stereo_rtpmap_is_not_g711() {
    let offer = offer_with(&[
        "m=audio 30000 RTP/AVP 96 97",
        "a=rtpmap:96 PCMU/16000",
        "a=rtpmap:97 PCMA/8000/2",
    ]);
    assert_eq!(
        answer_offer(&offer, &local()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn rtpmap_overrides_static_payload_type() {
    // PT 0 remapped to something else must not be taken for PCMU.
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0 8", "a=rtpmap:0 G722/8000"]);
    let (_, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
}

#[test]
fn dynamic_payload_type_with_rtpmap_is_kept() {
    let offer = offer_with(&[
        "m=audio 30000 RTP/AVP 96 100",
        "a=rtpmap:96 pcmu/8000/1",
        "a=rtpmap:100 telephone-event/8000",
    ]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.payload_type, 96);
    assert_eq!(negotiated.dtmf_payload_type, Some(100));
    assert!(answer.contains("m=audio 40000 RTP/AVP 96 100\r\n"));
    assert!(answer.contains("a=rtpmap:96 PCMU/8000\r\n"));
    assert!(answer.contains("a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-16\r\n"));
}

#[test]
fn dtmf_only_when_offered_and_enabled() {
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0"]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.dtmf_payload_type, None);
    assert!(!answer.contains("telephone-event"));
    assert!(!answer.contains("fmtp"));

    let mut ours = local();
    ours.dtmf = false;
    let (answer, negotiated) = answer_offer(&basic_offer(), &ours).unwrap();
    assert_eq!(negotiated.dtmf_payload_type, None);
    assert!(!answer.contains("telephone-event"));

    // Events at a clock other than the codec's are unusable.
    let offer = offer_with(&[
        "m=audio 30000 RTP/AVP 0 102",
        "a=rtpmap:102 telephone-event/16000",
    ]);
    let (_, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.dtmf_payload_type, None);
}

fn direction_offer(attribute: &str) -> String {
    offer_with(&["m=audio 30000 RTP/AVP 0", attribute])
}

#[test]
fn hold_and_unhold_mirror_direction() {
    let cases = [
        ("a=sendonly", Direction::SendOnly, Direction::RecvOnly),
        ("a=recvonly", Direction::RecvOnly, Direction::SendOnly),
        ("a=inactive", Direction::Inactive, Direction::Inactive),
        ("a=sendrecv", Direction::SendRecv, Direction::SendRecv),
        ("a=x-unrelated", Direction::SendRecv, Direction::SendRecv),
    ];
    for (attribute, remote, ours) in cases {
        let (answer, negotiated) = answer_offer(&direction_offer(attribute), &local()).unwrap();
        assert_eq!(negotiated.remote_direction, remote, "{attribute}");
        assert_eq!(negotiated.local_direction, ours, "{attribute}");
        assert!(
            answer.contains(&format!("a={}\r\n", ours.attribute_name())),
            "{attribute}"
        );
    }
}

#[test]
fn session_level_direction_applies_unless_media_overrides() {
    let mut lines: Vec<&str> = HEADER.to_vec();
    lines.push("a=sendonly");
    lines.push("m=audio 30000 RTP/AVP 0");
    let (_, negotiated) = answer_offer(&sdp(&lines), &local()).unwrap();
    assert_eq!(negotiated.local_direction, Direction::RecvOnly);

    lines.push("a=sendrecv");
    let (_, negotiated) = answer_offer(&sdp(&lines), &local()).unwrap();
    assert_eq!(negotiated.local_direction, Direction::SendRecv);
}

#[test]
fn zero_address_is_old_style_hold() {
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0", "c=IN IP4 0.0.0.0"]);
    let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.remote_direction, Direction::SendOnly);
    assert_eq!(negotiated.local_direction, Direction::RecvOnly);
    assert!(negotiated.remote_rtp.ip().is_unspecified());
    assert!(answer.contains("a=recvonly\r\n"));
    // Our own c= stays our real address: we still want to receive.
    assert!(answer.contains("c=IN IP4 10.0.0.1\r\n"));

    let offer = offer_with(&["m=audio 30000 RTP/AVP 0", "c=IN IP4 0.0.0.0", "a=recvonly"]);
    let (_, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.local_direction, Direction::Inactive);
}

#[test]
fn reinvite_narrowing_codecs_drops_dtmf() {
    let first = offer_with(&[
        "m=audio 30000 RTP/AVP 8 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let (_, negotiated) = answer_offer(&first, &local()).unwrap();
    assert_eq!(negotiated.dtmf_payload_type, Some(101));

    let mut ours = local();
    ours.session_version += 1;
    let narrowed = offer_with(&["m=audio 30000 RTP/AVP 8"]);
    let (answer, negotiated) = answer_offer(&narrowed, &ours).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.dtmf_payload_type, None);
    assert!(answer.contains("o=- 1234 2 IN IP4 10.0.0.1\r\n"));
    assert!(answer.contains("m=audio 40000 RTP/AVP 8\r\n"));

    // Narrowed to events only: nothing to carry audio, so the re-INVITE gets a 488.
    let events_only = offer_with(&[
        "m=audio 30000 RTP/AVP 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    assert_eq!(
        answer_offer(&events_only, &local()).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn media_level_connection_wins_over_session_level() {
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0", "c=IN IP4 198.51.100.7"]);
    let (_, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(
        negotiated.remote_rtp,
        "198.51.100.7:30000".parse::<SocketAddr>().unwrap()
    );

    let media_only = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0",
        "c=IN IP4 198.51.100.8/127",
    ]);
    let (_, negotiated) = answer_offer(&media_only, &local()).unwrap();
    assert_eq!(negotiated.remote_rtp.ip(), Ipv4Addr::new(198, 51, 100, 8));
}

#[test]
fn missing_connection_is_an_error() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0",
    ]);
    assert_eq!(
        answer_offer(&offer, &local()).unwrap_err(),
        SdpError::MissingConnection { media_index: 0 }
    );
}

#[test]
fn ipv6_connection_is_parsed_and_answered() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP6 2001:db8::1",
        "s=-",
        "c=IN IP6 2001:db8::10",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0",
    ]);
    let mut ours = local();
    ours.ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let (answer, negotiated) = answer_offer(&offer, &ours).unwrap();
    assert_eq!(
        negotiated.remote_rtp,
        "[2001:db8::10]:30000".parse::<SocketAddr>().unwrap()
    );
    assert!(answer.contains("o=- 1234 1 IN IP6 ::1\r\n"));
    assert!(answer.contains("c=IN IP6 ::1\r\n"));
}

#[test]
fn address_family_must_match_address_type() {
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0", "c=IN IP4 2001:db8::1"]);
    assert!(matches!(
        answer_offer(&offer, &local()),
        Err(SdpError::Malformed { line: 7, .. })
    ));
    let host_name = offer_with(&["m=audio 30000 RTP/AVP 0", "c=IN IP4 media.example.com"]);
    assert!(matches!(
        answer_offer(&host_name, &local()),
        Err(SdpError::Malformed { .. })
    ));
}

#[test]
fn lf_only_input_is_accepted() {
    let offer = basic_offer().replace("\r\n", "\n");
    let (_, negotiated) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
}

#[test]
fn ptime_is_normalised() {
    assert_eq!(normalize_ptime(0), 20);
    assert_eq!(normalize_ptime(5), 10);
    assert_eq!(normalize_ptime(10), 10);
    assert_eq!(normalize_ptime(25), 20);
    assert_eq!(normalize_ptime(30), 30);
    assert_eq!(normalize_ptime(60), 60);
    assert_eq!(normalize_ptime(90), 60);
    assert_eq!(normalize_ptime(u32::MAX), 60);

    let cases = [
        ("a=ptime:30", 30),
        ("a=ptime:25", 20),
        ("a=ptime:1000", 60),
        ("a=ptime:0", 20),
        ("a=ptime:abc", 20),
        ("a=ptime:30.0", 30),
        ("a=ptime:99999999999999", 20),
        ("a=maxptime:40", 20),
    ];
    for (attribute, expected) in cases {
        let offer = offer_with(&["m=audio 30000 RTP/AVP 0", attribute]);
        let (answer, negotiated) = answer_offer(&offer, &local()).unwrap();
        assert_eq!(negotiated.ptime_ms, expected, "{attribute}");
        assert!(
            answer.contains(&format!("a=ptime:{expected}\r\n")),
            "{attribute}"
        );
    }
}

#[test]
fn missing_ptime_falls_back_to_ours() {
    let mut ours = local();
    ours.ptime_ms = 40;
    let offer = offer_with(&["m=audio 30000 RTP/AVP 0"]);
    let (_, negotiated) = answer_offer(&offer, &ours).unwrap();
    assert_eq!(negotiated.ptime_ms, 40);
}

#[test]
fn delayed_offer_round_trip() {
    let ours = local();
    let offer = create_offer(&ours, Direction::SendRecv);
    assert_eq!(
        offer,
        "v=0\r\no=- 1234 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );

    // The peer answers our offer as any answerer would; we read its answer from the ACK.
    let mut peer = local();
    peer.ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));
    peer.port = 50000;
    peer.codecs = vec![Codec::Pcma];
    let (peer_answer, peer_view) = answer_offer(&offer, &peer).unwrap();
    assert_eq!(peer_view.remote_rtp, "10.0.0.1:40000".parse().unwrap());

    let negotiated = accept_answer(&peer_answer, &ours.codecs, &ours).unwrap();
    assert_eq!(negotiated.remote_rtp, "192.0.2.50:50000".parse().unwrap());
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.payload_type, 8);
    assert_eq!(
        negotiated.dtmf_payload_type,
        Some(OFFERED_DTMF_PAYLOAD_TYPE)
    );
    assert_eq!(negotiated.local_direction, Direction::SendRecv);
}

#[test]
fn hold_offer_and_its_answer() {
    let ours = local();
    let offer = create_offer(&ours, Direction::SendOnly);
    assert!(offer.contains("a=sendonly\r\n"));
    let (answer, peer_view) = answer_offer(&offer, &local()).unwrap();
    assert_eq!(peer_view.local_direction, Direction::RecvOnly);
    let negotiated = accept_answer(&answer, &ours.codecs, &ours).unwrap();
    assert_eq!(negotiated.remote_direction, Direction::RecvOnly);
    assert_eq!(negotiated.local_direction, Direction::SendOnly);
}

#[test]
fn create_offer_without_dtmf_or_codecs() {
    let mut ours = local();
    ours.dtmf = false;
    ours.codecs = vec![Codec::Pcma, Codec::Pcma];
    ours.ptime_ms = 35;
    let offer = create_offer(&ours, Direction::SendRecv);
    assert!(offer.contains("m=audio 40000 RTP/AVP 8\r\n"));
    assert!(!offer.contains("telephone-event"));
    assert!(offer.contains("a=ptime:30\r\n"));

    ours.codecs.clear();
    let offer = create_offer(&ours, Direction::Inactive);
    assert!(offer.contains("m=audio 40000 RTP/AVP 0 8\r\n"));
    assert!(offer.contains("a=inactive\r\n"));
}

#[test]
fn accept_answer_skips_rejected_and_unoffered() {
    let ours = local();
    let answer = offer_with(&[
        "m=audio 0 RTP/SAVP 0",
        "m=audio 30000 RTP/AVP 18 8",
        "a=rtpmap:18 G729/8000",
    ]);
    let negotiated = accept_answer(&answer, &[Codec::Pcma], &ours).unwrap();
    assert_eq!(negotiated.media_index, 1);
    assert_eq!(negotiated.codec, Codec::Pcma);

    // PCMU in the answer although we offered only PCMA: not acceptable.
    let answer = offer_with(&["m=audio 30000 RTP/AVP 0"]);
    assert_eq!(
        accept_answer(&answer, &[Codec::Pcma], &ours).unwrap_err(),
        SdpError::NoCommonCodec
    );
    let rejected = offer_with(&["m=audio 0 RTP/AVP 0"]);
    assert_eq!(
        accept_answer(&rejected, &ours.codecs, &ours).unwrap_err(),
        SdpError::NoCommonCodec
    );
}

#[test]
fn parser_keeps_attributes_per_media() {
    let parsed = SessionDescription::parse(&offer_with(&[
        "m=audio 30000/2 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:30",
        "a=recvonly",
        "m=image 0 udptl t38",
        "a=T38FaxVersion:0",
    ]))
    .unwrap();
    assert_eq!(parsed.origin.username, "carrier");
    assert_eq!(parsed.origin.address, "192.0.2.1");
    assert_eq!(parsed.session_name, "call");
    assert_eq!(
        parsed.connection,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)))
    );
    let audio = &parsed.media[0];
    assert_eq!(audio.port, 30000);
    assert_eq!(audio.ptime_ms, Some(30));
    assert_eq!(audio.direction, Some(Direction::RecvOnly));
    assert_eq!(
        audio.fmtps,
        vec![Fmtp {
            format: "101".into(),
            parameters: "0-15".into()
        }]
    );
    assert_eq!(audio.telephone_event_payload_type(), Some(101));
    let image = &parsed.media[1];
    assert_eq!(
        (image.media.as_str(), image.proto.as_str()),
        ("image", "udptl")
    );
    assert_eq!(image.formats, vec!["t38"]);
    assert!(image.rtpmaps.is_empty());
    assert_eq!(image.direction, None);
}

#[test]
fn malformed_structure_is_rejected_with_line_numbers() {
    assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
    assert_eq!(SessionDescription::parse("\r\n\r\n"), Err(SdpError::Empty));
    assert_eq!(
        SessionDescription::parse("v=1\r\n"),
        Err(SdpError::BadVersion)
    );
    assert_eq!(
        SessionDescription::parse("o=- 1 1 IN IP4 1.2.3.4\r\n"),
        Err(SdpError::BadVersion)
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\ns=-\r\n"),
        Err(SdpError::MissingOrigin)
    );

    let bad_lines = [
        ("m=audio 70000 RTP/AVP 0", 6),
        ("m=audio 99999999999999999999 RTP/AVP 0", 6),
        ("m=audio -1 RTP/AVP 0", 6),
        ("m=audio 30000/x RTP/AVP 0", 6),
        ("m=audio 30000 RTP/AVP", 6),
        ("m=audio", 6),
        ("garbage", 6),
        ("ab=cd", 6),
        ("=0", 6),
        ("v=0", 6),
        ("o=- 1 1 IN IP4 1.2.3.4", 6),
        ("c=IN IP4", 6),
        ("c=ATM NSAP 47.0091", 6),
        ("c=IN IPX 1.2.3.4", 6),
        ("c=IN IP4 1.2.3.4 extra", 6),
        ("c=IN IP4 300.1.1.1", 6),
    ];
    for (line, number) in bad_lines {
        let text = offer_with(&[line]);
        match SessionDescription::parse(&text) {
            Err(SdpError::Malformed { line, .. }) => assert_eq!(line, number, "{text}"),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    let bad_attributes = [
        "a=rtpmap:",
        "a=rtpmap",
        "a=rtpmap:0",
        "a=rtpmap:200 PCMU/8000",
        "a=rtpmap:x PCMU/8000",
        "a=rtpmap:0 PCMU",
        "a=rtpmap:0 PCMU/fast",
        "a=rtpmap:0 /8000",
        "a=rtpmap:0 PCMU/8000/1/1",
        "a=rtpmap:0 PCMU/8000/many",
        "a=fmtp:",
    ];
    for attribute in bad_attributes {
        let text = offer_with(&["m=audio 30000 RTP/AVP 0", attribute]);
        assert!(
            matches!(
                SessionDescription::parse(&text),
                Err(SdpError::Malformed { line: 7, .. })
            ),
            "{attribute}"
        );
    }

    let short_origin = sdp(&["v=0", "o=- 1 1 IN IP4"]);
    assert!(matches!(
        SessionDescription::parse(&short_origin),
        Err(SdpError::Malformed { line: 2, .. })
    ));
    let long_origin = sdp(&["v=0", "o=- 1 1 IN IP4 1.2.3.4 5"]);
    assert!(SessionDescription::parse(&long_origin).is_err());
}

#[test]
fn errors_have_readable_messages() {
    let error = SessionDescription::parse(&offer_with(&["m=audio 70000 RTP/AVP 0"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "SDP line 6: m= port is not a number in 0..=65535"
    );
}

#[test]
fn tolerated_quirks() {
    // No s=, extra blank line, trailing spaces, unknown line types, huge origin ids.
    let text = "v=0\n\no=- 123456789012345678901234567890 2 IN IP4 h.example \n\
                c=IN IP4 192.0.2.10\nb=AS:64\nt=0 0\nz=0 0\nm=audio 30000 RTP/AVP 0 127 abc 300\n\
                a=rtpmap:127 telephone-event/8000\na=unknown\na=sendonly\na=sendrecv\n";
    let parsed = SessionDescription::parse(text).unwrap();
    assert_eq!(parsed.session_name, "-");
    assert_eq!(parsed.origin.session_id, "123456789012345678901234567890");
    let media = &parsed.media[0];
    assert_eq!(media.payload_types().collect::<Vec<_>>(), vec![0, 127]);
    assert_eq!(
        media.direction,
        Some(Direction::SendRecv),
        "last direction wins"
    );
    let (_, negotiated) = answer_offer(text, &local()).unwrap();
    assert_eq!(negotiated.dtmf_payload_type, Some(127));
}

/// Deterministic xorshift so fuzz failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Runs everything that reads peer SDP; the assertion is that none of it panics.
fn exercise(text: &str) -> bool {
    let ours = local();
    let parsed = SessionDescription::parse(text).is_ok();
    let answered = answer_offer(text, &ours);
    let accepted = accept_answer(text, &ours.codecs, &ours).is_ok();
    if let Ok((answer, negotiated)) = &answered {
        // Whatever we accepted must produce an answer we can read back ourselves.
        let reparsed = SessionDescription::parse(answer).unwrap();
        assert!(reparsed.media.len() > negotiated.media_index);
    }
    parsed || answered.is_ok() || accepted
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..2000 {
        let length = rng.below(300);
        let bytes: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        if exercise(&text) {
            accepted += 1;
        }
        // Random bytes behind a valid prefix reach the deeper parsing paths.
        let prefixed = format!("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\n{text}");
        exercise(&prefixed);
    }
    assert_eq!(accepted, 0, "random bytes should never form valid SDP");
}

#[test]
fn truncated_and_mutated_offers_never_panic() {
    let offer = offer_with(&[
        "m=video 30010 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "m=audio 30000 RTP/AVP 0 8 101",
        "c=IN IP6 2001:db8::1",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendonly",
    ]);
    let mut accepted = 0;
    for cut in 0..=offer.len() {
        if let Some(prefix) = offer.get(..cut) {
            accepted += usize::from(exercise(prefix));
        }
    }
    // Cuts inside the first lines fail, later ones parse: both paths must have run.
    assert!(accepted > 0 && accepted < offer.len(), "{accepted}");

    const ALPHABET: &[u8] = b"=:/ \r\n0123456789amvcoIP4PCMU.-";
    let mut rng = Rng(42);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut bytes = offer.clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            let position = rng.below(bytes.len());
            match rng.below(3) {
                0 => {
                    if let Some(byte) = bytes.get_mut(position) {
                        *byte = ALPHABET[rng.below(ALPHABET.len())];
                    }
                }
                1 => {
                    bytes.remove(position);
                }
                _ => bytes.insert(position, ALPHABET[rng.below(ALPHABET.len())]),
            }
        }
        accepted += usize::from(exercise(&String::from_utf8_lossy(&bytes)));
    }
    // Small mutations must sometimes survive, or the deeper paths were never fuzzed.
    assert!(
        accepted > 300,
        "only {accepted} mutated offers were accepted"
    );
}
