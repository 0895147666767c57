//! bargein-gateway: SIP/RTP front end that lets voice bots be interrupted.

mod bot;
mod call;
mod config;
mod cpu;
mod pacing;
mod ports;
mod recording;
mod replay;
mod routing;
mod routing_dest;
mod routing_hook;
mod signalling;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: bargein-gateway [--config PATH] [--check-config]
       bargein-gateway replay --help     (offline barge-in replay of a recorded call)

  --config PATH     configuration file (default: deploy/gateway.toml)
  --check-config    validate the configuration (and the VAD runtime) and exit
  Environment overrides: GW__SECTION__KEY=value, e.g. GW__SIP__LISTEN=0.0.0.0:5060";

struct Args {
    config: PathBuf,
    check_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: PathBuf::from("deploy/gateway.toml"),
        check_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => {
                args.config = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--config needs a path")?
            }
            "--check-config" => args.check_only = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    if let Some(message) = cpu::unsupported_cpu_message() {
        eprintln!("bargein-gateway: {message}");
        return ExitCode::from(2);
    }
    if std::env::args().nth(1).as_deref() == Some("replay") {
        return replay::main(std::env::args().skip(2));
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bargein-gateway: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let cfg = match config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bargein-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&cfg.log.level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Refuse to start without the VAD runtime: barge-in is the product, there is no silent
    // fallback.
    let runtime = match media::vad::SileroRuntime::load(&media::vad::SileroConfig {
        onnxruntime_library: cfg.vad.onnxruntime_library.clone(),
        model: cfg.vad.model.clone(),
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bargein-gateway: {e}");
            return ExitCode::from(3);
        }
    };
    let audio = match bot::demo::DemoAudio::load(&cfg.bot.demo.prompt, &cfg.bot.demo.reply) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bargein-gateway: bot.demo: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_only {
        println!("configuration OK: {}", args.config.display());
        return ExitCode::SUCCESS;
    }
    let vad = match media::vad::VadPool::start(&runtime, cfg.vad.workers, 8192) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("bargein-gateway: {e}");
            return ExitCode::from(3);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gw")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bargein-gateway: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(signalling::run(Arc::new(cfg), vad, audio)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bargein-gateway: {e}");
            ExitCode::from(1)
        }
    }
}
