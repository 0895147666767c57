//! What the RTP peer observed, and the JSON report it writes (`PeerReport`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analysis::{
    first_interval_after, gap_stats, overlap_ms, stop_latency_ms, total_ms, voiced_intervals,
    GAP_LIMIT_MS, HANGOVER_MS, VOICED_RMS_THRESHOLD,
};

/// The peer's JSON report. Times are milliseconds relative to the peer's start (for a peer
/// started by SIPp, that is right after the ACK).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    pub local: String,
    pub remote: String,
    pub duration_ms: f64,
    /// Packets the peer sent (one per 20 ms for the whole duration).
    pub packets_tx: u64,
    /// Sends that failed (e.g. ICMP port unreachable before the gateway opened its port).
    pub tx_errors: u64,
    /// Worst lateness of the peer's own sender against its absolute 20 ms clock.
    pub tx_max_late_ms: f64,
    /// Valid RTP packets received.
    pub packets_rx: u64,
    /// Datagrams received that were not RTP (counted, otherwise ignored).
    pub packets_rx_invalid: u64,
    pub first_rx_ms: Option<f64>,
    pub last_rx_ms: Option<f64>,
    /// Largest inter-arrival gap after the first packet (kernel receive timestamps).
    pub max_gap_ms: f64,
    /// Number of inter-arrival gaps above 40 ms.
    pub gaps_over_40ms: u64,
    /// Packets whose sequence number did not follow the previous one of the same SSRC.
    pub seq_discontinuities: u64,
    /// Received audio above the voice threshold, merged with a 200 ms hangover.
    pub voiced_intervals_ms: Vec<[f64; 2]>,
    pub voiced_total_ms: f64,
    /// When the first packet of the caller's WAV actually went out (None: no WAV sent).
    pub speech_onset_ms: Option<f64>,
    /// onset + end of the last voiced frame of the caller's WAV.
    pub speech_end_ms: Option<f64>,
    /// Arrival of the last voiced gateway packet in [onset, speech_end] minus onset.
    pub stop_latency_ms: Option<f64>,
    /// The first voiced interval starting after the caller's speech ended: the bot's reply.
    pub reply_interval_ms: Option<[f64; 2]>,
    pub ssrcs: Vec<u32>,
    pub payload_types: Vec<u8>,
    pub marker_packets_rx: u64,
    /// Source addresses of received RTP (symmetric RTP: should be the SDP address).
    pub rx_sources: Vec<String>,
    /// Voiced received audio at packet resolution: consecutive voiced packets (gaps up to
    /// `RUN_GAP_MS`) merged, so a pause between words splits a run; `[first arrival, last
    /// arrival + 20 ms]`. The barge-in evaluation needs this to tell the prompt's last packet
    /// from the reply that follows it.
    #[serde(default)]
    pub voiced_runs_ms: Vec<[f64; 2]>,
    /// The peer's start (time 0 of every other field) as wall-clock ms since the Unix epoch,
    /// to place the gateway's log lines on the peer's timeline.
    #[serde(default)]
    pub start_unix_ms: Option<f64>,
    /// The SIP Call-ID the peer was started for (`--call-id`).
    #[serde(default)]
    pub call_id: Option<String>,
    /// The echo path the peer applied (`--echo-*`), None without echo.
    #[serde(default)]
    pub echo: Option<EchoReport>,
}

/// What the peer's closed-loop echo did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoReport {
    pub delay_ms: f64,
    pub erl_db: f64,
    pub dispersion_ms: f64,
    pub seed: u64,
    pub taps: usize,
    /// Received (far-end) power over echo power actually added, over the whole call;
    /// None when nothing was received.
    pub measured_erl_db: Option<f64>,
    /// RMS (16-bit scale) of the echo added.
    pub echo_rms: f64,
}

impl PeerReport {
    /// Reads a report written by the peer.
    pub fn load(path: &Path) -> Result<PeerReport, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read peer report {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("bad peer report {}: {e}", path.display()))
    }

    /// Voiced milliseconds received inside `[from, to]`.
    pub fn voiced_ms_between(&self, from: f64, to: f64) -> f64 {
        overlap_ms(&self.voiced_intervals_ms, from, to)
    }
}

/// One received RTP packet, as far as the report needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RxPacket {
    pub arrival_ms: f64,
    pub ssrc: u32,
    pub payload_type: u8,
    pub sequence: u16,
    pub marker: bool,
    /// RMS of the decoded payload; None for non-audio payloads (telephone-event, unknown).
    pub rms: Option<f64>,
}

/// Facts from the sending side that the report needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxSummary {
    pub packets_tx: u64,
    pub tx_errors: u64,
    pub tx_max_late_ms: f64,
    pub speech_onset_ms: Option<f64>,
    /// End of the last voiced frame of the caller's WAV, relative to the WAV's start.
    pub speech_voiced_end_ms: Option<f64>,
}

