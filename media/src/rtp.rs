//! RTP receive and send state on top of `rtp-rs` (sans-IO).
//!
//! [`RtpReceiver`] validates each datagram, applies symmetric ("strict") RTP source
//! latching, tracks sequence numbers the RFC 3550 A.1 way and keeps the RFC 3550 A.3/A.8
//! reception statistics that an RTCP receiver report needs. It never copies the payload: it
//! returns its byte range inside the datagram.
//!
//! [`RtpSender`] writes packets into a caller-owned buffer; the caller passes the sample count
//! of every packet so the pacing loop, not the wall clock, owns the RTP timestamp.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError, Seq};

/// RFC 3550 A.1: a forward jump of fewer packets than this is a gap (loss), not a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a packet up to this many behind the highest is reordered, not a restart.
const MAX_MISORDER: u16 = 100;
/// RFC 3550 A.1: packets in sequence needed before a new source's statistics start.
const MIN_SEQUENTIAL: u8 = 2;
const SEQ_MOD: u64 = 1 << 16;
/// Extended sequence numbers start one cycle up so that a packet reordered before the very
/// first one (across a 65535→0 wrap) still has a non-negative number.
const INITIAL_CYCLES: u64 = SEQ_MOD;

/// The set of RTP payload types (0..=127) the caller accepts, e.g. `{0, 101}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadTypeSet(u128);

impl PayloadTypeSet {
    /// The empty set.
    pub const fn empty() -> Self {
        PayloadTypeSet(0)
    }

    /// A set from a list; values above 127 are ignored (they cannot be RTP payload types).
    pub fn from_slice(payload_types: &[u8]) -> Self {
        let mut set = Self::empty();
        for &pt in payload_types {
            set.insert(pt);
        }
        set
    }

    /// Adds one payload type (values above 127 are ignored).
    pub fn insert(&mut self, payload_type: u8) {
        if payload_type < 128 {
            self.0 |= 1u128 << payload_type;
        }
    }

    /// Whether `payload_type` is in the set.
    pub fn contains(&self, payload_type: u8) -> bool {
        payload_type < 128 && self.0 & (1u128 << payload_type) != 0
    }
}

/// Receiver settings.
#[derive(Clone, Debug)]
pub struct RtpReceiverConfig {
    /// RTP clock rate of the audio (8000 for G.711 and telephone-event).
    pub clock_rate: u32,
    /// How long the latched source must be silent before another source may take over.
    pub relatch_after: Duration,
    /// Payload types negotiated in SDP; anything else is dropped and counted.
    pub accepted_payload_types: PayloadTypeSet,
}

impl Default for RtpReceiverConfig {
    fn default() -> Self {
        RtpReceiverConfig {
            clock_rate: 8000,
            relatch_after: Duration::from_secs(2),
            accepted_payload_types: PayloadTypeSet::from_slice(&[0, 8, 101]),
        }
    }
}

/// Why a datagram was not accepted. Every variant is also counted in [`RtpStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpDrop {
    /// Too short, truncated header/extension/CSRC list or bad padding.
    Malformed,
    /// RTP version other than 2.
    WrongVersion(u8),
    /// An RTCP packet (RFC 5761 demultiplexing: second octet 192..=223) on the RTP port.
    Rtcp,
    /// Payload type not in the accepted set.
    UnknownPayloadType(u8),
    /// From an address other than the latched one (strict RTP).
    WrongSource,
    /// Same sequence number seen recently.
    Duplicate,
    /// First packet after a jump of more than 3000 sequence numbers; the second one in
    /// sequence after it resynchronises (RFC 3550 A.1).
    SequenceJump,
    /// An SSRC we switched away from less than `relatch_after` ago (a straggler).
    StaleSsrc,
}

impl fmt::Display for RtpDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpDrop::Malformed => write!(f, "malformed RTP packet"),
            RtpDrop::WrongVersion(v) => write!(f, "RTP version {v} (expected 2)"),
            RtpDrop::Rtcp => write!(f, "RTCP packet on the RTP port"),
            RtpDrop::UnknownPayloadType(pt) => write!(f, "payload type {pt} not negotiated"),
            RtpDrop::WrongSource => write!(f, "packet from a source other than the latched one"),
            RtpDrop::Duplicate => write!(f, "duplicate sequence number"),
            RtpDrop::SequenceJump => write!(f, "large sequence number jump"),
            RtpDrop::StaleSsrc => write!(f, "packet from a previous SSRC"),
        }
    }
}

impl std::error::Error for RtpDrop {}

