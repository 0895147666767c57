//! Header lookup and the small text scanners SIP needs beyond what rsip offers.
//!
//! rsip stores every header as its raw string (typed parsing is on demand and fails on several
//! real-world forms), so the UA works on header text: these helpers find headers by name,
//! split comma lists, and pull URIs and parameters out of name-addr values without panicking
//! on any input.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers};

macro_rules! header_names {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Canonical name and raw value of a header.
        pub fn name_value(header: &Header) -> (&str, &str) {
            match header {
                $(Header::$variant(h) => ($name, h.value()),)*
                Header::Other(name, value) => (name.as_str(), value.as_str()),
            }
        }
    };
}

header_names! {
    Accept => "Accept", AcceptEncoding => "Accept-Encoding", AcceptLanguage => "Accept-Language",
    AlertInfo => "Alert-Info", Allow => "Allow", AuthenticationInfo => "Authentication-Info",
    Authorization => "Authorization", CSeq => "CSeq", CallId => "Call-ID",
    CallInfo => "Call-Info", Contact => "Contact", ContentDisposition => "Content-Disposition",
    ContentEncoding => "Content-Encoding", ContentLanguage => "Content-Language",
    ContentLength => "Content-Length", ContentType => "Content-Type", Date => "Date",
    ErrorInfo => "Error-Info", Event => "Event", Expires => "Expires", From => "From",
    InReplyTo => "In-Reply-To", MaxForwards => "Max-Forwards", MimeVersion => "MIME-Version",
    MinExpires => "Min-Expires", Organization => "Organization", Priority => "Priority",
    ProxyAuthenticate => "Proxy-Authenticate", ProxyAuthorization => "Proxy-Authorization",
    ProxyRequire => "Proxy-Require", RecordRoute => "Record-Route", ReplyTo => "Reply-To",
    Require => "Require", RetryAfter => "Retry-After", Route => "Route", Server => "Server",
    Subject => "Subject", SubscriptionState => "Subscription-State", Supported => "Supported",
    Timestamp => "Timestamp", To => "To", Unsupported => "Unsupported",
    UserAgent => "User-Agent", Via => "Via", Warning => "Warning",
    WwwAuthenticate => "WWW-Authenticate",
}

/// RFC 3261 §7.3.3 compact forms (plus RFC 4028's `x`) that rsip does not fold itself.
const COMPACT_FORMS: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("x", "Session-Expires"),
];

fn is_named(actual: &str, wanted: &str) -> bool {
    actual.eq_ignore_ascii_case(wanted)
        || (actual.len() == 1
            && COMPACT_FORMS.iter().any(|(short, long)| {
                short.eq_ignore_ascii_case(actual) && long.eq_ignore_ascii_case(wanted)
            }))
}

/// Rewrites compact-form headers that rsip left as `Header::Other` into their typed variants,
/// so that rsip's own accessors (and ours) see `v:` as a Via, `i:` as a Call-ID, and so on.
pub fn normalize_compact_forms(headers: &mut Headers) {
    for header in headers.iter_mut() {
        let Header::Other(name, value) = header else {
            continue;
        };
        if name.len() != 1 {
            continue;
        }
        let value = std::mem::take(value);
        let replacement = match name.to_ascii_lowercase().as_str() {
            "i" => Header::CallId(value.into()),
            "m" => Header::Contact(value.into()),
            "e" => Header::ContentEncoding(value.into()),
            "l" => Header::ContentLength(value.into()),
            "c" => Header::ContentType(value.into()),
            "f" => Header::From(value.into()),
            "s" => Header::Subject(value.into()),
            "k" => Header::Supported(value.into()),
            "t" => Header::To(value.into()),
            "v" => Header::Via(value.into()),
            _ => Header::Other(std::mem::take(name), value),
        };
        *header = replacement;
    }
}

/// Trimmed value of the first header called `name` (case-insensitive, compact forms match).
pub fn find<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (n, v) = name_value(h);
        is_named(n, name).then(|| v.trim())
    })
}

/// Trimmed values of every header called `name`, in message order.
pub fn find_all<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter_map(move |h| {
        let (n, v) = name_value(h);
        is_named(n, name).then(|| v.trim())
    })
}

/// Number of headers called `name`.
pub fn count(headers: &Headers, name: &str) -> usize {
    headers
        .iter()
        .filter(|h| is_named(name_value(h).0, name))
        .count()
}

/// Whether any header called `name` lists `token` (e.g. `Supported: timer, 100rel`).
pub fn lists_token(headers: &Headers, name: &str, token: &str) -> bool {
    find_all(headers, name)
        .flat_map(split_list)
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// Splits a header value on the commas that separate list elements, ignoring commas inside
/// quoted strings and `<...>` URIs. Elements are trimmed; empty ones are skipped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let end = top_level_comma(rest).unwrap_or(rest.len());
        let item = rest.get(..end).unwrap_or("").trim();
        rest = rest.get(end + 1..).unwrap_or("");
        if !item.is_empty() {
            return Some(item);
        }
    })
}

