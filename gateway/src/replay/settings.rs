//! The configuration a replay runs with: the gateway's TOML file, its `GW__SECTION__KEY`
//! environment overrides (as the live gateway would see them), then the `--set key=value`
//! overrides of this run, validated by the same [`Config::validate`] as at start-up.
//!
//! The file and environment layers repeat what [`Config::load`] does because the `--set`
//! layer has to sit on top of them before deserialising, and `load` offers no hook for it.

use std::path::Path;

use ::config::{Environment, File, FileFormat};

use crate::config::Config;

/// One `--set section.key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub key: String,
    pub value: String,
}

impl Override {
    /// Parses `section.key=value`; the key must look like a TOML dotted key.
    pub fn parse(text: &str) -> Result<Override, String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("--set `{text}`: expected section.key=value"))?;
        let key = key.trim();
        let well_formed = key.contains('.')
            && key.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if !well_formed {
            return Err(format!(
                "--set `{text}`: `{key}` is not a key; keys are section.key as in the TOML \
                 file, e.g. bargein.threshold"
            ));
        }
        Ok(Override {
            key: key.to_string(),
            value: value.trim().to_string(),
        })
    }

    /// The override as a one-line TOML document. A value that is valid TOML (number, bool,
    /// list, quoted string) is taken as written; anything else (`info`, a path) as a string.
    fn as_toml(&self) -> String {
        let literal = format!("{} = {}", self.key, self.value);
        let parses = ::config::Config::builder()
            .add_source(File::from_str(&literal, FileFormat::Toml))
            .build()
            .is_ok();
        if parses {
            return literal;
        }
        let escaped = self.value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{} = \"{escaped}\"", self.key)
    }
}

/// Loads `path`, applies environment overrides and `overrides`, validates.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Config, String> {
    if !path.is_file() {
        return Err(format!(
            "config: file {} not found (pass --config PATH)",
            path.display()
        ));
    }
    let base = ::config::Config::builder()
        .add_source(File::from(path).format(FileFormat::Toml))
        .add_source(
            Environment::with_prefix("GW")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("media.codecs")
                .try_parsing(true),
        );
    // Only keys the file defines may be overridden: a typo must not silently do nothing.
    let known = base.clone().build().map_err(|e| format!("config: {e}"))?;
    let mut builder = base;
    for o in overrides {
        match known.get::<::config::Value>(&o.key) {
            Ok(value) if !matches!(value.kind, ::config::ValueKind::Table(_)) => {}
            _ => {
                return Err(format!(
                    "--set: unknown config key `{}` (keys are section.key as in {}, e.g. \
                     bargein.threshold)",
                    o.key,
                    path.display()
                ))
            }
        }
        builder = builder.add_source(File::from_str(&o.as_toml(), FileFormat::Toml));
    }
    let raw = builder.build().map_err(|e| format!("config: {e}"))?;
    let cfg: Config = raw.try_deserialize().map_err(|e| format!("config: {e}"))?;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
    }

    /// The default config, with the demo prompts made absolute so validation passes from
    /// the crate directory the tests run in.
    fn load_default(extra: &[&str]) -> Result<Config, String> {
        let mut sets: Vec<Override> = [
            format!(
                "bot.demo.prompt={}",
                repo_file("deploy/prompts/prompt.wav").display()
            ),
            format!(
                "bot.demo.reply={}",
                repo_file("deploy/prompts/reply.wav").display()
            ),
        ]
        .iter()
        .map(|s| Override::parse(s).unwrap())
        .collect();
        for s in extra {
            sets.push(Override::parse(s)?);
        }
        load(&repo_file("deploy/gateway.toml"), &sets)
    }

    #[test]
    fn overrides_apply_with_their_types() {
        let cfg = load_default(&[
            "bargein.threshold=0.7",
            "bargein.noise_suppression=false",
            "bargein.min_speech_ms = 300",
            "log.level=debug",
            "media.codecs=[\"PCMA\"]",
        ])
        .unwrap();
        assert_eq!(cfg.bargein.threshold, 0.7);
        assert!(!cfg.bargein.noise_suppression);
        assert_eq!(cfg.bargein.min_speech_ms, 300);
        assert_eq!(cfg.log.level, "debug");
        assert_eq!(cfg.media.codecs, vec!["PCMA".to_string()]);
    }

    #[test]
    fn bad_overrides_name_the_key() {
        let err = load_default(&["bargein.threshold=2"]).unwrap_err();
        assert!(err.contains("bargein.threshold"), "{err}");
        let err = load_default(&["bargein.treshold=0.5"]).unwrap_err();
        assert!(
            err.contains("unknown config key `bargein.treshold`"),
            "{err}"
        );
        let err = load_default(&["bargein=0.5"]).unwrap_err();
        assert!(err.contains("not a key"), "{err}");
        let err = load_default(&["bargein"]).unwrap_err();
        assert!(err.contains("section.key=value"), "{err}");
        // A whole section cannot be replaced by a value.
        let err = load_default(&["bot.demo=1"]).unwrap_err();
        assert!(err.contains("unknown config key `bot.demo`"), "{err}");
        let err = load_default(&["bargein.threshold=loud"]).unwrap_err();
        assert!(err.contains("threshold"), "{err}");
        let err = load(Path::new("/nonexistent/gw.toml"), &[]).unwrap_err();
        assert!(err.contains("not found"), "{err}");
    }
}
