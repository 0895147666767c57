//! Timelines in virtual time: 32 ms VAD chunks against a real [`Playout`] (20 ms frames
//! polled exactly at their deadlines), every policy action applied to it as the session
//! would. Times in assertions are milliseconds from the start of the call.

use super::*;
use crate::playout::{Chunk, PlayoutConfig, PlayoutEvent};

const MS: Duration = Duration::from_millis(1);
const CHUNK_MS: u32 = 32;
const SILENCE: f32 = 0.05;
const SPEECH: f32 = 0.9;

use PolicyAction::{Pause, Resume, Truncate};

mod accounting;
mod echo;

fn ev(event: PolicyEvent) -> PolicyAction {
    PolicyAction::Event(event)
}

struct Sim {
    policy: BargeInPolicy,
    playout: Playout,
    t0: Instant,
    /// End of the last VAD chunk fed, in ms.
    now_ms: u64,
    frame: Vec<i16>,
    playout_events: Vec<PlayoutEvent>,
    clips: u32,
    /// Echo likeness reported with every chunk fed (None: delay not known).
    echo_likeness: Option<f32>,
}

impl Sim {
    /// The timelines here start caller speech a few hundred ms into the first prompt, which
    /// the first-prompt guard (`background.rs`) would discount; it has its own tests
    /// (`Sim::with_first_prompt_guard`).
    fn new(cfg: PolicyConfig) -> Self {
        let mut sim = Sim::with_first_prompt_guard(cfg);
        sim.policy.background.disable();
        sim
    }

    fn with_first_prompt_guard(cfg: PolicyConfig) -> Self {
        let t0 = Instant::now();
        let playout = Playout::new(PlayoutConfig::default(), t0);
        Sim {
            policy: BargeInPolicy::new(cfg).unwrap(),
            frame: vec![0; playout.frame_samples()],
            playout,
            t0,
            now_ms: 0,
            playout_events: Vec::new(),
            clips: 0,
            echo_likeness: None,
        }
    }

