use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// deploy/gateway.toml + `extra` TOML (routes, routing keys), paths made absolute.
fn config(extra: &str) -> Result<Config, ConfigError> {
    let root = root();
    let mut text = std::fs::read_to_string(root.join("deploy/gateway.toml")).unwrap();
    let prompt = root.join("deploy/prompts/prompt.wav");
    let reply = root.join("deploy/prompts/reply.wav");
    text.push_str(
        &extra
            .replace("$PROMPT", &prompt.display().to_string())
            .replace("$REPLY", &reply.display().to_string()),
    );
    // [routing] keys given in `extra` replace the documented ones.
    let raw = ::config::Config::builder()
        .add_source(::config::File::from_str(&text, ::config::FileFormat::Toml))
        .build()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    let mut cfg: Config = raw
        .try_deserialize()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    cfg.bot.demo.prompt = root.join(&cfg.bot.demo.prompt);
    cfg.bot.demo.reply = root.join(&cfg.bot.demo.reply);
    cfg.bot.fallback.prompt = root.join(&cfg.bot.fallback.prompt);
    cfg.validate()?;
    Ok(cfg)
}

fn router(extra: &str) -> Router {
    Router::from_config(&config(extra).unwrap()).unwrap()
}

fn expect_key(extra: &str, key: &str) {
    match config(extra) {
        Err(ConfigError::Invalid { key: k, problem }) => assert_eq!(k, key, "{problem}"),
        other => panic!("expected an error naming {key}, got {other:?}"),
    }
}

fn facts<'a>(
    to_user: Option<&'a str>,
    source: &str,
    headers: &'a [(String, String)],
) -> CallFacts<'a> {
    CallFacts {
        to_user,
        source: source.parse::<IpAddr>().unwrap(),
        headers,
    }
}

const TWO_ROUTES: &str = r#"
[[routes]]
name = "support"
to_prefix = "800"
source = ["10.1.0.0/16", "192.0.2.7"]
[routes.bot]
kind = "twilio"
twilio = { url = "ws://127.0.0.1:9/media", parameters = { queue = "support" } }
[routes.bargein]
mode = "immediate"
min_speech_ms = 300

[[routes]]
name = "sales"
to_regex = "^9[0-9]{3}$"
bot = { demo = { prompt = "$REPLY", reply = "$PROMPT" } }

[[routes]]
name = "acme-trunk"
header = "X-Trunk: acme"

[[routes]]
name = "by-name-only"
"#;

#[test]
fn first_matching_route_wins_and_all_conditions_must_hold() {
    let r = router(TWO_ROUTES);
    let none: Vec<(String, String)> = Vec::new();
    assert_eq!(
        r.select(&facts(Some("8001"), "10.1.2.3", &none)),
        Decision::Route(0)
    );
    assert_eq!(
        r.select(&facts(Some("8001"), "192.0.2.7", &none)),
        Decision::Route(0)
    );
    // Prefix right, source wrong: not support; nothing else matches → default.
    assert_eq!(
        r.select(&facts(Some("8001"), "10.2.0.1", &none)),
        Decision::Default
    );
    assert_eq!(
        r.select(&facts(Some("9123"), "203.0.113.1", &none)),
        Decision::Route(1)
    );
    assert_eq!(
        r.select(&facts(Some("91234"), "203.0.113.1", &none)),
        Decision::Default
    );
    assert_eq!(r.select(&facts(None, "10.1.2.3", &none)), Decision::Default);
    let trunk = vec![("x-trunk".to_string(), " acme".to_string())];
    assert_eq!(
        r.select(&facts(Some("5"), "203.0.113.1", &trunk)),
        Decision::Route(2)
    );
    let other = vec![("X-Trunk".to_string(), "acme2".to_string())];
    assert_eq!(
        r.select(&facts(Some("5"), "203.0.113.1", &other)),
        Decision::Default
    );
    // IPv4-mapped IPv6 sources match IPv4 CIDRs.
    assert_eq!(
        r.select(&facts(Some("8001"), "::ffff:10.1.0.9", &none)),
        Decision::Route(0)
    );
    // A route without conditions is only reachable by name.
    assert_eq!(r.target("by-name-only"), Some(Target::Route(3)));
}

