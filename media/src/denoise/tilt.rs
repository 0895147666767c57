//! A spectral tilt wrapped around RNNoise, undone exactly afterwards.
//!
//! Why: the stock RNNoise weights (nnnoiseless 0.5.2) leave loud *flat-spectrum* noise almost
//! untouched. Measured here on 8 kHz white noise through the 48 kHz chain: 20–37 dB of
//! suppression at −50…−40 dBFS, but ≈ 1 dB at −35…−20 dBFS (and also ≈ 1 dB at −60), while
//! pink and brown noise lose 40–60 dB at every level. Telephone line hiss and codec noise
//! are close to white, so that hole matters. Tilting the input by a one-pole low-pass makes
//! white noise look brown-ish to the network; the exact inverse (a two-tap FIR) afterwards
//! restores the spectrum. Measured with the tilt: white noise −30…−44 dB from −60 to
//! −20 dBFS, pink/brown unchanged or better, speech energy unchanged (−0.0 dB), RNNoise's
//! VAD probability on speech unchanged (0.95). Pole 0.5 at 8 kHz: −3 dB near 0.9 kHz,
//! −9.5 dB at 4 kHz. It runs at 8 kHz (not 48 kHz) so the inverse cannot lift whatever RNNoise
//! leaves above 4 kHz before the decimator removes it. The pair is minimum phase: no delay.

/// Pole of the tilt filter at 8 kHz (0.3 left white noise at −60 dBFS unsuppressed; 0.5 and
/// 0.7 measured alike).
const POLE: f32 = 0.5;

#[derive(Clone, Debug, Default)]
pub(super) struct SpectralTilt {
    /// Last output of the low-pass (its only state).
    tilted: f32,
    /// Last input of the inverse FIR.
    previous_untilt_input: f32,
}

impl SpectralTilt {
    /// y[n] = a·y[n−1] + (1−a)·x[n]: unity gain at DC, |y| never exceeds max |x|.
    pub(super) fn apply(&mut self, samples: &mut [f32]) {
        for sample in samples {
            self.tilted = POLE * self.tilted + (1.0 - POLE) * *sample;
            *sample = self.tilted;
        }
    }

    /// x[n] = (y[n] − a·y[n−1]) / (1−a): the exact inverse of [`apply`](Self::apply).
    pub(super) fn undo(&mut self, samples: &mut [f32]) {
        for sample in samples {
            let input = *sample;
            *sample = (input - POLE * self.previous_untilt_input) / (1.0 - POLE);
            self.previous_untilt_input = input;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_restores_the_original_samples() {
        let original: Vec<f32> = (0..400)
            .map(|n| ((n * 37 % 101) as f32 - 50.0) * 300.0)
            .collect();
        let mut tilt = SpectralTilt::default();
        let mut samples = original.clone();
        // In two pieces, to cover state carried across calls.
        let (first, second) = samples.split_at_mut(160);
        tilt.apply(first);
        tilt.apply(second);
        assert_ne!(samples, original);
        tilt.undo(&mut samples[..80]);
        tilt.undo(&mut samples[80..]);
        for (got, want) in samples.iter().zip(&original) {
            assert!((got - want).abs() < 0.05, "{got} vs {want}");
        }
    }

    #[test]
    fn tilt_keeps_dc_and_cuts_nyquist_by_a_third() {
        let mut tilt = SpectralTilt::default();
        let mut dc = [1000.0f32; 200];
        tilt.apply(&mut dc);
        assert!((dc[199] - 1000.0).abs() < 1e-3);
        let mut tilt = SpectralTilt::default();
        let mut nyquist: Vec<f32> = (0..200)
            .map(|n| if n % 2 == 0 { 900.0 } else { -900.0 })
            .collect();
        tilt.apply(&mut nyquist);
        assert!(
            (nyquist[199].abs() - 300.0).abs() < 1e-2,
            "{}",
            nyquist[199]
        );
    }

    #[test]
    fn tilt_never_exceeds_the_input_peak() {
        let mut tilt = SpectralTilt::default();
        let mut square: Vec<f32> = (0..64)
            .map(|n| if n % 3 == 0 { 32767.0 } else { -32768.0 })
            .collect();
        tilt.apply(&mut square);
        assert!(square.iter().all(|s| s.abs() <= 32768.0));
    }
}
