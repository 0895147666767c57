//! Call routing: `[[routes]]` by dialled number pick different bots, unrouted calls get the
//! configured SIP code, and the HTTP routing hook picks a route, rejects, or times out to the
//! fallback route. The hook is a tiny HTTP server in the test (`src/routing_hook.rs`).

use std::path::PathBuf;
use std::time::Duration;

use bargein_e2e::flows::{expect_reports, expect_success, summarize};
use bargein_e2e::routing_hook::{HookReply, HookServer};
use bargein_e2e::routing_invite::invite_status;
use bargein_e2e::run::repo_root;
use bargein_e2e::twilio_peer::{TwilioPeer, TwilioScript};
use bargein_e2e::{Gateway, PeerReport, Sipp, TestRun};
use serde_json::json;

/// Two demo routes: `long` (the 16 s prompt) for 100…, `short` (the 3.3 s reply WAV as its
/// prompt) for 2xx; `[routing]` lines are replaced by `routing`.
fn write_config(run: &TestRun, routing: &str) -> PathBuf {
    let base = std::fs::read_to_string(repo_root().join("deploy/gateway.toml"))
        .expect("deploy/gateway.toml");
    let start = base.find("[routing]").expect("[routing] section");
    let end = base.find("[calls]").expect("[calls] section");
    let text = format!(
        "{}{routing}\n\n{}\n{}",
        &base[..start],
        &base[end..],
        r#"
[[routes]]
name = "long"
to_prefix = "100"

[[routes]]
name = "short"
to_regex = "^2[0-9]{2}$"
bot = { demo = { prompt = "deploy/prompts/reply.wav" } }
"#
    );
    let path = run.path("gateway-routes.toml");
    std::fs::write(&path, text).expect("write the test config");
    path
}

/// One call to `user` (SIPp `-s`), held `hold_ms`, silent caller.
fn call(run: &TestRun, gw: &Gateway, user: &str, hold_ms: u64) -> PeerReport {
    let sipp = Sipp::new(run, "uac_call_peer.xml", gw.sip_addr())
        .arg("-s")
        .arg(user)
        .hold_ms(hold_ms)
        .peer_args(&format!("--duration {}", hold_ms as f64 / 1000.0 + 0.3))
        .timeout(Duration::from_millis(hold_ms) + Duration::from_secs(20))
        .run();
    expect_success(&sipp, gw);
    expect_reports(&sipp, gw).remove(0)
}

/// `route=<name>` of every "call routed" line, in order.
fn routed(gw: &Gateway) -> Vec<String> {
    std::fs::read_to_string(gw.stderr_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("call routed"))
        .filter_map(|l| {
            let at = l.find("route=")? + "route=".len();
            let value = l[at..].split_whitespace().next()?;
            Some(value.trim_matches('"').to_string())
        })
        .collect()
}

/// The long prompt is still playing at 3–4 s; the short one has ended by then.
fn assert_long(r: &PeerReport) {
    let why = summarize(r);
    assert!(
        r.voiced_ms_between(0.0, 1000.0) >= 500.0,
        "no prompt: {why}"
    );
    assert!(
        r.voiced_ms_between(3800.0, 4600.0) >= 400.0,
        "expected the long prompt: {why}"
    );
}

fn assert_short(r: &PeerReport) {
    let why = summarize(r);
    assert!(
        r.voiced_ms_between(0.0, 1000.0) >= 500.0,
        "no prompt: {why}"
    );
    assert_eq!(
        r.voiced_ms_between(3800.0, 4600.0),
        0.0,
        "expected the short prompt: {why}"
    );
}

#[test]
fn routes_by_dialled_number_and_rejects_unrouted_calls() {
    let run = TestRun::new("routing-static");
    let config = write_config(
        &run,
        "[routing]\nno_match_code = 404\n\n[routing.hook]\nurl = \"\"\ntimeout_ms = 500\nfallback = \"default\"",
    );
    let mut gw = Gateway::start_with_config(&run, &config, &[]);
    assert_long(&call(&run, &gw, "1001", 4700));
    assert_short(&call(&run, &gw, "234", 4700));
    assert_eq!(invite_status(&gw, "999"), (404, "Not Found".to_string()));
    assert_eq!(routed(&gw), ["long", "short"]);
    gw.assert_healthy();
}

