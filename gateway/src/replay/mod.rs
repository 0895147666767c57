//! `bargein-gateway replay`: runs the live barge-in path offline on a recorded call, with
//! any configuration, prints the decisions with their timestamps and draws a PNG plot, so
//! an operator can tune a noisy site by looking (docs/replay.md).
//!
//! The path is the live one, frame for frame: [`media::pipeline::CallerPipeline`] (echo
//! canceller + noise suppression), 256-sample chunks, one Silero session with its own
//! stream state, and the decision engine (see [`engine`], the single adapter to it).

mod canvas;
mod engine;
mod font;
mod input;
mod plot;
mod report;
mod settings;
mod timeline;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use engine::EngineKind;
use input::Source;
use report::{RunSettings, Summary};
use settings::Override;
use timeline::{AgentDetection, SileroVad};

pub const USAGE: &str = "usage: bargein-gateway replay [--config PATH] (--stereo CALL.wav | --caller CALLER.wav --agent AGENT.wav)
                              [--plot OUT.png] [--set section.key=value ...] [--json] [--chunks]
                              [--engine policy|detector] [--agent-threshold-dbfs DB] [--agent-hangover-ms MS]

  Runs the barge-in path (echo canceller, noise suppression, Silero VAD, decision engine)
  offline on a recorded call and prints every decision with its time.

  --config PATH       gateway configuration (default: deploy/gateway.toml); GW__ environment
                      overrides apply as for the gateway
  --stereo CALL.wav   16-bit PCM, 8 or 16 kHz; channel 0 = caller (inbound), channel 1 = agent
                      (what the gateway sent)
  --caller/--agent    the same as two mono files
  --plot OUT.png      write a 1600x900 plot of the run
  --set KEY=VALUE     override a config key for this run, e.g. --set bargein.threshold=0.7
  --json              print JSON lines instead of text
  --chunks            also print every 32 ms VAD chunk (time, probability, level, whether our
                      audio played, the echo gate's verdicts), before the decisions
  --engine NAME       policy (default: reversible policy with echo gate) or detector (the
                      plain speech detector)
  --agent-threshold-dbfs DB  agent frames at or above this level count as interruptible
                      audio (default -50)
  --agent-hangover-ms MS     ...and for this long after (default 300)";

#[derive(Debug, PartialEq)]
struct Args {
    config: PathBuf,
    source: Source,
    plot: Option<PathBuf>,
    overrides: Vec<Override>,
    json: bool,
    chunks: bool,
    engine: EngineKind,
    agent: AgentDetection,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut config = PathBuf::from("deploy/gateway.toml");
    let (mut stereo, mut caller, mut agent_file, mut plot) = (None, None, None, None);
    let mut overrides = Vec::new();
    let mut json = false;
    let mut chunks = false;
    let mut engine = EngineKind::default();
    let mut agent = AgentDetection::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--config" => config = PathBuf::from(value("--config")?),
            "--stereo" => stereo = Some(PathBuf::from(value("--stereo")?)),
            "--caller" => caller = Some(PathBuf::from(value("--caller")?)),
            "--agent" => agent_file = Some(PathBuf::from(value("--agent")?)),
            "--plot" => plot = Some(PathBuf::from(value("--plot")?)),
            "--set" => overrides.push(Override::parse(&value("--set")?)?),
            "--json" => json = true,
            "--chunks" => chunks = true,
            "--engine" => {
                let v = value("--engine")?;
                engine = EngineKind::parse(&v)
                    .ok_or_else(|| format!("--engine `{v}`: expected policy or detector"))?;
            }
            "--agent-threshold-dbfs" => {
                let v = value("--agent-threshold-dbfs")?;
                agent.agent_threshold_dbfs = v
                    .parse::<f32>()
                    .ok()
                    .filter(|db| (-100.0..=0.0).contains(db))
                    .ok_or_else(|| format!("--agent-threshold-dbfs `{v}`: expected -100..=0"))?;
            }
            "--agent-hangover-ms" => {
                let v = value("--agent-hangover-ms")?;
                agent.agent_hangover_ms = v
                    .parse::<u32>()
                    .ok()
                    .filter(|ms| *ms <= 10_000)
                    .ok_or_else(|| format!("--agent-hangover-ms `{v}`: expected 0..=10000"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let source = match (stereo, caller, agent_file) {
        (Some(s), None, None) => Source::Stereo(s),
        (None, Some(caller), Some(agent)) => Source::Pair { caller, agent },
        (None, None, None) => {
            return Err("no input: pass --stereo CALL.wav or --caller C.wav --agent A.wav".into())
        }
        (Some(_), _, _) => return Err("--stereo cannot be combined with --caller/--agent".into()),
        (None, _, _) => return Err("--caller and --agent must be given together".into()),
    };
    Ok(Args {
        config,
        source,
        plot,
        overrides,
        json,
        chunks,
        engine,
        agent,
    })
}

/// Entry point for `bargein-gateway replay ARGS...` (ARGS after the word `replay`).
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bargein-gateway replay: {e}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            eprintln!("bargein-gateway replay: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    message: String,
    code: u8,
}

fn fail(code: u8) -> impl Fn(String) -> Failure {
    move |message| Failure { message, code }
}

fn run(args: &Args) -> Result<(), Failure> {
    let cfg = settings::load(&args.config, &args.overrides).map_err(fail(2))?;
    let policy = cfg.bargein_config().map_err(|e| fail(2)(e.to_string()))?;
    if let Some(dir) = args.plot.as_deref().and_then(std::path::Path::parent) {
        // Checked before the run, not after minutes of it.
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(fail(2)(format!(
                "--plot: directory {} does not exist",
                dir.display()
            )));
        }
    }
    let audio = input::load(&args.source).map_err(fail(2))?;
    let runtime = media::vad::SileroRuntime::load(&media::vad::SileroConfig {
        onnxruntime_library: cfg.vad.onnxruntime_library.clone(),
        model: cfg.vad.model.clone(),
    })
    .map_err(|e| fail(3)(e.to_string()))?;
    let session = runtime.session().map_err(|e| fail(3)(e.to_string()))?;
    let mut vad = SileroVad::new(session);
    let mut progress = Progress::new();
    let timeline = timeline::run(
        audio,
        &cfg.pipeline_config(&cfg.bot),
        policy.clone(),
        args.engine,
        args.agent,
        &mut vad,
        &mut |fraction| progress.update(fraction),
    )
    .map_err(fail(1))?;
    progress.finish();

    let settings = RunSettings {
        mode: mode_name(policy.mode),
        threshold: policy.threshold,
        min_speech_ms: policy.min_speech_ms,
        min_silence_ms: policy.min_silence_ms,
        pause_onset_ms: policy.pause_onset_ms,
        echo_cancellation: cfg.bargein.echo_cancellation,
        noise_suppression: cfg.bargein.noise_suppression,
        agent_threshold_dbfs: args.agent.agent_threshold_dbfs,
        agent_hangover_ms: args.agent.agent_hangover_ms,
    };
    let summary = Summary::of(&timeline);
    let mut out = String::new();
    if args.chunks {
        for c in &timeline.chunks {
            if args.json {
                out.push_str(&report::chunk_json(c).to_string());
            } else {
                out.push_str(&report::chunk_line(c));
            }
            out.push('\n');
        }
    }
    for d in &timeline.decisions {
        if args.json {
            out.push_str(&report::decision_json(d).to_string());
        } else {
            out.push_str(&report::decision_line(d));
        }
        out.push('\n');
    }
    if args.json {
        out.push_str(&report::summary_json(&timeline, &summary, &settings).to_string());
    } else {
        out.push_str(&report::summary_text(&timeline, &summary, &settings));
    }
    out.push('\n');
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth an error message.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());

    if let Some(path) = &args.plot {
        let title = plot_title(&args.source, args.engine, &settings);
        let png = plot::draw(&timeline, &title)
            .encode_png()
            .map_err(fail(1))?;
        std::fs::write(path, png)
            .map_err(|e| fail(1)(format!("cannot write plot {}: {e}", path.display())))?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

/// The mode as the config file spells it.
fn mode_name(mode: media::policy::BargeInMode) -> &'static str {
    match mode {
        media::policy::BargeInMode::Immediate => "immediate",
        media::policy::BargeInMode::Pause => "pause",
        media::policy::BargeInMode::BotDecides => "bot_decides",
    }
}

fn plot_title(source: &Source, engine: EngineKind, s: &RunSettings) -> String {
    let mut name = source.name();
    if name.chars().count() > 48 {
        name = name.chars().take(45).chain("...".chars()).collect();
    }
    let on_off = |b: bool| if b { "ON" } else { "OFF" };
    let engine = match engine {
        EngineKind::Policy => format!("POLICY {}", s.mode),
        EngineKind::Detector => "DETECTOR".into(),
    };
    format!(
        "{name}   {engine}  THRESHOLD {}  MIN SPEECH {} MS  MIN SILENCE {} MS  EC {}  NS {}",
        s.threshold,
        s.min_speech_ms,
        s.min_silence_ms,
        on_off(s.echo_cancellation),
        on_off(s.noise_suppression)
    )
}

/// A progress bar on stderr, only when stderr is a terminal (never mixed into stdout, never
/// in logs).
struct Progress {
    enabled: bool,
    shown: Option<u32>,
}

impl Progress {
    const WIDTH: u32 = 40;

    fn new() -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            shown: None,
        }
    }

    fn update(&mut self, fraction: f64) {
        let percent = (fraction.clamp(0.0, 1.0) * 100.0) as u32;
        if !self.enabled || self.shown == Some(percent) {
            return;
        }
        self.shown = Some(percent);
        let filled = (percent * Self::WIDTH / 100) as usize;
        let bar = format!(
            "{}{}",
            "#".repeat(filled),
            ".".repeat(Self::WIDTH as usize - filled)
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\rreplay [{bar}] {percent:3}%");
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.enabled && self.shown.is_some() {
            let blank = " ".repeat(Self::WIDTH as usize + 16);
            eprint!("\r{blank}\r");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = parse(&[
            "--stereo",
            "c.wav",
            "--set",
            "bargein.threshold=0.7",
            "--json",
            "--chunks",
            "--plot",
            "p.png",
        ])
        .unwrap();
        assert_eq!(a.source, Source::Stereo("c.wav".into()));
        assert_eq!(a.overrides.len(), 1);
        assert!(a.json && a.chunks);
        assert_eq!(a.plot, Some(PathBuf::from("p.png")));
        assert_eq!(a.config, PathBuf::from("deploy/gateway.toml"));
        assert_eq!(a.engine, EngineKind::Policy);
        let a = parse(&[
            "--caller",
            "c.wav",
            "--agent",
            "a.wav",
            "--agent-hangover-ms",
            "0",
            "--engine",
            "detector",
        ])
        .unwrap();
        assert_eq!(a.engine, EngineKind::Detector);
        assert!(matches!(a.source, Source::Pair { .. }));
        assert_eq!(a.agent.agent_hangover_ms, 0);
        for (bad, says) in [
            (&["--caller", "c.wav"][..], "together"),
            (
                &["--stereo", "s.wav", "--agent", "a.wav"][..],
                "cannot be combined",
            ),
            (&[][..], "no input"),
            (&["--stereo"][..], "needs a value"),
            (&["--stereo", "s.wav", "--frob"][..], "unknown argument"),
            (
                &["--stereo", "s.wav", "--set", "x"][..],
                "section.key=value",
            ),
            (
                &["--stereo", "s.wav", "--agent-threshold-dbfs", "5"][..],
                "-100..=0",
            ),
            (
                &["--stereo", "s.wav", "--engine", "magic"][..],
                "policy or detector",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
    }
}
