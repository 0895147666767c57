use super::*;

const FRAME: usize = 160;
const MS: Duration = Duration::from_millis(1);

fn cfg(max_queued_ms: u32) -> PlayoutConfig {
    PlayoutConfig {
        ptime_ms: 20,
        max_queued_ms,
    }
}

fn chunk(id: &str, samples: Vec<i16>, interruptible: bool) -> Chunk {
    Chunk {
        playback_id: id.to_string(),
        mark: None,
        interruptible,
        samples,
    }
}

/// Audio whose every sample is distinct and non-zero, so any loss or duplication shows.
fn ramp(len: usize, offset: usize) -> Vec<i16> {
    (0..len)
        .map(|i| ((i + offset) % 30_000 + 1) as i16)
        .collect()
}

fn events(p: &mut Playout) -> Vec<PlayoutEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

/// Polls one frame exactly at its deadline.
fn tick(p: &mut Playout, out: &mut [i16]) -> FrameInfo {
    let now = p.next_deadline();
    let info = p.poll_frame(now, out).unwrap();
    assert!(p.poll_frame(now, out).is_none(), "one frame per deadline");
    info
}

/// Small deterministic PRNG (xorshift) so the jitter test needs no extra dependency.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn no_frame_before_first_deadline() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0 + 5 * MS);
    let mut out = [0i16; FRAME];
    assert!(p.poll_frame(t0, &mut out).is_none());
    assert_eq!(p.next_deadline(), t0 + 5 * MS);
    assert!(p.poll_frame(t0 + 5 * MS, &mut out).is_some());
}

#[test]
fn deadlines_are_absolute_under_random_lateness() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut out = [0i16; FRAME];
    let mut produced: u64 = 0;
    while produced < 10_000 {
        // Wake up 0..=60 ms late: sometimes several frames are due at once.
        let now = p.next_deadline() + Duration::from_micros(rng.next() % 60_001);
        while let Some(info) = p.poll_frame(now, &mut out) {
            assert_eq!(info.deadline, t0 + 20 * MS * produced as u32);
            assert_eq!(info.timestamp_samples, produced * FRAME as u64);
            assert_eq!(info.lateness, now - info.deadline);
            assert!(info.deadline <= now);
            produced += 1;
        }
    }
    assert_eq!(p.next_deadline(), t0 + Duration::from_millis(20 * produced));
    let stats = p.stats();
    assert_eq!(stats.skipped_frames, 0);
    assert_eq!(stats.frames_sent, produced);
    assert!(stats.max_lateness <= 60 * MS);
    assert!(
        stats.late_frames > 0,
        "random lateness of up to 60 ms must show"
    );
}

#[test]
fn idle_playout_sends_silence_every_ptime() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let mut out = [7i16; FRAME];
    for n in 0..50u64 {
        let info = tick(&mut p, &mut out);
        assert!(!info.voiced && !info.marker);
        assert_eq!(info.timestamp_samples, n * FRAME as u64);
        assert!(out.iter().all(|&s| s == 0));
    }
    assert_eq!(p.stats().silence_frames, 50);
    assert!(!p.is_playing());
    assert!(events(&mut p).is_empty());
}

#[test]
fn marker_on_first_frame_of_each_talk_spurt() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let mut out = [0i16; FRAME];
    assert!(!tick(&mut p, &mut out).marker);
    p.enqueue(chunk("a", ramp(3 * FRAME, 0), true)).unwrap();
    let flags: Vec<(bool, bool)> = (0..5)
        .map(|_| {
            let i = tick(&mut p, &mut out);
            (i.voiced, i.marker)
        })
        .collect();
    assert_eq!(
        flags,
        [
            (true, true),
            (true, false),
            (true, false),
            (false, false),
            (false, false)
        ]
    );
    p.enqueue(chunk("b", ramp(FRAME, 0), true)).unwrap();
    let info = tick(&mut p, &mut out);
    assert!(info.voiced && info.marker);
}

