//! A strict line parser for the subset of SDP that G.711 offer/answer needs.
//!
//! Structure the negotiation depends on (`v=`, `o=`, `c=`, `m=`, `a=rtpmap`) must be well
//! formed or the whole body is rejected; lines we do not use (`i=`, `b=`, `t=`, unknown
//! attributes, ...) are skipped so that harmless extensions from carriers do not fail calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Codec, Direction, SdpError};

/// The `o=` line. Ids are kept as text: some peers send values that overflow `u64`, and
/// only equality matters when comparing versions of a peer's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub address: String,
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding_name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `a=fmtp:<format> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    pub parameters: String,
}

/// One `m=` section with the attributes that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, `image`, ...), as written.
    pub media: String,
    /// Port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, `udptl`, ...), as written.
    pub proto: String,
    /// Format list in the author's preference order, as written (payload types for RTP).
    pub formats: Vec<String>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<Fmtp>,
    /// `a=ptime` in whole milliseconds, before normalisation; `None` when absent or not numeric.
    pub ptime_ms: Option<u32>,
    /// Media-level direction attribute; the session-level one applies when `None`.
    pub direction: Option<Direction>,
    /// Media-level `c=` address; the session-level one applies when `None`.
    pub connection: Option<IpAddr>,
}

impl MediaDescription {
    /// Whether the stream is plain RTP we can speak. AVPF only adds RTCP feedback, which a
    /// peer must tolerate us not sending, so it is accepted too; SAVP (SRTP) is not.
    pub fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// The formats that are valid RTP payload types (0..=127), in offer order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|format| format.parse::<u8>().ok())
            .filter(|payload_type| *payload_type <= 127)
    }

    /// The rtpmap for a payload type, if the SDP carries one.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMap> {
        self.rtpmaps
            .iter()
            .find(|map| map.payload_type == payload_type)
    }

    /// The G.711 codec a payload type stands for: by rtpmap when present (which may remap a
    /// static number), otherwise by the RFC 3551 static assignment.
    pub fn codec_for(&self, payload_type: u8) -> Option<Codec> {
        match self.rtpmap(payload_type) {
            Some(map) => {
                let mono = matches!(map.channels, None | Some(1));
                Codec::from_encoding_name(&map.encoding_name)
                    .filter(|_| map.clock_rate == Codec::CLOCK_RATE_HZ && mono)
            }
            None => Codec::from_static_payload_type(payload_type),
        }
    }

    /// The first listed payload type mapped to `telephone-event/8000` (RFC 4733). Other clock
    /// rates are ignored because events must share the audio codec's clock.
    pub fn telephone_event_payload_type(&self) -> Option<u8> {
        self.payload_types().find(|payload_type| {
            self.rtpmap(*payload_type).is_some_and(|map| {
                map.encoding_name.eq_ignore_ascii_case("telephone-event")
                    && map.clock_rate == Codec::CLOCK_RATE_HZ
            })
        })
    }
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; `-` when the peer omitted it (tolerated: some devices do).
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. Accepts CRLF or bare LF line endings and skips blank lines.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim_end()))
            .filter(|(_, line)| !line.is_empty());

        match lines.next() {
            None => return Err(SdpError::Empty),
            Some((_, "v=0")) => {}
            Some(_) => return Err(SdpError::BadVersion),
        }

        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut direction = None;
        let mut media: Vec<MediaDescription> = Vec::new();

        for (line_number, line) in lines {
            let malformed = |reason| SdpError::Malformed {
                line: line_number,
                reason,
            };
            let (kind, value) =
                split_type(line).ok_or_else(|| malformed("expected <letter>=<value>"))?;
            let in_media = media.last_mut();
            match kind {
                'v' => return Err(malformed("v= may appear only once")),
                'o' => {
                    if in_media.is_some() || origin.is_some() {
                        return Err(malformed("o= must appear once, before any m="));
                    }
                    origin = Some(parse_origin(value).map_err(malformed)?);
                }
                's' if in_media.is_none() => session_name = Some(value.to_owned()),
                'c' => {
                    let address = parse_connection(value).map_err(malformed)?;
                    match in_media {
                        // Layered multicast may list several c= per m=; the first is the base.
                        Some(current) => {
                            current.connection.get_or_insert(address);
                        }
                        None => connection = Some(address),
                    }
                }
                'm' => media.push(parse_media(value).map_err(malformed)?),
                'a' => match in_media {
                    Some(current) => parse_media_attribute(current, value).map_err(malformed)?,
                    None => {
                        // At session level only the direction matters (RFC 4566 §6 default).
                        if let Some(parsed) = Direction::from_attribute_name(value) {
                            direction = Some(parsed);
                        }
                    }
                },
                _ => {}
            }
        }

        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::MissingOrigin)?,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            direction,
            media,
        })
    }
}

/// Splits `x=value` where `x` is a single lowercase letter (RFC 4566 §5).
fn split_type(line: &str) -> Option<(char, &str)> {
    let (kind, value) = line.split_once('=')?;
    let mut chars = kind.chars();
    match (chars.next(), chars.next()) {
        (Some(letter), None) if letter.is_ascii_lowercase() => Some((letter, value)),
        _ => None,
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(value: &str) -> Result<Origin, &'static str> {
    let mut fields = value.split_whitespace();
    let mut next = || fields.next().ok_or("o= needs 6 fields");
    let origin = Origin {
        username: next()?.to_owned(),
        session_id: next()?.to_owned(),
        session_version: next()?.to_owned(),
        address: {
            let _network_type = next()?;
            let _address_type = next()?;
            next()?.to_owned()
        },
    };
    if fields.next().is_some() {
        return Err("o= has more than 6 fields");
    }
    Ok(origin)
}

/// `c=IN IP4 <address>[/<ttl>[/<count>]]` or `c=IN IP6 <address>[/<count>]`. Host names are
/// rejected: resolving them here would be IO, and telephony peers send literals.
fn parse_connection(value: &str) -> Result<IpAddr, &'static str> {
    let mut fields = value.split_whitespace();
    let (Some(network_type), Some(address_type), Some(address), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("c= needs exactly 3 fields");
    };
    if network_type != "IN" {
        return Err("c= network type must be IN");
    }
    let address = address.split('/').next().unwrap_or(address);
    match address_type {
        "IP4" => address
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| "c= IP4 address is not a literal IPv4 address"),
        "IP6" => address
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| "c= IP6 address is not a literal IPv6 address"),
        _ => Err("c= address type must be IP4 or IP6"),
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media(value: &str) -> Result<MediaDescription, &'static str> {
    let mut fields = value.split_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("m= needs media, port, proto and at least one format");
    };
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err("m= needs at least one format");
    }
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| "m= port is not a number in 0..=65535")?;
    if let Some(count) = port_count {
        count
            .parse::<u16>()
            .map_err(|_| "m= port count is not a number")?;
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime_ms: None,
        direction: None,
        connection: None,
    })
}

fn parse_media_attribute(media: &mut MediaDescription, value: &str) -> Result<(), &'static str> {
    let (name, argument) = match value.split_once(':') {
        Some((name, argument)) => (name, Some(argument)),
        None => (value, None),
    };
    match (name, argument) {
        ("rtpmap", Some(argument)) => media.rtpmaps.push(parse_rtpmap(argument)?),
        ("rtpmap", None) => return Err("a=rtpmap needs a value"),
        ("fmtp", Some(argument)) => {
            let (format, parameters) = argument.split_once(' ').unwrap_or((argument, ""));
            if format.is_empty() {
                return Err("a=fmtp needs a format");
            }
            media.fmtps.push(Fmtp {
                format: format.to_owned(),
                parameters: parameters.trim().to_owned(),
            });
        }
        // Non-numeric ptime is treated as absent: the default then applies.
        ("ptime", Some(argument)) => media.ptime_ms = parse_ptime(argument),
        (name, None) => {
            if let Some(direction) = Direction::from_attribute_name(name) {
                media.direction = Some(direction);
            }
        }
        _ => {}
    }
    Ok(())
}

/// `<payload type> <encoding name>/<clock rate>[/<channels>]`.
fn parse_rtpmap(argument: &str) -> Result<RtpMap, &'static str> {
    let (payload_type, encoding) = argument
        .trim()
        .split_once(' ')
        .ok_or("a=rtpmap needs a payload type and an encoding")?;
    let payload_type = payload_type
        .parse::<u8>()
        .ok()
        .filter(|payload_type| *payload_type <= 127)
        .ok_or("a=rtpmap payload type must be 0..=127")?;
    let mut parts = encoding.trim().split('/');
    let encoding_name = parts
        .next()
        .filter(|name| !name.is_empty())
        .ok_or("a=rtpmap needs an encoding name")?;
    let clock_rate = parts
        .next()
        .and_then(|rate| rate.parse::<u32>().ok())
        .ok_or("a=rtpmap needs a numeric clock rate")?;
    let channels = match parts.next() {
        Some(channels) => Some(
            channels
                .parse::<u8>()
                .map_err(|_| "a=rtpmap channel count is not a number")?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err("a=rtpmap has too many / parts");
    }
    Ok(RtpMap {
        payload_type,
        encoding_name: encoding_name.to_owned(),
        clock_rate,
        channels,
    })
}

/// Whole milliseconds of `a=ptime`; RFC 4566 allows a decimal, whose fraction is dropped.
fn parse_ptime(argument: &str) -> Option<u32> {
    let argument = argument.trim();
    let whole = argument.split('.').next().unwrap_or(argument);
    whole.parse::<u32>().ok()
}
