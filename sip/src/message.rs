//! SIP messages on the wire: parsing with size limits, request validation (RFC 3261 §8.2),
//! response construction (§8.2.6) and encoding.
//!
//! rsip does the tokenizing; this module adds what a server needs around it: a byte limit,
//! compact-form folding, Content-Length framing, requests with extension methods (which rsip
//! cannot represent), and precise 400 reasons for requests that parse but are wrong.

pub mod headers;
pub mod via;

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode};

pub use via::{stamp_top_via, top_via, TopVia, ViaError, BRANCH_MAGIC_COOKIE};

/// Default cap on one SIP message (the largest UDP payload).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_535;

/// RFC 3261 §18.1.1: requests larger than this go over TCP when the path MTU is unknown.
pub const UDP_REQUEST_LIMIT: usize = 1300;

/// Transport a message arrived on or must leave on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports carry no retransmissions and zero the absorb timers.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// Token used in `Via` (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// One message the shell must put on the wire. For TCP, `destination` names the peer whose
/// connection should carry it (the shell maps it to an existing connection or opens one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    pub destination: SocketAddr,
    pub payload: Bytes,
}

/// Why bytes could not be turned into a SIP message. Such input is dropped, never answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("empty message")]
    Empty,
    #[error("malformed SIP message: {0}")]
    Malformed(String),
}

/// A parsed message. Requests whose method rsip does not know are kept apart (with a
/// placeholder method in `request`) so that they can be answered 501 without ever being
/// mistaken for the placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Request(Request),
    Response(Response),
    ExtensionMethod { method: String, request: Request },
}

/// True for NAT keep-alives (RFC 5626 CRLF pings) that carry no message.
pub fn is_keepalive(data: &[u8]) -> bool {
    !data.is_empty()
        && data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
}

/// Parses one message (a UDP datagram or a TCP-framed message).
pub fn parse(data: &[u8], max_bytes: usize) -> Result<Inbound, ParseError> {
    if data.len() > max_bytes {
        return Err(ParseError::TooLarge {
            size: data.len(),
            max: max_bytes,
        });
    }
    // Stray CRLFs before the start line are allowed (RFC 3261 §7.5).
    let start = data
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .ok_or(ParseError::Empty)?;
    let data = data.get(start..).unwrap_or_default();
    let parsed = match SipMessage::try_from(data) {
        Ok(SipMessage::Request(r)) => Inbound::Request(r),
        Ok(SipMessage::Response(r)) => Inbound::Response(r),
        Err(err) => {
            parse_extension_method(data).ok_or_else(|| ParseError::Malformed(err.to_string()))?
        }
    };
    Ok(frame_body(parsed))
}

/// rsip rejects methods outside its fixed list. If the start line is otherwise a valid request
/// line, re-parse with a placeholder method so the request can still be answered (501).
fn parse_extension_method(data: &[u8]) -> Option<Inbound> {
    let line_end = data.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(data.get(..line_end)?).ok()?;
    let (method, rest) = line.split_once(' ')?;
    let is_token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if !is_token || !rest.ends_with(" SIP/2.0") {
        return None;
    }
    let mut substituted = Vec::with_capacity(data.len());
    substituted.extend_from_slice(b"OPTIONS ");
    substituted.extend_from_slice(data.get(method.len() + 1..)?);
    match SipMessage::try_from(substituted.as_slice()).ok()? {
        SipMessage::Request(request) => Some(Inbound::ExtensionMethod {
            method: method.to_string(),
            request,
        }),
        SipMessage::Response(_) => None,
    }
}

/// Folds compact header names and drops bytes beyond Content-Length (RFC 3261 §18.3: extra
/// bytes after the body are discarded). A Content-Length larger than the body is left for
/// validation to reject.
fn frame_body(mut parsed: Inbound) -> Inbound {
    let (headers, body) = match &mut parsed {
        Inbound::Request(r) | Inbound::ExtensionMethod { request: r, .. } => {
            (&mut r.headers, &mut r.body)
        }
        Inbound::Response(r) => (&mut r.headers, &mut r.body),
    };
    headers::normalize_compact_forms(headers);
    if let Some(Ok(len)) = headers::find(headers, "Content-Length").map(str::parse::<usize>) {
        body.truncate(len);
    }
    parsed
}

/// Checks the declared Content-Length against the body received.
pub fn content_length_ok(headers: &Headers, body_len: usize) -> bool {
    let mut values = headers::find_all(headers, "Content-Length");
    let Some(first) = values.next() else {
        return true; // optional on UDP; TCP framing is the transport's job
    };
    let Ok(declared) = first.parse::<usize>() else {
        return false;
    };
    declared == body_len && values.all(|v| v.parse::<usize>() == Ok(declared))
}

/// A request that parsed but must be refused; `reason` names the problem and becomes the
/// response's reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}")]
pub struct BadRequest {
    pub code: u16,
    pub reason: String,
}

impl BadRequest {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// The facts of a valid request that transactions and dialogs are keyed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub via: TopVia,
}

/// Validates the mandatory headers of a request (RFC 3261 §8.1.1, §8.2).
pub fn validate_request(request: &Request) -> Result<RequestSummary, BadRequest> {
    validate_request_as(request, method_name(&request.method))
}

