//! Per-call verdicts and per-family rates, from the corpus ground truth, the peer's report
//! (what the caller heard, kernel timestamps) and the gateway's logged decisions.
//!
//! All times are the peer's: ms from the peer's start (right after the ACK). Gateway log
//! times are mapped with the peer's wall-clock start (`start_unix_ms`, same machine clock);
//! ground truth with the moment the WAV's first packet went out (`speech_onset_ms`).
//!
//! Definitions (README "Barge-in evaluation"):
//! - barge-in: a logged barge-in that truncated something (`truncated=[]` does not count).
//! - false barge-in: on a call without caller speech, any barge-in; on an interrupt call, a
//!   barge-in before the speech onset or later than 1 s after its offset.
//! - missed (interrupt calls where agent audio played within ±500 ms of the onset and no
//!   earlier barge-in had stopped it): no barge-in in [onset, offset + 1 s], or agent audio
//!   continuing past onset + 1 s.
//! - stop latency: onset → arrival of the last voiced agent packet that started before the
//!   barge-in took effect (barge-in log time + 50 ms); only for calls with a barge-in.
//! - stutter: a tentative pause followed by a resume (any call).
//! - premature: after the barge-in, agent audio starts again before the caller's offset.

use serde::{Deserialize, Serialize};

use super::corpus::{CallSpec, Family};
use super::gwlog::{EventKind, GwEvent};
use crate::analysis::{percentile, FRAME_MS};
use crate::report::PeerReport;

/// A barge-in this long after the speech offset is not the caller's any more.
pub const LATE_BARGE_IN_MS: f64 = 1000.0;
/// Prompt audio past onset + this = missed.
pub const MISSED_AFTER_MS: f64 = 1000.0;
/// Agent audio within ± this of the onset means there was something to interrupt.
pub const PLAYING_WINDOW_MS: f64 = 500.0;
/// Audio that started up to this long after the logged barge-in was already on its way.
pub const IN_FLIGHT_MS: f64 = 50.0;
/// Agent audio ends this long after a barge-in at the latest (packets in flight).
pub const STOPPED_GRACE_MS: f64 = 100.0;

/// The verdict on one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResult {
    pub id: String,
    pub family: Family,
    pub call_id: Option<String>,
    /// Peer report present and the gateway's audio arrived.
    pub completed: bool,
    pub error: Option<String>,
    /// Ground truth in peer time.
    pub onset_ms: Option<f64>,
    pub offset_ms: Option<f64>,
    /// First voiced agent packet (≈ prompt start).
    pub agent_start_ms: Option<f64>,
    /// Peer times of the truncating barge-ins.
    pub barge_ins_ms: Vec<f64>,
    /// Barge-ins logged with nothing truncated (`truncated=[]`), not counted anywhere else.
    pub untruncated_barge_ins: usize,
    pub false_barge_ins: usize,
    pub false_barge_in: bool,
    /// None: not an interrupt call, or nothing played at the onset.
    pub missed: Option<bool>,
    pub nothing_to_interrupt: bool,
    /// Barge-in log time − onset.
    pub detect_ms: Option<f64>,
    pub stop_latency_ms: Option<f64>,
    pub premature: Option<bool>,
    pub tentative: usize,
    pub resumed: usize,
    pub stutters: usize,
    pub gw_false_barge_in: usize,
    pub gw_premature_cutoff: usize,
    pub speech_started: usize,
    pub other_decisions: Vec<String>,
    /// The ERL the peer actually applied to what it received (speech, not white noise).
    pub echo_measured_erl_db: Option<f64>,
}

impl CallResult {
    fn new(spec: &CallSpec) -> CallResult {
        CallResult {
            id: spec.id.clone(),
            family: spec.family,
            call_id: None,
            completed: false,
            error: None,
            onset_ms: None,
            offset_ms: None,
            agent_start_ms: None,
            barge_ins_ms: Vec::new(),
            untruncated_barge_ins: 0,
            false_barge_ins: 0,
            false_barge_in: false,
            missed: None,
            nothing_to_interrupt: false,
            detect_ms: None,
            stop_latency_ms: None,
            premature: None,
            tentative: 0,
            resumed: 0,
            stutters: 0,
            gw_false_barge_in: 0,
            gw_premature_cutoff: 0,
            speech_started: 0,
            other_decisions: Vec::new(),
            echo_measured_erl_db: None,
        }
    }

    /// A call that could not be evaluated (no report, no audio…).
    pub fn failed(spec: &CallSpec, error: String) -> CallResult {
        CallResult {
            error: Some(error),
            ..CallResult::new(spec)
        }
    }
}

