//! RFC 3264 offer/answer for one G.711 audio stream, and the SDP text we write.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::parse::{MediaDescription, SessionDescription};
use super::{Codec, Direction, LocalMedia, NegotiatedMedia, SdpError};

/// Payload type we assign to telephone-event in our own offers (the customary value).
pub const OFFERED_DTMF_PAYLOAD_TYPE: u8 = 101;

/// Events 0-16: digits, `*`, `#`, A-D and flash (RFC 4733 §7), all a telephony peer sends.
const DTMF_EVENTS: &str = "0-16";

const DEFAULT_PTIME_MS: u32 = 20;
const MIN_PTIME_MS: u32 = 10;
const MAX_PTIME_MS: u32 = 60;

/// Answers an offer (from an INVITE or re-INVITE).
///
/// Picks the first `m=audio` line over RTP/AVP(F) that lists a codec in `local.codecs`, and on
/// it the first such codec in the *offerer's* order (RFC 3264 §6.1). Every other m-line is
/// answered with port 0, as §6 requires the answer to mirror the offer's m-lines.
/// `SdpError::NoCommonCodec` means the gateway should reply 488.
pub fn answer_offer(
    offer: &str,
    local: &LocalMedia,
) -> Result<(String, NegotiatedMedia), SdpError> {
    let offer = SessionDescription::parse(offer)?;
    let negotiated = negotiate(&offer, &local.codecs, local)?;

    let mut answer = String::with_capacity(512);
    write_session_header(&mut answer, local);
    for (index, media) in offer.media.iter().enumerate() {
        if index == negotiated.media_index {
            let dtmf = negotiated.dtmf_payload_type;
            let _ = write!(
                answer,
                "m={} {} {} {}",
                media.media, local.port, media.proto, negotiated.payload_type
            );
            if let Some(dtmf) = dtmf {
                let _ = write!(answer, " {dtmf}");
            }
            answer.push_str("\r\n");
            write_rtpmap(&mut answer, negotiated.payload_type, negotiated.codec);
            if let Some(dtmf) = dtmf {
                write_dtmf_attributes(&mut answer, dtmf);
            }
            write_ptime_and_direction(&mut answer, negotiated.ptime_ms, negotiated.local_direction);
        } else {
            let _ = write!(answer, "m={} 0 {}", media.media, media.proto);
            for format in &media.formats {
                let _ = write!(answer, " {format}");
            }
            answer.push_str("\r\n");
        }
    }
    Ok((answer, negotiated))
}

/// Writes our offer, for the delayed-offer case (INVITE without SDP: we offer in the 200 and
/// the answer comes in the ACK) and for our own re-INVITEs (`direction` sendonly = hold).
///
/// An empty `local.codecs` is a configuration mistake, not peer input; rather than emit an
/// invalid `m=` line we then offer both G.711 variants.
pub fn create_offer(local: &LocalMedia, direction: Direction) -> String {
    let mut offer = String::with_capacity(512);
    write_session_header(&mut offer, local);
    let codecs = offered_codecs(&local.codecs);

    let _ = write!(offer, "m=audio {} RTP/AVP", local.port);
    for codec in &codecs {
        let _ = write!(offer, " {}", codec.static_payload_type());
    }
    if local.dtmf {
        let _ = write!(offer, " {OFFERED_DTMF_PAYLOAD_TYPE}");
    }
    offer.push_str("\r\n");
    for codec in &codecs {
        write_rtpmap(&mut offer, codec.static_payload_type(), *codec);
    }
    if local.dtmf {
        write_dtmf_attributes(&mut offer, OFFERED_DTMF_PAYLOAD_TYPE);
    }
    write_ptime_and_direction(&mut offer, normalize_ptime(local.ptime_ms), direction);
    offer
}

/// Reads the answer to an offer we made with [`create_offer`] (normally from the ACK).
///
/// Tolerates answers that keep extra m-lines (e.g. RTP/SAVP rejected, RTP/AVP accepted) by
/// using the first usable audio line, and codecs we did not offer by skipping them.
/// `local_direction` is derived from the answered direction, so a peer answering our
/// sendrecv with recvonly leaves us sendonly.
pub fn accept_answer(
    answer: &str,
    our_offer_codecs: &[Codec],
    local: &LocalMedia,
) -> Result<NegotiatedMedia, SdpError> {
    let answer = SessionDescription::parse(answer)?;
    negotiate(&answer, our_offer_codecs, local)
}

