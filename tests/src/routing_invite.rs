//! A single INVITE with a PCMU offer to a given user, for tests that only need the final
//! status (routing rejects, a bot unreachable at call start).

use std::time::Duration;

use crate::gateway::Gateway;
use crate::sipprobe::{ack_for_non_2xx, SipProbe};

/// The final status the gateway gives an INVITE to `user` (ACKed, as a UAC must).
pub fn invite_status(gw: &Gateway, user: &str) -> (u16, String) {
    let template = "INVITE sip:USER@{{TARGET}} SIP/2.0\r\n\
        Via: SIP/2.0/UDP {{LOCAL}};branch={{BRANCH}}\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:caller@{{LOCAL}}>;tag={{TAG}}\r\n\
        To: <sip:USER@{{TARGET}}>\r\n\
        Call-ID: {{CALLID}}\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:caller@{{LOCAL}}>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 123\r\n\r\n\
        v=0\r\n\
        o=caller 1 1 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        c=IN IP4 127.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 9 RTP/AVP 0\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=sendrecv\r\n"
        .replace("USER", user);
    let probe = SipProbe::new(gw.sip_addr()).expect("probe socket");
    let invite = probe.render(template.as_bytes());
    probe.send(&invite).expect("send INVITE");
    let response = probe
        .final_response(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final response for {user}\n{}", gw.log_tail(30)));
    let invite = String::from_utf8_lossy(&invite).into_owned();
    if let Some(ack) = ack_for_non_2xx(&invite, &response.text) {
        let _ = probe.send(ack.as_bytes());
    }
    let reason = response
        .text
        .lines()
        .next()
        .unwrap_or("")
        .splitn(3, ' ')
        .nth(2)
        .unwrap_or("")
        .to_string();
    (response.status, reason)
}
