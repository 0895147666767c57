//! The call's side of a bot connection. Every bot kind (the embedded demo, gRPC, Twilio
//! WebSocket) is a task at the far end of these bounded channels, so the call task never
//! awaits a bot: a slow or dead bot cannot stall the media clock.
//!
//! - events (call → bot): never silently dropped; a full queue means the bot has stalled
//!   and is reported as [`LinkError::Stalled`] so the call can apply its failure policy.
//! - caller audio (call → bot): real-time frames; when the bot does not keep up the newest
//!   frame is dropped and counted (audio that arrives late is useless to a recogniser).
//! - commands (bot → call): a closed channel means the bot is gone.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Bot, BotCommand, BotEvent};

/// Call events queued toward a bot before it counts as stalled (≈ several seconds of a
/// busy call: events are sparse, audio has its own queue).
pub const EVENT_QUEUE: usize = 256;
/// Caller audio frames queued toward a bot (50 × 20 ms = 1 s).
pub const AUDIO_QUEUE: usize = 50;
/// Bot commands queued toward the call.
pub const COMMAND_QUEUE: usize = 256;

/// One frame of caller audio for the bot: 8 kHz mono PCM16, `at_sample` counts caller
/// samples since the call started (gaps show dropped frames).
#[derive(Clone, Debug, PartialEq)]
pub struct CallerAudio {
    pub at_sample: u64,
    pub samples: Arc<[i16]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The bot's end was dropped (connection lost, task ended).
    Gone,
    /// The bot stopped reading events.
    Stalled,
}

/// Held by the call task.
pub struct BotLink {
    events: mpsc::Sender<BotEvent>,
    audio: mpsc::Sender<CallerAudio>,
    commands: mpsc::Receiver<BotCommand>,
    audio_dropped: u64,
    /// False for bots that ignore caller audio (the demo): the call then builds no frames.
    wants_audio: bool,
}

/// Held by the bot task.
pub struct BotEnd {
    pub events: mpsc::Receiver<BotEvent>,
    pub audio: mpsc::Receiver<CallerAudio>,
    pub commands: mpsc::Sender<BotCommand>,
}

/// A connected pair of channel ends.
pub fn pair() -> (BotLink, BotEnd) {
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    let (au_tx, au_rx) = mpsc::channel(AUDIO_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    (
        BotLink {
            events: ev_tx,
            audio: au_tx,
            commands: cmd_rx,
            audio_dropped: 0,
            wants_audio: true,
        },
        BotEnd {
            events: ev_rx,
            audio: au_rx,
            commands: cmd_tx,
        },
    )
}

impl BotLink {
    pub fn send_event(&mut self, event: BotEvent) -> Result<(), LinkError> {
        self.events.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LinkError::Stalled,
            mpsc::error::TrySendError::Closed(_) => LinkError::Gone,
        })
    }

    /// Whether the bot takes caller audio at all (build frames only then: it is per 20 ms).
    pub fn wants_audio(&self) -> bool {
        self.wants_audio
    }

    /// Offers one caller frame; dropped (and counted) when the bot is behind or gone.
    pub fn send_audio(&mut self, frame: CallerAudio) {
        if !self.wants_audio {
            return;
        }
        if self.audio.try_send(frame).is_err() {
            self.audio_dropped += 1;
        }
    }

    /// The next command; `None` once the bot is gone. Cancel-safe (for `select!`).
    pub async fn recv_command(&mut self) -> Option<BotCommand> {
        self.commands.recv().await
    }

    pub fn audio_dropped(&self) -> u64 {
        self.audio_dropped
    }
}

/// Runs a sans-IO [`Bot`] (the demo) as a link task: events in, commands out; it takes no
/// caller audio. Ends when the call drops its link or after `CallEnded`.
pub fn spawn_local(mut bot: Box<dyn Bot>) -> BotLink {
    let (mut link, mut end) = pair();
    link.wants_audio = false;
    tokio::spawn(async move {
        let mut commands = Vec::new();
        while let Some(ev) = end.events.recv().await {
            let last = matches!(ev, BotEvent::CallEnded { .. });
            bot.on_event(&ev, &mut commands);
            for c in commands.drain(..) {
                if end.commands.send(c).await.is_err() {
                    return;
                }
            }
            if last {
                return;
            }
        }
    });
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Bot for Echo {
        fn on_event(&mut self, event: &BotEvent, commands: &mut Vec<BotCommand>) {
            if matches!(event, BotEvent::TurnEnded) {
                commands.push(BotCommand::Clear);
            }
        }
    }

    #[tokio::test]
    async fn local_bot_answers_events_with_commands() {
        let mut link = spawn_local(Box::new(Echo));
        assert!(!link.wants_audio(), "the demo takes no caller audio");
        link.send_event(BotEvent::TurnEnded).unwrap();
        assert_eq!(link.recv_command().await, Some(BotCommand::Clear));
        link.send_event(BotEvent::CallEnded {
            reason: "bye".into(),
        })
        .unwrap();
        assert_eq!(link.recv_command().await, None, "task ends after CallEnded");
    }

    #[tokio::test]
    async fn stalled_and_gone_bots_are_reported() {
        let (mut link, end) = pair();
        for _ in 0..EVENT_QUEUE {
            link.send_event(BotEvent::SpeechStarted).unwrap();
        }
        assert_eq!(
            link.send_event(BotEvent::SpeechStarted),
            Err(LinkError::Stalled)
        );
        for i in 0..(AUDIO_QUEUE as u64 + 3) {
            link.send_audio(CallerAudio {
                at_sample: i * 160,
                samples: Arc::from(vec![0i16; 160]),
            });
        }
        assert_eq!(link.audio_dropped(), 3);
        drop(end);
        assert_eq!(
            link.send_event(BotEvent::SpeechStarted),
            Err(LinkError::Gone)
        );
        assert_eq!(link.recv_command().await, None);
    }
}
