//! The call's side of its bot: the link, the commands it sends, the per-call barge-in
//! settings it may change, a pending transfer, and what happens when the bot fails
//! (`bot.on_failure`): never a silent dead call.

use std::time::{Duration, Instant};

use media::playout::{Chunk, PlayoutError};
use media::policy::{BargeInMode, PolicyConfig};
use media::session::{MediaEvent, MediaSession};
use sip::ua::CallHandle;
use tracing::{debug, info, warn};

use super::{send, CallContext};
use crate::bot::link::{BotLink, CallerAudio, LinkError};
use crate::bot::{BargeInUpdate, BotCommand, BotEvent, CommandError, CommandErrorKind};
use crate::config::BotConfig;
use crate::signalling::SipCommand;

/// Playback id of the fallback prompt (not a bot's chunk).
const FALLBACK_ID: &str = "bargein-fallback";

/// Who asked for the pending transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TransferBy {
    Bot,
    Fallback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fallback {
    /// The bot is fine (or the policy is "reject").
    Idle,
    /// The fallback prompt plays; then `bot.fallback.then`.
    Playing,
    /// The prompt is over and the transfer or hangup is under way.
    Done,
}

pub(super) struct BotSide<'a> {
    cfg: &'a BotConfig,
    link: Option<BotLink>,
    /// The link failed and the failure policy has yet to be applied (needs the session).
    failed: Option<String>,
    fallback: Fallback,
    transfer: Option<TransferBy>,
    /// When the pending transfer is given up (`bot.transfer_timeout_ms`).
    transfer_deadline: Option<Instant>,
    policy: PolicyConfig,
    commands: Vec<BotCommand>,
    hung_up: bool,
}

impl<'a> BotSide<'a> {
    /// `link: None` = the bot could not be reached at call start (fallback policy).
    pub(super) fn new(cfg: &'a BotConfig, link: Option<BotLink>, policy: PolicyConfig) -> Self {
        let failed = link
            .is_none()
            .then(|| "bot unreachable at call start".to_string());
        BotSide {
            cfg,
            link,
            failed,
            fallback: Fallback::Idle,
            transfer: None,
            transfer_deadline: None,
            policy,
            commands: Vec::new(),
            hung_up: false,
        }
    }

    pub(super) fn connected(&self) -> bool {
        self.link.is_some()
    }

    pub(super) fn send_event(&mut self, event: BotEvent) {
        let Some(link) = &mut self.link else { return };
        match link.send_event(event) {
            Ok(()) => {}
            Err(LinkError::Stalled) => self.fail("bot stalled: not taking events"),
            Err(LinkError::Gone) => self.fail("bot link closed"),
        }
    }

    /// Whether a bot is connected that takes caller audio.
    pub(super) fn wants_audio(&self) -> bool {
        self.link.as_ref().is_some_and(BotLink::wants_audio)
    }

    pub(super) fn send_audio(&mut self, frame: CallerAudio) {
        if let Some(link) = &mut self.link {
            link.send_audio(frame);
        }
    }

    /// The next command from the bot (pending forever without a bot). Cancel-safe.
    pub(super) async fn recv(&mut self) -> Option<BotCommand> {
        match &mut self.link {
            Some(link) => link.recv_command().await,
            None => std::future::pending().await,
        }
    }

    pub(super) fn push(&mut self, cmd: BotCommand) {
        self.commands.push(cmd);
    }

    /// The bot went away (`recv` returned `None`).
    pub(super) fn gone(&mut self) {
        self.fail("bot link closed mid-call");
    }

    fn fail(&mut self, why: &str) {
        if let Some(link) = self.link.take() {
            info!(audio_dropped = link.audio_dropped(), "bot link stats");
        }
        if !self.hung_up && self.failed.is_none() && self.fallback == Fallback::Idle {
            warn!(reason = why, on_failure = %self.cfg.on_failure, "bot failed");
            self.failed = Some(why.to_string());
        }
    }

    /// Ends the call from our side (BYE), once.
    pub(super) async fn hangup(&mut self, ctx: &CallContext, call: CallHandle) {
        if !self.hung_up {
            self.hung_up = true;
            info!("gateway hangs up");
            send(ctx, SipCommand::Hangup { call }).await;
        }
    }

    pub(super) fn hung_up(&self) -> bool {
        self.hung_up
    }

    pub(super) fn call_ended(&mut self, reason: &str) {
        self.send_event(BotEvent::CallEnded {
            reason: reason.to_string(),
        });
        if let Some(link) = &self.link {
            info!(audio_dropped = link.audio_dropped(), "bot link stats");
        }
    }

    /// Media events the call itself acts on (the fallback prompt's end).
    pub(super) fn on_media_event(&mut self, ev: &MediaEvent) -> bool {
        if let MediaEvent::PlaybackFinished { playback_id, .. } = ev {
            if playback_id == FALLBACK_ID && self.fallback == Fallback::Playing {
                self.fallback = Fallback::Done;
                return true;
            }
        }
        false
    }

