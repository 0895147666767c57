//! Bot failures end to end (gRPC bots, and the demo's buffer bound): unreachable, refusing
//! or silent at call start (503, or the fallback prompt then BYE or REFER), killed or hung
//! mid-call (`bot.on_failure`): never a silent open call.

use std::sync::Arc;
use std::time::Duration;

use bargein_e2e::flows::{call_until_gateway_bye, expect_success, summarize};
use bargein_e2e::grpcbot::{
    self, full_log, grpc_overrides, tone_prompt, GrpcBot, Misbehaviour, Script,
};
use bargein_e2e::{Gateway, Sipp, TestRun};

/// Bot unreachable at call start with `on_failure = "reject"`: 503, so a proxy fails over.
#[test]
fn unreachable_bot_is_refused_with_503() {
    let run = TestRun::new("bot_grpc-unreachable_503");
    let endpoint = grpcbot::closed_endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(&endpoint, &[("bot.on_failure", "reject")]),
    );
    let sipp = Sipp::new(&run, "uac_expect_503.xml", gw.sip_addr())
        .timeout(Duration::from_secs(15))
        .run();
    expect_success(&sipp, &gw);
    assert!(
        full_log(&gw).contains("bot unreachable"),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
}

/// Bot unreachable with `on_failure = "fallback"`: answered, the fallback prompt plays, BYE.
#[test]
fn unreachable_bot_with_fallback_plays_the_prompt_then_hangs_up() {
    let run = TestRun::new("bot_grpc-unreachable_fallback");
    let endpoint = grpcbot::closed_endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(
            &endpoint,
            &[
                ("bot.on_failure", "fallback"),
                ("bot.fallback.then", "hangup"),
            ],
        ),
    );
    // The fallback prompt lasts 4.9 s; the BYE must come after it and soon.
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 8.0, None);
    let why = summarize(&r);
    assert!(
        r.voiced_ms_between(0.0, 6000.0) >= 2500.0,
        "fallback prompt not heard: {why}"
    );
    let last = r.last_rx_ms.unwrap_or(0.0);
    assert!(
        (4000.0..=7500.0).contains(&last),
        "BYE not right after the prompt: {why}"
    );
    gw.assert_healthy();
}

/// The bot process dies in the middle of the call: the caller hears the fallback prompt and
/// the gateway hangs up (not a silent open call).
#[test]
fn bot_killed_mid_call_falls_back_to_the_prompt_and_hangs_up() {
    let run = TestRun::new("bot_grpc-killed_mid_call");
    let bot = Arc::new(GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 1000, 8000)),
        ..Default::default()
    }));
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(
            &endpoint,
            &[
                ("bot.on_failure", "fallback"),
                ("bot.fallback.then", "hangup"),
            ],
        ),
    );
    let killer = {
        let bot = bot.clone();
        std::thread::spawn(move || {
            // 2.5 s into the call, after the bot's 1 s prompt has played.
            let start = std::time::Instant::now();
            while bot.calls() == 0 && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(2500));
            bot.kill();
        })
    };
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 10.0, None);
    let _ = killer.join();
    let why = summarize(&r);
    assert!(
        r.voiced_ms_between(0.0, 1500.0) >= 800.0,
        "bot prompt not heard: {why}"
    );
    assert!(
        r.voiced_ms_between(1500.0, 2300.0) <= 100.0,
        "silence expected before the kill: {why}"
    );
    assert!(
        r.voiced_ms_between(2300.0, 9000.0) >= 2500.0,
        "fallback prompt not heard after the kill: {why}"
    );
    assert!(full_log(&gw).contains("bot failed"), "{}", gw.log_tail(40));
    gw.assert_healthy();
}