/// Voiced packets closer than this (arrival to arrival, minus one frame) form one run: one
/// late or missing packet does not split a run, a pause between words does.
pub const RUN_GAP_MS: f64 = 30.0;

/// Accumulates received packets; turns them into a `PeerReport` at the end.
#[derive(Debug, Default)]
pub struct RxLog {
    packets: Vec<RxPacket>,
    invalid: u64,
    sources: BTreeSet<SocketAddr>,
}

impl RxLog {
    pub fn new() -> RxLog {
        RxLog {
            packets: Vec::with_capacity(4096),
            ..RxLog::default()
        }
    }

    pub fn push(&mut self, packet: RxPacket, source: SocketAddr) {
        self.packets.push(packet);
        self.sources.insert(source);
    }

    pub fn push_invalid(&mut self) {
        self.invalid += 1;
    }

    pub fn packets(&self) -> &[RxPacket] {
        &self.packets
    }

    pub fn report(
        &self,
        local: &str,
        remote: &str,
        duration_ms: f64,
        tx: &TxSummary,
    ) -> PeerReport {
        let arrivals: Vec<f64> = self.packets.iter().map(|p| p.arrival_ms).collect();
        let (max_gap_ms, gaps_over_40ms) = gap_stats(&arrivals, GAP_LIMIT_MS);
        let audio = self
            .packets
            .iter()
            .filter_map(|p| p.rms.map(|r| (p.arrival_ms, r)));
        let voiced = voiced_intervals(audio.clone(), VOICED_RMS_THRESHOLD, HANGOVER_MS);
        let voiced_runs = voiced_intervals(audio, VOICED_RMS_THRESHOLD, RUN_GAP_MS);
        let speech_end_ms = match (tx.speech_onset_ms, tx.speech_voiced_end_ms) {
            (Some(onset), Some(end)) => Some(onset + end),
            _ => None,
        };
        let stop_latency = match (tx.speech_onset_ms, speech_end_ms) {
            (Some(onset), Some(end)) => {
                let flags = self.packets.iter().map(|p| {
                    (
                        p.arrival_ms,
                        p.rms.is_some_and(|r| r > VOICED_RMS_THRESHOLD),
                    )
                });
                Some(stop_latency_ms(flags, onset, end))
            }
            _ => None,
        };
        PeerReport {
            local: local.to_string(),
            remote: remote.to_string(),
            duration_ms,
            packets_tx: tx.packets_tx,
            tx_errors: tx.tx_errors,
            tx_max_late_ms: tx.tx_max_late_ms,
            packets_rx: self.packets.len() as u64,
            packets_rx_invalid: self.invalid,
            first_rx_ms: arrivals.first().copied(),
            last_rx_ms: arrivals.last().copied(),
            max_gap_ms,
            gaps_over_40ms,
            seq_discontinuities: self.seq_discontinuities(),
            voiced_total_ms: total_ms(&voiced),
            reply_interval_ms: speech_end_ms.and_then(|end| first_interval_after(&voiced, end)),
            voiced_intervals_ms: voiced,
            speech_onset_ms: tx.speech_onset_ms,
            speech_end_ms,
            stop_latency_ms: stop_latency,
            ssrcs: self
                .packets
                .iter()
                .map(|p| p.ssrc)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            payload_types: self
                .packets
                .iter()
                .map(|p| p.payload_type)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            marker_packets_rx: self.packets.iter().filter(|p| p.marker).count() as u64,
            rx_sources: self.sources.iter().map(ToString::to_string).collect(),
            voiced_runs_ms: voiced_runs,
            start_unix_ms: None,
            call_id: None,
            echo: None,
        }
    }

