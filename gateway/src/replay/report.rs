//! What the replay prints: one line per decision, then a summary; as text or JSON lines.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::engine::{Decision, DecisionKind, EngineKind, DECISION_NAMES};
use super::timeline::{Activity, ChunkRecord, Timeline};

/// Settings worth repeating next to the results.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSettings {
    /// Policy mode as the config spells it (immediate, pause, bot_decides).
    pub mode: &'static str,
    pub threshold: f32,
    pub min_speech_ms: u32,
    pub min_silence_ms: u32,
    pub pause_onset_ms: u32,
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub agent_threshold_dbfs: f32,
    pub agent_hangover_ms: u32,
}

/// Mean VAD probability over the chunks of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProbabilityStats {
    pub chunks: usize,
    pub mean: Option<f32>,
    /// Chunks at or above the speech threshold.
    pub above_threshold: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub duration_s: f64,
    pub chunks: usize,
    /// Decisions per name, in [`DECISION_NAMES`] order.
    pub counts: Vec<(&'static str, usize)>,
    pub agent_only: ProbabilityStats,
    pub caller: ProbabilityStats,
    pub quiet: ProbabilityStats,
}

impl Summary {
    pub fn of(t: &Timeline) -> Summary {
        let stats = |kind: Activity| {
            let probs: Vec<f32> = t
                .chunks
                .iter()
                .filter(|c| c.activity == kind)
                .map(|c| c.probability)
                .collect();
            ProbabilityStats {
                chunks: probs.len(),
                mean: (!probs.is_empty()).then(|| probs.iter().sum::<f32>() / probs.len() as f32),
                above_threshold: probs.iter().filter(|p| **p >= t.thresholds.speech).count(),
            }
        };
        Summary {
            duration_s: t.duration_s(),
            chunks: t.chunks.len(),
            counts: DECISION_NAMES
                .iter()
                .map(|name| {
                    (
                        *name,
                        t.decisions.iter().filter(|d| d.name() == *name).count(),
                    )
                })
                .collect(),
            agent_only: stats(Activity::AgentOnly),
            caller: stats(Activity::Caller),
            quiet: stats(Activity::Quiet),
        }
    }
}

/// What the time after the onset measures, per decision.
fn after_onset_word(kind: &DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Paused { .. } => "paused",
        DecisionKind::DecisionRequested { .. } => "asked",
        _ => "confirmed",
    }
}

fn ms_between(from_s: f64, to_s: f64) -> i64 {
    ((to_s - from_s) * 1000.0).round() as i64
}

/// `t=12.345s barge_in (onset t=12.100s, confirmed after 245 ms)`
pub fn decision_line(d: &Decision) -> String {
    let mut line = format!("t={:.3}s {}", d.at_s, d.name());
    if let Some(onset) = d.onset_s() {
        let _ = write!(
            line,
            " (onset t={onset:.3}s, {} after {} ms)",
            after_onset_word(&d.kind),
            ms_between(onset, d.at_s)
        );
    }
    match d.kind {
        DecisionKind::BargeIn { dtmf: true, .. } => line.push_str(" by DTMF"),
        DecisionKind::FalseBargeIn { truncated_s } => {
            let _ = write!(line, " (the barge-in at t={truncated_s:.3}s)");
        }
        _ => {}
    }
    line
}

/// One VAD chunk as the policy saw it: `chunk t=1.248s p=0.97 level=-28.5dBFS agent echo_likely masked`.
pub fn chunk_line(c: &ChunkRecord) -> String {
    let mut line = format!(
        "chunk t={:.3}s p={:.2} level={:.1}dBFS",
        c.end_s, c.probability, c.context.level_db
    );
    if let Some(likeness) = c.context.echo_likeness {
        let _ = write!(line, " echo_likeness={likeness:.2}");
    }
    for (flag, name) in [
        (c.agent_interruptible, "agent"),
        (c.context.echo_likely, "echo_likely"),
        (c.context.echo_masked, "masked"),
    ] {
        if flag {
            line.push(' ');
            line.push_str(name);
        }
    }
    line
}

