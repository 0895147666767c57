//! Gateway configuration: a TOML file (deploy/gateway.toml documents every key), environment
//! overrides `GW__SECTION__KEY`, validation with errors that name the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
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

#[derive(Clone, Debug, Deserialize)]
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    pub kind: String,
    pub demo: DemoBotConfig,
}

#[derive(Clone, Debug, Deserialize)]
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
                key: policy_key(e.field),
                problem: e.reason,
            })?;
        if self.bot.kind != "demo" {
            return Err(invalid(
                "bot.kind",
                format!("unknown bot kind `{}` (supported: demo)", self.bot.kind),
            ));
        }
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
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid("log.level", "not a valid tracing filter"));
        }
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
    pub fn pipeline_config(&self) -> media::pipeline::PipelineConfig {
        media::pipeline::PipelineConfig {
            echo_cancellation: self.bargein.echo_cancellation,
            noise_suppression: self.bargein.noise_suppression,
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
