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

/// `calls.record_dir`: the call is written as a stereo WAV (caller left, agent right) when it
/// ends, and the replay tool run on that recording finds the same barge-in as the live call
/// at the caller's onset.
#[test]
fn recorded_call_replays_to_the_same_barge_in() {
    use bargein_e2e::run::{gateway_bin, repo_root};

    let run = TestRun::new("bargein-recorded_call_replays");
    let dir = run.path("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let speech = run.caller_speech();
    let dir_str = dir.to_string_lossy().into_owned();
    let mut gw = Gateway::start(
        &run,
        &[
            ("bot.demo.hangup_after_reply", "true"),
            ("calls.record_dir", dir_str.as_str()),
        ],
    );
    let (_sipp, r) = call_until_gateway_bye(&run, &gw, 14.0, Some((&speech, SEND_AT_S)));
    let why = summarize(&r);
    assert!(r.stop_latency_ms.is_some(), "live call did not stop: {why}");

    // Written on a blocking thread as the call ends.
    let mut file = None;
    for _ in 0..50 {
        file = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "wav"));
        if file.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let file = file.unwrap_or_else(|| panic!("no recording in {}: {why}", dir.display()));
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !name.contains('@') && !name.contains('/'),
        "file name from the Call-ID is sanitised: {name}"
    );
    // The jitter buffer's start-up shrink (40 → 20 ms) rides along for the replay's
    // echo canceller.
    let shifts = media_wav_shifts(&file);
    assert!(
        shifts.iter().any(|&(_, s)| s == 160),
        "recording lists the jitter buffer's dropped frame: {shifts:?}"
    );
    let reader = hound::WavReader::open(&file).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (8000, 2));
    let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let frames = samples.len() / 2;
    assert!(
        frames as f64 / 8000.0 > SEND_AT_S + 2.0,
        "recording of {:.1} s is shorter than the call: {why}",
        frames as f64 / 8000.0
    );
    // Frame levels (20 ms) of each channel.
    let level = |ch: usize, frame: usize| -> f64 {
        let s = &samples[frame * 320..(frame + 1) * 320];
        let e: f64 = s
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|&v| f64::from(v).powi(2))
            .sum();
        10.0 * (e / 160.0 / 32768f64.powi(2) + 1e-12).log10()
    };
    let agent_voiced = (0..frames / 160).filter(|&f| level(1, f) > -45.0).count();
    assert!(agent_voiced > 50, "agent channel holds the prompt: {why}");
    // The caller's onset in the recording: the first loud caller frame after 2 s (the echo
    // of the prompt stays well below the caller's level).
    let onset_s = (100..frames / 160)
        .find(|&f| level(0, f) > -30.0)
        .map(|f| f as f64 * 0.02)
        .unwrap_or_else(|| panic!("no caller speech in the recording: {why}"));

    let out = std::process::Command::new(gateway_bin())
        .current_dir(repo_root())
        .args(["replay", "--stereo"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay failed: {stdout}");
    let onsets: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("t=") && l.contains(" barge_in "))
        .filter_map(|l| l.split("onset t=").nth(1)?.split('s').next()?.parse().ok())
        .collect();
    assert_eq!(onsets.len(), 1, "one barge-in, as live:\n{stdout}");
    assert!(
        (onsets[0] - onset_s).abs() < 0.3,
        "replayed barge-in onset {:.2} s vs caller onset {onset_s:.2} s in the recording:\n{stdout}",
        onsets[0]
    );
    gw.assert_healthy();
}

/// The `bgts` chunk of a gateway recording: (frame, shift) pairs of two LE 32-bit integers.
fn media_wav_shifts(path: &std::path::Path) -> Vec<(u32, i32)> {
    let bytes = std::fs::read(path).unwrap();
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if &bytes[pos..pos + 4] == b"bgts" {
            return bytes[pos + 8..pos + 8 + size]
                .chunks_exact(8)
                .map(|e| {
                    (
                        u32::from_le_bytes(e[..4].try_into().unwrap()),
                        i32::from_le_bytes(e[4..].try_into().unwrap()),
                    )
                })
                .collect();
        }
        pos += 8 + size + size % 2;
    }
    Vec::new()
}
