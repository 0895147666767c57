//! One call's media pipeline as a sans-IO state machine.
//!
//! Inbound: RTP → strict/latching receiver → (DTMF decoder | G.711 decode → jitter buffer).
//! Every 20 ms tick pops one caller frame (for the VAD, which the shell feeds) and emits one
//! outbound frame from the playout, encoded and packetised. VAD probabilities come back in
//! `on_vad` and drive the barge-in policy, which pauses, resumes and truncates the playout.
//!
//! The caller-audio path is where echo cancellation and noise suppression slot in: between
//! the jitter buffer's output and the VAD feed (`Tick::caller_audio`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::dtmf::DtmfDecoder;
use crate::g711::Codec;
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::playout::{Chunk, Playout, PlayoutConfig, PlayoutError, PlayoutEvent};
use crate::policy::{
    BargeInPolicy, PlayoutView, PolicyAction, PolicyConfig, PolicyCounters, PolicyEvent, Trigger,
    VadObservation,
};
use crate::rtcp::{
    build_compound, parse_compound, CompoundReport, LastSenderReport, NtpTime, ReportBlock,
    RtcpScheduler, SenderInfo,
};
use crate::rtp::{PayloadTypeSet, RtpReceiver, RtpReceiverConfig, RtpSender};
use crate::vad::VadResult;

/// Samples per 20 ms frame at 8 kHz: the session's fixed tick.
pub const FRAME_SAMPLES: usize = 160;
pub const FRAME: Duration = Duration::from_millis(20);
/// Frame deadlines remembered to time-stamp VAD results (≈ 1.3 s of history).
const FRAME_HISTORY: usize = 64;

#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub codec: Codec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// Where to send until the caller's real source is latched (from SDP).
    pub remote_rtp: SocketAddr,
    pub jitter: JitterConfig,
    pub bargein: PolicyConfig,
    pub max_queued_ms: u32,
    pub rtcp_interval: Duration,
    /// SDES CNAME for our RTCP.
    pub cname: String,
    /// Random bases for the outbound stream (RFC 3550 §5.1).
    pub ssrc: u32,
    pub seq_base: u16,
    pub ts_base: u32,
}

/// How much of one chunk the caller heard before it was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedChunk {
    pub playback_id: String,
    pub played_ms: u32,
    pub total_ms: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MediaEvent {
    Dtmf {
        digit: char,
    },
    /// Caller speech confirmed while no interruptible audio was playing.
    SpeechStarted {
        onset: Instant,
    },
    /// Caller speech confirmed over interruptible audio (or a DTMF key): the playout was
    /// truncated.
    BargeIn {
        onset: Instant,
        confirmed_at: Instant,
        dtmf: bool,
        truncated: Vec<TruncatedChunk>,
    },
    /// First strong speech evidence: the playout is paused, not yet truncated.
    TentativeBargeIn {
        onset: Instant,
        at: Instant,
    },
    /// The tentative barge-in was not confirmed (or the bot rejected it): playout resumed
    /// exactly where it paused.
    BargeInCancelled {
        at: Instant,
    },
    /// `bot_decides` mode: the bot must confirm or reject within decision_ms.
    DecisionRequested {
        onset: Instant,
        at: Instant,
    },
    /// The caller spoke over a non-interruptible segment (reported, never cut).
    SpeechDuringNonInterruptible {
        at: Instant,
    },
    /// A truncation followed by no caller speech of ≥ 300 ms within 2 s.
    FalseBargeIn {
        truncated_at: Instant,
    },
    /// Agent audio started while the caller was still speaking.
    PrematureCutoff {
        at: Instant,
    },
    TurnEnded {
        at: Instant,
    },
    PlaybackStarted {
        playback_id: String,
    },
    MarkReached {
        playback_id: String,
        mark: String,
    },
    PlaybackFinished {
        playback_id: String,
        played_ms: u32,
    },
    /// Queued audio dropped by `clear()` (not by a barge-in).
    Cleared {
        truncated: Vec<TruncatedChunk>,
    },
}

