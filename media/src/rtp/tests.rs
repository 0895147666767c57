use super::*;
use std::net::{IpAddr, Ipv4Addr};

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
}

fn packet(ssrc: u32, seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(pt)
        .sequence(Seq::from(seq))
        .ssrc(ssrc)
        .timestamp(ts)
        .payload(payload)
        .build()
        .unwrap()
}

fn receiver() -> RtpReceiver {
    RtpReceiver::new(RtpReceiverConfig {
        accepted_payload_types: PayloadTypeSet::from_slice(&[0, 101]),
        ..RtpReceiverConfig::default()
    })
}

fn ms(t0: Instant, millis: u64) -> Instant {
    t0 + Duration::from_millis(millis)
}

#[test]
fn in_order_packets_are_accepted_with_payload_range_and_extended_seq() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 4000);
    for i in 0..10u16 {
        let data = packet(0xABCD, 1000 + i, 160 * u32::from(i), 0, &[i as u8; 160]);
        let info = rx.on_packet(ms(t0, 20 * u64::from(i)), src, &data).unwrap();
        assert_eq!(info.seq, 1000 + i);
        assert_eq!(info.extended_seq, 65536 + 1000 + u64::from(i));
        assert_eq!(info.payload_offset, 12);
        assert_eq!(info.payload(&data), &[i as u8; 160][..]);
        assert!(!info.ssrc_changed);
    }
    let stats = rx.stats();
    assert_eq!(stats.received, 10);
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.jitter, 0);
    assert_eq!(rx.latched_source(), Some(src));
}

#[test]
fn sequence_wrap_keeps_extended_numbers_increasing() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let mut last = 0;
    for (i, seq) in [65533u16, 65534, 65535, 0, 1, 2].into_iter().enumerate() {
        let ts = (u32::MAX - 480).wrapping_add(160 * i as u32); // the timestamp wraps too
        let data = packet(7, seq, ts, 0, &[0; 160]);
        let info = rx
            .on_packet(ms(t0, 20 * i as u64), addr(1, 1), &data)
            .unwrap();
        assert!(info.extended_seq > last, "{seq}");
        last = info.extended_seq;
    }
    assert_eq!(last, 2 * 65536 + 2);
    let stats = rx.stats();
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.jitter, 0, "timestamp wrap must not look like jitter");
    let report = rx.take_reception_report().unwrap();
    assert_eq!(report.extended_highest_seq, 65536 + 2);
}

#[test]
fn strict_rtp_drops_other_sources_until_silence_and_new_ssrc() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let peer = addr(1, 4000);
    let intruder = addr(9, 5000);
    rx.on_packet(t0, peer, &packet(1, 10, 0, 0, &[0; 160]))
        .unwrap();
    // Another source with a new SSRC while the peer is active.
    let drop = rx.on_packet(ms(t0, 10), intruder, &packet(2, 500, 0, 0, &[0; 160]));
    assert_eq!(drop, Err(RtpDrop::WrongSource));
    rx.on_packet(ms(t0, 20), peer, &packet(1, 11, 160, 0, &[0; 160]))
        .unwrap();
    // Peer silent for 2.5 s, but the intruder reuses the peer's SSRC: still refused.
    let drop = rx.on_packet(ms(t0, 2520), intruder, &packet(1, 12, 320, 0, &[0; 160]));
    assert_eq!(drop, Err(RtpDrop::WrongSource));
    // Silent for 2.5 s and a new SSRC: re-latch.
    let info = rx
        .on_packet(ms(t0, 2530), intruder, &packet(2, 501, 0, 0, &[0; 160]))
        .unwrap();
    assert!(info.relatched);
    assert!(info.ssrc_changed);
    assert_eq!(rx.latched_source(), Some(intruder));
    // The old address is now the foreign one.
    let drop = rx.on_packet(ms(t0, 2540), peer, &packet(1, 13, 480, 0, &[0; 160]));
    assert_eq!(drop, Err(RtpDrop::WrongSource));
    let stats = rx.stats();
    assert_eq!(stats.wrong_source, 3);
    assert_eq!(stats.relatches, 1);
}

#[test]
fn latching_waits_for_a_valid_packet() {
    let mut rx = receiver();
    let t0 = Instant::now();
    // Unknown payload type from the first source: no latch.
    let drop = rx.on_packet(t0, addr(3, 3), &packet(1, 1, 0, 18, &[0; 20]));
    assert_eq!(drop, Err(RtpDrop::UnknownPayloadType(18)));
    assert_eq!(rx.latched_source(), None);
    rx.on_packet(t0, addr(4, 4), &packet(1, 2, 0, 0, &[0; 20]))
        .unwrap();
    assert_eq!(rx.latched_source(), Some(addr(4, 4)));
}

