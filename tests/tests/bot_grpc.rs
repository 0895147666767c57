//! The gRPC bot API end to end: the real gateway, SIPp + the RTP peer as the caller, and a
//! scriptable gRPC bot (`src/grpcbot.rs`) or the example bots. Bot failures: `bot_failures.rs`.

use std::time::Duration;

use bargein_e2e::flows::{call_until_gateway_bye, call_with_peer, expect_success, summarize};
use bargein_e2e::grpcbot::pb::gateway_message::Msg;
use bargein_e2e::grpcbot::{
    self, full_log, grpc_overrides, tone_prompt, GrpcBot, Misbehaviour, Script,
};
use bargein_e2e::{Gateway, Sipp, TestRun};

/// The prompt's words: word i spans [i·1000, i·1000 + 800) ms of the 8 s prompt.
const WORDS: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

fn rms_pcm16(pcm: &[u8]) -> f64 {
    let n = pcm.len() / 2;
    let sum: f64 = pcm
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
        .sum();
    (sum / n.max(1) as f64).sqrt()
}

/// Caller audio reaches the bot (16 kHz, speech visible in it), the bot's audio (16 kHz PCM)
/// reaches the caller, the caller's barge-in arrives at the bot with the played time the
/// caller actually received (± 60 ms) and the delivered/remaining text from the word
/// timings, the bot's reply after the turn is heard, and CallEnded closes the stream.
#[test]
fn audio_both_ways_and_barge_in_reports_what_the_caller_heard() {
    let run = TestRun::new("bot_grpc-both_ways_and_barge_in");
    let speech = run.caller_speech();
    let mut prompt = tone_prompt("prompt", 440.0, 8000, 16_000);
    prompt.text = WORDS.join(" ");
    prompt.words = (0..WORDS.len() as u32)
        .map(|i| (WORDS[i as usize].to_string(), i * 1000, i * 1000 + 800))
        .collect();
    let bot = GrpcBot::start(Script {
        prompt: Some(prompt),
        reply: Some(tone_prompt("reply", 660.0, 1500, 8000)),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(
            &endpoint,
            &[
                ("bot.grpc.audio_rate", "16000"),
                (
                    "GW__BOT__GRPC__METADATA__AUTHORIZATION",
                    "Bearer test-token",
                ),
            ],
        ),
    );
    let peer_args = format!("--send {} --send-at 3", speech.display());
    let (_sipp, r) = call_with_peer(&run, &gw, 9000, 9.5, &peer_args);
    let why = summarize(&r);
    assert!(
        bot.wait_for(0, Duration::from_secs(3), |m| matches!(
            m,
            Msg::CallEnded(_)
        )),
        "no CallEnded at the bot: {why}"
    );
    let got = bot.received(0);

    // Call start: first message, with the caller's identity and the audio format.
    let Some(Msg::CallStarted(start)) = got.first().map(|r| &r.msg) else {
        panic!("first message is not CallStarted: {:?}", got.first())
    };
    assert!(
        !start.call_id.is_empty() && full_log(&gw).contains(&start.call_id),
        "Call-ID {:?} is not the call's",
        start.call_id
    );
    assert!(start.from.contains("sipp"), "From: {}", start.from);
    let format = start.caller_audio_format.unwrap_or_default();
    assert_eq!(format.sample_rate, 16_000);
    let md = bot.metadata(0);
    assert!(
        md.contains(&("authorization".into(), "Bearer test-token".into())),
        "{md:?}"
    );
    assert!(md
        .iter()
        .any(|(k, v)| k == "x-bargein-call-id" && v == &start.call_id));

    // Caller audio: 20 ms frames at 16 kHz all along, loud while the caller speaks.
    let frames: Vec<_> = got
        .iter()
        .filter_map(|r| match &r.msg {
            Msg::CallerAudio(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(frames.len() >= 400, "only {} caller frames", frames.len());
    assert!(
        frames.iter().all(|a| a.pcm.len() == 640),
        "16 kHz 20 ms frames"
    );
    let loud = frames.iter().filter(|a| rms_pcm16(&a.pcm) > 500.0).count();
    assert!(
        loud >= 50,
        "caller speech not visible to the bot ({loud} loud frames)"
    );

    // The caller heard the prompt until the barge-in.
    let onset = r
        .speech_onset_ms
        .unwrap_or_else(|| panic!("no speech sent: {why}"));
    let first_run = *r
        .voiced_runs_ms
        .first()
        .unwrap_or_else(|| panic!("nothing heard: {why}"));
    let heard_ms = first_run[1] - first_run[0];
    assert!(
        heard_ms >= 2500.0,
        "prompt heard for {heard_ms:.0} ms only: {why}"
    );
    assert!(first_run[1] <= onset + 1000.0, "prompt not stopped: {why}");

    let (barge, barge_sent_ms) = got
        .iter()
        .find_map(|r| match &r.msg {
            Msg::BargeIn(b) if !b.tentative => Some((b.clone(), r.call_time_ms)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no confirmed BargeIn at the bot: {why}"));
    let chunk = barge
        .chunks
        .iter()
        .find(|c| c.playback_id == "prompt")
        .unwrap_or_else(|| panic!("prompt not in the barge-in: {barge:?}"));
    assert_eq!(chunk.total_ms, 8000);
    // The reported speech onset: the caller's (the stream opened a few ms before the peer
    // started; the jitter buffer and VAD chunks add < 100 ms), before the confirmation.
    assert!(!barge.dtmf);
    let reported_onset = barge.speech_onset_ms as f64;
    assert!(
        (reported_onset - onset).abs() <= 250.0,
        "speech_onset_ms {reported_onset} vs the caller's onset {onset:.0}: {why}"
    );
    assert!(
        barge.speech_onset_ms < barge_sent_ms,
        "{barge:?} sent at {barge_sent_ms}"
    );
    let played = f64::from(chunk.played_ms);
    assert!(
        (played - heard_ms).abs() <= 60.0,
        "bot told played_ms = {played}, the caller received {heard_ms:.0} ms: {why}"
    );
    let k = (0..WORDS.len() as u32)
        .filter(|i| i * 1000 + 800 <= chunk.played_ms)
        .count();
    assert_eq!(chunk.delivered_text, WORDS[..k].join(" "), "{chunk:?}");
    assert_eq!(chunk.remaining_text, WORDS[k..].join(" "), "{chunk:?}");
    println!(
        "played_ms {} vs heard {heard_ms:.0} ms; onset {reported_onset} vs {onset:.0} ms; \
         delivered {:?}",
        chunk.played_ms, chunk.delivered_text
    );

    // The bot replied after the caller's turn; the caller heard it.
    assert!(got.iter().any(|r| matches!(r.msg, Msg::TurnEnded(_))));
    let end = r
        .speech_end_ms
        .unwrap_or_else(|| panic!("no speech end: {why}"));
    assert!(
        r.voiced_ms_between(end, 9000.0) >= 1000.0,
        "reply not heard: {why}"
    );
    gw.assert_healthy();
}

/// Malformed bot messages are answered with Error(MALFORMED), logged and counted; the call and
/// the bot's valid audio go on.
#[test]
fn malformed_bot_messages_are_counted_and_the_call_goes_on() {
    let run = TestRun::new("bot_grpc-garbage");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 2000, 8000)),
        misbehaviour: Misbehaviour::Garbage,
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let (_sipp, r) = call_with_peer(&run, &gw, 4000, 4.5, "");
    let why = summarize(&r);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let errors: Vec<_> = bot
        .received(0)
        .into_iter()
        .filter_map(|r| match r.msg {
            Msg::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    let malformed = bargein_e2e::grpcbot::pb::ErrorCode::Malformed as i32;
    assert_eq!(errors.len(), grpcbot::GARBAGE_MESSAGES, "{errors:?}");
    assert!(errors.iter().all(|e| e.code == malformed), "{errors:?}");
    assert!(
        r.voiced_ms_between(0.0, 3000.0) >= 1500.0,
        "valid prompt not heard: {why}"
    );
    let log = full_log(&gw);
    assert!(
        log.contains("malformed bot message ignored"),
        "{}",
        gw.log_tail(40)
    );
    assert!(
        log.contains(&format!("malformed={}", grpcbot::GARBAGE_MESSAGES)),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
}

/// A bot sending far more audio than `bot.max_buffered_s` at once: the excess chunks are
/// refused with Error(BUFFER_FULL), the caller hears the buffered 3 s, the call goes on.
#[test]
fn flooding_bot_is_bounded_and_told() {
    let run = TestRun::new("bot_grpc-flood");
    let bot = GrpcBot::start(Script {
        misbehaviour: Misbehaviour::Flood {
            chunks: 10,
            chunk_ms: 1000,
        },
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(&endpoint, &[("bot.max_buffered_s", "3")]),
    );
    let (_sipp, r) = call_with_peer(&run, &gw, 5000, 5.5, "");
    let why = summarize(&r);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let full = bargein_e2e::grpcbot::pb::ErrorCode::BufferFull as i32;
    let refused: Vec<String> = bot
        .received(0)
        .into_iter()
        .filter_map(|r| match r.msg {
            Msg::Error(e) if e.code == full => Some(e.playback_id),
            _ => None,
        })
        .collect();
    assert!(refused.len() >= 6, "refused: {refused:?}");
    assert!(
        !refused.contains(&"flood-0".to_string()),
        "first chunk must play: {refused:?}"
    );
    let heard = r.voiced_ms_between(0.0, 5000.0);
    assert!(
        (2500.0..=4200.0).contains(&heard),
        "heard {heard:.0} ms of audio: {why}"
    );
    gw.assert_healthy();
}

/// The text of deploy/prompts/prompt.wav (scripts/make-prompts.sh), which the examples send.
const DEMO_PROMPT_TEXT: &str =
    "Hello, and thank you for calling. This is the automated assistant of \
the barge-in gateway demo. I can help you with billing, with your delivery, and with changes to \
your account. You can interrupt me at any time: just start speaking, and I will stop and listen.";

/// An example bot (Rust or Python) behind the gateway: the caller interrupts its prompt at
/// 3 s, the bot prints the barge-in with the played time and the delivered/remaining text,
/// replies after the caller's turn, and hangs up after the reply.
fn example_bot_is_interrupted_and_replies(name: &str, program: &std::path::Path, args: &[&str]) {
    let run = TestRun::new(&format!("bot_grpc-example_{name}"));
    let speech = run.caller_speech();
    let bot = grpcbot::BotProcess::start(&run, name, program, args)
        .unwrap_or_else(|e| panic!("example bot: {e}"));
    let mut gw = Gateway::start(&run, &grpc_overrides(&bot.endpoint, &[]));
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 13.0, Some((&speech, 3.0)));
    let why = summarize(&r);
    let onset = r
        .speech_onset_ms
        .unwrap_or_else(|| panic!("no speech sent: {why}"));
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while !bot.events().iter().any(|e| e["event"] == "call_ended")
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = bot.events();
    let barge = events
        .iter()
        .find(|e| e["event"] == "barge_in" && e["playback_id"] == "prompt")
        .unwrap_or_else(|| panic!("no barge-in printed by the bot: {events:?}\n{why}"));
    let played = barge["played_ms"].as_f64().unwrap_or(-1.0);
    assert!(
        (onset - 300.0..=onset + 1000.0).contains(&played),
        "played_ms {played} for an interruption at {onset:.0} ms: {why}"
    );
    let delivered = barge["delivered"].as_str().unwrap_or_default();
    let remaining = barge["remaining"].as_str().unwrap_or_default();
    assert!(!delivered.is_empty() && !remaining.is_empty(), "{barge}");
    assert_eq!(
        format!("{delivered} {remaining}"),
        DEMO_PROMPT_TEXT,
        "{barge}"
    );
    println!("{name}: played {played} ms, delivered {delivered:?}");
    assert!(
        events.iter().any(|e| e["event"] == "turn_ended"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "playback_finished" && e["playback_id"] == "reply"),
        "reply not played in full: {events:?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "call_ended"),
        "{events:?}"
    );
    let speech_end = r
        .speech_end_ms
        .unwrap_or_else(|| panic!("no speech end: {why}"));
    assert!(
        r.voiced_ms_between(speech_end, 13_000.0) >= 1000.0,
        "reply not heard: {why}"
    );
    gw.assert_healthy();
}

#[test]
fn python_example_bot_is_interrupted_and_replies() {
    let root = bargein_e2e::run::repo_root();
    // Idempotent: a venv with grpcio + grpcio-tools from PyPI under .cache/.
    let setup = std::process::Command::new(root.join("examples/grpc-python-bot/setup.sh"))
        .status()
        .expect("run examples/grpc-python-bot/setup.sh");
    assert!(setup.success(), "examples/grpc-python-bot/setup.sh failed");
    let python = root.join(".cache/grpc-python-bot/venv/bin/python");
    example_bot_is_interrupted_and_replies(
        "python",
        &python,
        &["examples/grpc-python-bot/bot.py", "--hangup-after-reply"],
    );
}

#[test]
fn rust_example_bot_is_interrupted_and_replies() {
    let bin = bargein_e2e::run::repo_root().join("target/release/grpc-rust-bot");
    assert!(
        bin.is_file(),
        "{} missing: cargo build --release -p grpc-rust-bot",
        bin.display()
    );
    example_bot_is_interrupted_and_replies("rust", &bin, &["--hangup-after-reply"]);
}

/// The bot asks for a transfer: the gateway sends REFER with the bot's Refer-To (checked by
/// SIPp), the caller's side accepts (202) and reports 100 then 200 by NOTIFY, the gateway
/// answers the NOTIFYs, tells the bot the transfer succeeded, and ends its leg with BYE.
#[test]
fn bot_transfer_sends_refer_and_hangs_up_once_transferred() {
    let run = TestRun::new("bot_grpc-transfer");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 1000, 8000)),
        transfer_to: Some("sip:agent@192.0.2.50".into()),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let sipp = Sipp::new(&run, "uac_refer.xml", gw.sip_addr())
        .peer_args("--duration 4")
        .timeout(Duration::from_secs(30))
        .run();
    expect_success(&sipp, &gw);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let result = bot
        .received(0)
        .into_iter()
        .find_map(|r| match r.msg {
            Msg::TransferResult(t) => Some(t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TransferResult: {}", gw.log_tail(40)));
    assert!(result.accepted, "{result:?}");
    assert_eq!(result.sip_status, 200);
    gw.assert_healthy();
}

/// `https://` endpoint: the gateway reaches the bot over TLS, trusting the private CA given
/// in `bot.grpc.tls_ca`; the bot's audio reaches the caller. Without the CA the handshake
/// fails, and the call is refused with 503.
#[test]
fn tls_endpoint_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let run = TestRun::new("bot_grpc-tls");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let ca_path = run.path("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca.pem");
    let bot = GrpcBot::start_tls(
        Script {
            prompt: Some(tone_prompt("prompt", 440.0, 2000, 8000)),
            ..Default::default()
        },
        &cert.pem(),
        &key.serialize_pem(),
    );
    let endpoint = bot.endpoint();
    assert!(endpoint.starts_with("https://"));
    let ca_str = ca_path.display().to_string();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(&endpoint, &[("bot.grpc.tls_ca", &ca_str)]),
    );
    let (_sipp, r) = call_with_peer(&run, &gw, 3000, 3.5, "");
    let why = summarize(&r);
    assert!(
        r.voiced_ms_between(0.0, 3000.0) >= 1500.0,
        "bot audio over TLS not heard: {why}"
    );
    gw.assert_healthy();
    drop(gw);

    // The system trust store does not know the private CA: no call.
    let run = TestRun::new("bot_grpc-tls_untrusted");
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let sipp = Sipp::new(&run, "uac_expect_503.xml", gw.sip_addr())
        .timeout(Duration::from_secs(15))
        .run();
    expect_success(&sipp, &gw);
    gw.assert_healthy();
}

/// The bot switches its call to `bot_decides` (UpdateBargeIn) and rejects every barge-in the
/// gateway asks it about: the prompt pauses on the caller's speech, resumes where it paused
/// (BargeInCancelled), is never cut, and plays in full.
#[test]
fn bot_decides_rejects_and_the_prompt_resumes() {
    let run = TestRun::new("bot_grpc-bot_decides_reject");
    let speech = run.caller_speech();
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 6000, 8000)),
        bot_decides: Some(false),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let peer_args = format!("--send {} --send-at 2", speech.display());
    let (_sipp, r) = call_with_peer(&run, &gw, 9000, 9.5, &peer_args);
    let why = summarize(&r);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let got = bot.received(0);
    let asked = got
        .iter()
        .filter(|r| matches!(&r.msg, Msg::BargeIn(b) if b.decision_requested))
        .count();
    let cancelled = got
        .iter()
        .filter(|r| matches!(r.msg, Msg::BargeInCancelled(_)))
        .count();
    let cut = got
        .iter()
        .any(|r| matches!(&r.msg, Msg::BargeIn(b) if !b.tentative));
    assert!(asked >= 1, "no decision asked of the bot: {why}");
    assert!(
        cancelled >= 1,
        "no BargeInCancelled after the rejection: {why}"
    );
    assert!(!cut, "a rejected barge-in must not cut the prompt: {why}");
    assert!(got
        .iter()
        .any(|r| matches!(&r.msg, Msg::PlaybackFinished(p) if p.playback_id == "prompt")));
    // The whole 6 s prompt reached the caller (paused, not dropped).
    assert!(
        r.voiced_ms_between(0.0, 9000.0) >= 5800.0,
        "prompt not played in full: {why}"
    );
    assert!(
        full_log(&gw).contains("barge-in settings changed by the bot"),
        "{}",
        gw.log_tail(40)
    );
    gw.assert_healthy();
}

/// The bot's SendDtmf reaches the caller's side as SIP INFO application/dtmf-relay, one
/// per digit in order, with the requested duration (SIPp checks the bodies).
#[test]
fn bot_dtmf_goes_out_as_sip_info() {
    let run = TestRun::new("bot_grpc-dtmf_info");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 500, 8000)),
        dtmf: Some("1#".into()),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let sipp = Sipp::new(&run, "uac_info_dtmf.xml", gw.sip_addr())
        .peer_args("--duration 3")
        .timeout(Duration::from_secs(20))
        .run();
    expect_success(&sipp, &gw);
    gw.assert_healthy();
}

/// 30 concurrent calls, each with its own stream to one gRPC bot: every call reaches the bot
/// (30 streams, each starting with CallStarted and carrying caller audio), every caller hears
/// the bot's audio, and no outbound gap exceeds 40 ms.
#[test]
fn thirty_concurrent_grpc_calls() {
    const CALLS: u32 = 30;
    let run = TestRun::new("bot_grpc-thirty_concurrent");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 4000, 16_000)),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let (_sipp, reports) = bargein_e2e::flows::concurrent_calls(&run, &gw, CALLS, 15, 5000);
    assert_eq!(reports.len(), CALLS as usize);
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.gaps_over_40ms > 0 || r.voiced_ms_between(0.0, 5000.0) < 3500.0)
        .map(summarize)
        .collect();
    assert!(
        bad.is_empty(),
        "calls without the bot's audio or with gaps:\n{}",
        bad.join("\n")
    );
    assert_eq!(bot.calls(), CALLS as usize);
    for n in 0..CALLS as usize {
        let got = bot.received(n);
        assert!(
            matches!(got.first().map(|r| &r.msg), Some(Msg::CallStarted(_))),
            "stream {n} did not start with CallStarted"
        );
        let frames = got
            .iter()
            .filter(|r| matches!(r.msg, Msg::CallerAudio(_)))
            .count();
        assert!(frames >= 200, "stream {n}: only {frames} caller frames");
    }
    // A figure, not a check: the gateway's CPU for 30 calls × ~5 s with a gRPC link each.
    if let Some(cpu) = gw.cpu_time() {
        println!(
            "30 gRPC calls × 5 s: gateway CPU {:.2} s",
            cpu.as_secs_f64()
        );
    }
    gw.assert_healthy();
}