pub fn chunk_json(c: &ChunkRecord) -> Value {
    json!({
        "event": "chunk",
        "t": round3(c.end_s),
        "p": (f64::from(c.probability) * 1000.0).round() / 1000.0,
        "level_dbfs": (f64::from(c.context.level_db) * 10.0).round() / 10.0,
        "agent": c.agent_interruptible,
        "echo_likely": c.context.echo_likely,
        "masked": c.context.echo_masked,
        "echo_likeness": c.context.echo_likeness.map(|l| (f64::from(l) * 100.0).round() / 100.0),
    })
}

pub fn decision_json(d: &Decision) -> Value {
    let mut v = json!({ "t": round3(d.at_s), "event": d.name() });
    let Some(map) = v.as_object_mut() else {
        return v;
    };
    if let Some(onset) = d.onset_s() {
        map.insert("onset".into(), json!(round3(onset)));
        map.insert(
            format!("{}_after_ms", after_onset_word(&d.kind)),
            json!(ms_between(onset, d.at_s)),
        );
    }
    match d.kind {
        DecisionKind::BargeIn { dtmf, .. } => {
            map.insert("by".into(), json!(if dtmf { "dtmf" } else { "speech" }));
        }
        DecisionKind::FalseBargeIn { truncated_s } => {
            map.insert("barge_in_at".into(), json!(round3(truncated_s)));
        }
        _ => {}
    }
    v
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// f32 settings and statistics without the binary-float tail (`0.8500000238418579`).
fn r32(x: f32) -> f64 {
    round3(f64::from(x))
}

fn mean_text(s: &ProbabilityStats) -> String {
    match s.mean {
        Some(m) => format!(
            "{m:.3} over {} chunks ({} at/above threshold)",
            s.chunks, s.above_threshold
        ),
        None => "n/a (no such chunks)".into(),
    }
}

pub fn summary_text(t: &Timeline, s: &Summary, settings: &RunSettings) -> String {
    let on_off = |b: bool| if b { "on" } else { "off" };
    let mut out = String::new();
    let counts: Vec<String> = s
        .counts
        .iter()
        .enumerate()
        // The first three always, the rest when they happened.
        .filter(|(i, (_, n))| *i < 3 || *n > 0)
        .map(|(_, (name, n))| format!("{name}={n}"))
        .collect();
    let _ = writeln!(
        out,
        "summary: {:.3} s, {} VAD chunks, engine {}; {}",
        s.duration_s,
        s.chunks,
        t.engine.name(),
        counts.join(" ")
    );
    let _ = writeln!(
        out,
        "  mean VAD probability, agent-only audio: {}",
        mean_text(&s.agent_only)
    );
    let _ = writeln!(
        out,
        "  mean VAD probability, caller speech:    {}",
        mean_text(&s.caller)
    );
    let _ = writeln!(
        out,
        "  mean VAD probability, quiet:            {}",
        mean_text(&s.quiet)
    );
    match &t.echo_stats {
        Some(e) => {
            let opt = |v: Option<f32>, unit: &str| {
                v.map(|v| format!("{v:.1} {unit}"))
                    .unwrap_or_else(|| "unknown".into())
            };
            let _ = writeln!(
                out,
                "  echo canceller: bulk delay {}, ERL {}, ERLE {:.1} dB, {}",
                opt(e.bulk_delay_ms, "ms"),
                opt(e.erl_db, "dB"),
                e.erle_db,
                if e.converged {
                    "converged"
                } else {
                    "not converged"
                }
            );
        }
        None => {
            let _ = writeln!(out, "  echo canceller: off");
        }
    }
    let gate = t
        .thresholds
        .echo_gate
        .map(|g| format!("{g:.2}"))
        .unwrap_or_else(|| "off".into());
    let _ = write!(
        out,
        "  settings: mode={} threshold={} (silence below {:.2}, echo gate {gate}) \
         min_speech_ms={} min_silence_ms={} pause_onset_ms={} echo_cancellation={} \
         noise_suppression={} agent active at >= {} dBFS with {} ms hangover",
        // The plain detector has no modes.
        if t.engine == EngineKind::Detector {
            "n/a"
        } else {
            settings.mode
        },
        settings.threshold,
        t.thresholds.silence,
        settings.min_speech_ms,
        settings.min_silence_ms,
        settings.pause_onset_ms,
        on_off(settings.echo_cancellation),
        on_off(settings.noise_suppression),
        settings.agent_threshold_dbfs,
        settings.agent_hangover_ms
    );
    out
}

pub fn summary_json(t: &Timeline, s: &Summary, settings: &RunSettings) -> Value {
    let stats = |p: &ProbabilityStats| {
        json!({
            "chunks": p.chunks,
            "mean_probability": p.mean.map(r32),
            "above_threshold": p.above_threshold,
        })
    };
    let echo = t.echo_stats.map(|e| {
        json!({
            "bulk_delay_ms": e.bulk_delay_ms.map(r32),
            "erl_db": e.erl_db.map(r32),
            "erle_db": r32(e.erle_db),
            "converged": e.converged,
        })
    });
    let counts: serde_json::Map<String, Value> = s
        .counts
        .iter()
        .map(|(name, n)| (name.to_string(), json!(n)))
        .collect();
    json!({
        "event": "summary",
        "engine": t.engine.name(),
        "duration_s": round3(s.duration_s),
        "chunks": s.chunks,
        "decisions": counts,
        "agent_only": stats(&s.agent_only),
        "caller_speech": stats(&s.caller),
        "quiet": stats(&s.quiet),
        "echo_canceller": echo,
        "settings": {
            "mode": settings.mode,
            "threshold": r32(settings.threshold),
            "negative_threshold": r32(t.thresholds.silence),
            "echo_gate_threshold": t.thresholds.echo_gate.map(r32),
            "min_speech_ms": settings.min_speech_ms,
            "min_silence_ms": settings.min_silence_ms,
            "pause_onset_ms": settings.pause_onset_ms,
            "echo_cancellation": settings.echo_cancellation,
            "noise_suppression": settings.noise_suppression,
            "agent_threshold_dbfs": r32(settings.agent_threshold_dbfs),
            "agent_hangover_ms": settings.agent_hangover_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_lines_and_json() {
        let d = Decision {
            at_s: 12.345,
            kind: DecisionKind::BargeIn {
                onset_s: 12.1,
                dtmf: false,
            },
        };
        assert_eq!(
            decision_line(&d),
            "t=12.345s barge_in (onset t=12.100s, confirmed after 245 ms)"
        );
        let j = decision_json(&d);
        assert_eq!(j["event"], "barge_in");
        assert_eq!(j["t"], 12.345);
        assert_eq!(j["onset"], 12.1);
        assert_eq!(j["confirmed_after_ms"], 245);
        assert_eq!(j["by"], "speech");
        let end = Decision {
            at_s: 3.0,
            kind: DecisionKind::TurnEnded,
        };
        assert_eq!(decision_line(&end), "t=3.000s turn_ended");
        assert!(decision_json(&end).get("onset").is_none());
        let pause = Decision {
            at_s: 1.064,
            kind: DecisionKind::Paused { onset_s: 1.0 },
        };
        assert_eq!(
            decision_line(&pause),
            "t=1.064s paused (onset t=1.000s, paused after 64 ms)"
        );
        assert_eq!(decision_json(&pause)["paused_after_ms"], 64);
        let false_one = Decision {
            at_s: 6.0,
            kind: DecisionKind::FalseBargeIn { truncated_s: 4.0 },
        };
        assert_eq!(
            decision_line(&false_one),
            "t=6.000s false_barge_in (the barge-in at t=4.000s)"
        );
        assert_eq!(decision_json(&false_one)["barge_in_at"], 4.0);
    }
}