    /// Applies the bot's commands and a pending failure to the call.
    pub(super) async fn apply(
        &mut self,
        ctx: &CallContext,
        call: CallHandle,
        session: &mut MediaSession,
        fallback_finished: bool,
    ) {
        if let Some(why) = self.failed.take() {
            self.on_failure(ctx, call, session, &why).await;
        }
        if fallback_finished {
            self.after_fallback(ctx, call).await;
        }
        let commands = std::mem::take(&mut self.commands);
        for cmd in commands {
            if self.hung_up {
                break;
            }
            self.apply_one(ctx, call, session, cmd).await;
        }
    }

    async fn on_failure(
        &mut self,
        ctx: &CallContext,
        call: CallHandle,
        session: &mut MediaSession,
        why: &str,
    ) {
        if self.cfg.on_failure != "fallback" {
            info!(
                reason = why,
                "bot failure: hanging up (bot.on_failure = reject)"
            );
            return self.hangup(ctx, call).await;
        }
        // The bot's queued audio goes: the caller hears the fallback prompt next.
        session.clear();
        let samples = match media::wav::load_prompt(&self.cfg.fallback.prompt) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "fallback prompt unusable: hanging up");
                return self.hangup(ctx, call).await;
            }
        };
        let chunk = Chunk {
            playback_id: FALLBACK_ID.into(),
            mark: None,
            interruptible: false,
            samples,
        };
        if let Err(e) = session.play(chunk) {
            warn!(error = ?e, "fallback prompt not queued: hanging up");
            return self.hangup(ctx, call).await;
        }
        info!(reason = why, then = %self.cfg.fallback.then, "bot failure: playing the fallback prompt");
        self.fallback = Fallback::Playing;
    }

    async fn after_fallback(&mut self, ctx: &CallContext, call: CallHandle) {
        if self.cfg.fallback.then == "transfer" && self.transfer.is_none() {
            info!(target = %self.cfg.fallback.transfer_target, "fallback: transferring");
            self.start_transfer(TransferBy::Fallback);
            let target = self.cfg.fallback.transfer_target.clone();
            send(ctx, SipCommand::Refer { call, target }).await;
        } else {
            info!("fallback prompt played: hanging up");
            self.hangup(ctx, call).await;
        }
    }

    fn start_transfer(&mut self, by: TransferBy) {
        self.transfer = Some(by);
        self.transfer_deadline =
            Some(Instant::now() + Duration::from_millis(self.cfg.transfer_timeout_ms));
    }

    /// When the pending transfer times out, if one is pending.
    pub(super) fn transfer_deadline(&self) -> Option<Instant> {
        self.transfer_deadline
    }

    /// The far end accepted (or ignored) our REFER but never said how it ended: give up as
    /// if it had failed with 408, so the bot can go on (or the fallback call ends).
    pub(super) async fn on_transfer_timeout(&mut self, ctx: &CallContext, call: CallHandle) {
        warn!(
            timeout_ms = self.cfg.transfer_timeout_ms,
            "transfer not reported done in time: given up"
        );
        self.on_transfer_progress(ctx, call, 408, true).await;
    }

    /// Progress of our REFER: the REFER's own final response (`from_notify` false) or a
    /// NOTIFY sipfrag status line.
    pub(super) async fn on_transfer_progress(
        &mut self,
        ctx: &CallContext,
        call: CallHandle,
        status: u16,
        from_notify: bool,
    ) {
        let Some(by) = self.transfer else {
            debug!(status, "transfer progress with no transfer pending");
            return;
        };
        let done = if from_notify {
            status >= 200
        } else {
            status >= 300
        };
        if !done {
            debug!(status, from_notify, "transfer in progress");
            return;
        }
        self.transfer = None;
        self.transfer_deadline = None;
        let accepted = (200..300).contains(&status);
        info!(status, accepted, "transfer finished");
        self.send_event(BotEvent::TransferResult {
            accepted,
            sip_status: status,
        });
        // Transferred: our leg is done. A failed fallback transfer has nothing left to try.
        if accepted || by == TransferBy::Fallback {
            self.hangup(ctx, call).await;
        }
    }

    fn refuse(&mut self, kind: CommandErrorKind, message: String, playback_id: Option<String>) {
        warn!(?kind, %message, "bot command refused");
        self.send_event(BotEvent::CommandFailed(CommandError {
            kind,
            message,
            playback_id,
        }));
    }

    async fn apply_one(
        &mut self,
        ctx: &CallContext,
        call: CallHandle,
        session: &mut MediaSession,
        cmd: BotCommand,
    ) {
        match cmd {
            BotCommand::Play {
                playback_id,
                samples,
                interruptible,
            } => {
                let chunk = Chunk {
                    playback_id: playback_id.clone(),
                    mark: None,
                    interruptible,
                    samples: samples.to_vec(),
                };
                if let Err(PlayoutError::Full) = session.play(chunk) {
                    let message = format!(
                        "chunk of {} ms refused: queued audio would exceed bot.max_buffered_s = {} s",
                        samples.len() / 8,
                        self.cfg.max_buffered_s
                    );
                    self.refuse(CommandErrorKind::BufferFull, message, Some(playback_id));
                }
            }
            BotCommand::Mark { playback_id, name } => {
                let chunk = Chunk {
                    playback_id,
                    mark: Some(name),
                    interruptible: true,
                    samples: Vec::new(),
                };
                // A mark carries no samples: it cannot overflow the queue.
                let _ = session.play(chunk);
            }
            BotCommand::Clear => session.clear(),
            BotCommand::ConfirmBargeIn | BotCommand::RejectBargeIn => {
                let confirm = matches!(cmd, BotCommand::ConfirmBargeIn);
                if !session.bot_decision(Instant::now(), confirm) {
                    debug!(confirm, "bot decision with nothing pending (late): ignored");
                }
            }
            BotCommand::UpdateBargeIn(update) => match updated_policy(&self.policy, &update) {
                Ok(policy) => match session.set_policy(policy.clone()) {
                    Ok(()) => {
                        info!(?update, "barge-in settings changed by the bot");
                        self.policy = policy;
                    }
                    Err(e) => self.refuse(CommandErrorKind::InvalidSettings, e, None),
                },
                Err(e) => self.refuse(CommandErrorKind::InvalidSettings, e, None),
            },
            BotCommand::Transfer { target } => {
                if self.transfer.is_some() {
                    let message = "a transfer is already in progress".to_string();
                    return self.refuse(CommandErrorKind::NotPossible, message, None);
                }
                info!(%target, "bot asks for a transfer (REFER)");
                self.start_transfer(TransferBy::Bot);
                send(ctx, SipCommand::Refer { call, target }).await;
            }
            BotCommand::SendDtmf {
                digits,
                duration_ms,
            } => {
                info!(%digits, "bot sends DTMF (SIP INFO)");
                for digit in digits.chars() {
                    let body = format!("Signal={digit}\r\nDuration={duration_ms}\r\n");
                    let info = SipCommand::Info {
                        call,
                        content_type: "application/dtmf-relay".into(),
                        body,
                    };
                    send(ctx, info).await;
                }
            }
            BotCommand::Hangup => self.hangup(ctx, call).await,
        }
    }
}

