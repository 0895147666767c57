//! Measurement tool (not a test): runs barge-in calls against the gateway and prints the stop
//! latency (speech onset → last prompt packet) and reply delay distributions.
//!
//! ```text
//! cargo build --release -p bargein-gateway
//! cargo run -p bargein-e2e --bin stop_latency -- [--calls 20] [--concurrent 2] [--send-at 3]
//! ```
//! Files stay in `target/e2e/tool-stop_latency/`.

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

fn stats_line(label: &str, values: &[f64]) -> String {
    let p = |q| percentile(values, q).map_or("-".to_string(), |v| format!("{v:.0}"));
    format!(
        "{label}: n={} p50={} p95={} max={} ms",
        values.len(),
        p(50.0),
        p(95.0),
        p(100.0)
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, "--calls", 20.0)?,
            arg(&args, "--concurrent", 2.0)?,
            arg(&args, "--send-at", 3.0)?,
        ))
    })();
    let (calls, concurrent, send_at) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("stop_latency: {e}\nusage: stop_latency [--calls N] [--concurrent N] [--send-at SECONDS]");
            return ExitCode::from(2);
        }
    };
    let (calls, concurrent) = (calls.max(1.0) as u32, concurrent.max(1.0) as u32);
    let run = TestRun::new("tool-stop_latency");
    let speech = run.caller_speech();
    let gw = Gateway::start(&run, &[("bot.demo.hangup_after_reply", "true")]);
    let rounds = u64::from(calls.div_ceil(concurrent));
    let sipp = Sipp::new(&run, "uac_wait_bye.xml", gw.sip_addr())
        .calls(&run, calls, concurrent, 1)
        .peer_args(&format!(
            "--duration 14 --send {} --send-at {send_at}",
            speech.display()
        ))
        .timeout(Duration::from_secs(rounds * 16 + 60))
        .run();
    if sipp.exit_code != Some(0) {
        eprintln!("warning: some calls failed\n{}", sipp.diagnostics());
    }
    let reports = expect_reports(&sipp, &gw);
    let mut latencies = Vec::new();
    let mut reply_delays = Vec::new();
    for r in &reports {
        println!("{}", summarize(r));
        if let Some(l) = r.stop_latency_ms {
            latencies.push(l);
        }
        if let (Some([start, _]), Some(end)) = (r.reply_interval_ms, r.speech_end_ms) {
            reply_delays.push(start - end);
        }
    }
    println!(
        "{}",
        stats_line("stop latency (onset -> last prompt packet)", &latencies)
    );
    println!(
        "{}",
        stats_line("reply delay (speech end -> reply start)", &reply_delays)
    );
    println!(
        "calls without a reply: {}",
        reports.len() - reply_delays.len()
    );
    if latencies.len() == reports.len() && sipp.exit_code == Some(0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
