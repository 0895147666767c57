use super::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documented default, with paths made absolute so tests run from any directory.
fn default_config() -> Config {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("deploy/gateway.toml")).unwrap();
    let raw = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .unwrap();
    let mut cfg: Config = raw.try_deserialize().unwrap();
    cfg.bot.demo.prompt = root.join(&cfg.bot.demo.prompt);
    cfg.bot.demo.reply = root.join(&cfg.bot.demo.reply);
    cfg.bot.fallback.prompt = root.join(&cfg.bot.fallback.prompt);
    cfg
}

fn expect_key(cfg: &Config, key: &str) {
    match cfg.validate() {
        Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected an error naming {key}, got {other:?}"),
    }
}

#[test]
fn documented_default_is_valid() {
    let cfg = default_config();
    cfg.validate().unwrap();
    assert_eq!(cfg.bargein.threshold, 0.55);
    assert_eq!(cfg.bargein.min_speech_ms, 200);
    assert_eq!(cfg.bargein.min_silence_ms, 400);
    let policy = cfg.bargein_config().unwrap();
    assert_eq!(policy.mode, media::policy::BargeInMode::Pause);
    assert!(cfg.bargein.noise_suppression && cfg.bargein.echo_cancellation);
    assert_eq!(cfg.sdp_codecs().len(), 2);
}

#[test]
fn bad_values_name_their_key() {
    let mut c = default_config();
    c.calls.record_dir = repo_root().join("README.md");
    expect_key(&c, "calls.record_dir");
    c.calls.record_dir = repo_root().join("no-such-dir");
    expect_key(&c, "calls.record_dir");
    c.calls.record_dir = std::env::temp_dir();
    c.validate().unwrap();
    let mut c = default_config();
    c.sip.t2_ms = 100;
    expect_key(&c, "sip.t2_ms");
    let mut c = default_config();
    c.media.rtp_port_min = 20001;
    expect_key(&c, "media.rtp_port_min");
    let mut c = default_config();
    c.media.rtp_port_max = 100;
    expect_key(&c, "media.rtp_port_max");
    let mut c = default_config();
    c.media.codecs = vec!["G729".into()];
    expect_key(&c, "media.codecs");
    let mut c = default_config();
    c.bargein.threshold = 1.5;
    expect_key(&c, "bargein.threshold");
    let mut c = default_config();
    c.bargein.min_speech_ms = 0;
    expect_key(&c, "bargein.min_speech_ms");
    let mut c = default_config();
    c.bot.kind = "carrier-pigeon".into();
    expect_key(&c, "bot.kind");
    let mut c = default_config();
    c.bot.demo.prompt = "/nonexistent.wav".into();
    expect_key(&c, "bot.demo.prompt");
    let mut c = default_config();
    c.sip.listen = "0.0.0.0:5060".parse().unwrap();
    expect_key(&c, "sip.advertised_ip");
    c.sip.advertised_ip = "192.0.2.10".into();
    c.validate().unwrap();
    let mut c = default_config();
    c.bargein.mode = "sometimes".into();
    expect_key(&c, "bargein.mode");
    let mut c = default_config();
    c.bargein.pause_onset_ms = 500; // above min_speech_ms
    expect_key(&c, "bargein.pause_onset_ms");
    let mut c = default_config();
    c.bargein.decision_ms = 1;
    expect_key(&c, "bargein.decision_ms");
    let mut c = default_config();
    c.vad.workers = 0;
    expect_key(&c, "vad.workers");
    let mut c = default_config();
    c.log.level = "[[[".into();
    expect_key(&c, "log.level");
}

#[test]
fn unknown_keys_and_missing_files_are_rejected() {
    let dir = std::env::temp_dir().join(format!("gwcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo_root().join("deploy/gateway.toml")).unwrap();
    let path = dir.join("typo.toml");
    std::fs::write(&path, text.replace("min_speech_ms", "min_speach_ms")).unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("min_speach_ms") || err.contains("min_speech_ms"),
        "{err}"
    );
    let err = Config::load(&dir.join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found"), "{err}");
    std::fs::write(&path, "[sip\nlisten=").unwrap();
    assert!(Config::load(&path).is_err());
}

#[test]
fn bot_keys_are_validated_with_their_names() {
    let grpc = || {
        let mut c = default_config();
        c.bot.kind = "grpc".into();
        c
    };
    grpc().validate().unwrap();
    let mut c = grpc();
    c.bot.grpc.endpoint = "127.0.0.1:50051".into();
    expect_key(&c, "bot.grpc.endpoint");
    let mut c = grpc();
    c.bot.grpc.endpoint = "ftp://bot".into();
    expect_key(&c, "bot.grpc.endpoint");
    let mut c = grpc();
    c.bot.grpc.tls_ca = "/nonexistent/ca.pem".into();
    expect_key(&c, "bot.grpc.tls_ca");
    let mut c = default_config();
    c.bot.grpc.audio_rate = 44_100;
    expect_key(&c, "bot.grpc.audio_rate");
    let mut c = default_config();
    c.bot.grpc.audio_source = "cleaned".into();
    expect_key(&c, "bot.grpc.audio_source");
    // Only a gRPC bot that asks for it gets the processed audio.
    let mut c = grpc();
    assert!(!c.bot.wants_processed_audio());
    assert!(!c.pipeline_config(&c.bot).deliver_audio);
    c.bot.grpc.audio_source = "processed".into();
    assert!(c.bot.wants_processed_audio());
    assert!(c.pipeline_config(&c.bot).deliver_audio);
    c.bot.kind = "demo".into();
    assert!(!c.bot.wants_processed_audio());
    let mut c = default_config();
    c.bot.grpc.metadata.insert("Bad Name".into(), "v".into());
    expect_key(&c, "bot.grpc.metadata");
    let mut c = default_config();
    c.bot
        .grpc
        .metadata
        .insert("x-ok".into(), "bad\nvalue".into());
    expect_key(&c, "bot.grpc.metadata");
    let mut c = default_config();
    c.bot.grpc.metadata_headers = vec!["bad header".into()];
    expect_key(&c, "bot.grpc.metadata_headers");
    let mut c = default_config();
    c.bot.connect_timeout_ms = 0;
    expect_key(&c, "bot.connect_timeout_ms");
    let mut c = default_config();
    c.bot.stall_timeout_ms = 100_000;
    expect_key(&c, "bot.stall_timeout_ms");
    let mut c = default_config();
    c.bot.transfer_timeout_ms = 100;
    expect_key(&c, "bot.transfer_timeout_ms");
    let mut c = default_config();
    c.bot.max_buffered_s = 0;
    expect_key(&c, "bot.max_buffered_s");
    let mut c = default_config();
    c.bot.on_failure = "retry".into();
    expect_key(&c, "bot.on_failure");

    let fallback = || {
        let mut c = default_config();
        c.bot.on_failure = "fallback".into();
        c
    };
    fallback().validate().unwrap();
    let mut c = fallback();
    c.bot.fallback.prompt = "/nonexistent.wav".into();
    expect_key(&c, "bot.fallback.prompt");
    let mut c = fallback();
    c.bot.fallback.then = "wait".into();
    expect_key(&c, "bot.fallback.then");
    let mut c = fallback();
    c.bot.fallback.then = "transfer".into();
    expect_key(&c, "bot.fallback.transfer_target");
    c.bot.fallback.transfer_target = "sip:agents@pbx.example.com".into();
    c.validate().unwrap();
}
