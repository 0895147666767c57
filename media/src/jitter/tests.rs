//! Scripted arrival patterns in virtual time. Pops happen every 20 ms at `POP_PHASE_US`
//! past the 20 ms grid; packets arrive at the times each test chooses.

use super::*;

const POP_PHASE_US: u64 = 10_000;
const FRAME_US: u64 = 20_000;

#[derive(Clone, Copy, Debug)]
struct Packet {
    at_us: u64,
    ts: u32,
    ssrc: u32,
    marker: bool,
    len: usize,
}

/// `count` packets of `len` samples, sent every `len / 8` ms scaled by `clock_scale`
/// (> 1: sender clock slow), arriving `offset_us` after their send time.
fn stream(count: usize, len: usize, first_ts: u32, ssrc: u32, clock_scale: f64) -> Vec<Packet> {
    (0..count)
        .map(|k| {
            let sent_us = (k * len) as f64 * 125.0 * clock_scale;
            Packet {
                at_us: sent_us as u64 + 5_000,
                ts: first_ts.wrapping_add((k * len) as u32),
                ssrc,
                marker: k == 0,
                len,
            }
        })
        .collect()
}

type Signal = fn(u32, u32) -> i16;

/// Sawtooth of period 4000: every sample is the previous + 1, so splicing errors show.
fn ramp(_ssrc: u32, ts: u32) -> i16 {
    (ts % 4000) as i16
}

/// Voiced vowel-like signal: 125 Hz with harmonics, RMS ≈ 4800.
fn voiced(_ssrc: u32, ts: u32) -> i16 {
    let w = 2.0 * std::f64::consts::PI * 125.0 * f64::from(ts % 64) / 8000.0;
    (6000.0 * w.sin() + 3000.0 * (2.0 * w).sin() + 1500.0 * (3.0 * w).sin()) as i16
}

struct Run {
    jb: JitterBuffer,
    kinds: Vec<FrameKind>,
    frames: Vec<[i16; FRAME_SAMPLES]>,
    stats: Vec<JitterStats>,
    shifts: Vec<i64>,
    outcomes: Vec<PushOutcome>,
}

