//! Gateway configuration: a TOML file (deploy/gateway.toml documents every key), environment
//! overrides `GW__SECTION__KEY`, validation with errors that name the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub vad: VadConfig,
    pub bargein: BargeInSettings,
    pub bot: BotConfig,
    pub calls: CallsConfig,
    pub log: LogConfig,
    pub routing: crate::routing::RoutingConfig,
    /// `[[routes]]`, tried in order (see `routing.rs`).
    #[serde(default)]
    pub routes: Vec<crate::routing::RouteConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub listen: SocketAddr,
    pub advertised_ip: String,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub max_message_bytes: usize,
    pub user_agent: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub codecs: Vec<String>,
    pub jitter_min_ms: u32,
    pub jitter_max_ms: u32,
    pub rtcp_interval_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VadConfig {
    pub onnxruntime_library: PathBuf,
    pub model: PathBuf,
    pub workers: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BargeInSettings {
    pub mode: String,
    pub threshold: f32,
    pub min_speech_ms: u32,
    pub min_silence_ms: u32,
    pub pause_onset_ms: u32,
    pub decision_ms: u32,
    pub echo_cancellation: bool,
    pub echo_gate: bool,
    pub echo_gate_threshold: f32,
    pub noise_suppression: bool,
    pub dtmf_barge_in: bool,
    pub barge_in_after_non_interruptible: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    pub kind: String,
    /// Time to reach the bot and have it accept the call, before the INVITE is answered.
    pub connect_timeout_ms: u64,
    /// A bot that does not read what the gateway sends for this long counts as stalled.
    pub stall_timeout_ms: u64,
    /// A transfer (REFER) not reported done (final NOTIFY or failure) within this is given
    /// up: the bot gets TransferResult 408 and the call goes on.
    pub transfer_timeout_ms: u64,
    /// Bound on the bot audio queued for playout; a Play beyond it is refused.
    pub max_buffered_s: u32,
    /// "reject" (503 at start; BYE mid-call) or "fallback" (prompt, then `fallback.then`).
    pub on_failure: String,
    pub fallback: FallbackConfig,
    pub demo: DemoBotConfig,
    pub grpc: GrpcBotConfig,
    pub twilio: crate::bot::twilio::TwilioBotConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    pub prompt: PathBuf,
    /// "hangup" or "transfer" (SIP REFER to `transfer_target`).
    pub then: String,
    pub transfer_target: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcBotConfig {
    /// `http://host:port` (plaintext HTTP/2) or `https://host:port` (TLS).
    pub endpoint: String,
    /// Caller audio sample rate sent to the bot: 8000 or 16000.
    pub audio_rate: u32,
    /// Which caller audio the bot gets: "received" (after the jitter buffer, every 20 ms)
    /// or "processed" (what the VAD heard: after echo cancellation and noise suppression,
    /// in 32 ms chunks).
    pub audio_source: String,
    /// PEM file of the CA that signs the bot's certificate; empty = the system's roots.
    pub tls_ca: String,
    /// Request metadata sent with every call.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// SIP headers of the INVITE copied into the request metadata (lower-cased name).
    pub metadata_headers: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DemoBotConfig {
    pub prompt: PathBuf,
    pub reply: PathBuf,
    pub hangup_after_reply: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    pub max_concurrent: usize,
    pub max_duration_s: u64,
    /// Directory for per-call stereo recordings (caller, agent) the replay tool reads;
    /// empty = no recordings.
    pub record_dir: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

impl Config {
    /// Loads `path`, applies `GW__SECTION__KEY` environment overrides, validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::Load(format!(
                "file {} not found (pass --config PATH)",
                path.display()
            )));
        }
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("GW")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("media.codecs")
                    .try_parsing(true),
            )
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let cfg: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.sip;
        if s.t1_ms == 0 || s.t1_ms > 10_000 {
            return Err(invalid("sip.t1_ms", "must be 1..=10000"));
        }
        if s.t2_ms < s.t1_ms || s.t2_ms > 60_000 {
            return Err(invalid("sip.t2_ms", "must be >= sip.t1_ms and <= 60000"));
        }
        if s.t4_ms == 0 || s.t4_ms > 60_000 {
            return Err(invalid("sip.t4_ms", "must be 1..=60000"));
        }
        if !(1500..=65_535).contains(&s.max_message_bytes) {
            return Err(invalid("sip.max_message_bytes", "must be 1500..=65535"));
        }
        self.advertised_ip()?;
        let m = &self.media;
        if m.rtp_port_min < 1024 || !m.rtp_port_min.is_multiple_of(2) {
            return Err(invalid(
                "media.rtp_port_min",
                "must be an even port >= 1024",
            ));
        }
        if m.rtp_port_max <= m.rtp_port_min {
            return Err(invalid(
                "media.rtp_port_max",
                "must be above media.rtp_port_min",
            ));
        }
        if m.codecs.is_empty() {
            return Err(invalid(
                "media.codecs",
                "must name at least one of PCMU, PCMA",
            ));
        }
        for c in &m.codecs {
            if parse_codec(c).is_none() {
                return Err(invalid(
                    "media.codecs",
                    format!("unknown codec `{c}` (supported: PCMU, PCMA)"),
                ));
            }
        }
        if m.jitter_min_ms < 10 || m.jitter_min_ms > 500 {
            return Err(invalid("media.jitter_min_ms", "must be 10..=500"));
        }
        if m.jitter_max_ms < m.jitter_min_ms || m.jitter_max_ms > 1000 {
            return Err(invalid(
                "media.jitter_max_ms",
                "must be >= media.jitter_min_ms and <= 1000",
            ));
        }
        if m.rtcp_interval_s == 0 || m.rtcp_interval_s > 60 {
            return Err(invalid("media.rtcp_interval_s", "must be 1..=60"));
        }
        if self.vad.workers == 0 || self.vad.workers > 64 {
            return Err(invalid("vad.workers", "must be 1..=64"));
        }
        let b = &self.bargein;
        if !(b.threshold > 0.15 && b.threshold < 1.0) {
            return Err(invalid("bargein.threshold", "must be in (0.15, 1.0)"));
        }
        if !(32..=5000).contains(&b.min_speech_ms) {
            return Err(invalid("bargein.min_speech_ms", "must be 32..=5000"));
        }
        if !(32..=10_000).contains(&b.min_silence_ms) {
            return Err(invalid("bargein.min_silence_ms", "must be 32..=10000"));
        }
        parse_mode(&b.mode)?;
        // The policy checks the relations between its fields (pause onset ≤ min speech, …).
        self.bargein_config()?
            .validate()
            .map_err(|e| ConfigError::Invalid {
                key: policy_key(e.field).into(),
                problem: e.reason,
            })?;
        self.bot.validate()?;
        for (key, path) in [
            ("bot.demo.prompt", &self.bot.demo.prompt),
            ("bot.demo.reply", &self.bot.demo.reply),
        ] {
            if !path.is_file() {
                return Err(invalid(key, format!("file {} not found", path.display())));
            }
        }
        if self.calls.max_concurrent == 0 {
            return Err(invalid("calls.max_concurrent", "must be at least 1"));
        }
        let dir = &self.calls.record_dir;
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            return Err(invalid(
                "calls.record_dir",
                format!(
                    "{} is not a directory (create it, or leave empty for no recordings)",
                    dir.display()
                ),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", "not a valid tracing filter"));
        }
        // Routes (regexes, CIDRs, each route's merged bot/bargein) and the hook.
        crate::routing::Router::from_config(self)?;
        Ok(())
    }

    /// The address advertised in Via/Contact/SDP.
    pub fn advertised_ip(&self) -> Result<IpAddr, ConfigError> {
        if self.sip.advertised_ip.is_empty() {
            let ip = self.sip.listen.ip();
            if ip.is_unspecified() {
                return Err(invalid(
                    "sip.advertised_ip",
                    "must be set when sip.listen is a wildcard address",
                ));
            }
            return Ok(ip);
        }
        self.sip
            .advertised_ip
            .parse()
            .map_err(|_| invalid("sip.advertised_ip", "not an IP address"))
    }

    /// Codec preference for the offers we make.
    pub fn sdp_codecs(&self) -> Vec<sip::sdp::Codec> {
        self.media
            .codecs
            .iter()
            .filter_map(|c| parse_codec(c))
            .collect()
    }

    /// The caller-audio path in front of the VAD.
    /// The caller pipeline of a call to `bot` (a route may pick another bot than `[bot]`).
    pub fn pipeline_config(&self, bot: &BotConfig) -> media::pipeline::PipelineConfig {
        media::pipeline::PipelineConfig {
            echo_cancellation: self.bargein.echo_cancellation,
            noise_suppression: self.bargein.noise_suppression,
            deliver_audio: bot.wants_processed_audio(),
            ..Default::default()
        }
    }

    /// The barge-in policy settings (every call starts with these).
    pub fn bargein_config(&self) -> Result<media::policy::PolicyConfig, ConfigError> {
        let b = &self.bargein;
        Ok(media::policy::PolicyConfig {
            mode: parse_mode(&b.mode)?,
            threshold: b.threshold,
            min_speech_ms: b.min_speech_ms,
            min_silence_ms: b.min_silence_ms,
            pause_onset_ms: b.pause_onset_ms,
            decision_ms: b.decision_ms,
            echo_gate: b.echo_gate,
            echo_gate_threshold: b.echo_gate_threshold,
            dtmf_barge_in: b.dtmf_barge_in,
            barge_in_after_non_interruptible: b.barge_in_after_non_interruptible,
        })
    }

    pub fn timers(&self) -> sip::timers::TimerConfig {
        sip::timers::TimerConfig {
            t1: Duration::from_millis(self.sip.t1_ms),
            t2: Duration::from_millis(self.sip.t2_ms),
            t4: Duration::from_millis(self.sip.t4_ms),
        }
    }
}

