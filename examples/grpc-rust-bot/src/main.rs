//! Example bot for the bargein gateway's gRPC API (proto/bargein/v1/bot.proto).
//!
//! Per call: plays a WAV prompt with its text (so the gateway can tell which words the
//! caller heard), prints what the caller heard when they interrupt (played ms, delivered and
//! remaining text), plays a reply once the caller's turn ends, and optionally hangs up after
//! it. One JSON object per line on stdout.
//!
//!     cargo build --release -p grpc-rust-bot -p bargein-gateway
//!     target/release/grpc-rust-bot --listen 127.0.0.1:50051 &
//!     GW__BOT__KIND=grpc GW__BOT__GRPC__ENDPOINT=http://127.0.0.1:50051 \
//!         target/release/bargein-gateway

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

#[allow(clippy::all, clippy::pedantic)]
mod pb {
    tonic::include_proto!("bargein.v1");
}

use pb::gateway_message::Msg;

const USAGE: &str = "usage: grpc-rust-bot [--listen ADDR] [--prompt WAV] [--prompt-text TEXT]
                     [--reply WAV] [--reply-text TEXT] [--hangup-after-reply]";

const PROMPT_TEXT: &str = "Hello, and thank you for calling. This is the automated assistant of \
the barge-in gateway demo. I can help you with billing, with your delivery, and with changes to \
your account. You can interrupt me at any time: just start speaking, and I will stop and listen.";
const REPLY_TEXT: &str = "Thank you, I heard you. Let me look into that.";

/// A WAV file ready to send: PCM16 LE bytes, its rate, its text.
#[derive(Clone)]
struct Audio {
    pcm: Vec<u8>,
    rate: u32,
    text: String,
}

impl Audio {
    fn load(path: &str, text: &str) -> Result<Audio, String> {
        let reader = hound::WavReader::open(path).map_err(|e| format!("{path}: {e}"))?;
        let spec = reader.spec();
        if spec.channels != 1 || spec.bits_per_sample != 16 {
            return Err(format!("{path}: need a mono 16-bit WAV"));
        }
        if ![8000, 16000, 24000].contains(&spec.sample_rate) {
            return Err(format!("{path}: sample rate must be 8000, 16000 or 24000"));
        }
        let samples: Result<Vec<i16>, _> = reader.into_samples::<i16>().collect();
        let pcm = samples
            .map_err(|e| format!("{path}: {e}"))?
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        Ok(Audio {
            pcm,
            rate: spec.sample_rate,
            text: text.to_string(),
        })
    }

    fn play(&self, playback_id: &str) -> pb::BotMessage {
        pb::BotMessage {
            msg: Some(pb::bot_message::Msg::Play(pb::Play {
                playback_id: playback_id.into(),
                audio: self.pcm.clone(),
                encoding: pb::AudioEncoding::Pcm16 as i32,
                sample_rate: self.rate,
                text: self.text.clone(),
                words: Vec::new(),
                interruptible: true,
            })),
        }
    }
}

struct Settings {
    prompt: Audio,
    reply: Audio,
    hangup_after_reply: bool,
}

struct Bot(Arc<Settings>);

type Outbound = Pin<Box<dyn Stream<Item = Result<pb::BotMessage, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::bot_service_server::BotService for Bot {
    type CallStream = Outbound;

    async fn call(
        &self,
        request: tonic::Request<tonic::Streaming<pb::GatewayMessage>>,
    ) -> Result<tonic::Response<Outbound>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(32);
        let settings = self.0.clone();
        tokio::spawn(async move {
            let mut call = Call {
                settings,
                call_id: String::new(),
                replied: false,
            };
            while let Some(Ok(m)) = inbound.next().await {
                let Some(msg) = m.msg else { continue };
                for out in call.on_message(msg) {
                    if tx.send(Ok(out)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One call's state: what the bot has said and whether it has answered yet.
struct Call {
    settings: Arc<Settings>,
    call_id: String,
    replied: bool,
}

impl Call {
    fn on_message(&mut self, msg: Msg) -> Vec<pb::BotMessage> {
        let id = self.call_id.clone();
        match msg {
            Msg::CallStarted(s) => {
                self.call_id = s.call_id.clone();
                let rate = s.caller_audio_format.map_or(0, |f| f.sample_rate);
                emit(
                    json!({"event": "call_started", "call_id": s.call_id, "from": s.from,
                             "to": s.to, "audio_rate": rate}),
                );
                return vec![self.settings.prompt.play("prompt")];
            }
            Msg::BargeIn(b) if b.tentative => {
                emit(json!({"event": "barge_in_tentative", "call_id": id}));
            }
            Msg::BargeIn(b) => {
                // What the caller heard decides what the bot says next: it must not repeat
                // the delivered part, nor assume the remaining part was said.
                for c in b.chunks {
                    emit(json!({"event": "barge_in", "call_id": id,
                                "playback_id": c.playback_id, "played_ms": c.played_ms,
                                "total_ms": c.total_ms, "delivered": c.delivered_text,
                                "remaining": c.remaining_text}));
                }
            }
            Msg::TurnEnded(_) => {
                emit(json!({"event": "turn_ended", "call_id": id}));
                if !self.replied {
                    self.replied = true;
                    return vec![self.settings.reply.play("reply")];
                }
            }
            Msg::PlaybackFinished(p) => {
                emit(json!({"event": "playback_finished", "call_id": id,
                            "playback_id": p.playback_id, "played_ms": p.played_ms}));
                if p.playback_id == "reply" && self.settings.hangup_after_reply {
                    return vec![pb::BotMessage {
                        msg: Some(pb::bot_message::Msg::Hangup(pb::Hangup {})),
                    }];
                }
            }
            Msg::Error(e) => {
                emit(
                    json!({"event": "error", "call_id": id, "code": e.code, "message": e.message}),
                );
            }
            Msg::CallEnded(e) => {
                emit(json!({"event": "call_ended", "call_id": id, "reason": e.reason}));
            }
            _ => {}
        }
        Vec::new()
    }
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

struct Args {
    listen: SocketAddr,
    prompt: String,
    prompt_text: String,
    reply: String,
    reply_text: String,
    hangup_after_reply: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
        prompt: "deploy/prompts/prompt.wav".into(),
        prompt_text: PROMPT_TEXT.into(),
        reply: "deploy/prompts/reply.wav".into(),
        reply_text: REPLY_TEXT.into(),
        hangup_after_reply: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => a.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--prompt" => a.prompt = value()?,
            "--prompt-text" => a.prompt_text = value()?,
            "--reply" => a.reply = value()?,
            "--reply-text" => a.reply_text = value()?,
            "--hangup-after-reply" => a.hangup_after_reply = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("grpc-rust-bot: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let settings = match (
        Audio::load(&args.prompt, &args.prompt_text),
        Audio::load(&args.reply, &args.reply_text),
    ) {
        (Ok(prompt), Ok(reply)) => Settings {
            prompt,
            reply,
            hangup_after_reply: args.hangup_after_reply,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("grpc-rust-bot: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("grpc-rust-bot: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::from(1);
        }
    };
    emit(json!({"event": "listening", "address": args.listen.to_string()}));
    let service = pb::bot_service_server::BotServiceServer::new(Bot(Arc::new(settings)));
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await;
    if let Err(e) = served {
        eprintln!("grpc-rust-bot: {e}");
        return std::process::ExitCode::from(1);
    }
    std::process::ExitCode::SUCCESS
}
