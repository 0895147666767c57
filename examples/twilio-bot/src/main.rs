//! An example voice bot written for Twilio Media Streams (bidirectional `<Connect><Stream>`).
//! It uses only Twilio's documented messages, so it runs unchanged behind Twilio or behind
//! the bargein gateway (`bot.kind = "twilio"`, `bot.twilio.url = "ws://127.0.0.1:8765/"`).
//!
//! On `start` it streams its prompt as fast as it can, sentence by sentence, with a `mark`
//! after each sentence. Twilio (and the gateway) echo a mark once the audio before it has
//! played — or at once when the buffer is emptied (`clear`, or the gateway's own barge-in).
//! The bot tells the two apart with the stream clock (`media.timestamp` of the caller audio):
//! a mark that comes back before its sentence could have finished playing was cut. It prints
//! what the caller heard and what was not played, waits for the caller to stop talking
//! (simple energy end-pointing on the caller audio), and answers with its reply.
//!
//!     cargo run --release -p twilio-bot -- --listen 127.0.0.1:8765 \
//!         --prompt deploy/prompts/prompt.wav --reply deploy/prompts/reply.wav

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

mod audio;

use audio::{split_sentences, ulaw_decode, ulaw_encode};

/// A mark echoed this long (ms of stream time) before its sentence could have ended was cut.
const CUT_TOLERANCE_MS: u64 = 200;
/// Caller audio louder than this (RMS of a 20 ms frame, 16-bit scale) counts as speech.
const SPEECH_RMS: f64 = 600.0;
/// Speech frames in a row that start a caller turn, and quiet that ends it.
const SPEECH_START_MS: u64 = 100;
const TURN_END_MS: u64 = 700;
/// Audio per outgoing `media` message (any size is allowed; 100 ms keeps messages few).
const CHUNK_BYTES: usize = 800;

struct Args {
    listen: String,
    prompt: Vec<i16>,
    reply: Vec<i16>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = "127.0.0.1:8765".to_string();
    let (mut prompt, mut reply) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = value()?,
            "--prompt" => prompt = Some(audio::load_wav(Path::new(&value()?))?),
            "--reply" => reply = Some(audio::load_wav(Path::new(&value()?))?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Args {
        listen,
        prompt: prompt.ok_or("--prompt FILE.wav is required")?,
        reply: reply.ok_or("--reply FILE.wav is required")?,
    })
}

fn say(line: String) {
    // One line per fact, flushed: the output is read by people and by the e2e test.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!(
                "twilio-bot: {e}\nusage: twilio-bot [--listen ADDR] --prompt WAV --reply WAV"
            );
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("twilio-bot: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    say(format!("listening on {}", args.listen));
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let args = args.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(tcp, &args).await {
                say(format!("stream from {peer} ended with an error: {e}"));
            }
        });
    }
}

/// One sentence (or the reply) sent to the caller, and when it can have finished playing.
struct Sent {
    mark: String,
    /// Stream time (ms) by which its audio has played if nothing cut it.
    ends_at_ms: u64,
    duration_ms: u64,
}

#[derive(Default)]
struct Call {
    stream_sid: String,
    /// Latest `media.timestamp` of the caller audio: the stream clock.
    now_ms: u64,
    /// Stream time at which everything sent so far has played.
    playing_until_ms: u64,
    pending: VecDeque<Sent>,
    /// Caller end-pointing.
    speech_ms: u64,
    quiet_ms: u64,
    in_turn: bool,
    /// The prompt was cut: answer once the caller's turn ends.
    interrupted: bool,
    replied: bool,
}

