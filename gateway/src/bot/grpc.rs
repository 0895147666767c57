//! The gRPC bot kind: one `BotService.Call` stream per call (proto/bargein/v1/bot.proto).
//!
//! A task owns the stream and a [`BotEnd`], translating both ways, so the call task never
//! waits on the network. What the call needs from a Play is only 8 kHz samples; the chunk's
//! text and word timings stay here and turn into delivered/remaining text when the chunk is
//! cut. A bot that stops reading for `bot.stall_timeout_ms`, ends its stream or breaks the
//! connection ends this task; the call sees its link closed and applies `bot.on_failure`.
//! Malformed messages are answered with an `Error`, logged with the call id and counted; the
//! call goes on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::{info, warn, Instrument};

use super::grpc_audio::{self, Encoding};
use super::link::{self, BotEnd, BotLink, CallerAudio};
use super::text::{self, WordTime};
use super::{BargeInUpdate, BotCommand, BotEvent, CallInfo, CommandErrorKind, Truncation};
use crate::config::{BotConfig, GrpcBotConfig};
use media::resample::Upsampler2;

#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("bargein.v1");
}

use pb::gateway_message::Msg as Out;

/// Messages queued toward the bot (≈ 1 s of caller audio + events) before the stream
/// counts as not read.
const OUT_QUEUE: usize = 64;
/// After CallEnded, how long the bot gets to end its side before the stream is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Largest bot message accepted: 10 minutes (the most `bot.max_buffered_s` allows) of 24 kHz
/// PCM16 plus room for text.
const MAX_MESSAGE_BYTES: usize = 600 * 24_000 * 2 + (1 << 20);

/// Opens the call's stream: connect, send `CallStarted`, wait for the bot's response headers
/// (the bot has accepted the call). Bounded by `bot.connect_timeout_ms`.
pub async fn connect(
    cfg: &BotConfig,
    info: &CallInfo,
    bargein_mode: &str,
) -> Result<BotLink, String> {
    let timeout = Duration::from_millis(cfg.connect_timeout_ms);
    match tokio::time::timeout(timeout, open(cfg, info, bargein_mode, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "bot at {} did not accept the call within {} ms",
            cfg.grpc.endpoint, cfg.connect_timeout_ms
        )),
    }
}

async fn open(
    cfg: &BotConfig,
    info: &CallInfo,
    bargein_mode: &str,
    timeout: Duration,
) -> Result<BotLink, String> {
    let g = &cfg.grpc;
    let mut endpoint = Endpoint::from_shared(g.endpoint.clone())
        .map_err(|e| format!("bot.grpc.endpoint: {e}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    if g.endpoint.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if !g.tls_ca.is_empty() {
            let pem = std::fs::read(&g.tls_ca).map_err(|e| format!("bot.grpc.tls_ca: {e}"))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("bot TLS setup: {e}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", g.endpoint))?;
    // tonic's default 4 MiB would refuse a long Play (a minute of 24 kHz PCM is 2.9 MB) by
    // killing the stream; the buffer bound, not the message size, is the limit that counts.
    let mut client = pb::bot_service_client::BotServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (out_tx, out_rx) = mpsc::channel::<pb::GatewayMessage>(OUT_QUEUE);
    // Queued before the call: some servers (grpcio) send their response headers only with
    // their first message, which a bot sends after it has seen CallStarted.
    let started = call_started(info, g.audio_rate, bargein_mode);
    out_tx
        .try_send(message(Out::CallStarted(started), 0))
        .map_err(|_| "bot stream queue unusable".to_string())?;
    let mut request = tonic::Request::new(ReceiverStream::new(out_rx));
    let md = request.metadata_mut();
    for (name, value) in request_metadata(g, info) {
        // Validated at start (names) or taken from SIP (values: a value that is not valid
        // ASCII metadata is left out rather than failing the call).
        if let (Ok(k), Ok(v)) = (
            name.parse::<tonic::metadata::MetadataKey<_>>(),
            value.parse(),
        ) {
            md.insert(k, v);
        }
    }
    let response = client
        .call(request)
        .await
        .map_err(|s| format!("bot refused the call: {} {}", s.code(), s.message()))?;
    let inbound = response.into_inner();
    let (link, end) = link::pair();
    let state = Translator::new(g.audio_rate);
    let stall = Duration::from_millis(cfg.stall_timeout_ms);
    tokio::spawn(run_link(end, out_tx, inbound, state, stall).in_current_span());
    Ok(link)
}

/// The call's request metadata: `bot.grpc.metadata`, the INVITE headers named in
/// `bot.grpc.metadata_headers` (lower-cased names; absent headers are left out), and
/// `x-bargein-call-id`.
fn request_metadata(g: &GrpcBotConfig, info: &CallInfo) -> Vec<(String, String)> {
    let mut md: Vec<(String, String)> = g
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for wanted in &g.metadata_headers {
        // PAI and Diversion are kept apart from the other headers in CallInfo.
        let value = info
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                if wanted.eq_ignore_ascii_case("P-Asserted-Identity") {
                    info.p_asserted_identity.as_deref()
                } else if wanted.eq_ignore_ascii_case("Diversion") {
                    info.diversion.first().map(String::as_str)
                } else {
                    None
                }
            });
        if let Some(value) = value {
            md.push((wanted.to_ascii_lowercase(), value.to_string()));
        }
    }
    md.push(("x-bargein-call-id".into(), info.call_id.clone()));
    md
}