/// One 20 ms step of the pipeline.
pub struct Tick<'a> {
    /// The RTP packet to send (None while on hold / not sending).
    pub packet: Option<&'a [u8]>,
    /// Caller audio for this frame, for the VAD.
    pub caller_audio: &'a [i16],
    /// The agent audio sent in this frame (silence when idle or on hold): the echo
    /// canceller's far-end reference.
    pub agent_audio: &'a [i16],
    /// Caller sample counter at the start of `caller_audio` (VAD tags count from here).
    pub caller_samples_before: u64,
    /// Samples of the caller's timeline the jitter buffer skipped (> 0) or repeated (< 0)
    /// to produce this frame; the echo canceller follows it.
    pub caller_shift: i64,
    /// How late the shell ran this tick against its absolute deadline.
    pub lateness: Duration,
    /// The frame carries agent audio.
    pub voiced: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SessionStats {
    pub ticks: u64,
    pub max_lateness: Duration,
    pub vad_results: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    pub rtcp_malformed: u64,
    /// From the remote's report blocks about our stream (LSR/DLSR).
    pub round_trip: Option<Duration>,
}

enum Pending {
    None,
    BargeIn {
        onset: Instant,
        confirmed_at: Instant,
        dtmf: bool,
    },
    Clear,
}

pub struct MediaSession {
    codec: Codec,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    sdp_remote: SocketAddr,
    receiver: RtpReceiver,
    jitter: JitterBuffer,
    dtmf: DtmfDecoder,
    playout: Playout,
    sender: RtpSender,
    policy: BargeInPolicy,
    last_voiced: bool,
    sending: bool,
    decode_buf: Vec<i16>,
    caller_frame: [i16; FRAME_SAMPLES],
    out_frame: [i16; FRAME_SAMPLES],
    payload: [u8; FRAME_SAMPLES],
    packet: Vec<u8>,
    caller_samples: u64,
    frame_deadlines: [Option<Instant>; FRAME_HISTORY],
    pending: Pending,
    truncated: Vec<TruncatedChunk>,
    events: VecDeque<MediaEvent>,
    stats: SessionStats,
    rtcp: RtcpScheduler,
    rtcp_buf: Vec<u8>,
    last_sr: Option<LastSenderReport>,
    cname: String,
    /// xorshift state for RTCP interval randomisation (no RNG dependency in media/).
    rng: u64,
}

impl MediaSession {
    /// Fails only on a payload type outside 0..=127 (which SDP negotiation never yields).
    pub fn new(cfg: SessionConfig, now: Instant) -> Result<Self, String> {
        let sender = RtpSender::new(cfg.ssrc, cfg.seq_base, cfg.ts_base, cfg.payload_type)
            .map_err(|e| e.to_string())?;
        let jitter = JitterBuffer::new(cfg.jitter).map_err(|e| e.to_string())?;
        let policy = BargeInPolicy::new(cfg.bargein).map_err(|e| e.to_string())?;
        Ok(MediaSession {
            codec: cfg.codec,
            payload_type: cfg.payload_type,
            dtmf_payload_type: cfg.dtmf_payload_type,
            sdp_remote: cfg.remote_rtp,
            receiver: RtpReceiver::new(RtpReceiverConfig {
                accepted_payload_types: accepted(cfg.payload_type, cfg.dtmf_payload_type),
                ..RtpReceiverConfig::default()
            }),
            jitter,
            dtmf: DtmfDecoder::new(8000),
            playout: Playout::new(
                PlayoutConfig {
                    ptime_ms: 20,
                    max_queued_ms: cfg.max_queued_ms,
                },
                now,
            ),
            sender,
            policy,
            last_voiced: false,
            sending: true,
            decode_buf: Vec::with_capacity(480),
            caller_frame: [0; FRAME_SAMPLES],
            out_frame: [0; FRAME_SAMPLES],
            payload: [0; FRAME_SAMPLES],
            packet: Vec::with_capacity(12 + FRAME_SAMPLES),
            caller_samples: 0,
            frame_deadlines: [None; FRAME_HISTORY],
            pending: Pending::None,
            truncated: Vec::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            rtcp: RtcpScheduler::new(now, cfg.rtcp_interval, 0.5),
            rtcp_buf: Vec::with_capacity(128),
            last_sr: None,
            cname: cfg.cname,
            rng: u64::from(cfg.ssrc) | 1,
        })
    }

