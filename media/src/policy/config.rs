//! Barge-in policy settings: one global default, overridable per call (also mid-call).

use crate::bargein::{BargeInConfig, MIN_SILENCE_MS_RANGE, MIN_SPEECH_MS_RANGE};

/// Smallest accepted `pause_onset_ms`: below one VAD chunk (32 ms) every value behaves the
/// same (pause on the first speech chunk), 10 ms only rules out nonsense like 0.
pub const MIN_PAUSE_ONSET_MS: u32 = 10;
/// Accepted `decision_ms`: long enough for a bot on the far side of a WebSocket to answer,
/// short enough that a silent bot cannot hold the agent paused for long.
pub const DECISION_MS_RANGE: std::ops::RangeInclusive<u32> = 50..=5_000;

/// What confirmed caller speech does to interruptible agent audio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BargeInMode {
    /// Truncate once speech is confirmed; the agent talks on until then.
    Immediate,
    /// Pause at the first strong evidence, truncate on confirmation, resume if it was a blip.
    #[default]
    Pause,
    /// Pause at the first strong evidence; on confirmation ask the bot, which confirms
    /// (truncate) or rejects (resume) within `decision_ms` (silence = confirm).
    BotDecides,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyConfig {
    pub mode: BargeInMode,
    /// Speech probability at or above which a chunk is speech, in (0, 1).
    pub threshold: f32,
    /// Speech (chunks at or above the threshold) needed to confirm a barge-in or a turn.
    pub min_speech_ms: u32,
    /// Non-speech after confirmed speech that ends the caller's turn.
    pub min_silence_ms: u32,
    /// Speech needed before the agent is paused (Pause / BotDecides): strong early evidence,
    /// so the pause lands ~60–100 ms after onset. At most `min_speech_ms`.
    pub pause_onset_ms: u32,
    /// How long BotDecides waits for the bot's answer before confirming on its own.
    pub decision_ms: u32,
    /// Raise the bar while the echo canceller says the caller side may be our own echo.
    pub echo_gate: bool,
    /// Threshold used instead of `threshold` while the echo gate applies (>= `threshold`).
    pub echo_gate_threshold: f32,
    /// A DTMF digit truncates interruptible agent audio.
    pub dtmf_barge_in: bool,
    /// Speech during a non-interruptible segment barges in when the segment ends (if the
    /// caller is still speaking then); `false`: it is only reported.
    pub barge_in_after_non_interruptible: bool,
}

impl Default for PolicyConfig {
    /// Detector values from a 2 000-call A/B test (3.2 % false barge-in, 1.8 % premature
    /// cut-offs); the pause lands two 32 ms chunks after onset.
    fn default() -> Self {
        let detector = BargeInConfig::default();
        PolicyConfig {
            mode: BargeInMode::Pause,
            threshold: detector.threshold,
            min_speech_ms: detector.min_speech_ms,
            min_silence_ms: detector.min_silence_ms,
            pause_onset_ms: 64,
            decision_ms: 500,
            echo_gate: true,
            echo_gate_threshold: 0.85,
            dtmf_barge_in: true,
            barge_in_after_non_interruptible: false,
        }
    }
}

impl From<BargeInConfig> for PolicyConfig {
    /// The detector's three values, everything else at its default.
    fn from(detector: BargeInConfig) -> Self {
        PolicyConfig {
            threshold: detector.threshold,
            min_speech_ms: detector.min_speech_ms,
            min_silence_ms: detector.min_silence_ms,
            ..PolicyConfig::default()
        }
    }
}

/// A rejected [`PolicyConfig`]: `field` is the config key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("barge-in policy {field}: {reason}")]
pub struct PolicyConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: String) -> Result<(), PolicyConfigError> {
    Err(PolicyConfigError { field, reason })
}

fn check_range(
    field: &'static str,
    value: u32,
    range: &std::ops::RangeInclusive<u32>,
) -> Result<(), PolicyConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    invalid(
        field,
        format!("{value} ms: must be in {}..={}", range.start(), range.end()),
    )
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return invalid(
                "threshold",
                format!(
                    "{}: must be a probability strictly between 0 and 1",
                    self.threshold
                ),
            );
        }
        check_range("min_speech_ms", self.min_speech_ms, &MIN_SPEECH_MS_RANGE)?;
        check_range("min_silence_ms", self.min_silence_ms, &MIN_SILENCE_MS_RANGE)?;
        if !(MIN_PAUSE_ONSET_MS..=self.min_speech_ms).contains(&self.pause_onset_ms) {
            return invalid(
                "pause_onset_ms",
                format!(
                    "{} ms: must be in {MIN_PAUSE_ONSET_MS}..=min_speech_ms ({})",
                    self.pause_onset_ms, self.min_speech_ms
                ),
            );
        }
        check_range("decision_ms", self.decision_ms, &DECISION_MS_RANGE)?;
        if !(self.echo_gate_threshold > 0.0 && self.echo_gate_threshold <= 1.0) {
            return invalid(
                "echo_gate_threshold",
                format!(
                    "{}: must be a probability in (0, 1]",
                    self.echo_gate_threshold
                ),
            );
        }
        // A gate below the normal threshold would make echo *easier* to barge in with.
        if self.echo_gate && self.echo_gate_threshold < self.threshold {
            return invalid(
                "echo_gate_threshold",
                format!(
                    "{}: must not be below threshold ({}) while echo_gate is on",
                    self.echo_gate_threshold, self.threshold
                ),
            );
        }
        Ok(())
    }
}
