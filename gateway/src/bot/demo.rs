//! The embedded demo bot: plays a prompt, stops when the caller barges in, answers with a
//! reply when the caller's turn ends, and optionally hangs up after the reply.

use std::path::Path;
use std::sync::Arc;

use super::{Bot, BotCommand, BotEvent};

/// The demo's audio, loaded once at start and shared by every call.
#[derive(Clone)]
pub struct DemoAudio {
    pub prompt: Arc<[i16]>,
    pub reply: Arc<[i16]>,
}

impl DemoAudio {
    pub fn load(prompt: &Path, reply: &Path) -> Result<DemoAudio, String> {
        let load = |p: &Path| {
            media::wav::load_prompt(p)
                .map(Arc::from)
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        Ok(DemoAudio {
            prompt: load(prompt)?,
            reply: load(reply)?,
        })
    }
}

pub const PROMPT_ID: &str = "prompt";
pub const REPLY_ID: &str = "reply";

pub struct DemoBot {
    audio: DemoAudio,
    hangup_after_reply: bool,
    replied: bool,
}

impl DemoBot {
    pub fn new(audio: DemoAudio, hangup_after_reply: bool) -> Self {
        DemoBot {
            audio,
            hangup_after_reply,
            replied: false,
        }
    }
}

impl Bot for DemoBot {
    fn on_event(&mut self, event: &BotEvent, commands: &mut Vec<BotCommand>) {
        match event {
            BotEvent::CallStarted(_) => commands.push(BotCommand::Play {
                playback_id: PROMPT_ID.into(),
                samples: self.audio.prompt.clone(),
                interruptible: true,
            }),
            BotEvent::TurnEnded if !self.replied => {
                self.replied = true;
                commands.push(BotCommand::Clear);
                commands.push(BotCommand::Play {
                    playback_id: REPLY_ID.into(),
                    samples: self.audio.reply.clone(),
                    interruptible: true,
                });
            }
            // The demo trusts the gateway's detector.
            BotEvent::BargeInDecisionRequested => commands.push(BotCommand::ConfirmBargeIn),
            BotEvent::PlaybackFinished { playback_id }
                if playback_id == REPLY_ID && self.hangup_after_reply =>
            {
                commands.push(BotCommand::Hangup)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::Truncation;

    fn bot(hangup: bool) -> DemoBot {
        let audio = DemoAudio {
            prompt: Arc::from(vec![1i16; 800]),
            reply: Arc::from(vec![2i16; 80]),
        };
        DemoBot::new(audio, hangup)
    }

    fn ids(cmds: &[BotCommand]) -> Vec<String> {
        cmds.iter()
            .map(|c| match c {
                BotCommand::Play { playback_id, .. } => format!("play:{playback_id}"),
                BotCommand::Clear => "clear".into(),
                BotCommand::Hangup => "hangup".into(),
                BotCommand::Mark { name, .. } => format!("mark:{name}"),
                BotCommand::ConfirmBargeIn => "confirm".into(),
                BotCommand::RejectBargeIn => "reject".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn prompt_then_reply_once_then_hangup() {
        let mut b = bot(true);
        let mut out = Vec::new();
        b.on_event(&BotEvent::CallStarted(Default::default()), &mut out);
        assert_eq!(ids(&out), ["play:prompt"]);
        out.clear();
        b.on_event(
            &BotEvent::BargeIn {
                truncated: vec![Truncation {
                    playback_id: PROMPT_ID.into(),
                    played_ms: 40,
                    total_ms: 100,
                }],
            },
            &mut out,
        );
        assert!(out.is_empty(), "the gateway already truncated");
        b.on_event(&BotEvent::TurnEnded, &mut out);
        assert_eq!(ids(&out), ["clear", "play:reply"]);
        out.clear();
        b.on_event(&BotEvent::TurnEnded, &mut out);
        assert!(out.is_empty(), "replies once");
        b.on_event(
            &BotEvent::PlaybackFinished {
                playback_id: REPLY_ID.into(),
            },
            &mut out,
        );
        assert_eq!(ids(&out), ["hangup"]);
    }

    #[test]
    fn confirms_barge_in_decisions() {
        let mut b = bot(false);
        let mut out = Vec::new();
        b.on_event(&BotEvent::BargeInDecisionRequested, &mut out);
        assert_eq!(ids(&out), ["confirm"]);
    }

    #[test]
    fn no_hangup_unless_configured() {
        let mut b = bot(false);
        let mut out = Vec::new();
        b.on_event(
            &BotEvent::PlaybackFinished {
                playback_id: REPLY_ID.into(),
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}
