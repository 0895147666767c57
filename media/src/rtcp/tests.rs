use super::*;

fn sample_block() -> ReportBlock {
    ReportBlock {
        ssrc: 0xCAFE_BABE,
        fraction_lost: 12,
        cumulative_lost: -3,
        extended_highest_seq: 0x0001_0005,
        jitter: 42,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    }
}

fn sample_info() -> SenderInfo {
    SenderInfo {
        ntp: NtpTime(0xE000_0000_8000_0000),
        rtp_timestamp: 160_000,
        packet_count: 1000,
        octet_count: 160_000,
    }
}

#[test]
fn sender_report_round_trip() {
    let mut buf = Vec::new();
    build_compound(
        &CompoundReport {
            ssrc: 7,
            sender_info: Some(sample_info()),
            report_block: Some(sample_block()),
            cname: "gw@example",
            bye: false,
        },
        &mut buf,
    );
    assert_eq!(buf.len() % 4, 0);
    assert_eq!(buf[1], PT_SR, "compound starts with SR");
    let parsed = parse_compound(&buf).unwrap();
    assert_eq!(parsed.sender_ssrc, Some(7));
    assert_eq!(parsed.sender_info, Some(sample_info()));
    assert_eq!(parsed.report_blocks, vec![sample_block()]);
    assert_eq!(parsed.cname.as_deref(), Some("gw@example"));
    assert!(parsed.bye_ssrcs.is_empty());
    assert_eq!(parsed.blocks_about(0xCAFE_BABE).count(), 1);
    assert_eq!(parsed.blocks_about(1).count(), 0);
}

#[test]
fn receiver_report_with_bye_round_trip_for_every_cname_length() {
    let mut buf = Vec::new();
    for len in 0..8 {
        let cname = "abcdefgh".get(..len).unwrap();
        build_compound(
            &CompoundReport {
                ssrc: 9,
                sender_info: None,
                report_block: None,
                cname,
                bye: true,
            },
            &mut buf,
        );
        assert_eq!(buf[1], PT_RR);
        assert_eq!(buf.len() % 4, 0);
        let parsed = parse_compound(&buf).unwrap();
        assert_eq!(parsed.sender_ssrc, Some(9));
        assert_eq!(parsed.sender_info, None);
        assert!(parsed.report_blocks.is_empty());
        assert_eq!(parsed.cname.as_deref(), Some(cname));
        assert_eq!(parsed.bye_ssrcs, vec![9]);
    }
}

#[test]
fn long_cname_is_truncated_on_a_char_boundary() {
    let long = "é".repeat(200); // 400 bytes
    let mut buf = Vec::new();
    build_compound(
        &CompoundReport {
            ssrc: 1,
            sender_info: None,
            report_block: None,
            cname: &long,
            bye: false,
        },
        &mut buf,
    );
    let cname = parse_compound(&buf).unwrap().cname.unwrap();
    assert_eq!(cname.len(), 254);
    assert!(cname.chars().all(|c| c == 'é'));
}

#[test]
fn cumulative_loss_is_clamped_to_24_bits() {
    let mut buf = Vec::new();
    let block = ReportBlock {
        cumulative_lost: 50_000_000,
        ..sample_block()
    };
    build_compound(
        &CompoundReport {
            ssrc: 1,
            sender_info: None,
            report_block: Some(block),
            cname: "x",
            bye: false,
        },
        &mut buf,
    );
    let parsed = parse_compound(&buf).unwrap();
    assert_eq!(parsed.report_blocks[0].cumulative_lost, 0x7F_FFFF);
}

#[test]
fn truncated_and_garbage_packets_are_rejected_without_panic() {
    let mut buf = Vec::new();
    build_compound(
        &CompoundReport {
            ssrc: 7,
            sender_info: Some(sample_info()),
            report_block: Some(sample_block()),
            cname: "gw",
            bye: true,
        },
        &mut buf,
    );
    // Every prefix must be rejected (the length fields no longer add up) or, at a packet
    // boundary, parse to fewer elements — never panic.
    for cut in 0..buf.len() {
        let _ = parse_compound(&buf[..cut]);
    }
    assert_eq!(parse_compound(&buf[..3]), Err(RtcpError::TooShort(3)));
    assert!(matches!(
        parse_compound(&buf[..buf.len() - 2]),
        Err(RtcpError::LengthOverrun { .. })
    ));
    // Deterministic pseudo-random garbage.
    let mut x = 0x1234_5678u32;
    for _ in 0..20_000 {
        let len = (x % 80) as usize;
        let mut junk = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk.push(x as u8);
        }
        if let Some(first) = junk.first_mut() {
            *first = 0x80 | (*first & 0x3F); // mostly version 2 to get past the first check
        }
        let _ = parse_compound(&junk);
    }
    // Flipping single bytes of a valid packet never panics either.
    for i in 0..buf.len() {
        for v in [0u8, 0x1F, 0x3F, 0xFF] {
            let mut bad = buf.clone();
            bad[i] = v;
            let _ = parse_compound(&bad);
        }
    }
}