#[test]
fn partial_frames_are_completed_by_the_next_chunk_then_silence() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let a = ramp(250, 0);
    let b = ramp(100, 1000);
    p.enqueue(chunk("a", a.clone(), true)).unwrap();
    p.enqueue(chunk("b", b.clone(), true)).unwrap();
    let mut sent = Vec::new();
    let mut out = [0i16; FRAME];
    for _ in 0..3 {
        tick(&mut p, &mut out);
        sent.extend_from_slice(&out);
    }
    let mut expected = a.clone();
    expected.extend_from_slice(&b);
    expected.resize(3 * FRAME, 0);
    assert_eq!(sent, expected);
    assert_eq!(
        events(&mut p),
        [
            PlayoutEvent::Started {
                playback_id: "a".into()
            },
            PlayoutEvent::Finished {
                playback_id: "a".into(),
                played_ms: 31 // 250 samples = 31.25 ms, rounded down
            },
            PlayoutEvent::Started {
                playback_id: "b".into()
            },
            PlayoutEvent::Finished {
                playback_id: "b".into(),
                played_ms: 12
            },
        ]
    );
}

#[test]
fn marks_are_reported_after_the_audio_before_them() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let mut out = [0i16; FRAME];
    let mut with_mark = chunk("a", ramp(2 * FRAME, 0), true);
    with_mark.mark = Some("m1".into());
    p.enqueue(with_mark).unwrap();
    let mut pure_mark = chunk("a", Vec::new(), true);
    pure_mark.mark = Some("m2".into());
    p.enqueue(pure_mark).unwrap();

    tick(&mut p, &mut out);
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::Started {
            playback_id: "a".into()
        }]
    );
    tick(&mut p, &mut out);
    assert_eq!(
        events(&mut p),
        [
            PlayoutEvent::Finished {
                playback_id: "a".into(),
                played_ms: 40
            },
            PlayoutEvent::MarkReached {
                playback_id: "a".into(),
                mark: "m1".into()
            },
            PlayoutEvent::MarkReached {
                playback_id: "a".into(),
                mark: "m2".into()
            },
        ]
    );

    // A mark sent while idle is reached at the next tick.
    let mut idle_mark = chunk("b", Vec::new(), true);
    idle_mark.mark = Some("m3".into());
    p.enqueue(idle_mark).unwrap();
    assert!(events(&mut p).is_empty());
    assert!(!tick(&mut p, &mut out).voiced);
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::MarkReached {
            playback_id: "b".into(),
            mark: "m3".into()
        }]
    );
}

#[test]
fn truncate_reports_exact_played_and_drops_queued() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let mut out = [0i16; FRAME];
    p.enqueue(chunk("long", ramp(24_000, 0), true)).unwrap(); // 3 s
    p.enqueue(chunk("next", ramp(8_000, 0), true)).unwrap(); // 1 s
    for _ in 0..37 {
        assert!(tick(&mut p, &mut out).voiced);
    }
    assert!(p.is_playing_interruptible());
    events(&mut p);
    p.truncate();
    assert_eq!(
        events(&mut p),
        [
            PlayoutEvent::Truncated {
                playback_id: "long".into(),
                played_ms: 740,
                total_ms: 3000
            },
            PlayoutEvent::Truncated {
                playback_id: "next".into(),
                played_ms: 0,
                total_ms: 1000
            },
        ]
    );
    assert!(!p.is_playing() && !p.is_playing_interruptible());
    assert_eq!(p.queued_ms(), 0);
    let info = tick(&mut p, &mut out);
    assert!(!info.voiced);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn truncate_accounting_is_exact_to_the_sample() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let mut out = [0i16; FRAME];
    // 100 samples then a contiguous chunk: frame 1 holds 100 of "a" and 60 of "b".
    p.enqueue(chunk("a", ramp(100, 0), true)).unwrap();
    p.enqueue(chunk("b", ramp(8_000, 0), true)).unwrap();
    tick(&mut p, &mut out);
    tick(&mut p, &mut out); // "b" has now sent 60 + 160 = 220 samples = 27.5 ms
    events(&mut p);
    p.truncate();
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::Truncated {
            playback_id: "b".into(),
            played_ms: 27,
            total_ms: 1000
        }]
    );
}

