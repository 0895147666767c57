//! The one place the replay talks to a barge-in decision engine, so switching engines or
//! feeding one differently changes this file only.
//!
//! - [`EngineKind::Policy`] (default): [`media::policy::BargeInPolicy`], the reversible
//!   policy (pause at first evidence, truncate on confirmation, resume on a blip; echo gate
//!   raising the bar while the caller side may be our own echo; false barge-in accounting).
//!   Each chunk becomes a `VadObservation` with the pipeline's chunk context; the playout
//!   view is "interruptible audio playing" = the agent channel carries audio, paused while
//!   the policy holds its pause. BotDecides has no bot here: the decision times out (which
//!   confirms), exactly as with a bot that does not answer.
//! - [`EngineKind::Detector`]: [`media::bargein::BargeInDetector`], the plain detector.
//!
//! The replay is open loop: the recording goes on after a pause or a truncation (what the
//! agent sent is what was recorded), so decisions after one show what the engine would do
//! had the agent gone on. Times are seconds from the start of the recording; the engines run
//! on `Instant`s built from them, as the live call feeds them chunk timestamps.

use std::time::{Duration, Instant};

use media::bargein::{BargeInConfig, BargeInDecision, BargeInDetector};
use media::pipeline::ChunkContext;
use media::policy::{
    BargeInPolicy, PlayoutView, PolicyAction, PolicyConfig, PolicyEvent, VadObservation,
};
use media::vad::CHUNK_MS;

/// Which engine decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    #[default]
    Policy,
    Detector,
}

impl EngineKind {
    pub fn parse(name: &str) -> Option<EngineKind> {
        match name {
            "policy" => Some(EngineKind::Policy),
            "detector" => Some(EngineKind::Detector),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Policy => "policy",
            EngineKind::Detector => "detector",
        }
    }
}

/// What one VAD chunk tells the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkObservation {
    /// End of the chunk's last sample, seconds from the start of the recording.
    pub end_s: f64,
    pub probability: f32,
    /// The agent channel carried audio (see `timeline::AgentDetection`).
    pub agent_interruptible: bool,
    /// What the echo canceller knew while the chunk was filled.
    pub context: ChunkContext,
}

/// What was decided, `at_s` seconds from the start of the recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub at_s: f64,
    pub kind: DecisionKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DecisionKind {
    /// Caller speech confirmed while no interruptible agent audio played.
    SpeechStarted {
        onset_s: f64,
    },
    /// The agent was paused on early evidence of speech.
    Paused {
        onset_s: f64,
    },
    /// Interruptible agent audio was truncated.
    BargeIn {
        onset_s: f64,
        dtmf: bool,
    },
    /// A pause was undone (the speech was not confirmed, or the bot rejected it).
    Resumed,
    /// BotDecides: the bot was asked.
    DecisionRequested {
        onset_s: f64,
    },
    SpeechDuringNonInterruptible,
    TurnEnded,
    /// The truncation at `truncated_s` was not followed by real caller speech.
    FalseBargeIn {
        truncated_s: f64,
    },
    /// Agent audio started while the caller was still speaking.
    PrematureCutoff,
}

/// Every decision name, in the order summaries list them.
pub const DECISION_NAMES: [&str; 9] = [
    "barge_in",
    "speech_started",
    "turn_ended",
    "paused",
    "resumed",
    "decision_requested",
    "speech_during_non_interruptible",
    "false_barge_in",
    "premature_cutoff",
];

