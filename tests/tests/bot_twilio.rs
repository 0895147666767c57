//! Twilio Media Streams bots: the gateway connects to a WebSocket bot and speaks Twilio's
//! protocol. SIPp + the RTP peer call; a scripted bot (`src/twilio_peer.rs`) records every
//! message and plays tone segments with marks; the example bot (`examples/twilio-bot`) runs
//! unchanged.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bargein_e2e::flows::{call_until_gateway_bye, call_with_peer, summarize};
use bargein_e2e::routing_invite::invite_status;
use bargein_e2e::twilio_peer::{TwilioLog, TwilioPeer, TwilioScript};
use bargein_e2e::{run::repo_root, Gateway, PeerReport, TestRun};
use base64::Engine as _;
use serde_json::json;

/// Tone segments of 1 s, each followed by a mark named `<prefix><n>`.
fn segments(prefix: &str, n: usize) -> Vec<(u32, String)> {
    (1..=n).map(|i| (1000, format!("{prefix}{i}"))).collect()
}

fn twilio_gateway(run: &TestRun, peer: &TwilioPeer, extra: &[(&str, &str)]) -> Gateway {
    let url = peer.url();
    let mut overrides = vec![
        ("bot.kind", "twilio"),
        ("bot.twilio.url", url.as_str()),
        ("GW__BOT__TWILIO__PARAMETERS__TENANT", "acme"),
    ];
    overrides.extend_from_slice(extra);
    Gateway::start(run, &overrides)
}

fn rms(ulaw_b64: &str) -> f64 {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(ulaw_b64)
        .unwrap_or_default();
    let e: f64 = bytes
        .iter()
        .map(|&b| f64::from(audio_codec_algorithms::decode_ulaw(b)).powi(2))
        .sum::<f64>()
        / bytes.len().max(1) as f64;
    e.sqrt()
}

/// The protocol facts every stream must show: `connected`, then `start` as Twilio sends it,
/// then media with consecutive sequence numbers, chunks and 20 ms timestamps, `stop` last.
fn check_stream(log: &TwilioLog) -> (String, f64) {
    check_stream_min(log, 200)
}