    fn seq_discontinuities(&self) -> u64 {
        let mut last_seq: BTreeMap<u32, u16> = BTreeMap::new();
        let mut jumps = 0;
        for p in &self.packets {
            if let Some(prev) = last_seq.insert(p.ssrc, p.sequence) {
                if p.sequence != prev.wrapping_add(1) {
                    jumps += 1;
                }
            }
        }
        jumps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SocketAddr {
        "127.0.0.1:20000".parse().unwrap()
    }

    fn audio(t: f64, seq: u16, rms: f64) -> RxPacket {
        RxPacket {
            arrival_ms: t,
            ssrc: 7,
            payload_type: 0,
            sequence: seq,
            marker: false,
            rms: Some(rms),
        }
    }

    /// A prompt from 100 ms, barge-in at 3000 ms, prompt stops at 3300 ms, speech ends at
    /// 5000 ms, reply from 5500 ms to 6500 ms, one late packet at 4000 ms.
    fn barge_in_log() -> RxLog {
        let mut log = RxLog::new();
        let mut seq = 0u16;
        let mut t = 100.0;
        while t < 7000.0 {
            let voiced = t < 3300.0 || (5500.0..6500.0).contains(&t);
            if !(3960.0..4000.0).contains(&t) {
                log.push(audio(t, seq, if voiced { 4000.0 } else { 0.0 }), src());
            }
            seq = seq.wrapping_add(1);
            t += 20.0;
        }
        log
    }

    #[test]
    fn report_of_a_barge_in_call() {
        let tx = TxSummary {
            packets_tx: 350,
            tx_errors: 0,
            tx_max_late_ms: 0.3,
            speech_onset_ms: Some(3000.0),
            speech_voiced_end_ms: Some(2000.0),
        };
        let r = barge_in_log().report("127.0.0.1:1", "127.0.0.1:2", 7000.0, &tx);
        assert_eq!(r.first_rx_ms, Some(100.0));
        assert_eq!(
            r.voiced_intervals_ms,
            vec![[100.0, 3300.0], [5500.0, 6500.0]]
        );
        assert_eq!(r.speech_end_ms, Some(5000.0));
        assert!((r.stop_latency_ms.unwrap() - 280.0).abs() < 1e-6);
        assert_eq!(r.reply_interval_ms, Some([5500.0, 6500.0]));
        assert!((r.max_gap_ms - 60.0).abs() < 1e-6);
        assert_eq!(r.gaps_over_40ms, 1);
        assert_eq!(r.seq_discontinuities, 1);
        assert_eq!(r.ssrcs, vec![7]);
        assert_eq!(r.payload_types, vec![0]);
        assert_eq!(r.rx_sources, vec!["127.0.0.1:20000".to_string()]);
        assert!((r.voiced_ms_between(3000.0, 5000.0) - 300.0).abs() < 1e-6);
        // Runs: the packet lost at 3960–4000 ms is inside silence, so the runs are the
        // intervals; a voiced gap of 100 ms would split a run but not an interval.
        assert_eq!(r.voiced_runs_ms, vec![[100.0, 3300.0], [5500.0, 6500.0]]);
        assert_eq!(r.start_unix_ms, None);
    }

    #[test]
    fn report_without_speech_or_packets() {
        let r = RxLog::new().report("a", "b", 1000.0, &TxSummary::default());
        assert_eq!(r.packets_rx, 0);
        assert_eq!(r.first_rx_ms, None);
        assert_eq!(r.stop_latency_ms, None);
        assert_eq!(r.reply_interval_ms, None);
        assert_eq!(r.max_gap_ms, 0.0);
    }

    #[test]
    fn report_round_trips_through_json_and_rejects_garbage() {
        let r = barge_in_log().report("a", "b", 7000.0, &TxSummary::default());
        let dir = std::env::temp_dir().join(format!("bargein-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(PeerReport::load(&path).unwrap(), r);
        std::fs::write(&path, "{not json").unwrap();
        assert!(PeerReport::load(&path)
            .unwrap_err()
            .contains("bad peer report"));
        assert!(PeerReport::load(&dir.join("missing.json")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runs_split_at_word_pauses_intervals_do_not() {
        let mut log = RxLog::new();
        // voiced 0–200 ms, 100 ms pause, voiced 300–500 ms, one packet missing at 400 ms.
        for (i, t) in (0..25).map(|i| (i, f64::from(i) * 20.0)) {
            let voiced = !(200.0..300.0).contains(&t);
            if t != 400.0 {
                log.push(audio(t, i as u16, if voiced { 2000.0 } else { 0.0 }), src());
            }
        }
        let r = log.report("a", "b", 600.0, &TxSummary::default());
        assert_eq!(r.voiced_intervals_ms, vec![[0.0, 500.0]]);
        assert_eq!(r.voiced_runs_ms, vec![[0.0, 200.0], [300.0, 500.0]]);
    }

    #[test]
    fn reports_without_the_new_fields_still_load() {
        let r = barge_in_log().report("a", "b", 7000.0, &TxSummary::default());
        let mut v = serde_json::to_value(&r).unwrap();
        let obj = v.as_object_mut().unwrap();
        for key in ["voiced_runs_ms", "start_unix_ms", "call_id", "echo"] {
            obj.remove(key);
        }
        let old: PeerReport = serde_json::from_value(v).unwrap();
        assert!(old.voiced_runs_ms.is_empty() && old.echo.is_none() && old.call_id.is_none());
    }

    #[test]
    fn sequence_wrap_is_not_a_discontinuity() {
        let mut log = RxLog::new();
        log.push(audio(0.0, u16::MAX, 0.0), src());
        log.push(audio(20.0, 0, 0.0), src());
        log.push_invalid();
        let r = log.report("a", "b", 100.0, &TxSummary::default());
        assert_eq!(r.seq_discontinuities, 0);
        assert_eq!(r.packets_rx_invalid, 1);
    }
}
