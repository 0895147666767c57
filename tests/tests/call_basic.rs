//! Basic calls: the caller hears the prompt, either side hangs up, SIP over TCP.

use bargein_e2e::flows::{call_until_gateway_bye, call_with_peer, expect_success, summarize};
use bargein_e2e::{Gateway, Sipp, TestRun};
use std::time::Duration;

/// SIPp calls, the gateway answers (200 + SDP) and streams the prompt; the caller hangs up
/// after 6 s. The peer must receive the prompt from right after the ACK: one SSRC, G.711,
/// from the answered address (symmetric RTP), a packet every 20 ms, speech most of the time.
#[test]
fn caller_hears_prompt_then_hangs_up() {
    let run = TestRun::new("call_basic-caller_hears_prompt");
    let mut gw = Gateway::start(&run, &[]);
    let (_sipp, r) = call_with_peer(&run, &gw, 6000, 6.5, "");
    let why = summarize(&r);

    let first = r
        .first_rx_ms
        .unwrap_or_else(|| panic!("no RTP from the gateway: {why}"));
    assert!(
        first < 1000.0,
        "prompt must start right after the ACK: {why}"
    );
    assert!(
        r.packets_rx >= 240,
        "expected ~1 packet per 20 ms over 5+ s: {why}"
    );
    assert_eq!(
        r.gaps_over_40ms, 0,
        "the gateway must send a packet every 20 ms: {why}"
    );
    assert_eq!(r.ssrcs.len(), 1, "one SSRC per call: {:?}", r.ssrcs);
    assert!(
        r.payload_types.iter().all(|pt| *pt == 0 || *pt == 8),
        "G.711 only: {:?}",
        r.payload_types
    );
    assert_eq!(
        r.rx_sources,
        vec![r.remote.clone()],
        "RTP must come from the SDP address (symmetric RTP)"
    );
    // The prompt is ~90 % voiced with the 200 ms hangover; demand well over half.
    let window = 6000.0 - first;
    assert!(
        r.voiced_total_ms >= 1000.0,
        "at least 1 s of prompt speech: {why}"
    );
    assert!(
        r.voiced_ms_between(first, 6000.0) >= 0.6 * window,
        "prompt audio for most of the call: {why}"
    );
    gw.assert_healthy();
}

/// With `calls.max_duration_s = 3` the gateway sends BYE at 3 s; SIPp answers 200 (its
/// scenario fails if no BYE arrives within 30 s). The peer sees the media stop at the BYE.
#[test]
fn gateway_hangs_up_at_max_duration() {
    let run = TestRun::new("call_basic-gateway_hangs_up");
    let mut gw = Gateway::start(&run, &[("calls.max_duration_s", "3")]);
    let (sipp, r) = call_until_gateway_bye(&run, &gw, 6.0, None);
    let why = summarize(&r);
    let last = r.last_rx_ms.unwrap_or_else(|| panic!("no RTP: {why}"));
    assert!(
        (2500.0..=4000.0).contains(&last),
        "media must stop at the BYE after ~3 s: {why}"
    );
    assert!(
        sipp.elapsed < Duration::from_secs(12),
        "BYE took too long: {:?}",
        sipp.elapsed
    );
    assert!(r.voiced_total_ms >= 1000.0, "prompt before the BYE: {why}");
    gw.assert_healthy();
}

/// The gateway listens on TCP on the same port: a call over TCP works end to end.
#[test]
fn plain_call_over_tcp() {
    let run = TestRun::new("call_basic-plain_call_over_tcp");
    let mut gw = Gateway::start(&run, &[]);
    let sipp = Sipp::new(&run, "uac_call_plain.xml", gw.sip_addr())
        .tcp()
        .hold_ms(2000)
        .timeout(Duration::from_secs(20))
        .run();
    expect_success(&sipp, &gw);
    assert!(
        sipp.messages().contains("TCP message received"),
        "the call must have used TCP"
    );
    // The carrier's identity headers are read and kept for the bot (logged with the call).
    let log = std::fs::read_to_string(gw.stderr_path()).unwrap();
    assert!(
        log.contains("+15551230001@carrier.example"),
        "P-Asserted-Identity kept: {}",
        gw.log_tail(20)
    );
    assert!(
        log.contains("reason=unconditional"),
        "Diversion kept: {}",
        gw.log_tail(20)
    );
    gw.assert_healthy();
}
