//! The caller's speech as the policy sees it: silence → candidate → speaking → silence.
//!
//! Same hysteresis as [`crate::bargein`] (speech at `p >= threshold`, silence below the
//! negative threshold, chunks in between continue whatever is going on), with two
//! differences the policy needs:
//! - Only chunks at or above the threshold add to a candidate's speech. In-between chunks
//!   are neutral, so a probability hovering just under the (echo-raised) bar can never
//!   confirm a barge-in by itself.
//! - An unconfirmed candidate is given up after [`CANDIDATE_RELEASE`] below the negative
//!   threshold (not after `min_silence_ms`): while it lives the agent may be paused, and a
//!   cough should cost the caller a short stutter, not 400 ms of dead air. It is also given
//!   up after `min_silence_ms` without a speech chunk, so in-between probabilities cannot
//!   hold a pause forever.

use std::time::{Duration, Instant};

use crate::bargein::NEGATIVE_THRESHOLD_OFFSET;

/// Time below the negative threshold that ends an unconfirmed candidate (and so resumes a
/// tentative pause). 180 ms: longer than the gaps inside running speech — between
/// syllables ~50–100 ms, but a stop consonant after a first short word ("That's | not what
/// I asked") silences Silero for 130–160 ms, and at 120 ms such a caller was paused,
/// resumed and paused again (a stutter and 200 ms more stop latency on the corpus); short
/// enough that a blip costs the caller ~250 ms of paused agent audio. With 32 ms chunks it
/// takes the sixth silent chunk (192 ms).
pub const CANDIDATE_RELEASE: Duration = Duration::from_millis(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkClass {
    /// `p >= threshold`
    Speech,
    /// `negative <= p < threshold`
    Between,
    /// `p < negative` (NaN included: a broken model must not count as speech)
    Silence,
}

/// Probability below which a chunk is silence: Silero's `threshold - 0.15`, kept at least
/// at half the threshold so that low thresholds can still end speech (as the detector does).
pub(super) fn negative_threshold(threshold: f32) -> f32 {
    (threshold - NEGATIVE_THRESHOLD_OFFSET).max(threshold * 0.5)
}

pub(super) fn classify(probability: f32, threshold: f32) -> ChunkClass {
    if probability.is_nan() {
        ChunkClass::Silence
    } else if probability >= threshold {
        ChunkClass::Speech
    } else if probability < negative_threshold(threshold) {
        ChunkClass::Silence
    } else {
        ChunkClass::Between
    }
}

/// What one chunk did to the caller's speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SpeechStep {
    Nothing,
    /// Unconfirmed speech got longer; `speech` is its total so far.
    CandidateGrew {
        onset: Instant,
        speech: Duration,
    },
    /// The candidate reached `min_speech`: the caller is speaking.
    Confirmed {
        onset: Instant,
    },
    /// The candidate ended before it was confirmed (a blip).
    Released,
    /// Confirmed speech was followed by `min_silence`.
    TurnEnded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Silence,
    Candidate {
        /// Start of the first chunk at or above the threshold.
        onset: Instant,
        speech: Duration,
        silence_since: Option<Instant>,
        last_speech_end: Instant,
    },
    Speaking {
        onset: Instant,
        silence_since: Option<Instant>,
        last_speech_end: Instant,
    },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct SpeechTracker {
    phase: Phase,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub min_speech: Duration,
    pub min_silence: Duration,
}

impl SpeechTracker {
    pub fn new() -> Self {
        SpeechTracker {
            phase: Phase::Silence,
        }
    }

    /// No candidate and no confirmed speech.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Silence)
    }

    /// Confirmed speech not yet ended by `min_silence`: the caller's turn.
    pub fn speaking_onset(&self) -> Option<Instant> {
        match self.phase {
            Phase::Speaking { onset, .. } => Some(onset),
            _ => None,
        }
    }

    /// The caller is still talking at `now`: confirmed speech with no silence run yet, or
    /// less than `min_silence` since the last speech chunk ended.
    pub fn still_speaking(&self, now: Instant, min_silence: Duration) -> bool {
        match self.phase {
            Phase::Speaking {
                silence_since,
                last_speech_end,
                ..
            } => {
                silence_since.is_none()
                    || now.saturating_duration_since(last_speech_end) < min_silence
            }
            _ => false,
        }
    }

    /// Drops an unconfirmed candidate (confirmed speech is kept).
    pub fn forget_candidate(&mut self) {
        if matches!(self.phase, Phase::Candidate { .. }) {
            self.phase = Phase::Silence;
        }
    }

    pub fn on_chunk(
        &mut self,
        chunk_end: Instant,
        chunk_len: Duration,
        class: ChunkClass,
        limits: &Limits,
    ) -> SpeechStep {
        let chunk_start = chunk_end.checked_sub(chunk_len).unwrap_or(chunk_end);
        let release = CANDIDATE_RELEASE.min(limits.min_silence);
        let (next, step) = match (self.phase, class) {
            (Phase::Silence, ChunkClass::Speech) => {
                Self::grow(chunk_start, chunk_len, chunk_end, limits)
            }
            (Phase::Silence, _) => (Phase::Silence, SpeechStep::Nothing),

            (
                Phase::Candidate {
                    onset,
                    speech,
                    silence_since,
                    last_speech_end,
                },
                class,
            ) => {
                let lapsed =
                    chunk_end.saturating_duration_since(last_speech_end) >= limits.min_silence;
                match class {
                    ChunkClass::Speech => {
                        Self::grow(onset, speech.saturating_add(chunk_len), chunk_end, limits)
                    }
                    ChunkClass::Between | ChunkClass::Silence if lapsed => {
                        (Phase::Silence, SpeechStep::Released)
                    }
                    ChunkClass::Between => (self.phase, SpeechStep::Nothing),
                    ChunkClass::Silence => {
                        let since = silence_since.unwrap_or(chunk_start);
                        if chunk_end.saturating_duration_since(since) >= release {
                            (Phase::Silence, SpeechStep::Released)
                        } else {
                            let phase = Phase::Candidate {
                                onset,
                                speech,
                                silence_since: Some(since),
                                last_speech_end,
                            };
                            (phase, SpeechStep::Nothing)
                        }
                    }
                }
            }

            (Phase::Speaking { onset, .. }, ChunkClass::Speech) => {
                let phase = Phase::Speaking {
                    onset,
                    silence_since: None,
                    last_speech_end: chunk_end,
                };
                (phase, SpeechStep::Nothing)
            }
            (Phase::Speaking { .. }, ChunkClass::Between) => (self.phase, SpeechStep::Nothing),
            (
                Phase::Speaking {
                    onset,
                    silence_since,
                    last_speech_end,
                },
                ChunkClass::Silence,
            ) => {
                let since = silence_since.unwrap_or(chunk_start);
                if chunk_end.saturating_duration_since(since) >= limits.min_silence {
                    (Phase::Silence, SpeechStep::TurnEnded)
                } else {
                    let phase = Phase::Speaking {
                        onset,
                        silence_since: Some(since),
                        last_speech_end,
                    };
                    (phase, SpeechStep::Nothing)
                }
            }
        };
        self.phase = next;
        step
    }

    /// A speech chunk made the candidate `speech` long: confirm it at `min_speech`.
    fn grow(
        onset: Instant,
        speech: Duration,
        chunk_end: Instant,
        limits: &Limits,
    ) -> (Phase, SpeechStep) {
        if speech >= limits.min_speech {
            let phase = Phase::Speaking {
                onset,
                silence_since: None,
                last_speech_end: chunk_end,
            };
            return (phase, SpeechStep::Confirmed { onset });
        }
        let phase = Phase::Candidate {
            onset,
            speech,
            silence_since: None,
            last_speech_end: chunk_end,
        };
        (phase, SpeechStep::CandidateGrew { onset, speech })
    }
}
