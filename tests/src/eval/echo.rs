//! The acoustic/line echo path the RTP peer puts on the caller's side of the call: what the
//! peer RECEIVES from the gateway, delayed by a bulk delay, smeared by a decaying FIR (the
//! hybrid/room dispersion) and attenuated by the echo return loss (ERL), comes back in what it
//! SENDS, on top of the caller's own signal — as on a speakerphone or a 2-wire hybrid.
//!
//! The path is a pure function of its parameters (seeded), so the corpus manifest's four
//! numbers reproduce it exactly. ERL is defined on speech-shaped noise (white noise through a
//! one-pole low-pass at 500 Hz, i.e. flat to 500 Hz then −6 dB/octave like the long-term
//! speech spectrum): the FIR is scaled so that noise loses exactly ERL dB. On white noise the
//! loss differs by the path's tilt; on real speech it stays within a dB or two (the ripple of a
//! random path); the peer reports the ratio it actually applied (`measured_erl_db`).

use serde::{Deserialize, Serialize};

use super::rng::Rng;

/// Samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: f64 = 8.0;
/// Corner of the speech-shaped reference spectrum the ERL is defined on.
pub const REFERENCE_CORNER_HZ: f64 = 500.0;
/// Accepted ranges (the corpus draws delay 0–120 ms, ERL 6–20 dB, dispersion 8–16 ms).
pub const MAX_DELAY_MS: f64 = 500.0;
pub const MAX_ERL_DB: f64 = 60.0;
pub const DISPERSION_RANGE_MS: (f64, f64) = (1.0, 64.0);

/// What defines one echo path (and what the manifest and `rtp_peer --echo-*` carry).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EchoParams {
    /// Pure (bulk) delay before the first tap.
    pub delay_ms: f64,
    /// Echo return loss: far-end power over echo power, on speech-shaped noise.
    pub erl_db: f64,
    /// Length of the decaying FIR (its dispersion).
    pub dispersion_ms: f64,
    /// Seed of the FIR's random taps.
    pub seed: u64,
}

/// A concrete echo path: bulk delay + FIR taps.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoPath {
    params: EchoParams,
    delay: usize,
    taps: Vec<f64>,
}

impl EchoPath {
    /// Builds the path; out-of-range or non-finite parameters are an error naming the value.
    pub fn new(params: EchoParams) -> Result<EchoPath, String> {
        let EchoParams {
            delay_ms,
            erl_db,
            dispersion_ms,
            seed,
        } = params;
        if !(0.0..=MAX_DELAY_MS).contains(&delay_ms) {
            return Err(format!(
                "echo delay {delay_ms} ms outside 0..={MAX_DELAY_MS}"
            ));
        }
        if !(0.0..=MAX_ERL_DB).contains(&erl_db) {
            return Err(format!("echo ERL {erl_db} dB outside 0..={MAX_ERL_DB}"));
        }
        let (lo, hi) = DISPERSION_RANGE_MS;
        if !(lo..=hi).contains(&dispersion_ms) {
            return Err(format!(
                "echo dispersion {dispersion_ms} ms outside {lo}..={hi}"
            ));
        }
        let len = ((dispersion_ms * SAMPLES_PER_MS).round() as usize).max(1);
        let mut rng = Rng::derive(seed, "echo-path");
        // Exponential decay to ≈ −40 dB at the end of the dispersion window.
        let tau = len as f64 / 4.6;
        let mut taps: Vec<f64> = (0..len)
            .map(|j| rng.normal() * (-(j as f64) / tau).exp())
            .collect();
        // A hybrid's response starts with a strong reflection and its undershoot; give the
        // first taps that shape so the path is not pure noise.
        let main = 1 + rng.below(3);
        let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
        if let Some(t) = taps.get_mut(main) {
            *t += 4.0 * sign;
        }
        if let Some(t) = taps.get_mut(main + 2) {
            *t -= 1.0 * sign;
        }
        let gain = reference_gain(&taps);
        let scale = (10f64.powf(-erl_db / 10.0) / gain.max(f64::MIN_POSITIVE)).sqrt();
        for t in &mut taps {
            *t *= scale;
        }
        Ok(EchoPath {
            params,
            delay: (delay_ms * SAMPLES_PER_MS).round() as usize,
            taps,
        })
    }