/// Bot kinds the gateway can connect to.
pub const BOT_KINDS: &[&str] = &["demo", "grpc", "twilio"];

impl BotConfig {
    /// A gRPC bot that asked for the caller audio after echo cancellation and noise
    /// suppression.
    pub fn wants_processed_audio(&self) -> bool {
        self.kind == "grpc" && self.grpc.audio_source == "processed"
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !BOT_KINDS.contains(&self.kind.as_str()) {
            return Err(invalid(
                "bot.kind",
                format!(
                    "unknown bot kind `{}` (supported: {})",
                    self.kind,
                    BOT_KINDS.join(", ")
                ),
            ));
        }
        if !(100..=30_000).contains(&self.connect_timeout_ms) {
            return Err(invalid("bot.connect_timeout_ms", "must be 100..=30000"));
        }
        if !(200..=60_000).contains(&self.stall_timeout_ms) {
            return Err(invalid("bot.stall_timeout_ms", "must be 200..=60000"));
        }
        if !(500..=300_000).contains(&self.transfer_timeout_ms) {
            return Err(invalid("bot.transfer_timeout_ms", "must be 500..=300000"));
        }
        if !(1..=600).contains(&self.max_buffered_s) {
            return Err(invalid("bot.max_buffered_s", "must be 1..=600"));
        }
        match self.on_failure.as_str() {
            "reject" => {}
            "fallback" => {
                if !self.fallback.prompt.is_file() {
                    return Err(invalid(
                        "bot.fallback.prompt",
                        format!("file {} not found", self.fallback.prompt.display()),
                    ));
                }
                match self.fallback.then.as_str() {
                    "hangup" => {}
                    "transfer" => {
                        if !self.fallback.transfer_target.starts_with("sip:")
                            && !self.fallback.transfer_target.starts_with("sips:")
                        {
                            return Err(invalid(
                                "bot.fallback.transfer_target",
                                "must be a sip: or sips: URI when bot.fallback.then = \"transfer\"",
                            ));
                        }
                    }
                    other => {
                        return Err(invalid(
                            "bot.fallback.then",
                            format!("unknown value `{other}` (hangup, transfer)"),
                        ))
                    }
                }
            }
            other => {
                return Err(invalid(
                    "bot.on_failure",
                    format!("unknown value `{other}` (reject, fallback)"),
                ))
            }
        }
        if self.kind == "grpc" {
            let g = &self.grpc;
            let scheme_ok = g.endpoint.starts_with("http://") || g.endpoint.starts_with("https://");
            if !scheme_ok || g.endpoint.parse::<tonic::transport::Uri>().is_err() {
                return Err(invalid(
                    "bot.grpc.endpoint",
                    "must be an http:// or https:// URI (e.g. http://127.0.0.1:50051)",
                ));
            }
            if !g.tls_ca.is_empty() && !Path::new(&g.tls_ca).is_file() {
                return Err(invalid(
                    "bot.grpc.tls_ca",
                    format!("file {} not found", g.tls_ca),
                ));
            }
        }
        self.twilio.validate(self.kind == "twilio")?;
        // Checked whatever the kind, so a bad value never waits for the kind to change.
        if !matches!(self.grpc.audio_rate, 8000 | 16000) {
            return Err(invalid("bot.grpc.audio_rate", "must be 8000 or 16000"));
        }
        if !matches!(self.grpc.audio_source.as_str(), "received" | "processed") {
            return Err(invalid(
                "bot.grpc.audio_source",
                format!(
                    "{:?}: must be \"received\" or \"processed\"",
                    self.grpc.audio_source
                ),
            ));
        }
        for (name, value) in &self.grpc.metadata {
            let name_ok = name
                .parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>()
                .is_ok()
                && !name.ends_with("-bin");
            if !name_ok
                || value
                    .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                    .is_err()
            {
                return Err(invalid(
                    "bot.grpc.metadata",
                    format!(
                        "`{name}`: names must be lower-case ASCII tokens, values printable ASCII"
                    ),
                ));
            }
        }
        for name in &self.grpc.metadata_headers {
            if name
                .to_ascii_lowercase()
                .parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>()
                .is_err()
            {
                return Err(invalid(
                    "bot.grpc.metadata_headers",
                    format!("`{name}` is not a valid header name"),
                ));
            }
        }
        Ok(())
    }
}

