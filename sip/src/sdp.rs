//! SDP (RFC 4566) parsing and offer/answer (RFC 3264) for G.711 telephony with RFC 4733 DTMF.
//!
//! Deliberately narrow: the gateway speaks PCMU/PCMA over plain RTP, so the parser keeps only
//! what that negotiation needs and rejects malformed structure instead of guessing. Everything
//! here is pure (text in, text out): no IO, no clocks, and no panics on any input.

mod negotiate;
mod parse;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

pub use negotiate::{accept_answer, answer_offer, create_offer, OFFERED_DTMF_PAYLOAD_TYPE};
pub use parse::{Fmtp, MediaDescription, Origin, RtpMap, SessionDescription};

/// Audio codecs the gateway can transcode. Both are 8 kHz mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// RTP clock rate of both G.711 variants (and therefore of the DTMF events we accept).
    pub const CLOCK_RATE_HZ: u32 = 8000;

    /// Payload type assigned by RFC 3551, used when we offer and when the peer sends no rtpmap.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec behind a static payload type (only meaningful without an rtpmap override).
    pub fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The codec named in an rtpmap; encoding names are case-insensitive (RFC 4855 §3).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

/// Media direction attribute (RFC 4566 §6), always from the point of view of the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answerer uses for an offer with this direction (RFC 3264 §6.1):
    /// what the offerer sends we receive, and the other way round.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Attribute name as written in SDP (`a=sendrecv`, ...).
    pub fn attribute_name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses a direction attribute name; `None` for any other attribute.
    pub fn from_attribute_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether the author of the SDP sends media in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the author of the SDP wants to receive media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same direction with receiving switched off. Used for RFC 2543 hold
    /// (`c=0.0.0.0`): the peer gave no address to send to, so it cannot receive.
    fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

/// Our side of the media session, supplied by the gateway for every offer or answer it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address written in `c=` and `o=`: where the peer must send RTP.
    pub ip: IpAddr,
    /// Our RTP port (RTCP is implied at port + 1).
    pub port: u16,
    /// Codecs we accept, in our preference order (used when we are the offerer).
    pub codecs: Vec<Codec>,
    /// Packetisation time we prefer when the peer states none.
    pub ptime_ms: u32,
    /// Whether we accept RFC 4733 telephone-events.
    pub dtmf: bool,
    /// `o=` session id, constant for the life of the call.
    pub session_id: u64,
    /// `o=` session version; the caller increments it for each new offer or answer.
    pub session_version: u64,
}

/// The outcome of an offer/answer exchange: everything the media plane needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where to send RTP: the effective `c=` (media level wins) and the `m=` port. An
    /// unspecified address (`0.0.0.0`, `::`) means the peer asked not to receive.
    pub remote_rtp: SocketAddr,
    pub codec: Codec,
    /// Payload type for the codec, as the peer numbered it (matters for dynamic types).
    pub payload_type: u8,
    /// The peer's telephone-event payload type, when both sides do RFC 4733.
    pub dtmf_payload_type: Option<u8>,
    /// Packetisation time, normalised to 10..=60 ms in steps of 10.
    pub ptime_ms: u32,
    /// Direction as the peer stated it (RFC 2543 `c=0.0.0.0` hold folded in).
    pub remote_direction: Direction,
    /// Our direction, the mirror image of `remote_direction`.
    pub local_direction: Direction,
    /// Index of the negotiated `m=` line in the peer's SDP.
    pub media_index: usize,
}

/// Why an SDP body could not be used. Every variant maps to 488 Not Acceptable Here
/// (or a BYE when it arrives in an ACK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is empty")]
    Empty,
    #[error("SDP must start with a v=0 line")]
    BadVersion,
    #[error("SDP has no o= line")]
    MissingOrigin,
    #[error("SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("m= line {media_index} has no c= line and the session has none")]
    MissingConnection { media_index: usize },
    #[error("no audio stream over RTP/AVP offers a codec we support")]
    NoCommonCodec,
}