    fn with_mode(mode: BargeInMode) -> Self {
        Sim::new(PolicyConfig {
            mode,
            ..PolicyConfig::default()
        })
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Queues `ms` of agent audio behind whatever is queued.
    fn play(&mut self, ms: u32, interruptible: bool) {
        self.clips += 1;
        let chunk = Chunk {
            playback_id: format!("clip{}", self.clips),
            mark: None,
            interruptible,
            samples: vec![1000; ms as usize * 8],
        };
        self.playout.enqueue(chunk).unwrap();
    }

    /// Sends every frame due up to `ms`, each at its own deadline (never late).
    fn run_playout_to(&mut self, ms: u64) {
        let until = self.at(ms);
        while self.playout.next_deadline() <= until {
            let deadline = self.playout.next_deadline();
            self.playout.poll_frame(deadline, &mut self.frame).unwrap();
        }
        self.collect_playout_events();
    }

    fn collect_playout_events(&mut self) {
        while let Some(event) = self.playout.poll_event() {
            self.playout_events.push(event);
        }
    }

    fn view(&self) -> PlayoutView {
        PlayoutView::of(&self.playout)
    }

    /// Applies the pending actions to the playout; returns them stamped with `ms`.
    fn drain(&mut self, ms: u64) -> Vec<(u64, PolicyAction)> {
        let mut out = Vec::new();
        while let Some(action) = self.policy.poll_action() {
            match action {
                Pause => self.playout.pause(),
                Resume => self.playout.resume(),
                Truncate => self.playout.truncate(),
                PolicyAction::Event(_) => {}
            }
            out.push((ms, action));
        }
        self.collect_playout_events();
        out
    }

    fn feed(&mut self, ms: u32, probability: f32) -> Vec<(u64, PolicyAction)> {
        self.feed_with(ms, probability, false)
    }

    fn feed_with(&mut self, ms: u32, probability: f32, echo: bool) -> Vec<(u64, PolicyAction)> {
        self.feed_echo(ms, probability, echo, false)
    }

    fn feed_echo(
        &mut self,
        ms: u32,
        probability: f32,
        echo: bool,
        masked: bool,
    ) -> Vec<(u64, PolicyAction)> {
        self.feed_full(ms, probability, echo, masked, -20.0)
    }

    fn feed_level(&mut self, ms: u32, probability: f32, level_db: f32) -> Vec<(u64, PolicyAction)> {
        self.feed_full(ms, probability, false, false, level_db)
    }

    fn feed_full(
        &mut self,
        ms: u32,
        probability: f32,
        echo: bool,
        masked: bool,
        level_db: f32,
    ) -> Vec<(u64, PolicyAction)> {
        assert_eq!(ms % CHUNK_MS, 0, "segments are whole chunks");
        let mut out = Vec::new();
        for _ in 0..ms / CHUNK_MS {
            self.now_ms += u64::from(CHUNK_MS);
            self.run_playout_to(self.now_ms);
            let obs = VadObservation {
                chunk_end: self.at(self.now_ms),
                chunk_ms: CHUNK_MS,
                probability,
                far_active: self.playout.is_playing(),
                echo_likely: echo,
                echo_masked: masked,
                level_db,
                echo_likeness: self.echo_likeness,
            };
            let view = self.view();
            self.policy.on_vad(obs, view);
            out.extend(self.drain(self.now_ms));
        }
        out
    }

    fn timeout(&mut self, ms: u64) -> Vec<(u64, PolicyAction)> {
        self.run_playout_to(ms);
        self.policy.handle_timeout(self.at(ms));
        self.drain(ms)
    }

    fn dtmf(&mut self) -> Vec<(u64, PolicyAction)> {
        let view = self.view();
        self.policy.on_dtmf(self.at(self.now_ms), '5', view);
        self.drain(self.now_ms)
    }

    fn decide(&mut self, ms: u64, confirm: bool) -> (bool, Vec<(u64, PolicyAction)>) {
        self.run_playout_to(ms);
        let pending = self.policy.on_bot_decision(self.at(ms), confirm);
        (pending, self.drain(ms))
    }

    fn agent_started(&mut self, ms: u64) -> Vec<(u64, PolicyAction)> {
        self.policy.on_agent_audio_started(self.at(ms));
        self.drain(ms)
    }

    fn truncated(&self) -> Vec<(u64, u64)> {
        self.playout_events
            .iter()
            .filter_map(|e| match e {
                PlayoutEvent::Truncated {
                    played_ms,
                    total_ms,
                    ..
                } => Some((*played_ms, *total_ms)),
                _ => None,
            })
            .collect()
    }

    fn finished(&self) -> Vec<u64> {
        self.playout_events
            .iter()
            .filter_map(|e| match e {
                PlayoutEvent::Finished { played_ms, .. } => Some(*played_ms),
                _ => None,
            })
            .collect()
    }

    fn tentative(&self, onset: u64, at: u64) -> PolicyAction {
        ev(PolicyEvent::TentativeBargeIn {
            onset: self.at(onset),
            at: self.at(at),
        })
    }

    fn barge_in(&self, onset: u64, confirmed_at: u64, by: Trigger) -> PolicyAction {
        ev(PolicyEvent::BargeIn {
            onset: self.at(onset),
            confirmed_at: self.at(confirmed_at),
            by,
        })
    }

    fn cancelled(&self, at: u64) -> PolicyAction {
        ev(PolicyEvent::BargeInCancelled { at: self.at(at) })
    }
}

// Speech starting at 320 ms (chunk ends 352, 384, ...): 64 ms of it at 384 (pause), 224 ms
// (the first whole-chunk count >= 200 ms) at 544 (confirmation).

#[test]
fn pause_mode_pauses_at_onset_then_truncates_at_min_speech() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    assert!(sim.feed(320, SILENCE).is_empty());
    let actions = sim.feed(320, SPEECH);
    assert_eq!(
        actions,
        [
            (384, Pause),
            (384, sim.tentative(320, 384)),
            (544, Truncate),
            (544, Resume),
            (544, sim.barge_in(320, 544, Trigger::Speech)),
        ]
    );
    // Frames 0..=380 ms were sent (400 ms of audio); none while paused.
    assert_eq!(sim.truncated(), [(400, 3000)]);
    assert!(
        !sim.playout.is_paused(),
        "the pause is lifted for later audio"
    );
    let c = sim.policy.counters();
    assert_eq!(
        (c.barge_ins, c.pauses, c.tentative_pauses, c.resumes),
        (1, 1, 0, 0)
    );
}

