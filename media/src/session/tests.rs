use super::*;
use crate::g711::ulaw_encode;

const SDP_REMOTE: &str = "127.0.0.1:40000";

fn config() -> SessionConfig {
    SessionConfig {
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        remote_rtp: SDP_REMOTE.parse().unwrap(),
        jitter: JitterConfig::default(),
        bargein: PolicyConfig::default(),
        max_queued_ms: 60_000,
        rtcp_interval: Duration::from_secs(5),
        cname: "test@127.0.0.1".into(),
        ssrc: 0x1234_5678,
        seq_base: 65_530,
        ts_base: 1000,
    }
}

fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn tone_frame(amplitude: f32) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let v = amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8000.0).sin();
            ulaw_encode(v as i16)
        })
        .collect()
}

fn header(packet: &[u8]) -> (bool, u16, u32, u32) {
    (
        packet[1] & 0x80 != 0,
        u16::from_be_bytes([packet[2], packet[3]]),
        u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    )
}

/// Runs ticks up to `until`, collecting (packet, caller audio energy, tick start sample).
fn run_until(s: &mut MediaSession, until: Instant) -> Vec<(Option<Vec<u8>>, f64, u64)> {
    let mut out = Vec::new();
    while s.next_deadline() <= until {
        let now = s.next_deadline();
        while let Some(t) = s.poll_tick(now) {
            let energy = t
                .caller_audio
                .iter()
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
                / 160.0;
            out.push((
                t.packet.map(|p| p.to_vec()),
                energy,
                t.caller_samples_before,
            ));
        }
    }
    out
}

#[test]
fn sends_one_packet_per_20ms_with_sample_clock_timestamps_and_silence_when_idle() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    let ticks = run_until(&mut s, t0 + Duration::from_millis(1000));
    assert!(ticks.len() >= 50);
    for (i, (packet, _, _)) in ticks.iter().enumerate() {
        let p = packet.as_ref().unwrap();
        let (_, seq, ts, ssrc) = header(p);
        assert_eq!(seq, 65_530u16.wrapping_add(i as u16), "sequence wraps");
        assert_eq!(ts, 1000 + 160 * i as u32);
        assert_eq!(ssrc, 0x1234_5678);
        assert_eq!(p.len(), 12 + 160);
        assert!(
            p[12..].iter().all(|b| *b == 0xFF),
            "µ-law silence when idle"
        );
    }
}

#[test]
fn inbound_audio_reaches_the_caller_path_and_the_source_is_latched() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    // NAT: the caller sends from another port than its SDP said.
    let real: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    assert_eq!(s.destination(), SDP_REMOTE.parse().unwrap());
    let mut energies = Vec::new();
    for i in 0..50u32 {
        let at = t0 + Duration::from_millis(20 * u64::from(i));
        let frame = tone_frame(8000.0);
        s.on_rtp(at, real, &rtp(i as u16, i * 160, 99, 0, i == 0, &frame));
        energies.extend(run_until(&mut s, at).into_iter().map(|t| t.1));
    }
    assert_eq!(
        s.destination(),
        real,
        "symmetric RTP answers the real source"
    );
    let voiced = energies.iter().filter(|e| **e > 1e6).count();
    assert!(
        voiced > 40,
        "caller audio flows through the jitter buffer: {voiced}"
    );
    // A packet from a third address is ignored (strict RTP) and counted.
    let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
    s.on_rtp(
        t0,
        other,
        &rtp(50, 50 * 160, 99, 0, false, &tone_frame(1.0)),
    );
    assert_eq!(s.receiver().stats().wrong_source, 1);
}

#[test]
fn garbage_rtp_is_counted_not_fatal() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    let src: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    for junk in [
        &b""[..],
        &b"\x00"[..],
        &[0xFFu8; 11][..],
        &[0x80, 0x00, 0x00][..],
    ] {
        s.on_rtp(t0, src, junk);
    }
    s.on_rtp(t0, src, &rtp(1, 0, 5, 96, false, &[1, 2, 3])); // unknown PT
    let st = s.receiver().stats();
    assert!(
        st.malformed + st.wrong_version + st.unknown_payload_type >= 5,
        "{st:?}"
    );
    assert_eq!(run_until(&mut s, t0 + Duration::from_millis(100)).len(), 6);
}