/// `check_stream` for a call of at least `min_media` frames.
fn check_stream_min(log: &TwilioLog, min_media: usize) -> (String, f64) {
    let outline = log.outline();
    assert_eq!(log.not_json, 0, "gateway sent non-JSON frames: {outline}");
    let first = &log.received[0].msg;
    assert_eq!(
        first,
        &json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    );
    let start = &log.received[1].msg;
    assert_eq!(start["event"], "start", "{outline}");
    assert_eq!(start["sequenceNumber"], "1");
    let s = &start["start"];
    let sid = start["streamSid"].as_str().unwrap_or("").to_string();
    assert!(sid.starts_with("MZ") && sid.len() == 34, "streamSid {sid}");
    assert_eq!(s["streamSid"], sid.as_str());
    let account = s["accountSid"].as_str().unwrap_or("");
    assert!(account.starts_with("AC") && account.len() == 34);
    assert!(!s["callSid"].as_str().unwrap_or("").is_empty());
    assert_eq!(s["tracks"], json!(["inbound"]));
    assert_eq!(
        s["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    assert_eq!(s["customParameters"]["tenant"], "acme", "{s}");
    assert_eq!(s["customParameters"]["to_user"], "bot", "{s}");
    assert!(s["customParameters"]["from"]
        .as_str()
        .unwrap_or("")
        .contains("sipp@"));
    // Every message after `connected` carries the next sequence number and the stream id.
    for (i, rx) in log.received.iter().skip(1).enumerate() {
        assert_eq!(
            rx.msg["sequenceNumber"],
            (i + 1).to_string(),
            "sequence at message {i}: {}",
            rx.msg
        );
        assert_eq!(rx.msg["streamSid"], sid.as_str());
    }
    let media = log.events("media");
    assert!(
        media.len() >= min_media,
        "only {} media frames",
        media.len()
    );
    let mut late_steps = 0;
    for (i, m) in media.iter().enumerate() {
        let md = &m.msg["media"];
        assert_eq!(md["track"], "inbound");
        assert_eq!(md["chunk"], (i + 1).to_string());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(md["payload"].as_str().unwrap_or(""))
            .unwrap_or_default();
        assert_eq!(bytes.len(), 160, "20 ms of µ-law per frame");
        if i > 0 {
            let ts = |k: usize| {
                media[k].msg["media"]["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            assert!(ts(i) > ts(i - 1), "timestamps must increase");
            if ts(i) - ts(i - 1) != 20 {
                late_steps += 1; // a frame dropped toward a slow bot
            }
        }
    }
    assert!(
        late_steps * 50 <= media.len(),
        "{late_steps} timestamp gaps"
    );
    let last = &log.received[log.received.len() - 1].msg;
    assert_eq!(
        last["event"], "stop",
        "stop must be the last message: {outline}"
    );
    assert_eq!(last["stop"]["callSid"], s["callSid"]);
    assert!(log.closed, "the gateway closes the WebSocket after stop");
    (outline, log.start_unix_ms().unwrap_or(0.0))
}

fn names(marks: &[(String, f64)]) -> Vec<&str> {
    marks.iter().map(|(n, _)| n.as_str()).collect()
}

/// The caller talks over 10 s of queued bot audio: media frames carry the caller's speech to
/// the bot; the first marks come back as their audio plays; the gateway's barge-in stops the
/// audio and echoes every mark still queued at once (as a `clear` would), and `stop` ends it.
#[test]
fn twilio_bot_audio_marks_and_gateway_barge_in() {
    let run = TestRun::new("bot_twilio-barge_in");
    let speech = run.caller_speech();
    let peer = TwilioPeer::start(TwilioScript {
        segments: segments("s", 10),
        ..Default::default()
    });
    let mut gw = twilio_gateway(&run, &peer, &[]);
    let args = format!("--send {} --send-at 3", speech.display());
    let (_sipp, r) = call_with_peer(&run, &gw, 7500, 8.0, &args);
    let log = peer.finish(Duration::from_secs(10));
    let why = summarize(&r);
    let (outline, start) = check_stream(&log);

    // Caller audio: digital silence before the speech, speech after it.
    let onset = r
        .speech_onset_ms
        .unwrap_or_else(|| panic!("no speech sent: {why}"));
    let onset_unix = r.start_unix_ms.unwrap_or(0.0) + onset;
    let (before, after): (Vec<_>, Vec<_>) = log
        .events("media")
        .into_iter()
        .partition(|m| m.unix_ms < onset_unix);
    let loud = |v: &[&bargein_e2e::twilio_peer::Rx]| {
        v.iter()
            .filter(|m| rms(m.msg["media"]["payload"].as_str().unwrap_or("")) > 500.0)
            .count()
    };
    assert_eq!(loud(&before), 0, "caller was silent before the onset");
    assert!(loud(&after) >= 25, "the caller's speech must reach the bot");

    // Marks: every one echoed exactly once, in order; s1 and s2 only after they played.
    let marks = log.marks();
    let expected: Vec<String> = (1..=10).map(|i| format!("s{i}")).collect();
    assert_eq!(names(&marks), expected, "{outline}");
    assert!(
        marks[0].1 - start >= 980.0,
        "s1 echoed before 1 s of audio played"
    );
    assert!(marks[1].1 - start >= 1980.0, "s2 echoed early");
    // The barge-in (caller speech at ~3 s) drops the rest: s4..s10 come back together, long
    // before s10's audio could have played (10 s after start).
    let last = marks[9].1;
    assert!(
        last < onset_unix + 1500.0,
        "pending marks must be echoed at the barge-in: last at +{:.0} ms after onset",
        last - onset_unix
    );
    assert!(marks[3].1 > onset_unix, "s4 echoed before the caller spoke");

    // The caller heard the bot, then silence from the barge-in on.
    assert!(r.voiced_ms_between(0.0, onset) >= 2000.0, "{why}");
    let stop = r
        .stop_latency_ms
        .unwrap_or_else(|| panic!("no stop: {why}"));
    assert!(stop <= 1000.0, "bot audio went on {stop:.0} ms: {why}");
    assert_eq!(r.voiced_ms_between(onset + 1220.0, 7400.0), 0.0, "{why}");
    gw.assert_healthy();
}

/// The bot sends junk (ignored, counted, call goes on), queues 6 s with marks, and sends
/// `clear` after 2.5 s: m1 and m2 come back as played, m3..m6 at once on the clear, and the
/// caller hears nothing more.
#[test]
fn twilio_clear_echoes_pending_marks_and_junk_is_ignored() {
    let run = TestRun::new("bot_twilio-clear");
    let peer = TwilioPeer::start(TwilioScript {
        segments: segments("m", 6),
        clear_after_ms: Some(2500),
        junk: true,
        ..Default::default()
    });
    let mut gw = twilio_gateway(&run, &peer, &[]);
    let (_sipp, r) = call_with_peer(&run, &gw, 5000, 5.5, "");
    let log = peer.finish(Duration::from_secs(10));
    let why = summarize(&r);
    let (outline, start) = check_stream(&log);
    let clear = log
        .clear_sent_unix_ms
        .unwrap_or_else(|| panic!("no clear sent: {outline}"));

    let marks = log.marks();
    let expected: Vec<String> = (1..=6).map(|i| format!("m{i}")).collect();
    assert_eq!(names(&marks), expected, "{outline}");
    assert!(marks[0].1 - start >= 980.0 && marks[1].1 - start >= 1980.0);
    assert!(marks[1].1 < clear, "m2 played before the clear");
    for (name, at) in &marks[2..] {
        assert!(
            *at >= clear && *at < clear + 500.0,
            "{name} must be echoed right after the clear (+{:.0} ms)",
            at - clear
        );
    }
    // Audio before the clear, none after it (+ one jitter buffer and the peer's hangover).
    let clear_peer = clear - r.start_unix_ms.unwrap_or(0.0);
    assert!(r.voiced_ms_between(0.0, clear_peer) >= 1500.0, "{why}");
    assert_eq!(
        r.voiced_ms_between(clear_peer + 500.0, 5000.0),
        0.0,
        "{why}"
    );
    // The junk was counted, not fatal.
    let stats = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    let line = stats
        .lines()
        .find(|l| l.contains("twilio stream stats"))
        .unwrap_or_else(|| panic!("no stream stats logged\n{}", gw.log_tail(30)));
    assert!(line.contains("malformed=5"), "{line}");
    assert!(line.contains("clears=1"), "{line}");
    gw.assert_healthy();
}

/// Kills the child on drop (the example bot runs until killed).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example_bot_bin() -> PathBuf {
    let bin = repo_root().join("target/release/twilio-bot");
    assert!(
        bin.is_file(),
        "{} not found: cargo build --release -p twilio-bot",
        bin.display()
    );
    bin
}

/// The example bot, unchanged Twilio code: the caller interrupts its prompt, the bot learns
/// from the mark echoes what was not played, and answers when the caller stops talking.
#[test]
fn example_twilio_bot_is_interrupted_and_replies() {
    let run = TestRun::new("bot_twilio-example");
    let speech = run.caller_speech();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let out = run.path("twilio-bot.out");
    let bot = Command::new(example_bot_bin())
        .current_dir(repo_root())
        .args(["--listen", &listen])
        .args(["--prompt", "deploy/prompts/prompt.wav"])
        .args(["--reply", "deploy/prompts/reply.wav"])
        .stdout(
            std::fs::File::create(&out)
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example bot");
    let _bot = Killed(bot);
    let url = format!("ws://{listen}/");
    // The gateway connects per call; the bot is ready once it listens.
    for _ in 0..100 {
        if std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("listening")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut gw = Gateway::start(
        &run,
        &[("bot.kind", "twilio"), ("bot.twilio.url", url.as_str())],
    );
    let args = format!("--send {} --send-at 3", speech.display());
    let (_sipp, r): (_, PeerReport) = call_with_peer(&run, &gw, 10_500, 11.0, &args);
    let why = summarize(&r);
    let onset = r
        .speech_onset_ms
        .unwrap_or_else(|| panic!("no speech: {why}"));
    let end = r
        .speech_end_ms
        .unwrap_or_else(|| panic!("no speech end: {why}"));
    assert!(
        r.voiced_ms_between(0.0, onset) >= 2000.0,
        "prompt first: {why}"
    );
    let stop = r
        .stop_latency_ms
        .unwrap_or_else(|| panic!("no stop: {why}"));
    assert!(stop <= 1000.0, "prompt went on {stop:.0} ms: {why}");
    let [reply_start, reply_end] = r
        .reply_interval_ms
        .unwrap_or_else(|| panic!("the bot did not reply: {why}"));
    assert!(
        reply_start > end + 300.0,
        "reply while the caller spoke: {why}"
    );
    // The reply's first sentence (its pause splits the voiced interval).
    assert!(reply_end - reply_start >= 1000.0, "reply too short: {why}");
    // Give the bot a moment to print `stop`.
    std::thread::sleep(Duration::from_millis(300));
    let said = std::fs::read_to_string(&out).unwrap_or_default();
    for line in [
        "start: call",
        "played: sentence-1",
        "interrupted by the caller",
        "not played: sentence-",
        "caller finished speaking: replying",
        "stop",
    ] {
        assert!(said.contains(line), "bot output lacks `{line}`:\n{said}");
    }
    gw.assert_healthy();
}

/// A Twilio bot that cannot be reached at call start: the INVITE is refused with 503 (the
/// default `bot.on_failure = "reject"`), so a PBX or Kamailio can fail over.
#[test]
fn twilio_bot_unreachable_at_start_gets_503() {
    let run = TestRun::new("bot_twilio-unreachable");
    // A port nobody listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("ws://127.0.0.1:{port}/media");
    let mut gw = Gateway::start(
        &run,
        &[("bot.kind", "twilio"), ("bot.twilio.url", url.as_str())],
    );
    let (code, _) = invite_status(&gw, "bot");
    assert_eq!(code, 503, "{}", gw.log_tail(20));
    gw.assert_healthy();
}

/// The bot closes its WebSocket mid-call: the gateway does not leave a dead call, it hangs up
/// (BYE) under the default failure policy.
#[test]
fn twilio_bot_gone_mid_call_ends_the_call() {
    let run = TestRun::new("bot_twilio-gone");
    let peer = TwilioPeer::start(TwilioScript {
        segments: segments("g", 5),
        close_after_ms: Some(1500),
        ..Default::default()
    });
    let mut gw = twilio_gateway(&run, &peer, &[]);
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 5.0, None);
    let why = summarize(&r);
    let log = peer.finish(Duration::from_secs(5));
    assert!(log.marks().len() <= 1, "{}", log.outline());
    let last = r.last_rx_ms.unwrap_or(0.0);
    assert!(last < 4000.0, "media must stop after the bot left: {why}");
    let text = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    assert!(text.contains("twilio bot gone"), "{}", gw.log_tail(30));
    gw.assert_healthy();
}

/// A bot that pushes far more audio than `bot.max_buffered_s` at once: what fits is played,
/// the rest is refused (logged), the mark after it still comes back, and the call goes on.
#[test]
fn twilio_bot_flooding_audio_is_bounded() {
    let run = TestRun::new("bot_twilio-flood");
    let peer = TwilioPeer::start(TwilioScript {
        segments: vec![(6000, "after-flood".to_string())],
        ..Default::default()
    });
    let mut gw = twilio_gateway(&run, &peer, &[("bot.max_buffered_s", "2")]);
    let (_sipp, r) = call_with_peer(&run, &gw, 5000, 5.5, "");
    let log = peer.finish(Duration::from_secs(10));
    let why = summarize(&r);
    let (outline, _) = check_stream(&log);
    // 2 s queued (+ what played while the burst arrived), not 6 s.
    let voiced = r.voiced_ms_between(0.0, 5000.0);
    assert!(
        (1500.0..=3300.0).contains(&voiced),
        "voiced {voiced:.0} ms: {why}"
    );
    assert_eq!(names(&log.marks()), ["after-flood"], "{outline}");
    let text = std::fs::read_to_string(gw.stderr_path()).unwrap_or_default();
    assert!(text.contains("bot command refused"), "{}", gw.log_tail(30));
    gw.assert_healthy();
}

/// `wss://`: the gateway reaches a TLS bot whose certificate is signed by the CA in
/// `bot.twilio.tls_ca` (a private CA, made with openssl for this test), and the stream works.
#[test]
fn twilio_bot_over_wss_with_a_private_ca() {
    let run = TestRun::new("bot_twilio-wss");
    let (ca, cert, key) = bargein_e2e::twilio_peer::make_test_certs(run.dir())
        .unwrap_or_else(|e| panic!("test certificates: {e}"));
    let peer = TwilioPeer::start_tls(
        TwilioScript {
            segments: segments("t", 2),
            ..Default::default()
        },
        &cert,
        &key,
    );
    let ca = ca.display().to_string();
    let mut gw = twilio_gateway(&run, &peer, &[("bot.twilio.tls_ca", ca.as_str())]);
    let (_sipp, r) = call_with_peer(&run, &gw, 3000, 3.5, "");
    let log = peer.finish(Duration::from_secs(10));
    let (outline, _) = check_stream_min(&log, 100);
    assert_eq!(names(&log.marks()), ["t1", "t2"], "{outline}");
    assert!(
        r.voiced_ms_between(0.0, 2500.0) >= 1500.0,
        "{}",
        summarize(&r)
    );
    gw.assert_healthy();
}