fn message(msg: Out, call_time_ms: u64) -> pb::GatewayMessage {
    pb::GatewayMessage {
        msg: Some(msg),
        call_time_ms,
    }
}

fn call_started(info: &CallInfo, audio_rate: u32, bargein_mode: &str) -> pb::CallStarted {
    pb::CallStarted {
        call_id: info.call_id.clone(),
        from: info.from.clone(),
        to: info.to.clone(),
        to_user: info.to_user.clone().unwrap_or_default(),
        p_asserted_identity: info.p_asserted_identity.clone().unwrap_or_default(),
        diversion: info.diversion.clone(),
        headers: info
            .headers
            .iter()
            .map(|(name, value)| pb::SipHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        caller_audio_format: Some(pb::AudioFormat {
            encoding: pb::AudioEncoding::Pcm16 as i32,
            sample_rate: audio_rate,
            channels: 1,
        }),
        bargein_mode: bargein_mode.to_string(),
    }
}

/// Why the link task ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    CallOver,
    BotClosed,
    BotError(String),
    Stalled,
}

async fn run_link(
    mut end: BotEnd,
    out_tx: mpsc::Sender<pb::GatewayMessage>,
    mut inbound: tonic::Streaming<pb::BotMessage>,
    mut state: Translator,
    stall: Duration,
) {
    let mut out_full_since: Option<Instant> = None;
    let ended = loop {
        tokio::select! {
            ev = end.events.recv() => {
                // The call dropped its link without a CallEnded (it ended before its media
                // started, e.g. CANCEL): the bot still gets its last message.
                let ev = ev.unwrap_or_else(|| BotEvent::CallEnded {
                    reason: "call ended before media".into(),
                });
                let last = matches!(ev, BotEvent::CallEnded { .. });
                let mut failed = None;
                for msg in state.event(ev) {
                    match tokio::time::timeout(stall, out_tx.send(msg)).await {
                        Ok(Ok(())) => {}
                        // The RPC is over: the request stream was dropped.
                        Ok(Err(_)) => { failed = Some(Ended::BotClosed); break }
                        Err(_) => { failed = Some(Ended::Stalled); break }
                    }
                }
                if let Some(ended) = failed {
                    break ended;
                }
                if last {
                    break Ended::CallOver;
                }
            }
            Some(frame) = end.audio.recv() => {
                let msg = state.audio(frame);
                match out_tx.try_send(msg) {
                    Ok(()) => out_full_since = None,
                    // Late audio is useless to a recogniser: drop it, and if the bot has read
                    // nothing for stall_timeout_ms it has stalled.
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        state.audio_dropped += 1;
                        let since = *out_full_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= stall {
                            break Ended::Stalled;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break Ended::BotClosed,
                }
            }
            msg = inbound.message() => match msg {
                Ok(Some(m)) => match state.bot_message(m) {
                    Ok(Some(cmd)) => {
                        if end.commands.send(cmd).await.is_err() {
                            break Ended::CallOver;
                        }
                    }
                    Ok(None) => {}
                    Err(problem) => {
                        state.malformed += 1;
                        warn!(problem = %problem.message, "malformed bot message ignored");
                        let error = Out::Error(pb::Error {
                            code: pb::ErrorCode::Malformed as i32,
                            message: problem.message,
                            playback_id: problem.playback_id.unwrap_or_default(),
                        });
                        let _ = out_tx.try_send(message(error, state.now_ms()));
                    }
                },
                Ok(None) => break Ended::BotClosed,
                Err(status) => break Ended::BotError(format!("{} {}", status.code(), status.message())),
            },
        }
    };
    // Half-close our side; give the bot a moment to read CallEnded and end its side.
    drop(out_tx);
    if ended == Ended::CallOver {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Ok(Some(_)) = inbound.message().await {}
        })
        .await;
    } else {
        warn!(reason = ?ended, "gRPC bot link lost");
    }
    info!(
        malformed = state.malformed,
        audio_dropped = state.audio_dropped,
        "gRPC bot link stats"
    );
}