#[test]
fn blip_pauses_then_resumes_exactly_where_it_stopped() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    // A 96 ms cough: paused at 384; 180 ms below the negative threshold (the sixth silent
    // chunk, 608) gives up on it.
    let mut actions = sim.feed(96, SPEECH);
    actions.extend(sim.feed(3200, SILENCE));
    assert_eq!(
        actions,
        [
            (384, Pause),
            (384, sim.tentative(320, 384)),
            (608, Resume),
            (608, sim.cancelled(608)),
        ]
    );
    assert!(sim.truncated().is_empty());
    assert_eq!(sim.finished(), [3000], "resume loses nothing");
    // 11 frames (400..=600 ms) of silence were the stutter.
    assert_eq!(sim.playout.stats().voiced_frames, 150);
    let c = sim.policy.counters();
    assert_eq!(
        (c.pauses, c.tentative_pauses, c.resumes, c.barge_ins),
        (1, 1, 1, 0)
    );
    assert_eq!(sim.policy.next_deadline(), None);
}

/// "That's | not what I asked": a short first word, then a stop closure that Silero hears
/// as 160 ms of silence, then the rest. The caller stays paused through the gap and is
/// confirmed: no resume, no stutter (with a 120 ms release the agent resumed in the gap,
/// paused again, and stopped 200 ms later).
#[test]
fn a_gap_inside_the_first_words_keeps_the_pause() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    let mut actions = sim.feed(96, SPEECH);
    actions.extend(sim.feed(160, SILENCE));
    actions.extend(sim.feed(320, SPEECH));
    let kinds: Vec<_> = actions
        .iter()
        .map(|(at, a)| match a {
            PolicyAction::Event(PolicyEvent::TentativeBargeIn { .. }) => (*at, "tentative"),
            PolicyAction::Event(PolicyEvent::BargeInCancelled { .. }) => (*at, "cancelled"),
            PolicyAction::Event(PolicyEvent::BargeIn { .. }) => (*at, "barge-in"),
            Pause => (*at, "pause"),
            Resume => (*at, "resume"),
            Truncate => (*at, "truncate"),
            _ => (*at, "other"),
        })
        .collect();
    // Confirmed at 200 ms of speech: the 96 ms word and 104 ms of the rest (onset 320).
    assert_eq!(
        kinds,
        [
            (384, "pause"),
            (384, "tentative"),
            (704, "truncate"),
            (704, "resume"),
            (704, "barge-in"),
        ]
    );
}

#[test]
fn immediate_mode_never_pauses() {
    let mut sim = Sim::with_mode(BargeInMode::Immediate);
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    assert!(sim.feed(96, SPEECH).is_empty(), "a blip does nothing");
    sim.feed(640, SILENCE);
    let onset = 1056;
    let actions = sim.feed(320, SPEECH);
    assert_eq!(
        actions,
        [
            (onset + 224, Truncate),
            (
                onset + 224,
                sim.barge_in(onset, onset + 224, Trigger::Speech)
            ),
        ]
    );
    assert_eq!(sim.policy.counters().pauses, 0);
}

fn bot_sim() -> Sim {
    let mut sim = Sim::with_mode(BargeInMode::BotDecides);
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    let actions = sim.feed(224, SPEECH);
    let requested = ev(PolicyEvent::DecisionRequested {
        onset: sim.at(320),
        at: sim.at(544),
    });
    assert_eq!(
        actions,
        [
            (384, Pause),
            (384, sim.tentative(320, 384)),
            (544, requested)
        ]
    );
    assert!(sim.policy.awaiting_decision());
    assert_eq!(sim.policy.next_deadline(), Some(sim.at(544 + 500)));
    sim
}

