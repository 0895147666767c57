//! Runs the corpus through the real gateway: one SIPp (`uac_eval_call.xml`) places every call,
//! a few at a time; each call's `rtp_peer` sends that call's WAV from the ACK on with that
//! call's echo path; afterwards the peers' reports and the gateway's log are scored.
//!
//! Files (in `target/e2e/<run name>/`): `corpus/` (WAVs + manifest.json), `sipp-uac_eval_call-0/`
//! (per call `call_<n>.args`, `peer_<n>.json`, `rx_<n>.wav` heard by the caller, `tx_<n>.wav`
//! sent by the caller incl. echo), `gateway.stderr.log`, `report.md`, `report.json`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::corpus::{self, CorpusConfig, Family, Manifest};
use super::gwlog;
use super::score::{self, CallResult, Summary, Targets};
use super::sources::SourceBank;
use crate::gateway::Gateway;
use crate::report::PeerReport;
use crate::run::{e2e_root, gateway_bin, TestRun};
use crate::sipp::Sipp;

pub const SCENARIO: &str = "uac_eval_call.xml";
/// Calls started per second (SIPp `-r`).
const CALL_RATE: u32 = 5;
/// The peer runs this much longer than SIPp holds the call.
const PEER_EXTRA_S: f64 = 0.3;
/// How long after SIPp ends the peers' reports may take to appear.
const REPORT_WAIT: Duration = Duration::from_secs(20);

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    pub seed: u64,
    pub subset: bool,
    /// Overrides the calls per family of `subset`/full.
    pub per_family: Option<usize>,
    /// Only these families (empty: all).
    pub families: Vec<Family>,
    /// Calls in flight at once.
    pub concurrent: u32,
    /// Run directory name under target/e2e/.
    pub run_name: String,
    /// Gateway config overrides (`section.key`, value).
    pub gateway_overrides: Vec<(String, String)>,
    /// Closed-loop echo on every call (the corpus's echo paths). Off only for diagnosis: how
    /// much of the false rate the echo causes.
    pub echo: bool,
    pub targets: Targets,
}

impl EvalOptions {
    pub fn new(seed: u64, subset: bool) -> EvalOptions {
        EvalOptions {
            seed,
            subset,
            per_family: None,
            families: Vec::new(),
            concurrent: 10,
            run_name: "eval".to_string(),
            gateway_overrides: Vec::new(),
            echo: true,
            targets: Targets::default(),
        }
    }

