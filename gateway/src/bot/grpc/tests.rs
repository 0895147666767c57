//! Message translation both ways, without a network.

use super::*;
use crate::bot::CommandError;

fn play(id: &str, audio: Vec<u8>, rate: u32, text: &str) -> pb::BotMessage {
    pb::BotMessage {
        msg: Some(pb::bot_message::Msg::Play(pb::Play {
            playback_id: id.into(),
            audio,
            encoding: pb::AudioEncoding::Pcm16 as i32,
            sample_rate: rate,
            text: text.into(),
            words: Vec::new(),
            interruptible: true,
        })),
    }
}

fn only(mut msgs: Vec<pb::GatewayMessage>) -> Out {
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    msgs.remove(0).msg.expect("a message")
}

#[test]
fn play_becomes_8k_samples_and_its_text_is_kept_for_the_cut() {
    let mut t = Translator::new(8000);
    // 1 s at 16 kHz → 8000 samples at 8 kHz.
    let cmd = t
        .bot_message(play("p1", vec![0; 32_000], 16_000, "one two three four"))
        .unwrap();
    match cmd {
        Some(BotCommand::Play {
            playback_id,
            samples,
            interruptible,
        }) => {
            assert_eq!(playback_id, "p1");
            assert_eq!(samples.len(), 8000);
            assert!(interruptible);
        }
        other => panic!("{other:?}"),
    }
    t.event(BotEvent::MarkReached {
        playback_id: "p1".into(),
        mark: "m-half".into(),
    });
    let out = only(t.event(BotEvent::BargeIn {
        truncated: vec![
            Truncation {
                playback_id: "p1".into(),
                played_ms: 500,
                total_ms: 1000,
            },
            // A pure mark queued behind: no audio, not reported.
            Truncation {
                playback_id: "p1".into(),
                played_ms: 0,
                total_ms: 0,
            },
        ],
    }));
    let Out::BargeIn(b) = out else {
        panic!("{out:?}")
    };
    assert!(!b.tentative);
    assert_eq!(b.chunks.len(), 1);
    let c = &b.chunks[0];
    assert_eq!((c.played_ms, c.total_ms), (500, 1000));
    assert_eq!(c.delivered_text, "one two");
    assert_eq!(c.remaining_text, "three four");
    assert_eq!(c.marks_passed, vec!["m-half".to_string()]);
}

#[test]
fn word_timings_decide_the_delivered_text() {
    let mut t = Translator::new(8000);
    let mut m = play("p", vec![0; 16_000], 8000, "Hello there, caller");
    if let Some(pb::bot_message::Msg::Play(p)) = &mut m.msg {
        p.words = vec![
            pb::WordTiming {
                word: "Hello".into(),
                start_ms: 0,
                end_ms: 300,
            },
            pb::WordTiming {
                word: "there".into(),
                start_ms: 300,
                end_ms: 1500,
            },
            pb::WordTiming {
                word: "caller".into(),
                start_ms: 1500,
                end_ms: 2000,
            },
        ];
    }
    t.bot_message(m).unwrap();
    let Out::BargeIn(b) = only(t.event(BotEvent::BargeIn {
        truncated: vec![Truncation {
            playback_id: "p".into(),
            played_ms: 1000,
            total_ms: 2000,
        }],
    })) else {
        panic!()
    };
    // Proportion would give "Hello there,"; the timings say "there" was not finished.
    assert_eq!(b.chunks[0].delivered_text, "Hello");
    assert_eq!(b.chunks[0].remaining_text, "there, caller");
}

#[test]
fn malformed_messages_are_refused_with_a_reason() {
    let mut t = Translator::new(8000);
    let cases = [
        (play("", vec![0; 320], 8000, ""), "empty playback_id"),
        (play("odd", vec![0; 321], 8000, ""), "even number of bytes"),
        (play("rate", vec![0; 320], 44_100, ""), "44100"),
        (play("none", Vec::new(), 8000, ""), "without audio"),
        (pb::BotMessage { msg: None }, "empty BotMessage"),
        (
            pb::BotMessage {
                msg: Some(pb::bot_message::Msg::Transfer(pb::Transfer {
                    target: "tel:+1555".into(),
                })),
            },
            "not a sip: URI",
        ),
        (
            pb::BotMessage {
                msg: Some(pb::bot_message::Msg::Mark(pb::Mark {
                    playback_id: "x".into(),
                    name: String::new(),
                })),
            },
            "without a name",
        ),
    ];
    for (msg, expected) in cases {
        let err = t.bot_message(msg).unwrap_err();
        assert!(
            err.message.contains(expected),
            "{} !~ {expected}",
            err.message
        );
    }
    let mut bad_encoding = play("enc", vec![0; 320], 8000, "");
    if let Some(pb::bot_message::Msg::Play(p)) = &mut bad_encoding.msg {
        p.encoding = 0;
    }
    assert!(t.bot_message(bad_encoding).is_err());
    assert!(t.plays.is_empty(), "nothing refused is remembered");
}

