//! G.711 µ-law (PCMU) and A-law (PCMA) at 8 kHz.
//!
//! Decoding is a 256-entry table lookup. Encoding is also a table lookup: the µ-law encoder
//! only looks at the top 14 bits of a sample and the A-law encoder at the top 13, so a
//! 16 KiB and an 8 KiB table hold every possible answer. All four tables are computed at
//! compile time (`const fn`) from the ITU-T G.711 bit-twiddling algorithm, so there is no
//! start-up cost and no lazy-init branch on the hot path. Bit-exactness against the
//! `audio-codec-algorithms` crate is checked by the tests for every input.

/// RTP static payload type of PCMU (RFC 3551).
pub const PCMU_PAYLOAD_TYPE: u8 = 0;
/// RTP static payload type of PCMA (RFC 3551).
pub const PCMA_PAYLOAD_TYPE: u8 = 8;

/// A G.711 law. One encoded byte per sample, 8000 samples per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (0 for PCMU, 8 for PCMA).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => PCMU_PAYLOAD_TYPE,
            Codec::Pcma => PCMA_PAYLOAD_TYPE,
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub const fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            PCMU_PAYLOAD_TYPE => Some(Codec::Pcmu),
            PCMA_PAYLOAD_TYPE => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`a=rtpmap:0 PCMU/8000`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The byte that decodes to digital silence (0): 0xFF for µ-law, 0xD5 for A-law.
    pub const fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Encodes `min(pcm.len(), out.len())` samples and returns that count.
    pub fn encode_into(&self, pcm: &[i16], out: &mut [u8]) -> usize {
        let count = pcm.len().min(out.len());
        match self {
            Codec::Pcmu => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = ulaw_encode(s);
                }
            }
            Codec::Pcma => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = alaw_encode(s);
                }
            }
        }
        count
    }

    /// Decodes `min(data.len(), out.len())` bytes and returns that count.
    pub fn decode_into(&self, data: &[u8], out: &mut [i16]) -> usize {
        let count = data.len().min(out.len());
        let table = match self {
            Codec::Pcmu => &ULAW_DECODE,
            Codec::Pcma => &ALAW_DECODE,
        };
        for (o, &b) in out.iter_mut().zip(data) {
            *o = table[usize::from(b)];
        }
        count
    }
}

/// Encodes one sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // The µ-law encoder ignores the 2 low bits; `>> 2` keeps the sign, the mask makes the
    // index 0..16384, so the lookup cannot go out of bounds.
    ULAW_ENCODE[((sample >> 2) as u16 & 0x3FFF) as usize]
}

/// Encodes one sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as u16 & 0x1FFF) as usize]
}

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// ITU-T G.711 µ-law compression of one sample (the reference algorithm; used to fill the
/// table).
const fn ulaw_encode_reference(sample: i16) -> u8 {
    let negative = sample < 0;
    // 14-bit magnitude; for negative input one's complement (as the ITU code does).
    let shifted = (sample >> 2) as u16;
    let magnitude = if negative { shifted ^ 0xFFFF } else { shifted } as u32;
    let biased = magnitude + 33;
    let bits = u32::BITS - biased.leading_zeros();
    let segment = bits.saturating_sub(6);
    let code = if segment >= 8 {
        0x7F
    } else {
        (segment << 4) | ((biased >> (segment + 1)) & 0x0F)
    };
    let sign = if negative { 0x80 } else { 0x00 };
    (sign | code as u8) ^ 0xFF
}

/// ITU-T G.711 A-law compression of one sample.
const fn alaw_encode_reference(sample: i16) -> u8 {
    let negative = sample < 0;
    let shifted = (sample >> 3) as u16;
    let magnitude = if negative { shifted ^ 0xFFFF } else { shifted } as u32;
    let segment = (u32::BITS - (magnitude | 0x1F).leading_zeros()) - 5;
    let shift = if segment < 2 { 1 } else { segment };
    let code = (segment << 4) | ((magnitude >> shift) & 0x0F);
    let sign = if negative { 0x00 } else { 0x80 };
    (sign | code as u8) ^ 0x55
}