#[test]
fn bad_datagrams_are_classified_and_counted() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    assert_eq!(rx.on_packet(t0, src, &[]), Err(RtpDrop::Malformed));
    assert_eq!(
        rx.on_packet(t0, src, &[0x80, 0, 1]),
        Err(RtpDrop::Malformed)
    );
    let mut v1 = packet(1, 1, 0, 0, &[0; 10]);
    v1[0] = 0x40;
    assert_eq!(rx.on_packet(t0, src, &v1), Err(RtpDrop::WrongVersion(1)));
    // CSRC count 15 but no CSRC list.
    let mut truncated = packet(1, 1, 0, 0, &[0; 10]);
    truncated[0] |= 0x0F;
    assert_eq!(rx.on_packet(t0, src, &truncated), Err(RtpDrop::Malformed));
    // Padding length larger than the packet.
    let mut padded = packet(1, 1, 0, 0, &[0; 10]);
    padded[0] |= 0x20;
    if let Some(last) = padded.last_mut() {
        *last = 200;
    }
    assert_eq!(rx.on_packet(t0, src, &padded), Err(RtpDrop::Malformed));
    // An RTCP receiver report (PT 201) on the RTP port.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 9];
    assert_eq!(rx.on_packet(t0, src, &rr), Err(RtpDrop::Rtcp));
    assert_eq!(
        rx.on_packet(t0, src, &packet(1, 1, 0, 96, &[0; 10])),
        Err(RtpDrop::UnknownPayloadType(96))
    );
    let stats = rx.stats();
    assert_eq!(stats.malformed, 4);
    assert_eq!(stats.wrong_version, 1);
    assert_eq!(stats.rtcp_on_rtp_port, 1);
    assert_eq!(stats.unknown_payload_type, 1);
    assert_eq!(stats.received, 0);
    assert_eq!(rx.latched_source(), None);
}

#[test]
fn payload_range_skips_csrcs_extension_and_padding() {
    let ext = [1u8, 2, 3, 4];
    let data = RtpPacketBuilder::new()
        .payload_type(0)
        .sequence(Seq::from(5))
        .ssrc(3)
        .add_csrc(77)
        .extension(0xBEDE, &ext)
        .padded(rtp_rs::Pad::round_to(4))
        .payload(&[9, 9, 9])
        .build()
        .unwrap();
    let mut rx = receiver();
    let info = rx.on_packet(Instant::now(), addr(1, 1), &data).unwrap();
    assert_eq!(info.payload_offset, 12 + 4 + 4 + 4);
    assert_eq!(info.payload(&data), &[9, 9, 9]);
    assert_eq!(
        info.payload(&data[..3]),
        &[] as &[u8],
        "wrong datagram gives empty"
    );
}

#[test]
fn duplicates_are_dropped_and_reordered_packets_accepted() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    let arrivals = [
        (100u16, true),
        (101, true),
        (103, true),
        (102, true),
        (103, false),
        (101, false),
        (104, true),
    ];
    for (seq, accepted) in arrivals {
        let r = rx.on_packet(t0, src, &packet(1, seq, u32::from(seq) * 160, 0, &[0; 4]));
        if accepted {
            assert_eq!(r.unwrap().extended_seq, 65536 + u64::from(seq));
        } else {
            assert_eq!(r, Err(RtpDrop::Duplicate), "{seq}");
        }
    }
    let stats = rx.stats();
    assert_eq!(stats.received, 5);
    assert_eq!(stats.duplicates, 2);
    assert_eq!(stats.lost, 0);
}

#[test]
fn loss_is_counted_and_reported_per_interval() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    for seq in 0..100u16 {
        if (40..45).contains(&seq) {
            continue;
        }
        let t = ms(t0, 20 * u64::from(seq));
        rx.on_packet(t, src, &packet(1, seq, u32::from(seq) * 160, 0, &[0; 4]))
            .unwrap();
    }
    assert_eq!(rx.stats().lost, 5);
    let report = rx.take_reception_report().unwrap();
    assert_eq!(report.ssrc, 1);
    assert_eq!(report.cumulative_lost, 5);
    // 5 lost of 99 expected (the first packet is probation and not counted).
    assert_eq!(report.fraction_lost, (5 * 256 / 99) as u8);
    assert_eq!(report.extended_highest_seq, 99);
    // No new packets: the next interval has no loss.
    assert_eq!(rx.take_reception_report().unwrap().fraction_lost, 0);
}

#[test]
fn jitter_follows_rfc3550_estimate() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    // Every other packet arrives 10 ms late: |D| = 80 timestamp units each time.
    for seq in 0..400u16 {
        let late = if seq % 2 == 1 { 10 } else { 0 };
        let t = ms(t0, 20 * u64::from(seq) + late);
        rx.on_packet(t, src, &packet(1, seq, u32::from(seq) * 160, 0, &[0; 4]))
            .unwrap();
    }
    let stats = rx.stats();
    assert!((78..=80).contains(&stats.jitter), "{}", stats.jitter);
    assert!((stats.jitter_ms - 10.0).abs() < 0.3, "{}", stats.jitter_ms);
}

