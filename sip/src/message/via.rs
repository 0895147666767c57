//! The top `Via` of a request: parsing, RFC 3581 `received`/`rport` stamping, and where the
//! responses go (RFC 3261 §18.2.2 with RFC 3581 §4).
//!
//! Parsed by hand rather than through rsip's typed Via: that one drops every via-parm after
//! the first when a header carries a comma list, and cannot hold IPv6 `received` values.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use super::headers::split_list;
use super::Transport;

/// RFC 3261 §8.1.1.7: branches starting with this cookie are globally unique.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// Why a Via could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    #[error("no Via header")]
    Missing,
    #[error("malformed Via: {0}")]
    Malformed(&'static str),
}

/// The first via-parm of a request's top `Via` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopVia {
    /// Transport token, upper-cased (`UDP`, `TCP`, ...).
    pub protocol: String,
    /// sent-by host, without IPv6 brackets.
    pub host: String,
    pub port: Option<u16>,
    /// Parameters in order, names as received.
    pub params: Vec<(String, Option<String>)>,
}

impl TopVia {
    /// Parses the first via-parm of a Via header value.
    pub fn parse(value: &str) -> Result<Self, ViaError> {
        let first = split_list(value)
            .next()
            .ok_or(ViaError::Malformed("empty"))?;
        let mut parts = first.splitn(3, '/');
        let name = parts.next().unwrap_or("").trim();
        let version = parts.next().unwrap_or("").trim();
        let rest = parts
            .next()
            .ok_or(ViaError::Malformed("no sent-protocol"))?;
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(ViaError::Malformed("not SIP/2.0"));
        }
        let rest = rest.trim_start();
        let transport_end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .ok_or(ViaError::Malformed("no sent-by"))?;
        let (protocol, rest) = rest.split_at(transport_end);
        let mut fields = rest.split(';');
        let sent_by = fields.next().unwrap_or("").trim();
        let (host, port) = split_host_port(sent_by)?;
        let params = fields
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
                None => (p.trim().to_string(), None),
            })
            .filter(|(n, _)| !n.is_empty())
            .collect();
        Ok(Self {
            protocol: protocol.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    /// `Some(value)` if the parameter is present (`Some(None)` when it has no value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten().filter(|b| !b.is_empty())
    }

    /// True for RFC 3261 branches (the magic cookie), which identify a transaction alone.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    }

    pub fn received(&self) -> Option<IpAddr> {
        self.param("received").flatten()?.parse().ok()
    }

    /// `None`: no rport; `Some(None)`: rport requested but not filled; `Some(Some(p))`: filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn sent_by_ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host:port` as written, used to tell apart transactions of different senders.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    /// RFC 3261 §18.2.1 and RFC 3581 §4: record the address the request really came from.
    /// `received` is added when it differs from sent-by, and always when `rport` was asked for;
    /// a valueless `rport` is filled with the source port.
    pub fn stamp_source(&mut self, source: SocketAddr) {
        let wants_rport = self.rport().is_some();
        self.params
            .retain(|(n, _)| !n.eq_ignore_ascii_case("received"));
        if wants_rport || self.sent_by_ip() != Some(source.ip()) {
            self.params
                .push(("received".into(), Some(source.ip().to_string())));
        }
        if wants_rport {
            for (n, v) in &mut self.params {
                if n.eq_ignore_ascii_case("rport") {
                    *v = Some(source.port().to_string());
                }
            }
        }
    }

    /// Where responses to this request go. Reliable transports answer on the connection the
    /// request came on; UDP uses received/rport, falling back to sent-by (port 5060).
    pub fn response_destination(&self, transport: Transport, source: SocketAddr) -> SocketAddr {
        if transport.is_reliable() {
            return source;
        }
        let ip = self
            .received()
            .or_else(|| self.sent_by_ip())
            .unwrap_or(source.ip());
        let port = match self.rport() {
            Some(Some(port)) => port,
            Some(None) => source.port(),
            None => self.port.unwrap_or(5060),
        };
        SocketAddr::new(ip, port)
    }
}

impl fmt::Display for TopVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.protocol)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (name, value) in &self.params {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

fn split_host_port(sent_by: &str) -> Result<(&str, Option<u16>), ViaError> {
    let bad_port = ViaError::Malformed("bad sent-by port");
    let (host, port) = if let Some(v6) = sent_by.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or(ViaError::Malformed("unterminated IPv6 sent-by"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(ViaError::Malformed("junk after sent-by")),
        }
    } else {
        match sent_by.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (sent_by, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ViaError::Malformed("empty sent-by host"));
    }
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().map_err(|_| bad_port)?),
        None => None,
    };
    Ok((host, port))
}

