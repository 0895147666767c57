//! Generates the barge-in evaluation corpus: caller-side WAVs (8 kHz mono s16) + manifest.json
//! with the ground truth of every call. Same seed → byte-identical files.
//!
//! ```text
//! cargo run --release -p bargein-e2e --bin corpus_gen -- [--seed N] [--subset]
//!     [--per-family N] [--family NAME]... [--out DIR]
//! ```
//! Default output: target/e2e/corpus/seed-<N>[-subset]/. Needs asterisk-core-sounds-en-wav,
//! espeak-ng and sox (scripts/install-test-deps.sh).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bargein_e2e::eval::corpus::{CorpusConfig, Family};
use bargein_e2e::eval::harness::generate_corpus;
use bargein_e2e::run::e2e_root;

const USAGE: &str =
    "usage: corpus_gen [--seed N] [--subset] [--per-family N] [--family NAME]... [--out DIR]";

#[derive(Debug, PartialEq)]
struct Args {
    cfg: CorpusConfig,
    out: PathBuf,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let (mut seed, mut subset, mut per_family, mut out) = (1u64, false, None, None);
    let mut families = Vec::new();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--seed" => {
                let v = value()?;
                seed = v.parse().map_err(|e| format!("--seed {v:?}: {e}"))?;
            }
            "--subset" => subset = true,
            "--per-family" => {
                let v = value()?;
                per_family =
                    Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--per-family needs a positive number, got {v:?}")
                    })?);
            }
            "--family" => {
                let v = value()?;
                families.push(Family::from_name(v).ok_or_else(|| {
                    let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
                    format!("unknown family {v:?}; one of {}", names.join(", "))
                })?);
            }
            "--out" => out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let mut cfg = CorpusConfig::new(seed, subset);
    if let Some(n) = per_family {
        cfg.per_family = n;
    }
    if !families.is_empty() {
        cfg.families = families;
    }
    let out = out.unwrap_or_else(|| {
        let name = format!("seed-{seed}{}", if subset { "-subset" } else { "" });
        e2e_root().join("corpus").join(name)
    });
    Ok(Args { cfg, out })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("corpus_gen: {e}");
            return ExitCode::from(2);
        }
    };
    let t = Instant::now();
    match generate_corpus(&args.cfg, &args.out) {
        Ok(m) => {
            println!(
                "corpus_gen: {} calls ({} per family, seed {}) in {:.1} s → {}",
                m.calls.len(),
                m.per_family,
                m.seed,
                t.elapsed().as_secs_f64(),
                args.out.join("manifest.json").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corpus_gen: {e}");
            ExitCode::FAILURE
        }
    }
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
        assert_eq!(d.cfg, CorpusConfig::new(1, false));
        assert!(d.out.ends_with("corpus/seed-1"));
        let a = parse(&[
            "--seed",
            "9",
            "--subset",
            "--per-family",
            "2",
            "--family",
            "echo_only",
            "--out",
            "/x",
        ])
        .unwrap();
        assert_eq!((a.cfg.seed, a.cfg.subset, a.cfg.per_family), (9, true, 2));
        assert_eq!(a.cfg.families, vec![Family::EchoOnly]);
        assert_eq!(a.out, PathBuf::from("/x"));
        assert!(parse(&["--seed", "9", "--subset"])
            .unwrap()
            .out
            .ends_with("seed-9-subset"));
    }

    #[test]
    fn bad_arguments() {
        assert!(parse(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--seed", "x"]).unwrap_err().contains("--seed"));
        assert!(parse(&["--per-family", "0"])
            .unwrap_err()
            .contains("positive"));
        assert!(parse(&["--family", "jazz"])
            .unwrap_err()
            .contains("unknown family"));
        assert!(parse(&["--bogus"])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
