//! Barge-in evaluation harness, end to end: the CI subset of the corpus (3 calls per family,
//! closed-loop echo) through the real gateway. Asserts that the harness measures — every call
//! completes, every family is reported, stop latency is measured where the caller barged in,
//! the log parsing agrees with the gateway's own counters — NOT the engine's targets (the lead
//! adds those after the engine integration). The table is printed and left in
//! target/e2e/eval_subset-runs_the_subset/report.md.

use bargein_e2e::eval::corpus::{self, CorpusConfig, Family, Manifest};
use bargein_e2e::eval::harness::{run_eval, EvalOptions};
use bargein_e2e::eval::sources::SourceBank;
use bargein_e2e::run::e2e_root;

#[test]
fn runs_the_subset() {
    let mut opts = EvalOptions::new(1, true);
    opts.run_name = "eval_subset-runs_the_subset".to_string();
    let outcome = run_eval(&opts).unwrap_or_else(|e| panic!("evaluation did not run: {e}"));
    println!("{}", outcome.markdown);
    let calls = Family::ALL.len() * corpus::SUBSET_PER_FAMILY;
    assert_eq!(outcome.results.len(), calls);
    assert!(
        outcome.failures.is_empty(),
        "harness failures:\n{}",
        outcome.failures.join("\n")
    );
    assert!(outcome
        .results
        .iter()
        .all(|r| r.completed && r.call_id.is_some()));

    let families: Vec<&str> = outcome
        .summary
        .families
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    let expected: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(families, expected);
    for row in &outcome.summary.families {
        assert_eq!(row.calls, corpus::SUBSET_PER_FAMILY, "{}", row.label);
        assert!(outcome.markdown.contains(&format!("| {} |", row.label)));
    }
    assert_eq!(outcome.summary.overall.calls, calls);

    // Interrupt calls: ground truth placed on the peer's timeline, and a stop latency wherever
    // the caller's barge-in landed; every one is either measured, missed, or had nothing left
    // to interrupt (an earlier false barge-in had already stopped the agent).
    let interrupts: Vec<_> = outcome
        .results
        .iter()
        .filter(|r| r.family.has_speech())
        .collect();
    for r in &interrupts {
        let (onset, offset) = (r.onset_ms.unwrap(), r.offset_ms.unwrap());
        assert!(onset >= 2000.0 && offset - onset >= 600.0, "{r:?}");
        assert!(r.missed.is_some() || r.nothing_to_interrupt, "{r:?}");
        if r.detect_ms.is_some() {
            assert!(
                r.stop_latency_ms.is_some(),
                "barge-in without stop latency: {r:?}"
            );
        }
    }
    assert!(
        interrupts.iter().any(|r| r.stop_latency_ms.is_some()),
        "no interrupt call had a measured stop latency"
    );
    // The echo loop ran on every call, at about the ERL the manifest asked for.
    for (r, spec) in outcome.results.iter().zip(&outcome.manifest.calls) {
        if let Some(measured) = r.echo_measured_erl_db {
            assert!(
                (measured - spec.echo.erl_db).abs() < 6.0,
                "{}: ERL {} dB applied as {measured:.1} dB",
                spec.id,
                spec.echo.erl_db
            );
        }
    }
    assert!(
        outcome
            .results
            .iter()
            .filter(|r| r.echo_measured_erl_db.is_some())
            .count()
            >= calls / 2
    );

    // Cross-check the log parsing with the gateway's own end-of-call counters, where it logs them.
    let log = std::fs::read_to_string(outcome.dir.join("gateway.stderr.log")).unwrap();
    for r in &outcome.results {
        let id = r.call_id.as_deref().unwrap();
        let Some(line) = log
            .lines()
            .find(|l| l.contains(&format!("call_id={id}}}")) && l.contains("barge-in counters"))
        else {
            continue;
        };
        let counted: usize = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix("barge_ins="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unparsable counters line: {line}"));
        assert_eq!(
            r.barge_ins_ms.len() + r.untruncated_barge_ins,
            counted,
            "{}: parsed barge-ins differ from the gateway's counter ({line})",
            r.id
        );
    }
    for file in ["report.md", "report.json", "corpus/manifest.json"] {
        assert!(outcome.dir.join(file).is_file(), "{file} missing");
    }

    // The engine targets met so far are held here (the rest are measured, see README):
    // the gateway never stops for its own echo, and a clean interruption is never missed.
    let row = |label: &str| {
        outcome
            .summary
            .families
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no {label} row"))
    };
    assert_eq!(
        row("echo_only").false_calls,
        0,
        "the gateway barged in on its own echo\n{}",
        outcome.markdown
    );
    assert_eq!(
        row("interrupt_clean").missed_calls,
        0,
        "a clean interruption was missed\n{}",
        outcome.markdown
    );
}

/// Same seed → byte-identical corpus with the real sources (Allison prompts, espeak-ng + sox
/// rendered afresh each time, not from a cache); another seed → another corpus.
#[test]
fn corpus_is_deterministic() {
    let root = e2e_root().join("eval_subset-corpus_is_deterministic");
    let _ = std::fs::remove_dir_all(&root);
    let generate = |name: &str, seed: u64| -> Manifest {
        let dir = root.join(name);
        let mut bank = SourceBank::system(&dir.join("espeak-cache")).unwrap();
        corpus::generate(&CorpusConfig::new(seed, true), &dir, &mut bank).unwrap()
    };
    let a = generate("a", 1);
    let b = generate("b", 1);
    assert_eq!(a, b);
    assert_eq!(a.calls.len(), Family::ALL.len() * corpus::SUBSET_PER_FAMILY);
    let mut espeak = 0;
    for call in &a.calls {
        let x = std::fs::read(root.join("a").join(&call.wav)).unwrap();
        let y = std::fs::read(root.join("b").join(&call.wav)).unwrap();
        assert!(x == y, "{} differs between two generations", call.id);
        espeak += call
            .speech
            .iter()
            .filter(|s| s.source.starts_with("espeak:"))
            .count();
    }
    assert!(espeak > 0, "the subset should use espeak-ng voices too");
    assert!(a
        .calls
        .iter()
        .any(|c| c.speech.iter().any(|s| s.source.starts_with("allison:"))));
    let other = generate("c", 2);
    assert_ne!(other.calls[0].speech, a.calls[0].speech);
}

/// The closed echo loop in the real `rtp_peer`, no gateway: peer A sends speech-shaped noise
/// (the ERL's reference signal), peer B (silent, with echo) sends back what it received through its echo path. What B sent is what
/// B received, delayed by the bulk delay + the one-frame capture period, at the requested ERL.
#[test]
fn peer_echo_loop_has_the_requested_delay_and_erl() {
    use bargein_e2e::audio::{read_wav, write_wav};
    use bargein_e2e::eval::echo::{speech_shaped_noise, EchoParams};
    use bargein_e2e::eval::rng::Rng;
    use bargein_e2e::{PeerOptions, RtpPeer, TestRun};
    use std::net::SocketAddr;
    use std::time::Duration;

    let run = TestRun::new("eval_subset-peer_echo_loop");
    let ports = run.ports().peer_ports(2);
    let a = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let b = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let noise = speech_shaped_noise(&mut Rng::new(11), 16_000, 3000.0);
    let wav = run.path("noise.wav");
    write_wav(&wav, &noise).unwrap();
    let mut a_opts = PeerOptions::new(a, b, 3.0);
    a_opts.send = Some((wav, 0.5));
    let mut b_opts = PeerOptions::new(b, a, 3.0);
    let echo = EchoParams {
        delay_ms: 60.0,
        erl_db: 10.0,
        dispersion_ms: 12.0,
        seed: 5,
    };
    b_opts.echo = Some(echo);
    b_opts.call_id = Some("loop-1".to_string());
    b_opts.record_tx = true;
    let peer_b = RtpPeer::spawn(run.peer_bin(), run.dir(), "b", &b_opts).unwrap();
    let peer_a = RtpPeer::spawn(run.peer_bin(), run.dir(), "a", &a_opts).unwrap();
    let rx_path = peer_b.record_path().unwrap().to_path_buf();
    let tx_path = peer_b.record_tx_path().unwrap().to_path_buf();
    peer_a.wait(Duration::from_secs(10)).unwrap();
    let report = peer_b.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(report.call_id.as_deref(), Some("loop-1"));
    let applied = report.echo.as_ref().unwrap();
    assert_eq!(
        (applied.delay_ms, applied.erl_db, applied.taps),
        (60.0, 10.0, 96)
    );

    let rx: Vec<f64> = read_wav(&rx_path)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let tx: Vec<f64> = read_wav(&tx_path)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    // Lag of the strongest correlation between received and sent audio.
    let lag_of_peak = (0..1200usize)
        .map(|lag| {
            let c: f64 = rx.iter().zip(tx.iter().skip(lag)).map(|(x, y)| x * y).sum();
            (lag, c.abs())
        })
        .fold(
            (0, 0.0),
            |best, cur| if cur.1 > best.1 { cur } else { best },
        )
        .0;
    // 60 ms bulk delay + 20 ms (a packet carries the 20 ms captured before it) + the early
    // reflection within the first taps.
    let expected = (60 + 20) * 8;
    assert!(
        (expected..=expected + 8).contains(&lag_of_peak),
        "echo peak at {lag_of_peak} samples, expected {expected}..{}",
        expected + 8
    );
    let energy = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>();
    let erl = 10.0 * (energy(&rx) / energy(&tx)).log10();
    assert!((erl - 10.0).abs() < 0.5, "ERL over the loop {erl:.2} dB");
    let measured = applied.measured_erl_db.unwrap();
    assert!(
        (measured - 10.0).abs() < 0.5,
        "peer-reported ERL {measured:.2} dB"
    );
}