#[test]
fn bot_decides_confirm_truncates() {
    let mut sim = bot_sim();
    let (pending, actions) = sim.decide(600, true);
    assert!(pending);
    assert_eq!(
        actions,
        [
            (600, Truncate),
            (600, Resume),
            (600, sim.barge_in(320, 600, Trigger::Speech))
        ]
    );
    assert_eq!(sim.truncated(), [(400, 3000)]);
    assert!(!sim.decide(650, true).0, "one answer per request");
    let c = sim.policy.counters();
    assert_eq!((c.bot_confirmed, c.bot_rejected, c.bot_timeouts), (1, 0, 0));
}

#[test]
fn bot_decides_reject_resumes() {
    let mut sim = bot_sim();
    let (_, actions) = sim.decide(600, false);
    assert_eq!(actions, [(600, Resume), (600, sim.cancelled(600))]);
    // The caller talks on: the same speech never barges in again; its end is reported.
    assert!(sim.feed(512, SPEECH).is_empty());
    let mut actions = sim.feed(416, SILENCE);
    assert_eq!(
        actions.pop(),
        Some((1472, ev(PolicyEvent::TurnEnded { at: sim.at(1472) })))
    );
    assert!(actions.is_empty());
    sim.feed(3200, SILENCE);
    assert!(sim.truncated().is_empty());
    assert_eq!(sim.finished(), [3000]);
    let c = sim.policy.counters();
    assert_eq!((c.bot_rejected, c.resumes, c.tentative_pauses), (1, 1, 0));
}

#[test]
fn bot_decides_timeout_confirms() {
    let mut sim = bot_sim();
    assert!(sim.timeout(1043).is_empty());
    assert_eq!(
        sim.timeout(1044),
        [
            (1044, Truncate),
            (1044, Resume),
            (1044, sim.barge_in(320, 1044, Trigger::Speech))
        ]
    );
    assert!(!sim.decide(1100, false).0, "a late answer is ignored");
    assert_eq!(sim.policy.counters().bot_timeouts, 1);
}

#[test]
fn bot_decides_timeout_is_also_reached_by_observations() {
    let mut sim = bot_sim();
    let actions = sim.feed(512, SPEECH); // chunk ends 576 .. 1056
    assert_eq!(
        actions,
        [
            (1056, Truncate),
            (1056, Resume),
            (1056, sim.barge_in(320, 1056, Trigger::Speech))
        ]
    );
}

#[test]
fn bot_decides_pauses_at_confirmation_when_onset_equals_min_speech() {
    let mut sim = Sim::new(PolicyConfig {
        mode: BargeInMode::BotDecides,
        pause_onset_ms: 200,
        ..PolicyConfig::default()
    });
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    let requested = ev(PolicyEvent::DecisionRequested {
        onset: sim.at(320),
        at: sim.at(544),
    });
    assert_eq!(
        sim.feed(224, SPEECH),
        [
            (544, Pause),
            (544, sim.tentative(320, 544)),
            (544, requested)
        ]
    );
}

#[test]
fn non_interruptible_audio_is_never_paused_and_speech_is_reported() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(1000, false);
    sim.play(2000, true);
    sim.feed(320, SILENCE);
    let during = ev(PolicyEvent::SpeechDuringNonInterruptible { at: sim.at(544) });
    // The caller talks past the end of the segment (1000 ms): no barge-in when disabled.
    let mut actions = sim.feed(1280, SPEECH);
    assert_eq!(actions, [(544, during)]);
    actions = sim.feed(416, SILENCE);
    assert_eq!(
        actions,
        [(2016, ev(PolicyEvent::TurnEnded { at: sim.at(2016) }))]
    );
    assert!(sim.truncated().is_empty());
    assert_eq!(sim.policy.counters().pauses, 0);
}

fn after_segment_sim() -> Sim {
    let mut sim = Sim::new(PolicyConfig {
        barge_in_after_non_interruptible: true,
        ..PolicyConfig::default()
    });
    sim.play(1000, false);
    sim.play(2000, true);
    sim.feed(320, SILENCE);
    sim
}