impl Decision {
    /// Event name in the text and JSON output.
    pub fn name(&self) -> &'static str {
        match self.kind {
            DecisionKind::SpeechStarted { .. } => "speech_started",
            DecisionKind::Paused { .. } => "paused",
            DecisionKind::BargeIn { .. } => "barge_in",
            DecisionKind::Resumed => "resumed",
            DecisionKind::DecisionRequested { .. } => "decision_requested",
            DecisionKind::SpeechDuringNonInterruptible => "speech_during_non_interruptible",
            DecisionKind::TurnEnded => "turn_ended",
            DecisionKind::FalseBargeIn { .. } => "false_barge_in",
            DecisionKind::PrematureCutoff => "premature_cutoff",
        }
    }

    /// Start of the caller speech the decision is about, if it has one.
    pub fn onset_s(&self) -> Option<f64> {
        match self.kind {
            DecisionKind::SpeechStarted { onset_s }
            | DecisionKind::Paused { onset_s }
            | DecisionKind::BargeIn { onset_s, .. }
            | DecisionKind::DecisionRequested { onset_s } => Some(onset_s),
            _ => None,
        }
    }

    /// The decision confirms caller speech (it starts a shaded speech region in the plot).
    pub fn confirms_speech(&self) -> bool {
        matches!(
            self.kind,
            DecisionKind::SpeechStarted { .. }
                | DecisionKind::BargeIn { dtmf: false, .. }
                | DecisionKind::DecisionRequested { .. }
                | DecisionKind::SpeechDuringNonInterruptible
        )
    }
}

/// Threshold lines for the plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub speech: f32,
    pub silence: f32,
    /// The raised threshold while echo is likely (policy with echo gate on).
    pub echo_gate: Option<f32>,
}

enum Inner {
    Policy(Box<BargeInPolicy>),
    Detector(BargeInDetector),
}

pub struct DecisionEngine {
    inner: Inner,
    kind: EngineKind,
    thresholds: Thresholds,
    t0: Instant,
    agent_was_active: bool,
}

