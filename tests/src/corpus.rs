//! The malformed-SIP corpus (`tests/corpus/sip/`, one datagram per file) and what the gateway
//! must do with each case. Files may contain the placeholders of `sipprobe` (`{{LOCAL}}` …) so
//! responses can reach the sender. Regenerate nothing: the files are the reference bytes.

use std::path::PathBuf;

/// What the gateway must answer to one corpus datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this final status.
    Status(u16),
    /// One of these final statuses (the RFC allows several reasonable answers).
    AnyOf(&'static [u16]),
    /// No response at all within the wait (nothing to route a response to, or too big).
    Drop,
    /// This status, or silence: the message may be too broken to parse a Via from.
    StatusOrDrop(u16),
}

impl Expect {
    /// Checks an observed outcome (`None` = nothing arrived).
    pub fn check(self, got: Option<u16>) -> Result<(), String> {
        let ok = match (self, got) {
            (Expect::Status(want), Some(status)) => status == want,
            (Expect::AnyOf(allowed), Some(status)) => allowed.contains(&status),
            (Expect::Drop, None) | (Expect::StatusOrDrop(_), None) => true,
            (Expect::StatusOrDrop(want), Some(status)) => status == want,
            (Expect::Drop, Some(_)) | (Expect::Status(_), None) | (Expect::AnyOf(_), None) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {self:?}, got {}",
                got.map_or("no response".to_string(), |s| s.to_string())
            ))
        }
    }
}

/// One corpus file and its expectation.
#[derive(Debug, Clone, Copy)]
pub struct SipCase {
    pub file: &'static str,
    pub expect: Expect,
    /// Why this is the right answer.
    pub why: &'static str,
}

/// Every file of `tests/corpus/sip/` (a unit test keeps this list and the directory in sync).
pub const SIP_CASES: &[SipCase] = &[
    SipCase { file: "garbage.txt", expect: Expect::Drop, why: "not SIP: no Via to answer to" },
    SipCase { file: "binary_junk.bin", expect: Expect::Drop, why: "not SIP" },
    SipCase { file: "empty.bin", expect: Expect::Drop, why: "empty datagram (also a keep-alive form)" },
    SipCase {
        file: "truncated_invite.sip",
        expect: Expect::StatusOrDrop(400),
        why: "header section ends mid-line without CRLFCRLF; 400 if the parser salvages the Via",
    },
    SipCase { file: "missing_call_id.sip", expect: Expect::Status(400), why: "Call-ID is mandatory (RFC 3261 §8.1.1)" },
    SipCase { file: "missing_cseq.sip", expect: Expect::Status(400), why: "CSeq is mandatory (RFC 3261 §8.1.1)" },
    SipCase {
        file: "cseq_method_mismatch.sip",
        expect: Expect::Status(400),
        why: "CSeq method must match the request method (RFC 3261 §8.1.1.5)",
    },
    SipCase {
        file: "bad_content_length.sip",
        expect: Expect::Status(400),
        why: "UDP datagram shorter than Content-Length: a request gets 400 (RFC 3261 §18.3)",
    },
    SipCase {
        file: "huge_header.sip",
        expect: Expect::AnyOf(&[200, 400]),
        why: "8000-byte header, message under max_message_bytes: answer it (200) or reject it (400), never hang",
    },
    SipCase {
        file: "invalid_request_uri.sip",
        expect: Expect::StatusOrDrop(400),
        why: "Request-URI in angle brackets: the request line does not parse; 400 if the Via can still be read",
    },
    SipCase {
        file: "missing_via.sip",
        expect: Expect::StatusOrDrop(400),
        why: "no Via: no valid route for a response (RFC 3261 §18.2.2); a 400 to the source is harmless",
    },
    SipCase {
        file: "max_forwards_zero.sip",
        expect: Expect::Status(483),
        why: "INVITE with Max-Forwards 0 is a loop: 483 Too Many Hops",
    },
    SipCase {
        file: "sdp_no_common_codec.sip",
        expect: Expect::Status(488),
        why: "offer has only G.729: 488 Not Acceptable Here (RFC 3261 §13.3.1.1)",
    },
    SipCase {
        file: "sdp_no_connection_line.sip",
        expect: Expect::AnyOf(&[400, 488]),
        why: "SDP without c= has no address to send media to",
    },
    SipCase {
        file: "oversized_message.sip",
        expect: Expect::Drop,
        why: "20 KB datagram, over sip.max_message_bytes (16384): dropped",
    },
];