    fn corpus_config(&self) -> CorpusConfig {
        let mut cfg = CorpusConfig::new(self.seed, self.subset);
        if let Some(n) = self.per_family {
            cfg.per_family = n;
        }
        if !self.families.is_empty() {
            cfg.families = self.families.clone();
        }
        cfg
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalOutcome {
    pub dir: PathBuf,
    pub options: EvalOptions,
    pub gateway: String,
    /// Modification time of the gateway binary (it is rebuilt often: say which one ran).
    pub gateway_built: Option<String>,
    pub started_unix_s: u64,
    pub corpus_gen_s: f64,
    pub calls_s: f64,
    pub manifest: Manifest,
    pub results: Vec<CallResult>,
    pub summary: Summary,
    /// Harness failures (calls that did not complete, SIPp errors, gateway died). Non-empty
    /// means the measurement is incomplete.
    pub failures: Vec<String>,
    /// Engine targets missed (not a harness failure).
    pub target_misses: Vec<String>,
    pub markdown: String,
}

/// Generates the corpus into `dir` with the system sources (Allison prompts, espeak-ng); the
/// espeak renderings are cached in target/e2e/.cache/espeak.
pub fn generate_corpus(cfg: &CorpusConfig, dir: &std::path::Path) -> Result<Manifest, String> {
    let mut bank = SourceBank::system(&e2e_root().join(".cache").join("espeak"))?;
    corpus::generate(cfg, dir, &mut bank)
}

fn peer_args_for(call: &corpus::CallSpec, wav: &std::path::Path, n: usize, echo: bool) -> String {
    let mut args = format!(
        "--send {} --send-at 0 --record-tx tx_{n}.wav",
        wav.display()
    );
    if echo {
        let e = &call.echo;
        args.push_str(&format!(
            " --echo-erl-db {} --echo-delay-ms {} --echo-dispersion-ms {} --echo-seed {}",
            e.erl_db, e.delay_ms, e.dispersion_ms, e.seed
        ));
    }
    args + "\n"
}

/// Runs the evaluation. Err only when it could not run at all (no gateway binary, no
/// sources, SIPp missing…); calls that fail are listed in `failures`.
pub fn run_eval(opts: &EvalOptions) -> Result<EvalOutcome, String> {
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let run = TestRun::try_new(&opts.run_name)?;
    let corpus_dir = run.path("corpus");
    let t = Instant::now();
    let manifest = generate_corpus(&opts.corpus_config(), &corpus_dir)?;
    let corpus_gen_s = t.elapsed().as_secs_f64();
    let calls = manifest.calls.len();
    if calls == 0 {
        return Err("the corpus has no calls".to_string());
    }
    eprintln!(
        "eval: {calls} calls generated in {corpus_gen_s:.1} s into {}",
        corpus_dir.display()
    );

    let overrides: Vec<(&str, &str)> = opts
        .gateway_overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut gw = Gateway::try_start(&run, &overrides)?;
    let hold_ms = manifest.call_ms as u64;
    let concurrent = opts.concurrent.max(1);
    let rounds = (calls as u64).div_ceil(u64::from(concurrent));
    let timeout = Duration::from_millis(rounds * (hold_ms + 3000)) + Duration::from_secs(60);
    let sipp = Sipp::new(&run, SCENARIO, gw.sip_addr())
        .calls(&run, calls as u32, concurrent, CALL_RATE)
        .hold_ms(hold_ms)
        .peer_args(&format!(
            "--duration {}",
            manifest.call_ms / 1000.0 + PEER_EXTRA_S
        ))
        .timeout(timeout);
    // SIPp numbers calls from 1 in the order it starts them: call n plays manifest call n−1.
    for (i, call) in manifest.calls.iter().enumerate() {
        let n = i + 1;
        let path = sipp.dir().join(format!("call_{n}.args"));
        let wav = corpus::wav_path(&corpus_dir, call);
        std::fs::write(&path, peer_args_for(call, &wav, n, opts.echo))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "eval: running {calls} calls of {:.0} s, {concurrent} at a time (≈ {} s)",
        manifest.call_ms / 1000.0,
        rounds * (hold_ms / 1000 + 1)
    );
    let t = Instant::now();
    let sipp = sipp.spawn()?.wait();
    let calls_s = t.elapsed().as_secs_f64();

    let mut failures = Vec::new();
    if sipp.exit_code != Some(0) || sipp.timed_out {
        failures.push(format!(
            "SIPp exit {:?} (timed out: {}), see {}",
            sipp.exit_code,
            sipp.timed_out,
            sipp.dir.display()
        ));
    }
    // Reports appear when each peer ends (shortly after its call).
    let deadline = Instant::now() + REPORT_WAIT;
    while Instant::now() < deadline
        && !(1..=calls as u32).all(|n| sipp.peer_report_path(n).exists())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give the gateway a moment to write its last lines, then check it is still healthy.
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = gw.exit_status() {
        failures.push(format!("gateway exited during the run ({status})"));
    }
    let log = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default()
        + &std::fs::read_to_string(run.path("gateway.stdout.log")).unwrap_or_default();
    if log.contains("panicked at") {
        failures.push(format!(
            "gateway panicked, see {}",
            gw.stderr_path().display()
        ));
    }
    gw.stop(Duration::from_secs(2));
    let events = gwlog::events_by_call(&log);

    let mut results = Vec::with_capacity(calls);
    for (i, call) in manifest.calls.iter().enumerate() {
        let n = i as u32 + 1;
        let result = match PeerReport::load(&sipp.peer_report_path(n)) {
            Ok(report) => {
                let no_events = Vec::new();
                let call_events = report
                    .call_id
                    .as_ref()
                    .and_then(|id| events.get(id))
                    .unwrap_or(&no_events);
                score::score_call(call, &report, call_events)
            }
            Err(e) => {
                let err = std::fs::read_to_string(sipp.dir.join(format!("peer_{n}.err")))
                    .unwrap_or_default();
                CallResult::failed(call, format!("{e} {}", err.trim()))
            }
        };
        if let Some(e) = &result.error {
            failures.push(format!("{} (SIPp call {n}): {e}", call.id));
        }
        results.push(result);
    }
    let summary = score::summarize(&results);
    let target_misses = score::check_targets(&summary, &opts.targets);
    let mut outcome = EvalOutcome {
        dir: run.dir().to_path_buf(),
        options: opts.clone(),
        gateway: gateway_bin().display().to_string(),
        gateway_built: std::fs::metadata(gateway_bin())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| format_utc(d.as_secs())),
        started_unix_s,
        corpus_gen_s,
        calls_s,
        manifest,
        results,
        summary,
        failures,
        target_misses,
        markdown: String::new(),
    };
    outcome.markdown = render_markdown(&outcome);
    write_outputs(&outcome)?;
    Ok(outcome)
}

fn render_markdown(o: &EvalOutcome) -> String {
    let mut md = String::from("# Barge-in evaluation\n\n");
    md.push_str(&format!(
        "Seed {}, {} ({} calls per family), {} calls of {:.0} s, {} concurrent, {}. \
         Run {}, gateway `{}` (built {}){}. Corpus generated in {:.1} s, calls took {:.0} s.\n\n",
        o.options.seed,
        if o.manifest.subset {
            "subset"
        } else {
            "full corpus"
        },
        o.manifest.per_family,
        o.manifest.calls.len(),
        o.manifest.call_ms / 1000.0,
        o.options.concurrent,
        if o.options.echo {
            "closed-loop echo on every call"
        } else {
            "**echo disabled** (diagnosis run)"
        },
        format_utc(o.started_unix_s),
        o.gateway,
        o.gateway_built.as_deref().unwrap_or("?"),
        if o.options.gateway_overrides.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = o
                .options
                .gateway_overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(" with {}", list.join(", "))
        },
        o.corpus_gen_s,
        o.calls_s,
    ));
    md.push_str(&score::markdown_table(&o.summary));
    md.push_str(
        "\nCells: rate % (count/denominator). false: calls with a barge-in not caused by caller \
         speech; missed: interrupt calls whose agent audio was not stopped within 1 s of the \
         onset (denominator: calls with agent audio at the onset); stutter: tentative pause then \
         resume; premature: agent audio again before the caller's speech ended; stop: onset → \
         last voiced agent packet. Definitions: tests/README.md, \"Barge-in evaluation\".\n\n",
    );
    let t = &o.options.targets;
    md.push_str(&format!(
        "Targets (false ≤ {} %, missed ≤ {} %, echo_only false = {}, stop p95 ≤ {} ms): {}\n",
        t.max_false_pct,
        t.max_missed_pct,
        t.max_echo_only_false_calls,
        t.max_stop_p95_ms,
        if o.target_misses.is_empty() {
            "all met".to_string()
        } else {
            format!("missed — {}", o.target_misses.join("; "))
        }
    ));
    if !o.failures.is_empty() {
        md.push_str(&format!(
            "\n**Harness failures ({}):**\n\n",
            o.failures.len()
        ));
        for f in &o.failures {
            md.push_str(&format!("- {f}\n"));
        }
    }
    md
}

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix seconds (Howard Hinnant's civil-from-days).
pub fn format_utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn write_outputs(o: &EvalOutcome) -> Result<(), String> {
    let md = o.dir.join("report.md");
    std::fs::write(&md, &o.markdown).map_err(|e| format!("{}: {e}", md.display()))?;
    let json = serde_json::to_string_pretty(o).map_err(|e| format!("report json: {e}"))?;
    let path = o.dir.join("report.json");
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::echo::EchoParams;

    #[test]
    fn peer_args_carry_the_wav_and_the_echo_path() {
        let mut bank = SourceBank::synthetic();
        let (mut call, _) =
            corpus::make_call(1, Family::EchoOnly, "echo_only-00", &mut bank).unwrap();
        call.echo = EchoParams {
            delay_ms: 42.0,
            erl_db: 7.5,
            dispersion_ms: 11.0,
            seed: 1234,
        };
        let wav = std::path::Path::new("/c/echo_only-00.wav");
        let args = peer_args_for(&call, wav, 3, true);
        assert_eq!(
            args.split_whitespace().collect::<Vec<_>>(),
            [
                "--send",
                "/c/echo_only-00.wav",
                "--send-at",
                "0",
                "--record-tx",
                "tx_3.wav",
                "--echo-erl-db",
                "7.5",
                "--echo-delay-ms",
                "42",
                "--echo-dispersion-ms",
                "11",
                "--echo-seed",
                "1234"
            ]
        );
        let args = peer_args_for(&call, wav, 3, false);
        assert!(!args.contains("--echo") && args.contains("--send /c/echo_only-00.wav"));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_322_633), "2026-11-22 04:43:53 UTC");
        let parsed = crate::eval::gwlog::parse_rfc3339_ms("2026-11-22T04:43:53Z").unwrap();
        assert_eq!(
            format_utc((parsed / 1000.0) as u64),
            "2026-11-22 04:43:53 UTC"
        );
    }

    #[test]
    fn options_pick_the_corpus() {
        let mut o = EvalOptions::new(4, true);
        assert_eq!(o.corpus_config().per_family, corpus::SUBSET_PER_FAMILY);
        assert_eq!(o.corpus_config().families.len(), 10);
        o.per_family = Some(1);
        o.families = vec![Family::EchoOnly];
        let cfg = o.corpus_config();
        assert_eq!(
            (cfg.per_family, cfg.families, cfg.seed),
            (1, vec![Family::EchoOnly], 4)
        );
        assert_eq!(
            EvalOptions::new(1, false).corpus_config().per_family,
            corpus::FULL_PER_FAMILY
        );
    }
}
