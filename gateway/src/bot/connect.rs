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
        "demo" => Ok(link::spawn_local(Box::new(DemoBot::new(
            ctx.demo_audio.clone(),
            bot.demo.hangup_after_reply,
        )))),
        "grpc" => super::grpc::connect(bot, info, ctx.bargein_mode).await,
        "twilio" => super::twilio::connect(bot, info).await,
        other => Err(format!("unknown bot kind `{other}`")),
    }
}