/// `tests/corpus/sip/`.
pub fn sip_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join("sip")
}

/// The raw bytes of a case (placeholders not yet rendered).
pub fn load(case: &SipCase) -> Result<Vec<u8>, String> {
    let path = sip_corpus_dir().join(case.file);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_directory_agree() {
        let mut on_disk: Vec<String> = std::fs::read_dir(sip_corpus_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.') && name != "README.md")
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = SIP_CASES.iter().map(|c| c.file.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        for case in SIP_CASES {
            load(case).unwrap();
        }
    }

    #[test]
    fn corpus_files_have_the_properties_their_names_claim() {
        let text = |name: &str| {
            String::from_utf8(load(SIP_CASES.iter().find(|c| c.file == name).unwrap()).unwrap())
                .unwrap()
        };
        assert!(load(&SIP_CASES[2]).unwrap().is_empty());
        assert!(!text("truncated_invite.sip").contains("\r\n\r\n"));
        assert!(!text("missing_call_id.sip").contains("Call-ID"));
        assert!(!text("missing_cseq.sip").contains("CSeq"));
        assert!(
            text("cseq_method_mismatch.sip").starts_with("OPTIONS ")
                && text("cseq_method_mismatch.sip").contains("CSeq: 1 INVITE")
        );
        assert!(!text("missing_via.sip").contains("Via"));
        assert!(text("max_forwards_zero.sip").contains("Max-Forwards: 0\r\n"));
        assert!(!text("sdp_no_connection_line.sip").contains("c=IN"));
        assert!(text("sdp_no_common_codec.sip").contains("m=audio 9 RTP/AVP 18\r\n"));
        let bad_cl = text("bad_content_length.sip");
        let body = bad_cl.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.len() < 900 && bad_cl.contains("Content-Length: 900\r\n"));
        let huge = text("huge_header.sip").len();
        assert!(huge > 8000 && huge < 16384 - 200, "{huge}");
        assert!(text("oversized_message.sip").len() > 16384);
        for case in SIP_CASES.iter().filter(|c| c.file.ends_with(".sip")) {
            let t = text(case.file);
            assert!(
                !t.contains("\n") || t.contains("\r\n"),
                "{} must use CRLF",
                case.file
            );
            assert!(
                !t.replace("\r\n", "").contains('\n'),
                "{} has a bare LF",
                case.file
            );
        }
    }

    #[test]
    fn expectations_check() {
        assert!(Expect::Status(400).check(Some(400)).is_ok());
        assert!(Expect::Status(400).check(Some(200)).is_err());
        assert!(Expect::Status(400).check(None).is_err());
        assert!(Expect::Drop.check(None).is_ok());
        assert!(Expect::Drop
            .check(Some(400))
            .unwrap_err()
            .contains("got 400"));
        assert!(Expect::AnyOf(&[400, 488]).check(Some(488)).is_ok());
        assert!(Expect::AnyOf(&[400, 488]).check(Some(200)).is_err());
        assert!(Expect::AnyOf(&[400, 488]).check(None).is_err());
        assert!(Expect::StatusOrDrop(400).check(None).is_ok());
        assert!(Expect::StatusOrDrop(400).check(Some(400)).is_ok());
        assert!(Expect::StatusOrDrop(400).check(Some(500)).is_err());
    }
}