/// The caller's side declines the REFER (603): the bot learns it (TransferResult, not
/// accepted, 603) and the call goes on until the caller hangs up.
#[test]
fn declined_transfer_is_reported_and_the_call_goes_on() {
    let run = TestRun::new("bot_grpc-transfer_declined");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 500, 8000)),
        transfer_to: Some("sip:agent@192.0.2.50".into()),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(&run, &grpc_overrides(&endpoint, &[]));
    let sipp = Sipp::new(&run, "uac_refer_declined.xml", gw.sip_addr())
        .peer_args("--duration 3")
        .timeout(Duration::from_secs(30))
        .run();
    expect_success(&sipp, &gw);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let got = bot.received(0);
    let result = got
        .iter()
        .find_map(|r| match &r.msg {
            Msg::TransferResult(t) => Some(*t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TransferResult: {}", gw.log_tail(40)));
    assert!(!result.accepted, "{result:?}");
    assert_eq!(result.sip_status, 603);
    let ended = got.iter().find_map(|r| match &r.msg {
        Msg::CallEnded(e) => Some(e.reason.clone()),
        _ => None,
    });
    assert_eq!(
        ended.as_deref(),
        Some("RemoteHangup"),
        "the caller hung up, not us"
    );
    gw.assert_healthy();
}

/// `bot.grpc.audio_source = "processed"`: the bot gets what the barge-in VAD heard, in 32 ms
/// chunks, with the line's echo of the bot's own prompt cancelled (and noise suppressed);
/// `"received"` gets 20 ms frames with the echo as it came.
#[test]
fn processed_caller_audio_has_the_bots_own_echo_removed() {
    let echo_level = |source: &str| -> (usize, f64) {
        let run = TestRun::new(&format!("bot_grpc-audio_source_{source}"));
        let bot = GrpcBot::start(Script {
            prompt: Some(tone_prompt("prompt", 440.0, 8000, 8000)),
            ..Default::default()
        });
        let endpoint = bot.endpoint();
        let gw = Gateway::start(
            &run,
            &grpc_overrides(&endpoint, &[("bot.grpc.audio_source", source)]),
        );
        let peer = "--echo-erl-db 10 --echo-delay-ms 30";
        let (_sipp, r) = call_with_peer(&run, &gw, 6000, 6.5, peer);
        assert!(
            bot.wait_for(0, Duration::from_secs(3), |m| matches!(
                m,
                Msg::CallEnded(_)
            )),
            "no CallEnded: {}",
            summarize(&r)
        );
        let audio: Vec<(u64, Vec<u8>)> = bot
            .received(0)
            .iter()
            .filter_map(|x| match &x.msg {
                Msg::CallerAudio(a) => Some((x.call_time_ms, a.pcm.clone())),
                _ => None,
            })
            .collect();
        let size = audio.first().map_or(0, |a| a.1.len());
        // 2–5 s into the call: the prompt (8 s) is echoing and the canceller has converged.
        let late: Vec<f64> = audio
            .iter()
            .filter(|(t, _)| (2000..5000).contains(t))
            .map(|(_, pcm)| rms_pcm16(pcm))
            .collect();
        assert!(late.len() > 50, "{source}: {} chunks in 2-5 s", late.len());
        let mean = (late.iter().map(|x| x * x).sum::<f64>() / late.len() as f64).sqrt();
        (size, mean)
    };
    let (received_size, received_echo) = echo_level("received");
    let (processed_size, processed_echo) = echo_level("processed");
    assert_eq!(received_size, 320, "20 ms frames of PCM16 at 8 kHz");
    assert_eq!(processed_size, 512, "32 ms chunks of PCM16 at 8 kHz");
    assert!(
        received_echo > 300.0,
        "the line should echo the prompt: rms {received_echo:.0}"
    );
    let db = 20.0 * (received_echo / processed_echo.max(1.0)).log10();
    eprintln!("echo at the bot: received rms {received_echo:.0}, processed {processed_echo:.0} ({db:.1} dB less)");
    assert!(db >= 12.0, "processed audio only {db:.1} dB below received");
}

/// The caller's side accepts the REFER (202) and never sends a NOTIFY: after
/// `bot.transfer_timeout_ms` the gateway gives the transfer up, tells the bot (not accepted,
/// 408) and the call goes on until the caller hangs up.
#[test]
fn transfer_never_reported_done_times_out_and_the_call_goes_on() {
    let run = TestRun::new("bot_grpc-transfer_silent");
    let bot = GrpcBot::start(Script {
        prompt: Some(tone_prompt("prompt", 440.0, 500, 8000)),
        transfer_to: Some("sip:agent@192.0.2.50".into()),
        ..Default::default()
    });
    let endpoint = bot.endpoint();
    let mut gw = Gateway::start(
        &run,
        &grpc_overrides(&endpoint, &[("bot.transfer_timeout_ms", "1000")]),
    );
    let sipp = Sipp::new(&run, "uac_refer_silent.xml", gw.sip_addr())
        .peer_args("--duration 4")
        .timeout(Duration::from_secs(30))
        .run();
    expect_success(&sipp, &gw);
    assert!(bot.wait_for(0, Duration::from_secs(3), |m| matches!(
        m,
        Msg::CallEnded(_)
    )));
    let got = bot.received(0);
    let result = got
        .iter()
        .find_map(|r| match &r.msg {
            Msg::TransferResult(t) => Some(*t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TransferResult: {}", gw.log_tail(40)));
    assert!(!result.accepted, "{result:?}");
    assert_eq!(result.sip_status, 408);
    assert!(full_log(&gw).contains("transfer not reported done in time"));
    let ended = got.iter().find_map(|r| match &r.msg {
        Msg::CallEnded(e) => Some(e.reason.clone()),
        _ => None,
    });
    assert_eq!(
        ended.as_deref(),
        Some("RemoteHangup"),
        "the caller hung up, not us"
    );
    gw.assert_healthy();
}
