//! Checks of the harness itself that need no gateway: the RTP peer against itself, every SIPp
//! scenario against a SIPp UAS stand-in (`tests/selfcheck/`), baresip against a SIPp UAS, and
//! `Gateway` start/readiness/stop with a SIPp-based stand-in binary. If these fail, fix the
//! harness before blaming the gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bargein_e2e::flows::summarize;
use bargein_e2e::{baresip, Gateway, PeerOptions, RtpPeer, Sipp, TestRun};

fn selfcheck_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("selfcheck")
}

/// A SIPp UAS from `tests/selfcheck/`, killed on drop.
struct Uas {
    child: Child,
    addr: SocketAddr,
}

impl Uas {
    fn start(run: &TestRun, scenario: &str, tcp: bool) -> Uas {
        let dir = run.subdir(&format!("uas-{}", scenario.trim_end_matches(".xml")));
        std::fs::copy(selfcheck_dir().join(scenario), dir.join(scenario)).unwrap();
        let ulaw = dir.join("prompt.ulaw");
        let prompt = bargein_e2e::run::repo_root().join("deploy/prompts/prompt.wav");
        let sox = Command::new("sox")
            .arg(&prompt)
            .args(["-t", "ul"])
            .arg(&ulaw)
            .status()
            .unwrap();
        assert!(sox.success(), "sox failed");
        let port = run.ports().client_sip();
        let mut cmd = Command::new("sipp");
        cmd.current_dir(&dir)
            .args([
                "-sf",
                scenario,
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-nostdin",
            ])
            .args([
                "-p",
                &port.to_string(),
                "-mp",
                &run.ports().client_media().to_string(),
            ])
            .args([
                "-trace_err",
                "-error_file",
                "errors.log",
                "-trace_msg",
                "-message_file",
                "messages.log",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
        if tcp {
            cmd.args(["-t", "t1"]);
        }
        let child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300)); // let it bind
        Uas {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rtp_peer_against_itself() {
    let run = TestRun::new("selfcheck-peer_vs_peer");
    let speech = run.caller_speech();
    let ports = run.ports().peer_ports(2);
    let a_addr = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let b_addr = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let mut a_opts = PeerOptions::new(a_addr, b_addr, 4.0);
    a_opts.send = Some((speech, 1.0));
    let mut b_opts = PeerOptions::new(b_addr, a_addr, 4.0);
    b_opts.payload_type = 8;
    let a = RtpPeer::spawn(run.peer_bin(), run.dir(), "a", &a_opts).unwrap();
    let b = RtpPeer::spawn(run.peer_bin(), run.dir(), "b", &b_opts).unwrap();
    let ra = a.wait(Duration::from_secs(10)).unwrap();
    let rb = b.wait(Duration::from_secs(10)).unwrap();

    // Each got the other's stream: ~200 packets at 20 ms, no gaps, one SSRC, the right codec.
    for (r, pt) in [(&ra, 8u8), (&rb, 0u8)] {
        assert!(
            r.packets_rx >= 190 && r.packets_tx == 200,
            "{}",
            summarize(r)
        );
        assert_eq!(r.gaps_over_40ms, 0, "{}", summarize(r));
        assert_eq!(r.payload_types, vec![pt]);
        assert_eq!(r.ssrcs.len(), 1);
    }
    assert_eq!(rb.rx_sources, vec![a_addr.to_string()]);
    // b heard a's speech from ~1 s, for about its length, with the talkspurt marker.
    let onset = ra.speech_onset_ms.unwrap();
    assert!((1000.0..1050.0).contains(&onset), "{onset}");
    assert_eq!(rb.marker_packets_rx, 1);
    assert_eq!(
        rb.voiced_intervals_ms.len(),
        1,
        "{:?}",
        rb.voiced_intervals_ms
    );
    let [start, end] = rb.voiced_intervals_ms[0];
    let skew = 100.0; // the two peers start a few ms apart
    assert!(
        (start - onset).abs() < skew,
        "speech heard at {start}, sent at {onset}"
    );
    let speech_len = ra.speech_end_ms.unwrap() - onset;
    assert!(
        (end - start - speech_len).abs() < 100.0,
        "heard {} ms of {speech_len} ms",
        end - start
    );
    // a heard only silence, and the silence did not count as voice.
    assert_eq!(ra.voiced_total_ms, 0.0);
    assert!(ra.reply_interval_ms.is_none());
}

fn uac(run: &TestRun, scenario: &str, target: SocketAddr) -> Sipp {
    Sipp::new(run, scenario, target)
        .hold_ms(1500)
        .peer_args("--duration 2")
        .timeout(Duration::from_secs(15))
}

#[test]
fn scenarios_run_against_a_sipp_uas() {
    let run = TestRun::new("selfcheck-scenarios");
    let cases = [
        ("uac_call_peer.xml", "uas_answer_stream.xml"),
        ("uac_call_plain.xml", "uas_answer_stream.xml"),
        ("uac_wait_bye.xml", "uas_hangup.xml"),
        ("uac_hold.xml", "uas_hold.xml"),
        ("uac_late_offer.xml", "uas_late_offer.xml"),
        ("uac_cancel.xml", "uas_cancel_honoured.xml"),
        ("uac_cancel.xml", "uas_cancel_487_first.xml"),
        ("uac_cancel.xml", "uas_cancel_crossed.xml"),
        ("uac_cancel.xml", "uas_cancel_no_1xx.xml"),
    ];
    for (client, server) in cases {
        let uas = Uas::start(&run, server, false);
        let result = uac(&run, client, uas.addr).run();
        assert!(
            result.exit_code == Some(0),
            "{client} vs {server}:\n{}",
            result.diagnostics()
        );
    }
    // With media: the peer of uac_call_peer heard the UAS's prompt.
    let uas = Uas::start(&run, "uas_answer_stream.xml", false);
    let result = uac(&run, "uac_call_peer.xml", uas.addr).run();
    let report = result.peer_report(Duration::from_secs(10)).unwrap();
    assert!(report.voiced_total_ms > 800.0, "{}", summarize(&report));
    // Over TCP.
    let uas = Uas::start(&run, "uas_answer_stream.xml", true);
    let result = uac(&run, "uac_call_plain.xml", uas.addr).tcp().run();
    assert_eq!(result.exit_code, Some(0), "{}", result.diagnostics());
}

/// The hold scenario must fail when the answer to a=sendonly is not a=recvonly.
#[test]
fn hold_scenario_rejects_a_wrong_answer() {
    let run = TestRun::new("selfcheck-hold_negative");
    let uas = Uas::start(&run, "uas_hold_wrong.xml", false);
    let result = uac(&run, "uac_hold.xml", uas.addr).run();
    assert_eq!(result.exit_code, Some(1), "{}", result.diagnostics());
}

#[test]
fn fifty_calls_against_a_sipp_uas() {
    let run = TestRun::new("selfcheck-fifty_calls");
    let uas = Uas::start(&run, "uas_answer_stream.xml", false);
    let result = Sipp::new(&run, "uac_call_peer.xml", uas.addr)
        .calls(&run, 50, 50, 25)
        .hold_ms(3000)
        .peer_args("--duration 3.5")
        .timeout(Duration::from_secs(30))
        .run();
    assert_eq!(result.exit_code, Some(0), "{}", result.diagnostics());
    assert_eq!(result.stats().unwrap()["SuccessfulCall(C)"], "50");
    let reports = result.peer_reports(Duration::from_secs(15)).unwrap();
    assert_eq!(reports.len(), 50);
    // SIPp streams every call from its one -mp socket; each peer must still get its own stream.
    assert!(
        reports.iter().all(|r| r.packets_rx > 100),
        "{}",
        reports.iter().map(summarize).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn baresip_against_a_sipp_uas() {
    let run = TestRun::new("selfcheck-baresip");
    let uas = Uas::start(&run, "uas_answer_stream.xml", false);
    let mic = run.path("silence.wav");
    bargein_e2e::audio::make_silence_wav(&mic, 4.0).unwrap();
    let call = baresip::call(&run, uas.addr, &mic, Duration::from_secs(15)).unwrap();
    assert!(
        call.events.iter().any(|e| e == "CALL_CLOSED"),
        "{:?}",
        call.events
    );
    let rx = bargein_e2e::audio::read_wav(&call.received_wav.unwrap()).unwrap();
    let voiced = bargein_e2e::analysis::total_ms(&bargein_e2e::analysis::wav_voiced_intervals(&rx));
    assert!(voiced > 1500.0, "baresip heard {voiced} ms of the prompt");
}

#[test]
fn gateway_harness_with_a_stand_in_binary() {
    let run = TestRun::new("selfcheck-gateway_stand_in");
    let bin = selfcheck_dir().join("fake-gateway.sh");
    let mut gw = Gateway::try_start_bin(&run, &bin, &[("log.level", "debug")]).unwrap();
    gw.assert_healthy();
    let sipp = uac(&run, "uac_call_peer.xml", gw.sip_addr())
        .hold_ms(2000)
        .peer_args("--duration 2.5")
        .run();
    assert_eq!(sipp.exit_code, Some(0), "{}", sipp.diagnostics());
    let report = sipp.peer_report(Duration::from_secs(10)).unwrap();
    assert!(report.voiced_total_ms > 1000.0, "{}", summarize(&report));
    assert!(gw.log_tail(5).contains("fake-gateway: sipp UAS on"));
    gw.stop(Duration::from_secs(2));
    // A missing binary is a clear error, not a hang.
    let err = Gateway::try_start_bin(&run, Path::new("/nonexistent/gw"), &[]).unwrap_err();
    assert!(err.contains("not found"), "{err}");
}