/// Bot unreachable, `on_failure = "fallback"` with `then = "transfer"`: the fallback prompt
/// plays, then the caller is transferred to `bot.fallback.transfer_target` by REFER.
#[test]
fn unreachable_bot_with_fallback_transfer_refers_the_caller_after_the_prompt() {
    let run = TestRun::new("bot_grpc-fallback_transfer");
    let endpoint = grpcbot::closed_endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(
            &endpoint,
            &[
                ("bot.on_failure", "fallback"),
                ("bot.fallback.then", "transfer"),
                ("bot.fallback.transfer_target", "sip:agent@192.0.2.50"),
            ],
        ),
    );
    let sipp = Sipp::new(&run, "uac_refer.xml", gw.sip_addr())
        .peer_args("--duration 8")
        .timeout(Duration::from_secs(30))
        .run();
    expect_success(&sipp, &gw);
    let r = bargein_e2e::flows::expect_reports(&sipp, &gw).remove(0);
    let why = summarize(&r);
    assert!(
        r.voiced_ms_between(0.0, 5500.0) >= 2500.0,
        "fallback prompt not heard: {why}"
    );
    gw.assert_healthy();
}

/// A bot that hangs (keeps its stream open but stops reading) is a failure like a dead one:
/// after `bot.stall_timeout_ms` without reading, `on_failure = "reject"` ends the call with BYE.
#[test]
fn hung_bot_is_detected_as_stalled_and_the_call_ended() {
    let run = TestRun::new("bot_grpc-stalled");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 1000, 8000)),
        misbehaviour: Misbehaviour::Deaf,
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(
            &endpoint,
            &[
                ("bot.stall_timeout_ms", "1000"),
                ("bot.on_failure", "reject"),
            ],
        ),
    );
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 8.0, None);
    let why = summarize(&r);
    let last = r.last_rx_ms.unwrap_or(0.0);
    assert!(
        (1500.0..=7000.0).contains(&last),
        "BYE not after the stall: {why}"
    );
    let log = full_log(&gw);
    assert!(log.contains("Stalled"), "{}", gw.log_tail(40));
    println!("hung bot: gateway hung up {last:.0} ms into the call");
    gw.assert_healthy();
}

/// Two more ways a bot can be unusable at call start, both refused with 503: the bot answers
/// the call with a gRPC error status, or the endpoint accepts TCP but never speaks HTTP/2
/// (refused after `bot.connect_timeout_ms`, not left ringing).
#[test]
fn refusing_or_silent_bots_get_503() {
    let run = TestRun::new("bot_grpc-refusing_bot");
    let bot = GrpcBot::start(Script {
        refuse: Some(tonic::Code::Unavailable),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let sipp = Sipp::new(&run, "uac_expect_503.xml", gw.sip_addr())
        .timeout(Duration::from_secs(15))
        .run();
    expect_success(&sipp, &gw);
    assert!(
        full_log(&gw).contains("bot refused the call"),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
    drop(gw);

    // A listener nobody accepts from: the kernel completes the TCP handshake, then silence.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", silent.local_addr().expect("addr"));
    let run = TestRun::new("bot_grpc-silent_endpoint");
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(&endpoint, &[("bot.connect_timeout_ms", "500")]),
    );
    let started = std::time::Instant::now();
    let sipp = Sipp::new(&run, "uac_expect_503.xml", gw.sip_addr())
        .timeout(Duration::from_secs(15))
        .run();
    expect_success(&sipp, &gw);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "503 only after {took:?} (connect_timeout_ms = 500)"
    );
    assert!(
        full_log(&gw).contains("did not accept the call within 500 ms"),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
}

/// The demo plays each prompt as one chunk: with `bot.max_buffered_s` below the prompt's
/// length the call could only be silent, so it is refused (503) with the key in the log.
#[test]
fn demo_prompt_longer_than_the_buffer_bound_is_refused() {
    let run = TestRun::new("bot_grpc-demo_over_buffer_bound");
    let mut gw = Gateway::start(&run, &[("bot.max_buffered_s", "5")]);
    let sipp = Sipp::new(&run, "uac_expect_503.xml", gw.sip_addr())
        .timeout(Duration::from_secs(15))
        .run();
    expect_success(&sipp, &gw);
    assert!(
        full_log(&gw).contains("bot.max_buffered_s = 5 is too small"),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
}
