//! Reversible barge-in policy (sans-IO): VAD observations, DTMF, playout changes and bot
//! decisions in; playout commands (pause / resume / truncate) and events out.
//!
//! The agent is not cut off on the first hint of caller audio. In the default
//! [`BargeInMode::Pause`] it is *paused* after `pause_onset_ms` of speech (the caller hears
//! the agent stop within ~60–100 ms), truncated once `min_speech_ms` confirms the speech, and
//! resumed exactly where it stopped if the speech ends first (a cough, a click, a "hm"): the
//! caller hears a short stutter instead of losing the rest of the sentence.
//! [`BargeInMode::BotDecides`] hands the confirmation to the bot, [`BargeInMode::Immediate`]
//! never pauses. Non-interruptible audio (compliance disclosures) is never paused or cut.
//!
//! While the echo canceller says the caller side may be our own echo (`echo_likely`), a chunk
//! counts as speech only at `echo_gate_threshold`: the agent must not stop for its own voice.
//! When the canceller's output holds no more than the residual echo it should leave
//! (`echo_masked`: always so in the first words of a call, before it converges), the chunk
//! does not count as speech at all — Silero rightly hears speech in our own voice at any
//! level; only output louder than the expected residual echo can be the caller. Nor does a
//! chunk within our echo's level that our own audio explains well
//! ([`EXPLAINED_ECHO_LIKENESS`]).
//!
//! # Driving it (what the session calls when)
//! - [`BargeInPolicy::on_vad`] for every VAD chunk, in order, with the playout's state now
//!   ([`PlayoutView::of`]). Observations also advance the policy's clock (`chunk_end`).
//! - [`BargeInPolicy::on_playout_changed`] when the playout's state changes without a VAD
//!   chunk (a non-interruptible segment ended, audio was queued, ...): optional, the next
//!   observation sees it too, this only makes the barge-in after a non-interruptible segment
//!   land on the exact frame.
//! - [`BargeInPolicy::on_dtmf`] for every detected digit.
//! - [`BargeInPolicy::on_bot_decision`] when the bot answers a `DecisionRequested`.
//! - [`BargeInPolicy::on_agent_audio_started`] when agent audio starts after silence (a new
//!   talk spurt). Not for audio that continues after the policy's own `Resume`; the policy
//!   ignores one such start within [`RESUME_CONTINUATION`] of its Resume anyway.
//! - [`BargeInPolicy::handle_timeout`] once [`BargeInPolicy::next_deadline`] has passed.
//! - After each of these, [`BargeInPolicy::poll_action`] until `None`, applying
//!   `Pause`/`Resume`/`Truncate` to the playout in order before the next input.

mod background;
mod config;
mod speech;

pub use config::{
    BargeInMode, PolicyConfig, PolicyConfigError, DECISION_MS_RANGE, MIN_PAUSE_ONSET_MS,
};
pub use speech::CANDIDATE_RELEASE;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::playout::Playout;
use background::BackgroundGuard;
use speech::{classify, ChunkClass, Limits, SpeechStep, SpeechTracker};

/// A speech truncation not followed by this much caller speech within
/// [`FALSE_BARGE_IN_WINDOW`] is a false barge-in (how production teams measure it).
pub const FALSE_BARGE_IN_MIN_SPEECH: Duration = Duration::from_millis(300);
pub const FALSE_BARGE_IN_WINDOW: Duration = Duration::from_millis(2_000);
/// Observations decide a false barge-in as soon as a chunk ends past the window; a timeout
/// waits this much longer, because VAD results arrive a little after their chunk ended and
/// the last chunks of the window may still be on their way.
pub const LATE_RESULT_GRACE: Duration = Duration::from_millis(200);
/// A tentative pause is lifted if no VAD result arrived for this long: a stalled VAD must not
/// leave the agent silent (results normally come every 32 ms).
pub const VAD_STALL_RESUME: Duration = Duration::from_millis(300);
/// After the policy's own `Resume`, one `on_agent_audio_started` within this time is the
/// paused audio continuing, not a new talk spurt.
pub const RESUME_CONTINUATION: Duration = Duration::from_millis(200);
/// Undecided false-barge-in checks kept; an older one is decided early (never happens with
/// sane settings: each needs a confirmed speech segment over fresh agent audio).
const MAX_FALSE_BARGE_IN_CHECKS: usize = 16;
/// Echo likeness (how well our own audio explains what is heard, 0.8–0.95 on our echo
/// alone) at or above which a chunk within our echo's level is taken for our echo.
pub const EXPLAINED_ECHO_LIKENESS: f32 = 0.8;

