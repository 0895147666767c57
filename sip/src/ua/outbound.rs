//! Messages the UA sends: responses decorated with our identity and capabilities, and
//! in-dialog requests (BYE) with their next hop and transport.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rsip::{Header, Method, Request, Response};

use super::{CallHandle, UaError, UserAgent};
use crate::dialog::{parse_uri, uri_param};
use crate::message::{
    encode_request, encode_response, method_name, reason_phrase, response_to, set_body,
    stamp_top_via, Transmit, Transport, BRANCH_MAGIC_COOKIE, UDP_REQUEST_LIMIT,
};
use crate::transaction::TxKey;

pub(super) const SDP: &str = "application/sdp";

impl UserAgent {
    /// A response to `request` carrying our `Server` header.
    pub(super) fn reply_to(
        &self,
        request: &Request,
        code: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Response {
        let mut response =
            response_to(request, code, reason.unwrap_or(reason_phrase(code)), to_tag);
        response
            .headers
            .push(Header::Server(self.cfg.user_agent.clone().into()));
        response
    }

    /// Our Contact; for calls over TCP it says so, so that in-dialog requests come back on TCP.
    pub(super) fn contact_header(&self, transport: Transport) -> Header {
        Header::Contact(self.contact_value(transport).into())
    }

    /// The Contact header's value (`<sip:gw@host:port>`), also our Referred-By.
    pub(super) fn contact_value(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:gw@{}>", self.cfg.local_addr),
            Transport::Tcp => format!("<sip:gw@{};transport=tcp>", self.cfg.local_addr),
        }
    }

    /// Allow, Accept and Supported (OPTIONS answers, 2xx to INVITE, 405/415).
    pub(super) fn capability_headers(&self) -> Vec<Header> {
        let allow = self
            .cfg
            .allow_methods
            .iter()
            .map(method_name)
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            Header::Allow(allow.into()),
            Header::Accept(SDP.into()),
            Header::Supported("timer".into()),
        ]
    }

    /// Sends a response outside any transaction (answers to requests too broken to key one,
    /// and 501s): retransmissions of such requests simply get answered again.
    pub(super) fn send_stateless(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        request: &Request,
        response: &Response,
    ) {
        let mut stamped = request.clone();
        let destination = stamp_top_via(&mut stamped, source)
            .map(|via| via.response_destination(transport, source))
            .unwrap_or(source);
        self.transmits.push_back(Transmit {
            transport,
            destination,
            payload: encode_response(response),
        });
    }

    /// Sends a new request inside the call's dialog as a client transaction.
    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        handle: CallHandle,
        method: Method,
        extra: Vec<Header>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<TxKey, UaError> {
        let branch = format!("{BRANCH_MAGIC_COOKIE}{}", self.random_token());
        let local = self.cfg.local_addr;
        let user_agent = self.cfg.user_agent.clone();
        let call = self.calls.get_mut(&handle).ok_or(UaError::UnknownCall)?;
        let (destination, mut transport) =
            next_hop(call.dialog.next_hop(), call.transport, call.peer);
        let via = |t: Transport| format!("SIP/2.0/{} {local};branch={branch};rport", t.via_token());
        let mut request = call.dialog.next_request(method, &via(transport));
        request.headers.push(Header::UserAgent(user_agent.into()));
        request.headers.extend(extra);
        if let Some((content_type, content)) = body {
            set_body(
                &mut request.headers,
                &mut request.body,
                content_type,
                content,
            );
        }
        // RFC 3261 §18.1.1: too big for UDP without a known path MTU → TCP, and the Via
        // must name the transport actually used.
        if transport == Transport::Udp && encode_request(&request).len() > UDP_REQUEST_LIMIT {
            transport = Transport::Tcp;
            for header in request.headers.iter_mut() {
                if let Header::Via(v) = header {
                    *v = via(transport).into();
                    break;
                }
            }
        }
        let key = self
            .layer
            .send_request(now, &request, transport, destination)?;
        self.tx_owner.insert(key.clone(), handle);
        Ok(key)
    }
}

/// Where an in-dialog request goes. Over TCP we reuse the connection the call came on (like
/// RFC 5923 connection reuse: the peer's Contact port is often not listening). Over UDP it is
/// the first route or the remote target (§8.1.2) when that is an IP literal; names cannot be
/// resolved in a sans-IO core, so the call's source address stands in for them.
fn next_hop(uri: &str, call_transport: Transport, peer: SocketAddr) -> (SocketAddr, Transport) {
    if call_transport == Transport::Tcp {
        return (peer, Transport::Tcp);
    }
    let transport = match uri_param(uri, "transport") {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    let Ok(parsed) = parse_uri(uri) else {
        return (peer, transport);
    };
    let ip = match parsed.host_with_port.host {
        rsip::Host::IpAddr(ip) => ip,
        rsip::Host::Domain(domain) => match domain.to_string().parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return (peer, transport),
        },
    };
    let default_port = if parsed.scheme == Some(rsip::Scheme::Sips) {
        5061
    } else {
        5060
    };
    let port = parsed
        .host_with_port
        .port
        .map(|p| *p.value())
        .unwrap_or(default_port);
    (SocketAddr::new(ip, port), transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "192.0.2.1:40000".parse().unwrap()
    }

    #[test]
    fn next_hop_rules() {
        assert_eq!(
            next_hop("sip:10.0.0.2;lr", Transport::Udp, peer()),
            ("10.0.0.2:5060".parse().unwrap(), Transport::Udp)
        );
        assert_eq!(
            next_hop("sip:u@10.0.0.3:5070;transport=TCP", Transport::Udp, peer()),
            ("10.0.0.3:5070".parse().unwrap(), Transport::Tcp)
        );
        assert_eq!(
            next_hop("sip:proxy.example.com;lr", Transport::Udp, peer()),
            (peer(), Transport::Udp),
            "names fall back to the source address"
        );
        assert_eq!(
            next_hop("sip:u@10.0.0.3:5070", Transport::Tcp, peer()),
            (peer(), Transport::Tcp),
            "TCP reuses the call's connection"
        );
    }
}