    /// An RTP datagram from the network.
    pub fn on_rtp(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(info) = self.receiver.on_packet(now, source, data) else {
            return; // counted by the receiver
        };
        let payload = info.payload(data);
        if Some(info.payload_type) == self.dtmf_payload_type {
            if let Some(ev) = self
                .dtmf
                .on_packet(now, info.timestamp, info.marker, payload)
            {
                self.events.push_back(MediaEvent::Dtmf { digit: ev.digit });
            }
            return;
        }
        if info.payload_type != self.payload_type {
            return;
        }
        self.decode_buf.clear();
        self.decode_buf.resize(payload.len(), 0);
        self.codec.decode_into(payload, &mut self.decode_buf);
        self.jitter.push(
            now,
            info.timestamp,
            info.ssrc,
            info.marker,
            &self.decode_buf,
        );
    }

    /// When the next tick is due (absolute, from the playout's sample clock).
    pub fn next_deadline(&self) -> Instant {
        self.playout.next_deadline()
    }

    /// Runs every tick due at `now`; call until it returns None, then sleep until
    /// `next_deadline()`.
    pub fn poll_tick(&mut self, now: Instant) -> Option<Tick<'_>> {
        let frame = self.playout.poll_frame(now, &mut self.out_frame)?;
        self.stats.ticks += 1;
        self.stats.max_lateness = self.stats.max_lateness.max(frame.lateness);
        self.jitter.pop(now, &mut self.caller_frame);
        // A press whose end packets were all lost is reported after a timeout.
        if let Some(ev) = self.dtmf.on_timeout(now) {
            self.on_digit(now, ev.digit);
        }
        // Agent audio starting while the caller still talks is a premature cut-off.
        if frame.voiced && !self.last_voiced {
            self.policy.on_agent_audio_started(now);
        }
        self.last_voiced = frame.voiced;
        self.policy
            .on_playout_changed(now, PlayoutView::of(&self.playout));
        if self.policy.next_deadline().is_some_and(|d| d <= now) {
            self.policy.handle_timeout(now);
        }
        self.apply_policy();
        let index = (self.caller_samples / FRAME_SAMPLES as u64) as usize % FRAME_HISTORY;
        if let Some(slot) = self.frame_deadlines.get_mut(index) {
            *slot = Some(frame.deadline);
        }
        let before = self.caller_samples;
        self.caller_samples += FRAME_SAMPLES as u64;
        self.collect_playout_events(now);
        if !self.sending {
            // Nothing goes out on hold, so nothing can echo back.
            self.out_frame = [0; FRAME_SAMPLES];
        }
        let packet = if self.sending {
            self.codec.encode_into(&self.out_frame, &mut self.payload);
            self.sender.build_into(
                &self.payload,
                FRAME_SAMPLES as u32,
                frame.marker,
                &mut self.packet,
            );
            Some(&self.packet[..])
        } else {
            None
        };
        Some(Tick {
            packet,
            caller_audio: &self.caller_frame,
            agent_audio: &self.out_frame,
            caller_samples_before: before,
            caller_shift: self.jitter.last_pop_shift(),
            lateness: frame.lateness,
            voiced: frame.voiced,
        })
    }

    fn collect_playout_events(&mut self, now: Instant) {
        while let Some(ev) = self.playout.poll_event() {
            match ev {
                PlayoutEvent::Started { playback_id } => {
                    self.policy.note_agent_started(now);
                    self.events
                        .push_back(MediaEvent::PlaybackStarted { playback_id })
                }
                PlayoutEvent::MarkReached { playback_id, mark } => self
                    .events
                    .push_back(MediaEvent::MarkReached { playback_id, mark }),
                PlayoutEvent::Finished {
                    playback_id,
                    played_ms,
                } => self.events.push_back(MediaEvent::PlaybackFinished {
                    playback_id,
                    played_ms: ms32(played_ms),
                }),
                PlayoutEvent::Truncated {
                    playback_id,
                    played_ms,
                    total_ms,
                } => self.truncated.push(TruncatedChunk {
                    playback_id,
                    played_ms: ms32(played_ms),
                    total_ms: ms32(total_ms),
                }),
            }
        }
        // A truncation takes effect at this tick: report it with what was cut.
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => {}
            Pending::BargeIn {
                onset,
                confirmed_at,
                dtmf,
            } => self.events.push_back(MediaEvent::BargeIn {
                onset,
                confirmed_at,
                dtmf,
                truncated: std::mem::take(&mut self.truncated),
            }),
            Pending::Clear => self.events.push_back(MediaEvent::Cleared {
                truncated: std::mem::take(&mut self.truncated),
            }),
        }
    }

    /// The time the caller sample `tag` (a count from the start of the call) was taken out
    /// of the jitter buffer, i.e. entered the pipeline.
    fn instant_of(&self, tag: u64, fallback: Instant) -> Instant {
        let frame = tag.saturating_sub(1) / FRAME_SAMPLES as u64;
        let within = tag.saturating_sub(frame * FRAME_SAMPLES as u64);
        let index = frame as usize % FRAME_HISTORY;
        match self.frame_deadlines.get(index).copied().flatten() {
            Some(d) if frame + (FRAME_HISTORY as u64) > self.caller_samples / 160 => {
                d + Duration::from_micros(within * 125)
            }
            _ => fallback,
        }
    }

    /// A VAD result for a caller chunk submitted with tag = caller sample count at its end.
    pub fn on_vad(&mut self, now: Instant, result: VadResult) {
        self.stats.vad_results += 1;
        let chunk_end = self.instant_of(result.tag, now);
        let obs = VadObservation::of_chunk(chunk_end, result.probability, &result.context);
        self.policy.on_vad(obs, PlayoutView::of(&self.playout));
        self.apply_policy();
    }

    fn on_digit(&mut self, now: Instant, digit: char) {
        self.events.push_back(MediaEvent::Dtmf { digit });
        self.policy
            .on_dtmf(now, digit, PlayoutView::of(&self.playout));
        self.apply_policy();
    }

    /// The bot's answer in `bot_decides` mode; false if nothing was pending.
    pub fn bot_decision(&mut self, now: Instant, confirm: bool) -> bool {
        let pending = self.policy.on_bot_decision(now, confirm);
        self.apply_policy();
        pending
    }

    /// Changes this call's barge-in settings (invalid settings are refused, old kept).
    pub fn set_policy(&mut self, cfg: PolicyConfig) -> Result<(), String> {
        self.policy.set_config(cfg).map_err(|e| e.to_string())
    }

    pub fn policy_counters(&self) -> PolicyCounters {
        self.policy.counters()
    }

    fn apply_policy(&mut self) {
        while let Some(action) = self.policy.poll_action() {
            match action {
                PolicyAction::Pause => self.playout.pause(),
                // On hold nothing is sent: resuming would use audio up unheard.
                PolicyAction::Resume if self.sending => self.playout.resume(),
                PolicyAction::Resume => {}
                PolicyAction::Truncate => self.playout.truncate(),
                PolicyAction::Event(ev) => self.on_policy_event(ev),
            }
        }
    }

    fn on_policy_event(&mut self, ev: PolicyEvent) {
        let media_event = match ev {
            PolicyEvent::BargeIn {
                onset,
                confirmed_at,
                by,
            } => {
                // Reported with what was cut once the truncation takes effect (next tick).
                self.pending = Pending::BargeIn {
                    onset,
                    confirmed_at,
                    dtmf: by == Trigger::Dtmf,
                };
                return;
            }
            PolicyEvent::SpeechStarted { onset } => MediaEvent::SpeechStarted { onset },
            PolicyEvent::TentativeBargeIn { onset, at } => {
                MediaEvent::TentativeBargeIn { onset, at }
            }
            PolicyEvent::BargeInCancelled { at } => MediaEvent::BargeInCancelled { at },
            PolicyEvent::DecisionRequested { onset, at } => {
                MediaEvent::DecisionRequested { onset, at }
            }
            PolicyEvent::SpeechDuringNonInterruptible { at } => {
                MediaEvent::SpeechDuringNonInterruptible { at }
            }
            PolicyEvent::TurnEnded { at } => MediaEvent::TurnEnded { at },
            PolicyEvent::FalseBargeIn { truncated_at } => MediaEvent::FalseBargeIn { truncated_at },
            PolicyEvent::PrematureCutoff { at } => MediaEvent::PrematureCutoff { at },
        };
        self.events.push_back(media_event);
    }

    /// An RTCP compound packet from the caller (RTP port + 1).
    pub fn on_rtcp(&mut self, now: Instant, wallclock: SystemTime, data: &[u8]) {
        let Ok(report) = parse_compound(data) else {
            self.stats.rtcp_malformed += 1;
            return;
        };
        self.stats.rtcp_received += 1;
        if let Some(info) = &report.sender_info {
            self.last_sr = Some(LastSenderReport::new(info, now));
        }
        let arrival = NtpTime::from_system_time(wallclock);
        let rtt = report
            .blocks_about(self.sender.ssrc())
            .find_map(|b| b.round_trip_time(arrival));
        if rtt.is_some() {
            self.stats.round_trip = rtt;
        }
    }

    /// Our next RTCP report (SR while sending, else RR), when one is due.
    pub fn poll_rtcp(&mut self, now: Instant, wallclock: SystemTime) -> Option<&[u8]> {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        if !self.rtcp.poll(now, unit) {
            return None;
        }
        let sender_info = (self.sending && self.sender.packets_sent() > 0).then(|| SenderInfo {
            ntp: NtpTime::from_system_time(wallclock),
            rtp_timestamp: self.sender.next_timestamp(),
            packet_count: self.sender.packets_sent(),
            octet_count: self.sender.octets_sent(),
        });
        let report_block = self
            .receiver
            .take_reception_report()
            .map(|r| ReportBlock::from_reception(&r, self.last_sr.as_ref(), now));
        build_compound(
            &CompoundReport {
                ssrc: self.sender.ssrc(),
                sender_info,
                report_block,
                cname: &self.cname,
                bye: false,
            },
            &mut self.rtcp_buf,
        );
        self.stats.rtcp_sent += 1;
        Some(&self.rtcp_buf)
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Queues bot audio.
    pub fn play(&mut self, chunk: Chunk) -> Result<(), PlayoutError> {
        self.playout.enqueue(chunk)
    }

    /// Drops queued interruptible audio at the next tick (bot request).
    pub fn clear(&mut self) {
        self.playout.truncate();
        if matches!(self.pending, Pending::None) {
            self.pending = Pending::Clear;
        }
    }

    /// Hold (`false`) stops sending and pauses the playout so nothing is lost; unhold resumes.
    pub fn set_sending(&mut self, sending: bool) {
        if sending == self.sending {
            return;
        }
        self.sending = sending;
        if !sending {
            self.playout.pause();
        } else if !self.policy.holds_pause() {
            // A pause the policy holds (tentative barge-in) stays until it decides.
            self.playout.resume();
        }
    }

    /// A re-INVITE changed the codec or the remote address.
    pub fn update_remote(
        &mut self,
        codec: Codec,
        payload_type: u8,
        dtmf_payload_type: Option<u8>,
        remote: SocketAddr,
    ) {
        self.codec = codec;
        self.payload_type = payload_type;
        self.dtmf_payload_type = dtmf_payload_type;
        self.receiver
            .set_accepted_payload_types(accepted(payload_type, dtmf_payload_type));
        // SDP negotiation only yields 0..=127; an invalid type keeps the previous one.
        let _ = self.sender.set_payload_type(payload_type);
        self.sdp_remote = remote;
    }

    /// Symmetric RTP: answer the address the caller really sends from once known.
    pub fn destination(&self) -> SocketAddr {
        self.receiver.latched_source().unwrap_or(self.sdp_remote)
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    pub fn receiver(&self) -> &RtpReceiver {
        &self.receiver
    }

    pub fn jitter(&self) -> &JitterBuffer {
        &self.jitter
    }

    pub fn sender(&self) -> &RtpSender {
        &self.sender
    }
}

fn accepted(payload_type: u8, dtmf: Option<u8>) -> PayloadTypeSet {
    let mut set = PayloadTypeSet::from_slice(&[payload_type]);
    if let Some(pt) = dtmf {
        set.insert(pt);
    }
    set
}

fn ms32(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