/// Scores one call. `events` are the gateway's events for this call's Call-ID, in log order.
pub fn score_call(spec: &CallSpec, report: &PeerReport, events: &[GwEvent]) -> CallResult {
    let mut r = CallResult::new(spec);
    r.call_id = report.call_id.clone();
    r.echo_measured_erl_db = report.echo.as_ref().and_then(|e| e.measured_erl_db);
    let Some(start_unix) = report.start_unix_ms else {
        r.error = Some("peer report has no start_unix_ms (old rtp_peer?)".to_string());
        return r;
    };
    let Some(wav0) = report.speech_onset_ms else {
        r.error = Some("peer never sent the caller WAV".to_string());
        return r;
    };
    if report.packets_rx == 0 {
        r.error = Some("no RTP from the gateway".to_string());
        return r;
    }
    r.completed = true;
    // Voiced runs at packet resolution; older reports only have the 200 ms-hangover intervals.
    let runs = if report.voiced_runs_ms.is_empty() {
        &report.voiced_intervals_ms
    } else {
        &report.voiced_runs_ms
    };
    r.agent_start_ms = runs.first().map(|iv| iv[0]);

    let at = |e: &GwEvent| e.unix_ms - start_unix;
    let mut pending_tentative = false;
    for e in events {
        match &e.kind {
            EventKind::BargeIn if e.truncated != Some(false) => r.barge_ins_ms.push(at(e)),
            EventKind::BargeIn => r.untruncated_barge_ins += 1,
            EventKind::Tentative => {
                r.tentative += 1;
                pending_tentative = true;
            }
            EventKind::Resumed => {
                r.resumed += 1;
                if pending_tentative {
                    r.stutters += 1;
                }
                pending_tentative = false;
            }
            EventKind::FalseBargeIn => r.gw_false_barge_in += 1,
            EventKind::PrematureCutoff => r.gw_premature_cutoff += 1,
            EventKind::SpeechStarted => r.speech_started += 1,
            EventKind::TurnEnded => {}
            EventKind::Other(d) => r.other_decisions.push(d.clone()),
        }
    }

    let Some(span) = spec.speech.first() else {
        r.false_barge_ins = r.barge_ins_ms.len();
        r.false_barge_in = r.false_barge_ins > 0;
        return r;
    };
    let onset = wav0 + span.onset_ms;
    let offset = wav0 + span.offset_ms;
    r.onset_ms = Some(onset);
    r.offset_ms = Some(offset);
    let in_window = |t: f64| t >= onset && t <= offset + LATE_BARGE_IN_MS;
    r.false_barge_ins = r.barge_ins_ms.iter().filter(|&&t| !in_window(t)).count();
    r.false_barge_in = r.false_barge_ins > 0;
    let hit = r.barge_ins_ms.iter().copied().find(|&t| in_window(t));

    // Something to interrupt: agent audio near the onset that an earlier (false) barge-in had
    // not already stopped.
    let stopped_at = r
        .barge_ins_ms
        .iter()
        .copied()
        .filter(|&t| t < onset)
        .fold(f64::NEG_INFINITY, f64::max);
    let not_before = (onset - PLAYING_WINDOW_MS).max(stopped_at + STOPPED_GRACE_MS);
    let playing = runs
        .iter()
        .any(|iv| iv[1] > not_before && iv[0] < onset + PLAYING_WINDOW_MS);
    let Some(barge_in) = hit else {
        r.nothing_to_interrupt = !playing;
        r.missed = playing.then_some(true);
        return r;
    };
    r.detect_ms = Some(barge_in - onset);
    // The last voiced packet of audio that was already playing (or on its way) when the
    // barge-in took effect; a run's end is its last packet's arrival + one frame.
    let last_voiced = runs
        .iter()
        .filter(|iv| iv[1] > onset && iv[0] <= barge_in + IN_FLIGHT_MS)
        .map(|iv| iv[1] - FRAME_MS)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    let stop = last_voiced.map_or(0.0, |t| (t - onset).max(0.0));
    r.stop_latency_ms = Some(stop);
    r.missed = Some(stop > MISSED_AFTER_MS);
    r.premature = Some(
        runs.iter()
            .any(|iv| iv[0] > barge_in + IN_FLIGHT_MS && iv[0] < offset),
    );
    r
}

/// Rates over a group of calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub calls: usize,
    pub completed: usize,
    pub false_calls: usize,
    pub missed_calls: usize,
    /// Interrupt calls with something to interrupt (missed's denominator).
    pub missed_eligible: usize,
    pub stutter_calls: usize,
    pub premature_calls: usize,
    pub premature_eligible: usize,
    pub stop_latencies_ms: Vec<f64>,
    pub stop_p50_ms: Option<f64>,
    pub stop_p95_ms: Option<f64>,
}

fn pct(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| 100.0 * n as f64 / d as f64)
}

