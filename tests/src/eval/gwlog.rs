//! Barge-in decisions from the gateway's log.
//!
//! The gateway logs inside a tracing span `call{call_id=…}` (SIPp's Call-ID). Today it writes
//! the messages "barge-in" (fields `confirm_ms`, `truncated`), "caller speech started" and
//! "caller turn ended"; the integrated engine adds a `decision=` field (`tentative`, `resumed`,
//! `barge_in`, `false_barge_in`, `premature_cutoff`). Both are read, from tracing's default
//! text format (with or without ANSI colours) and from its JSON format. A `decision` field wins
//! over the message text on the same line, and a plain "barge-in" line within 250 ms of a
//! `decision=barge_in` line of the same call is the same event, counted once.

use std::collections::BTreeMap;

use serde_json::Value;

/// What the gateway decided or observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Prompt paused on suspected speech.
    Tentative,
    /// Prompt resumed after a tentative pause.
    Resumed,
    /// Prompt stopped for the caller (truncated).
    BargeIn,
    /// The gateway's own verdict that a barge-in was false.
    FalseBargeIn,
    /// The gateway's own verdict that it cut the caller off.
    PrematureCutoff,
    /// Caller speech while nothing interruptible played.
    SpeechStarted,
    TurnEnded,
    /// A `decision=` value this harness does not know (kept for the report).
    Other(String),
}

/// One event of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct GwEvent {
    pub call_id: String,
    /// Wall-clock time of the log line, ms since the Unix epoch.
    pub unix_ms: f64,
    pub kind: EventKind,
    /// True when it came from a `decision=` field, false for the legacy message text.
    pub from_decision: bool,
    /// For barge-ins: whether anything was truncated (`truncated=[]` → false; None: not logged).
    pub truncated: Option<bool>,
}

/// Window within which a legacy "barge-in" line and a `decision=barge_in` line are one event.
const DUPLICATE_MS: f64 = 250.0;

/// Every recognised event of `log`, grouped by Call-ID, in log order, duplicates merged.
pub fn events_by_call(log: &str) -> BTreeMap<String, Vec<GwEvent>> {
    let mut by_call: BTreeMap<String, Vec<GwEvent>> = BTreeMap::new();
    for event in log.lines().filter_map(parse_line) {
        by_call
            .entry(event.call_id.clone())
            .or_default()
            .push(event);
    }
    for events in by_call.values_mut() {
        let decided: Vec<f64> = events
            .iter()
            .filter(|e| e.from_decision && e.kind == EventKind::BargeIn)
            .map(|e| e.unix_ms)
            .collect();
        events.retain(|e| {
            e.from_decision
                || e.kind != EventKind::BargeIn
                || !decided
                    .iter()
                    .any(|t| (t - e.unix_ms).abs() <= DUPLICATE_MS)
        });
    }
    by_call
}