fn vad(s: &mut MediaSession, now: Instant, tag: u64, p: f32) {
    s.on_vad(
        now,
        VadResult {
            tag,
            probability: p,
            context: Default::default(),
            processed_audio: None,
        },
    );
}

/// Speech from 1.0 s of the call, in pause mode (default) and immediate mode: returns the
/// chunk index of the barge-in, the truncation report and whether a tentative pause came first.
fn speech_over_prompt(
    mode: crate::policy::BargeInMode,
) -> (u64, Vec<TruncatedChunk>, bool, MediaSession, Instant) {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.bargein.mode = mode;
    let mut s = MediaSession::new(cfg, t0).unwrap();
    s.play(Chunk {
        playback_id: "prompt".into(),
        mark: None,
        interruptible: true,
        samples: vec![4000; 8000 * 3],
    })
    .unwrap();
    // 1 s of prompt.
    let ticks = run_until(&mut s, t0 + Duration::from_millis(990));
    assert!(ticks
        .iter()
        .all(|(p, _, _)| p.as_ref().unwrap()[12..].iter().any(|b| *b != 0xFF)));
    assert!(s.poll_event().is_some(), "PlaybackStarted");
    // Speech in the caller chunks from 1.0 s on: one VAD result per 32 ms chunk.
    let mut barge = None;
    let mut tentative = false;
    for k in 0..10u64 {
        let tag = 8000 + (k + 1) * 256;
        let now = t0 + Duration::from_millis(1000 + 32 * (k + 1));
        run_until(&mut s, now);
        vad(&mut s, now, tag, 0.95);
        run_until(&mut s, now + Duration::from_millis(20));
        while let Some(ev) = s.poll_event() {
            match ev {
                MediaEvent::BargeIn { truncated, .. } => barge = Some((k, truncated)),
                MediaEvent::TentativeBargeIn { .. } => tentative = true,
                _ => {}
            }
        }
        if barge.is_some() {
            break;
        }
    }
    let (k, truncated) = barge.expect("barge-in");
    (k, truncated, tentative, s, t0)
}

#[test]
fn immediate_mode_truncates_once_speech_is_confirmed() {
    let (k, truncated, tentative, _, _) = speech_over_prompt(crate::policy::BargeInMode::Immediate);
    assert_eq!(k, 6, "7 chunks × 32 ms ≥ 200 ms of speech");
    assert!(!tentative);
    assert_eq!(truncated.len(), 1);
    assert_eq!(truncated[0].total_ms, 3000);
    assert!(
        (1200..=1300).contains(&truncated[0].played_ms),
        "{}",
        truncated[0].played_ms
    );
}

#[test]
fn pause_mode_stops_at_first_evidence_and_truncates_at_confirmation() {
    let (k, truncated, tentative, mut s, t0) =
        speech_over_prompt(crate::policy::BargeInMode::Pause);
    assert_eq!(k, 6, "confirmed at 200 ms of speech");
    assert!(tentative, "paused first");
    assert_eq!(truncated.len(), 1);
    assert_eq!(truncated[0].playback_id, "prompt");
    assert_eq!(truncated[0].total_ms, 3000);
    // Paused after two 32 ms chunks of speech: the caller heard ≈ 1.06–1.1 s.
    assert!(
        (1040..=1120).contains(&truncated[0].played_ms),
        "{}",
        truncated[0].played_ms
    );
    // Everything after the truncation is silence.
    let after = run_until(&mut s, t0 + Duration::from_millis(2000));
    assert!(after
        .iter()
        .all(|(p, _, _)| p.as_ref().unwrap()[12..].iter().all(|b| *b == 0xFF)));
    // The caller's silence then ends the turn.
    let mut ended = false;
    for k in 0..20u64 {
        let tag = 8000 + (11 + k) * 256;
        vad(&mut s, t0 + Duration::from_millis(1400 + 32 * k), tag, 0.01);
        while let Some(ev) = s.poll_event() {
            ended |= matches!(ev, MediaEvent::TurnEnded { .. });
        }
    }
    assert!(ended, "turn ended after min_silence_ms");
    let c = s.policy_counters();
    assert_eq!((c.barge_ins, c.tentative_pauses), (1, 0));
}

