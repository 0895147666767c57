//! Bots behind one internal interface. A bot sees call events and answers with commands;
//! the call task owns the media and applies the commands. The embedded demo bot is the
//! default so the gateway is useful without any external backend.

pub mod connect;
pub mod demo;
pub mod grpc;
pub mod grpc_audio;
pub mod link;
pub mod text;
pub mod twilio;
pub mod twilio_proto;

/// What a bot learns about the call.
#[derive(Clone, Debug, PartialEq)]
pub enum BotEvent {
    /// The call is answered and media flows.
    CallStarted(CallInfo),
    /// Caller speech confirmed (≥ min_speech_ms) while no interruptible audio played.
    SpeechStarted,
    /// The caller barged in: queued interruptible audio was dropped. One report per chunk
    /// that was playing or queued.
    BargeIn { truncated: Vec<Truncation> },
    /// The caller's turn ended (min_silence_ms of non-speech after speech).
    TurnEnded,
    /// The bot's audio is paused on first speech evidence (pause / bot_decides modes).
    BargeInTentative,
    /// The tentative barge-in was not confirmed: the bot's audio resumed where it paused.
    BargeInCancelled,
    /// bot_decides mode: answer with ConfirmBargeIn or RejectBargeIn within decision_ms.
    BargeInDecisionRequested,
    /// A chunk finished playing in full.
    PlaybackFinished { playback_id: String },
    /// Playout passed a mark (queued with `BotCommand::Mark`).
    MarkReached { playback_id: String, mark: String },
    /// A DTMF key press (RFC 4733).
    Dtmf { digit: char },
    /// Sent right before `BargeInTentative`, `BargeInDecisionRequested` and `BargeIn`: when
    /// the caller's speech (or key press, `dtmf`) that caused it began. Bots that do not need
    /// the time ignore it.
    BargeInTiming {
        onset: std::time::Instant,
        dtmf: bool,
    },
    /// The bot's `Clear` dropped these chunks (queued audio, not a barge-in).
    Cleared { truncated: Vec<Truncation> },
    /// A command could not be applied (e.g. audio over `bot.max_buffered_s`). The call goes on.
    CommandFailed(CommandError),
    /// Outcome of a `Transfer`: accepted (the target answered; the gateway hangs up) or not
    /// (the call goes on). `sip_status`: the REFER's final status if refused, else the
    /// NOTIFY sipfrag's.
    TransferResult { accepted: bool, sip_status: u16 },
    /// The call is over (`reason`: who hung up and why); no command is applied after this.
    CallEnded { reason: String },
}

/// Why a bot command was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandError {
    pub kind: CommandErrorKind,
    pub message: String,
    pub playback_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandErrorKind {
    /// Audio would exceed the playout bound.
    BufferFull,
    /// Barge-in settings that do not validate.
    InvalidSettings,
    /// Not possible in the call's state (e.g. a transfer already pending).
    NotPossible,
}

/// Who called whom, as signalled (kept verbatim for the bot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallInfo {
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// The dialled number (To user part), if any.
    pub to_user: Option<String>,
    pub p_asserted_identity: Option<String>,
    /// Every Diversion header, in order (RFC 5806).
    pub diversion: Vec<String>,
    /// Other identity headers and every `X-` header of the INVITE, verbatim, in order.
    pub headers: Vec<(String, String)>,
}

/// How much of one chunk the caller actually heard.
#[derive(Clone, Debug, PartialEq)]
pub struct Truncation {
    pub playback_id: String,
    pub played_ms: u32,
    pub total_ms: u32,
}

/// What a bot asks of the call.
#[derive(Clone, Debug, PartialEq)]
pub enum BotCommand {
    /// Queue audio (8 kHz mono PCM16) for playout.
    Play {
        playback_id: String,
        samples: std::sync::Arc<[i16]>,
        interruptible: bool,
    },
    /// Queue a named mark after the audio queued so far; reported with `MarkReached` when
    /// playout reaches it. Sent by network bots (Twilio `mark`, gRPC `Mark`).
    Mark { playback_id: String, name: String },
    /// Drop queued interruptible audio now.
    Clear,
    /// bot_decides mode: the pending barge-in is real (truncate) …
    ConfirmBargeIn,
    /// … or not (resume where it paused). Sent by network bots; the demo bot always confirms.
    RejectBargeIn,
    /// Change this call's barge-in settings (unset fields keep their value).
    UpdateBargeIn(BargeInUpdate),
    /// Transfer the caller (SIP REFER with this Refer-To URI).
    Transfer { target: String },
    /// Key presses toward the caller's side (SIP INFO application/dtmf-relay, one per digit).
    SendDtmf { digits: String, duration_ms: u32 },
    /// Hang up (BYE from the gateway).
    Hangup,
}

/// Per-call barge-in settings a bot may change; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BargeInUpdate {
    pub mode: Option<String>,
    pub threshold: Option<f32>,
    pub min_speech_ms: Option<u32>,
    pub min_silence_ms: Option<u32>,
    pub pause_onset_ms: Option<u32>,
    pub decision_ms: Option<u32>,
    pub dtmf_barge_in: Option<bool>,
}

/// A bot: a sans-IO event handler. Bots backed by a network link (gRPC, WebSocket) wrap
/// their connection behind this interface.
pub trait Bot: Send {
    fn on_event(&mut self, event: &BotEvent, commands: &mut Vec<BotCommand>);
}
