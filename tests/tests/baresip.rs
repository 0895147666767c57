//! A real softphone (baresip) calls the gateway.

use std::time::Duration;

use bargein_e2e::analysis::{overlap_ms, total_ms, wav_voiced_intervals};
use bargein_e2e::audio::{make_silence_wav, pad_wav, read_wav};
use bargein_e2e::{baresip, Gateway, TestRun};

/// baresip dials with 6 s of silence as microphone (it hangs up when the file ends); what it
/// received and decoded must contain the prompt: at least 1 s of speech, most of the call.
#[test]
fn baresip_call_records_the_prompt() {
    let run = TestRun::new("baresip-records_prompt");
    let silence = run.path("silence6.wav");
    make_silence_wav(&silence, 6.0).unwrap();
    let mut gw = Gateway::start(&run, &[]);
    let call = baresip::call(&run, gw.sip_addr(), &silence, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    assert!(
        call.events.iter().any(|e| e == "CALL_ESTABLISHED"),
        "{:?}",
        call.events
    );
    let wav = call
        .received_wav
        .unwrap_or_else(|| panic!("baresip recorded nothing; see {}", call.log.display()));
    let received = read_wav(&wav).unwrap();
    let voiced = wav_voiced_intervals(&received);
    let len_ms = received.len() as f64 / 8.0;
    assert!(
        total_ms(&voiced) >= 1000.0,
        "prompt not heard by baresip: {voiced:?} in {}",
        wav.display()
    );
    assert!(
        total_ms(&voiced) >= 0.5 * len_ms,
        "prompt should fill most of the call: {voiced:?} of {len_ms} ms"
    );
    gw.assert_healthy();
}

/// baresip speaks at 3 s (3 s silence + speech + 6 s silence as microphone): in what it
/// received, the prompt stops within ~1 s of its speech and a reply follows. baresip's sent and
/// received recordings start together, so the sent one locates the speech on the same clock
/// (300 ms tolerance for the two audio paths' buffering).
#[test]
fn baresip_barge_in_stops_prompt_and_gets_reply() {
    let run = TestRun::new("baresip-barge_in");
    let speech = run.caller_speech();
    let mic = run.path("mic.wav");
    pad_wav(&speech, &mic, 3.0, 6.0).unwrap();
    let mut gw = Gateway::start(&run, &[]);
    let call = baresip::call(&run, gw.sip_addr(), &mic, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let (Some(rx), Some(tx)) = (call.received_wav, call.sent_wav) else {
        panic!("baresip recordings missing; see {}", call.log.display());
    };
    let sent = wav_voiced_intervals(&read_wav(&tx).unwrap());
    let heard = wav_voiced_intervals(&read_wav(&rx).unwrap());
    let (Some(first), Some(last)) = (sent.first(), sent.last()) else {
        panic!("baresip sent no speech: {}", tx.display())
    };
    let (onset, end) = (first[0], last[1]);
    let ctx = format!("sent speech {onset:.0}-{end:.0} ms, heard {heard:?}");
    assert!(
        overlap_ms(&heard, 0.0, onset) >= 1000.0,
        "prompt before speech: {ctx}"
    );
    assert_eq!(
        overlap_ms(&heard, onset + 1300.0, end),
        0.0,
        "prompt continued over the caller: {ctx}"
    );
    assert!(
        heard.iter().any(|[a, b]| *a > end && b - a >= 1000.0),
        "no reply after the speech: {ctx}"
    );
    gw.assert_healthy();
}
