use super::*;
use crate::eval::corpus::SpeechSpan;
use crate::eval::echo::EchoParams;
use crate::report::{RxLog, RxPacket, TxSummary};

const T0_UNIX: f64 = 1_700_000_000_000.0;
/// When the peer sent the WAV's first packet.
const WAV0: f64 = 10.0;

fn spec(family: Family, speech: Option<(f64, f64)>) -> CallSpec {
    CallSpec {
        id: format!("{}-00", family.name()),
        family,
        seed: 1,
        wav: "x.wav".to_string(),
        duration_ms: 18_000.0,
        speech: speech
            .map(|(on, off)| SpeechSpan {
                onset_ms: on,
                offset_ms: off,
                source: "test".to_string(),
                active_level_dbfs: -25.0,
            })
            .into_iter()
            .collect(),
        snr_db: None,
        noise: None,
        echo: EchoParams {
            delay_ms: 0.0,
            erl_db: 10.0,
            dispersion_ms: 8.0,
            seed: 0,
        },
        clipped_samples: 0,
    }
}

/// A peer report whose received audio is voiced exactly inside `runs` (ms, peer time).
fn report(runs: &[(f64, f64)]) -> PeerReport {
    let mut log = RxLog::new();
    let mut t = 40.0;
    let mut seq = 0u16;
    while t < 18_000.0 {
        let voiced = runs.iter().any(|&(a, b)| t >= a && t < b);
        log.push(
            RxPacket {
                arrival_ms: t,
                ssrc: 1,
                payload_type: 0,
                sequence: seq,
                marker: false,
                rms: Some(if voiced { 3000.0 } else { 0.0 }),
            },
            "127.0.0.1:1".parse().unwrap(),
        );
        seq = seq.wrapping_add(1);
        t += 20.0;
    }
    let tx = TxSummary {
        speech_onset_ms: Some(WAV0),
        ..TxSummary::default()
    };
    let mut r = log.report("a", "b", 18_000.0, &tx);
    r.start_unix_ms = Some(T0_UNIX);
    r.call_id = Some("1-2@127.0.0.1".to_string());
    r
}

fn ev(kind: EventKind, peer_ms: f64) -> GwEvent {
    GwEvent {
        call_id: "1-2@127.0.0.1".to_string(),
        unix_ms: T0_UNIX + peer_ms,
        kind,
        from_decision: true,
        truncated: None,
    }
}

/// Caller speaks 5000–6500 ms into the WAV = 5010–6510 ms peer time.
fn interrupt() -> CallSpec {
    spec(Family::InterruptClean, Some((5000.0, 6500.0)))
}

#[test]
fn noise_call_without_and_with_barge_ins() {
    let s = spec(Family::NoiseCar, None);
    let quiet = score_call(&s, &report(&[(40.0, 16_000.0)]), &[]);
    assert!(quiet.completed && !quiet.false_barge_in);
    assert_eq!((quiet.missed, quiet.stop_latency_ms), (None, None));
    assert_eq!(quiet.agent_start_ms, Some(40.0));
    let events = [
        ev(EventKind::BargeIn, 3000.0),
        ev(EventKind::BargeIn, 9000.0),
    ];
    let noisy = score_call(&s, &report(&[(40.0, 3020.0), (9000.0, 9100.0)]), &events);
    assert!(noisy.false_barge_in);
    assert_eq!(noisy.false_barge_ins, 2);
    assert_eq!(noisy.barge_ins_ms, vec![3000.0, 9000.0]);
}

#[test]
fn a_good_barge_in() {
    let r = report(&[(40.0, 5300.0), (7100.0, 10_400.0)]);
    let c = score_call(&interrupt(), &r, &[ev(EventKind::BargeIn, 5250.0)]);
    assert_eq!((c.onset_ms, c.offset_ms), (Some(5010.0), Some(6510.0)));
    assert!(!c.false_barge_in);
    assert_eq!(c.missed, Some(false));
    assert_eq!(c.detect_ms, Some(240.0));
    // Last voiced packet arrived at 5280 ms (the run ends one frame later).
    assert_eq!(c.stop_latency_ms, Some(270.0));
    assert_eq!(
        c.premature,
        Some(false),
        "the reply starts after the caller stopped"
    );
}

#[test]
fn slow_stop_and_no_barge_in_are_missed() {
    let slow = score_call(
        &interrupt(),
        &report(&[(40.0, 6500.0)]),
        &[ev(EventKind::BargeIn, 5300.0)],
    );
    assert_eq!(slow.stop_latency_ms, Some(6480.0 - 5010.0));
    assert_eq!(slow.missed, Some(true));
    let none = score_call(&interrupt(), &report(&[(40.0, 16_000.0)]), &[]);
    assert_eq!(none.missed, Some(true));
    assert_eq!(none.stop_latency_ms, None);
    assert!(!none.nothing_to_interrupt);
    // A barge-in more than 1 s after the offset is not the caller's: false, and missed.
    let late = score_call(
        &interrupt(),
        &report(&[(40.0, 7600.0)]),
        &[ev(EventKind::BargeIn, 7560.0)],
    );
    assert!(late.false_barge_in);
    assert_eq!(late.missed, Some(true));
}