/// Chooses the stream and codec in `remote`'s SDP and derives everything the media plane
/// needs. Shared by both roles: the rules for reading an offer and an answer are the same.
fn negotiate(
    remote: &SessionDescription,
    acceptable: &[Codec],
    local: &LocalMedia,
) -> Result<NegotiatedMedia, SdpError> {
    let (media_index, media, codec, payload_type) = remote
        .media
        .iter()
        .enumerate()
        .filter(|(_, media)| {
            media.media.eq_ignore_ascii_case("audio") && media.port != 0 && media.is_plain_rtp()
        })
        .find_map(|(index, media)| {
            first_acceptable_codec(media, acceptable)
                .map(|(codec, payload_type)| (index, media, codec, payload_type))
        })
        .ok_or(SdpError::NoCommonCodec)?;

    let address: IpAddr = media
        .connection
        .or(remote.connection)
        .ok_or(SdpError::MissingConnection { media_index })?;

    let stated_direction = media
        .direction
        .or(remote.direction)
        .unwrap_or(Direction::SendRecv);
    // RFC 2543 hold: an unspecified address means "do not send to me", i.e. the peer only
    // sends (or nothing at all). RFC 3264 §8.4 asks answerers to keep understanding it.
    let remote_direction = if address.is_unspecified() {
        stated_direction.without_receive()
    } else {
        stated_direction
    };

    let dtmf_payload_type = if local.dtmf {
        media.telephone_event_payload_type()
    } else {
        None
    };
    let ptime_ms = normalize_ptime(media.ptime_ms.unwrap_or(local.ptime_ms));

    Ok(NegotiatedMedia {
        remote_rtp: SocketAddr::new(address, media.port),
        codec,
        payload_type,
        dtmf_payload_type,
        ptime_ms,
        remote_direction,
        local_direction: remote_direction.answer(),
        media_index,
    })
}

/// The first payload type, in the order the peer listed them, that is a codec we accept.
fn first_acceptable_codec(media: &MediaDescription, acceptable: &[Codec]) -> Option<(Codec, u8)> {
    media.payload_types().find_map(|payload_type| {
        media
            .codec_for(payload_type)
            .filter(|codec| acceptable.contains(codec))
            .map(|codec| (codec, payload_type))
    })
}

/// Our codecs without duplicates, falling back to both G.711 variants when none are configured.
fn offered_codecs(configured: &[Codec]) -> Vec<Codec> {
    let mut codecs: Vec<Codec> = Vec::with_capacity(2);
    for codec in configured {
        if !codecs.contains(codec) {
            codecs.push(*codec);
        }
    }
    if codecs.is_empty() {
        codecs.extend([Codec::Pcmu, Codec::Pcma]);
    }
    codecs
}

/// Clamps a packetisation time to what the media plane supports: 10..=60 ms in whole 10 ms
/// steps (rounded down, so we never exceed what the peer asked for). 0 means "unspecified".
pub(super) fn normalize_ptime(ptime_ms: u32) -> u32 {
    if ptime_ms == 0 {
        return DEFAULT_PTIME_MS;
    }
    ptime_ms.clamp(MIN_PTIME_MS, MAX_PTIME_MS) / 10 * 10
}

fn write_session_header(out: &mut String, local: &LocalMedia) {
    let address_type = match local.ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let _ = write!(
        out,
        "v=0\r\no=- {} {} IN {address_type} {ip}\r\ns=-\r\nc=IN {address_type} {ip}\r\nt=0 0\r\n",
        local.session_id,
        local.session_version,
        ip = local.ip,
    );
}

fn write_rtpmap(out: &mut String, payload_type: u8, codec: Codec) {
    let _ = write!(
        out,
        "a=rtpmap:{payload_type} {}/{}\r\n",
        codec.encoding_name(),
        Codec::CLOCK_RATE_HZ
    );
}

fn write_dtmf_attributes(out: &mut String, payload_type: u8) {
    let _ = write!(
        out,
        "a=rtpmap:{payload_type} telephone-event/{}\r\na=fmtp:{payload_type} {DTMF_EVENTS}\r\n",
        Codec::CLOCK_RATE_HZ
    );
}

fn write_ptime_and_direction(out: &mut String, ptime_ms: u32, direction: Direction) {
    let _ = write!(
        out,
        "a=ptime:{ptime_ms}\r\na={}\r\n",
        direction.attribute_name()
    );
}
