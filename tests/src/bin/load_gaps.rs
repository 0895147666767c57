//! Measurement tool (not a test): N concurrent calls against the gateway; prints every call's
//! outbound inter-arrival gaps (kernel receive timestamps at the peers) and a summary.
//!
//! ```text
//! cargo build --release -p bargein-gateway
//! cargo run -p bargein-e2e --bin load_gaps -- [--calls 50] [--hold-s 10] [--rate 25]
//! ```
//! Files stay in `target/e2e/tool-load_gaps/`.

use std::process::ExitCode;
use std::time::Duration;

use bargein_e2e::analysis::percentile;
use bargein_e2e::flows::{expect_reports, summarize};
use bargein_e2e::{Gateway, Sipp, TestRun};

fn arg(args: &[String], name: &str, default: f64) -> Result<f64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, "--calls", 50.0)?,
            arg(&args, "--hold-s", 10.0)?,
            arg(&args, "--rate", 25.0)?,
        ))
    })();
    let (calls, hold_s, rate) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("load_gaps: {e}\nusage: load_gaps [--calls N] [--hold-s SECONDS] [--rate CALLS_PER_S]");
            return ExitCode::from(2);
        }
    };
    let (calls, rate) = (calls.max(1.0) as u32, rate.max(1.0) as u32);
    let run = TestRun::new("tool-load_gaps");
    let gw = Gateway::start(&run, &[]);
    let cpu_before = gw.cpu_time();
    let wall = std::time::Instant::now();
    let sipp = Sipp::new(&run, "uac_call_peer.xml", gw.sip_addr())
        .calls(&run, calls, calls, rate)
        .hold_ms((hold_s * 1000.0) as u64)
        .peer_args(&format!("--duration {}", hold_s + 0.5))
        .timeout(
            Duration::from_secs_f64(hold_s) + Duration::from_secs(u64::from(calls / rate) + 60),
        )
        .run();
    if sipp.exit_code != Some(0) {
        eprintln!("warning: some calls failed\n{}", sipp.diagnostics());
    }
    let cpu = gw
        .cpu_time()
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    let wall = wall.elapsed();
    let reports = expect_reports(&sipp, &gw);
    for r in &reports {
        println!("{}", summarize(r));
    }
    let max_gaps: Vec<f64> = reports.iter().map(|r| r.max_gap_ms).collect();
    let over: u64 = reports.iter().map(|r| r.gaps_over_40ms).sum();
    let calls_with_gaps = reports.iter().filter(|r| r.gaps_over_40ms > 0).count();
    let p = |q| percentile(&max_gaps, q).map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "{} calls: per-call max gap p50={} p95={} max={} ms; gaps > 40 ms: {over} in {calls_with_gaps} calls; SIPp stats: {:?}",
        reports.len(),
        p(50.0),
        p(95.0),
        p(100.0),
        sipp.stats().ok().and_then(|s| s.get("SuccessfulCall(C)").cloned()),
    );
    // CPU: the gateway's CPU seconds over the run divided by the call-seconds it carried
    // (calls × hold), i.e. the share of one core one call costs, setup included.
    if let Some(cpu) = cpu {
        let call_seconds = f64::from(calls) * hold_s;
        println!(
            "gateway CPU: {:.2} s over {:.1} s wall ({:.1} % of one core on average); per call: {:.3} % of one core",
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / call_seconds,
        );
    }
    // The gateway logs its process-wide pacing histogram at every call end: take the last.
    let log = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    if let Some(line) = log
        .lines()
        .rev()
        .find(|l| l.contains("outbound pacing lateness"))
    {
        println!("gateway {}", line.trim());
    }
    if over == 0 && sipp.exit_code == Some(0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