#[test]
fn false_barge_in_before_onset_leaves_nothing_to_interrupt() {
    let r = report(&[(40.0, 3050.0), (3600.0, 4000.0)]);
    let c = score_call(&interrupt(), &r, &[ev(EventKind::BargeIn, 3000.0)]);
    assert!(c.false_barge_in);
    assert!(c.nothing_to_interrupt);
    assert_eq!(c.missed, None);
    // …but the same early barge-in with the reply playing at the onset and stopped by the
    // caller: false AND a hit.
    let r = report(&[(40.0, 3050.0), (3600.0, 5200.0)]);
    let events = [
        ev(EventKind::BargeIn, 3000.0),
        ev(EventKind::BargeIn, 5150.0),
    ];
    let c = score_call(&interrupt(), &r, &events);
    assert_eq!((c.false_barge_ins, c.missed), (1, Some(false)));
    assert_eq!(c.stop_latency_ms, Some(5180.0 - 5010.0));
    // A false barge-in 50 ms before the onset stopped the agent: nothing left to interrupt,
    // even though agent audio was playing half a second before the onset.
    let r = report(&[(40.0, 4980.0)]);
    let c = score_call(&interrupt(), &r, &[ev(EventKind::BargeIn, 4960.0)]);
    assert!(c.false_barge_in && c.nothing_to_interrupt);
    assert_eq!(c.missed, None);
}

#[test]
fn stutter_premature_and_untruncated_barge_ins() {
    let events = [
        ev(EventKind::Tentative, 2000.0),
        ev(EventKind::Resumed, 2400.0),
        ev(EventKind::Tentative, 5100.0),
        ev(EventKind::BargeIn, 5300.0),
        ev(EventKind::FalseBargeIn, 5400.0),
        ev(EventKind::PrematureCutoff, 5500.0),
        ev(EventKind::Other("mystery".into()), 5600.0),
        ev(EventKind::SpeechStarted, 5700.0),
    ];
    // Paused at 2000–2400, stopped at 5120, agent audio again at 5900 while the caller talks.
    let r = report(&[(40.0, 2000.0), (2400.0, 5120.0), (5900.0, 6200.0)]);
    let c = score_call(&interrupt(), &r, &events);
    assert_eq!((c.tentative, c.resumed, c.stutters), (2, 1, 1));
    assert_eq!(c.stop_latency_ms, Some(5100.0 - 5010.0));
    assert_eq!(c.premature, Some(true));
    assert_eq!((c.gw_false_barge_in, c.gw_premature_cutoff), (1, 1));
    assert_eq!(c.other_decisions, vec!["mystery".to_string()]);
    assert_eq!(c.speech_started, 1);
    let mut nothing_cut = ev(EventKind::BargeIn, 3000.0);
    nothing_cut.truncated = Some(false);
    let c = score_call(&spec(Family::EchoOnly, None), &r, &[nothing_cut]);
    assert!(!c.false_barge_in);
    assert_eq!(c.untruncated_barge_ins, 1);
}

#[test]
fn unusable_reports_are_errors() {
    let mut r = report(&[]);
    r.start_unix_ms = None;
    let c = score_call(&interrupt(), &r, &[]);
    assert!(!c.completed && c.error.unwrap().contains("start_unix_ms"));
    let mut r = report(&[]);
    r.speech_onset_ms = None;
    assert!(score_call(&interrupt(), &r, &[]).error.is_some());
    let mut r = report(&[]);
    r.packets_rx = 0;
    assert!(score_call(&interrupt(), &r, &[])
        .error
        .unwrap()
        .contains("no RTP"));
    let f = CallResult::failed(&interrupt(), "sipp".into());
    assert!(!f.completed);
}

#[test]
fn summary_table_and_targets() {
    let good = report(&[(40.0, 5300.0), (7100.0, 10_400.0)]);
    let mut results = vec![
        score_call(&interrupt(), &good, &[ev(EventKind::BargeIn, 5250.0)]),
        score_call(&interrupt(), &report(&[(40.0, 16_000.0)]), &[]),
        score_call(
            &spec(Family::EchoOnly, None),
            &good,
            &[ev(EventKind::BargeIn, 800.0)],
        ),
        score_call(&spec(Family::NoiseMusic, None), &good, &[]),
    ];
    results.push(CallResult::failed(
        &spec(Family::NoiseMusic, None),
        "x".into(),
    ));
    let s = summarize(&results);
    let names: Vec<&str> = s.families.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(names, vec!["interrupt_clean", "noise_music", "echo_only"]);
    let clean = &s.families[0];
    assert_eq!(
        (clean.calls, clean.missed_calls, clean.missed_eligible),
        (2, 1, 2)
    );
    assert_eq!(clean.missed_pct(), Some(50.0));
    assert_eq!(clean.stop_p50_ms, Some(270.0));
    assert_eq!(s.families[1].completed, 1);
    assert_eq!(s.no_speech.false_calls, 1);
    assert_eq!(s.overall.calls, 5);
    assert_eq!(s.overall.false_pct(), Some(25.0));
    let md = markdown_table(&s);
    assert!(
        md.contains("| interrupt_clean | 2 | 0.0 (0/2) | 50.0 (1/2) |"),
        "{md}"
    );
    assert!(md.contains("| noise_music | 2 (1 failed) |"), "{md}");
    assert!(md.contains("| **overall** |"), "{md}");
    assert!(md.contains("| 270 | 270 |"), "{md}");
    let misses = check_targets(&s, &Targets::default());
    assert_eq!(misses.len(), 4, "{misses:?}");
    assert!(misses.iter().any(|m| m.contains("echo_only")));
    assert!(misses.iter().any(|m| m.contains("p95 270")));
    let lenient = Targets {
        max_false_pct: 30.0,
        max_missed_pct: 60.0,
        max_echo_only_false_calls: 1,
        max_stop_p95_ms: 300.0,
    };
    assert!(check_targets(&s, &lenient).is_empty());
    let no_stop = summarize(&results[1..2]);
    assert!(check_targets(&no_stop, &lenient)
        .iter()
        .any(|m| m.contains("no stop latency")));
}
