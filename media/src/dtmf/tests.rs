use super::*;

fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
    let flags = if end { 0x80 | 10 } else { 10 };
    let [hi, lo] = duration.to_be_bytes();
    [event, flags, hi, lo]
}

struct Clock(Instant);

impl Clock {
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// Sends a full press as a sender does: 3 start packets with marker, updates every 50 ms,
/// 3 end packets. Returns every event the decoder produced.
fn press(
    decoder: &mut DtmfDecoder,
    clock: &Clock,
    start_ms: u64,
    ts: u32,
    event: u8,
    duration: u16,
    ends_delivered: usize,
) -> Vec<DtmfEvent> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.extend(decoder.on_packet(clock.at(start_ms), ts, true, &payload(event, false, 0)));
    }
    let mut elapsed = 400u16;
    while elapsed < duration {
        let t = clock.at(start_ms + u64::from(elapsed) / 8);
        out.extend(decoder.on_packet(t, ts, false, &payload(event, false, elapsed)));
        elapsed += 400;
    }
    for _ in 0..ends_delivered {
        let t = clock.at(start_ms + u64::from(duration) / 8);
        out.extend(decoder.on_packet(t, ts, false, &payload(event, true, duration)));
    }
    out
}

#[test]
fn normal_press_with_three_end_packets_gives_one_event() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    let events = press(&mut decoder, &clock, 0, 1000, 5, 1600, 3);
    assert_eq!(
        events,
        vec![DtmfEvent {
            digit: '5',
            duration_ms: 200
        }]
    );
    assert_eq!(decoder.on_timeout(clock.at(10_000)), None);
    assert_eq!(decoder.next_deadline(), None);
    let stats = decoder.stats();
    assert_eq!(stats.events, 1);
    assert_eq!(stats.ended_without_end_packet, 0);
}

#[test]
fn press_with_lost_end_packets_is_reported_when_the_next_press_starts() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    assert!(press(&mut decoder, &clock, 0, 1000, 1, 1600, 0).is_empty());
    let events = press(&mut decoder, &clock, 230, 3000, 2, 1200, 3);
    assert_eq!(
        events,
        vec![
            DtmfEvent {
                digit: '1',
                duration_ms: 150 // the largest duration seen: the 1200 update
            },
            DtmfEvent {
                digit: '2',
                duration_ms: 150
            }
        ]
    );
    assert_eq!(decoder.stats().ended_without_end_packet, 1);
}

#[test]
fn press_with_lost_end_packets_is_reported_by_timeout() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    assert!(press(&mut decoder, &clock, 0, 1000, 11, 2000, 0).is_empty());
    // Last update was at 1600 / 8 = 200 ms.
    let deadline = decoder.next_deadline().unwrap();
    assert_eq!(deadline, clock.at(200) + DtmfDecoder::END_TIMEOUT);
    assert_eq!(decoder.on_timeout(clock.at(300)), None);
    assert_eq!(
        decoder.on_timeout(deadline),
        Some(DtmfEvent {
            digit: '#',
            duration_ms: 200
        })
    );
    assert_eq!(decoder.on_timeout(clock.at(5000)), None);
    // Its end packets arriving very late do not report it again.
    assert_eq!(
        decoder.on_packet(clock.at(600), 1000, false, &payload(11, true, 2000)),
        None
    );
    assert_eq!(decoder.stats().events, 1);
}

#[test]
fn same_digit_twice_gives_two_events() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    let mut events = press(&mut decoder, &clock, 0, 8000, 9, 800, 3);
    events.extend(press(&mut decoder, &clock, 150, 8000 + 1200, 9, 800, 3));
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.digit == '9' && e.duration_ms == 100));
}

#[test]
fn garbage_is_ignored_and_counted() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    let t = clock.at(0);
    assert_eq!(decoder.on_packet(t, 1, true, &[]), None);
    assert_eq!(decoder.on_packet(t, 1, true, &[1, 2, 3]), None);
    assert_eq!(decoder.on_packet(t, 1, true, &payload(16, true, 800)), None);
    assert_eq!(decoder.on_packet(t, 1, true, &payload(255, false, 0)), None);
    let stats = decoder.stats();
    assert_eq!(stats.bad_payloads, 2);
    assert_eq!(stats.unsupported_events, 2);
    assert_eq!(decoder.next_deadline(), None, "garbage starts no press");
    // A valid press afterwards works; trailing bytes after the 4-byte event are tolerated.
    let mut long = payload(0, true, 800).to_vec();
    long.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        decoder.on_packet(t, 5, true, &long),
        Some(DtmfEvent {
            digit: '0',
            duration_ms: 100
        })
    );
}

#[test]
fn stale_packets_of_a_previous_press_do_not_create_events() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    assert_eq!(press(&mut decoder, &clock, 0, 1000, 3, 800, 3).len(), 1);
    assert!(press(&mut decoder, &clock, 200, 4000, 4, 800, 0).is_empty());
    // A delayed update of the first press (older timestamp).
    assert_eq!(
        decoder.on_packet(clock.at(310), 1000, false, &payload(3, false, 400)),
        None
    );
    assert_eq!(decoder.stats().stale_packets, 1);
    // The second press still completes exactly once.
    let end = payload(4, true, 800);
    assert!(decoder
        .on_packet(clock.at(320), 4000, false, &end)
        .is_some());
    assert!(decoder
        .on_packet(clock.at(320), 4000, false, &end)
        .is_none());
}

#[test]
fn lone_end_packet_after_an_unfinished_press_is_reported_by_its_redundant_copy() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    assert!(press(&mut decoder, &clock, 0, 1000, 7, 800, 0).is_empty());
    let end = payload(8, true, 640);
    // First end copy of '8' reports the unfinished '7'.
    let first = decoder.on_packet(clock.at(300), 5000, false, &end);
    assert_eq!(first.map(|e| e.digit), Some('7'));
    // The second copy reports '8'.
    let second = decoder.on_packet(clock.at(300), 5000, false, &end);
    assert_eq!(
        second,
        Some(DtmfEvent {
            digit: '8',
            duration_ms: 80
        })
    );
    assert_eq!(decoder.on_packet(clock.at(300), 5000, false, &end), None);
}

#[test]
fn long_event_segments_merge_into_one_press() {
    let clock = Clock(Instant::now());
    let mut decoder = DtmfDecoder::default();
    let t = clock.at(0);
    assert_eq!(decoder.on_packet(t, 100, true, &payload(6, false, 0)), None);
    assert_eq!(
        decoder.on_packet(t, 100, false, &payload(6, false, 0xFFFF)),
        None
    );
    // RFC 4733 §2.5.1.3: next segment at timestamp + 0xFFFF, no marker.
    let next_ts = 100 + 0xFFFF;
    assert_eq!(
        decoder.on_packet(t, next_ts, false, &payload(6, false, 800)),
        None
    );
    let event = decoder.on_packet(t, next_ts, false, &payload(6, true, 1600));
    assert_eq!(
        event,
        Some(DtmfEvent {
            digit: '6',
            duration_ms: (0xFFFF + 1600) * 1000 / 8000
        })
    );
    assert_eq!(decoder.stats().events, 1);
}

#[test]
fn every_event_code_maps_to_its_digit() {
    let digits: String = (0..16).map(digit_of).collect();
    assert_eq!(digits, "0123456789*#ABCD");
}