#[test]
fn speech_during_non_interruptible_barges_in_when_the_segment_ends() {
    let mut sim = after_segment_sim();
    let during = ev(PolicyEvent::SpeechDuringNonInterruptible { at: sim.at(544) });
    // The segment's last frame goes at 980 ms: from the chunk ending at 992 the next frame
    // is interruptible, so the truncation lands before any of it is sent.
    let actions = sim.feed(1280, SPEECH);
    assert_eq!(
        actions,
        [
            (544, during),
            (992, Truncate),
            (992, sim.barge_in(320, 992, Trigger::Speech)),
        ]
    );
    assert_eq!(sim.finished(), [1000]);
    assert_eq!(sim.truncated(), [(0, 2000)]);
}

#[test]
fn playout_change_barges_in_on_the_exact_frame() {
    let mut sim = after_segment_sim();
    sim.feed(640, SPEECH); // to 960
    sim.run_playout_to(980);
    let view = sim.view();
    sim.policy.on_playout_changed(sim.at(980), view);
    assert_eq!(
        sim.drain(980),
        [
            (980, Truncate),
            (980, sim.barge_in(320, 980, Trigger::Speech))
        ]
    );
}

#[test]
fn no_barge_in_after_the_segment_once_the_caller_finished() {
    let mut sim = after_segment_sim();
    // 224 ms of speech, then silence: the turn ends at 960, before the segment does.
    let mut actions = sim.feed(224, SPEECH);
    actions.extend(sim.feed(1600, SILENCE));
    let during = ev(PolicyEvent::SpeechDuringNonInterruptible { at: sim.at(544) });
    let ended = ev(PolicyEvent::TurnEnded { at: sim.at(960) });
    assert_eq!(actions, [(544, during), (960, ended)]);
    assert!(sim.truncated().is_empty());
}

#[test]
fn dtmf_truncates_interruptible_audio() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    assert_eq!(
        sim.dtmf(),
        [
            (320, Truncate),
            (320, sim.barge_in(320, 320, Trigger::Dtmf))
        ]
    );
    // Frames 0..=320 ms went out (the one due at 320 carries 320..340).
    assert_eq!(sim.truncated(), [(340, 3000)]);
    // No caller speech follows, yet a key press is never a false barge-in.
    assert!(sim.feed(3200, SILENCE).is_empty());
    let c = sim.policy.counters();
    assert_eq!(
        (c.barge_ins, c.dtmf_barge_ins, c.false_barge_ins),
        (1, 1, 0)
    );
}

#[test]
fn dtmf_does_nothing_when_disabled_or_nothing_interruptible_plays() {
    let mut sim = Sim::new(PolicyConfig {
        dtmf_barge_in: false,
        ..PolicyConfig::default()
    });
    sim.play(1000, true);
    sim.feed(320, SILENCE);
    assert!(sim.dtmf().is_empty());

    let mut sim = Sim::new(PolicyConfig::default());
    sim.feed(320, SILENCE);
    assert!(sim.dtmf().is_empty(), "no audio");
    sim.play(1000, false);
    sim.feed(64, SILENCE);
    assert!(sim.dtmf().is_empty(), "non-interruptible audio");
    assert_eq!(sim.policy.counters(), PolicyCounters::default());
}

#[test]
fn dtmf_during_a_tentative_pause_truncates_and_lifts_it() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    sim.feed(96, SPEECH); // paused at 384
    assert_eq!(
        sim.dtmf(),
        [
            (416, Truncate),
            (416, Resume),
            (416, sim.barge_in(416, 416, Trigger::Dtmf))
        ]
    );
    assert!(sim.feed(640, SILENCE).is_empty(), "nothing left to resume");
    assert!(!sim.playout.is_paused());
}

#[test]
fn dtmf_settles_a_pending_bot_decision() {
    let mut sim = bot_sim();
    assert_eq!(sim.dtmf()[0], (544, Truncate));
    assert!(!sim.policy.awaiting_decision());
    assert!(!sim.decide(600, true).0);
    assert_eq!(
        sim.policy.next_deadline(),
        None,
        "no timeout, no false-barge-in check"
    );
}