#[test]
fn hook_picks_a_route_rejects_and_times_out_to_the_fallback() {
    let run = TestRun::new("routing-hook");
    // For 500 the hook overlays a Twilio bot, with its own URL and parameters, on `default`.
    let twilio = TwilioPeer::start(TwilioScript {
        segments: vec![(1000, "hi".to_string())],
        ..Default::default()
    });
    let twilio_url = twilio.url();
    let hook = HookServer::start(move |req| match req["to_user"].as_str().unwrap_or("") {
        // Static routing would pick `long` for 100: the hook's answer wins.
        "1001" => HookReply::json(json!({"route": "short"})),
        "300" => HookReply::json(json!({"reject": {"code": 486, "reason": "Busy Here"}})),
        "400" => HookReply {
            delay: Duration::from_millis(1500),
            ..HookReply::json(json!({"route": "long"}))
        },
        "500" => HookReply::json(json!({
            "route": "default",
            "bot": {"kind": "twilio", "twilio": {"url": twilio_url, "parameters": {"campaign": "spring"}}},
        })),
        _ => HookReply::json(json!({"route": "default"})),
    });
    let routing = format!(
        "[routing]\nno_match_code = 0\n\n[routing.hook]\nurl = \"{}\"\ntimeout_ms = 300\nfallback = \"short\"",
        hook.url()
    );
    let config = write_config(&run, &routing);
    let mut gw = Gateway::start_with_config(&run, &config, &[]);

    assert_short(&call(&run, &gw, "1001", 4700));
    assert_eq!(invite_status(&gw, "300"), (486, "Busy Here".to_string()));
    // The hook answers after 1.5 s, the gateway gives up after 300 ms: fallback `short`.
    let r = call(&run, &gw, "400", 2000);
    assert!(
        r.voiced_ms_between(0.0, 1500.0) >= 500.0,
        "{}",
        summarize(&r)
    );
    assert_eq!(routed(&gw), ["short", "short"]);
    let log = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    assert!(
        log.contains("routing hook failed; fallback"),
        "the timeout must be logged\n{}",
        gw.log_tail(30)
    );

    // A CANCEL while the hook thinks: 487 from the UA, and the call task, once the hook
    // answers, connects nothing.
    let sipp = Sipp::new(&run, "uac_cancel.xml", gw.sip_addr())
        .arg("-s")
        .arg("400")
        .timeout(Duration::from_secs(20))
        .run();
    expect_success(&sipp, &gw);
    assert!(
        sipp.messages().contains("SIP/2.0 487"),
        "{}",
        sipp.diagnostics()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(gw.stderr_path())
            .unwrap_or_default()
            .contains("call cancelled while routing")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    assert!(
        log.contains("call cancelled while routing"),
        "{}",
        gw.log_tail(20)
    );
    assert_eq!(
        routed(&gw),
        ["short", "short"],
        "the cancelled call is not routed"
    );

    // A bot chosen per call by the hook: the Twilio bot gets the call and the parameters.
    let r = call(&run, &gw, "500", 2000);
    let log = twilio.finish(Duration::from_secs(5));
    let start = log.events("start");
    let params = start
        .first()
        .map(|s| s.msg["start"]["customParameters"].clone());
    assert_eq!(
        params.as_ref().map(|p| p["campaign"].clone()),
        Some(json!("spring")),
        "{}",
        log.outline()
    );
    assert_eq!(log.marks().len(), 1, "{}", log.outline());
    assert!(
        r.voiced_ms_between(0.0, 1500.0) >= 500.0,
        "{}",
        summarize(&r)
    );
    assert_eq!(routed(&gw), ["short", "short", "default+hook"]);

    // What the hook was told about the first call.
    let reqs = hook.requests();
    assert_eq!(reqs.len(), 5, "{reqs:?}");
    let first = &reqs[0];
    assert_eq!(first["to_user"], "1001");
    assert_eq!(first["matched_route"], "long");
    assert!(first["from"].as_str().unwrap_or("").contains("sipp@"));
    assert!(!first["call_id"].as_str().unwrap_or("").is_empty());
    assert!(first["source"]
        .as_str()
        .unwrap_or("")
        .starts_with("127.0.0.1:"));
    assert!(first["diversion"].is_array() && first["headers"].is_array());
    assert_eq!(reqs[1]["matched_route"], serde_json::Value::Null);
    gw.assert_healthy();
}
