//! RTCP (RFC 3550 §6): build SR/RR + SDES CNAME compound packets, parse incoming ones,
//! compute round-trip time, and schedule reports. Sans-IO: wall-clock time arrives as
//! [`NtpTime`] built by the caller from `SystemTime`, monotonic time as `Instant`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::rtp::ReceptionReport;

const VERSION: u8 = 2;
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
const SDES_END: u8 = 0;
const SDES_CNAME: u8 = 1;
const HEADER_LEN: usize = 4;
const SENDER_INFO_LEN: usize = 20;
const REPORT_BLOCK_LEN: usize = 24;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low 32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// Converts wall-clock time (times before 1970 map to 0).
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since_unix.as_secs() + NTP_UNIX_OFFSET_SECS;
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | frac)
    }

    /// The middle 32 bits (16.16 fixed point seconds), as used by LSR and RTT.
    pub fn middle_32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// The sender information of an SR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: NtpTime,
    /// RTP timestamp corresponding to `ntp` (same clock as the media).
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// SSRC of the stream this block reports on.
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from that stream (0: none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// A block about the stream we receive, from the RTP receiver's interval statistics and
    /// the last SR the remote sent us.
    pub fn from_reception(
        reception: &ReceptionReport,
        last_sr: Option<&LastSenderReport>,
        now: Instant,
    ) -> ReportBlock {
        let (last_sr, delay_since_last_sr) = match last_sr {
            Some(sr) => (sr.lsr, sr.dlsr(now)),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: reception.ssrc,
            fraction_lost: reception.fraction_lost,
            cumulative_lost: reception.cumulative_lost,
            extended_highest_seq: reception.extended_highest_seq,
            jitter: reception.jitter,
            last_sr,
            delay_since_last_sr,
        }
    }

    /// Round-trip time from a block the remote sent about *our* stream (RFC 3550 §6.4.1:
    /// RTT = A − LSR − DLSR, with A the arrival time of this report). `None` if the remote
    /// has not seen an SR from us yet or the clocks make the result negative.
    pub fn round_trip_time(&self, arrival: NtpTime) -> Option<Duration> {
        if self.last_sr == 0 {
            return None;
        }
        let since_sr = arrival.middle_32().wrapping_sub(self.last_sr);
        let rtt = since_sr.checked_sub(self.delay_since_last_sr)?;
        // A "negative" result wraps to a huge value; anything above a minute is bogus.
        if rtt > 60 << 16 {
            return None;
        }
        Some(Duration::from_nanos((u64::from(rtt) * 1_000_000_000) >> 16))
    }
}

/// The last SR received from the remote: what our report blocks echo as LSR/DLSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastSenderReport {
    pub lsr: u32,
    pub received_at: Instant,
}

impl LastSenderReport {
    pub fn new(sender_info: &SenderInfo, received_at: Instant) -> Self {
        LastSenderReport {
            lsr: sender_info.ntp.middle_32(),
            received_at,
        }
    }

    /// Delay since the SR arrived, in 1/65536 s (saturating).
    pub fn dlsr(&self, now: Instant) -> u32 {
        let units =
            now.saturating_duration_since(self.received_at).as_nanos() * 65536 / 1_000_000_000;
        u32::try_from(units).unwrap_or(u32::MAX)
    }
}

/// What to put in an outgoing compound packet.
#[derive(Clone, Debug)]
pub struct CompoundReport<'a> {
    /// Our SSRC.
    pub ssrc: u32,
    /// `Some` → SR (we sent media since the last report), `None` → RR.
    pub sender_info: Option<SenderInfo>,
    /// A block about the remote's stream, if we receive one.
    pub report_block: Option<ReportBlock>,
    /// SDES CNAME (RFC 3550 §6.1 requires it in every compound). Truncated to 255 bytes.
    pub cname: &'a str,
    /// Append a BYE (end of the call).
    pub bye: bool,
}