/// Caller speech 320..640 ms with no agent audio: SpeechStarted at 544.
fn spoken_sim() -> Sim {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.feed(320, SILENCE);
    let started = ev(PolicyEvent::SpeechStarted { onset: sim.at(320) });
    assert_eq!(sim.feed(320, SPEECH), [(544, started)]);
    sim
}

#[test]
fn config_validation_names_the_field() {
    assert_eq!(PolicyConfig::default().validate(), Ok(()));
    let field = |f: fn(&mut PolicyConfig)| {
        let mut cfg = PolicyConfig::default();
        f(&mut cfg);
        cfg.validate().map_err(|e| e.field)
    };
    assert_eq!(field(|c| c.threshold = 0.0), Err("threshold"));
    assert_eq!(field(|c| c.threshold = 1.0), Err("threshold"));
    assert_eq!(field(|c| c.threshold = f32::NAN), Err("threshold"));
    assert_eq!(field(|c| c.min_speech_ms = 0), Err("min_speech_ms"));
    assert_eq!(field(|c| c.min_silence_ms = 20_000), Err("min_silence_ms"));
    assert_eq!(field(|c| c.pause_onset_ms = 0), Err("pause_onset_ms"));
    assert_eq!(field(|c| c.pause_onset_ms = 232), Err("pause_onset_ms"));
    assert_eq!(field(|c| c.decision_ms = 10), Err("decision_ms"));
    assert_eq!(field(|c| c.decision_ms = 60_000), Err("decision_ms"));
    assert_eq!(
        field(|c| c.echo_gate_threshold = f32::NAN),
        Err("echo_gate_threshold")
    );
    assert_eq!(
        field(|c| c.echo_gate_threshold = 1.5),
        Err("echo_gate_threshold")
    );
    assert_eq!(
        field(|c| c.echo_gate_threshold = 0.5),
        Err("echo_gate_threshold")
    );
    // Below the threshold is harmless while the gate is off; 1.0 mutes echo-likely chunks.
    assert_eq!(
        field(|c| {
            c.echo_gate = false;
            c.echo_gate_threshold = 0.5
        }),
        Ok(())
    );
    assert_eq!(field(|c| c.echo_gate_threshold = 1.0), Ok(()));

    let err = PolicyConfig {
        pause_onset_ms: 0,
        ..PolicyConfig::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("pause_onset_ms"), "{err}");
    let bad = PolicyConfig {
        decision_ms: 0,
        ..PolicyConfig::default()
    };
    assert_eq!(BargeInPolicy::new(bad).unwrap_err().field, "decision_ms");
}

#[test]
fn detector_config_converts() {
    let cfg = PolicyConfig::from(crate::bargein::BargeInConfig {
        threshold: 0.6,
        min_speech_ms: 300,
        min_silence_ms: 500,
    });
    assert_eq!(
        (cfg.threshold, cfg.min_speech_ms, cfg.min_silence_ms),
        (0.6, 300, 500)
    );
    assert_eq!(cfg.mode, BargeInMode::Pause);
}

#[test]
fn nan_probability_is_silence() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    assert!(sim.feed(640, f32::NAN).is_empty(), "never starts speech");
    // NaN after a blip releases the pause like silence.
    sim.feed(96, SPEECH); // onset 640, paused at 704
    let actions = sim.feed(192, f32::NAN);
    assert_eq!(actions, [(928, Resume), (928, sim.cancelled(928))]);
    // NaN after confirmed speech ends the turn.
    let mut sim = spoken_sim();
    let actions = sim.feed(416, f32::NAN);
    assert_eq!(
        actions,
        [(1056, ev(PolicyEvent::TurnEnded { at: sim.at(1056) }))]
    );
}