/// One VAD chunk of caller audio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VadObservation {
    /// When the chunk's last sample entered the pipeline.
    pub chunk_end: Instant,
    pub chunk_ms: u32,
    /// Silero's speech probability; NaN counts as silence.
    pub probability: f32,
    /// Agent audio is being played toward the caller (echo may be present). Informational:
    /// `echo_likely` already covers the echo tail after the agent stops.
    pub far_active: bool,
    /// The caller-side level is within the echo expected from what we sent; the echo gate
    /// raises the bar when true.
    pub echo_likely: bool,
    /// The chunk is within the expected echo and the canceller has not converged: with the
    /// echo gate on, it never counts as caller speech.
    pub echo_masked: bool,
    /// Level of the chunk as the VAD heard it (dBFS).
    pub level_db: f32,
    /// How well our own audio explains the inbound audio (see
    /// [`crate::pipeline::ChunkContext::echo_likeness`]).
    pub echo_likeness: Option<f32>,
}

impl VadObservation {
    /// The observation of one Silero chunk ending at `chunk_end`, with what the caller
    /// pipeline knew while it was filled.
    pub fn of_chunk(
        chunk_end: Instant,
        probability: f32,
        context: &crate::pipeline::ChunkContext,
    ) -> Self {
        VadObservation {
            chunk_end,
            chunk_ms: crate::vad::CHUNK_MS,
            probability,
            far_active: context.far_active,
            echo_likely: context.echo_likely,
            echo_masked: context.echo_masked,
            level_db: context.level_db,
            echo_likeness: context.echo_likeness,
        }
    }
}

/// What the playout's next frame carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayoutView {
    pub playing_interruptible: bool,
    /// If both flags are set, the audio is treated as non-interruptible (the safe side).
    pub playing_non_interruptible: bool,
    /// The playout is paused (by the policy, or by a hold).
    pub paused: bool,
}