/// Writes the compound packet into `buf` (replacing its content; capacity is reused).
pub fn build_compound(report: &CompoundReport<'_>, buf: &mut Vec<u8>) {
    buf.clear();
    let block_count = u8::from(report.report_block.is_some());
    let (packet_type, body_len) = match report.sender_info {
        Some(_) => (PT_SR, SENDER_INFO_LEN),
        None => (PT_RR, 0),
    };
    let length = HEADER_LEN + 4 + body_len + usize::from(block_count) * REPORT_BLOCK_LEN;
    push_header(buf, block_count, packet_type, length);
    buf.extend_from_slice(&report.ssrc.to_be_bytes());
    if let Some(info) = &report.sender_info {
        buf.extend_from_slice(&info.ntp.0.to_be_bytes());
        buf.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
        buf.extend_from_slice(&info.packet_count.to_be_bytes());
        buf.extend_from_slice(&info.octet_count.to_be_bytes());
    }
    if let Some(block) = &report.report_block {
        push_report_block(buf, block);
    }

    let cname = truncate_utf8(report.cname, 255);
    // Chunk: SSRC, CNAME item (type, len, text), END, then pad to 32 bits. At least one
    // zero octet must follow the items.
    let items_len = 2 + cname.len() + 1;
    let chunk_len = (4 + items_len).div_ceil(4) * 4;
    push_header(buf, 1, PT_SDES, HEADER_LEN + chunk_len);
    buf.extend_from_slice(&report.ssrc.to_be_bytes());
    buf.push(SDES_CNAME);
    buf.push(cname.len() as u8);
    buf.extend_from_slice(cname.as_bytes());
    let padding = chunk_len - 4 - 2 - cname.len();
    buf.extend(std::iter::repeat_n(SDES_END, padding));

    if report.bye {
        push_header(buf, 1, PT_BYE, HEADER_LEN + 4);
        buf.extend_from_slice(&report.ssrc.to_be_bytes());
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

fn push_header(buf: &mut Vec<u8>, count: u8, packet_type: u8, total_len: usize) {
    let words = (total_len / 4).saturating_sub(1) as u16;
    buf.push((VERSION << 6) | (count & 0x1F));
    buf.push(packet_type);
    buf.extend_from_slice(&words.to_be_bytes());
}

fn push_report_block(buf: &mut Vec<u8>, block: &ReportBlock) {
    let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0xFF_FFFF;
    buf.extend_from_slice(&block.ssrc.to_be_bytes());
    buf.extend_from_slice(&((u32::from(block.fraction_lost) << 24) | lost).to_be_bytes());
    buf.extend_from_slice(&block.extended_highest_seq.to_be_bytes());
    buf.extend_from_slice(&block.jitter.to_be_bytes());
    buf.extend_from_slice(&block.last_sr.to_be_bytes());
    buf.extend_from_slice(&block.delay_since_last_sr.to_be_bytes());
}

/// Why an RTCP datagram was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTCP version {0} (expected 2)")]
    BadVersion(u8),
    #[error("RTCP length field ({declared} bytes) exceeds the datagram ({available} bytes)")]
    LengthOverrun { declared: usize, available: usize },
    #[error("RTCP padding only allowed in the last packet of a compound")]
    MisplacedPadding,
    #[error("RTCP packet type {packet_type} body too short for its count {count}")]
    BodyTooShort { packet_type: u8, count: u8 },
    #[error("malformed SDES chunk")]
    BadSdes,
    #[error("no SR, RR, SDES or BYE in the compound packet")]
    NothingUseful,
}

/// One parsed compound packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RtcpReport {
    /// SSRC of the first SR/RR sender.
    pub sender_ssrc: Option<u32>,
    /// Sender info of the first SR.
    pub sender_info: Option<SenderInfo>,
    /// All report blocks of all SR/RR packets.
    pub report_blocks: Vec<ReportBlock>,
    /// CNAME of the first SDES chunk that has one (lossy UTF-8).
    pub cname: Option<String>,
    /// SSRCs that said BYE.
    pub bye_ssrcs: Vec<u32>,
}

impl RtcpReport {
    /// Blocks that report on `our_ssrc` (what the remote says about our stream).
    pub fn blocks_about(&self, our_ssrc: u32) -> impl Iterator<Item = &ReportBlock> {
        self.report_blocks
            .iter()
            .filter(move |b| b.ssrc == our_ssrc)
    }
}