impl Row {
    pub fn of<'a>(label: &str, results: impl IntoIterator<Item = &'a CallResult>) -> Row {
        let mut row = Row {
            label: label.to_string(),
            ..Row::default()
        };
        for r in results {
            row.calls += 1;
            if !r.completed {
                continue;
            }
            row.completed += 1;
            row.false_calls += usize::from(r.false_barge_in);
            row.stutter_calls += usize::from(r.stutters > 0);
            if let Some(m) = r.missed {
                row.missed_eligible += 1;
                row.missed_calls += usize::from(m);
            }
            if let Some(p) = r.premature {
                row.premature_eligible += 1;
                row.premature_calls += usize::from(p);
            }
            row.stop_latencies_ms.extend(r.stop_latency_ms);
        }
        row.stop_p50_ms = percentile(&row.stop_latencies_ms, 50.0);
        row.stop_p95_ms = percentile(&row.stop_latencies_ms, 95.0);
        row
    }

    pub fn false_pct(&self) -> Option<f64> {
        pct(self.false_calls, self.completed)
    }

    pub fn missed_pct(&self) -> Option<f64> {
        pct(self.missed_calls, self.missed_eligible)
    }

    pub fn stutter_pct(&self) -> Option<f64> {
        pct(self.stutter_calls, self.completed)
    }

    pub fn premature_pct(&self) -> Option<f64> {
        pct(self.premature_calls, self.premature_eligible)
    }
}

/// One row per family (in `Family::ALL` order, families present only) and three totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub families: Vec<Row>,
    pub no_speech: Row,
    pub interrupt: Row,
    pub overall: Row,
}

pub fn summarize(results: &[CallResult]) -> Summary {
    let families = Family::ALL
        .into_iter()
        .filter(|f| results.iter().any(|r| r.family == *f))
        .map(|f| Row::of(f.name(), results.iter().filter(|r| r.family == f)))
        .collect();
    Summary {
        families,
        no_speech: Row::of(
            "no caller speech (noise_*, echo_only)",
            results.iter().filter(|r| !r.family.has_speech()),
        ),
        interrupt: Row::of(
            "interrupt_*",
            results.iter().filter(|r| r.family.has_speech()),
        ),
        overall: Row::of("overall", results),
    }
}

fn cell(p: Option<f64>, n: usize, d: usize) -> String {
    p.map_or("–".to_string(), |p| format!("{p:.1} ({n}/{d})"))
}

fn ms_cell(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.0}"))
}

/// The markdown table: one row per family, then the totals in bold.
pub fn markdown_table(summary: &Summary) -> String {
    let mut out = String::from(
        "| family | calls | false % | missed % | stutter % | premature % | stop p50 ms | stop p95 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let totals = [&summary.no_speech, &summary.interrupt, &summary.overall];
    for (row, bold) in summary
        .families
        .iter()
        .map(|r| (r, false))
        .chain(totals.into_iter().map(|r| (r, true)))
    {
        let label = if bold {
            format!("**{}**", row.label)
        } else {
            row.label.clone()
        };
        let calls = if row.completed == row.calls {
            row.calls.to_string()
        } else {
            format!("{} ({} failed)", row.calls, row.calls - row.completed)
        };
        out.push_str(&format!(
            "| {label} | {calls} | {} | {} | {} | {} | {} | {} |\n",
            cell(row.false_pct(), row.false_calls, row.completed),
            cell(row.missed_pct(), row.missed_calls, row.missed_eligible),
            cell(row.stutter_pct(), row.stutter_calls, row.completed),
            cell(
                row.premature_pct(),
                row.premature_calls,
                row.premature_eligible
            ),
            ms_cell(row.stop_p50_ms),
            ms_cell(row.stop_p95_ms),
        ));
    }
    out
}

/// The engine's targets (issue "Barge-in engine", item 5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub max_false_pct: f64,
    pub max_missed_pct: f64,
    pub max_echo_only_false_calls: usize,
    pub max_stop_p95_ms: f64,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            max_false_pct: 1.0,
            max_missed_pct: 2.0,
            max_echo_only_false_calls: 0,
            max_stop_p95_ms: 200.0,
        }
    }
}

/// Every target the summary misses, as a sentence (empty: all met).
pub fn check_targets(summary: &Summary, targets: &Targets) -> Vec<String> {
    let mut out = Vec::new();
    let overall = &summary.overall;
    if let Some(p) = overall.false_pct().filter(|&p| p > targets.max_false_pct) {
        out.push(format!(
            "false barge-in {p:.1} % > {:.1} %",
            targets.max_false_pct
        ));
    }
    if let Some(p) = overall.missed_pct().filter(|&p| p > targets.max_missed_pct) {
        out.push(format!("missed {p:.1} % > {:.1} %", targets.max_missed_pct));
    }
    if let Some(echo) = summary
        .families
        .iter()
        .find(|r| r.label == Family::EchoOnly.name())
    {
        if echo.false_calls > targets.max_echo_only_false_calls {
            out.push(format!(
                "echo_only false barge-ins on {} call(s) > {}",
                echo.false_calls, targets.max_echo_only_false_calls
            ));
        }
    }
    match overall.stop_p95_ms {
        Some(p95) if p95 > targets.max_stop_p95_ms => out.push(format!(
            "stop latency p95 {p95:.0} ms > {:.0} ms",
            targets.max_stop_p95_ms
        )),
        Some(_) => {}
        None if summary.interrupt.calls > 0 => {
            out.push("no stop latency measured on any interrupt call".to_string())
        }
        None => {}
    }
    out
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod tests;