impl DecisionEngine {
    /// `cfg` is the gateway's barge-in policy configuration; the detector uses its
    /// threshold, min_speech_ms and min_silence_ms.
    pub fn new(kind: EngineKind, cfg: PolicyConfig) -> Result<Self, String> {
        let detector_cfg = BargeInConfig {
            threshold: cfg.threshold,
            min_speech_ms: cfg.min_speech_ms,
            min_silence_ms: cfg.min_silence_ms,
        };
        let thresholds = Thresholds {
            speech: cfg.threshold,
            silence: detector_cfg.negative_threshold(),
            echo_gate: (kind == EngineKind::Policy && cfg.echo_gate)
                .then_some(cfg.echo_gate_threshold.max(cfg.threshold)),
        };
        let inner = match kind {
            EngineKind::Policy => Inner::Policy(Box::new(
                BargeInPolicy::new(cfg).map_err(|e| e.to_string())?,
            )),
            EngineKind::Detector => Inner::Detector(BargeInDetector::new(detector_cfg)),
        };
        Ok(DecisionEngine {
            inner,
            kind,
            thresholds,
            t0: Instant::now(),
            agent_was_active: false,
        })
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Feeds one chunk; appends what the engine decided to `out`.
    pub fn on_chunk(&mut self, chunk: &ChunkObservation, out: &mut Vec<Decision>) {
        let end = self.instant(chunk.end_s);
        match &mut self.inner {
            Inner::Detector(detector) => {
                let decision =
                    detector.on_vad(end, CHUNK_MS, chunk.probability, chunk.agent_interruptible);
                let decision = match decision {
                    Some(BargeInDecision::SpeechStarted { onset }) => Decision {
                        at_s: chunk.end_s,
                        kind: DecisionKind::SpeechStarted {
                            onset_s: seconds(self.t0, onset),
                        },
                    },
                    Some(BargeInDecision::BargeIn {
                        onset,
                        confirmed_at,
                    }) => Decision {
                        at_s: seconds(self.t0, confirmed_at),
                        kind: DecisionKind::BargeIn {
                            onset_s: seconds(self.t0, onset),
                            dtmf: false,
                        },
                    },
                    Some(BargeInDecision::TurnEnded { at }) => Decision {
                        at_s: seconds(self.t0, at),
                        kind: DecisionKind::TurnEnded,
                    },
                    None => return,
                };
                out.push(decision);
            }
            Inner::Policy(policy) => {
                let observation = VadObservation::of_chunk(end, chunk.probability, &chunk.context);
                let view = playout_view(policy, chunk.agent_interruptible);
                policy.on_vad(observation, view);
                drain(policy, self.t0, end, out);
            }
        }
    }

    /// One 20 ms tick ending at `frame_end_s`, as the live session ticks: agent talk spurts
    /// (for premature cut-offs), the playout's state, and timers that fell due.
    pub fn on_frame(
        &mut self,
        frame_end_s: f64,
        agent_interruptible: bool,
        out: &mut Vec<Decision>,
    ) {
        let now = self.instant(frame_end_s);
        let Inner::Policy(policy) = &mut self.inner else {
            return;
        };
        if agent_interruptible && !self.agent_was_active {
            policy.on_agent_audio_started(now);
        }
        self.agent_was_active = agent_interruptible;
        policy.on_playout_changed(now, playout_view(policy, agent_interruptible));
        if policy.next_deadline().is_some_and(|d| d <= now) {
            policy.handle_timeout(now);
        }
        drain(policy, self.t0, now, out);
    }

    /// The recording ended at `end_s`: lets pending timers (bot decision, false barge-in
    /// windows) run out, as they would have had the call gone on in silence.
    pub fn finish(&mut self, end_s: f64, out: &mut Vec<Decision>) {
        let end = self.instant(end_s);
        if let Inner::Policy(policy) = &mut self.inner {
            // Each timeout settles at least one timer; the bound only guards against a bug.
            for _ in 0..64 {
                let Some(deadline) = policy.next_deadline() else {
                    break;
                };
                let now = deadline.max(end);
                policy.handle_timeout(now);
                drain(policy, self.t0, now, out);
            }
        }
    }

    fn instant(&self, seconds: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(seconds.max(0.0))
    }
}

/// What the live session's playout would report: interruptible audio while the agent channel
/// carries audio, paused while the policy holds its pause.
fn playout_view(policy: &BargeInPolicy, agent_interruptible: bool) -> PlayoutView {
    PlayoutView {
        playing_interruptible: agent_interruptible,
        playing_non_interruptible: false,
        paused: policy.holds_pause(),
    }
}

fn seconds(t0: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(t0).as_secs_f64()
}

/// Turns the policy's pending actions into decisions. Playout commands (Pause, Resume,
/// Truncate) come with an event saying the same, so only the events are kept.
fn drain(policy: &mut BargeInPolicy, t0: Instant, now: Instant, out: &mut Vec<Decision>) {
    let s = |at: Instant| seconds(t0, at);
    while let Some(action) = policy.poll_action() {
        let PolicyAction::Event(event) = action else {
            continue;
        };
        let (at, kind) = match event {
            PolicyEvent::SpeechStarted { onset } => {
                (now, DecisionKind::SpeechStarted { onset_s: s(onset) })
            }
            PolicyEvent::TentativeBargeIn { onset, at } => {
                (at, DecisionKind::Paused { onset_s: s(onset) })
            }
            PolicyEvent::BargeIn {
                onset,
                confirmed_at,
                by,
            } => (
                confirmed_at,
                DecisionKind::BargeIn {
                    onset_s: s(onset),
                    dtmf: by == media::policy::Trigger::Dtmf,
                },
            ),
            PolicyEvent::BargeInCancelled { at } => (at, DecisionKind::Resumed),
            PolicyEvent::DecisionRequested { onset, at } => {
                (at, DecisionKind::DecisionRequested { onset_s: s(onset) })
            }
            PolicyEvent::SpeechDuringNonInterruptible { at } => {
                (at, DecisionKind::SpeechDuringNonInterruptible)
            }
            PolicyEvent::TurnEnded { at } => (at, DecisionKind::TurnEnded),
            PolicyEvent::FalseBargeIn { truncated_at } => (
                now,
                DecisionKind::FalseBargeIn {
                    truncated_s: s(truncated_at),
                },
            ),
            PolicyEvent::PrematureCutoff { at } => (at, DecisionKind::PrematureCutoff),
        };
        out.push(Decision { at_s: s(at), kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(
        engine: &mut DecisionEngine,
        from_chunk: u32,
        probs: &[f32],
        agent: bool,
        echo_likely: bool,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        for (i, p) in probs.iter().enumerate() {
            let end_s = f64::from(from_chunk + i as u32 + 1) * f64::from(CHUNK_MS) / 1000.0;
            let chunk = ChunkObservation {
                end_s,
                probability: *p,
                agent_interruptible: agent,
                context: ChunkContext {
                    far_active: agent,
                    echo_likely,
                    ..Default::default()
                },
            };
            engine.on_frame(end_s, agent, &mut out);
            engine.on_chunk(&chunk, &mut out);
        }
        out
    }

    fn names(d: &[Decision]) -> Vec<&'static str> {
        d.iter().map(Decision::name).collect()
    }

    #[test]
    fn detector_speech_over_the_agent_is_a_barge_in_with_its_onset_in_seconds() {
        let mut engine =
            DecisionEngine::new(EngineKind::Detector, PolicyConfig::default()).unwrap();
        assert!(feed(&mut engine, 0, &[0.0; 10], true, false).is_empty());
        let out = feed(&mut engine, 10, &[0.9; 10], true, false);
        assert_eq!(names(&out), ["barge_in"]);
        assert!((out[0].onset_s().unwrap() - 0.32).abs() < 1e-6);
        // 200 ms of speech = 7 chunks of 32 ms.
        assert!(
            (out[0].at_s - 0.32 - 7.0 * 0.032).abs() < 1e-6,
            "{:?}",
            out[0]
        );
        let out = feed(&mut engine, 20, &[0.0; 20], true, false);
        assert_eq!(names(&out), ["turn_ended"]);
        let out = feed(&mut engine, 40, &[0.9; 10], false, false);
        assert_eq!(names(&out), ["speech_started"]);
        assert!((out[0].onset_s().unwrap() - 40.0 * 0.032).abs() < 1e-6);
        assert_eq!(engine.thresholds().echo_gate, None);
    }

    #[test]
    fn policy_pauses_then_truncates_and_counts_a_false_barge_in() {
        let mut engine = DecisionEngine::new(EngineKind::Policy, PolicyConfig::default()).unwrap();
        assert_eq!(engine.thresholds().echo_gate, Some(0.85));
        // Speech from 0.64 s: later than the first-prompt guard (speech within 500 ms of
        // the agent's first audio is background, see media's policy/background.rs).
        feed(&mut engine, 0, &[0.0; 20], true, false);
        let out = feed(&mut engine, 20, &[0.9; 8], true, false);
        assert_eq!(names(&out), ["paused", "barge_in"]);
        assert!((out[0].onset_s().unwrap() - 0.64).abs() < 1e-6);
        // Nothing more from the caller: after the 2 s window the truncation was false.
        let mut out = feed(&mut engine, 28, &[0.0; 20], true, false);
        engine.finish(3.0, &mut out);
        assert_eq!(names(&out), ["turn_ended", "false_barge_in"]);
        let DecisionKind::FalseBargeIn { truncated_s } = out[1].kind else {
            panic!("{out:?}");
        };
        assert!((truncated_s - (0.64 + 7.0 * 0.032)).abs() < 1e-6, "{out:?}");
        // Reported once its 2 s window (plus the grace for late results) is over.
        assert!(out[1].at_s >= truncated_s + 2.0, "{out:?}");
    }

    #[test]
    fn policy_echo_gate_raises_the_bar_and_a_blip_resumes() {
        let mut engine = DecisionEngine::new(EngineKind::Policy, PolicyConfig::default()).unwrap();
        feed(&mut engine, 0, &[0.0; 20], true, false);
        // 0.7 is speech normally, but not while echo is likely (0.85).
        assert!(feed(&mut engine, 20, &[0.7; 20], true, true).is_empty());
        let out = feed(
            &mut engine,
            40,
            // Three chunks of speech, then six of silence (192 ms: the release is 180 ms).
            &[0.9, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            true,
            false,
        );
        assert_eq!(names(&out), ["paused", "resumed"]);
        assert_eq!(EngineKind::parse("detector"), Some(EngineKind::Detector));
        assert_eq!(EngineKind::parse("x"), None);
    }
}
