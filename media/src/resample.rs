//! Sample-rate conversion to and from the gateway's 8 kHz: 16 kHz and 24 kHz -> 8 kHz
//! decimation and 8 kHz -> 16 kHz interpolation through windowed-sinc low-pass FIRs.
//!
//! Dropping every other sample without filtering would fold 4–8 kHz energy (sibilants, TTS
//! hiss) back into the telephone band as audible aliasing. The filter passes the telephone
//! band (≤ 3.4 kHz) flat and attenuates everything above 4 kHz by well over 30 dB.

/// Filter length. Odd and with an even group delay (48 input samples = 24 output samples),
/// so the streaming and the whole-buffer paths line up on whole output samples.
pub const DECIMATOR_TAPS: usize = 97;
/// Delay of [`Decimator2`] in 8 kHz output samples.
pub const DECIMATOR_DELAY_OUT: usize = (DECIMATOR_TAPS - 1) / 4;

/// -6 dB point of the low-pass at 16 kHz input rate; with 97 Blackman-windowed taps the
/// transition band runs from about 3.3 kHz to 4.2 kHz.
const CUTOFF_HZ: f64 = 3_750.0;
const INPUT_RATE_HZ: f64 = 16_000.0;

/// Low-pass coefficients, normalised to unity gain at DC.
fn lowpass_taps() -> [f32; DECIMATOR_TAPS] {
    let mut taps = [0f64; DECIMATOR_TAPS];
    let centre = (DECIMATOR_TAPS - 1) as f64 / 2.0;
    let fc = CUTOFF_HZ / INPUT_RATE_HZ; // cycles per sample
    let last = (DECIMATOR_TAPS - 1) as f64;
    for (n, tap) in taps.iter_mut().enumerate() {
        let x = n as f64 - centre;
        let sinc = if x == 0.0 {
            2.0 * fc
        } else {
            (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
        };
        // Blackman window: ~74 dB side lobes, far below what G.711 can resolve.
        let phase = 2.0 * std::f64::consts::PI * n as f64 / last;
        let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
        *tap = sinc * window;
    }
    let sum: f64 = taps.iter().sum();
    taps.map(|t| (t / sum) as f32)
}

fn to_i16(value: f32) -> i16 {
    value
        .round()
        .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Whole-buffer 16 kHz -> 8 kHz with the filter delay removed: output sample `k` is aligned
/// with input sample `2k`, and the output has `ceil(n / 2)` samples. For prompts loaded once.
pub fn decimate_16k_to_8k(input: &[i16]) -> Vec<i16> {
    decimate_with(input, &lowpass_taps(), 2)
}

/// Whole-buffer 24 kHz → 8 kHz (a TTS engine's native rate), filter delay removed: output
/// `k` ↔ input `3k`. For bot audio chunks, which are independent pieces of speech.
pub fn decimate_24k_to_8k(input: &[i16]) -> Vec<i16> {
    decimate(input, 3)
}

/// Half-length of the windowed-sinc filters of [`decimate_24k_to_8k`] and [`Upsampler2`]
/// (taps = 2 × HALF + 1 per unit of the rate factor).
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

/// Whole-buffer decimation by `factor` (filter delay removed: output k ↔ input factor·k).
fn decimate(input: &[i16], factor: usize) -> Vec<i16> {
    decimate_with(input, &lowpass(factor), factor)
}

/// Whole-buffer decimation by `factor` through the odd-length linear-phase `taps`, with the
/// filter delay removed.
fn decimate_with(input: &[i16], taps: &[f32], factor: usize) -> Vec<i16> {
    let half = (taps.len() - 1) / 2;
    (0..input.len().div_ceil(factor))
        .map(|k| {
            let centre = k * factor;
            // Input index of tap j is centre + half - j; outside the buffer counts as silence.
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

/// Streaming 16 kHz -> 8 kHz for audio that arrives in pieces of any length (e.g. a bot's
/// L16/16k stream). Output lags the input by [`DECIMATOR_DELAY_OUT`] output samples.
#[derive(Clone, Debug)]
pub struct Decimator2 {
    taps: [f32; DECIMATOR_TAPS],
    /// The last `DECIMATOR_TAPS - 1` input samples, then the current input (reused buffer).
    window: Vec<i16>,
    /// Whether the next input sample has an even index in the stream (it produces an output).
    next_is_even: bool,
}

impl Default for Decimator2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Decimator2 {
    pub fn new() -> Self {
        Decimator2 {
            taps: lowpass_taps(),
            window: vec![0; DECIMATOR_TAPS - 1],
            next_is_even: true,
        }
    }

    /// Appends to `out` one output sample per even-indexed input sample.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let history = DECIMATOR_TAPS - 1;
        self.window.extend_from_slice(input);
        let first_even = if self.next_is_even { 0 } else { 1 };
        let mut position = history + first_even;
        while let Some(span) = position
            .checked_sub(history)
            .and_then(|start| self.window.get(start..=position))
        {
            // span[history] is the newest sample; tap j weights the sample j steps older.
            let acc: f32 = self
                .taps
                .iter()
                .zip(span.iter().rev())
                .map(|(&h, &x)| h * f32::from(x))
                .sum();
            out.push(to_i16(acc));
            position += 2;
        }
        if input.len() % 2 == 1 {
            self.next_is_even = !self.next_is_even;
        }
        let excess = self.window.len().saturating_sub(history);
        self.window.drain(..excess);
    }

    /// Back to silence, as if just created.
    pub fn reset(&mut self) {
        self.window.clear();
        self.window.resize(DECIMATOR_TAPS - 1, 0);
        self.next_is_even = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq_hz: f64, rate_hz: f64, len: usize, amplitude: f64) -> Vec<i16> {
        (0..len)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * freq_hz * n as f64 / rate_hz;
                (amplitude * phase.sin()).round() as i16
            })
            .collect()
    }

    fn rms(samples: &[i16]) -> f64 {
        let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (energy / samples.len() as f64).sqrt()
    }

    /// Gain in dB of a tone through the decimator, edges excluded.
    fn gain_db(freq_hz: f64) -> f64 {
        let input = tone(freq_hz, 16_000.0, 16_000, 10_000.0);
        let output = decimate_16k_to_8k(&input);
        assert_eq!(output.len(), 8_000);
        20.0 * (rms(&output[200..7_800]) / rms(&input[400..15_600])).log10()
    }

    #[test]
    fn telephone_band_passes_flat() {
        for freq in [300.0, 1_000.0, 2_000.0, 3_000.0] {
            let gain = gain_db(freq);
            assert!(gain.abs() < 0.5, "{freq} Hz: {gain:.2} dB");
        }
    }

    #[test]
    fn above_4_khz_is_attenuated_at_least_30_db() {
        for freq in [4_300.0, 4_500.0, 5_000.0, 6_000.0, 7_500.0] {
            let gain = gain_db(freq);
            assert!(gain < -30.0, "{freq} Hz: {gain:.2} dB");
        }
    }

    #[test]
    fn whole_buffer_keeps_alignment_and_length() {
        let input = tone(500.0, 16_000.0, 1_001, 8_000.0);
        let output = decimate_16k_to_8k(&input);
        assert_eq!(output.len(), 501);
        // Zero-phase: output k matches input 2k (a 500 Hz tone barely changes over 2 samples).
        for k in 100..400 {
            let diff = (i32::from(output[k]) - i32::from(input[2 * k])).abs();
            assert!(diff < 80, "k={k}: {} vs {}", output[k], input[2 * k]);
        }
        assert!(decimate_16k_to_8k(&[]).is_empty());
    }

    #[test]
    fn streaming_matches_whole_buffer_for_any_piece_sizes() {
        let input = tone(1_234.0, 16_000.0, 4_000, 12_000.0);
        let whole = decimate_16k_to_8k(&input);
        let mut decimator = Decimator2::new();
        let mut streamed = Vec::new();
        let mut rest = &input[..];
        for size in [1usize, 7, 160, 3, 320, 2, 999].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).min(rest.len()));
            decimator.process(piece, &mut streamed);
            rest = tail;
        }
        assert_eq!(streamed.len(), 2_000);
        // streamed[m] is the filter centred on input 2m - 48 = whole[m - 24].
        for m in DECIMATOR_DELAY_OUT..streamed.len() {
            let diff = (i32::from(streamed[m]) - i32::from(whole[m - DECIMATOR_DELAY_OUT])).abs();
            assert!(diff <= 1, "m={m}");
        }
        decimator.reset();
        let mut again = Vec::new();
        decimator.process(&input, &mut again);
        assert_eq!(again, streamed);
    }

    #[test]
    fn full_scale_input_does_not_wrap() {
        let square: Vec<i16> = (0..2_000)
            .map(|n| {
                if (n / 40) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let output = decimate_16k_to_8k(&square);
        // Gibbs overshoot must clip, not wrap around to the opposite sign.
        for (k, &sample) in output.iter().enumerate().take(960).skip(30) {
            let expected_positive = ((2 * k) / 40) % 2 == 0;
            let far_from_edge = (2 * k) % 40 > 6 && (2 * k) % 40 < 34;
            if far_from_edge {
                assert_eq!(sample > 0, expected_positive, "k={k}");
            }
        }
    }

    #[test]
    fn decimation_by_three_removes_what_would_alias() {
        // 10 kHz at 24 kHz would fold to 2 kHz at 8 kHz without the low-pass.
        let input = tone(10_000.0, 24_000.0, 24_000, 8000.0);
        let out = decimate_24k_to_8k(&input);
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