    pub fn params(&self) -> EchoParams {
        self.params
    }

    /// Bulk delay in samples.
    pub fn delay_samples(&self) -> usize {
        self.delay
    }

    pub fn taps(&self) -> &[f64] {
        &self.taps
    }

    /// The path's ERL from its taps, on the speech-shaped reference.
    pub fn erl_db(&self) -> f64 {
        -10.0 * reference_gain(&self.taps).log10()
    }

    /// Echo at timeline positions `start..start + out.len()` of the far-end signal `far`
    /// (position p gets Σ_j h[j]·far[p − delay − j]; samples outside `far` count as silence).
    pub fn render(&self, far: &[i16], start: usize, out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = match (start + i).checked_sub(self.delay) {
                None => 0.0,
                Some(base) => self
                    .taps
                    .iter()
                    .take(base + 1)
                    .enumerate()
                    .filter_map(|(j, h)| far.get(base - j).map(|&x| h * f64::from(x)))
                    .sum(),
            };
        }
    }
}

/// Power gain of the FIR `h` for the reference process, whose normalised autocorrelation is
/// a^|k| (one-pole low-pass at `REFERENCE_CORNER_HZ`): Σᵢ Σⱼ hᵢ hⱼ a^|i−j|.
fn reference_gain(h: &[f64]) -> f64 {
    let a = (-std::f64::consts::TAU * REFERENCE_CORNER_HZ / SAMPLES_PER_MS / 1000.0).exp();
    let mut gain = 0.0;
    for (i, hi) in h.iter().enumerate() {
        gain += hi * hi;
        // Off-diagonal terms appear twice, as (i, j) and (j, i).
        let mut r = a;
        for hj in h.iter().skip(i + 1) {
            gain += 2.0 * hi * hj * r;
            r *= a;
        }
    }
    gain
}

