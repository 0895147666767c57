//! Barge-in: the caller talks over the prompt, the prompt stops, the bot replies.

use bargein_e2e::flows::{call_until_gateway_bye, call_with_peer, summarize};
use bargein_e2e::{Gateway, TestRun};

/// When the caller starts speaking, at 3 s into the prompt.
const SEND_AT_S: f64 = 3.0;
/// The contract: prompt audio must not continue past speech onset + 1 s.
const MAX_STOP_LATENCY_MS: f64 = 1000.0;

/// Caller speech (~2.5 s of espeak-ng) at 3 s: the prompt stops within 1 s of the onset, stays
/// silent while the caller talks, the reply starts 400 ms (+ VAD delay) after the caller
/// stops, and with `hangup_after_reply` the gateway hangs up after it.
#[test]
fn caller_speech_stops_prompt_and_gets_reply() {
    let run = TestRun::new("bargein-stops_prompt_and_replies");
    let speech = run.caller_speech();
    let mut gw = Gateway::start(&run, &[("bot.demo.hangup_after_reply", "true")]);
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 14.0, Some((&speech, SEND_AT_S)));
    let why = summarize(&r);

    let onset = r
        .speech_onset_ms
        .unwrap_or_else(|| panic!("peer did not send speech: {why}"));
    let speech_end = r
        .speech_end_ms
        .unwrap_or_else(|| panic!("no speech end: {why}"));
    assert!(
        speech_end - onset > 1500.0,
        "caller speech too short for this test: {why}"
    );
    assert!(
        r.voiced_ms_between(0.0, onset) >= 1500.0,
        "prompt must play before the caller speaks: {why}"
    );

    let stop = r
        .stop_latency_ms
        .unwrap_or_else(|| panic!("no stop latency: {why}"));
    assert!(
        stop <= MAX_STOP_LATENCY_MS,
        "prompt continued {stop:.0} ms after speech onset: {why}"
    );
    // Nothing voiced from onset + 1 s (+ one frame) to the end of the caller's speech.
    let late = r.voiced_ms_between(onset + MAX_STOP_LATENCY_MS + 20.0, speech_end);
    assert_eq!(
        late, 0.0,
        "prompt audio while the caller was still speaking: {why}"
    );

    let [reply_start, reply_end] = r
        .reply_interval_ms
        .unwrap_or_else(|| panic!("no reply after the caller spoke: {why}"));
    let delay = reply_start - speech_end;
    assert!(
        (200.0..=2500.0).contains(&delay),
        "reply should start ~400 ms after the caller stops, got {delay:.0} ms: {why}"
    );
    assert!(reply_end - reply_start >= 1000.0, "reply too short: {why}");
    // hangup_after_reply: the BYE (SIPp's scenario demands it) comes after the reply, so media
    // runs until about the reply's end.
    let last = r.last_rx_ms.unwrap_or(0.0);
    assert!(
        last >= reply_end - 100.0,
        "gateway hung up before the reply ended: {why}"
    );
    gw.assert_healthy();
}

/// Control: a caller who stays silent does not interrupt anything — the prompt keeps playing
/// past the time where the other test speaks, and no reply comes.
#[test]
fn silent_caller_does_not_interrupt_the_prompt() {
    let run = TestRun::new("bargein-silent_caller");
    let mut gw = Gateway::start(&run, &[]);
    let (_sipp, r) = call_with_peer(&run, &gw, 9000, 9.5, "");
    let why = summarize(&r);
    let from = SEND_AT_S * 1000.0;
    assert!(
        r.voiced_ms_between(from, 9000.0) >= 0.6 * (9000.0 - from),
        "prompt must keep playing: {why}"
    );
    assert_eq!(r.speech_onset_ms, None);
    gw.assert_healthy();
}
