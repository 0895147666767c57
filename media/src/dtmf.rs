//! RFC 4733 telephone-event decoder (DTMF digits 0-9 * # A-D), sans-IO.
//!
//! A key press is one event identified by its RTP timestamp (the event start). The sender
//! repeats update packets every ~50 ms with a growing duration, retransmits the start, and
//! sends the end packet (E bit) typically three times. The decoder reports exactly one
//! [`DtmfEvent`] per press:
//! - when the first end packet arrives;
//! - if every end packet is lost: when a packet of the *next* event (new timestamp) arrives,
//!   or from [`DtmfDecoder::on_timeout`] once no packet of the event arrived for
//!   [`DtmfDecoder::END_TIMEOUT`] (the shell calls it at [`DtmfDecoder::next_deadline`]).
//!
//! Packets with a timestamp older than the current event (reordered stragglers) are ignored,
//! so a late update cannot produce a second digit. Events longer than the 16-bit duration
//! field (~8 s) continue in a new segment without the marker bit at timestamp + duration
//! (RFC 4733 §2.5.1.3); that is merged into the same press.

use std::time::{Duration, Instant};

/// One key press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    /// '0'-'9', '*', '#', 'A'-'D'.
    pub digit: char,
    pub duration_ms: u32,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtmfStats {
    /// Events reported.
    pub events: u64,
    /// Payloads shorter than 4 bytes.
    pub bad_payloads: u64,
    /// Event codes above 15 (flash, tones …), ignored.
    pub unsupported_events: u64,
    /// Events reported without having seen an end packet.
    pub ended_without_end_packet: u64,
    /// Packets older than the current event, ignored.
    pub stale_packets: u64,
}

#[derive(Clone, Copy, Debug)]
struct Press {
    timestamp: u32,
    event: u8,
    /// Duration of earlier segments of a long event, in timestamp units.
    earlier_segments: u32,
    /// Largest duration field seen in the current segment.
    duration: u16,
    ended: bool,
    reported: bool,
    last_packet_at: Instant,
}

impl Press {
    fn total_duration(&self) -> u32 {
        self.earlier_segments
            .saturating_add(u32::from(self.duration))
    }
}

/// Decoder for one stream's telephone-event payload type.
#[derive(Debug)]
pub struct DtmfDecoder {
    clock_rate: u32,
    current: Option<Press>,
    stats: DtmfStats,
}

impl Default for DtmfDecoder {
    fn default() -> Self {
        Self::new(8000)
    }
}

impl DtmfDecoder {
    /// Silence after which an event without an end packet is reported. Senders update at
    /// least every 50 ms during a press; 250 ms tolerates several lost updates.
    pub const END_TIMEOUT: Duration = Duration::from_millis(250);

    /// `clock_rate` of the telephone-event payload (8000 with G.711).
    pub fn new(clock_rate: u32) -> Self {
        DtmfDecoder {
            clock_rate: clock_rate.max(1),
            current: None,
            stats: DtmfStats::default(),
        }
    }

    pub fn stats(&self) -> DtmfStats {
        self.stats
    }

    /// Feeds one telephone-event packet (RTP timestamp, marker bit, payload) received at
    /// `now`. Returns a finished key press, at most one per press.
    pub fn on_packet(
        &mut self,
        now: Instant,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<DtmfEvent> {
        let Some(&[event, flags, dur_hi, dur_lo]) = payload.get(..4) else {
            self.stats.bad_payloads += 1;
            return None;
        };
        if event > 15 {
            self.stats.unsupported_events += 1;
            return None;
        }
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([dur_hi, dur_lo]);

        let Some(mut press) = self.current else {
            return self.start_press(now, timestamp, event, duration, end, true);
        };
        if timestamp == press.timestamp && event == press.event {
            press.last_packet_at = now;
            press.duration = press.duration.max(duration);
            press.ended |= end;
            self.current = Some(press);
            if press.ended {
                return self.finish_current();
            }
            return None;
        }
        if (timestamp.wrapping_sub(press.timestamp) as i32) < 0 {
            self.stats.stale_packets += 1;
            return None;
        }
        let continues_long_event = !marker
            && event == press.event
            && !press.ended
            && timestamp == press.timestamp.wrapping_add(u32::from(press.duration));
        if continues_long_event {
            press.earlier_segments = press.total_duration();
            press.timestamp = timestamp;
            press.duration = duration;
            press.last_packet_at = now;
            press.ended = end;
            self.current = Some(press);
            if end {
                return self.finish_current();
            }
            return None;
        }
        // A new press. If the previous one was never reported, its end packets were lost:
        // report it now. The new press, if it is already an end packet, is then reported by
        // its redundant end packets or by the timeout.
        let previous = self.finish_current();
        let started = self.start_press(now, timestamp, event, duration, end, previous.is_none());
        previous.or(started)
    }

    /// Reports an unfinished press once no packet for it arrived for [`Self::END_TIMEOUT`].
    pub fn on_timeout(&mut self, now: Instant) -> Option<DtmfEvent> {
        let press = self.current?;
        if press.reported || now.saturating_duration_since(press.last_packet_at) < Self::END_TIMEOUT
        {
            return None;
        }
        self.finish_current()
    }

    /// When [`Self::on_timeout`] may report something (`None`: nothing pending).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.current
            .filter(|p| !p.reported)
            .map(|p| p.last_packet_at + Self::END_TIMEOUT)
    }

    fn start_press(
        &mut self,
        now: Instant,
        timestamp: u32,
        event: u8,
        duration: u16,
        end: bool,
        report_if_end: bool,
    ) -> Option<DtmfEvent> {
        self.current = Some(Press {
            timestamp,
            event,
            earlier_segments: 0,
            duration,
            ended: end,
            reported: false,
            last_packet_at: now,
        });
        if end && report_if_end {
            return self.finish_current();
        }
        None
    }

    /// Reports the current press unless already done.
    fn finish_current(&mut self) -> Option<DtmfEvent> {
        let mut press = self.current?;
        if press.reported {
            return None;
        }
        press.reported = true;
        self.current = Some(press);
        Some(self.report(&press))
    }

    fn report(&mut self, press: &Press) -> DtmfEvent {
        self.stats.events += 1;
        if !press.ended {
            self.stats.ended_without_end_packet += 1;
        }
        let duration_ms = u64::from(press.total_duration()) * 1000 / u64::from(self.clock_rate);
        DtmfEvent {
            digit: digit_of(press.event),
            duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
        }
    }
}

fn digit_of(event: u8) -> char {
    match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12 => 'A',
        13 => 'B',
        14 => 'C',
        _ => 'D',
    }
}

#[cfg(test)]
mod tests;