/// Speech-shaped noise (the reference process): white noise through the one-pole low-pass.
pub fn speech_shaped_noise(rng: &mut Rng, len: usize, rms: f64) -> Vec<i16> {
    let a = (-std::f64::consts::TAU * REFERENCE_CORNER_HZ / SAMPLES_PER_MS / 1000.0).exp();
    // Unit-variance white through y = (1−a)x + a·y has variance (1−a)/(1+a).
    let norm = rms / ((1.0 - a) / (1.0 + a)).sqrt();
    let mut y = 0.0;
    (0..len)
        .map(|_| {
            y = (1.0 - a) * rng.normal() + a * y;
            (y * norm).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(delay_ms: f64, erl_db: f64, dispersion_ms: f64, seed: u64) -> EchoParams {
        EchoParams {
            delay_ms,
            erl_db,
            dispersion_ms,
            seed,
        }
    }

    fn energy<T: Copy + Into<f64>>(x: &[T]) -> f64 {
        x.iter().map(|&v| v.into() * v.into()).sum()
    }

    fn measured_erl(path: &EchoPath, far: &[i16]) -> f64 {
        let mut echo = vec![0.0; far.len()];
        path.render(far, 0, &mut echo);
        // Compare over the part where the echo is fully developed.
        let skip = path.delay_samples() + path.taps().len();
        10.0 * (energy(&far[..far.len() - skip]) / energy(&echo[skip..])).log10()
    }

    #[test]
    fn erl_on_speech_shaped_noise_is_exact_within_half_a_db() {
        let far = speech_shaped_noise(&mut Rng::new(5), 8000 * 6, 3000.0);
        let rms = (energy(&far) / far.len() as f64).sqrt();
        assert!((rms - 3000.0).abs() < 150.0, "reference level {rms}");
        for (i, erl) in [6.0, 9.5, 13.0, 20.0].into_iter().enumerate() {
            let path = EchoPath::new(params(40.0, erl, 8.0 + 2.0 * i as f64, i as u64)).unwrap();
            assert!((path.erl_db() - erl).abs() < 1e-9);
            let measured = measured_erl(&path, &far);
            assert!(
                (measured - erl).abs() < 0.5,
                "ERL {erl} dB measured {measured:.2} dB"
            );
        }
    }

    /// On the real demo prompt (speech, not noise) the loss stays close to the nominal ERL
    /// for every random path: the reference spectrum is speech-like.
    #[test]
    fn erl_on_the_demo_prompt_is_close_to_nominal() {
        let prompt =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prompts/prompt.wav");
        let far = crate::audio::read_wav(&prompt).unwrap();
        let mut deviations: Vec<f64> = (0..20u64)
            .map(|seed| {
                let dispersion = 8.0 + (seed % 9) as f64;
                let path = EchoPath::new(params(0.0, 12.0, dispersion, seed)).unwrap();
                measured_erl(&path, &far) - 12.0
            })
            .collect();
        deviations.sort_by(f64::total_cmp);
        let (lo, mid, hi) = (deviations[0], deviations[10], deviations[19]);
        assert!(
            lo > -2.5 && hi < 2.5 && mid.abs() < 1.0,
            "{lo:.2} {mid:.2} {hi:.2}"
        );
    }

    #[test]
    fn impulse_comes_back_after_the_bulk_delay_and_within_the_dispersion() {
        let path = EchoPath::new(params(37.0, 10.0, 12.0, 9)).unwrap();
        assert_eq!(path.delay_samples(), 296);
        assert_eq!(path.taps().len(), 96);
        let mut far = vec![0i16; 4000];
        far[1000] = 10000;
        let mut echo = vec![0.0; 4000];
        path.render(&far, 0, &mut echo);
        let nonzero: Vec<usize> = (0..echo.len()).filter(|&i| echo[i] != 0.0).collect();
        assert_eq!(
            nonzero.first(),
            Some(&1296),
            "first echo sample = impulse + delay"
        );
        assert!(*nonzero.last().unwrap() < 1296 + 96);
        // Most energy in the first few ms (the hybrid's main reflection).
        let early: f64 = echo[1296..1296 + 24].iter().map(|x| x * x).sum();
        let all: f64 = echo.iter().map(|x| x * x).sum();
        assert!(early / all > 0.6, "early energy share {}", early / all);
        // Rendering a window equals the same slice of a full render.
        let mut part = vec![0.0; 160];
        path.render(&far, 1280, &mut part);
        assert_eq!(&part[..], &echo[1280..1440]);
    }

    #[test]
    fn zero_delay_and_window_before_the_delay() {
        let path = EchoPath::new(params(0.0, 6.0, 8.0, 1)).unwrap();
        let far = vec![1000i16; 10];
        let mut out = vec![0.0; 3];
        path.render(&far, 0, &mut out);
        assert!(out[0] != 0.0, "no delay: the echo starts with the signal");
        let delayed = EchoPath::new(params(120.0, 6.0, 8.0, 1)).unwrap();
        let mut out = vec![1.0; 160];
        delayed.render(&far, 0, &mut out);
        assert!(out.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn seed_decides_the_taps() {
        let a = EchoPath::new(params(10.0, 12.0, 10.0, 1)).unwrap();
        let b = EchoPath::new(params(10.0, 12.0, 10.0, 1)).unwrap();
        let c = EchoPath::new(params(10.0, 12.0, 10.0, 2)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.taps(), c.taps());
        assert_eq!(a.params().seed, 1);
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_value() {
        assert!(EchoPath::new(params(-1.0, 10.0, 10.0, 0))
            .unwrap_err()
            .contains("delay -1"));
        assert!(EchoPath::new(params(600.0, 10.0, 10.0, 0)).is_err());
        assert!(EchoPath::new(params(10.0, f64::NAN, 10.0, 0))
            .unwrap_err()
            .contains("ERL NaN"));
        assert!(EchoPath::new(params(10.0, -3.0, 10.0, 0)).is_err());
        assert!(EchoPath::new(params(10.0, 10.0, 0.0, 0))
            .unwrap_err()
            .contains("dispersion"));
        assert!(EchoPath::new(params(10.0, 10.0, 100.0, 0)).is_err());
    }
}