const fn ulaw_decode_reference(code: u8) -> i16 {
    let inverted = !code;
    let mantissa = ((inverted & 0x0F) as i32) << 3;
    let segment = ((inverted & 0x70) >> 4) as i32;
    let magnitude = ((mantissa + 0x84) << segment) - 0x84;
    if inverted & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_reference(code: u8) -> i16 {
    let toggled = code ^ 0x55;
    let mantissa = ((toggled & 0x0F) as i32) << 4;
    let segment = ((toggled & 0x70) >> 4) as i32;
    let magnitude = match segment {
        0 => mantissa + 8,
        _ => (mantissa + 0x108) << (segment - 1),
    };
    if toggled & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut index = 0;
    while index < 16384 {
        // Index is the 14-bit two's complement of `sample >> 2`; rebuild a representative
        // sample by sign-extending it and shifting back.
        let top = ((index as u16) << 2) as i16;
        table[index] = ulaw_encode_reference(top);
        index += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 8192] {
    let mut table = [0u8; 8192];
    let mut index = 0;
    while index < 8192 {
        let top = ((index as u16) << 3) as i16;
        table[index] = alaw_encode_reference(top);
        index += 1;
    }
    table
}

const fn build_decode(ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = if ulaw {
            ulaw_decode_reference(code as u8)
        } else {
            alaw_decode_reference(code as u8)
        };
        code += 1;
    }
    table
}

static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 8192] = build_alaw_encode();
static ULAW_DECODE: [i16; 256] = build_decode(true);
static ALAW_DECODE: [i16; 256] = build_decode(false);

#[cfg(test)]
mod tests {
    use super::*;
    use audio_codec_algorithms as reference;

    #[test]
    fn ulaw_encode_is_bit_exact_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(sample),
                reference::encode_ulaw(sample),
                "sample {sample}"
            );
        }
    }

    #[test]
    fn alaw_encode_is_bit_exact_for_every_sample() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(
                alaw_encode(sample),
                reference::encode_alaw(sample),
                "sample {sample}"
            );
        }
    }

    #[test]
    fn decode_is_bit_exact_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_decode(code), reference::decode_ulaw(code), "µ {code}");
            assert_eq!(alaw_decode(code), reference::decode_alaw(code), "A {code}");
        }
    }

    #[test]
    fn slice_apis_match_the_sample_functions() {
        let pcm: Vec<i16> = (0..400)
            .map(|i| ((i * 997) % 65536 - 32768) as i16)
            .collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut encoded = vec![0u8; pcm.len()];
            assert_eq!(codec.encode_into(&pcm, &mut encoded), pcm.len());
            let mut decoded = vec![0i16; pcm.len()];
            assert_eq!(codec.decode_into(&encoded, &mut decoded), pcm.len());
            for ((&s, &e), &d) in pcm.iter().zip(&encoded).zip(&decoded) {
                let (enc, dec) = match codec {
                    Codec::Pcmu => (reference::encode_ulaw(s), reference::decode_ulaw(e)),
                    Codec::Pcma => (reference::encode_alaw(s), reference::decode_alaw(e)),
                };
                assert_eq!(e, enc);
                assert_eq!(d, dec);
            }
        }
    }

    #[test]
    fn mismatched_lengths_process_the_shorter_and_leave_the_rest() {
        let mut out = [7u8; 4];
        assert_eq!(Codec::Pcmu.encode_into(&[0, 0], &mut out), 2);
        assert_eq!(out, [0xFF, 0xFF, 7, 7]);
        let mut pcm = [5i16; 2];
        assert_eq!(Codec::Pcma.decode_into(&[0xD5, 0xD5, 0xD5], &mut pcm), 2);
        assert_eq!(pcm, [8, 8]);
    }

    #[test]
    fn silence_byte_decodes_to_near_zero_and_payload_types_are_static() {
        assert_eq!(ulaw_decode(Codec::Pcmu.silence_byte()), 0);
        // A-law has no exact zero; 0xD5 is the smallest positive step.
        assert_eq!(alaw_decode(Codec::Pcma.silence_byte()), 8);
        assert_eq!(ulaw_encode(0), Codec::Pcmu.silence_byte());
        assert_eq!(alaw_encode(0), Codec::Pcma.silence_byte());
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::Pcma.encoding_name(), "PCMA");
    }
}
