//! The gateway's command line and configuration, as an operator meets them: `--check-config`,
//! environment overrides, errors that name the key, and the refusal to start without the
//! VAD runtime.

use std::process::{Command, Output};

use bargein_e2e::run::{gateway_bin, repo_root};

fn check(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(gateway_bin());
    cmd.current_dir(repo_root()).args(args);
    // Start from a clean slate: no GW__ variable from the test's own environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("GW__") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the gateway binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code().unwrap_or(-1), text)
}

#[test]
fn documented_default_passes_check_config() {
    let (code, out) = check(&[], &["--config", "deploy/gateway.toml", "--check-config"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn environment_overrides_are_validated_and_name_the_key() {
    for (key, value, named) in [
        ("GW__BARGEIN__THRESHOLD", "1.5", "bargein.threshold"),
        ("GW__BARGEIN__MIN_SPEECH_MS", "0", "bargein.min_speech_ms"),
        ("GW__MEDIA__RTP_PORT_MIN", "20001", "media.rtp_port_min"),
        ("GW__MEDIA__CODECS", "G729", "media.codecs"),
        ("GW__SIP__LISTEN", "not-an-address", "listen"),
        ("GW__SIP__T1_MS", "abc", "t1_ms"),
        ("GW__BOT__KIND", "carrier-pigeon", "bot.kind"),
    ] {
        let (code, out) = check(&[(key, value)], &["--check-config"]);
        assert_eq!(code, 2, "{key}={value} must be rejected: {out}");
        assert!(
            out.contains(named),
            "{key}={value}: error must name {named}: {out}"
        );
    }
    // A valid override is accepted.
    let (code, out) = check(&[("GW__BARGEIN__THRESHOLD", "0.6")], &["--check-config"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = check(&[("GW__MEDIA__CODECS", "PCMA,PCMU")], &["--check-config"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_files_and_arguments_are_clean_errors() {
    let (code, out) = check(&[], &["--config", "/nonexistent/gw.toml", "--check-config"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not found"), "{out}");
    let (code, out) = check(&[], &["--frobnicate"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("usage"), "{out}");
    let dir = std::env::temp_dir().join(format!("gw-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let typo = dir.join("typo.toml");
    let text = std::fs::read_to_string(repo_root().join("deploy/gateway.toml")).unwrap();
    std::fs::write(&typo, text.replace("min_silence_ms", "min_silense_ms")).unwrap();
    let (code, out) = check(&[], &["--config", typo.to_str().unwrap(), "--check-config"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("min_silense_ms") || out.contains("min_silence_ms"),
        "{out}"
    );
}

#[test]
fn refuses_to_start_without_the_vad_runtime_and_names_the_setup_command() {
    for (key, value) in [
        ("GW__VAD__MODEL", "/nonexistent/silero_vad.onnx"),
        (
            "GW__VAD__ONNXRUNTIME_LIBRARY",
            "/nonexistent/libonnxruntime.so",
        ),
    ] {
        let (code, out) = check(&[(key, value)], &[]);
        assert_eq!(code, 3, "{out}");
        assert!(out.contains("setup-runtime.sh"), "{out}");
    }
}
