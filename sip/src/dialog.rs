//! Dialog state (RFC 3261 §12): identity, sequence numbers, route set and remote target, and
//! the construction of in-dialog requests with loose or strict routing (§12.2.1.1).

use rsip::{Header, Headers, Method, Request, Response};

use crate::message::headers::{find, find_all, split_list, split_name_addr, tag};
use crate::message::{method_name, RequestSummary};

/// Call-ID plus both tags: how in-dialog requests find their dialog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    Early,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("Missing Contact")]
    MissingContact,
    #[error("Bad Contact")]
    BadContact,
    #[error("Bad Record-Route")]
    BadRoute,
    #[error("Missing To tag")]
    MissingToTag,
    #[error("Missing {0}")]
    MissingHeader(&'static str),
}

/// §12.2.2: a request whose CSeq is below the last one seen is out of order (answered 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("CSeq {got} is lower than the last one seen ({last})")]
pub struct CseqOutOfOrder {
    pub got: u32,
    pub last: u32,
}

/// One element of the route set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    /// The name-addr as it appeared (`<sip:proxy;lr>`), reused verbatim in Route headers.
    pub value: String,
    /// The URI inside it.
    pub uri: String,
    /// The proxy is a loose router (`;lr`, RFC 3261 §16.12).
    pub loose: bool,
}

