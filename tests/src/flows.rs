//! Call flows shared by the tests and the measurement tools.

use std::path::Path;
use std::time::Duration;

use crate::gateway::Gateway;
use crate::report::PeerReport;
use crate::run::TestRun;
use crate::sipp::{Sipp, SippRun};

/// How long after SIPp ends we wait for the peers' reports (they run a bit longer than the call).
pub const REPORT_WAIT: Duration = Duration::from_secs(20);

/// Panics with SIPp's and the gateway's diagnostics unless the run succeeded.
pub fn expect_success(sipp: &SippRun, gw: &Gateway) {
    sipp.assert_success(&gw.log_tail(80));
}

/// Loads the peer reports or panics with the reason and the gateway log.
pub fn expect_reports(sipp: &SippRun, gw: &Gateway) -> Vec<PeerReport> {
    sipp.peer_reports(REPORT_WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", sipp.diagnostics(), gw.log_tail(40)))
}

/// One call with the RTP peer: ACK, peer runs `peer_duration_s` (sending silence or
/// `extra_peer_args`), BYE from SIPp after `hold_ms`.
pub fn call_with_peer(
    run: &TestRun,
    gw: &Gateway,
    hold_ms: u64,
    peer_duration_s: f64,
    extra_peer_args: &str,
) -> (SippRun, PeerReport) {
    let sipp = Sipp::new(run, "uac_call_peer.xml", gw.sip_addr())
        .hold_ms(hold_ms)
        .peer_args(&format!("--duration {peer_duration_s} {extra_peer_args}"))
        .timeout(Duration::from_millis(hold_ms) + Duration::from_secs(20))
        .run();
    expect_success(&sipp, gw);
    let report = expect_reports(&sipp, gw).remove(0);
    (sipp, report)
}

/// One call that the gateway ends with BYE (max duration, or hang-up after the reply). The
/// peer runs `peer_duration_s`, optionally speaking `speech` from `send_at_s`.
pub fn call_until_gateway_bye(
    run: &TestRun,
    gw: &Gateway,
    peer_duration_s: f64,
    speech: Option<(&Path, f64)>,
) -> (SippRun, PeerReport) {
    let mut args = format!("--duration {peer_duration_s}");
    if let Some((wav, at)) = speech {
        args.push_str(&format!(" --send {} --send-at {at}", wav.display()));
    }
    let sipp = Sipp::new(run, "uac_wait_bye.xml", gw.sip_addr())
        .peer_args(&args)
        .timeout(Duration::from_secs_f64(peer_duration_s) + Duration::from_secs(30))
        .run();
    expect_success(&sipp, gw);
    let report = expect_reports(&sipp, gw).remove(0);
    (sipp, report)
}

/// `calls` concurrent calls (all started within `calls / rate` seconds), each with its own
/// peer; SIPp hangs up each after `hold_ms`.
pub fn concurrent_calls(
    run: &TestRun,
    gw: &Gateway,
    calls: u32,
    rate_per_s: u32,
    hold_ms: u64,
) -> (SippRun, Vec<PeerReport>) {
    let peer_s = hold_ms as f64 / 1000.0 + 0.5;
    let sipp = Sipp::new(run, "uac_call_peer.xml", gw.sip_addr())
        .calls(run, calls, calls, rate_per_s)
        .hold_ms(hold_ms)
        .peer_args(&format!("--duration {peer_s}"))
        .timeout(
            Duration::from_millis(hold_ms)
                + Duration::from_secs(u64::from(calls / rate_per_s.max(1)) + 30),
        )
        .run();
    expect_success(&sipp, gw);
    let reports = expect_reports(&sipp, gw);
    (sipp, reports)
}

/// One line per report, for failure messages and tool output.
pub fn summarize(report: &PeerReport) -> String {
    format!(
        "{} rx {} first {:?} last {:?} max_gap {:.1} gaps>40 {} voiced {:.0} ms onset {:?} stop_latency {:?} reply {:?}",
        report.local,
        report.packets_rx,
        report.first_rx_ms.map(|v| v.round()),
        report.last_rx_ms.map(|v| v.round()),
        report.max_gap_ms,
        report.gaps_over_40ms,
        report.voiced_total_ms,
        report.speech_onset_ms.map(|v| v.round()),
        report.stop_latency_ms.map(|v| v.round()),
        report.reply_interval_ms.map(|[a, b]| [a.round(), b.round()]),
    )
}
