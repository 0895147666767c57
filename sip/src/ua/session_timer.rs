//! RFC 4028 session timers, UAS side, with the peer as refresher.
//!
//! We only ever *supervise*: when the caller supports timers and lets the UAC refresh, our 2xx
//! says `Session-Expires: N;refresher=uac` with `Require: timer`, and if no re-INVITE/UPDATE
//! refresh arrives before the interval runs out we send a BYE. When the caller cannot refresh
//! (no `Supported: timer`) or asks us to (`refresher=uas`), we leave Session-Expires out of the
//! 2xx, which RFC 4028 §7.4 reads as "no session timer" (we never send refreshes ourselves).

use std::time::{Duration, Instant};

use rsip::{Header, Headers};

use crate::message::headers::{find, lists_token, param};

/// RFC 4028 §4: the smallest interval anyone may ask for.
pub const RFC_MIN_SE: u32 = 90;

/// Outcome of looking at a request's session-timer headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// No session timer for this session (not asked, or we cannot be the non-refresher).
    Off,
    /// Supervise refreshes every `interval_secs`; the peer refreshes.
    PeerRefreshes { interval_secs: u32 },
    /// Interval below our minimum: answer 422 with `Min-SE`.
    TooSmall { min_se: u32 },
    /// Session-Expires present but unreadable: answer 400.
    Malformed,
}

pub(crate) fn negotiate(headers: &Headers, min_se: u32) -> Negotiation {
    let Some(value) = find(headers, "Session-Expires") else {
        return Negotiation::Off;
    };
    let mut parts = value.splitn(2, ';');
    let Ok(interval_secs) = parts.next().unwrap_or("").trim().parse::<u32>() else {
        return Negotiation::Malformed;
    };
    let params = value
        .get(value.find(';').unwrap_or(value.len())..)
        .unwrap_or("");
    let min_se = min_se.max(RFC_MIN_SE);
    if interval_secs < min_se {
        return Negotiation::TooSmall { min_se };
    }
    let peer_supports =
        lists_token(headers, "Supported", "timer") || lists_token(headers, "Require", "timer");
    let refresher = param(params, "refresher").unwrap_or("");
    if !peer_supports || refresher.eq_ignore_ascii_case("uas") {
        return Negotiation::Off;
    }
    Negotiation::PeerRefreshes { interval_secs }
}

/// Headers of a 2xx that accepts the peer as refresher (RFC 4028 §9).
pub(crate) fn response_headers(interval_secs: u32) -> Vec<Header> {
    vec![
        Header::Other(
            "Session-Expires".into(),
            format!("{interval_secs};refresher=uac"),
        ),
        Header::Require("timer".into()),
    ]
}

/// RFC 4028 §10: the non-refresher sends its BYE slightly before expiry, at the interval minus
/// the lesser of 32 s and a third of the interval.
pub(crate) fn expiry_deadline(now: Instant, interval_secs: u32) -> Instant {
    let interval = Duration::from_secs(u64::from(interval_secs));
    let margin = Duration::from_secs(32).min(interval / 3);
    now + (interval - margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in raw {
            h.push(Header::Other((*n).into(), (*v).into()));
        }
        crate::message::headers::normalize_compact_forms(&mut h);
        h
    }

    #[test]
    fn peer_with_timer_support_refreshes() {
        let h = headers(&[("Session-Expires", "1800"), ("Supported", "timer")]);
        assert_eq!(
            negotiate(&h, 90),
            Negotiation::PeerRefreshes {
                interval_secs: 1800
            }
        );
        let h = headers(&[("x", "600;refresher=uac"), ("Require", "timer")]);
        assert_eq!(
            negotiate(&h, 90),
            Negotiation::PeerRefreshes { interval_secs: 600 }
        );
    }

    #[test]
    fn no_timer_when_the_peer_cannot_refresh() {
        assert_eq!(
            negotiate(&headers(&[("Session-Expires", "1800")]), 90),
            Negotiation::Off
        );
        let h = headers(&[
            ("Session-Expires", "1800;refresher=uas"),
            ("Supported", "timer"),
        ]);
        assert_eq!(negotiate(&h, 90), Negotiation::Off);
        assert_eq!(negotiate(&headers(&[]), 90), Negotiation::Off);
    }

    #[test]
    fn too_small_and_malformed() {
        let h = headers(&[("Session-Expires", "60"), ("Supported", "timer")]);
        assert_eq!(
            negotiate(&h, 30),
            Negotiation::TooSmall { min_se: 90 },
            "90 s floor"
        );
        let h = headers(&[("Session-Expires", "200"), ("Supported", "timer")]);
        assert_eq!(negotiate(&h, 300), Negotiation::TooSmall { min_se: 300 });
        let h = headers(&[("Session-Expires", "soon")]);
        assert_eq!(negotiate(&h, 90), Negotiation::Malformed);
    }

    #[test]
    fn bye_goes_out_before_expiry() {
        let t0 = Instant::now();
        assert_eq!(expiry_deadline(t0, 1800), t0 + Duration::from_secs(1768));
        assert_eq!(expiry_deadline(t0, 90), t0 + Duration::from_secs(60));
    }
}