/// Byte index of the first comma outside quotes and angle brackets.
fn top_level_comma(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits a name-addr / addr-spec header value into `(uri, header_params)`.
/// `"Bob" <sip:bob@h;lr>;tag=1` → `("sip:bob@h;lr", ";tag=1")`; `sip:bob@h;tag=1` →
/// `("sip:bob@h", ";tag=1")` (without brackets, RFC 3261 §20 puts the parameters on the header).
pub fn split_name_addr(value: &str) -> Option<(&str, &str)> {
    let value = value.trim();
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => {
                let after = value.get(i + 1..)?;
                let close = after.find('>')?;
                let uri = after.get(..close)?.trim();
                let params = after.get(close + 1..)?;
                return (!uri.is_empty()).then_some((uri, params));
            }
            _ => {}
        }
    }
    if in_quotes {
        return None;
    }
    let (uri, params) = match value.find(';') {
        Some(i) => (value.get(..i)?, value.get(i..)?),
        None => (value, ""),
    };
    let uri = uri.trim();
    (!uri.is_empty()).then_some((uri, params))
}

/// Value of a `;name=value` parameter in a parameter string such as `;tag=abc;lr`.
/// A parameter present without a value yields `Some("")`.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (p.trim(), ""),
        };
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// The `tag` parameter of a From/To header value, if any (empty tags count as absent).
pub fn tag(value: &str) -> Option<&str> {
    let (_, params) = split_name_addr(value)?;
    param(params, "tag").filter(|t| !t.is_empty())
}

/// The user part of a SIP URI (`sip:alice@host` → `alice`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let without_scheme = uri.split_once(':')?.1;
    let (user, _) = without_scheme.split_once('@')?;
    // `user;npdi` or `user:password`: the user ends at the first of either.
    let user = user.split([';', ':']).next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in raw {
            h.push(Header::Other((*n).into(), (*v).into()));
        }
        normalize_compact_forms(&mut h);
        h
    }

    #[test]
    fn compact_forms_become_typed_headers() {
        let h = headers(&[
            ("v", "SIP/2.0/UDP a"),
            ("i", "abc"),
            ("x", "1800"),
            ("X-Y", "z"),
        ]);
        let names: Vec<&str> = h.iter().map(|h| name_value(h).0).collect();
        assert_eq!(names, vec!["Via", "Call-ID", "x", "X-Y"]);
        assert_eq!(find(&h, "Session-Expires"), Some("1800"));
        assert_eq!(find(&h, "call-id"), Some("abc"));
    }

    #[test]
    fn list_splitting_respects_quotes_and_brackets() {
        let items: Vec<&str> =
            split_list(r#""Doe, John" <sip:a@b;x=1,2>;tag=1 , <sip:c@d>,,"#).collect();
        assert_eq!(
            items,
            vec![r#""Doe, John" <sip:a@b;x=1,2>;tag=1"#, "<sip:c@d>"]
        );
    }

    #[test]
    fn name_addr_forms() {
        assert_eq!(
            split_name_addr(r#""A <b>" <sip:a@h;lr>;tag=9"#),
            Some(("sip:a@h;lr", ";tag=9"))
        );
        assert_eq!(
            split_name_addr("sip:a@h;tag=9"),
            Some(("sip:a@h", ";tag=9"))
        );
        assert_eq!(split_name_addr("<>"), None);
        assert_eq!(split_name_addr("\"unterminated <sip:a@h>"), None);
        assert_eq!(split_name_addr(""), None);
    }

    #[test]
    fn tags_and_users() {
        assert_eq!(tag("<sip:a@h>;tag=abc"), Some("abc"));
        assert_eq!(tag("<sip:a@h;tag=uri-param>"), None);
        assert_eq!(tag("<sip:a@h>;tag="), None);
        assert_eq!(tag("sip:a@h ; TAG = x1"), Some("x1"));
        assert_eq!(uri_user("sip:+4930123;npdi@h"), Some("+4930123"));
        assert_eq!(uri_user("sip:alice:secret@h"), Some("alice"));
        assert_eq!(uri_user("sip:h"), None);
        assert_eq!(uri_user("garbage"), None);
    }

    #[test]
    fn token_lists_across_headers() {
        let h = headers(&[("Supported", "100rel"), ("k", "Timer , path")]);
        assert!(lists_token(&h, "Supported", "timer"));
        assert!(!lists_token(&h, "Supported", "replaces"));
        assert_eq!(count(&h, "Supported"), 2);
    }
}