/// What an accepted packet contains. The payload stays in the caller's datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacketInfo {
    pub ssrc: u32,
    pub seq: u16,
    /// Sequence number extended with the wrap count. Starts at 65536 + first seq (see
    /// module docs) and increases by one per packet; it is re-based when the sender's
    /// sequence restarts (large jump) or the SSRC changes.
    pub extended_seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_type: u8,
    /// Offset of the payload inside the datagram (after CSRCs and header extension).
    pub payload_offset: usize,
    /// Payload length (trailing padding excluded).
    pub payload_len: usize,
    /// The SSRC differs from the previous accepted packet's (not set for the first packet).
    pub ssrc_changed: bool,
    /// This packet moved the latch to a new source address.
    pub relatched: bool,
}

impl RtpPacketInfo {
    /// The payload byte range inside the datagram.
    pub fn payload_range(&self) -> Range<usize> {
        self.payload_offset..self.payload_offset + self.payload_len
    }

    /// The payload slice of the datagram this info was produced from (empty if `data` is
    /// not that datagram and the range does not fit).
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.payload_range()).unwrap_or(&[])
    }
}

/// Counters of one receiver (all sources of the call).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RtpStats {
    /// Packets accepted (duplicates and drops excluded).
    pub received: u64,
    /// RFC 3550 A.3 cumulative loss (expected − received), summed over SSRCs. May be
    /// negative transiently when packets from before the first one arrive late.
    pub lost: i64,
    /// RFC 3550 A.8 interarrival jitter of the current SSRC, in timestamp units.
    pub jitter: u32,
    /// The same in milliseconds.
    pub jitter_ms: f64,
    pub duplicates: u64,
    /// Strict RTP drops (wrong source address).
    pub wrong_source: u64,
    pub malformed: u64,
    pub wrong_version: u64,
    pub rtcp_on_rtp_port: u64,
    pub unknown_payload_type: u64,
    pub sequence_jumps: u64,
    pub stale_ssrc: u64,
    pub ssrc_changes: u64,
    pub relatches: u64,
}

/// Reception statistics for one RTCP report block (RFC 3550 §6.4.1), taken per interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceptionReport {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit signed field.
    pub cumulative_lost: i32,
    /// Wrap cycles in the high 16 bits, highest sequence number in the low 16.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

enum SeqVerdict {
    Accept(u64),
    Duplicate,
    Jump,
}

/// Sequence and statistics state of one SSRC.
struct SourceState {
    ssrc: u32,
    max_seq: u16,
    /// Wrap count times 65536 (starts at [`INITIAL_CYCLES`]).
    cycles: u64,
    /// Sequence number that would confirm a restart after a large jump (> u16::MAX = none).
    bad_seq: u32,
    probation: u8,
    base_ext: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit i set = packet `highest_ext - i` was received (duplicate detection).
    seen: u128,
    /// RFC 3550 A.8 jitter estimate in timestamp units (kept as float, not ×16 fixed point).
    jitter: f64,
    last_transit: Option<i32>,
    last_timestamp: Option<u32>,
}

impl SourceState {
    fn new(ssrc: u32, seq: u16) -> Self {
        SourceState {
            ssrc,
            // RFC 3550 A.1 starts probation with max_seq = seq - 1 so that the first packet
            // is "in sequence".
            max_seq: seq.wrapping_sub(1),
            // For seq 0 that "previous" number is 65535, and stepping to 0 counts a wrap.
            cycles: if seq == 0 {
                INITIAL_CYCLES - SEQ_MOD
            } else {
                INITIAL_CYCLES
            },
            bad_seq: u32::MAX,
            probation: MIN_SEQUENTIAL,
            base_ext: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            seen: 0,
            jitter: 0.0,
            last_transit: None,
            last_timestamp: None,
        }
    }