#[test]
fn non_interruptible_audio_survives_truncate() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let mut out = [0i16; FRAME];
    let disclosure = ramp(8_000, 0);
    p.enqueue(chunk("disclosure", disclosure.clone(), false))
        .unwrap();
    p.enqueue(chunk("reply", ramp(8_000, 5), true)).unwrap();
    let mut sent = Vec::new();
    for _ in 0..10 {
        tick(&mut p, &mut out);
        sent.extend_from_slice(&out);
    }
    assert!(p.is_playing() && !p.is_playing_interruptible());
    events(&mut p);
    p.truncate();
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::Truncated {
            playback_id: "reply".into(),
            played_ms: 0,
            total_ms: 1000
        }]
    );
    for _ in 0..45 {
        tick(&mut p, &mut out);
        sent.extend_from_slice(&out);
    }
    assert_eq!(&sent[..8_000], &disclosure[..]);
    assert!(sent[8_000..].iter().all(|&s| s == 0));
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::Finished {
            playback_id: "disclosure".into(),
            played_ms: 1000
        }]
    );
}

#[test]
fn truncate_drops_playing_interruptible_but_keeps_following_disclosure() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let mut out = [0i16; FRAME];
    p.enqueue(chunk("reply", ramp(1_600, 0), true)).unwrap();
    let disclosure = ramp(FRAME, 777);
    p.enqueue(chunk("disclosure", disclosure.clone(), false))
        .unwrap();
    tick(&mut p, &mut out);
    p.truncate();
    let info = tick(&mut p, &mut out);
    assert!(info.voiced);
    assert_eq!(&out[..], &disclosure[..]);
}

#[test]
fn clear_drops_non_interruptible_too() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    p.enqueue(chunk("disclosure", ramp(800, 0), false)).unwrap();
    p.clear();
    assert_eq!(
        events(&mut p),
        [PlayoutEvent::Truncated {
            playback_id: "disclosure".into(),
            played_ms: 0,
            total_ms: 100
        }]
    );
    assert!(!p.is_playing());
}

#[test]
fn pause_and_resume_lose_nothing() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let audio = ramp(20 * FRAME + 37, 0);
    p.enqueue(chunk("a", audio.clone(), true)).unwrap();
    let mut out = [0i16; FRAME];
    let mut voiced_audio = Vec::new();
    let mut markers = 0;
    for n in 0..40 {
        if n == 5 {
            p.pause();
            assert!(!p.is_playing() && !p.is_playing_interruptible());
        }
        if n == 15 {
            p.resume();
            assert!(p.is_playing_interruptible());
        }
        let info = tick(&mut p, &mut out);
        if (5..15).contains(&n) {
            assert!(!info.voiced, "paused frames are silence");
            assert!(out.iter().all(|&s| s == 0));
        }
        if info.voiced {
            voiced_audio.extend_from_slice(&out);
        }
        markers += usize::from(info.marker);
    }
    voiced_audio.truncate(audio.len());
    assert_eq!(voiced_audio, audio);
    assert_eq!(markers, 2, "a new talk spurt starts at resume");
    assert!(events(&mut p).contains(&PlayoutEvent::Finished {
        playback_id: "a".into(),
        played_ms: u64::try_from(audio.len() / 8).unwrap()
    }));
}

#[test]
fn queue_is_bounded() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    p.enqueue(chunk("a", ramp(4_800, 0), true)).unwrap(); // 600 ms
    assert_eq!(
        p.enqueue(chunk("b", ramp(4_000, 0), true)),
        Err(PlayoutError::Full)
    );
    p.enqueue(chunk("b", ramp(3_200, 0), true)).unwrap(); // 400 ms: exactly full
    assert_eq!(p.queued_ms(), 1000);
    assert_eq!(
        p.enqueue(chunk("c", ramp(1, 0), true)),
        Err(PlayoutError::Full)
    );
    let mut out = [0i16; FRAME];
    for _ in 0..10 {
        tick(&mut p, &mut out);
    }
    assert_eq!(p.queued_ms(), 800);
    p.enqueue(chunk("c", ramp(1_600, 0), true)).unwrap();
    // The refused chunks left no trace.
    let ids: Vec<String> = events(&mut p)
        .into_iter()
        .filter_map(|e| match e {
            PlayoutEvent::Started { playback_id } => Some(playback_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["a"]);
}

#[test]
fn small_lateness_sends_missed_frames_back_to_back() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    let mut out = [0i16; FRAME];
    let now = t0 + 60 * MS;
    let timestamps: Vec<u64> = std::iter::from_fn(|| p.poll_frame(now, &mut out))
        .map(|i| i.timestamp_samples)
        .collect();
    assert_eq!(timestamps, [0, 160, 320, 480]);
    assert_eq!(p.stats().skipped_frames, 0);
    assert_eq!(p.stats().max_lateness, 60 * MS);
    assert_eq!(p.stats().late_frames, 3); // 60, 40, 20 ms late; the last is on time
}

