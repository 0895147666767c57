//! Barge-in evaluation (measurement, not a test): generates the corpus, runs every call through
//! the real gateway over SIP/RTP with closed-loop echo, and reports false-barge-in, missed,
//! stutter and premature rates and stop latency p50/p95 per scenario family.
//!
//! ```text
//! cargo build --release -p bargein-gateway
//! cargo run --release -p bargein-e2e --bin eval_bargein -- [--subset] [--seed N]
//!     [--per-family N] [--family NAME]... [--concurrent N] [--set section.key=value]...
//!     [--name RUN] [--no-echo] [--enforce]
//! ```
//! Writes target/e2e/<RUN, default eval>/report.md and report.json. Exit status: 0 when every
//! call was measured (targets missed or not), 1 on a harness failure, 2 on bad arguments, 3
//! when `--enforce` is given and a target is missed.

use std::process::ExitCode;

use bargein_e2e::eval::corpus::Family;
use bargein_e2e::eval::harness::{run_eval, EvalOptions};

const USAGE: &str =
    "usage: eval_bargein [--subset] [--seed N] [--per-family N] [--family NAME]... \
[--concurrent N] [--set section.key=value]... [--name RUN] [--no-echo] [--enforce]";

#[derive(Debug, PartialEq)]
struct Args {
    opts: EvalOptions,
    enforce: bool,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut opts = EvalOptions::new(1, false);
    let mut enforce = false;
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let positive = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} needs a positive number, got {v:?}"))
        };
        match flag.as_str() {
            "--subset" => opts.subset = true,
            "--no-echo" => opts.echo = false,
            "--enforce" => enforce = true,
            "--seed" => {
                let v = value()?;
                opts.seed = v.parse().map_err(|e| format!("--seed {v:?}: {e}"))?;
            }
            "--per-family" => opts.per_family = Some(positive(value()?)?),
            "--concurrent" => {
                opts.concurrent = u32::try_from(positive(value()?)?)
                    .map_err(|_| "--concurrent too large".to_string())?
            }
            "--family" => {
                let v = value()?;
                opts.families.push(Family::from_name(v).ok_or_else(|| {
                    let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
                    format!("unknown family {v:?}; one of {}", names.join(", "))
                })?);
            }
            "--set" => {
                let v = value()?;
                let (k, val) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("--set needs section.key=value, got {v:?}"))?;
                opts.gateway_overrides
                    .push((k.to_string(), val.to_string()));
            }
            "--name" => {
                let v = value()?;
                if v.is_empty() || v.contains('/') || v.starts_with('.') {
                    return Err(format!("--name must be a plain directory name, got {v:?}"));
                }
                opts.run_name = v.clone();
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args { opts, enforce })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("eval_bargein: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match run_eval(&args.opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("eval_bargein: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", outcome.markdown);
    println!(
        "report: {} (+ report.json)",
        outcome.dir.join("report.md").display()
    );
    if !outcome.failures.is_empty() {
        eprintln!(
            "eval_bargein: {} harness failure(s), the measurement is incomplete",
            outcome.failures.len()
        );
        return ExitCode::FAILURE;
    }
    if args.enforce && !outcome.target_misses.is_empty() {
        eprintln!(
            "eval_bargein: targets missed: {}",
            outcome.target_misses.join("; ")
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args, String> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_and_options() {
        let d = parse(&[]).unwrap();
        assert_eq!(d.opts, EvalOptions::new(1, false));
        assert!(!d.enforce);
        let a = parse(&[
            "--subset",
            "--seed",
            "3",
            "--per-family",
            "1",
            "--family",
            "noise_car",
            "--concurrent",
            "4",
            "--set",
            "bargein.threshold=0.7",
            "--name",
            "eval-x",
            "--enforce",
            "--no-echo",
        ])
        .unwrap();
        assert!(a.enforce && a.opts.subset && !a.opts.echo);
        assert_eq!(
            (a.opts.seed, a.opts.per_family, a.opts.concurrent),
            (3, Some(1), 4)
        );
        assert_eq!(a.opts.families, vec![Family::NoiseCar]);
        assert_eq!(
            a.opts.gateway_overrides,
            vec![("bargein.threshold".to_string(), "0.7".to_string())]
        );
        assert_eq!(a.opts.run_name, "eval-x");
    }

    #[test]
    fn bad_arguments() {
        assert!(parse(&["--concurrent", "0"])
            .unwrap_err()
            .contains("positive"));
        assert!(parse(&["--set", "novalue"])
            .unwrap_err()
            .contains("section.key=value"));
        assert!(parse(&["--set", "=1"]).is_err());
        assert!(parse(&["--name", "../x"])
            .unwrap_err()
            .contains("plain directory"));
        assert!(parse(&["--family", "x"])
            .unwrap_err()
            .contains("unknown family"));
        assert!(parse(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--what"]).unwrap_err().contains("unknown argument"));
    }
}