    fn highest_ext(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// RFC 3550 A.1 `init_seq`: statistics restart at this packet (sequence unwrapping
    /// continues so extended numbers stay monotonic where possible).
    fn restart_statistics(&mut self, ext: u64) {
        self.base_ext = ext;
        self.bad_seq = u32::MAX;
        self.received = 1;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    /// Moves `max_seq` forward to `seq` (a wrap adds a cycle) and returns the new highest.
    fn advance_to(&mut self, seq: u16) -> u64 {
        let delta = seq.wrapping_sub(self.max_seq);
        if seq < self.max_seq {
            self.cycles += SEQ_MOD;
        }
        self.max_seq = seq;
        self.seen = if delta >= 128 {
            1
        } else {
            (self.seen << delta) | 1
        };
        self.highest_ext()
    }

    /// RFC 3550 A.1 `update_seq`, except that packets on probation are delivered (see
    /// [`RtpReceiver`]) and duplicates are recognised exactly within the last 128.
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let delta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if delta == 0 {
                return SeqVerdict::Duplicate;
            }
            if delta == 1 {
                self.probation -= 1;
                let ext = self.advance_to(seq);
                if self.probation == 0 {
                    self.restart_statistics(ext);
                }
                return SeqVerdict::Accept(ext);
            }
            // Not in sequence: probation starts over from this packet.
            self.probation = MIN_SEQUENTIAL - 1;
            self.max_seq = seq;
            self.seen = 1;
            return SeqVerdict::Accept(self.highest_ext());
        }
        if delta == 0 {
            return SeqVerdict::Duplicate;
        }
        if delta < MAX_DROPOUT {
            self.received += 1;
            return SeqVerdict::Accept(self.advance_to(seq));
        }
        if delta <= u16::MAX - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two packets in sequence after a big jump: the sender restarted its
                // sequence numbers. Keep unwrapping from here and restart statistics.
                self.max_seq = seq;
                self.seen = 1;
                let ext = self.highest_ext();
                self.restart_statistics(ext);
                return SeqVerdict::Accept(ext);
            }
            self.bad_seq = u32::from(seq.wrapping_add(1));
            return SeqVerdict::Jump;
        }
        // Reordered: at most MAX_MISORDER behind the highest.
        let behind = u32::from(self.max_seq.wrapping_sub(seq));
        let bit = 1u128 << behind;
        if self.seen & bit != 0 {
            return SeqVerdict::Duplicate;
        }
        self.seen |= bit;
        self.received += 1;
        SeqVerdict::Accept(self.highest_ext() - u64::from(behind))
    }

    fn expected(&self) -> u64 {
        if self.probation > 0 {
            return 0;
        }
        self.highest_ext() + 1 - self.base_ext
    }

    fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// RFC 3550 A.8, skipping packets that repeat the previous timestamp (RFC 4733 event
    /// updates keep the event start timestamp and would read as huge jitter) and
    /// discontinuities of more than one second (sender restarts its timestamps).
    fn update_jitter(&mut self, arrival: u32, timestamp: u32, clock_rate: u32) {
        if self.last_timestamp == Some(timestamp) {
            return;
        }
        self.last_timestamp = Some(timestamp);
        let transit = arrival.wrapping_sub(timestamp) as i32;
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last).unsigned_abs();
            if d <= clock_rate {
                self.jitter += (f64::from(d) - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }
}

/// Sans-IO RTP receiver for one media stream.
///
/// **Latching rule (symmetric / strict RTP).** The SDP address of the peer is only a hint
/// (NAT rewrites it), so it is not used: the receiver latches to the source address of the
/// first valid packet (parsable RTP v2, accepted payload type). Afterwards packets from any
/// other address are dropped as [`RtpDrop::WrongSource`], which stops injected or
/// misrouted media. It re-latches to a new address only when both hold:
/// 1. the latched source has sent nothing for more than `relatch_after` (default 2 s), and
/// 2. the new source's packet carries an SSRC different from the current one,
///
/// i.e. the old stream is gone and a genuinely new stream appeared (peer moved network,
/// media server changed after a transfer). The caller should send its own RTP to
/// [`RtpReceiver::latched_source`] (symmetric RTP).
///
/// **Probation.** RFC 3550 A.1 withholds a new SSRC's first packet until two arrive in
/// sequence. Here those packets are delivered (the source is already vetted by latching
/// and clipping the first 20 ms of every stream is audible); they only stay out of the
/// loss statistics, as in the RFC.
pub struct RtpReceiver {
    config: RtpReceiverConfig,
    latched: Option<SocketAddr>,
    last_from_latched: Option<Instant>,
    source: Option<SourceState>,
    /// SSRC we switched away from and when: its stragglers are dropped for a while.
    previous_ssrc: Option<(u32, Instant)>,
    epoch: Option<Instant>,
    lost_in_previous_sources: i64,
    stats: RtpStats,
}

impl RtpReceiver {
    pub fn new(config: RtpReceiverConfig) -> Self {
        RtpReceiver {
            config,
            latched: None,
            last_from_latched: None,
            source: None,
            previous_ssrc: None,
            epoch: None,
            lost_in_previous_sources: 0,
            stats: RtpStats::default(),
        }
    }