fn parse_mode(mode: &str) -> Result<media::policy::BargeInMode, ConfigError> {
    match mode {
        "immediate" => Ok(media::policy::BargeInMode::Immediate),
        "pause" => Ok(media::policy::BargeInMode::Pause),
        "bot_decides" => Ok(media::policy::BargeInMode::BotDecides),
        other => Err(invalid(
            "bargein.mode",
            format!("unknown mode `{other}` (immediate, pause, bot_decides)"),
        )),
    }
}

/// The config key of a policy field.
fn policy_key(field: &str) -> &'static str {
    match field {
        "mode" => "bargein.mode",
        "threshold" => "bargein.threshold",
        "min_speech_ms" => "bargein.min_speech_ms",
        "min_silence_ms" => "bargein.min_silence_ms",
        "pause_onset_ms" => "bargein.pause_onset_ms",
        "decision_ms" => "bargein.decision_ms",
        "echo_gate_threshold" => "bargein.echo_gate_threshold",
        _ => "bargein",
    }
}

fn parse_codec(name: &str) -> Option<sip::sdp::Codec> {
    match name.to_ascii_uppercase().as_str() {
        "PCMU" => Some(sip::sdp::Codec::Pcmu),
        "PCMA" => Some(sip::sdp::Codec::Pcma),
        _ => None,
    }
}

/// The signalling layer's codec name → the media layer's codec (the crates stay apart).
pub fn media_codec(codec: sip::sdp::Codec) -> media::g711::Codec {
    match codec {
        sip::sdp::Codec::Pcmu => media::g711::Codec::Pcmu,
        sip::sdp::Codec::Pcma => media::g711::Codec::Pcma,
    }
}

#[cfg(test)]
mod tests;