#[test]
fn specific_malformations_are_named() {
    // Version 1.
    assert_eq!(
        parse_compound(&[0x41, PT_RR, 0, 1, 0, 0, 0, 1]),
        Err(RtcpError::BadVersion(1))
    );
    // RR claiming one report block but carrying none.
    assert_eq!(
        parse_compound(&[0x81, PT_RR, 0, 1, 0, 0, 0, 1]),
        Err(RtcpError::BodyTooShort {
            packet_type: PT_RR,
            count: 1
        })
    );
    // Padding bit on a packet that is not last.
    let mut two = vec![0xA0, PT_RR, 0, 1, 0, 0, 0, 4];
    two.extend_from_slice(&[0x80, PT_RR, 0, 1, 0, 0, 0, 1]);
    assert_eq!(parse_compound(&two), Err(RtcpError::MisplacedPadding));
    // SDES item longer than its packet.
    assert_eq!(
        parse_compound(&[0x81, PT_SDES, 0, 2, 0, 0, 0, 1, 1, 200, b'a', 0]),
        Err(RtcpError::BadSdes)
    );
    // Only an APP packet.
    assert_eq!(
        parse_compound(&[0x80, 204, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']),
        Err(RtcpError::NothingUseful)
    );
}

#[test]
fn unknown_packet_types_are_skipped() {
    let mut buf = Vec::new();
    build_compound(
        &CompoundReport {
            ssrc: 3,
            sender_info: None,
            report_block: Some(sample_block()),
            cname: "c",
            bye: false,
        },
        &mut buf,
    );
    // Insert an APP packet (PT 204) between RR and SDES.
    let rr_len = 8 + 24;
    let app = [0x80, 204, 0, 2, 0, 0, 0, 3, b'n', b'a', b'm', b'e'];
    buf.splice(rr_len..rr_len, app);
    let parsed = parse_compound(&buf).unwrap();
    assert_eq!(parsed.report_blocks.len(), 1);
    assert_eq!(parsed.cname.as_deref(), Some("c"));
}

#[test]
fn rtt_from_lsr_and_dlsr() {
    // Remote got our SR at NTP middle 0x0001_0000 (1.0 s) and held it 0.25 s.
    let block = ReportBlock {
        last_sr: 0x0001_0000,
        delay_since_last_sr: 0x0000_4000,
        ..sample_block()
    };
    // We receive the RR at 1.375 s: RTT = 1.375 − 1.0 − 0.25 = 0.125 s.
    let arrival = NtpTime(0x0000_0001_6000_0000);
    assert_eq!(arrival.middle_32(), 0x0001_6000);
    assert_eq!(
        block.round_trip_time(arrival),
        Some(Duration::from_millis(125))
    );
    // No SR seen yet.
    let none = ReportBlock {
        last_sr: 0,
        ..block
    };
    assert_eq!(none.round_trip_time(arrival), None);
    // DLSR larger than the elapsed time (clock trouble): no value, no panic.
    let early = NtpTime(0x0000_0001_1000_0000);
    assert_eq!(block.round_trip_time(early), None);
}

#[test]
fn report_block_echoes_last_sender_report() {
    let t0 = Instant::now();
    let sr = LastSenderReport::new(&sample_info(), t0);
    assert_eq!(sr.lsr, 0x0000_8000);
    let reception = ReceptionReport {
        ssrc: 5,
        fraction_lost: 1,
        cumulative_lost: 2,
        extended_highest_seq: 3,
        jitter: 4,
    };
    let block = ReportBlock::from_reception(&reception, Some(&sr), t0 + Duration::from_millis(500));
    assert_eq!(block.last_sr, 0x0000_8000);
    assert_eq!(block.delay_since_last_sr, 32768);
    assert_eq!(block.ssrc, 5);
    assert_eq!(block.jitter, 4);
    let without = ReportBlock::from_reception(&reception, None, t0);
    assert_eq!((without.last_sr, without.delay_since_last_sr), (0, 0));
}

#[test]
fn ntp_time_from_system_time() {
    let t = UNIX_EPOCH + Duration::from_millis(1500);
    let ntp = NtpTime::from_system_time(t);
    assert_eq!(ntp.0 >> 32, NTP_UNIX_OFFSET_SECS + 1);
    assert_eq!(ntp.0 & 0xFFFF_FFFF, 0x8000_0000);
    assert_eq!(
        NtpTime::from_system_time(UNIX_EPOCH - Duration::from_secs(1)).0 >> 32,
        NTP_UNIX_OFFSET_SECS
    );
}

#[test]
fn scheduler_randomises_between_half_and_one_and_a_half_intervals() {
    let t0 = Instant::now();
    let interval = RtcpScheduler::DEFAULT_INTERVAL;
    let mut scheduler = RtcpScheduler::new(t0, interval, 0.0);
    assert_eq!(scheduler.next_deadline(), t0 + Duration::from_millis(1250));
    assert!(!scheduler.poll(t0 + Duration::from_millis(1000), 0.5));
    let t1 = t0 + Duration::from_millis(1250);
    assert!(scheduler.poll(t1, 0.0));
    assert_eq!(scheduler.next_deadline(), t1 + Duration::from_millis(2500));
    let t2 = scheduler.next_deadline();
    assert!(scheduler.poll(t2, 1.0));
    assert_eq!(scheduler.next_deadline(), t2 + Duration::from_millis(7500));
    // Garbage randomness falls back to the nominal interval.
    let t3 = scheduler.next_deadline();
    assert!(scheduler.poll(t3, f64::NAN));
    assert_eq!(scheduler.next_deadline(), t3 + interval);
}
