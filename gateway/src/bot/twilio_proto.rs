//! Twilio Media Streams protocol translation, sans-IO.
//!
//! The gateway plays Twilio's part of a bidirectional Media Stream
//! (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>), so a bot written for
//! Twilio works unchanged. This module turns call events and caller audio into the JSON text
//! frames Twilio would send, and the bot's frames into call commands; the WebSocket task in
//! `twilio.rs` only moves them.
//!
//! Gateway → bot: `connected`, `start`, `media` (every 20 ms), `dtmf`, `mark` (echo), `stop`.
//! Every message but `connected` carries `streamSid` and a `sequenceNumber` (a decimal string
//! counting up from "1"); media carries `chunk` (from "1") and `timestamp` (ms since the stream
//! started, as a string).
//!
//! Bot → gateway: `media` (base64 µ-law 8 kHz, any size, played in order), `mark` (echoed
//! when the audio queued before it has played), `clear` (drop the buffer, echo every pending
//! mark). A barge-in detected by the gateway drops the buffer too and echoes the marks that
//! were dropped, exactly as a `clear` would: that is how a Twilio bot learns what the caller
//! did not hear. Anything else from the bot is counted and ignored; the call goes on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use super::link::CallerAudio;
use super::{BotCommand, BotEvent, CallInfo};

/// Twilio's placeholder-free account id shape (`AC` + 32 hex digits). The gateway has no
/// account; bots that log it get a well-formed constant.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// Playback ids of the bot's audio start with this (one per stretch between two marks), so
/// logs and barge-in reports can be read against the bot's own marks.
const AUDIO_ID_PREFIX: &str = "twilio-audio-";
/// Marks are queued as their own (empty) chunks with a unique playback id, so a truncation's
/// report says exactly which marks were dropped.
const MARK_ID_PREFIX: &str = "twilio-mark-";

/// Counters for the call's final log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TwilioStats {
    pub media_sent: u64,
    pub media_received: u64,
    pub marks_received: u64,
    pub marks_echoed: u64,
    pub clears: u64,
    /// Frames that were not valid JSON, had no/unknown `event`, or lacked a required field
    /// (bad base64, mark without a name, …): counted, logged, ignored.
    pub malformed: u64,
}

/// What to do after one input.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// JSON text frames for the bot, in order.
    pub frames: Vec<String>,
    /// Commands for the call, in order.
    pub commands: Vec<BotCommand>,
    /// Why a bot frame was ignored (for the log), if it was.
    pub ignored: Option<String>,
}

#[derive(Debug)]
struct PendingMark {
    playback_id: String,
    name: String,
}

/// One call's Media Stream.
#[derive(Debug)]
pub struct TwilioStream {
    stream_sid: String,
    call_sid: String,
    custom_parameters: BTreeMap<String, String>,
    barge_in_event: bool,
    /// Last sequenceNumber sent (0: none yet).
    seq: u64,
    /// Last media chunk number sent.
    chunk: u64,
    started: bool,
    stopped: bool,
    /// Marks sent to the call whose echo the bot has not had yet, in queue order.
    pending: VecDeque<PendingMark>,
    marks_queued: u64,
    stats: TwilioStats,
}

impl TwilioStream {
    /// `custom_parameters` from the configuration (the route's bot); the call's SIP identity is
    /// added at `start` (configured names win).
    pub fn new(
        stream_sid: String,
        call_sid: String,
        custom_parameters: BTreeMap<String, String>,
        barge_in_event: bool,
    ) -> Self {
        TwilioStream {
            stream_sid,
            call_sid,
            custom_parameters,
            barge_in_event,
            seq: 0,
            chunk: 0,
            started: false,
            stopped: false,
            pending: VecDeque::new(),
            marks_queued: 0,
            stats: TwilioStats::default(),
        }
    }

    pub fn stats(&self) -> TwilioStats {
        self.stats
    }