/// Parses a compound RTCP packet. Every packet's length field must fit exactly (the sum is
/// the datagram length), the version must be 2, padding is allowed only in the last
/// packet, and counts must fit their packet. Unknown packet types (APP, XR, feedback) are
/// skipped. The first packet need not be SR/RR (RFC 5506 reduced-size RTCP).
pub fn parse_compound(data: &[u8]) -> Result<RtcpReport, RtcpError> {
    if data.len() < HEADER_LEN + 4 {
        return Err(RtcpError::TooShort(data.len()));
    }
    let mut report = RtcpReport::default();
    let mut useful = false;
    let mut rest = data;
    while !rest.is_empty() {
        let (first, packet_type, words) = match rest {
            [a, b, c, d, ..] => (*a, *b, u16::from_be_bytes([*c, *d])),
            _ => return Err(RtcpError::TooShort(rest.len())),
        };
        if first >> 6 != VERSION {
            return Err(RtcpError::BadVersion(first >> 6));
        }
        let total = (usize::from(words) + 1) * 4;
        let (packet, after) = match (rest.get(..total), rest.get(total..)) {
            (Some(p), Some(a)) => (p, a),
            _ => {
                return Err(RtcpError::LengthOverrun {
                    declared: total,
                    available: rest.len(),
                })
            }
        };
        let mut body = packet.get(HEADER_LEN..).unwrap_or(&[]);
        if first & 0x20 != 0 {
            if !after.is_empty() {
                return Err(RtcpError::MisplacedPadding);
            }
            let pad = usize::from(*packet.last().unwrap_or(&0));
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::LengthOverrun {
                    declared: pad,
                    available: body.len(),
                });
            }
            body = body.get(..body.len() - pad).unwrap_or(&[]);
        }
        let count = first & 0x1F;
        match packet_type {
            PT_SR | PT_RR => {
                parse_report(packet_type, count, body, &mut report)?;
                useful = true;
            }
            PT_SDES => {
                parse_sdes(count, body, &mut report)?;
                useful = true;
            }
            PT_BYE => {
                let ids = body
                    .get(..usize::from(count) * 4)
                    .ok_or(RtcpError::BodyTooShort { packet_type, count })?;
                report.bye_ssrcs.extend(ids.chunks_exact(4).map(be_u32));
                useful = true;
            }
            _ => {}
        }
        rest = after;
    }
    if useful {
        Ok(report)
    } else {
        Err(RtcpError::NothingUseful)
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    match bytes {
        [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

fn parse_report(
    packet_type: u8,
    count: u8,
    body: &[u8],
    report: &mut RtcpReport,
) -> Result<(), RtcpError> {
    let info_len = if packet_type == PT_SR {
        SENDER_INFO_LEN
    } else {
        0
    };
    let needed = 4 + info_len + usize::from(count) * REPORT_BLOCK_LEN;
    // Extra bytes after the blocks are profile-specific extensions: allowed, ignored.
    if body.len() < needed {
        return Err(RtcpError::BodyTooShort { packet_type, count });
    }
    let ssrc = be_u32(body);
    if report.sender_ssrc.is_none() {
        report.sender_ssrc = Some(ssrc);
    }
    let mut blocks = body.get(4..needed).unwrap_or(&[]);
    if packet_type == PT_SR {
        let info = blocks.get(..SENDER_INFO_LEN).unwrap_or(&[]);
        let word = |i: usize| be_u32(info.get(i * 4..).unwrap_or(&[]));
        let sender_info = SenderInfo {
            ntp: NtpTime((u64::from(word(0)) << 32) | u64::from(word(1))),
            rtp_timestamp: word(2),
            packet_count: word(3),
            octet_count: word(4),
        };
        report.sender_info.get_or_insert(sender_info);
        blocks = blocks.get(SENDER_INFO_LEN..).unwrap_or(&[]);
    }
    for raw in blocks.chunks_exact(REPORT_BLOCK_LEN) {
        let word = |i: usize| be_u32(raw.get(i * 4..).unwrap_or(&[]));
        let loss_word = word(1);
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = ((loss_word << 8) as i32) >> 8;
        report.report_blocks.push(ReportBlock {
            ssrc: word(0),
            fraction_lost: (loss_word >> 24) as u8,
            cumulative_lost,
            extended_highest_seq: word(2),
            jitter: word(3),
            last_sr: word(4),
            delay_since_last_sr: word(5),
        });
    }
    Ok(())
}

fn parse_sdes(count: u8, body: &[u8], report: &mut RtcpReport) -> Result<(), RtcpError> {
    let mut rest = body;
    for _ in 0..count {
        let ssrc_len = 4;
        rest = rest.get(ssrc_len..).ok_or(RtcpError::BadSdes)?;
        let mut consumed = ssrc_len;
        loop {
            let (&item_type, after_type) = rest.split_first().ok_or(RtcpError::BadSdes)?;
            if item_type == SDES_END {
                consumed += 1;
                // Skip the zero padding up to the next 32-bit boundary.
                let pad = (4 - consumed % 4) % 4;
                rest = after_type.get(pad..).ok_or(RtcpError::BadSdes)?;
                break;
            }
            let (&len, after_len) = after_type.split_first().ok_or(RtcpError::BadSdes)?;
            let text = after_len
                .get(..usize::from(len))
                .ok_or(RtcpError::BadSdes)?;
            if item_type == SDES_CNAME && report.cname.is_none() {
                report.cname = Some(String::from_utf8_lossy(text).into_owned());
            }
            rest = after_len
                .get(usize::from(len)..)
                .ok_or(RtcpError::BadSdes)?;
            consumed += 2 + usize::from(len);
        }
    }
    Ok(())
}

/// Decides when to send the next report: every `interval` (RFC 3550 recommends 5 s
/// minimum), randomised to [0.5, 1.5] × interval with a caller-supplied uniform value so
/// that calls started together do not report in lockstep. The first report comes after half
/// a (randomised) interval (RFC 3550 §6.2).
#[derive(Clone, Debug)]
pub struct RtcpScheduler {
    interval: Duration,
    next_due: Instant,
}

impl RtcpScheduler {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

    /// `random_unit` is uniform in [0, 1) (values outside are clamped).
    pub fn new(now: Instant, interval: Duration, random_unit: f64) -> Self {
        let first = randomised(interval, random_unit) / 2;
        RtcpScheduler {
            interval,
            next_due: now + first,
        }
    }

    /// When [`RtcpScheduler::poll`] should be called next.
    pub fn next_deadline(&self) -> Instant {
        self.next_due
    }

    /// Returns true when a report is due at `now`, and schedules the following one.
    pub fn poll(&mut self, now: Instant, random_unit: f64) -> bool {
        if now < self.next_due {
            return false;
        }
        self.next_due = now + randomised(self.interval, random_unit);
        true
    }
}

fn randomised(interval: Duration, random_unit: f64) -> Duration {
    let unit = if random_unit.is_finite() {
        random_unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    interval.mul_f64(0.5 + unit)
}

#[cfg(test)]
mod tests;