/// Parses one log line (text or JSON); None for lines without a call id or a known event.
pub fn parse_line(line: &str) -> Option<GwEvent> {
    let line = strip_ansi(line);
    let line = line.trim();
    if line.starts_with('{') {
        parse_json_line(line)
    } else {
        parse_text_line(line)
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte(@..~)
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn decision_kind(value: &str) -> EventKind {
    let v = value.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match v.as_str() {
        "tentative" | "pause" | "paused" => EventKind::Tentative,
        "resumed" | "resume" => EventKind::Resumed,
        "barge_in" | "bargein" | "confirmed" => EventKind::BargeIn,
        "false_barge_in" => EventKind::FalseBargeIn,
        "premature_cutoff" => EventKind::PrematureCutoff,
        "speech_started" => EventKind::SpeechStarted,
        "turn_ended" => EventKind::TurnEnded,
        _ => EventKind::Other(v),
    }
}

/// The message part of "message field=value …": the words before the first `key=` token.
fn message_text(body: &str) -> String {
    let is_field = |token: &str| {
        token.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
    };
    body.split_whitespace()
        .take_while(|t| !is_field(t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Exact messages only: "barge-in counters …" (the gateway's end-of-call summary) is not a
/// barge-in.
fn message_kind(message: &str) -> Option<EventKind> {
    match message_text(message).as_str() {
        "barge-in" => Some(EventKind::BargeIn),
        "caller speech started" => Some(EventKind::SpeechStarted),
        "caller turn ended" => Some(EventKind::TurnEnded),
        _ => None,
    }
}

/// The value of `key=` in `text` where the key starts a field (after a space or `{`), quoted
/// or bare (bare ends at a space, `}` or `,`).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=");
    let mut from = 0;
    while let Some(pos) = text.get(from..)?.find(&pat) {
        let at = from + pos;
        let boundary = at == 0 || matches!(text.as_bytes().get(at - 1), Some(b' ' | b'{' | b','));
        let value = text.get(at + pat.len()..)?;
        if boundary {
            if let Some(quoted) = value.strip_prefix('"') {
                return quoted.find('"').and_then(|end| quoted.get(..end));
            }
            let end = value.find([' ', '}', ',']).unwrap_or(value.len());
            return value.get(..end);
        }
        from = at + pat.len();
    }
    None
}

fn truncated_flag(value: Option<&str>) -> Option<bool> {
    value.map(|v| !v.trim().starts_with("[]"))
}

fn parse_text_line(line: &str) -> Option<GwEvent> {
    let (ts, rest) = line.split_once(char::is_whitespace)?;
    let unix_ms = parse_rfc3339_ms(ts)?;
    let call_id = field(rest, "call_id")?.to_string();
    // Message and fields follow the last span ("}: ") and the target ("a::b: ").
    let after_spans = rest
        .get(rest.find("call_id=")?..)
        .and_then(|s| s.find("}: ").and_then(|p| s.get(p + 3..)))
        .unwrap_or("");
    let body = match after_spans.split_once(' ') {
        Some((first, tail)) if first.ends_with(':') && !first.contains('=') => tail,
        _ => after_spans,
    };
    let (kind, from_decision) = match field(body, "decision") {
        Some(d) => (decision_kind(d), true),
        None => (message_kind(body)?, false),
    };
    let truncated = if kind == EventKind::BargeIn {
        truncated_flag(body.find("truncated=").and_then(|p| body.get(p + 10..)))
    } else {
        None
    };
    Some(GwEvent {
        call_id,
        unix_ms,
        kind,
        from_decision,
        truncated,
    })
}

fn parse_json_line(line: &str) -> Option<GwEvent> {
    let v: Value = serde_json::from_str(line).ok()?;
    let unix_ms = parse_rfc3339_ms(v.get("timestamp")?.as_str()?)?;
    let fields = v.get("fields");
    let text = |val: Option<&Value>| -> Option<String> {
        match val? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    let call_id = v
        .get("span")
        .and_then(|s| s.get("call_id"))
        .or_else(|| {
            v.get("spans")?
                .as_array()?
                .iter()
                .rev()
                .find_map(|s| s.get("call_id"))
        })
        .or_else(|| fields?.get("call_id"))
        .and_then(|c| text(Some(c)))?;
    let (kind, from_decision) = match fields.and_then(|f| text(f.get("decision"))) {
        Some(d) => (decision_kind(&d), true),
        None => (message_kind(&text(fields?.get("message"))?)?, false),
    };
    let truncated = if kind == EventKind::BargeIn {
        match fields.and_then(|f| f.get("truncated")) {
            Some(Value::Array(a)) => Some(!a.is_empty()),
            Some(Value::String(s)) => truncated_flag(Some(s)),
            _ => None,
        }
    } else {
        None
    };
    Some(GwEvent {
        call_id,
        unix_ms,
        kind,
        from_decision,
        truncated,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-22T04:43:53.946298Z` (or with `+hh:mm`/`-hh:mm`) → ms since the Unix epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<f64> {
    let num = |a: usize, b: usize| -> Option<i64> {
        let part = s.get(a..b)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if s.len() < 20 || s.get(4..5)? != "-" || !s.get(10..11)?.eq_ignore_ascii_case("T") {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut frac_ms = 0.0;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let frac: f64 = format!("0.{}", f.get(..digits)?).parse().ok()?;
        frac_ms = frac * 1000.0;
        rest = f.get(digits..)?;
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, om) = rest.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs as f64 * 1000.0 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "2026-11-22T04:43:53.946298Z  INFO call{call_id=1-25558@127.0.0.1}: bargein_gateway::call: barge-in confirm_ms=224 truncated=[TruncatedChunk { playback_id: \"prompt\", played_ms: 3280, total_ms: 15968 }]\n\
2026-11-22T04:43:56.607591Z  INFO call{call_id=1-25558@127.0.0.1}: bargein_gateway::call: caller turn ended\n\
2026-11-22T04:43:50.000000Z  INFO call{call_id=2-25558@127.0.0.1}: bargein_gateway::call: caller speech started\n\
2026-11-22T04:43:50.100000Z DEBUG call{call_id=2-25558@127.0.0.1}: bargein_gateway::call: media event event=PlaybackStarted\n\
2026-11-22T04:43:50.200000Z  INFO bargein_gateway::signalling: listening\n\
2026-11-22T04:43:50.300000Z  INFO call{call_id=3-1@127.0.0.1}: bargein_gateway::call: barge-in confirm_ms=210 truncated=[]\n";

    #[test]
    fn todays_text_format() {
        let calls = events_by_call(TODAY);
        assert_eq!(calls.len(), 3);
        let c1 = &calls["1-25558@127.0.0.1"];
        assert_eq!(c1.len(), 2);
        assert_eq!(c1[0].kind, EventKind::BargeIn);
        assert_eq!(c1[0].truncated, Some(true));
        assert!(!c1[0].from_decision);
        assert_eq!(c1[1].kind, EventKind::TurnEnded);
        assert!((c1[1].unix_ms - c1[0].unix_ms - 2661.293).abs() < 0.01);
        assert_eq!(calls["2-25558@127.0.0.1"][0].kind, EventKind::SpeechStarted);
        assert_eq!(calls["3-1@127.0.0.1"][0].truncated, Some(false));
    }

    #[test]
    fn decision_fields_nested_spans_and_colours() {
        let lines = [
            "2026-01-01T00:00:01.000Z  INFO call{call_id=7-9@127.0.0.1}:media{x=1}: gw::engine: paused decision=\"tentative\" p=0.7",
            "2026-01-01T00:00:01.300Z  INFO call{call_id=7-9@127.0.0.1}: gw::engine: resumed decision=resumed",
            "\u{1b}[2m2026-01-01T00:00:02.000Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[1mcall\u{1b}[0m{call_id=7-9@127.0.0.1}: gw: barge-in decision=barge_in confirm_ms=200",
            "2026-01-01T00:00:02.100Z  INFO call{call_id=7-9@127.0.0.1}: gw::call: barge-in confirm_ms=224 truncated=[x]",
            "2026-01-01T00:00:09.000Z  INFO call{call_id=7-9@127.0.0.1}: gw::call: barge-in confirm_ms=224 truncated=[x]",
            "2026-01-01T00:00:09.500Z  INFO call{call_id=7-9@127.0.0.1}: gw: verdict decision=\"false_barge_in\"",
            "2026-01-01T00:00:09.600Z  INFO call{call_id=7-9@127.0.0.1}: gw: verdict decision=premature_cutoff",
            "2026-01-01T00:00:09.700Z  INFO call{call_id=7-9@127.0.0.1}: gw: x decision=\"shrug\" last_decision=barge_in",
            "2026-01-01T00:00:09.800Z  INFO call{call_id=7-9@127.0.0.1}: gw::call: caller turn ended decision=\"turn_ended\"",
        ];
        let calls = events_by_call(&lines.join("\n"));
        let kinds: Vec<EventKind> = calls["7-9@127.0.0.1"]
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Tentative,
                EventKind::Resumed,
                EventKind::BargeIn, // decision line; the legacy line 100 ms later is merged
                EventKind::BargeIn, // legacy line far from any decision: kept
                EventKind::FalseBargeIn,
                EventKind::PrematureCutoff,
                EventKind::Other("shrug".to_string()),
                EventKind::TurnEnded,
            ]
        );
    }

    #[test]
    fn json_format() {
        let line = r#"{"timestamp":"2026-01-01T00:00:01.5Z","level":"INFO","fields":{"message":"barge-in","confirm_ms":200,"truncated":"[]"},"target":"gw","span":{"call_id":"4-1@h","name":"call"},"spans":[{"call_id":"4-1@h","name":"call"}]}"#;
        let e = parse_line(line).unwrap();
        assert_eq!(e.call_id, "4-1@h");
        assert_eq!(e.kind, EventKind::BargeIn);
        assert_eq!(e.truncated, Some(false));
        let line = r#"{"timestamp":"2026-01-01T00:00:01Z","fields":{"message":"x","decision":"tentative"},"spans":[{"call_id":"5-1@h"}]}"#;
        let e = parse_line(line).unwrap();
        assert_eq!(
            (e.call_id.as_str(), e.kind),
            ("5-1@h", EventKind::Tentative)
        );
        assert!(parse_line(
            r#"{"timestamp":"2026-01-01T00:00:01Z","fields":{"message":"barge-in"}}"#
        )
        .is_none());
        assert!(parse_line("{broken json").is_none());
    }

    #[test]
    fn junk_lines_are_ignored() {
        for line in [
            "",
            "garbage",
            "2026-13-01T00:00:00Z INFO call{call_id=1}: x: barge-in",
            "notatime INFO call{call_id=1}: x: barge-in",
            "2026-01-01T00:00:00Z INFO call{call_id=1}: x: barge-inx",
            "2026-01-01T00:00:00Z INFO x: barge-in",
            "2026-01-01T00:00:00Z  INFO call{call_id=1-9@h}: gw::call: barge-in counters barge_ins=0 tentative_pauses=0 false_barge_ins=0",
            "2026-01-01T00:00:00Z  INFO call{call_id=1-9@h}: gw::call: barge-in not confirmed: bot resumed",
        ] {
            assert!(parse_line(line).is_none(), "{line:?}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339_ms("1970-01-02T00:00:01.5Z"),
            Some(86_401_500.0)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T05:43:53+01:00"),
            parse_rfc3339_ms("2026-11-22T04:43:53Z")
        );
        // 2000-03-01 is day 11017 (leap year handling).
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(11017.0 * 86_400_000.0)
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T04:43:53",
            "2026-11-22T04:43:53.Z",
            "2026-11-22X04:43:53Z",
            "2026-11-22T04:43:53+0100",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