/// The call's barge-in settings with a bot's update applied (validated by the session).
fn updated_policy(current: &PolicyConfig, u: &BargeInUpdate) -> Result<PolicyConfig, String> {
    let mut p = current.clone();
    if let Some(mode) = &u.mode {
        p.mode = match mode.as_str() {
            "immediate" => BargeInMode::Immediate,
            "pause" => BargeInMode::Pause,
            "bot_decides" => BargeInMode::BotDecides,
            other => {
                return Err(format!(
                    "unknown mode `{other}` (immediate, pause, bot_decides)"
                ))
            }
        };
    }
    if let Some(v) = u.threshold {
        p.threshold = v;
    }
    if let Some(v) = u.min_speech_ms {
        p.min_speech_ms = v;
    }
    if let Some(v) = u.min_silence_ms {
        p.min_silence_ms = v;
    }
    if let Some(v) = u.pause_onset_ms {
        p.pause_onset_ms = v;
    }
    if let Some(v) = u.decision_ms {
        p.decision_ms = v;
    }
    if let Some(v) = u.dtmf_barge_in {
        p.dtmf_barge_in = v;
    }
    p.validate()
        .map_err(|e| format!("{}: {}", e.field, e.reason))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_updates_change_only_what_they_set() {
        let base = PolicyConfig::default();
        let u = BargeInUpdate {
            mode: Some("immediate".into()),
            min_speech_ms: Some(300),
            ..Default::default()
        };
        let p = updated_policy(&base, &u).unwrap();
        assert_eq!(p.mode, BargeInMode::Immediate);
        assert_eq!(p.min_speech_ms, 300);
        assert_eq!(p.threshold, base.threshold);
        assert_eq!(p.min_silence_ms, base.min_silence_ms);
    }

    #[test]
    fn invalid_updates_are_refused_whole() {
        let base = PolicyConfig::default();
        let bad_mode = BargeInUpdate {
            mode: Some("never".into()),
            ..Default::default()
        };
        assert!(updated_policy(&base, &bad_mode)
            .unwrap_err()
            .contains("never"));
        let bad_threshold = BargeInUpdate {
            threshold: Some(2.0),
            ..Default::default()
        };
        assert!(updated_policy(&base, &bad_threshold).is_err());
    }
}
