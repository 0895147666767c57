use super::*;

const MS: Duration = Duration::from_millis(1);

/// Feeds `segments` of (duration ms, probability, agent interruptible) as `chunk_ms` chunks
/// starting at `t0`; returns every decision.
struct Timeline {
    detector: BargeInDetector,
    t0: Instant,
    now: Instant,
    chunk_ms: u32,
}

impl Timeline {
    fn new(chunk_ms: u32) -> Self {
        let t0 = Instant::now();
        Timeline {
            detector: BargeInDetector::new(BargeInConfig::default()),
            t0,
            now: t0,
            chunk_ms,
        }
    }

    fn feed(&mut self, ms: u32, probability: f32, interruptible: bool) -> Vec<BargeInDecision> {
        assert_eq!(ms % self.chunk_ms, 0, "segments are whole chunks");
        let mut decisions = Vec::new();
        for _ in 0..ms / self.chunk_ms {
            self.now += self.chunk_ms * MS;
            decisions.extend(self.detector.on_vad(
                self.now,
                self.chunk_ms,
                probability,
                interruptible,
            ));
        }
        decisions
    }

    fn at(&self, ms: u32) -> Instant {
        self.t0 + ms * MS
    }
}

#[test]
fn speech_during_playout_barges_in_after_min_speech() {
    let mut t = Timeline::new(20);
    assert!(t.feed(100, 0.05, true).is_empty());
    let decisions = t.feed(300, 0.9, true);
    assert_eq!(
        decisions,
        [BargeInDecision::BargeIn {
            onset: t.at(100),
            confirmed_at: t.at(300) // onset + 200 ms
        }]
    );
    assert_eq!(t.detector.phase(), SpeechPhase::Speaking);
    // Confirmed speech then ends the turn after 400 ms of silence.
    assert!(t.feed(380, 0.05, false).is_empty());
    assert_eq!(
        t.feed(20, 0.05, false),
        [BargeInDecision::TurnEnded { at: t.at(800) }]
    );
    assert_eq!(t.detector.phase(), SpeechPhase::Silence);
}

#[test]
fn silero_sized_chunks_confirm_at_the_first_chunk_past_min_speech() {
    let mut t = Timeline::new(32);
    t.feed(64, 0.0, true);
    let decisions = t.feed(320, 0.8, true);
    // 7 chunks of 32 ms = 224 ms is the first count >= 200 ms.
    assert_eq!(
        decisions,
        [BargeInDecision::BargeIn {
            onset: t.at(64),
            confirmed_at: t.at(64 + 224)
        }]
    );
}

#[test]
fn short_blip_produces_nothing() {
    let mut t = Timeline::new(10);
    assert!(t.feed(150, 0.95, true).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Candidate);
    assert!(t.feed(1000, 0.02, true).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Silence);
}

#[test]
fn silence_inside_a_blip_does_not_count_as_speech() {
    // 150 ms of speech, 300 ms below the negative threshold (the blip is still pending),
    // then 40 ms more speech: 190 ms of speech in all, still short of 200 ms.
    let mut t = Timeline::new(10);
    assert!(t.feed(150, 0.9, true).is_empty());
    assert!(t.feed(300, 0.1, true).is_empty());
    assert!(t.feed(40, 0.9, true).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Candidate);
    // The 10 ms that complete 200 ms of speech confirm it, from the original onset.
    assert_eq!(
        t.feed(10, 0.9, true),
        [BargeInDecision::BargeIn {
            onset: t.at(0),
            confirmed_at: t.at(500)
        }]
    );
}

#[test]
fn speech_while_agent_silent_starts_then_ends_turn() {
    let mut t = Timeline::new(20);
    let started = t.feed(600, 0.7, false);
    assert_eq!(started, [BargeInDecision::SpeechStarted { onset: t.at(0) }]);
    // Playback beginning during confirmed speech does not turn it into a barge-in.
    assert!(t.feed(100, 0.7, true).is_empty());
    assert!(t.feed(380, 0.1, false).is_empty());
    assert_eq!(
        t.feed(40, 0.1, false),
        [BargeInDecision::TurnEnded {
            at: t.at(700 + 400)
        }]
    );
    assert!(t.feed(1000, 0.1, false).is_empty(), "one TurnEnded only");
}

#[test]
fn dips_above_negative_threshold_do_not_end_speech() {
    let mut t = Timeline::new(20);
    assert_eq!(t.feed(300, 0.8, false).len(), 1);
    // 0.45 is below 0.55 but above 0.40: speech continues for any length of time.
    assert!(t.feed(2000, 0.45, false).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Speaking);
    // Dips below 0.40 shorter than 400 ms, interrupted by speech, do not end it either.
    for _ in 0..5 {
        assert!(t.feed(300, 0.2, false).is_empty());
        assert!(t.feed(20, 0.8, false).is_empty());
    }
    assert_eq!(t.detector.phase(), SpeechPhase::Speaking);
}