#[test]
fn large_stall_skips_frames_but_keeps_timestamps_and_audio() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(10_000), t0);
    let audio = ramp(40 * FRAME, 0);
    p.enqueue(chunk("a", audio.clone(), true)).unwrap();
    let mut out = [0i16; FRAME];
    for _ in 0..5 {
        tick(&mut p, &mut out);
    }
    // Frame 5 was due at 100 ms; the shell wakes at 610 ms.
    let now = t0 + 610 * MS;
    let info = p.poll_frame(now, &mut out).unwrap();
    assert_eq!(info.timestamp_samples, 30 * FRAME as u64);
    assert_eq!(info.deadline, t0 + 600 * MS);
    assert_eq!(info.lateness, 10 * MS);
    assert!(info.marker && info.voiced, "resync marker after the gap");
    assert_eq!(&out[..], &audio[5 * FRAME..6 * FRAME], "no audio lost");
    assert!(p.poll_frame(now, &mut out).is_none());
    let stats = p.stats();
    assert_eq!(stats.skipped_frames, 25);
    assert_eq!(stats.max_lateness, 510 * MS);
    assert_eq!(p.next_deadline(), t0 + 620 * MS);
    let next = tick(&mut p, &mut out);
    assert!(!next.marker);
    assert_eq!(next.timestamp_samples, 31 * FRAME as u64);
}

#[test]
fn short_output_buffer_does_not_panic() {
    let t0 = Instant::now();
    let mut p = Playout::new(cfg(1000), t0);
    p.enqueue(chunk("a", ramp(FRAME, 0), true)).unwrap();
    let mut short = [0i16; 10];
    let info = p.poll_frame(t0, &mut short).unwrap();
    assert!(info.voiced);
    assert_eq!(&short[..], &ramp(10, 0)[..]);
    let mut long = [9i16; 200];
    let info = p.poll_frame(t0 + 20 * MS, &mut long).unwrap();
    assert_eq!(info.timestamp_samples, 160);
    assert!(long[FRAME..].iter().all(|&s| s == 0));
}

#[test]
fn other_ptimes_change_frame_size() {
    let t0 = Instant::now();
    let mut p = Playout::new(
        PlayoutConfig {
            ptime_ms: 30,
            max_queued_ms: 1000,
        },
        t0,
    );
    assert_eq!(p.frame_samples(), 240);
    let mut out = [0i16; 240];
    tick(&mut p, &mut out);
    let info = tick(&mut p, &mut out);
    assert_eq!(info.timestamp_samples, 240);
    assert_eq!(info.deadline, t0 + 30 * MS);
}

#[test]
fn config_validation_and_clamping() {
    assert!(PlayoutConfig::default().validate().is_ok());
    for bad in [0, 5, 25, 70] {
        let err = PlayoutConfig {
            ptime_ms: bad,
            max_queued_ms: 1000,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("ptime_ms"), "{err}");
    }
    let err = cfg(10).validate().unwrap_err();
    assert!(err.contains("max_queued_ms"), "{err}");
    assert!(cfg(MAX_QUEUE_LIMIT_MS + 1).validate().is_err());
    // A zero ptime must not make the shell spin: it is clamped to 10 ms.
    let t0 = Instant::now();
    let p = Playout::new(
        PlayoutConfig {
            ptime_ms: 0,
            max_queued_ms: 0,
        },
        t0,
    );
    assert_eq!(p.frame_samples(), 80);
    assert_eq!(p.next_deadline(), t0);
}