/// Parses the request's top Via without changing it.
pub fn top_via(request: &Request) -> Result<TopVia, ViaError> {
    let value = request
        .headers
        .iter()
        .find_map(|h| match h {
            Header::Via(v) => Some(v.value()),
            _ => None,
        })
        .ok_or(ViaError::Missing)?;
    TopVia::parse(value)
}

/// Stamps `received`/`rport` into the request's top Via (keeping any further via-parms of the
/// same header line) and returns the stamped Via.
pub fn stamp_top_via(request: &mut Request, source: SocketAddr) -> Result<TopVia, ViaError> {
    let header = request
        .headers
        .iter_mut()
        .find_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
        .ok_or(ViaError::Missing)?;
    let mut via = TopVia::parse(header.value())?;
    via.stamp_source(source);
    let remainder = {
        let value = header.value();
        let mut items = split_list(value);
        items.next();
        items.collect::<Vec<_>>().join(", ")
    };
    let stamped = if remainder.is_empty() {
        via.to_string()
    } else {
        format!("{via}, {remainder}")
    };
    header.replace(stamped);
    Ok(via)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_sipp_style_via() {
        let v = TopVia::parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0;rport").unwrap();
        assert_eq!(v.protocol, "UDP");
        assert_eq!(v.host, "127.0.0.1");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bK-1-0"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
    }

    #[test]
    fn parses_only_first_of_a_comma_list_and_ipv6() {
        let v = TopVia::parse("SIP / 2.0 / tcp [2001:db8::1]:5070 ; branch=abc, SIP/2.0/UDP b")
            .unwrap();
        assert_eq!(v.protocol, "TCP");
        assert_eq!(v.host, "2001:db8::1");
        assert_eq!(v.port, Some(5070));
        assert!(!v.has_rfc3261_branch());
        assert_eq!(v.to_string(), "SIP/2.0/TCP [2001:db8::1]:5070;branch=abc");
    }

    #[test]
    fn rejects_malformed_vias() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/3.0/UDP h",
            "HTTP/2.0/UDP h",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP h:abc",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP ;branch=x",
        ] {
            assert!(TopVia::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn received_added_only_when_source_differs() {
        let mut same = TopVia::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa").unwrap();
        same.stamp_source(addr("10.0.0.1:5060"));
        assert_eq!(same.received(), None);

        let mut nat = TopVia::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa").unwrap();
        nat.stamp_source(addr("192.0.2.7:5060"));
        assert_eq!(nat.received(), Some("192.0.2.7".parse().unwrap()));
        // Without rport the port of sent-by is used (RFC 3261 §18.2.2).
        assert_eq!(
            nat.response_destination(Transport::Udp, addr("192.0.2.7:40000")),
            addr("192.0.2.7:5060")
        );

        let mut named = TopVia::parse("SIP/2.0/UDP pbx.example.com;branch=z9hG4bKa").unwrap();
        named.stamp_source(addr("192.0.2.9:5060"));
        assert_eq!(named.received(), Some("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn rport_is_filled_and_forces_received() {
        let mut v = TopVia::parse("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa").unwrap();
        v.stamp_source(addr("10.0.0.1:40123"));
        assert_eq!(v.rport(), Some(Some(40123)));
        assert_eq!(v.received(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;rport=40123;branch=z9hG4bKa;received=10.0.0.1"
        );
        assert_eq!(
            v.response_destination(Transport::Udp, addr("10.0.0.1:40123")),
            addr("10.0.0.1:40123")
        );
    }

    #[test]
    fn destination_defaults_and_tcp() {
        let v = TopVia::parse("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa").unwrap();
        assert_eq!(
            v.response_destination(Transport::Udp, addr("10.0.0.1:7000")),
            addr("10.0.0.1:5060")
        );
        assert_eq!(
            v.response_destination(Transport::Tcp, addr("10.0.0.1:7000")),
            addr("10.0.0.1:7000")
        );
    }

    #[test]
    fn stamping_a_request_keeps_the_rest_of_the_via_list() {
        let raw = "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp;rport, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKq\r\n\
            Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKr\r\n\
            Content-Length: 0\r\n\r\n";
        let mut req = Request::try_from(raw).unwrap();
        stamp_top_via(&mut req, addr("203.0.113.5:6000")).unwrap();
        let vias: Vec<String> = req
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Via(v) => Some(v.value().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            vias,
            vec![
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp;rport=6000;received=203.0.113.5, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKq",
                "SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKr",
            ]
        );
    }
}
