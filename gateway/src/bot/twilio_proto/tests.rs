use super::*;
use crate::bot::Truncation;

fn stream(barge_in_event: bool) -> TwilioStream {
    let mut params = BTreeMap::new();
    params.insert("tenant".to_string(), "acme".to_string());
    TwilioStream::new("MZ1".into(), "call-1".into(), params, barge_in_event)
}

fn info() -> CallInfo {
    CallInfo {
        call_id: "call-1".into(),
        from: "<sip:alice@a.example>;tag=1".into(),
        to: "<sip:1000@b.example>".into(),
        to_user: Some("1000".into()),
        p_asserted_identity: Some("<sip:+15551234@a.example>".into()),
        diversion: vec!["<sip:2000@b.example>;reason=busy".into()],
        headers: vec![("X-Trunk".into(), "acme".into())],
    }
}

fn parse(frame: &str) -> Value {
    serde_json::from_str(frame).unwrap()
}

fn frames(out: &Output) -> Vec<Value> {
    out.frames.iter().map(|f| parse(f)).collect()
}

fn mark_echo(seq: &str, name: &str) -> Value {
    json!({"event": "mark", "sequenceNumber": seq, "streamSid": "MZ1", "mark": {"name": name}})
}

/// A started stream, with `n` bot marks queued (each after 160 bytes of audio).
fn started_with_marks(names: &[&str]) -> (TwilioStream, Vec<BotCommand>) {
    let mut s = stream(false);
    s.on_event(&BotEvent::CallStarted(info()));
    let mut cmds = Vec::new();
    let payload = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
    for name in names {
        let media = json!({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}});
        cmds.extend(s.on_bot_text(&media.to_string()).commands);
        let mark = json!({"event": "mark", "streamSid": "MZ1", "mark": {"name": name}});
        cmds.extend(s.on_bot_text(&mark.to_string()).commands);
    }
    (s, cmds)
}

