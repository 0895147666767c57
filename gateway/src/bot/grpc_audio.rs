//! Audio formats of the gRPC bot API ↔ the gateway's 8 kHz PCM16.
//!
//! Bot audio (PCM16 at 8/16/24 kHz or µ-law) is decoded and brought to 8 kHz per chunk
//! (chunks are independent pieces of speech; the filter's edge effect is < 1 ms). Caller
//! audio goes out as PCM16 at 8 or 16 kHz; 16 kHz is interpolated with a streaming filter
//! (`media::resample::Upsampler2`) so consecutive 20 ms frames join without clicks.

/// Why a bot's audio was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("PCM16 audio must have an even number of bytes (got {0})")]
    OddLength(usize),
    #[error("unsupported sample rate {0} for PCM16 (8000, 16000 or 24000)")]
    Pcm16Rate(u32),
    #[error("µ-law audio must be 8000 Hz (got {0})")]
    MulawRate(u32),
    #[error("unspecified or unknown audio encoding")]
    Encoding,
}

/// Supported bot audio encodings (the proto's `AudioEncoding` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Pcm16,
    Mulaw,
}

/// Decodes one Play chunk to 8 kHz mono PCM16.
pub fn decode_to_8k(
    audio: &[u8],
    encoding: Option<Encoding>,
    rate: u32,
) -> Result<Vec<i16>, AudioError> {
    match encoding {
        Some(Encoding::Mulaw) => {
            if rate != 8000 {
                return Err(AudioError::MulawRate(rate));
            }
            Ok(audio.iter().map(|&b| media::g711::ulaw_decode(b)).collect())
        }
        Some(Encoding::Pcm16) => {
            if !matches!(rate, 8000 | 16000 | 24000) {
                return Err(AudioError::Pcm16Rate(rate));
            }
            if !audio.len().is_multiple_of(2) {
                return Err(AudioError::OddLength(audio.len()));
            }
            let pcm: Vec<i16> = audio
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            Ok(match rate {
                16000 => media::resample::decimate_16k_to_8k(&pcm),
                24000 => media::resample::decimate_24k_to_8k(&pcm),
                _ => pcm,
            })
        }
        None => Err(AudioError::Encoding),
    }
}

/// PCM16 little-endian bytes.
pub fn pcm16le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: f64, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn malformed_audio_is_refused() {
        let pcm = Some(Encoding::Pcm16);
        assert_eq!(
            decode_to_8k(&[0; 3], pcm, 8000),
            Err(AudioError::OddLength(3))
        );
        assert_eq!(
            decode_to_8k(&[0; 4], pcm, 44100),
            Err(AudioError::Pcm16Rate(44100))
        );
        assert_eq!(
            decode_to_8k(&[0; 4], Some(Encoding::Mulaw), 16000),
            Err(AudioError::MulawRate(16000))
        );
        assert_eq!(decode_to_8k(&[0; 4], None, 8000), Err(AudioError::Encoding));
    }

    #[test]
    fn every_format_arrives_at_8k_with_its_level() {
        let n8 = 8000;
        let reference = rms(&tone(440.0, 8000.0, n8, 8000.0));
        for rate in [8000u32, 16000, 24000] {
            let factor = (rate / 8000) as usize;
            let input = tone(440.0, f64::from(rate), n8 * factor, 8000.0);
            let out = decode_to_8k(&pcm16le(&input), Some(Encoding::Pcm16), rate).unwrap();
            assert_eq!(out.len(), n8, "rate {rate}");
            let level = rms(&out[100..n8 - 100]);
            assert!(
                (level / reference - 1.0).abs() < 0.05,
                "rate {rate}: {level} vs {reference}"
            );
        }
        let mulaw: Vec<u8> = tone(440.0, 8000.0, n8, 8000.0)
            .iter()
            .map(|&s| media::g711::ulaw_encode(s))
            .collect();
        let out = decode_to_8k(&mulaw, Some(Encoding::Mulaw), 8000).unwrap();
        assert!((rms(&out) / reference - 1.0).abs() < 0.05);
    }
}