    /// Replaces the accepted payload types (after a re-INVITE narrowed the codecs).
    pub fn set_accepted_payload_types(&mut self, payload_types: PayloadTypeSet) {
        self.config.accepted_payload_types = payload_types;
    }

    /// The address media is latched to (send our RTP there).
    pub fn latched_source(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// The SSRC of the current stream.
    pub fn current_ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Validates one datagram received at `now` from `source`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<RtpPacketInfo, RtpDrop> {
        let result = self.classify(now, source, data);
        if let Err(drop) = result {
            let counter = match drop {
                RtpDrop::Malformed => &mut self.stats.malformed,
                RtpDrop::WrongVersion(_) => &mut self.stats.wrong_version,
                RtpDrop::Rtcp => &mut self.stats.rtcp_on_rtp_port,
                RtpDrop::UnknownPayloadType(_) => &mut self.stats.unknown_payload_type,
                RtpDrop::WrongSource => &mut self.stats.wrong_source,
                RtpDrop::Duplicate => &mut self.stats.duplicates,
                RtpDrop::SequenceJump => &mut self.stats.sequence_jumps,
                RtpDrop::StaleSsrc => &mut self.stats.stale_ssrc,
            };
            *counter += 1;
        }
        result
    }

    fn classify(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
    ) -> Result<RtpPacketInfo, RtpDrop> {
        // RFC 5761 §4: with rtcp-mux, a second octet of 192..=223 is RTCP (SR=200 … APP=204
        // show up as marker + PT 72..76). Check before parsing: RTCP is not valid RTP.
        if let [first, second, ..] = data {
            if first >> 6 == 2 && (192..=223).contains(second) {
                return Err(RtpDrop::Rtcp);
            }
        }
        let reader = RtpReader::new(data).map_err(|e| match e {
            RtpReaderError::UnsupportedVersion(v) => RtpDrop::WrongVersion(v),
            _ => RtpDrop::Malformed,
        })?;
        let ssrc = reader.ssrc();
        let payload_type = reader.payload_type();

        let relatch = match self.latched {
            Some(addr) if addr == source => false,
            Some(_) => {
                let silent_long_enough = self.last_from_latched.is_none_or(|last| {
                    now.saturating_duration_since(last) > self.config.relatch_after
                });
                let new_ssrc = self.current_ssrc() != Some(ssrc);
                if !(silent_long_enough && new_ssrc) {
                    return Err(RtpDrop::WrongSource);
                }
                true
            }
            None => false,
        };
        if self.latched == Some(source) {
            // Any parsable packet from the latched source proves it is alive.
            self.last_from_latched = Some(now);
        }
        if !self.config.accepted_payload_types.contains(payload_type) {
            return Err(RtpDrop::UnknownPayloadType(payload_type));
        }
        if let Some((old, switched_at)) = self.previous_ssrc {
            if now.saturating_duration_since(switched_at) > self.config.relatch_after {
                self.previous_ssrc = None;
            } else if old == ssrc && !relatch {
                return Err(RtpDrop::StaleSsrc);
            }
        }

        let seq = u16::from(reader.sequence_number());
        let timestamp = reader.timestamp();
        let ssrc_changed = match &self.source {
            Some(state) => state.ssrc != ssrc,
            None => false,
        };
        if ssrc_changed || self.source.is_none() {
            if let Some(old) = self.source.take() {
                self.lost_in_previous_sources += old.lost();
                self.previous_ssrc = Some((old.ssrc, now));
                self.stats.ssrc_changes += 1;
            }
            self.source = Some(SourceState::new(ssrc, seq));
        }
        let epoch = *self.epoch.get_or_insert(now);
        let clock_rate = self.config.clock_rate;
        let Some(state) = self.source.as_mut() else {
            return Err(RtpDrop::Malformed); // unreachable: set just above
        };
        let extended_seq = match state.update_seq(seq) {
            SeqVerdict::Accept(ext) => ext,
            SeqVerdict::Duplicate => return Err(RtpDrop::Duplicate),
            SeqVerdict::Jump => return Err(RtpDrop::SequenceJump),
        };
        if extended_seq == state.highest_ext() {
            let arrival = arrival_in_clock_units(now, epoch, clock_rate);
            state.update_jitter(arrival, timestamp, clock_rate);
        }

        if self.latched != Some(source) {
            if relatch {
                self.stats.relatches += 1;
            }
            self.latched = Some(source);
            self.last_from_latched = Some(now);
        }
        self.stats.received += 1;
        Ok(RtpPacketInfo {
            ssrc,
            seq,
            extended_seq,
            timestamp,
            marker: reader.mark(),
            payload_type,
            payload_offset: reader.payload_offset(),
            payload_len: reader.payload().len(),
            ssrc_changed,
            relatched: relatch,
        })
    }

    /// Current counters.
    pub fn stats(&self) -> RtpStats {
        let mut stats = self.stats.clone();
        let current = self.source.as_ref();
        stats.lost = self.lost_in_previous_sources + current.map_or(0, SourceState::lost);
        let jitter = current.map_or(0.0, |s| s.jitter);
        stats.jitter = jitter as u32;
        stats.jitter_ms = jitter * 1000.0 / f64::from(self.config.clock_rate.max(1));
        stats
    }

    /// The report block data for the current SSRC; starts a new loss interval (RFC 3550
    /// A.3). `None` before a source is validated.
    pub fn take_reception_report(&mut self) -> Option<ReceptionReport> {
        let state = self.source.as_mut()?;
        if state.probation > 0 {
            return None;
        }
        let expected = state.expected();
        let expected_interval = expected.saturating_sub(state.expected_prior);
        let received_interval = state.received.saturating_sub(state.received_prior);
        state.expected_prior = expected;
        state.received_prior = state.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        Some(ReceptionReport {
            ssrc: state.ssrc,
            fraction_lost,
            cumulative_lost: state.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: (state.highest_ext() - INITIAL_CYCLES) as u32,
            jitter: state.jitter as u32,
        })
    }
}

fn arrival_in_clock_units(now: Instant, epoch: Instant, clock_rate: u32) -> u32 {
    let nanos = now.saturating_duration_since(epoch).as_nanos();
    // Truncation to u32 is the RTP timestamp wrap.
    (nanos * u128::from(clock_rate) / 1_000_000_000) as u32
}

/// Errors of [`RtpSender`] set-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpSenderError {
    #[error("payload type {0} is outside 0..=127")]
    InvalidPayloadType(u8),
}