fn simulate(config: JitterConfig, packets: &[Packet], pops: usize, signal: Signal) -> Run {
    let mut packets = packets.to_vec();
    packets.sort_by_key(|p| p.at_us);
    let t0 = Instant::now();
    let at = |us: u64| t0 + Duration::from_micros(us);
    let mut run = Run {
        jb: JitterBuffer::new(config).unwrap(),
        kinds: Vec::with_capacity(pops),
        frames: Vec::with_capacity(pops),
        stats: Vec::with_capacity(pops),
        shifts: Vec::with_capacity(pops),
        outcomes: Vec::with_capacity(packets.len()),
    };
    let jb = &mut run.jb;
    let mut next = packets.iter().peekable();
    let mut pcm = Vec::new();
    for j in 0..pops as u64 {
        let pop_us = j * FRAME_US + POP_PHASE_US;
        while let Some(p) = next.next_if(|p| p.at_us <= pop_us) {
            pcm.clear();
            pcm.extend((0..p.len as u32).map(|i| signal(p.ssrc, p.ts.wrapping_add(i))));
            run.outcomes
                .push(jb.push(at(p.at_us), p.ts, p.ssrc, p.marker, &pcm));
        }
        let mut out = [0i16; FRAME_SAMPLES];
        run.kinds.push(jb.pop(at(pop_us), &mut out));
        run.frames.push(out);
        run.stats.push(jb.stats());
        run.shifts.push(jb.last_pop_shift());
    }
    run
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

fn count<T: PartialEq>(items: &[T], wanted: T) -> usize {
    items.iter().filter(|&k| *k == wanted).count()
}

/// Normal frames containing a discontinuity of the ramp (a break at a frame boundary
/// belongs to the later frame). The first Normal frame after a non-Normal one is not
/// checked (it is cross-faded on purpose).
fn ramp_breaks(run: &Run) -> usize {
    let mut broken_frames = 0;
    let mut previous: Option<i16> = None;
    for (kind, frame) in run.kinds.iter().zip(&run.frames) {
        if *kind != FrameKind::Normal {
            previous = None;
            continue;
        }
        if let Some(p) = previous {
            let mut expected = p;
            let mut broken = false;
            for &s in frame {
                broken |= s != (expected + 1) % 4000;
                expected = s;
            }
            broken_frames += usize::from(broken);
        }
        previous = frame.last().copied();
    }
    broken_frames
}

fn config(min: u32, start: u32, max: u32) -> JitterConfig {
    JitterConfig {
        min_delay_ms: min,
        max_delay_ms: max,
        start_delay_ms: start,
        frame_samples: FRAME_SAMPLES,
    }
}

/// Deterministic xorshift for loss and jitter patterns.
struct Rng(u64);

impl Rng {
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn before_the_first_packet_output_is_silence() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let mut out = [7i16; FRAME_SAMPLES];
    assert_eq!(jb.pop(Instant::now(), &mut out), FrameKind::Silence);
    assert!(out.iter().all(|&s| s == 0));
    assert_eq!(jb.stats().frames_silence, 1);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad_frame = JitterConfig {
        frame_samples: 80,
        ..JitterConfig::default()
    };
    assert_eq!(
        JitterBuffer::new(bad_frame).err(),
        Some(JitterConfigError::FrameSamples(80))
    );
    assert!(JitterBuffer::new(config(60, 40, 200)).is_err());
    assert!(JitterBuffer::new(config(20, 300, 200)).is_err());
    assert!(JitterBuffer::new(config(20, 40, 5000)).is_err());
}

#[test]
fn steady_in_order_stream_plays_exactly_and_settles_at_min_delay() {
    let packets = stream(500, 160, 1234, 1, 1.0);
    let run = simulate(JitterConfig::default(), &packets, 500, ramp);
    let stats = run.jb.stats();
    assert_eq!(stats.frames_concealed, 0);
    assert_eq!(stats.late, 0);
    // Start delay 40 ms: two frames of silence, then audio only.
    assert_eq!(count(&run.kinds, FrameKind::Silence), 2);
    assert_eq!(
        stats.accelerated, 1,
        "40 ms start delay shrinks once to 20 ms"
    );
    assert_eq!(stats.current_delay_ms, 20);
    assert_eq!(stats.target_delay_ms, 20);
    assert_eq!(stats.jitter_ms, 0);
    // The ramp is continuous everywhere except across the one dropped frame.
    assert!(ramp_breaks(&run) <= 1, "{}", ramp_breaks(&run));
    assert!(run.outcomes.iter().all(|o| *o == PushOutcome::Accepted));
    // The dropped frame is reported as a 160-sample jump of the timeline (the echo
    // canceller follows it); every other frame advanced exactly 20 ms.
    let jumps: Vec<i64> = run.shifts.iter().copied().filter(|&s| s != 0).collect();
    assert_eq!(jumps, vec![160], "{:?}", run.shifts);
}

#[test]
fn ten_and_thirty_ms_packets_are_split_and_merged_exactly() {
    for len in [80usize, 240, 400] {
        let packets = stream(300 * 160 / len, len, 99, 1, 1.0);
        let run = simulate(config(20, 20, 200), &packets, 290, ramp);
        let stats = run.jb.stats();
        assert_eq!(stats.frames_concealed, 0, "ptime {len}");
        assert_eq!(stats.accelerated, 0, "ptime {len}");
        assert_eq!(ramp_breaks(&run), 0, "ptime {len}");
        assert!(count(&run.kinds, FrameKind::Normal) >= 285, "ptime {len}");
    }
}

#[test]
fn random_loss_is_concealed_with_audio_not_silence() {
    let mut rng = Rng(7);
    let mut packets = stream(1500, 160, 0, 1, 1.0);
    let before = packets.len();
    packets.retain(|_| rng.next_unit() >= 0.05);
    let lost = before - packets.len();
    let run = simulate(JitterConfig::default(), &packets, 1500, voiced);
    let stats = run.jb.stats();
    // Every lost frame is concealed once; nothing is added on top.
    let concealed = count(&run.kinds, FrameKind::Concealed);
    assert!(
        concealed >= lost - 2 && concealed <= lost + 2,
        "{concealed} vs {lost}"
    );
    // Concealment right after a loss carries the voice.
    for (i, kind) in run.kinds.iter().enumerate().skip(1) {
        if *kind == FrameKind::Concealed && run.kinds[i - 1] == FrameKind::Normal {
            assert!(
                rms(&run.frames[i]) > 2000.0,
                "frame {i}: {}",
                rms(&run.frames[i])
            );
        }
    }
    // Loss alone does not inflate the delay.
    assert!(stats.current_delay_ms <= 40, "{stats:?}");
    assert_eq!(stats.late, 0);
}

#[test]
fn burst_loss_fades_to_silence_and_resumes_at_the_same_delay() {
    let mut packets = stream(600, 160, 5000, 1, 1.0);
    packets.retain(|p| !(100..115).contains(&((p.ts - 5000) / 160)));
    let run = simulate(JitterConfig::default(), &packets, 600, voiced);
    let gap_start = run
        .kinds
        .iter()
        .position(|&k| k == FrameKind::Concealed)
        .unwrap();
    let gap: Vec<FrameKind> = run.kinds[gap_start..gap_start + 15].to_vec();
    // 60 ms of audible concealment (3 frames, the 4th reaches zero), then silence.
    // A 40 ms delay may be re-anchored at the 20 ms target during the silence, which
    // plays the next talkspurt one frame earlier.
    assert_eq!(count(&gap[..3], FrameKind::Concealed), 3, "{gap:?}");
    let silent = count(&gap[3..], FrameKind::Silence);
    assert!((11..=12).contains(&silent), "{gap:?}");
    assert!(run.kinds[gap_start + 3 + silent..]
        .iter()
        .all(|&k| k == FrameKind::Normal));
    assert!(rms(&run.frames[gap_start]) > 3000.0);
    let stats = run.jb.stats();
    assert!(stats.current_delay_ms <= 40, "{stats:?}");
    assert_eq!(stats.late, 0);
}

#[test]
fn reordering_within_the_delay_is_not_concealed() {
    // Swap every 10th packet with the next one (reorder by 1) on the default config.
    let mut packets = stream(800, 160, 0, 1, 1.0);
    for k in (10..790).step_by(10) {
        packets[k].at_us += 21_000;
    }
    let run = simulate(JitterConfig::default(), &packets, 800, ramp);
    assert_eq!(run.jb.stats().frames_concealed, 0);
    assert_eq!(run.jb.stats().late, 0);
    assert!(ramp_breaks(&run) <= 1);

    // Reorder by up to 3 packets with a delay that covers it.
    let mut packets = stream(800, 160, 0, 1, 1.0);
    for (i, k) in (10..790).step_by(10).enumerate() {
        packets[k].at_us += 20_000 * (1 + i as u64 % 3) + 1_000;
    }
    let run = simulate(config(80, 80, 200), &packets, 800, ramp);
    assert_eq!(run.jb.stats().frames_concealed, 0);
    assert_eq!(run.jb.stats().late, 0);
    assert_eq!(ramp_breaks(&run), 0);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let single = stream(300, 160, 0, 1, 1.0);
    let mut doubled = single.clone();
    doubled.extend(single.iter().map(|p| Packet {
        at_us: p.at_us + 3_000,
        ..*p
    }));
    let a = simulate(JitterConfig::default(), &single, 300, ramp);
    let b = simulate(JitterConfig::default(), &doubled, 300, ramp);
    assert!(a.frames == b.frames, "duplicates changed the output");
    assert_eq!(b.jb.stats().duplicates, 300);
    assert_eq!(count(&b.outcomes, PushOutcome::Duplicate), 300);
}

#[test]
fn late_packets_are_dropped_and_counted() {
    let mut packets = stream(300, 160, 0, 1, 1.0);
    packets[100].at_us += 200_000;
    let run = simulate(JitterConfig::default(), &packets, 300, voiced);
    let stats = run.jb.stats();
    assert_eq!(stats.late, 1);
    assert_eq!(count(&run.outcomes, PushOutcome::Late), 1);
    assert_eq!(stats.frames_concealed, 1);
}

#[test]
fn jitter_burst_grows_the_delay_fast_and_shrinks_it_slowly() {
    // 5 s steady, 4 s where packets are held up to 120 ms and released in bursts, then
    // 20 s steady.
    let mut packets = stream(1450, 160, 0, 1, 1.0);
    let mut rng = Rng(3);
    for p in packets.iter_mut().skip(250).take(200) {
        let hold = (rng.next_unit() * 120_000.0) as u64;
        p.at_us += hold;
    }
    let run = simulate(JitterConfig::default(), &packets, 1450, voiced);
    let during = run.stats[440];
    assert!(during.target_delay_ms >= 80, "{during:?}");
    assert!(during.current_delay_ms >= 60, "{during:?}");
    // Shrinking: at most one dropped frame per 500 ms.
    for window in run.stats.windows(25) {
        let drops = window[24].accelerated - window[0].accelerated;
        assert!(drops <= 1);
    }
    // One second after the burst the delay is still up…
    assert!(
        run.stats[500].current_delay_ms >= 40,
        "{:?}",
        run.stats[500]
    );
    // …and 10 s later it is back near the minimum.
    let end = run.jb.stats();
    assert!(end.current_delay_ms <= 40, "{end:?}");
    assert!(end.target_delay_ms <= 40, "{end:?}");
}

#[test]
fn clock_skew_of_half_a_percent_stays_bounded_for_ten_minutes() {
    for scale in [0.995, 1.005] {
        let frames = 30_000;
        let packets = stream(frames + 200, 160, 77, 1, scale);
        let run = simulate(JitterConfig::default(), &packets, frames, voiced);
        let max_delay = run.stats[250..].iter().map(|s| s.current_delay_ms).max();
        assert!(max_delay.unwrap() <= 100, "scale {scale}: {max_delay:?}");
        let stats = run.jb.stats();
        // 0.5 % of 10 min = 3 s = 150 frames to drop (fast) or insert (slow).
        if scale < 1.0 {
            assert!((140..=170).contains(&stats.accelerated), "{stats:?}");
        } else {
            assert!((140..=170).contains(&stats.expanded), "{stats:?}");
            assert!(stats.frames_concealed <= 320, "{stats:?}");
        }
        assert_eq!(stats.frames_silence, 2, "scale {scale}: {stats:?}");
        assert_eq!(stats.late, 0);
    }
}

#[test]
fn ssrc_change_resyncs_to_the_new_stream() {
    let mut packets = stream(200, 160, 1000, 1, 1.0);
    let mut second = stream(200, 160, 3_000_000_000, 2, 1.0);
    for p in &mut second {
        p.at_us += 200 * 20_000;
    }
    packets.extend(second);
    let run = simulate(JitterConfig::default(), &packets, 400, ramp);
    let stats = run.jb.stats();
    assert_eq!(stats.resyncs, 1);
    assert_eq!(count(&run.outcomes, PushOutcome::Resynced), 1);
    // The old audio fades (concealment), then the new stream plays continuously.
    assert!(stats.frames_concealed <= 3, "{stats:?}");
    let resumed = run.kinds[200..]
        .iter()
        .position(|&k| k == FrameKind::Normal)
        .unwrap();
    assert!(resumed <= 3, "{resumed}");
    assert!(run.kinds[210..].iter().all(|&k| k == FrameKind::Normal));
    // The old ramp was near 1000 at the switch, the new one starts at 0.
    assert_eq!(3_000_000_000u32 % 4000, 0);
    assert!(run.frames[205][0] < 1000, "{}", run.frames[205][0]);
    // Continuous apart from one shrink (start delay → target) in each stream.
    assert!(ramp_breaks(&run) <= 2, "{}", ramp_breaks(&run));
}

#[test]
fn timestamp_jump_resyncs_and_keeps_the_estimate() {
    for (jump, marker) in [
        (8000 * 30, false),
        (8000 * 30, true),
        (0u32.wrapping_sub(8000 * 5), false),
    ] {
        let mut packets = stream(400, 160, 0, 1, 1.0);
        for p in packets.iter_mut().skip(200) {
            p.ts = p.ts.wrapping_add(jump);
        }
        packets[200].marker = marker;
        let run = simulate(JitterConfig::default(), &packets, 400, ramp);
        let stats = run.jb.stats();
        assert_eq!(stats.resyncs, 1, "jump {jump} marker {marker}");
        // A backward jump costs one packet: it waits for a second one to confirm it.
        let backward = jump > u32::MAX / 2;
        assert_eq!(stats.late, u64::from(backward));
        assert!(run.kinds[203..].iter().all(|&k| k == FrameKind::Normal));
        // The adapted 20 ms target and the zero jitter estimate carry over.
        assert_eq!(run.stats[210].target_delay_ms, 20, "jump {jump}");
        assert_eq!(stats.jitter_ms, 0);
        assert!(stats.current_delay_ms <= 20);
    }
}

#[test]
fn silence_suppression_gap_is_bridged_and_the_next_talkspurt_placed_at_target() {
    // 2 s of audio, the sender stops for 600 ms (timestamps keep running), then resumes
    // with the marker bit.
    let mut packets = stream(300, 160, 0, 1, 1.0);
    packets.retain(|p| !(100..130).contains(&(p.ts / 160)));
    if let Some(p) = packets.iter_mut().find(|p| p.ts / 160 == 130) {
        p.marker = true;
    }
    let run = simulate(JitterConfig::default(), &packets, 300, ramp);
    let stats = run.jb.stats();
    assert_eq!(stats.resyncs, 0);
    assert!(stats.current_delay_ms <= 40, "{stats:?}");
    assert!(run.kinds[140..].iter().all(|&k| k == FrameKind::Normal));
}

#[test]
fn overflow_drops_the_oldest_audio_and_memory_stays_bounded() {
    // The network holds 1 s of packets and delivers them at once.
    let mut packets = stream(400, 160, 0, 1, 1.0);
    for p in packets.iter_mut().skip(100).take(50) {
        p.at_us = 150 * 20_000;
    }
    let run = simulate(JitterConfig::default(), &packets, 400, voiced);
    let stats = run.jb.stats();
    assert!(stats.overflow_drops > 0, "{stats:?}");
    let peak = run.stats.iter().map(|s| s.current_delay_ms).max().unwrap();
    let capacity_ms = (200 / 10 + MAX_PACKET_BLOCKS as u32 + 2) * 10;
    assert!(peak <= capacity_ms, "{peak}");
    assert!(run.kinds[380..].iter().all(|&k| k == FrameKind::Normal));
}

#[test]
fn unsupported_packet_sizes_are_refused() {
    let mut jb = JitterBuffer::new(JitterConfig::default()).unwrap();
    let now = Instant::now();
    assert_eq!(jb.push(now, 0, 1, false, &[]), PushOutcome::Unsupported);
    assert_eq!(
        jb.push(now, 0, 1, false, &[0; 100]),
        PushOutcome::Unsupported
    );
    assert_eq!(
        jb.push(now, 0, 1, false, &[0; 1040]),
        PushOutcome::Unsupported
    );
    assert_eq!(jb.stats().unsupported, 3);
    assert_eq!(jb.push(now, 0, 1, false, &[0; 960]), PushOutcome::Accepted);
    // An unaligned timestamp is a discontinuity, taken once a second packet confirms it.
    assert_eq!(jb.push(now, 1000, 1, false, &[0; 160]), PushOutcome::Late);
    assert_eq!(
        jb.push(now, 1160, 1, false, &[0; 160]),
        PushOutcome::Resynced
    );
    assert_eq!(jb.stats().resyncs, 1);
}

#[test]
fn timestamp_wrap_is_seamless() {
    let packets = stream(400, 160, WRAP_FIRST_TS, 1, 1.0);
    let run = simulate(config(20, 20, 200), &packets, 390, ramp_wrapping);
    let stats = run.jb.stats();
    assert_eq!(stats.resyncs, 0);
    assert_eq!(stats.frames_concealed, 0);
    assert_eq!(ramp_breaks(&run), 0);
}

const WRAP_FIRST_TS: u32 = u32::MAX - 160 * 200 + 1;

/// Like `ramp`, but continuous across the u32 wrap (2^32 is not a multiple of 4000).
fn ramp_wrapping(_ssrc: u32, ts: u32) -> i16 {
    (ts.wrapping_sub(WRAP_FIRST_TS) % 4000) as i16
}

#[test]
fn a_single_stray_old_packet_does_not_disturb_playout() {
    let mut packets = stream(300, 160, 0, 1, 1.0);
    // A copy of packet 10 delivered 3 s late (older than the 1 s jump limit).
    let mut stray = packets[10];
    stray.at_us = packets[160].at_us + 1_000;
    packets.push(stray);
    let run = simulate(JitterConfig::default(), &packets, 300, ramp);
    let stats = run.jb.stats();
    assert_eq!(stats.resyncs, 0);
    assert_eq!(stats.late, 1);
    assert!(run.kinds[5..].iter().all(|&k| k == FrameKind::Normal));
    assert!(ramp_breaks(&run) <= 1);
}