#[test]
fn ssrc_change_resets_sequence_state_and_drops_stragglers() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    for seq in 0..5u16 {
        rx.on_packet(t0, src, &packet(1, seq, 0, 0, &[0; 4]))
            .unwrap();
    }
    // New SSRC with an unrelated sequence number: accepted, reported as a change.
    let info = rx
        .on_packet(ms(t0, 100), src, &packet(2, 40000, 9, 0, &[0; 4]))
        .unwrap();
    assert!(info.ssrc_changed);
    assert_eq!(info.extended_seq, 65536 + 40000);
    assert_eq!(rx.current_ssrc(), Some(2));
    // A late packet of the old stream must not flip back.
    let drop = rx.on_packet(ms(t0, 110), src, &packet(1, 5, 0, 0, &[0; 4]));
    assert_eq!(drop, Err(RtpDrop::StaleSsrc));
    let info = rx
        .on_packet(ms(t0, 120), src, &packet(2, 40001, 169, 0, &[0; 4]))
        .unwrap();
    assert!(!info.ssrc_changed);
    let stats = rx.stats();
    assert_eq!(stats.ssrc_changes, 1);
    assert_eq!(stats.stale_ssrc, 1);
    assert_eq!(stats.lost, 0);
}

#[test]
fn large_sequence_jump_resyncs_after_two_sequential_packets() {
    let mut rx = receiver();
    let t0 = Instant::now();
    let src = addr(1, 1);
    for seq in 0..10u16 {
        rx.on_packet(t0, src, &packet(1, seq, 0, 0, &[0; 4]))
            .unwrap();
    }
    let jump = rx.on_packet(t0, src, &packet(1, 30000, 0, 0, &[0; 4]));
    assert_eq!(jump, Err(RtpDrop::SequenceJump));
    let info = rx
        .on_packet(t0, src, &packet(1, 30001, 0, 0, &[0; 4]))
        .unwrap();
    assert_eq!(info.extended_seq, 65536 + 30001);
    rx.on_packet(t0, src, &packet(1, 30002, 0, 0, &[0; 4]))
        .unwrap();
    let stats = rx.stats();
    assert_eq!(stats.sequence_jumps, 1);
    assert_eq!(stats.lost, 0, "statistics restart at the new sequence");
    // A single stray jump (not followed in sequence) is dropped and forgotten.
    assert_eq!(
        rx.on_packet(t0, src, &packet(1, 5000, 0, 0, &[0; 4])),
        Err(RtpDrop::SequenceJump)
    );
    rx.on_packet(t0, src, &packet(1, 30003, 0, 0, &[0; 4]))
        .unwrap();
}

#[test]
fn sender_builds_parsable_packets_and_advances_clock() {
    let mut tx = RtpSender::new(0x1234_5678, 65535, u32::MAX - 100, 0).unwrap();
    let mut buf = Vec::with_capacity(512);
    let capacity_before = buf.capacity();
    tx.build_into(&[0xFF; 160], 160, true, &mut buf);
    let first = RtpReader::new(&buf).unwrap();
    assert_eq!(first.ssrc(), 0x1234_5678);
    assert_eq!(u16::from(first.sequence_number()), 65535);
    assert_eq!(first.timestamp(), u32::MAX - 100);
    assert!(first.mark());
    assert_eq!(first.payload(), &[0xFF; 160][..]);
    tx.build_into(&[0xFF; 80], 80, false, &mut buf);
    let second = RtpReader::new(&buf).unwrap();
    assert_eq!(u16::from(second.sequence_number()), 0);
    assert_eq!(second.timestamp(), 59); // wrapped: MAX - 100 + 160
    assert!(!second.mark());
    assert_eq!(buf.len(), 12 + 80);
    assert_eq!(buf.capacity(), capacity_before, "buffer reused");
    assert_eq!(tx.packets_sent(), 2);
    assert_eq!(tx.octets_sent(), 240);
    assert_eq!(tx.next_timestamp(), 59 + 80);
    tx.skip_samples(160);
    assert_eq!(tx.next_timestamp(), 59 + 240);
    assert_eq!(tx.next_seq(), 1);
}

#[test]
fn sender_rejects_invalid_payload_type() {
    assert_eq!(
        RtpSender::new(1, 1, 1, 128).err(),
        Some(RtpSenderError::InvalidPayloadType(128))
    );
    let mut tx = RtpSender::new(1, 1, 1, 8).unwrap();
    assert!(tx.set_payload_type(200).is_err());
    tx.set_payload_type(101).unwrap();
    assert_eq!(tx.payload_type(), 101);
}

#[test]
fn sender_and_receiver_agree() {
    let mut tx = RtpSender::new(99, 1, 1000, 0).unwrap();
    let mut rx = receiver();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    for i in 0..50u64 {
        tx.build_into(&[0x55; 160], 160, i == 0, &mut buf);
        let info = rx.on_packet(ms(t0, 20 * i), addr(1, 1), &buf).unwrap();
        assert_eq!(info.ssrc, 99);
        assert_eq!(info.timestamp, 1000 + 160 * i as u32);
        assert_eq!(info.marker, i == 0);
    }
    assert_eq!(rx.stats().received, 50);
    assert_eq!(rx.stats().lost, 0);
}

#[test]
fn payload_type_set_ignores_out_of_range_values() {
    let set = PayloadTypeSet::from_slice(&[0, 127, 200]);
    assert!(set.contains(0));
    assert!(set.contains(127));
    assert!(!set.contains(200));
    assert!(!set.contains(8));
}
