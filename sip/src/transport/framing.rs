//! SIP message framing on a TCP byte stream (RFC 3261 §18.3), kept free of IO so it is
//! tested without sockets.

use bytes::{Buf, Bytes, BytesMut};

/// How much room to make in the buffer before each socket read.
const READ_CHUNK: usize = 4096;

/// Why a TCP byte stream cannot be split into SIP messages; the connection must be closed
/// because there is no way to find the next message boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum FramingError {
    #[error("message has no Content-Length header (required on TCP)")]
    MissingContentLength,
    #[error("Content-Length header is not a single non-negative number")]
    InvalidContentLength,
    #[error("message exceeds the maximum message size")]
    TooLarge,
}

/// Splits a TCP byte stream into SIP messages (RFC 3261 §18.3): headers up to the first
/// blank line, then exactly `Content-Length` body bytes. Pure, so it is tested without sockets.
pub(super) struct TcpFramer {
    buffer: BytesMut,
    max_message_bytes: usize,
    /// How far the current header has been searched for its end, so each read only scans
    /// the new bytes.
    scanned: usize,
    /// Total length of the current message once its headers are complete.
    expected_length: Option<usize>,
}

impl TcpFramer {
    pub(super) fn new(max_message_bytes: usize) -> Self {
        TcpFramer {
            buffer: BytesMut::with_capacity(READ_CHUNK),
            max_message_bytes,
            scanned: 0,
            expected_length: None,
        }
    }

    /// The buffer to read into, with room for at least one more chunk.
    pub(super) fn read_buffer(&mut self) -> &mut BytesMut {
        self.buffer.reserve(READ_CHUNK);
        &mut self.buffer
    }

    /// The next complete message, `None` when more bytes are needed.
    pub(super) fn next_message(&mut self) -> Result<Option<Bytes>, FramingError> {
        if self.expected_length.is_none() {
            // CRLF keep-alives (RFC 5626 §3.5.1) arrive only between messages, and no
            // message starts with CR or LF, so leading ones are safe to discard.
            let keepalive = self
                .buffer
                .iter()
                .take_while(|byte| matches!(byte, b'\r' | b'\n'))
                .count();
            if keepalive > 0 {
                self.buffer.advance(keepalive);
                self.scanned = 0;
            }
            let search_from = self.scanned.saturating_sub(3);
            let header_end = self
                .buffer
                .get(search_from..)
                .and_then(find_blank_line)
                .map(|position| search_from + position);
            let Some(header_end) = header_end else {
                self.scanned = self.buffer.len();
                if self.buffer.len() > self.max_message_bytes {
                    return Err(FramingError::TooLarge);
                }
                return Ok(None);
            };
            let headers = self.buffer.get(..header_end).unwrap_or_default();
            let total = content_length(headers)?
                .checked_add(header_end + 4)
                .filter(|total| *total <= self.max_message_bytes)
                .ok_or(FramingError::TooLarge)?;
            self.expected_length = Some(total);
        }
        match self.expected_length {
            Some(total) if self.buffer.len() >= total => {
                self.expected_length = None;
                self.scanned = 0;
                Ok(Some(self.buffer.split_to(total).freeze()))
            }
            _ => Ok(None),
        }
    }
}

/// Position of the CRLF CRLF that ends a header block.
fn find_blank_line(haystack: &[u8]) -> Option<usize> {
    haystack.windows(4).position(|window| window == b"\r\n\r\n")
}

/// The value of `Content-Length` (or its compact form `l`) in a header block whose first
/// line is the start line. Repeated headers must agree.
fn content_length(headers: &[u8]) -> Result<usize, FramingError> {
    let mut found = None;
    for line in headers.split(|byte| *byte == b'\n').skip(1) {
        // Folded continuation lines start with whitespace and carry no header name.
        if line.first().is_some_and(|byte| byte.is_ascii_whitespace()) {
            continue;
        }
        let Some(colon) = line.iter().position(|byte| *byte == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let length = std::str::from_utf8(value)
            .ok()
            .and_then(|value| value.parse::<usize>().ok())
            .ok_or(FramingError::InvalidContentLength)?;
        if found.is_some_and(|previous| previous != length) {
            return Err(FramingError::InvalidContentLength);
        }
        found = Some(length);
    }
    found.ok_or(FramingError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1500;

    fn request(body: &str) -> String {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn framer_splits_pipelined_and_partial_messages() {
        let mut framer = TcpFramer::new(MAX);
        let first = request("hello");
        let second = request("");
        let stream = format!("\r\n\r\n{first}\r\n{second}");
        let (head, tail) = stream.as_bytes().split_at(30);
        framer.read_buffer().extend_from_slice(head);
        assert_eq!(framer.next_message(), Ok(None));
        framer.read_buffer().extend_from_slice(tail);
        assert_eq!(framer.next_message(), Ok(Some(Bytes::from(first))));
        assert_eq!(framer.next_message(), Ok(Some(Bytes::from(second))));
        assert_eq!(framer.next_message(), Ok(None));
        assert!(framer.buffer.is_empty());
    }

    #[test]
    fn framer_waits_for_the_whole_body() {
        let mut framer = TcpFramer::new(MAX);
        let message = request("0123456789");
        for byte in message.as_bytes() {
            assert_eq!(framer.next_message(), Ok(None));
            framer.read_buffer().extend_from_slice(&[*byte]);
        }
        assert_eq!(framer.next_message(), Ok(Some(Bytes::from(message))));
    }

    #[test]
    fn framer_content_length_forms() {
        let parse = |headers: &str| content_length(headers.as_bytes());
        assert_eq!(parse("INVITE x SIP/2.0\r\nl: 12"), Ok(12));
        assert_eq!(parse("INVITE x SIP/2.0\r\ncontent-LENGTH :  7 "), Ok(7));
        assert_eq!(
            parse("INVITE x SIP/2.0\r\nl: 3\r\nContent-Length: 3"),
            Ok(3)
        );
        // The start line and folded lines are not headers.
        assert_eq!(
            parse("Content-Length: 5\r\nVia: x\r\n Content-Length: 5"),
            Err(FramingError::MissingContentLength)
        );
        let invalid = [
            "l: 3\r\nl: 4",
            "l: -1",
            "l: ",
            "l: 99999999999999999999999",
            "l: 1 2",
        ];
        for headers in invalid {
            assert_eq!(
                parse(&format!("X\r\n{headers}")),
                Err(FramingError::InvalidContentLength),
                "{headers}"
            );
        }
    }

    #[test]
    fn framer_rejects_oversize_and_endless_headers() {
        let mut framer = TcpFramer::new(100);
        framer
            .read_buffer()
            .extend_from_slice(b"INVITE x SIP/2.0\r\nContent-Length: 90\r\n\r\n");
        assert_eq!(framer.next_message(), Err(FramingError::TooLarge));

        let mut framer = TcpFramer::new(100);
        framer.read_buffer().extend_from_slice(&[b'a'; 101]);
        assert_eq!(framer.next_message(), Err(FramingError::TooLarge));

        let mut framer = TcpFramer::new(MAX);
        framer
            .read_buffer()
            .extend_from_slice(b"INVITE x SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(
            framer.next_message(),
            Err(FramingError::MissingContentLength)
        );
    }
}