#[test]
fn route_overlays_replace_only_the_keys_they_set() {
    let cfg = config(TWO_ROUTES).unwrap();
    let r = Router::from_config(&cfg).unwrap();
    let support = &r.routes()[0].config;
    assert_eq!(support.bot.kind, "twilio");
    assert_eq!(support.bot.twilio.url, "ws://127.0.0.1:9/media");
    assert_eq!(
        support
            .bot
            .twilio
            .parameters
            .get("queue")
            .map(String::as_str),
        Some("support")
    );
    assert!(
        !support.bot.twilio.barge_in_event,
        "unset keys keep the top level's value"
    );
    assert_eq!(support.bargein.mode, "immediate");
    assert_eq!(support.bargein.min_speech_ms, 300);
    assert_eq!(support.bargein.threshold, cfg.bargein.threshold);
    assert_eq!(support.bot.connect_timeout_ms, cfg.bot.connect_timeout_ms);
    let sales = &r.routes()[1].config;
    assert_eq!(sales.bot.kind, "demo");
    assert!(sales.bot.demo.prompt.ends_with("reply.wav"));
    assert_eq!(sales.bargein.mode, cfg.bargein.mode);
    assert!(sales.routes.is_empty());
}

#[test]
fn no_match_code_rejects_unrouted_calls() {
    let r = router("\n[[routes]]\nname = \"a\"\nto_prefix = \"1\"\n");
    assert_eq!(
        r.select(&facts(Some("2"), "127.0.0.1", &[])),
        Decision::Default
    );
    let mut cfg = config("\n[[routes]]\nname = \"a\"\nto_prefix = \"1\"\n").unwrap();
    cfg.routing.no_match_code = 404;
    let r = Router::from_config(&cfg).unwrap();
    assert_eq!(
        r.select(&facts(Some("2"), "127.0.0.1", &[])),
        Decision::Reject {
            code: 404,
            reason: "Not Found".into()
        }
    );
    assert_eq!(
        r.select(&facts(Some("1"), "127.0.0.1", &[])),
        Decision::Route(0)
    );
}

#[test]
fn bad_routes_name_their_key() {
    let route = |body: &str| {
        format!("\n[[routes]]\nname = \"ok\"\nto_prefix = \"1\"\n\n[[routes]]\n{body}\n")
    };
    expect_key(
        &route("name = \"x\"\nto_regex = \"([0-9\""),
        "routes[1].to_regex",
    );
    expect_key(
        &route("name = \"x\"\nsource = [\"10.0.0.0/33\"]"),
        "routes[1].source",
    );
    expect_key(
        &route("name = \"x\"\nsource = [\"not-an-ip\"]"),
        "routes[1].source",
    );
    expect_key(
        &route("name = \"x\"\nheader = \"no colon\""),
        "routes[1].header",
    );
    expect_key(&route("name = \"ok\"\nto_prefix = \"2\""), "routes[1].name");
    expect_key(&route("name = \"default\""), "routes[1].name");
    expect_key(
        &route("name = \"x\"\nto_prefix = \"\""),
        "routes[1].to_prefix",
    );
    expect_key(
        &route("name = \"x\"\nbot = { kind = \"carrier-pigeon\" }"),
        "routes[1].bot.kind",
    );
    expect_key(
        &route("name = \"x\"\nbot = { kind = \"twilio\", twilio = { url = \"http://x\" } }"),
        "routes[1].bot.twilio.url",
    );
    expect_key(
        &route("name = \"x\"\nbot = { demo = { prompt = \"/nonexistent.wav\" } }"),
        "routes[1].bot.demo.prompt",
    );
    expect_key(
        &route("name = \"x\"\nbargein = { threshold = 2.0 }"),
        "routes[1].bargein.threshold",
    );
    // Typos in an overlay are caught like typos at the top level.
    expect_key(
        &route("name = \"x\"\nbargein = { treshold = 0.5 }"),
        "routes[1].bargein",
    );
}

#[test]
fn routing_keys_are_validated() {
    let mut cfg = config("").unwrap();
    cfg.routing.no_match_code = 200;
    assert_key(&cfg, "routing.no_match_code");
    let mut cfg = config("").unwrap();
    cfg.routing.hook.url = "https://router.example/route".into();
    assert_key(&cfg, "routing.hook.url");
    let mut cfg = config("").unwrap();
    cfg.routing.hook.timeout_ms = 0;
    assert_key(&cfg, "routing.hook.timeout_ms");
    for bad in ["nope", "reject:200", "reject:abc"] {
        let mut cfg = config("").unwrap();
        cfg.routing.hook.fallback = bad.into();
        assert_key(&cfg, "routing.hook.fallback");
    }
    let mut cfg = config(TWO_ROUTES).unwrap();
    cfg.routing.hook.fallback = "sales".into();
    cfg.routing.hook.url = "http://127.0.0.1:8/route".into();
    let r = Router::from_config(&cfg).unwrap();
    assert_eq!(r.hook_fallback(), &Target::Route(1));
    cfg.routing.hook.fallback = "reject:503".into();
    let r = Router::from_config(&cfg).unwrap();
    assert_eq!(r.hook_fallback(), &Target::Reject(503));
}