impl PlayoutView {
    pub fn of(playout: &Playout) -> Self {
        let interruptible = playout.is_playing_interruptible();
        PlayoutView {
            playing_interruptible: interruptible,
            playing_non_interruptible: playout.is_playing() && !interruptible,
            paused: playout.is_paused(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Speech,
    Dtmf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyEvent {
    /// Caller speech confirmed while no agent audio played.
    SpeechStarted { onset: Instant },
    /// The agent was paused on early evidence of caller speech (comes with `Pause`).
    TentativeBargeIn { onset: Instant, at: Instant },
    /// Interruptible agent audio was truncated (comes with `Truncate`). `confirmed_at` is
    /// when the truncation was decided (after a bot decision: when it arrived or timed out).
    BargeIn {
        onset: Instant,
        confirmed_at: Instant,
        by: Trigger,
    },
    /// A tentative pause was undone (comes with `Resume`).
    BargeInCancelled { at: Instant },
    /// BotDecides: the bot should answer with `on_bot_decision` (the agent is paused).
    DecisionRequested { onset: Instant, at: Instant },
    /// Caller speech confirmed over non-interruptible audio (which plays on).
    SpeechDuringNonInterruptible { at: Instant },
    /// `min_silence_ms` without speech after confirmed speech.
    TurnEnded { at: Instant },
    /// The speech truncation at `truncated_at` was not followed by real caller speech.
    FalseBargeIn { truncated_at: Instant },
    /// Agent audio started while the caller was still speaking.
    PrematureCutoff { at: Instant },
}

/// Commands for the playout, in order; `Event`s are for the bot link and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// `Playout::pause()`.
    Pause,
    /// `Playout::resume()` (continues at the sample where it paused). Also follows a
    /// `Truncate` that ends a pause, so that audio queued later plays.
    Resume,
    /// `Playout::truncate()`.
    Truncate,
    Event(PolicyEvent),
}

/// Per-call totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    /// Truncations by the policy (speech and DTMF).
    pub barge_ins: u64,
    /// Every `Pause` the policy issued.
    pub pauses: u64,
    /// Pauses undone because the speech was not confirmed (the caller heard a stutter).
    pub tentative_pauses: u64,
    /// Pauses undone without a truncation (tentative pauses and bot rejections).
    pub resumes: u64,
    pub false_barge_ins: u64,
    pub premature_cutoffs: u64,
    pub dtmf_barge_ins: u64,
    pub bot_confirmed: u64,
    pub bot_rejected: u64,
    pub bot_timeouts: u64,
}

#[derive(Clone, Copy, Debug)]
struct PendingDecision {
    onset: Instant,
    deadline: Instant,
}

#[derive(Clone, Copy, Debug)]
struct FalseBargeInCheck {
    truncated_at: Instant,
    window_end: Instant,
    speech: Duration,
}

fn later(t: Instant, by: Duration) -> Instant {
    // An Instant near the end of its range cannot overflow into a panic: due at once instead.
    t.checked_add(by).unwrap_or(t)
}

fn ms(value: u32) -> Duration {
    Duration::from_millis(u64::from(value))
}

#[derive(Debug)]
pub struct BargeInPolicy {
    cfg: PolicyConfig,
    limits: Limits,
    speech: SpeechTracker,
    view: PlayoutView,
    /// The policy issued a `Pause` not yet undone by `Resume` (or `Truncate` + `Resume`).
    paused: bool,
    decision: Option<PendingDecision>,
    /// Onset of speech confirmed during non-interruptible audio that barges in once
    /// interruptible audio plays while the caller is still speaking.
    barge_after_segment: Option<Instant>,
    checks: VecDeque<FalseBargeInCheck>,
    last_chunk_end: Option<Instant>,
    continuation_until: Option<Instant>,
    actions: VecDeque<PolicyAction>,
    counters: PolicyCounters,
    background: BackgroundGuard,
}

impl BargeInPolicy {
    pub fn new(cfg: PolicyConfig) -> Result<Self, PolicyConfigError> {
        cfg.validate()?;
        Ok(BargeInPolicy {
            limits: Limits::of(&cfg),
            cfg,
            speech: SpeechTracker::new(),
            view: PlayoutView::default(),
            paused: false,
            decision: None,
            barge_after_segment: None,
            checks: VecDeque::with_capacity(MAX_FALSE_BARGE_IN_CHECKS),
            last_chunk_end: None,
            continuation_until: None,
            actions: VecDeque::with_capacity(8),
            counters: PolicyCounters::default(),
            background: BackgroundGuard::default(),
        })
    }

    /// Per-call update, also mid-call: applies from the next input. Speech in progress, a
    /// pause held and a pending bot decision carry on (e.g. a pause taken before a switch to
    /// `Immediate` still ends in a truncation or a resume). An invalid config is refused and
    /// the current one kept.
    pub fn set_config(&mut self, cfg: PolicyConfig) -> Result<(), PolicyConfigError> {
        cfg.validate()?;
        self.limits = Limits::of(&cfg);
        self.cfg = cfg;
        Ok(())
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    pub fn counters(&self) -> PolicyCounters {
        self.counters
    }

    /// The policy holds the playout paused (a hold must not resume it behind its back).
    pub fn holds_pause(&self) -> bool {
        self.paused
    }

    pub fn awaiting_decision(&self) -> bool {
        self.decision.is_some()
    }

    /// The caller is in a confirmed turn and spoke within `min_silence_ms` of `now`.
    pub fn caller_speaking(&self, now: Instant) -> bool {
        self.speech.still_speaking(now, self.limits.min_silence)
    }

    pub fn poll_action(&mut self) -> Option<PolicyAction> {
        self.actions.pop_front()
    }

    /// Earliest time `handle_timeout` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let decision = self.decision.map(|d| d.deadline);
        let check = self
            .checks
            .iter()
            .map(|c| later(c.window_end, LATE_RESULT_GRACE))
            .min();
        let stall = self.stall_deadline();
        [decision, check, stall].into_iter().flatten().min()
    }

    fn stall_deadline(&self) -> Option<Instant> {
        if !self.paused || self.decision.is_some() {
            return None;
        }
        self.last_chunk_end.map(|t| later(t, VAD_STALL_RESUME))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_decision(now);
        while let Some(i) = self
            .checks
            .iter()
            .position(|c| later(c.window_end, LATE_RESULT_GRACE) <= now)
        {
            if let Some(check) = self.checks.remove(i) {
                self.report_false_barge_in(check);
            }
        }
        if self.stall_deadline().is_some_and(|d| d <= now) {
            // No evidence either way: give the caller the agent back.
            self.speech.forget_candidate();
            self.undo_pause(now, true);
        }
    }

    /// The playout started a chunk at `at` (only the call's first start matters: see
    /// `background.rs`). Optional: without it the first observation that sees the agent
    /// playing stands for the start.
    pub fn note_agent_started(&mut self, at: Instant) {
        self.background.note_agent_started(at);
    }

    pub fn on_vad(&mut self, obs: VadObservation, view: PlayoutView) {
        self.view = view;
        let now = obs.chunk_end;
        self.last_chunk_end = Some(now);
        self.expire_decision(now);
        while let Some(i) = self.checks.iter().position(|c| c.window_end < now) {
            if let Some(check) = self.checks.remove(i) {
                self.report_false_barge_in(check);
            }
        }

        let chunk_len = ms(obs.chunk_ms);
        let threshold = if self.cfg.echo_gate && obs.echo_likely {
            self.cfg.echo_gate_threshold.max(self.cfg.threshold)
        } else {
            self.cfg.threshold
        };
        // A masked chunk says nothing about the caller either way (it may hide the gap
        // between two of their syllables under our echo): neutral, never speech, never
        // the silence that would end their candidate.
        // Nor does a chunk within our echo's level that our audio explains well: the
        // canceller's residual of our own words, a few dB over the bar the gate expects
        // while it converges, and Silero sure it is speech (p 0.95 at likeness 0.88 on a
        // recorded corpus call). A caller that loud pulls the likeness to 0.3–0.6.
        let explained_echo = obs.echo_likely
            && obs
                .echo_likeness
                .is_some_and(|l| l >= EXPLAINED_ECHO_LIKENESS);
        let class = if self.cfg.echo_gate && (obs.echo_masked || explained_echo) {
            ChunkClass::Between
        } else {
            classify(obs.probability, threshold)
        };
        // What the VAD heard at the plain threshold, echo or not: the background guard
        // must see a crowd even under our own first words.
        let heard = classify(obs.probability, self.cfg.threshold);
        self.background
            .set_echo_evidence(self.cfg.echo_gate && obs.echo_masked, obs.echo_likeness);
        let agent_playing = view.playing_interruptible || view.playing_non_interruptible;
        let class = self.background.filter(
            now,
            heard,
            class,
            obs.level_db,
            agent_playing || view.paused,
            self.speech.is_idle(),
            self.limits.min_silence,
        );
        if class == ChunkClass::Speech {
            self.credit_checks(now, chunk_len);
        }
        match self.speech.on_chunk(now, chunk_len, class, &self.limits) {
            SpeechStep::Nothing => {}
            SpeechStep::CandidateGrew { onset, speech } => self.maybe_pause(onset, speech, now),
            SpeechStep::Confirmed { onset } => self.on_confirmed(onset, now),
            SpeechStep::Released => self.undo_pause(now, true),
            SpeechStep::TurnEnded => {
                self.barge_after_segment = None;
                self.emit(PolicyEvent::TurnEnded { at: now });
            }
        }
        self.barge_in_after_segment(now);
    }

    pub fn on_playout_changed(&mut self, now: Instant, view: PlayoutView) {
        self.view = view;
        self.barge_in_after_segment(now);
    }

    /// `digit` is not looked at: every digit barges in (when `dtmf_barge_in`).
    pub fn on_dtmf(&mut self, now: Instant, digit: char, view: PlayoutView) {
        let _ = digit;
        self.view = view;
        if !self.cfg.dtmf_barge_in || !self.interruptible_held() {
            return;
        }
        // A key press is unambiguous: it also settles a pending bot decision.
        self.decision = None;
        self.barge_after_segment = None;
        self.truncate(now);
        self.counters.dtmf_barge_ins += 1;
        self.emit(PolicyEvent::BargeIn {
            onset: now,
            confirmed_at: now,
            by: Trigger::Dtmf,
        });
    }

    /// The bot's answer to `DecisionRequested`; false if none was pending (late answers,
    /// after the timeout or a DTMF barge-in, are ignored). An answer arriving after the
    /// deadline but before `handle_timeout` ran still counts.
    pub fn on_bot_decision(&mut self, now: Instant, confirm: bool) -> bool {
        let Some(decision) = self.decision.take() else {
            return false;
        };
        if confirm {
            self.counters.bot_confirmed += 1;
            self.truncate_for_speech(decision.onset, now);
        } else {
            self.counters.bot_rejected += 1;
            self.undo_pause(now, false);
        }
        true
    }

    pub fn on_agent_audio_started(&mut self, now: Instant) {
        if let Some(until) = self.continuation_until.take() {
            if now <= until {
                return;
            }
        }
        if self.speech.still_speaking(now, self.limits.min_silence) {
            self.counters.premature_cutoffs += 1;
            self.emit(PolicyEvent::PrematureCutoff { at: now });
        }
    }

    fn emit(&mut self, event: PolicyEvent) {
        self.actions.push_back(PolicyAction::Event(event));
    }

    fn interruptible_playing(&self) -> bool {
        !self.view.paused && self.view.playing_interruptible && !self.view.playing_non_interruptible
    }

    /// Interruptible audio is playing, or held by the policy's own pause.
    fn interruptible_held(&self) -> bool {
        self.paused || self.interruptible_playing()
    }

    fn non_interruptible_playing(&self) -> bool {
        !self.view.paused && self.view.playing_non_interruptible
    }

    fn maybe_pause(&mut self, onset: Instant, speech: Duration, at: Instant) {
        if self.cfg.mode != BargeInMode::Immediate
            && !self.paused
            && self.decision.is_none()
            && speech >= ms(self.cfg.pause_onset_ms)
            && self.interruptible_playing()
        {
            self.pause(onset, at);
        }
    }

    fn pause(&mut self, onset: Instant, at: Instant) {
        self.paused = true;
        self.counters.pauses += 1;
        self.actions.push_back(PolicyAction::Pause);
        self.emit(PolicyEvent::TentativeBargeIn { onset, at });
    }

    fn on_confirmed(&mut self, onset: Instant, at: Instant) {
        if self.interruptible_held() {
            self.barge_in(onset, at);
        } else if self.non_interruptible_playing() {
            self.emit(PolicyEvent::SpeechDuringNonInterruptible { at });
            if self.cfg.barge_in_after_non_interruptible {
                self.barge_after_segment = Some(onset);
            }
        } else {
            self.emit(PolicyEvent::SpeechStarted { onset });
        }
    }

    /// Confirmed caller speech over interruptible audio, handled as the mode says.
    fn barge_in(&mut self, onset: Instant, at: Instant) {
        if self.cfg.mode != BargeInMode::BotDecides {
            self.truncate_for_speech(onset, at);
            return;
        }
        if self.decision.is_some() {
            return; // the bot is already deciding; the agent stays paused meanwhile
        }
        if !self.paused {
            self.pause(onset, at);
        }
        self.decision = Some(PendingDecision {
            onset,
            deadline: later(at, ms(self.cfg.decision_ms)),
        });
        self.emit(PolicyEvent::DecisionRequested { onset, at });
    }

    fn barge_in_after_segment(&mut self, now: Instant) {
        let Some(onset) = self.barge_after_segment else {
            return;
        };
        if self.speech.speaking_onset().is_none() {
            self.barge_after_segment = None;
        } else if self.interruptible_playing() && self.caller_speaking(now) {
            self.barge_after_segment = None;
            self.barge_in(onset, now);
        }
    }

    fn expire_decision(&mut self, now: Instant) {
        if let Some(decision) = self.decision.filter(|d| d.deadline <= now) {
            self.decision = None;
            self.counters.bot_timeouts += 1;
            self.truncate_for_speech(decision.onset, now);
        }
    }

    /// Drops interruptible audio, lifting the policy's pause so that later audio plays.
    fn truncate(&mut self, at: Instant) {
        self.actions.push_back(PolicyAction::Truncate);
        if self.paused {
            self.paused = false;
            self.actions.push_back(PolicyAction::Resume);
            // What plays on is queued non-interruptible audio, not a new talk spurt.
            self.continuation_until = Some(later(at, RESUME_CONTINUATION));
        }
        self.counters.barge_ins += 1;
    }

    fn truncate_for_speech(&mut self, onset: Instant, at: Instant) {
        self.barge_after_segment = None;
        self.truncate(at);
        self.emit(PolicyEvent::BargeIn {
            onset,
            confirmed_at: at,
            by: Trigger::Speech,
        });
        if self.checks.len() >= MAX_FALSE_BARGE_IN_CHECKS {
            if let Some(oldest) = self.checks.pop_front() {
                self.report_false_barge_in(oldest);
            }
        }
        self.checks.push_back(FalseBargeInCheck {
            truncated_at: at,
            window_end: later(at, FALSE_BARGE_IN_WINDOW),
            speech: Duration::ZERO,
        });
    }

    /// Resumes after the policy's pause. `tentative`: the speech was not confirmed (counted
    /// as a stutter), otherwise the bot rejected it.
    fn undo_pause(&mut self, at: Instant, tentative: bool) {
        if !self.paused || (tentative && self.decision.is_some()) {
            return;
        }
        self.paused = false;
        self.counters.resumes += 1;
        if tentative {
            self.counters.tentative_pauses += 1;
        }
        self.continuation_until = Some(later(at, RESUME_CONTINUATION));
        self.actions.push_back(PolicyAction::Resume);
        self.emit(PolicyEvent::BargeInCancelled { at });
    }

    /// A speech chunk ending at `chunk_end` counts for the windows it falls in; a window that
    /// reaches [`FALSE_BARGE_IN_MIN_SPEECH`] was a real barge-in and needs no more watching.
    fn credit_checks(&mut self, chunk_end: Instant, chunk_len: Duration) {
        for check in self.checks.iter_mut() {
            if chunk_end > check.truncated_at && chunk_end <= check.window_end {
                check.speech = check.speech.saturating_add(chunk_len);
            }
        }
        self.checks.retain(|c| c.speech < FALSE_BARGE_IN_MIN_SPEECH);
    }

    fn report_false_barge_in(&mut self, check: FalseBargeInCheck) {
        if check.speech >= FALSE_BARGE_IN_MIN_SPEECH {
            return;
        }
        self.counters.false_barge_ins += 1;
        self.emit(PolicyEvent::FalseBargeIn {
            truncated_at: check.truncated_at,
        });
    }
}

impl Limits {
    fn of(cfg: &PolicyConfig) -> Self {
        Limits {
            min_speech: ms(cfg.min_speech_ms),
            min_silence: ms(cfg.min_silence_ms),
        }
    }
}

#[cfg(test)]
mod tests;