#[test]
fn commands_translate() {
    let mut t = Translator::new(8000);
    let m = |msg| pb::BotMessage { msg: Some(msg) };
    use pb::bot_message::Msg;
    assert_eq!(
        t.bot_message(m(Msg::Clear(pb::Clear {}))),
        Ok(Some(BotCommand::Clear))
    );
    assert_eq!(
        t.bot_message(m(Msg::RejectBargeIn(pb::RejectBargeIn {}))),
        Ok(Some(BotCommand::RejectBargeIn))
    );
    assert_eq!(
        t.bot_message(m(Msg::Transfer(pb::Transfer {
            target: "sip:agent@pbx".into()
        }))),
        Ok(Some(BotCommand::Transfer {
            target: "sip:agent@pbx".into()
        }))
    );
    assert_eq!(
        t.bot_message(m(Msg::SendDtmf(pb::SendDtmf {
            digits: "12#".into(),
            duration_ms: 0,
        }))),
        Ok(Some(BotCommand::SendDtmf {
            digits: "12#".into(),
            duration_ms: 160
        }))
    );
    for (digits, duration_ms) in [("", 0), ("1x", 0), ("1", 10), ("1", 5000)] {
        let msg = m(Msg::SendDtmf(pb::SendDtmf {
            digits: digits.into(),
            duration_ms,
        }));
        assert!(t.bot_message(msg).is_err(), "{digits:?} {duration_ms}");
    }
    let update = t
        .bot_message(m(Msg::UpdateBargeIn(pb::UpdateBargeIn {
            mode: Some("immediate".into()),
            min_speech_ms: Some(300),
            ..Default::default()
        })))
        .unwrap();
    assert_eq!(
        update,
        Some(BotCommand::UpdateBargeIn(BargeInUpdate {
            mode: Some("immediate".into()),
            min_speech_ms: Some(300),
            ..Default::default()
        }))
    );
}

#[test]
fn events_translate() {
    let mut t = Translator::new(8000);
    assert!(t
        .event(BotEvent::CallStarted(CallInfo::default()))
        .is_empty());
    let onset = t.start + std::time::Duration::from_millis(1234);
    assert!(t
        .event(BotEvent::BargeInTiming { onset, dtmf: true })
        .is_empty());
    assert!(matches!(
        only(t.event(BotEvent::BargeInDecisionRequested)),
        Out::BargeIn(pb::BargeIn {
            tentative: true,
            decision_requested: true,
            dtmf: true,
            speech_onset_ms: 1234,
            ..
        })
    ));
    t.bot_message(play("big", vec![0; 320], 8000, "")).unwrap();
    let out = only(t.event(BotEvent::CommandFailed(CommandError {
        kind: CommandErrorKind::BufferFull,
        message: "full".into(),
        playback_id: Some("big".into()),
    })));
    assert!(
        matches!(out, Out::Error(ref e) if e.code == pb::ErrorCode::BufferFull as i32 && e.playback_id == "big")
    );
    assert!(t.plays.is_empty(), "the refused chunk is forgotten");
    t.bot_message(play("p", vec![0; 1600], 8000, "hi")).unwrap();
    let out = only(t.event(BotEvent::PlaybackFinished {
        playback_id: "p".into(),
    }));
    assert!(matches!(out, Out::PlaybackFinished(ref f) if f.played_ms == 100));
    let out = only(t.event(BotEvent::Dtmf { digit: '#' }));
    assert!(matches!(out, Out::Dtmf(ref d) if d.digit == "#"));
}

#[test]
fn caller_audio_at_16k_doubles_the_samples() {
    let mut t = Translator::new(16000);
    let msg = t.audio(CallerAudio {
        at_sample: 160,
        samples: Arc::from(vec![100i16; 160]),
    });
    let Some(Out::CallerAudio(a)) = msg.msg else {
        panic!()
    };
    assert_eq!(a.pcm.len(), 640);
    assert_eq!(a.at_sample_8k, 160);
    let mut t = Translator::new(8000);
    let Some(Out::CallerAudio(a)) = t
        .audio(CallerAudio {
            at_sample: 0,
            samples: Arc::from(vec![-2i16; 160]),
        })
        .msg
    else {
        panic!()
    };
    assert_eq!(&a.pcm[..2], &(-2i16).to_le_bytes());
}

#[test]
fn request_metadata_from_config_and_sip_headers() {
    let g = GrpcBotConfig {
        endpoint: "http://127.0.0.1:1".into(),
        audio_rate: 8000,
        audio_source: "received".into(),
        tls_ca: String::new(),
        metadata: [("authorization".to_string(), "Bearer x".to_string())]
            .into_iter()
            .collect(),
        metadata_headers: vec![
            "X-Tenant".into(),
            "P-Asserted-Identity".into(),
            "Diversion".into(),
            "X-Absent".into(),
        ],
    };
    let info = CallInfo {
        call_id: "abc@host".into(),
        p_asserted_identity: Some("<sip:+15551234@carrier>".into()),
        diversion: vec!["<sip:100@pbx>;reason=busy".into()],
        headers: vec![("x-tenant".into(), "acme".into())],
        ..Default::default()
    };
    assert_eq!(
        request_metadata(&g, &info),
        vec![
            ("authorization".to_string(), "Bearer x".to_string()),
            ("x-tenant".into(), "acme".into()),
            (
                "p-asserted-identity".into(),
                "<sip:+15551234@carrier>".into()
            ),
            ("diversion".into(), "<sip:100@pbx>;reason=busy".into()),
            ("x-bargein-call-id".into(), "abc@host".into()),
        ]
    );
}
