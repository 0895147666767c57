//! Minimal RTP (RFC 3550) packet writer/reader and G.711 helpers for the reference peer.
//!
//! Written independently of the project's `media` crate on purpose: the peer is the yardstick
//! the gateway is measured against, so it must not share the gateway's bugs.

use std::fmt;

/// Fixed RTP header length without CSRCs or extensions.
pub const RTP_HEADER_LEN: usize = 12;
/// Static payload type of G.711 µ-law.
pub const PT_PCMU: u8 = 0;
/// Static payload type of G.711 A-law.
pub const PT_PCMA: u8 = 8;
/// Samples per 20 ms frame at 8 kHz.
pub const SAMPLES_PER_FRAME: usize = 160;

/// The header fields the peer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpError {
    TooShort(usize),
    BadVersion(u8),
    /// Payload types 72..=76 with the marker bit are RTCP (RFC 5761 §4).
    LooksLikeRtcp(u8),
    Truncated(&'static str),
    BadPadding(u8),
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort(n) => {
                write!(f, "datagram of {n} bytes is shorter than an RTP header")
            }
            RtpError::BadVersion(v) => write!(f, "RTP version {v}, expected 2"),
            RtpError::LooksLikeRtcp(pt) => write!(f, "packet type {pt} looks like RTCP"),
            RtpError::Truncated(what) => write!(f, "packet truncated inside the {what}"),
            RtpError::BadPadding(n) => write!(f, "padding length {n} exceeds the payload"),
        }
    }
}

impl std::error::Error for RtpError {}

/// Serialises `header` + `payload` into `out` (cleared first, so the caller can reuse it).
pub fn write_packet(out: &mut Vec<u8>, header: &RtpHeader, payload: &[u8]) {
    out.clear();
    out.push(0x80); // V=2, no padding, no extension, no CSRC
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Parses one datagram, skipping CSRCs and the header extension and removing padding.
pub fn parse_packet(datagram: &[u8]) -> Result<(RtpHeader, &[u8]), RtpError> {
    let fixed = datagram
        .get(..RTP_HEADER_LEN)
        .ok_or(RtpError::TooShort(datagram.len()))?;
    let version = fixed[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let has_padding = fixed[0] & 0x20 != 0;
    let has_extension = fixed[0] & 0x10 != 0;
    let csrc_count = usize::from(fixed[0] & 0x0f);
    let marker = fixed[1] & 0x80 != 0;
    let payload_type = fixed[1] & 0x7f;
    if marker && (72..=76).contains(&payload_type) {
        return Err(RtpError::LooksLikeRtcp(payload_type | 0x80));
    }
    let header = RtpHeader {
        marker,
        payload_type,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
    };
    let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
    if offset > datagram.len() {
        return Err(RtpError::Truncated("CSRC list"));
    }
    if has_extension {
        let ext = datagram
            .get(offset..offset + 4)
            .ok_or(RtpError::Truncated("extension header"))?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        offset += 4 + 4 * words;
        if offset > datagram.len() {
            return Err(RtpError::Truncated("extension body"));
        }
    }
    let mut end = datagram.len();
    if has_padding {
        let pad = datagram.last().copied().unwrap_or(0);
        if pad == 0 || usize::from(pad) > end - offset {
            return Err(RtpError::BadPadding(pad));
        }
        end -= usize::from(pad);
    }
    Ok((header, &datagram[offset..end]))
}

/// The payload byte that decodes to digital silence for a G.711 payload type.
pub fn silence_byte(payload_type: u8) -> u8 {
    if payload_type == PT_PCMA {
        0xD5
    } else {
        0xFF
    }
}

/// Encodes linear samples into `out` (cleared first) with µ-law (PT 0) or A-law (PT 8).
pub fn encode_g711(payload_type: u8, samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    if payload_type == PT_PCMA {
        out.extend(
            samples
                .iter()
                .map(|&s| audio_codec_algorithms::encode_alaw(s)),
        );
    } else {
        out.extend(
            samples
                .iter()
                .map(|&s| audio_codec_algorithms::encode_ulaw(s)),
        );
    }
}

/// Decodes a G.711 payload into `out` (cleared first). Returns false for other payload types
/// (e.g. telephone-event), leaving `out` empty.
pub fn decode_g711(payload_type: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
    out.clear();
    match payload_type {
        PT_PCMU => out.extend(
            payload
                .iter()
                .map(|&b| audio_codec_algorithms::decode_ulaw(b)),
        ),
        PT_PCMA => out.extend(
            payload
                .iter()
                .map(|&b| audio_codec_algorithms::decode_alaw(b)),
        ),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xfffe,
            timestamp: 0x01020304,
            ssrc: 0xdeadbeef,
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut buf = Vec::new();
        write_packet(&mut buf, &header(), &[1, 2, 3]);
        assert_eq!(buf.len(), 15);
        let (h, payload) = parse_packet(&buf).unwrap();
        assert_eq!(h, header());
        assert_eq!(payload, &[1, 2, 3]);
    }

    #[test]
    fn parse_skips_csrcs_extension_and_padding() {
        let mut pkt = vec![
            0x80 | 0x20 | 0x10 | 0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            160,
            0,
            0,
            0,
            7,
        ];
        pkt.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        pkt.extend_from_slice(&[0xBE, 0xDE, 0, 1, 5, 5, 5, 5]); // extension of one word
        pkt.extend_from_slice(&[42, 43]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let (h, payload) = parse_packet(&pkt).unwrap();
        assert_eq!(h.ssrc, 7);
        assert_eq!(h.sequence, 1);
        assert_eq!(payload, &[42, 43]);
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert_eq!(parse_packet(&[0x80; 5]), Err(RtpError::TooShort(5)));
        let mut v1 = vec![0x40; 12];
        v1[1] = 0;
        assert_eq!(parse_packet(&v1), Err(RtpError::BadVersion(1)));
        let rtcp = [0x80, 0xC8, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]; // sender report, PT 200
        assert_eq!(parse_packet(&rtcp), Err(RtpError::LooksLikeRtcp(200)));
        let csrc_missing = [0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(
            parse_packet(&csrc_missing),
            Err(RtpError::Truncated("CSRC list"))
        );
        let ext_missing = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE];
        assert_eq!(
            parse_packet(&ext_missing),
            Err(RtpError::Truncated("extension header"))
        );
        let ext_body_missing = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 9];
        assert_eq!(
            parse_packet(&ext_body_missing),
            Err(RtpError::Truncated("extension body"))
        );
        let bad_pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert_eq!(parse_packet(&bad_pad), Err(RtpError::BadPadding(9)));
        let zero_pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(parse_packet(&zero_pad), Err(RtpError::BadPadding(0)));
    }

    #[test]
    fn g711_silence_decodes_to_near_zero_and_speech_survives() {
        let mut pcm = Vec::new();
        for pt in [PT_PCMU, PT_PCMA] {
            assert!(decode_g711(pt, &[silence_byte(pt); 4], &mut pcm));
            assert!(pcm.iter().all(|s| s.abs() <= 8), "pt {pt}: {pcm:?}");
            let mut enc = Vec::new();
            encode_g711(pt, &[1000, -1000, 8000], &mut enc);
            assert!(decode_g711(pt, &enc, &mut pcm));
            for (got, want) in pcm.iter().zip([1000i16, -1000, 8000]) {
                assert!((i32::from(*got) - i32::from(want)).abs() < i32::from(want).abs() / 10);
            }
        }
        assert!(!decode_g711(101, &[1, 2, 3, 4], &mut pcm));
        assert!(pcm.is_empty());
    }
}
