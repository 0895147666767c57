//! Reaching the call's bot at call start, before the INVITE is answered, so that an
//! unreachable bot can still be refused with 503 (Kamailio or the PBX then fails over).

use super::demo::{DemoAudio, DemoBot};
use super::link::{self, BotLink};
use super::CallInfo;
use crate::config::BotConfig;

/// What connecting needs besides the bot's own config.
pub struct ConnectContext<'a> {
    /// The demo's audio, loaded once at start.
    pub demo_audio: &'a DemoAudio,
    /// The call's barge-in mode at start (told to network bots).
    pub bargein_mode: &'a str,
}

/// Connects the call's bot (`bot.kind`). Each kind bounds its own wait by
/// `bot.connect_timeout_ms`; an error says why, for the log.
pub async fn connect(
    bot: &BotConfig,
    info: &CallInfo,
    ctx: &ConnectContext<'_>,
) -> Result<BotLink, String> {
    match bot.kind.as_str() {
        "demo" => {
            // The demo plays each WAV as one chunk: one longer than the playout bound would
            // be refused and the caller would hear nothing.
            let longest = ctx.demo_audio.prompt.len().max(ctx.demo_audio.reply.len());
            if longest > bot.max_buffered_s as usize * 8000 {
                return Err(format!(
                    "bot.demo prompts last up to {:.1} s: bot.max_buffered_s = {} is too small",
                    longest as f64 / 8000.0,
                    bot.max_buffered_s
                ));
            }
            Ok(link::spawn_local(Box::new(DemoBot::new(
                ctx.demo_audio.clone(),
                bot.demo.hangup_after_reply,
            ))))
        }
        "grpc" => super::grpc::connect(bot, info, ctx.bargein_mode).await,
        "twilio" => super::twilio::connect(bot, info).await,
        other => Err(format!("unknown bot kind `{other}`")),
    }
}