#[test]
fn a_cough_pauses_then_resumes_exactly_where_it_paused() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    s.play(Chunk {
        playback_id: "prompt".into(),
        mark: None,
        interruptible: true,
        samples: vec![4000; 8000 * 2],
    })
    .unwrap();
    run_until(&mut s, t0 + Duration::from_millis(990));
    // 96 ms of "speech", then silence.
    let mut events = Vec::new();
    for k in 0..12u64 {
        let now = t0 + Duration::from_millis(1000 + 32 * (k + 1));
        run_until(&mut s, now);
        vad(
            &mut s,
            now,
            8000 + (k + 1) * 256,
            if k < 3 { 0.95 } else { 0.02 },
        );
        events.extend(std::iter::from_fn(|| s.poll_event()));
    }
    let ticks = run_until(&mut s, t0 + Duration::from_secs(4));
    events.extend(std::iter::from_fn(|| s.poll_event()));
    assert!(events
        .iter()
        .any(|e| matches!(e, MediaEvent::TentativeBargeIn { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, MediaEvent::BargeInCancelled { .. })));
    assert!(!events
        .iter()
        .any(|e| matches!(e, MediaEvent::BargeIn { .. })));
    let finished = events.iter().find_map(|e| match e {
        MediaEvent::PlaybackFinished { played_ms, .. } => Some(*played_ms),
        _ => None,
    });
    assert_eq!(finished, Some(2000), "nothing lost: {events:?}");
    assert!(ticks.len() > 100);
    assert_eq!(s.policy_counters().tentative_pauses, 1);
}

#[test]
fn speech_while_the_bot_is_silent_is_not_a_barge_in() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    run_until(&mut s, t0 + Duration::from_millis(500));
    let mut events = Vec::new();
    for k in 0..10u64 {
        vad(&mut s, t0, (k + 1) * 256, 0.9);
        while let Some(ev) = s.poll_event() {
            events.push(ev);
        }
    }
    assert!(events
        .iter()
        .any(|e| matches!(e, MediaEvent::SpeechStarted { .. })));
    assert!(!events
        .iter()
        .any(|e| matches!(e, MediaEvent::BargeIn { .. })));
}

#[test]
fn hold_stops_sending_and_loses_no_audio() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    s.play(Chunk {
        playback_id: "p".into(),
        mark: None,
        interruptible: true,
        samples: vec![3000; 1600], // 200 ms
    })
    .unwrap();
    let first = run_until(&mut s, t0 + Duration::from_millis(90));
    assert_eq!(first.len(), 5);
    s.set_sending(false);
    let held = run_until(&mut s, t0 + Duration::from_millis(1000));
    assert!(
        held.iter().all(|(p, _, _)| p.is_none()),
        "nothing sent on hold"
    );
    s.set_sending(true);
    let resumed = run_until(&mut s, t0 + Duration::from_millis(2000));
    let voiced = resumed
        .iter()
        .filter(|(p, _, _)| p.as_ref().unwrap()[12..].iter().any(|b| *b != 0xFF))
        .count();
    assert_eq!(voiced, 5, "the other 100 ms of the chunk play after unhold");
}

#[test]
fn dtmf_is_one_event_per_press() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    let src: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let ts = 8000;
    for (i, end) in [false, false, false, true, true, true].iter().enumerate() {
        let seq = i as u16 + 1;
        let flags = if *end { 0x80 } else { 0 } | 10;
        let dur = (160 * (i + 1)) as u16;
        let payload = [5, flags, (dur >> 8) as u8, dur as u8];
        s.on_rtp(t0, src, &rtp(seq, ts, 7, 101, i == 0, &payload));
    }
    let digits: Vec<char> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['5']);
}

#[test]
fn rtcp_reports_are_sent_and_parsed_and_junk_is_counted() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut s = MediaSession::new(config(), t0).unwrap();
    run_until(&mut s, t0 + Duration::from_secs(1));
    let mut reports = 0;
    for ms in (0..10_000).step_by(20) {
        let now = t0 + Duration::from_millis(ms);
        if let Some(r) = s.poll_rtcp(now, wall) {
            let parsed = parse_compound(r).unwrap();
            assert_eq!(parsed.sender_ssrc, Some(0x1234_5678));
            assert!(parsed.sender_info.is_some(), "SR while sending");
            assert_eq!(parsed.cname.as_deref(), Some("test@127.0.0.1"));
            reports += 1;
        }
    }
    assert!((1..=4).contains(&reports), "about every 5 s: {reports}");
    s.on_rtcp(t0, wall, b"\x80\xc8\x00");
    assert_eq!(s.stats().rtcp_malformed, 1);
}