impl RouteEntry {
    fn parse(value: &str) -> Result<Self, DialogError> {
        let (uri, _) = split_name_addr(value).ok_or(DialogError::BadRoute)?;
        parse_uri(uri).map_err(|_| DialogError::BadRoute)?;
        Ok(Self {
            value: value.to_string(),
            uri: uri.to_string(),
            loose: uri_param(uri, "lr").is_some(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// Our From/To value in requests we send (with our tag).
    local_party: String,
    /// Their From/To value (with their tag).
    remote_party: String,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    route_set: Vec<RouteEntry>,
    remote_target: String,
}

impl Dialog {
    /// The UAS side of a dialog created by `request` (an INVITE), answered with `local_tag`.
    /// The route set is the Record-Route list as received (§12.1.1).
    pub fn uas(
        request: &Request,
        summary: &RequestSummary,
        local_tag: &str,
        initial_local_cseq: u32,
    ) -> Result<Self, DialogError> {
        let to = find(&request.headers, "To").ok_or(DialogError::MissingHeader("To"))?;
        let from = find(&request.headers, "From").ok_or(DialogError::MissingHeader("From"))?;
        Ok(Self {
            id: DialogId {
                call_id: summary.call_id.clone(),
                local_tag: local_tag.to_string(),
                remote_tag: summary.from_tag.clone().unwrap_or_default(),
            },
            state: DialogState::Early,
            local_party: format!("{to};tag={local_tag}"),
            remote_party: from.to_string(),
            local_cseq: initial_local_cseq,
            remote_cseq: Some(summary.cseq),
            route_set: route_set(&request.headers)?,
            remote_target: contact_uri(&request.headers)?,
        })
    }

    /// The UAC side of a dialog created by `response` to our `request` (§12.1.2): the route
    /// set is the response's Record-Route list reversed.
    pub fn uac(request: &Request, response: &Response) -> Result<Self, DialogError> {
        let from = find(&request.headers, "From").ok_or(DialogError::MissingHeader("From"))?;
        let to = find(&response.headers, "To").ok_or(DialogError::MissingHeader("To"))?;
        let call_id =
            find(&request.headers, "Call-ID").ok_or(DialogError::MissingHeader("Call-ID"))?;
        let local_cseq = find(&request.headers, "CSeq")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or(DialogError::MissingHeader("CSeq"))?;
        let mut routes = route_set(&response.headers)?;
        routes.reverse();
        let code = response.status_code.code();
        Ok(Self {
            id: DialogId {
                call_id: call_id.to_string(),
                local_tag: tag(from).unwrap_or_default().to_string(),
                remote_tag: tag(to).ok_or(DialogError::MissingToTag)?.to_string(),
            },
            state: if code < 200 {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_party: from.to_string(),
            remote_party: to.to_string(),
            local_cseq,
            remote_cseq: None,
            route_set: routes,
            remote_target: contact_uri(&response.headers)?,
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    pub fn route_set(&self) -> &[RouteEntry] {
        &self.route_set
    }

    pub fn local_cseq(&self) -> u32 {
        self.local_cseq
    }

    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_cseq
    }

    /// §12.2.2: accept an in-dialog request's CSeq (not for ACK/CANCEL, which reuse theirs).
    pub fn check_remote_cseq(&mut self, cseq: u32) -> Result<(), CseqOutOfOrder> {
        match self.remote_cseq {
            Some(last) if cseq < last => Err(CseqOutOfOrder { got: cseq, last }),
            _ => {
                self.remote_cseq = Some(cseq);
                Ok(())
            }
        }
    }

    /// Target refresh (§12.2.2): a re-INVITE or UPDATE (or its 2xx) replaces the remote
    /// target with its Contact. Without a Contact the target stays as it was.
    pub fn refresh_target(&mut self, headers: &Headers) -> Result<(), DialogError> {
        match contact_uri(headers) {
            Ok(uri) => {
                self.remote_target = uri;
                Ok(())
            }
            Err(DialogError::MissingContact) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The URI the next request is physically sent towards (§8.1.2): the first route, or the
    /// remote target when there is no route set.
    pub fn next_hop(&self) -> &str {
        self.route_set
            .first()
            .map(|r| r.uri.as_str())
            .unwrap_or(&self.remote_target)
    }

    /// Builds the next in-dialog request (§12.2.1.1) with a fresh local CSeq. `via` is the
    /// complete Via value (with a new branch). The caller adds Contact, body and extras.
    pub fn next_request(&mut self, method: Method, via: &str) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1) & 0x7fff_ffff;
        let mut headers = Headers::default();
        headers.push(Header::Via(via.into()));
        headers.push(Header::MaxForwards("70".into()));
        headers.push(Header::From(self.local_party.clone().into()));
        headers.push(Header::To(self.remote_party.clone().into()));
        headers.push(Header::CallId(self.id.call_id.clone().into()));
        headers.push(Header::CSeq(
            format!("{} {}", self.local_cseq, method_name(&method)).into(),
        ));
        let request_uri = match self.route_set.first() {
            // Loose routing: the request goes to the remote target via the whole route set.
            Some(first) if first.loose => {
                for route in &self.route_set {
                    headers.push(Header::Route(route.value.clone().into()));
                }
                self.remote_target.as_str()
            }
            // Strict routing: the first route becomes the Request-URI, and the remote target
            // travels as the last Route.
            Some(first) => {
                for route in self.route_set.iter().skip(1) {
                    headers.push(Header::Route(route.value.clone().into()));
                }
                headers.push(Header::Route(format!("<{}>", self.remote_target).into()));
                first.uri.as_str()
            }
            None => self.remote_target.as_str(),
        };
        Request {
            method,
            // Both candidates were checked with `parse_uri` when stored.
            uri: parse_uri(request_uri).unwrap_or_default(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}

/// The Contact URI of a dialog-creating or target-refresh message.
fn contact_uri(headers: &Headers) -> Result<String, DialogError> {
    let value = find(headers, "Contact").ok_or(DialogError::MissingContact)?;
    let first = split_list(value).next().ok_or(DialogError::BadContact)?;
    let (uri, _) = split_name_addr(first).ok_or(DialogError::BadContact)?;
    parse_uri(uri).map_err(|_| DialogError::BadContact)?;
    Ok(uri.to_string())
}

/// All Record-Route entries in message order (several headers, each possibly a list).
fn route_set(headers: &Headers) -> Result<Vec<RouteEntry>, DialogError> {
    find_all(headers, "Record-Route")
        .flat_map(split_list)
        .map(RouteEntry::parse)
        .collect()
}

/// Parses a SIP URI with rsip, refusing what cannot be a request target.
pub fn parse_uri(uri: &str) -> Result<rsip::Uri, rsip::Error> {
    let parsed = rsip::Uri::try_from(uri)?;
    match parsed.scheme {
        Some(rsip::Scheme::Sip | rsip::Scheme::Sips) => Ok(parsed),
        _ => Err(rsip::Error::ParseError(format!("not a SIP URI: {uri}"))),
    }
}

/// A URI parameter (`;lr`, `;transport=tcp`), looked up after the host part so that
/// parameters in the user part (`sip:+1;npdi@host`) are not mistaken for it.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let after_user = uri.rsplit_once('@').map_or(uri, |(_, host)| host);
    let without_headers = after_user.split('?').next().unwrap_or(after_user);
    without_headers.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{encode_request, validate_request};

    /// An INVITE as it reaches us through a Kamailio-style Record-Routing proxy.
    const INVITE_VIA_PROXY: &str = "INVITE sip:bot@10.0.0.5:5060 SIP/2.0\r\n\
Record-Route: <sip:10.0.0.2;lr;ftag=4242SIPpTag001>\r\n\
Record-Route: <sip:10.0.0.1;lr>\r\n\
Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKproxy\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5061;branch=z9hG4bK-4242-1-0;received=10.0.0.9\r\n\
From: sipp <sip:sipp@10.0.0.9:5061>;tag=4242SIPpTag001\r\n\
To: <sip:bot@10.0.0.5:5060>\r\n\
Call-ID: rr-1@10.0.0.9\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@10.0.0.9:5061;transport=udp>\r\n\
Max-Forwards: 69\r\n\
Content-Length: 0\r\n\r\n";

    fn uas_dialog(raw: &str) -> Dialog {
        let req = Request::try_from(raw).unwrap();
        let summary = validate_request(&req).unwrap();
        Dialog::uas(&req, &summary, "gwtag", 100).unwrap()
    }

    fn header_lines(req: &Request, name: &str) -> Vec<String> {
        find_all(&req.headers, name).map(str::to_string).collect()
    }

    #[test]
    fn uas_dialog_identity_and_route_set_in_received_order() {
        let d = uas_dialog(INVITE_VIA_PROXY);
        assert_eq!(
            d.id(),
            &DialogId {
                call_id: "rr-1@10.0.0.9".into(),
                local_tag: "gwtag".into(),
                remote_tag: "4242SIPpTag001".into(),
            }
        );
        let uris: Vec<&str> = d.route_set().iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(
            uris,
            vec!["sip:10.0.0.2;lr;ftag=4242SIPpTag001", "sip:10.0.0.1;lr"]
        );
        assert_eq!(d.remote_target(), "sip:sipp@10.0.0.9:5061;transport=udp");
        assert_eq!(d.remote_cseq(), Some(1));
        assert_eq!(d.state(), DialogState::Early);
    }

    #[test]
    fn bye_through_a_record_routing_proxy_uses_loose_routing() {
        let mut d = uas_dialog(INVITE_VIA_PROXY);
        let bye = d.next_request(
            Method::Bye,
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKb1;rport",
        );
        let text = String::from_utf8(encode_request(&bye).to_vec()).unwrap();
        // Request-URI = the remote Contact (rsip upper-cases the transport value, which URI
        // comparison ignores).
        assert!(
            text.starts_with("BYE sip:sipp@10.0.0.9:5061;transport=UDP SIP/2.0\r\n"),
            "{text}"
        );
        assert_eq!(
            header_lines(&bye, "Route"),
            vec!["<sip:10.0.0.2;lr;ftag=4242SIPpTag001>", "<sip:10.0.0.1;lr>"]
        );
        assert_eq!(
            find(&bye.headers, "From"),
            Some("<sip:bot@10.0.0.5:5060>;tag=gwtag")
        );
        assert_eq!(
            find(&bye.headers, "To"),
            Some("sipp <sip:sipp@10.0.0.9:5061>;tag=4242SIPpTag001")
        );
        assert_eq!(find(&bye.headers, "CSeq"), Some("101 BYE"));
        assert_eq!(find(&bye.headers, "Call-ID"), Some("rr-1@10.0.0.9"));
        assert_eq!(d.next_hop(), "sip:10.0.0.2;lr;ftag=4242SIPpTag001");
        let info = d.next_request(Method::Info, "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKb2");
        assert_eq!(find(&info.headers, "CSeq"), Some("102 INFO"));
    }

    #[test]
    fn strict_router_becomes_the_request_uri() {
        let raw = INVITE_VIA_PROXY
            .replace(
                "Record-Route: <sip:10.0.0.2;lr;ftag=4242SIPpTag001>",
                "Record-Route: <sip:10.0.0.2>",
            )
            .replace("Record-Route: <sip:10.0.0.1;lr>\r\n", "");
        let mut d = uas_dialog(&raw);
        let bye = d.next_request(Method::Bye, "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKs");
        assert_eq!(bye.uri.to_string(), "sip:10.0.0.2");
        assert_eq!(
            header_lines(&bye, "Route"),
            vec!["<sip:sipp@10.0.0.9:5061;transport=udp>"]
        );
        assert_eq!(d.next_hop(), "sip:10.0.0.2");
    }

    #[test]
    fn without_record_route_the_request_goes_straight_to_the_contact() {
        let raw = INVITE_VIA_PROXY
            .replace(
                "Record-Route: <sip:10.0.0.2;lr;ftag=4242SIPpTag001>\r\n",
                "",
            )
            .replace("Record-Route: <sip:10.0.0.1;lr>\r\n", "");
        let mut d = uas_dialog(&raw);
        let bye = d.next_request(Method::Bye, "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKd");
        assert!(header_lines(&bye, "Route").is_empty());
        assert_eq!(d.next_hop(), "sip:sipp@10.0.0.9:5061;transport=udp");
    }

    #[test]
    fn a_comma_separated_record_route_is_split() {
        let raw = INVITE_VIA_PROXY
            .replace(
                "Record-Route: <sip:10.0.0.2;lr;ftag=4242SIPpTag001>\r\n",
                "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n",
            )
            .replace("Record-Route: <sip:10.0.0.1;lr>\r\n", "");
        let d = uas_dialog(&raw);
        assert_eq!(d.route_set().len(), 2);
        assert!(d.route_set().iter().all(|r| r.loose));
    }

    #[test]
    fn target_refresh_replaces_the_remote_target() {
        let mut d = uas_dialog(INVITE_VIA_PROXY);
        let reinvite = Request::try_from(
            "INVITE sip:bot@10.0.0.5 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.9:5061;branch=z9hG4bKre\r\n\
             From: sipp <sip:sipp@10.0.0.9:5061>;tag=4242SIPpTag001\r\n\
             To: <sip:bot@10.0.0.5:5060>;tag=gwtag\r\n\
             Call-ID: rr-1@10.0.0.9\r\n\
             CSeq: 2 INVITE\r\n\
             Contact: \"moved\" <sip:sipp@10.0.0.77:5099>;expires=60\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        d.refresh_target(&reinvite.headers).unwrap();
        assert_eq!(d.remote_target(), "sip:sipp@10.0.0.77:5099");
        let bye = d.next_request(Method::Bye, "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKr");
        assert_eq!(bye.uri.to_string(), "sip:sipp@10.0.0.77:5099");
        // The route set is fixed at dialog creation and does not change on refresh.
        assert_eq!(d.route_set().len(), 2);
        // A refresh without Contact keeps the target; a broken one is an error.
        d.refresh_target(&Headers::default()).unwrap();
        assert_eq!(d.remote_target(), "sip:sipp@10.0.0.77:5099");
        let mut broken = Headers::default();
        broken.push(Header::Contact("<mailto:x@y>".into()));
        assert_eq!(d.refresh_target(&broken), Err(DialogError::BadContact));
    }

    #[test]
    fn lower_remote_cseq_is_out_of_order() {
        let mut d = uas_dialog(INVITE_VIA_PROXY);
        d.check_remote_cseq(5).unwrap();
        d.check_remote_cseq(5).unwrap();
        assert_eq!(
            d.check_remote_cseq(4),
            Err(CseqOutOfOrder { got: 4, last: 5 })
        );
        assert_eq!(d.remote_cseq(), Some(5));
    }

    #[test]
    fn dialog_needs_a_usable_contact_and_routes() {
        let req = Request::try_from(
            INVITE_VIA_PROXY.replace("Contact: <sip:sipp@10.0.0.9:5061;transport=udp>\r\n", ""),
        )
        .unwrap();
        let s = validate_request(&req).unwrap();
        assert_eq!(
            Dialog::uas(&req, &s, "t", 1),
            Err(DialogError::MissingContact)
        );
        let req = Request::try_from(INVITE_VIA_PROXY.replace(
            "Record-Route: <sip:10.0.0.1;lr>",
            "Record-Route: <tel:+123>",
        ))
        .unwrap();
        let s = validate_request(&req).unwrap();
        assert_eq!(Dialog::uas(&req, &s, "t", 1), Err(DialogError::BadRoute));
    }

    #[test]
    fn uac_dialog_reverses_the_record_route_set() {
        let invite = Request::try_from(
            "INVITE sip:bob@10.0.0.9 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKuac\r\n\
             From: <sip:gw@10.0.0.5>;tag=mine\r\n\
             To: <sip:bob@10.0.0.9>\r\n\
             Call-ID: uac-1\r\n\
             CSeq: 7 INVITE\r\n\
             Contact: <sip:gw@10.0.0.5>\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        let ok = Response::try_from(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKuac\r\n\
             Record-Route: <sip:p2;lr>, <sip:p1;lr>\r\n\
             From: <sip:gw@10.0.0.5>;tag=mine\r\n\
             To: <sip:bob@10.0.0.9>;tag=theirs\r\n\
             Call-ID: uac-1\r\n\
             CSeq: 7 INVITE\r\n\
             Contact: <sip:bob@10.0.0.99:5070>\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        let mut d = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.id().local_tag, "mine");
        assert_eq!(d.id().remote_tag, "theirs");
        let uris: Vec<&str> = d.route_set().iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, vec!["sip:p1;lr", "sip:p2;lr"]);
        let bye = d.next_request(Method::Bye, "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKu2");
        assert_eq!(find(&bye.headers, "CSeq"), Some("8 BYE"));
        assert_eq!(bye.uri.to_string(), "sip:bob@10.0.0.99:5070");
    }

    #[test]
    fn uri_params_skip_the_user_part() {
        assert_eq!(uri_param("sip:+1;lr@host", "lr"), None);
        assert_eq!(uri_param("sip:host;LR", "lr"), Some(""));
        assert_eq!(
            uri_param("sip:h;transport=TCP?x=y", "transport"),
            Some("TCP")
        );
    }
}