/// As [`validate_request`], for a request whose real method is `method` (extension methods).
pub fn validate_request_as(request: &Request, method: &str) -> Result<RequestSummary, BadRequest> {
    let h = &request.headers;
    if request.version != rsip::Version::V2 {
        return Err(BadRequest::new(505, "Version Not Supported"));
    }
    let via = match top_via(request) {
        Ok(via) => via,
        Err(ViaError::Missing) => return Err(BadRequest::new(400, "Missing Via")),
        Err(ViaError::Malformed(_)) => return Err(BadRequest::new(400, "Bad Via")),
    };
    let from = headers::find(h, "From").ok_or_else(|| BadRequest::new(400, "Missing From"))?;
    if headers::split_name_addr(from).is_none() {
        return Err(BadRequest::new(400, "Bad From"));
    }
    let to = headers::find(h, "To").ok_or_else(|| BadRequest::new(400, "Missing To"))?;
    if headers::split_name_addr(to).is_none() {
        return Err(BadRequest::new(400, "Bad To"));
    }
    let call_id = headers::find(h, "Call-ID")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BadRequest::new(400, "Missing Call-ID"))?;
    let cseq_value =
        headers::find(h, "CSeq").ok_or_else(|| BadRequest::new(400, "Missing CSeq"))?;
    let (seq, cseq_method) = cseq_value
        .split_once(char::is_whitespace)
        .ok_or_else(|| BadRequest::new(400, "Bad CSeq"))?;
    // RFC 3261 §8.1.1.5: the sequence number is below 2^31.
    let cseq = seq
        .parse::<u32>()
        .ok()
        .filter(|n| *n < (1 << 31))
        .ok_or_else(|| BadRequest::new(400, "Bad CSeq"))?;
    if !cseq_method.trim().eq_ignore_ascii_case(method) {
        return Err(BadRequest::new(400, "CSeq method mismatch"));
    }
    if let Some(mf) = headers::find(h, "Max-Forwards") {
        match mf.parse::<u32>() {
            Ok(0) => return Err(BadRequest::new(483, "Too Many Hops")),
            Ok(n) if n <= 255 => {}
            _ => return Err(BadRequest::new(400, "Bad Max-Forwards")),
        }
    }
    if !content_length_ok(h, request.body.len()) {
        return Err(BadRequest::new(400, "Bad Content-Length"));
    }
    Ok(RequestSummary {
        call_id: call_id.to_string(),
        cseq,
        // RFC 2543 peers send no From tag; tolerated (§12.1.1 treats it as empty).
        from_tag: headers::tag(from).map(str::to_string),
        to_tag: headers::tag(to).map(str::to_string),
        via,
    })
}

/// Upper-case method name; ACK keeps its own name here (transaction keys fold it into INVITE).
pub fn method_name(method: &Method) -> &'static str {
    match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    }
}

/// Standard reason phrase for the codes this stack sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to `request` (RFC 3261 §8.2.6.2): Via list, From, To, Call-ID and CSeq
/// copied; `to_tag` added to To if it has none. Missing headers are skipped, so this also
/// serves the 400s sent for requests that lack them.
pub fn response_to(request: &Request, code: u16, reason: &str, to_tag: Option<&str>) -> Response {
    let mut out = Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                out.push(header.clone())
            }
            Header::To(to) => {
                let mut to = to.clone();
                if let Some(tag) = to_tag {
                    if headers::tag(to.value()).is_none() {
                        let tagged = format!("{};tag={tag}", to.value().trim());
                        to.replace(tagged);
                    }
                }
                out.push(Header::To(to));
            }
            _ => {}
        }
    }
    Response {
        status_code: StatusCode::Other(code, reason.to_string()),
        version: rsip::Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// Code and reason phrase of a status; rsip's own Display would print `487 RequestTerminated`.
pub fn status_parts(status: &StatusCode) -> (u16, &str) {
    match status {
        StatusCode::Other(code, reason) => (*code, reason.as_str()),
        other => (other.code(), reason_phrase(other.code())),
    }
}

/// Sets the message body and its Content-Type (Content-Length is written by the encoders).
pub fn set_body(headers: &mut Headers, body: &mut Vec<u8>, content_type: &str, content: Vec<u8>) {
    headers.retain(|h| !matches!(h, Header::ContentType(_)));
    headers.push(Header::ContentType(content_type.into()));
    *body = content;
}

/// Serializes a response; Content-Length always matches the body.
pub fn encode_response(response: &Response) -> Bytes {
    let (code, reason) = status_parts(&response.status_code);
    let mut head = format!("SIP/2.0 {code} {reason}\r\n");
    encode_rest(
        head_with_headers(&mut head, &response.headers),
        &response.body,
    )
}

/// Serializes a request; Content-Length always matches the body.
pub fn encode_request(request: &Request) -> Bytes {
    let mut head = format!(
        "{} {} SIP/2.0\r\n",
        method_name(&request.method),
        request.uri
    );
    encode_rest(
        head_with_headers(&mut head, &request.headers),
        &request.body,
    )
}

fn head_with_headers<'a>(head: &'a mut String, headers: &Headers) -> &'a mut String {
    for header in headers.iter() {
        if !matches!(header, Header::ContentLength(_)) {
            let (name, value) = headers::name_value(header);
            let _ = write!(head, "{name}: {value}\r\n");
        }
    }
    head
}

fn encode_rest(head: &mut String, body: &[u8]) -> Bytes {
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// The body as text, if there is one and it is UTF-8 (SDP and INFO payloads are text).
pub fn body_text(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    std::str::from_utf8(body).ok().map(str::to_string)
}

#[cfg(test)]
mod tests;