#[test]
fn set_config_mid_call_applies_to_the_next_speech() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(10_000, true);
    sim.feed(320, SILENCE);
    sim.feed(96, SPEECH);
    sim.feed(320, SILENCE); // paused, resumed
    let immediate = PolicyConfig {
        mode: BargeInMode::Immediate,
        threshold: 0.8,
        ..PolicyConfig::default()
    };
    sim.policy.set_config(immediate.clone()).unwrap();
    assert_eq!(sim.policy.config(), &immediate);
    // 0.7 is below the new threshold.
    assert!(sim.feed(640, 0.7).is_empty());
    let invalid = PolicyConfig {
        threshold: 2.0,
        ..PolicyConfig::default()
    };
    assert_eq!(
        sim.policy.set_config(invalid).unwrap_err().field,
        "threshold"
    );
    assert_eq!(sim.policy.config(), &immediate, "the old config is kept");
    let onset = sim.now_ms;
    assert_eq!(
        sim.feed(224, SPEECH),
        [
            (onset + 224, Truncate),
            (
                onset + 224,
                sim.barge_in(onset, onset + 224, Trigger::Speech)
            )
        ]
    );
    assert_eq!(
        sim.policy.counters().pauses,
        1,
        "no pause in immediate mode"
    );
}

#[test]
fn stalled_vad_lifts_a_tentative_pause() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    sim.feed(64, SPEECH); // paused at 384, then no more results
    assert_eq!(sim.policy.next_deadline(), Some(sim.at(684)));
    assert!(sim.timeout(683).is_empty());
    assert_eq!(sim.timeout(684), [(684, Resume), (684, sim.cancelled(684))]);
    assert_eq!(sim.policy.counters().tentative_pauses, 1);
    // The forgotten candidate does not come back: new speech starts a new one.
    sim.now_ms = 704;
    let actions = sim.feed(64, SPEECH);
    assert_eq!(actions, [(768, Pause), (768, sim.tentative(704, 768))]);
}

#[test]
fn in_between_probabilities_cannot_hold_a_pause() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    sim.feed(96, SPEECH); // last speech chunk ends at 416
                          // 0.5 is neither speech nor silence; after min_silence without speech it lapses.
    let actions = sim.feed(960, 0.5);
    assert_eq!(actions, [(832, Resume), (832, sim.cancelled(832))]);
}

#[test]
fn speech_on_hold_is_not_a_barge_in() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.playout.pause(); // hold
    sim.feed(320, SILENCE);
    let started = ev(PolicyEvent::SpeechStarted { onset: sim.at(320) });
    assert_eq!(sim.feed(224, SPEECH), [(544, started)]);
    assert!(!sim.policy.holds_pause());
}

#[test]
fn odd_inputs_do_not_panic() {
    let mut policy = BargeInPolicy::new(PolicyConfig::default()).unwrap();
    let now = Instant::now();
    let playing = PlayoutView {
        playing_interruptible: true,
        ..PlayoutView::default()
    };
    let obs = |chunk_end, chunk_ms, probability| VadObservation {
        chunk_end,
        chunk_ms,
        probability,
        far_active: true,
        echo_likely: false,
        echo_masked: false,
        level_db: -20.0,
        echo_likeness: None,
    };
    // A chunk reaching before the clock's origin, time running backwards, infinities.
    policy.background.disable();
    policy.on_vad(obs(now, u32::MAX, 0.9), playing);
    policy.on_vad(obs(now - 10 * MS, 32, f32::INFINITY), playing);
    policy.on_vad(obs(now - 20 * MS, 0, f32::NEG_INFINITY), playing);
    policy.handle_timeout(now - 1000 * MS);
    assert!(!policy.on_bot_decision(now, true));
    // The huge chunk confirmed speech at once (over interruptible audio: a truncation).
    assert_eq!(policy.poll_action(), Some(Truncate));
    // Both flags set: treated as non-interruptible, DTMF leaves it alone.
    let both = PlayoutView {
        playing_interruptible: true,
        playing_non_interruptible: true,
        paused: false,
    };
    while policy.poll_action().is_some() {}
    policy.on_dtmf(now, 'x', both);
    assert_eq!(policy.poll_action(), None);
}