fn assert_key(cfg: &Config, key: &str) {
    match cfg.validate() {
        Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected an error naming {key}, got {other:?}"),
    }
}

#[test]
fn hook_request_carries_the_call_details() {
    let r = router(TWO_ROUTES);
    let info = crate::bot::CallInfo {
        call_id: "c1".into(),
        from: "<sip:a@x>;tag=1".into(),
        to: "<sip:8001@y>".into(),
        to_user: Some("8001".into()),
        p_asserted_identity: Some("<sip:+1555@x>".into()),
        diversion: vec!["<sip:1@y>".into()],
        headers: vec![("X-Trunk".into(), "acme".into())],
    };
    let source = "10.1.0.1:5060".parse().unwrap();
    let body = hook_request(&info, source, &Decision::Route(0), &r);
    assert_eq!(
        body,
        json!({
            "call_id": "c1",
            "from": "<sip:a@x>;tag=1",
            "to": "<sip:8001@y>",
            "to_user": "8001",
            "p_asserted_identity": "<sip:+1555@x>",
            "diversion": ["<sip:1@y>"],
            "source": "10.1.0.1:5060",
            "headers": [{"name": "X-Trunk", "value": "acme"}],
            "matched_route": "support",
        })
    );
    let body = hook_request(
        &crate::bot::CallInfo::default(),
        source,
        &Decision::Default,
        &r,
    );
    assert_eq!(body["matched_route"], Value::Null);
    assert_eq!(body["to_user"], Value::Null);
}

#[test]
fn hook_answers_pick_a_route_overlay_a_bot_or_reject() {
    let r = router(TWO_ROUTES);
    let parse = |s: &str| parse_hook_answer(s.as_bytes(), &r);
    assert_eq!(
        parse(r#"{"route":"sales"}"#),
        Ok(HookAnswer::Route {
            target: Target::Route(1),
            bot: None
        })
    );
    assert_eq!(
        parse(r#"{}"#),
        Ok(HookAnswer::Route {
            target: Target::Default,
            bot: None
        })
    );
    assert_eq!(
        parse(r#"{"route":"default","bot":{"twilio":{"url":"ws://h/x"}}}"#),
        Ok(HookAnswer::Route {
            target: Target::Default,
            bot: Some(json!({"twilio": {"url": "ws://h/x"}}))
        })
    );
    assert_eq!(
        parse(r#"{"reject":{"code":486,"reason":"Busy Here"}}"#),
        Ok(HookAnswer::Reject {
            code: 486,
            reason: "Busy Here".into()
        })
    );
    // A missing or unprintable reason gets the standard phrase.
    assert_eq!(
        parse(r#"{"reject":{"code":403,"reason":"a\r\nb"}}"#),
        Ok(HookAnswer::Reject {
            code: 403,
            reason: "Forbidden".into()
        })
    );
    for bad in [
        "not json",
        r#"{"route":"nowhere"}"#,
        r#"{"route":"reject:486"}"#,
        r#"{"reject":{"code":200}}"#,
        r#"{"reject":{}}"#,
        r#"{"route":"sales","bot":"twilio"}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn hook_bot_overlays_are_validated() {
    let cfg = config(TWO_ROUTES).unwrap();
    let ok = overlaid_config(
        &cfg,
        Some(&json!({"kind": "twilio", "twilio": {"url": "ws://h:1/x"}})),
        None,
        "hook answer: ",
    )
    .unwrap();
    assert_eq!(ok.bot.kind, "twilio");
    match overlaid_config(
        &cfg,
        Some(&json!({"kind": "twilio"})),
        None,
        "hook answer: ",
    ) {
        Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "hook answer: bot.twilio.url"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cidr_matching() {
    let c = Cidr::parse("192.0.2.0/24").unwrap();
    assert!(c.contains("192.0.2.255".parse().unwrap()));
    assert!(!c.contains("192.0.3.0".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    let v6 = Cidr::parse("2001:db8::/32").unwrap();
    assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
    assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    assert!(!v6.contains("192.0.2.1".parse().unwrap()));
    assert!(Cidr::parse("2001:db8::/129").is_none());
    assert!(Cidr::parse("10.0.0.1/x").is_none());
}