    /// A frame the shell could not even hand over as text (e.g. a binary frame).
    pub fn count_malformed(&mut self) {
        self.stats.malformed += 1;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The first frame on a new connection.
    pub fn connected(&self) -> String {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    /// The `start` frame: stream metadata, the media format and the custom parameters.
    pub fn start(&mut self, info: &CallInfo) -> String {
        self.started = true;
        let mut params = BTreeMap::new();
        params.insert("from".to_string(), info.from.clone());
        params.insert("to".to_string(), info.to.clone());
        if let Some(user) = &info.to_user {
            params.insert("to_user".to_string(), user.clone());
        }
        if let Some(pai) = &info.p_asserted_identity {
            params.insert("p_asserted_identity".to_string(), pai.clone());
        }
        if !info.diversion.is_empty() {
            params.insert("diversion".to_string(), info.diversion.join(", "));
        }
        for (k, v) in &self.custom_parameters {
            params.insert(k.clone(), v.clone());
        }
        let seq = self.next_seq();
        json!({
            "event": "start",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": ACCOUNT_SID,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })
        .to_string()
    }

    /// One caller frame as a `media` message (nothing before `start` or after `stop`).
    pub fn caller_audio(&mut self, audio: &CallerAudio) -> Option<String> {
        if !self.started || self.stopped {
            return None;
        }
        let ulaw: Vec<u8> = audio
            .samples
            .iter()
            .map(|&s| media::g711::ulaw_encode(s))
            .collect();
        self.chunk += 1;
        self.stats.media_sent += 1;
        let seq = self.next_seq();
        Some(
            json!({
                "event": "media",
                "sequenceNumber": seq,
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": self.chunk.to_string(),
                    // at_sample counts 8 kHz samples since the call's media started.
                    "timestamp": (audio.at_sample / 8).to_string(),
                    "payload": base64::engine::general_purpose::STANDARD.encode(&ulaw),
                },
            })
            .to_string(),
        )
    }

    fn mark_frame(&mut self, name: &str) -> String {
        self.stats.marks_echoed += 1;
        let seq = self.next_seq();
        json!({
            "event": "mark",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        })
        .to_string()
    }

    /// Echoes every pending mark (a `clear`).
    fn echo_all(&mut self, out: &mut Output) {
        while let Some(m) = self.pending.pop_front() {
            let frame = self.mark_frame(&m.name);
            out.frames.push(frame);
        }
    }

    /// Echoes the pending marks whose playback id is in `dropped`, in queue order.
    fn echo_dropped(&mut self, dropped: &[&str], out: &mut Output) -> Vec<String> {
        let mut names = Vec::new();
        let mut keep = VecDeque::with_capacity(self.pending.len());
        while let Some(m) = self.pending.pop_front() {
            if dropped.contains(&m.playback_id.as_str()) {
                let frame = self.mark_frame(&m.name);
                out.frames.push(frame);
                names.push(m.name);
            } else {
                keep.push_back(m);
            }
        }
        self.pending = keep;
        names
    }

    /// A call event. Events the Twilio protocol has no message for produce nothing.
    pub fn on_event(&mut self, event: &BotEvent) -> Output {
        let mut out = Output::default();
        if self.stopped {
            return out;
        }
        match event {
            BotEvent::CallStarted(info) => {
                let frame = self.start(info);
                out.frames.push(frame);
            }
            BotEvent::MarkReached { playback_id, .. } => {
                // Only the first pending mark can be reached (playout is in order), but a mark
                // already echoed by a `clear` must not be echoed twice.
                if let Some(i) = self
                    .pending
                    .iter()
                    .position(|m| &m.playback_id == playback_id)
                {
                    if let Some(m) = self.pending.remove(i) {
                        let frame = self.mark_frame(&m.name);
                        out.frames.push(frame);
                    }
                }
            }
            BotEvent::BargeIn { truncated } => {
                let dropped: Vec<&str> = truncated.iter().map(|t| t.playback_id.as_str()).collect();
                let names = self.echo_dropped(&dropped, &mut out);
                if self.barge_in_event {
                    // Not a Twilio message: only for bots that asked for it (`barge_in_event`).
                    let seq = self.next_seq();
                    let audio: Vec<Value> = truncated
                        .iter()
                        .filter(|t| !t.playback_id.starts_with(MARK_ID_PREFIX))
                        .map(|t| json!({"playedMs": t.played_ms, "totalMs": t.total_ms}))
                        .collect();
                    out.frames.push(
                        json!({
                            "event": "bargeIn",
                            "sequenceNumber": seq,
                            "streamSid": self.stream_sid,
                            "bargeIn": {"marksCleared": names, "truncated": audio},
                        })
                        .to_string(),
                    );
                }
            }
            BotEvent::Dtmf { digit } => {
                let seq = self.next_seq();
                out.frames.push(
                    json!({
                        "event": "dtmf",
                        "sequenceNumber": seq,
                        "streamSid": self.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
                    })
                    .to_string(),
                );
            }
            // A Twilio bot cannot answer a bot_decides request: trust the gateway's detector.
            BotEvent::BargeInDecisionRequested => out.commands.push(BotCommand::ConfirmBargeIn),
            BotEvent::CallEnded { .. } => {
                let frame = self.stop();
                out.frames.push(frame);
            }
            _ => {}
        }
        out
    }

    /// The `stop` frame (once); after it nothing more is sent.
    pub fn stop(&mut self) -> String {
        self.stopped = true;
        let seq = self.next_seq();
        json!({
            "event": "stop",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
        })
        .to_string()
    }

    /// One text frame from the bot.
    pub fn on_bot_text(&mut self, text: &str) -> Output {
        let mut out = Output::default();
        if let Err(why) = self.bot_message(text, &mut out) {
            self.stats.malformed += 1;
            out.ignored = Some(why);
        }
        out
    }

    fn bot_message(&mut self, text: &str, out: &mut Output) -> Result<(), String> {
        let msg: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let event = msg
            .get("event")
            .and_then(Value::as_str)
            .ok_or("no `event`")?;
        match event {
            "media" => {
                let payload = msg
                    .pointer("/media/payload")
                    .and_then(Value::as_str)
                    .ok_or("media without media.payload")?;
                let ulaw = base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .map_err(|e| format!("media.payload is not base64: {e}"))?;
                self.stats.media_received += 1;
                if ulaw.is_empty() {
                    return Ok(());
                }
                let samples: Vec<i16> = ulaw.iter().map(|&b| media::g711::ulaw_decode(b)).collect();
                out.commands.push(BotCommand::Play {
                    playback_id: format!("{AUDIO_ID_PREFIX}{}", self.marks_queued),
                    samples: Arc::from(samples),
                    interruptible: true,
                });
            }
            "mark" => {
                let name = msg
                    .pointer("/mark/name")
                    .and_then(Value::as_str)
                    .ok_or("mark without mark.name")?;
                self.stats.marks_received += 1;
                self.marks_queued += 1;
                let playback_id = format!("{MARK_ID_PREFIX}{}", self.marks_queued);
                self.pending.push_back(PendingMark {
                    playback_id: playback_id.clone(),
                    name: name.to_string(),
                });
                out.commands.push(BotCommand::Mark {
                    playback_id,
                    name: name.to_string(),
                });
            }
            "clear" => {
                self.stats.clears += 1;
                out.commands.push(BotCommand::Clear);
                // The commands reach the call in order, so every pending mark was queued
                // before this clear: all of them are dropped (or were just reached; either way
                // Twilio echoes each exactly once).
                self.echo_all(out);
            }
            other => return Err(format!("unknown event `{other}`")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