async fn serve(tcp: TcpStream, args: &Args) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    let mut ws = tokio_tungstenite::accept_async(tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut call = Call::default();
    while let Some(msg) = ws.next().await {
        let text = match msg.map_err(|e| e.to_string())? {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let mut out = Vec::new();
        match v["event"].as_str().unwrap_or("") {
            "connected" => say("connected".into()),
            "start" => {
                call.stream_sid = v["start"]["streamSid"].as_str().unwrap_or("").to_string();
                say(format!(
                    "start: call {} parameters {}",
                    v["start"]["callSid"], v["start"]["customParameters"]
                ));
                for (i, s) in split_sentences(&args.prompt).iter().enumerate() {
                    call.send(&mut out, s, format!("sentence-{}", i + 1));
                }
            }
            "media" => {
                call.now_ms = v["media"]["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(call.now_ms);
                let payload = v["media"]["payload"].as_str().unwrap_or("");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .unwrap_or_default();
                if call.caller_frame(&bytes) {
                    call.replied = true;
                    say("caller finished speaking: replying".into());
                    call.send(&mut out, &args.reply, "reply".to_string());
                }
            }
            "mark" => call.mark_echo(v["mark"]["name"].as_str().unwrap_or("")),
            "dtmf" => say(format!("dtmf {}", v["dtmf"]["digit"])),
            "stop" => {
                say("stop".into());
                break;
            }
            _ => {}
        }
        for frame in out {
            ws.send(Message::text(frame.to_string()))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

impl Call {
    /// Queues `samples` as media messages followed by a mark.
    fn send(&mut self, out: &mut Vec<Value>, samples: &[i16], mark: String) {
        let ulaw: Vec<u8> = samples.iter().map(|&s| ulaw_encode(s)).collect();
        for chunk in ulaw.chunks(CHUNK_BYTES) {
            out.push(json!({
                "event": "media",
                "streamSid": self.stream_sid,
                "media": {"payload": base64::engine::general_purpose::STANDARD.encode(chunk)},
            }));
        }
        out.push(json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": mark}}));
        let duration_ms = samples.len() as u64 / 8;
        self.playing_until_ms = self.playing_until_ms.max(self.now_ms) + duration_ms;
        self.pending.push_back(Sent {
            mark,
            ends_at_ms: self.playing_until_ms,
            duration_ms,
        });
    }

    fn mark_echo(&mut self, name: &str) {
        let Some(i) = self.pending.iter().position(|s| s.mark == name) else {
            return;
        };
        let Some(sent) = self.pending.remove(i) else {
            return;
        };
        if self.now_ms + CUT_TOLERANCE_MS >= sent.ends_at_ms {
            say(format!("played: {name} ({} ms)", sent.duration_ms));
            return;
        }
        // Echoed early: the buffer was emptied. Everything after it is gone too (the echoes
        // of the later marks follow right away); the stream is now silent.
        let unplayed = sent.ends_at_ms - self.now_ms;
        let heard = sent.duration_ms.saturating_sub(unplayed);
        say(format!(
            "not played: {name} (cut after about {heard} of {} ms)",
            sent.duration_ms
        ));
        self.playing_until_ms = self.now_ms;
        if !self.interrupted && !self.replied {
            self.interrupted = true;
            say("interrupted by the caller".into());
        }
    }

    /// End-pointing on one caller frame (µ-law); true when the bot should reply now.
    fn caller_frame(&mut self, ulaw: &[u8]) -> bool {
        if ulaw.is_empty() {
            return false;
        }
        let energy: f64 = ulaw
            .iter()
            .map(|&b| f64::from(ulaw_decode(b)).powi(2))
            .sum::<f64>()
            / ulaw.len() as f64;
        let frame_ms = ulaw.len() as u64 / 8;
        if energy.sqrt() > SPEECH_RMS {
            self.speech_ms += frame_ms;
            self.quiet_ms = 0;
            if self.speech_ms >= SPEECH_START_MS && !self.in_turn {
                self.in_turn = true;
                say("caller speaking".into());
            }
        } else {
            self.quiet_ms += frame_ms;
            if self.quiet_ms >= TURN_END_MS / 2 {
                self.speech_ms = 0;
            }
        }
        // Reply after the caller's turn, if the prompt was cut or has played out.
        let prompt_done = self.interrupted || self.pending.is_empty();
        if self.in_turn && self.quiet_ms >= TURN_END_MS && !self.replied && prompt_done {
            self.in_turn = false;
            return true;
        }
        if self.in_turn && self.quiet_ms >= TURN_END_MS {
            self.in_turn = false;
        }
        false
    }
}