/// A Play the bot sent, kept until it finishes or is cut, for delivered/remaining text.
#[derive(Debug)]
struct PlayRecord {
    playback_id: String,
    total_ms: u32,
    text: String,
    words: Vec<WordTime>,
}

/// A bot message that could not be used.
#[derive(Debug, PartialEq)]
pub struct Malformed {
    pub message: String,
    pub playback_id: Option<String>,
}

fn malformed(message: impl Into<String>, playback_id: Option<&str>) -> Malformed {
    Malformed {
        message: message.into(),
        playback_id: playback_id.map(str::to_owned),
    }
}

/// The sans-IO half of the link: both directions' translations and the per-call state they
/// need. Unit-tested without a network.
pub struct Translator {
    start: Instant,
    upsampler: Option<Upsampler2>,
    plays: VecDeque<PlayRecord>,
    /// Marks reached per playback id (reported as `marks_passed` if the chunk is cut later).
    marks: HashMap<String, Vec<String>>,
    /// The timing of the barge-in being reported (`BotEvent::BargeInTiming`).
    barge_onset_ms: u64,
    barge_dtmf: bool,
    malformed: u64,
    audio_dropped: u64,
}

impl Translator {
    pub fn new(audio_rate: u32) -> Self {
        Translator {
            start: Instant::now(),
            upsampler: (audio_rate == 16000).then(Upsampler2::new),
            plays: VecDeque::new(),
            marks: HashMap::new(),
            barge_onset_ms: 0,
            barge_dtmf: false,
            malformed: 0,
            audio_dropped: 0,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn audio(&mut self, frame: CallerAudio) -> pb::GatewayMessage {
        let pcm = match &mut self.upsampler {
            Some(up) => {
                let mut out = Vec::with_capacity(frame.samples.len() * 2);
                up.process(&frame.samples, &mut out);
                grpc_audio::pcm16le(&out)
            }
            None => grpc_audio::pcm16le(&frame.samples),
        };
        message(
            Out::CallerAudio(pb::CallerAudio {
                pcm,
                at_sample_8k: frame.at_sample,
            }),
            self.now_ms(),
        )
    }

    /// Gateway → bot. `CallStarted` was sent when the stream opened.
    pub fn event(&mut self, ev: BotEvent) -> Vec<pb::GatewayMessage> {
        let (speech_onset_ms, dtmf) = (self.barge_onset_ms, self.barge_dtmf);
        let barge = |tentative, decision_requested, chunks| {
            Out::BargeIn(pb::BargeIn {
                tentative,
                decision_requested,
                dtmf,
                chunks,
                speech_onset_ms,
            })
        };
        let out = match ev {
            BotEvent::CallStarted(_) => return Vec::new(),
            BotEvent::BargeInTiming { onset, dtmf } => {
                self.barge_onset_ms =
                    onset.saturating_duration_since(self.start).as_millis() as u64;
                self.barge_dtmf = dtmf;
                return Vec::new();
            }
            BotEvent::SpeechStarted => Out::SpeechStarted(pb::SpeechStarted {}),
            BotEvent::TurnEnded => Out::TurnEnded(pb::TurnEnded {}),
            BotEvent::BargeInTentative => barge(true, false, Vec::new()),
            BotEvent::BargeInDecisionRequested => barge(true, true, Vec::new()),
            BotEvent::BargeInCancelled => Out::BargeInCancelled(pb::BargeInCancelled {}),
            BotEvent::BargeIn { truncated } => {
                let chunks = self.cut(&truncated);
                barge(false, false, chunks)
            }
            BotEvent::Cleared { truncated } => {
                self.cut(&truncated);
                return Vec::new();
            }
            BotEvent::PlaybackFinished { playback_id } => {
                let played_ms = self.take_record(&playback_id).map_or(0, |r| r.total_ms);
                self.marks.remove(&playback_id);
                Out::PlaybackFinished(pb::PlaybackFinished {
                    playback_id,
                    played_ms,
                })
            }
            BotEvent::MarkReached { playback_id, mark } => {
                self.marks
                    .entry(playback_id.clone())
                    .or_default()
                    .push(mark.clone());
                Out::MarkReached(pb::MarkReached {
                    playback_id,
                    name: mark,
                })
            }
            BotEvent::Dtmf { digit } => Out::Dtmf(pb::Dtmf {
                digit: digit.to_string(),
            }),
            BotEvent::CommandFailed(e) => {
                let code = match e.kind {
                    CommandErrorKind::BufferFull => {
                        // The refused chunk is the newest one with its id.
                        if let Some(id) = &e.playback_id {
                            if let Some(i) = self.plays.iter().rposition(|p| &p.playback_id == id) {
                                self.plays.remove(i);
                            }
                        }
                        pb::ErrorCode::BufferFull
                    }
                    CommandErrorKind::InvalidSettings => pb::ErrorCode::InvalidSettings,
                    CommandErrorKind::NotPossible => pb::ErrorCode::NotPossible,
                };
                Out::Error(pb::Error {
                    code: code as i32,
                    message: e.message,
                    playback_id: e.playback_id.unwrap_or_default(),
                })
            }
            BotEvent::TransferResult {
                accepted,
                sip_status,
            } => Out::TransferResult(pb::TransferResult {
                accepted,
                sip_status: u32::from(sip_status),
            }),
            BotEvent::CallEnded { reason } => Out::CallEnded(pb::CallEnded { reason }),
        };
        vec![message(out, self.now_ms())]
    }

    fn take_record(&mut self, playback_id: &str) -> Option<PlayRecord> {
        let i = self
            .plays
            .iter()
            .position(|p| p.playback_id == playback_id)?;
        self.plays.remove(i)
    }

    /// Reports for the chunks a truncation dropped (pure marks, which carry no audio, are
    /// left out).
    fn cut(&mut self, truncated: &[Truncation]) -> Vec<pb::TruncatedChunk> {
        let mut chunks = Vec::new();
        for t in truncated {
            if t.total_ms == 0 {
                continue;
            }
            let record = self.take_record(&t.playback_id);
            let split = record
                .as_ref()
                .map(|r| text::split(&r.text, &r.words, t.played_ms, t.total_ms))
                .unwrap_or_default();
            chunks.push(pb::TruncatedChunk {
                playback_id: t.playback_id.clone(),
                played_ms: t.played_ms,
                total_ms: t.total_ms,
                marks_passed: self.marks.remove(&t.playback_id).unwrap_or_default(),
                delivered_text: split.delivered,
                remaining_text: split.remaining,
            });
        }
        chunks
    }

    /// Bot → gateway: a command for the call, nothing (an empty message), or why the message
    /// is unusable.
    pub fn bot_message(&mut self, m: pb::BotMessage) -> Result<Option<BotCommand>, Malformed> {
        use pb::bot_message::Msg;
        let Some(msg) = m.msg else {
            return Err(malformed(
                "empty BotMessage (no field of the oneof set)",
                None,
            ));
        };
        Ok(Some(match msg {
            Msg::Play(p) => return self.play(p).map(Some),
            Msg::Mark(mark) => {
                if mark.name.is_empty() {
                    return Err(malformed("Mark without a name", Some(&mark.playback_id)));
                }
                BotCommand::Mark {
                    playback_id: mark.playback_id,
                    name: mark.name,
                }
            }
            Msg::Clear(_) => BotCommand::Clear,
            Msg::ConfirmBargeIn(_) => BotCommand::ConfirmBargeIn,
            Msg::RejectBargeIn(_) => BotCommand::RejectBargeIn,
            Msg::UpdateBargeIn(u) => BotCommand::UpdateBargeIn(BargeInUpdate {
                mode: u.mode,
                threshold: u.threshold,
                min_speech_ms: u.min_speech_ms,
                min_silence_ms: u.min_silence_ms,
                pause_onset_ms: u.pause_onset_ms,
                decision_ms: u.decision_ms,
                dtmf_barge_in: u.dtmf_barge_in,
            }),
            Msg::Transfer(t) => {
                if !(t.target.starts_with("sip:") || t.target.starts_with("sips:"))
                    || t.target.contains(['<', '>', '\r', '\n'])
                {
                    return Err(malformed(
                        format!("Transfer target `{}` is not a sip: URI", t.target),
                        None,
                    ));
                }
                BotCommand::Transfer { target: t.target }
            }
            Msg::SendDtmf(d) => {
                let valid = |c: char| c.is_ascii_digit() || "*#ABCD".contains(c);
                if d.digits.is_empty() || d.digits.len() > 32 || !d.digits.chars().all(valid) {
                    return Err(malformed(
                        format!("SendDtmf digits `{}`: 1 to 32 of 0-9 * # A-D", d.digits),
                        None,
                    ));
                }
                let duration_ms = match d.duration_ms {
                    0 => 160,
                    ms @ 40..=2000 => ms,
                    other => {
                        return Err(malformed(
                            format!("SendDtmf duration_ms {other}: 40..=2000 (or 0)"),
                            None,
                        ))
                    }
                };
                BotCommand::SendDtmf {
                    digits: d.digits,
                    duration_ms,
                }
            }
            Msg::Hangup(_) => BotCommand::Hangup,
        }))
    }

    fn play(&mut self, p: pb::Play) -> Result<BotCommand, Malformed> {
        let id = Some(p.playback_id.as_str());
        if p.playback_id.is_empty() {
            return Err(malformed("Play with an empty playback_id", None));
        }
        let encoding = match pb::AudioEncoding::try_from(p.encoding) {
            Ok(pb::AudioEncoding::Pcm16) => Some(Encoding::Pcm16),
            Ok(pb::AudioEncoding::Mulaw) => Some(Encoding::Mulaw),
            _ => None,
        };
        let samples = grpc_audio::decode_to_8k(&p.audio, encoding, p.sample_rate)
            .map_err(|e| malformed(format!("Play: {e}"), id))?;
        if samples.is_empty() {
            return Err(malformed("Play without audio", id));
        }
        if let Some(bad) = p
            .words
            .windows(2)
            .find(|w| w[1].start_ms < w[0].start_ms)
            .or_else(|| p.words.windows(1).find(|w| w[0].end_ms < w[0].start_ms))
        {
            return Err(malformed(
                format!("Play: word timings out of order at `{}`", bad[0].word),
                id,
            ));
        }
        self.plays.push_back(PlayRecord {
            playback_id: p.playback_id.clone(),
            total_ms: (samples.len() / 8) as u32,
            text: p.text,
            words: p
                .words
                .into_iter()
                .map(|w| WordTime {
                    word: w.word,
                    start_ms: w.start_ms,
                    end_ms: w.end_ms,
                })
                .collect(),
        });
        Ok(BotCommand::Play {
            playback_id: p.playback_id,
            samples: Arc::from(samples),
            interruptible: p.interruptible,
        })
    }
}

#[cfg(test)]
mod tests;