fn mark_id(cmds: &[BotCommand], name: &str) -> String {
    cmds.iter()
        .find_map(|c| match c {
            BotCommand::Mark {
                playback_id,
                name: n,
            } if n == name => Some(playback_id.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn connected_start_media_dtmf_stop_are_twilio_exact() {
    let mut s = stream(false);
    assert_eq!(
        parse(&s.connected()),
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    );
    let audio = CallerAudio {
        at_sample: 0,
        samples: Arc::from(vec![0i16; 160]),
    };
    assert_eq!(s.caller_audio(&audio), None, "no media before start");
    let out = s.on_event(&BotEvent::CallStarted(info()));
    assert_eq!(
        frames(&out),
        [json!({
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "accountSid": ACCOUNT_SID,
                "callSid": "call-1",
                "tracks": ["inbound"],
                "customParameters": {
                    "from": "<sip:alice@a.example>;tag=1",
                    "to": "<sip:1000@b.example>",
                    "to_user": "1000",
                    "p_asserted_identity": "<sip:+15551234@a.example>",
                    "diversion": "<sip:2000@b.example>;reason=busy",
                    "tenant": "acme",
                },
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })]
    );
    // µ-law digital silence is 0xff.
    let silence = base64::engine::general_purpose::STANDARD.encode([0xffu8; 160]);
    let first = parse(&s.caller_audio(&audio).unwrap());
    assert_eq!(
        first,
        json!({
            "event": "media",
            "sequenceNumber": "2",
            "streamSid": "MZ1",
            "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": silence},
        })
    );
    let later = CallerAudio {
        at_sample: 160,
        samples: Arc::from(vec![0i16; 160]),
    };
    let second = parse(&s.caller_audio(&later).unwrap());
    assert_eq!(second["sequenceNumber"], "3");
    assert_eq!(second["media"]["chunk"], "2");
    assert_eq!(second["media"]["timestamp"], "20");
    let out = s.on_event(&BotEvent::Dtmf { digit: '#' });
    assert_eq!(
        frames(&out),
        [json!({
            "event": "dtmf", "sequenceNumber": "4", "streamSid": "MZ1",
            "dtmf": {"track": "inbound_track", "digit": "#"},
        })]
    );
    let out = s.on_event(&BotEvent::CallEnded {
        reason: "bye".into(),
    });
    assert_eq!(
        frames(&out),
        [json!({
            "event": "stop", "sequenceNumber": "5", "streamSid": "MZ1",
            "stop": {"accountSid": ACCOUNT_SID, "callSid": "call-1"},
        })]
    );
    assert!(s.is_stopped());
    assert_eq!(s.caller_audio(&later), None, "nothing after stop");
    assert!(s.on_event(&BotEvent::Dtmf { digit: '1' }).frames.is_empty());
}

#[test]
fn configured_parameters_win_over_sip_ones() {
    let mut params = BTreeMap::new();
    params.insert("from".to_string(), "override".to_string());
    let mut s = TwilioStream::new("MZ2".into(), "c".into(), params, false);
    let start = parse(&s.start(&CallInfo::default()));
    assert_eq!(
        start["start"]["customParameters"],
        json!({"from": "override", "to": ""})
    );
}

#[test]
fn bot_media_becomes_interruptible_audio_in_order() {
    let mut s = stream(false);
    // 4 bytes: µ-law 0xff = 0, 0x80 = +32124, 0x00 = -32124, 0x7f = 0.
    let payload = base64::engine::general_purpose::STANDARD.encode([0xffu8, 0x80, 0x00, 0x7f]);
    let out = s.on_bot_text(
        &json!({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}}).to_string(),
    );
    assert!(out.frames.is_empty() && out.ignored.is_none());
    match out.commands.as_slice() {
        [BotCommand::Play {
            samples,
            interruptible: true,
            ..
        }] => assert_eq!(&samples[..], &[0, 32124, -32124, 0]),
        other => panic!("expected one Play, got {other:?}"),
    }
    assert_eq!(s.stats().media_received, 1);
}

#[test]
fn mark_is_echoed_once_when_reached() {
    let (mut s, cmds) = started_with_marks(&["one", "two"]);
    assert_eq!(cmds.len(), 4, "play, mark, play, mark: {cmds:?}");
    let one = mark_id(&cmds, "one");
    let out = s.on_event(&BotEvent::MarkReached {
        playback_id: one.clone(),
        mark: "one".into(),
    });
    assert_eq!(frames(&out), [mark_echo("2", "one")]);
    // A duplicate report (cannot happen, but must not double-echo).
    let out = s.on_event(&BotEvent::MarkReached {
        playback_id: one,
        mark: "one".into(),
    });
    assert!(out.frames.is_empty());
}

#[test]
fn clear_drops_the_buffer_and_echoes_every_pending_mark() {
    let (mut s, cmds) = started_with_marks(&["one", "two", "three"]);
    let one = mark_id(&cmds, "one");
    s.on_event(&BotEvent::MarkReached {
        playback_id: one,
        mark: "one".into(),
    });
    let out = s.on_bot_text(r#"{"event":"clear","streamSid":"MZ1"}"#);
    assert_eq!(out.commands, [BotCommand::Clear]);
    assert_eq!(
        frames(&out),
        [mark_echo("3", "two"), mark_echo("4", "three")]
    );
    // The call reports the dropped mark chunks afterwards: nothing is echoed twice.
    let two = mark_id(&cmds, "two");
    let out = s.on_event(&BotEvent::MarkReached {
        playback_id: two,
        mark: "two".into(),
    });
    assert!(out.frames.is_empty());
    assert_eq!(s.stats().clears, 1);
    assert_eq!(s.stats().marks_echoed, 3);
}

#[test]
fn gateway_barge_in_echoes_exactly_the_dropped_marks() {
    let (mut s, cmds) = started_with_marks(&["one", "two", "three"]);
    let [one, two, three] = ["one", "two", "three"].map(|n| mark_id(&cmds, n));
    s.on_event(&BotEvent::MarkReached {
        playback_id: one,
        mark: "one".into(),
    });
    // The barge-in dropped the audio before "two" and mark "two"; "three" was queued by the
    // bot after the truncation took effect (it is not in the report) and stays pending.
    let truncated = vec![
        Truncation {
            playback_id: "twilio-audio-1".into(),
            played_ms: 12,
            total_ms: 20,
        },
        Truncation {
            playback_id: two,
            played_ms: 0,
            total_ms: 0,
        },
    ];
    let out = s.on_event(&BotEvent::BargeIn { truncated });
    assert_eq!(
        frames(&out),
        [mark_echo("3", "two")],
        "no extra event by default"
    );
    assert!(out.commands.is_empty());
    let out = s.on_event(&BotEvent::MarkReached {
        playback_id: three,
        mark: "three".into(),
    });
    assert_eq!(frames(&out), [mark_echo("4", "three")]);
}

#[test]
fn barge_in_event_only_when_enabled() {
    let mut s = stream(true);
    s.on_event(&BotEvent::CallStarted(info()));
    let mark = s.on_bot_text(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m"}}"#);
    let id = mark_id(&mark.commands, "m");
    let out = s.on_event(&BotEvent::BargeIn {
        truncated: vec![
            Truncation {
                playback_id: "twilio-audio-0".into(),
                played_ms: 500,
                total_ms: 1000,
            },
            Truncation {
                playback_id: id,
                played_ms: 0,
                total_ms: 0,
            },
        ],
    });
    assert_eq!(
        frames(&out),
        [
            mark_echo("2", "m"),
            json!({
                "event": "bargeIn", "sequenceNumber": "3", "streamSid": "MZ1",
                "bargeIn": {"marksCleared": ["m"], "truncated": [{"playedMs": 500, "totalMs": 1000}]},
            })
        ]
    );
}

#[test]
fn decision_requests_are_confirmed_for_twilio_bots() {
    let mut s = stream(false);
    let out = s.on_event(&BotEvent::BargeInDecisionRequested);
    assert_eq!(out.commands, [BotCommand::ConfirmBargeIn]);
    assert!(out.frames.is_empty());
}

#[test]
fn malformed_bot_frames_are_counted_and_ignored() {
    let (mut s, _) = started_with_marks(&["keep"]);
    for bad in [
        "not json",
        "[]",
        r#"{"streamSid":"MZ1"}"#,
        r#"{"event":"media","media":{}}"#,
        r#"{"event":"media","media":{"payload":"%%%"}}"#,
        r#"{"event":"mark","mark":{}}"#,
        r#"{"event":"mark","mark":{"name":7}}"#,
        r#"{"event":"dance"}"#,
    ] {
        let out = s.on_bot_text(bad);
        assert!(out.ignored.is_some(), "{bad} should be ignored");
        assert!(out.frames.is_empty() && out.commands.is_empty(), "{bad}");
    }
    assert_eq!(s.stats().malformed, 8);
    // The stream goes on: a clear still echoes the pending mark.
    let out = s.on_bot_text(r#"{"event":"clear"}"#);
    assert_eq!(frames(&out), [mark_echo("2", "keep")]);
}