/// Builds outgoing RTP packets of one stream.
pub struct RtpSender {
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    next_timestamp: u32,
    packets_sent: u32,
    octets_sent: u32,
}

impl RtpSender {
    /// `ssrc`, `initial_seq` and `initial_timestamp` should be random (RFC 3550 §5.1); the
    /// caller supplies them so this crate needs no RNG.
    pub fn new(
        ssrc: u32,
        initial_seq: u16,
        initial_timestamp: u32,
        payload_type: u8,
    ) -> Result<Self, RtpSenderError> {
        if payload_type > 127 {
            return Err(RtpSenderError::InvalidPayloadType(payload_type));
        }
        Ok(RtpSender {
            ssrc,
            payload_type,
            next_seq: initial_seq,
            next_timestamp: initial_timestamp,
            packets_sent: 0,
            octets_sent: 0,
        })
    }

    /// Changes the payload type of following packets (e.g. after a re-INVITE).
    pub fn set_payload_type(&mut self, payload_type: u8) -> Result<(), RtpSenderError> {
        if payload_type > 127 {
            return Err(RtpSenderError::InvalidPayloadType(payload_type));
        }
        self.payload_type = payload_type;
        Ok(())
    }

    /// Replaces `buf` with one packet carrying `payload`, then advances the sequence number
    /// by one and the timestamp by `samples`. `buf` keeps its capacity, so a reused buffer
    /// does not allocate.
    pub fn build_into(&mut self, payload: &[u8], samples: u32, marker: bool, buf: &mut Vec<u8>) {
        let builder = RtpPacketBuilder::new()
            .payload_type(self.payload_type)
            .marked(marker)
            .sequence(Seq::from(self.next_seq))
            .ssrc(self.ssrc)
            .timestamp(self.next_timestamp)
            .payload(payload);
        buf.clear();
        buf.resize(builder.target_length(), 0);
        // The checked variant only re-validates the payload type (done in `new`) and the
        // buffer length (just sized), so the unchecked one cannot fail here.
        let written = builder.build_into_unchecked(buf.as_mut_slice());
        buf.truncate(written);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
    }

    /// Advances the timestamp without sending (time passed with nothing to send).
    pub fn skip_samples(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Sequence number of the next packet.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// RTP timestamp of the next packet (for the RTCP SR timestamp mapping).
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Packets sent (RTCP SR sender's packet count, wraps at 2^32).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets sent (RTCP SR sender's octet count, wraps at 2^32).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }
}

#[cfg(test)]
mod tests;