#[test]
fn ambiguous_chunks_do_not_reset_a_silence_run() {
    let mut t = Timeline::new(20);
    t.feed(300, 0.8, false);
    assert!(t.feed(200, 0.1, false).is_empty());
    assert!(t.feed(180, 0.5, false).is_empty()); // between 0.40 and 0.55
    assert_eq!(
        t.feed(20, 0.1, false),
        [BargeInDecision::TurnEnded {
            at: t.at(300 + 400)
        }]
    );
}

#[test]
fn ambiguous_chunks_alone_never_start_speech() {
    let mut t = Timeline::new(20);
    assert!(t.feed(2000, 0.54, true).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Silence);
}

#[test]
fn threshold_boundaries() {
    let cfg = BargeInConfig::default();
    let negative = cfg.negative_threshold();
    // Exactly at the threshold is speech.
    let mut t = Timeline::new(20);
    assert_eq!(t.feed(200, cfg.threshold, true).len(), 1);
    // Exactly at the negative threshold is not silence: speech never ends.
    assert!(t.feed(1000, negative, true).is_empty());
    assert_eq!(t.detector.phase(), SpeechPhase::Speaking);
    // Just below it is.
    let below = f32::from_bits(negative.to_bits() - 1);
    assert_eq!(t.feed(400, below, true).len(), 1);
    // Just below the threshold does not start speech.
    let mut t = Timeline::new(20);
    let under = f32::from_bits(cfg.threshold.to_bits() - 1);
    assert!(t.feed(1000, under, true).is_empty());
}

#[test]
fn nan_probability_counts_as_silence() {
    let mut t = Timeline::new(20);
    assert!(t.feed(1000, f32::NAN, true).is_empty());
    t.feed(300, 0.9, true);
    assert!(t.feed(380, f32::NAN, true).is_empty());
    assert_eq!(t.feed(20, f32::NAN, true).len(), 1);
}

#[test]
fn onset_before_clock_origin_does_not_panic() {
    let mut d = BargeInDetector::new(BargeInConfig::default());
    let now = Instant::now();
    // A huge chunk length cannot go before the Instant's origin: onset falls back to chunk end.
    let decision = d.on_vad(now, u32::MAX, 0.9, true);
    assert!(matches!(decision, Some(BargeInDecision::BargeIn { .. })));
}

#[test]
fn reset_forgets_speech() {
    let mut t = Timeline::new(20);
    t.feed(300, 0.9, false);
    t.detector.reset();
    assert_eq!(t.detector.phase(), SpeechPhase::Silence);
    assert!(
        t.feed(1000, 0.1, false).is_empty(),
        "no TurnEnded after reset"
    );
}

#[test]
fn config_validation() {
    assert!(BargeInConfig::default().validate().is_ok());
    let with = |f: fn(&mut BargeInConfig)| {
        let mut cfg = BargeInConfig::default();
        f(&mut cfg);
        cfg.validate()
    };
    for err in [
        with(|c| c.threshold = 0.0),
        with(|c| c.threshold = 1.0),
        with(|c| c.threshold = -0.5),
        with(|c| c.threshold = f32::NAN),
    ] {
        assert!(err.unwrap_err().contains("threshold"));
    }
    assert!(with(|c| c.min_speech_ms = 0)
        .unwrap_err()
        .contains("min_speech_ms"));
    assert!(with(|c| c.min_speech_ms = 60_000)
        .unwrap_err()
        .contains("min_speech_ms"));
    assert!(with(|c| c.min_silence_ms = 10)
        .unwrap_err()
        .contains("min_silence_ms"));
    assert!(with(|c| c.threshold = 0.999).is_ok());
}

#[test]
fn negative_threshold_stays_below_low_thresholds() {
    let cfg = BargeInConfig {
        threshold: 0.2,
        ..BargeInConfig::default()
    };
    assert!((cfg.negative_threshold() - 0.1).abs() < 1e-6);
    assert!((BargeInConfig::default().negative_threshold() - 0.40).abs() < 1e-6);
}

#[test]
fn invalid_config_is_clamped_not_trusted() {
    // min_speech_ms 0 would confirm any single chunk; it is raised to the minimum instead.
    let mut d = BargeInDetector::new(BargeInConfig {
        threshold: f32::NAN,
        min_speech_ms: 0,
        min_silence_ms: 0,
    });
    let t0 = Instant::now();
    assert_eq!(d.on_vad(t0 + 10 * MS, 10, 0.9, true), None);
    assert!(d.on_vad(t0 + 20 * MS, 10, 0.9, true).is_some());
}
