//! Audio formats of the gRPC bot API ↔ the gateway's 8 kHz PCM16.
//!
//! Bot audio (PCM16 at 8/16/24 kHz or µ-law) is decoded and brought to 8 kHz per chunk
//! (chunks are independent pieces of speech; the filter's edge effect is < 1 ms). Caller
//! audio goes out as PCM16 at 8 or 16 kHz; 16 kHz is interpolated with a streaming filter so
//! consecutive 20 ms frames join without clicks.

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
                24000 => decimate(&pcm, 3),
                _ => pcm,
            })
        }
        None => Err(AudioError::Encoding),
    }
}

/// Half-length of the windowed-sinc filters (taps = 2 × HALF + 1).
const HALF: usize = 24;

/// Low-pass at 3.6 kHz for `rate_factor` × 8 kHz, Blackman-windowed, unity DC gain.
fn lowpass(rate_factor: usize) -> Vec<f32> {
    let fc = 3600.0 / (8000.0 * rate_factor as f64);
    let n = 2 * HALF * rate_factor.max(1) / 2 + 1;
    let centre = (n - 1) as f64 / 2.0;
    let mut taps: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - centre;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
            };
            let phase = 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64;
            sinc * (0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos())
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps.into_iter().map(|t| t as f32).collect()
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Whole-buffer decimation by `factor` (filter delay removed: output k ↔ input factor·k).
fn decimate(input: &[i16], factor: usize) -> Vec<i16> {
    let taps = lowpass(factor);
    let half = (taps.len() - 1) / 2;
    (0..input.len().div_ceil(factor))
        .map(|k| {
            let centre = k * factor;
            let acc: f32 = taps
                .iter()
                .enumerate()
                .filter_map(|(j, &h)| {
                    let index = (centre + half).checked_sub(j)?;
                    input.get(index).map(|&x| h * f32::from(x))
                })
                .sum();
            to_i16(acc)
        })
        .collect()
}

/// Streaming 8 kHz → 16 kHz: zero-stuffing + low-pass, gain 2. The output lags the input
/// by HALF/2 8 kHz samples (1.5 ms).
pub struct Upsampler2 {
    taps: Vec<f32>,
    /// The last taps.len() samples of the zero-stuffed 16 kHz signal.
    history: Vec<f32>,
}

impl Default for Upsampler2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler2 {
    pub fn new() -> Self {
        let taps = lowpass(2);
        let history = vec![0.0; taps.len()];
        Upsampler2 { taps, history }
    }

    /// Appends 2 × input.len() samples at 16 kHz to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &x in input {
            for stuffed in [f32::from(x) * 2.0, 0.0] {
                self.history.rotate_left(1);
                if let Some(last) = self.history.last_mut() {
                    *last = stuffed;
                }
                let acc: f32 = self
                    .history
                    .iter()
                    .rev()
                    .zip(&self.taps)
                    .map(|(s, h)| s * h)
                    .sum();
                out.push(to_i16(acc));
            }
        }
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

    #[test]
    fn decimation_by_three_removes_what_would_alias() {
        // 10 kHz at 24 kHz would fold to 2 kHz at 8 kHz without the low-pass.
        let input = tone(10_000.0, 24_000.0, 24_000, 8000.0);
        let out = decimate(&input, 3);
        assert!(
            rms(&out[100..7900]) < 8000.0 * 0.01,
            "alias level {}",
            rms(&out)
        );
    }

    #[test]
    fn upsampling_keeps_level_across_frames() {
        let input = tone(1000.0, 8000.0, 8000, 8000.0);
        let mut up = Upsampler2::new();
        let mut out = Vec::new();
        // 20 ms frames, as the call sends them.
        for frame in input.chunks(160) {
            up.process(frame, &mut out);
        }
        assert_eq!(out.len(), 16_000);
        let expected = tone(1000.0, 16000.0, 16000, 8000.0);
        assert!((rms(&out[200..15800]) / rms(&expected) - 1.0).abs() < 0.05);
        // No clicks at frame joins: sample-to-sample steps stay within a sine's slope.
        let max_step = out[200..]
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(max_step < 4000, "max step {max_step}");
    }
}
