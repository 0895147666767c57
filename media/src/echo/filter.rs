//! Partitioned-block frequency-domain adaptive filter (MDF family) with two paths.
//!
//! Why frequency domain: a 608-tap time-domain NLMS costs ~1 800 multiply-adds per sample
//! for the two paths (≈ 290 k per 20 ms frame) and converges slowly on speech because speech
//! is strongly coloured. Splitting the filter into `K` partitions of 32 taps and working on
//! 64-point spectra costs a few hundred operations per sample and, because every frequency
//! bin is normalised by its own far-end power, converges much faster on speech. The block
//! size (4 ms) divides the 20 ms frame, so there is no added latency.
//!
//! Two paths (as in OSLEC and Speex): the *background* filter adapts, the *foreground*
//! filter produces the output and only changes by copying the background when the latter's
//! error has been significantly lower over a 20 ms decision window (Speex's statistical
//! test). If double talk drags the background away, the foreground keeps cancelling and the
//! background is restarted from it. Deciding per 4 ms block instead lets near-end speech leak
//! into the foreground: the energy differences are too noisy over 32 samples.
//!
//! Step size: NLMS with `μ = 0.5` (lower when the error is louder than the far end), each bin
//! normalised by its far-end power averaged over the filter span, and distributed over the
//! partitions by a prior that peaks where the delay estimate puts the echo onset and decays
//! along the tail. A leak-based variable step (Valin 2007, as in Speex) was tried: it learns
//! spectral regions the filter has not seen yet much more slowly, which cost 3–6 dB of ERLE
//! in the first seconds of speech; double talk is handled by the caller's detectors instead
//! (`step_scale`).

use super::fft::RealFft;

/// Samples per block (4 ms at 8 kHz); a 20 ms frame is exactly five blocks.
pub(crate) const BLOCK: usize = 32;
/// Transform size: overlap-save with 50 % overlap.
const WINDOW: usize = 2 * BLOCK;
/// Spectrum bins of a `WINDOW`-point real transform.
pub(crate) const BINS: usize = BLOCK + 1;

/// Regularisation of the per-bin far-end power (unnormalised FFT scale): about the power of
/// a −55 dBFS far-end signal, so bins where the far end is nearly silent adapt slowly instead
/// of chasing µ-law quantisation noise.
const POWER_FLOOR: f32 = (WINDOW as f32) * 60.0 * 60.0;
/// Largest NLMS step (reached while the far end is at least as loud as the error).
const MAX_STEP: f64 = 0.5;
/// Far-end block energy below which nothing is learnt (≈ −78 dBFS).
const MIN_FAR_ENERGY: f64 = BLOCK as f64 * 1000.0 / 64.0;
/// Floor of the error energy in the step computation.
const MIN_ERROR_ENERGY: f64 = BLOCK as f64 * 100.0 / 64.0;
/// Two-path decision constants (Speex): variance smoothing and significance thresholds.
const VAR_SHORT_SMOOTH: f64 = 0.36;
const VAR_LONG_SMOOTH: f64 = 0.7225;
const VAR_SHORT_UPDATE: f64 = 0.5;
const VAR_LONG_UPDATE: f64 = 0.25;
const VAR_BACKTRACK: f64 = 4.0;
/// Blocks per two-path decision (20 ms).
const DECISION_BLOCKS: u32 = 5;
/// Share of the foreground error the two-path test always counts, however much of it the
/// noise estimate claims (a wrong noise estimate must not make every copy look significant).
const MIN_NET_ERROR_SHARE: f64 = 0.05;
/// Prior: the step weight falls 10× over this many partitions after the onset (16 ms, the
/// longest dispersion of the G.168 echo-path models)…
const PRIOR_DECAY_PARTITIONS: f32 = 4.0;
/// …and by this factor per partition before it: those taps should stay empty, and noise
/// adapted into them costs ERLE.
const PRE_ONSET_WEIGHT: f32 = 0.2;
/// Total step weight of the prior (the rest of the unit NLMS budget is headroom).
const PRIOR_TOTAL: f32 = 0.8;
/// Partitions around the expected onset whose circular-convolution part is removed every
/// block (the others in rotation, one per block): the bulk of the echo lives there, and the
/// constraint is what lets them generalise to frequencies speech has not excited yet.
const CONSTRAINED_NEAR_ONSET: usize = 2;
/// Smallest per-bin step scale line noise can impose (the filter must still track path
/// changes).
const MIN_NOISE_STEP: f32 = 0.05;
/// Smoothing of the noise spectrum learnt in far-end gaps (per 4 ms block: ≈ 100 ms)…
const NOISE_SHAPE_SMOOTHING: f32 = 0.04;
/// …and of the error spectrum the step compares it with (≈ 12 ms).
const ERROR_SMOOTHING: f32 = 0.7;
/// Consecutive blocks of "output much louder than input" after which the filter is reset.
const DIVERGENCE_BLOCKS: u32 = 50;

/// Per-block information the canceller needs for its statistics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BlockReport {
    /// Σ near².
    pub near_energy: f32,
    /// Σ out² (foreground error, the output).
    pub out_energy: f32,
    /// Σ ŷ² of the foreground echo estimate.
    pub echo_estimate_energy: f32,
    /// The filter state was reset (numerical trouble or divergence).
    pub reset: bool,
}

pub(crate) struct BlockFilter {
    partitions: usize,
    fft: RealFft,
    /// Far-end spectra, one per partition, in a ring: partition `k` is slot `(newest + k) % K`.
    far_re: Vec<f32>,
    far_im: Vec<f32>,
    newest: usize,
    /// The last two far blocks (the overlap-save window of the newest partition).
    far_window: [f32; WINDOW],
    background_re: Vec<f32>,
    background_im: Vec<f32>,
    foreground_re: Vec<f32>,
    foreground_im: Vec<f32>,
    /// Step weight per partition (the prior), sums to `PRIOR_TOTAL`.
    proportion: Vec<f32>,
    /// Partition where the echo is expected to start.
    expected_onset: usize,
    /// Mean far-end power per bin over all partitions.
    far_power: [f32; BINS],
    /// The far spectra were replaced wholesale: recompute `far_power` from scratch.
    far_power_stale: bool,
    step: [f32; BINS],
    // Scratch, reused every block.
    acc_re: [f32; BINS],
    acc_im: [f32; BINS],
    error_re: [f32; BINS],
    error_im: [f32; BINS],
    time: [f32; WINDOW],
    foreground_echo: [f32; BLOCK],
    background_echo: [f32; BLOCK],
    background_error: [f32; BLOCK],
    // Two-path decision state.
    diff_avg_short: f64,
    diff_avg_long: f64,
    diff_var_short: f64,
    diff_var_long: f64,
    /// Σ fg error², Σ bg error², Σ (fg − bg)² since the last two-path decision.
    decision_sums: [f64; 3],
    decision_blocks: u32,
    /// Line-noise power per sample (0 on a quiet line), see [`Self::set_noise`].
    noise_power: f64,
    /// The near end is only line noise now (a gap of the far end): learn its spectrum.
    learn_noise: bool,
    /// Mean spectrum of the near end in far-end gaps (|FFT([0, near])|² per bin) and the
    /// mean power per sample over the same blocks: the noise's shape, scaled to the level
    /// `noise_power` says when used (a caller talking in a gap must not raise it).
    noise_shape: [f32; BINS],
    noise_shape_power: f32,
    /// Smoothed background error spectrum (same scale), for the per-bin noise step.
    error_average: [f32; BINS],
    /// Partition whose circular-convolution part is removed next in the rotation.
    constrain_next: usize,
    divergent_blocks: u32,
}

impl BlockFilter {
    /// A filter of `partitions` × 32 taps.
    pub(crate) fn new(partitions: usize) -> Self {
        let partitions = partitions.max(1);
        let size = partitions * BINS;
        let mut filter = Self {
            partitions,
            fft: RealFft::new(WINDOW),
            far_re: vec![0.0; size],
            far_im: vec![0.0; size],
            newest: 0,
            far_window: [0.0; WINDOW],
            background_re: vec![0.0; size],
            background_im: vec![0.0; size],
            foreground_re: vec![0.0; size],
            foreground_im: vec![0.0; size],
            proportion: vec![0.0; partitions],
            expected_onset: 0,
            far_power: [0.0; BINS],
            far_power_stale: false,
            step: [0.0; BINS],
            acc_re: [0.0; BINS],
            acc_im: [0.0; BINS],
            error_re: [0.0; BINS],
            error_im: [0.0; BINS],
            time: [0.0; WINDOW],
            foreground_echo: [0.0; BLOCK],
            background_echo: [0.0; BLOCK],
            background_error: [0.0; BLOCK],
            diff_avg_short: 0.0,
            diff_avg_long: 0.0,
            diff_var_short: 0.0,
            diff_var_long: 0.0,
            decision_sums: [0.0; 3],
            noise_power: 0.0,
            learn_noise: false,
            noise_shape: [0.0; BINS],
            noise_shape_power: 0.0,
            error_average: [0.0; BINS],
            decision_blocks: 0,
            constrain_next: 0,
            divergent_blocks: 0,
        };
        filter.reset_adaptation();
        filter
    }

    pub(crate) fn partitions(&self) -> usize {
        self.partitions
    }

    pub(crate) fn expected_onset(&self) -> usize {
        self.expected_onset
    }

    /// Forgets the echo path (both filters) but keeps the far-end history.
    pub(crate) fn reset_adaptation(&mut self) {
        self.background_re.fill(0.0);
        self.background_im.fill(0.0);
        self.foreground_re.fill(0.0);
        self.foreground_im.fill(0.0);
        self.clear_path_statistics();
        self.divergent_blocks = 0;
        self.set_expected_onset(0);
    }

    /// First delay lock: aims the prior at `expected_onset` and clears the taps before it,
    /// which were learnt before the delay was known (speech is correlated, so they partly
    /// "predict" the echo) and would only decay slowly under the small prior weights there.
    pub(crate) fn restart_at_onset(&mut self, expected_onset: usize) {
        let end = expected_onset.min(self.partitions) * BINS;
        for coeffs in [
            &mut self.background_re,
            &mut self.background_im,
            &mut self.foreground_re,
            &mut self.foreground_im,
        ] {
            coeffs[..end].fill(0.0);
        }
        self.clear_path_statistics();
        self.set_expected_onset(expected_onset);
    }

    /// Re-aims the step prior at a new expected onset partition.
    pub(crate) fn set_expected_onset(&mut self, expected_onset: usize) {
        self.expected_onset = expected_onset.min(self.partitions - 1);
        let onset = self.expected_onset;
        let decay = (-std::f32::consts::LN_10 / PRIOR_DECAY_PARTITIONS).exp();
        for (k, p) in self.proportion.iter_mut().enumerate() {
            *p = if k >= onset {
                decay.powi((k - onset) as i32)
            } else {
                PRE_ONSET_WEIGHT.powi((onset - k) as i32)
            };
        }
        normalise(&mut self.proportion, PRIOR_TOTAL);
    }

    /// Moves the filter window `shift` partitions later in time (negative: earlier), keeping
    /// the taps that stay inside the window. The caller must then reload the far history.
    pub(crate) fn shift_partitions(&mut self, shift: isize) {
        let k = self.partitions;
        for coeffs in [
            &mut self.background_re,
            &mut self.background_im,
            &mut self.foreground_re,
            &mut self.foreground_im,
        ] {
            shift_blocks(coeffs, k, shift);
        }
    }

    /// Sets the far-end window of partition `k` (its two blocks, oldest sample first). Used
    /// after the delay line moved; partition 0's window also becomes the overlap buffer.
    pub(crate) fn load_far_window(&mut self, k: usize, window: &[f32]) {
        if k >= self.partitions {
            return;
        }
        self.far_power_stale = true;
        let slot = (self.newest + k) % self.partitions;
        let range = slot * BINS..(slot + 1) * BINS;
        self.fft.forward(
            window,
            &mut self.far_re[range.clone()],
            &mut self.far_im[range],
        );
        if k == 0 {
            for (dst, src) in self
                .far_window
                .iter_mut()
                .zip(window.iter().chain(std::iter::repeat(&0.0)))
            {
                *dst = *src;
            }
        }
    }

    /// Time-domain taps of the foreground filter (`partitions × BLOCK` values) into `taps`.
    pub(crate) fn foreground_taps(&mut self, taps: &mut [f32]) {
        for k in 0..self.partitions {
            let range = k * BINS..(k + 1) * BINS;
            self.fft.inverse(
                &self.foreground_re[range.clone()],
                &self.foreground_im[range],
                &mut self.time,
            );
            for (i, &v) in self.time.iter().take(BLOCK).enumerate() {
                if let Some(slot) = taps.get_mut(k * BLOCK + i) {
                    *slot = v;
                }
            }
        }
    }

    /// Processes one block: `far` is the delay-aligned reference, `near` the microphone
    /// signal, `out` receives the foreground error. `step_scale` scales the background's
    /// step (0 freezes it).
    pub(crate) fn process_block(
        &mut self,
        far: &[f32; BLOCK],
        near: &[f32; BLOCK],
        out: &mut [f32; BLOCK],
        step_scale: f32,
    ) -> BlockReport {
        self.push_far(far);

        // Foreground: the output path.
        filter_output(
            &self.foreground_re,
            &self.foreground_im,
            &self.far_re,
            &self.far_im,
            self.newest,
            self.partitions,
            &mut self.acc_re,
            &mut self.acc_im,
        );
        self.fft.inverse(&self.acc_re, &self.acc_im, &mut self.time);
        self.foreground_echo.copy_from_slice(&self.time[BLOCK..]);
        // Background: the adapting path.
        filter_output(
            &self.background_re,
            &self.background_im,
            &self.far_re,
            &self.far_im,
            self.newest,
            self.partitions,
            &mut self.acc_re,
            &mut self.acc_im,
        );
        self.fft.inverse(&self.acc_re, &self.acc_im, &mut self.time);
        self.background_echo.copy_from_slice(&self.time[BLOCK..]);

        let mut near_energy = 0.0f64;
        let mut foreground_error_energy = 0.0f64;
        let mut background_error_energy = 0.0f64;
        let mut path_difference = 10.0f64;
        for i in 0..BLOCK {
            let fg_err = near[i] - self.foreground_echo[i];
            let bg_err = near[i] - self.background_echo[i];
            self.background_error[i] = bg_err;
            out[i] = fg_err;
            near_energy += f64::from(near[i]) * f64::from(near[i]);
            foreground_error_energy += f64::from(fg_err) * f64::from(fg_err);
            background_error_energy += f64::from(bg_err) * f64::from(bg_err);
            let d = f64::from(fg_err - bg_err);
            path_difference += d * d;
        }

        let mut report = BlockReport {
            near_energy: near_energy as f32,
            ..BlockReport::default()
        };
        if !foreground_error_energy.is_finite() || !background_error_energy.is_finite() {
            self.hard_reset(near, out);
            report.reset = true;
            report.out_energy = report.near_energy;
            return report;
        }

        let (better, worse) = self.two_path_decision(
            foreground_error_energy,
            background_error_energy,
            path_difference,
        );
        let mut output_energy = foreground_error_energy;
        if better {
            self.foreground_re.copy_from_slice(&self.background_re);
            self.foreground_im.copy_from_slice(&self.background_im);
            // Cross-fade to the new filter over the block so the switch makes no click.
            output_energy = 0.0;
            for (i, (o, &e)) in out.iter_mut().zip(&self.background_error).enumerate() {
                let fade = (i as f32 + 0.5) / BLOCK as f32;
                *o = (1.0 - fade) * *o + fade * e;
                output_energy += f64::from(*o) * f64::from(*o);
            }
            self.clear_path_statistics();
        } else if worse {
            self.background_re.copy_from_slice(&self.foreground_re);
            self.background_im.copy_from_slice(&self.foreground_im);
            self.background_echo.copy_from_slice(&self.foreground_echo);
            self.background_error.copy_from_slice(out);
            background_error_energy = foreground_error_energy;
            self.clear_path_statistics();
        }
        report.out_energy = output_energy as f32;
        let echo_estimate = if better {
            &self.background_echo
        } else {
            &self.foreground_echo
        };
        report.echo_estimate_energy = echo_estimate.iter().map(|v| v * v).sum();

        // A filter that makes the signal much louder than it was is broken; after 200 ms of
        // that, start over rather than keep feeding garbage to the VAD.
        if foreground_error_energy > 4.0 * near_energy + BLOCK as f64 * 1e4 {
            self.divergent_blocks += 1;
            if self.divergent_blocks >= DIVERGENCE_BLOCKS {
                self.hard_reset(near, out);
                report.reset = true;
                report.out_energy = report.near_energy;
                return report;
            }
        } else {
            self.divergent_blocks = 0;
        }

        if self.learn_noise {
            self.learn_noise_spectrum(near);
        }
        // A clipped microphone signal is not a linear function of the reference: learning
        // from it would only hurt.
        let saturated = near.iter().any(|v| v.abs() >= 32000.0);
        if step_scale > 0.0 && !saturated && self.update_step(background_error_energy, step_scale) {
            self.adapt_background();
        }
        report
    }

    /// Tells the filter how much stationary line noise the near end carries (power per
    /// sample, mean not minimum) and whether the near end is nothing but that noise now
    /// (`noise_only`: the far end is in a gap). Noise is in every error energy and hides the
    /// difference between the paths; its spectrum sets the step per bin.
    pub(crate) fn set_noise(&mut self, power: f32, noise_only: bool) {
        self.noise_power = if power.is_finite() {
            f64::from(power.max(0.0))
        } else {
            0.0
        };
        self.learn_noise = noise_only;
    }

    /// One block of line noise alone: its spectrum into the running mean (≈ 100 ms).
    fn learn_noise_spectrum(&mut self, near: &[f32; BLOCK]) {
        self.time[..BLOCK].fill(0.0);
        self.time[BLOCK..].copy_from_slice(near);
        self.fft
            .forward(&self.time, &mut self.acc_re, &mut self.acc_im);
        let first = self.noise_shape_power <= 0.0;
        let keep = if first {
            0.0
        } else {
            1.0 - NOISE_SHAPE_SMOOTHING
        };
        for ((n, re), im) in self
            .noise_shape
            .iter_mut()
            .zip(&self.acc_re)
            .zip(&self.acc_im)
        {
            *n = keep * *n + (1.0 - keep) * (re * re + im * im);
        }
        let power = near.iter().map(|v| v * v).sum::<f32>() / BLOCK as f32;
        self.noise_shape_power = keep * self.noise_shape_power + (1.0 - keep) * power;
    }

    /// Accumulates a 20 ms decision window and returns (background significantly better,
    /// background significantly worse) at its end (Speex's two-path test).
    fn two_path_decision(&mut self, sff: f64, see: f64, dbf: f64) -> (bool, bool) {
        self.decision_sums[0] += sff;
        self.decision_sums[1] += see;
        self.decision_sums[2] += dbf;
        self.decision_blocks += 1;
        if self.decision_blocks < DECISION_BLOCKS {
            return (false, false);
        }
        let [sff, see, dbf] = self.decision_sums;
        self.decision_sums = [0.0; 3];
        // The test weighs the energy difference against the foreground error. Line noise is
        // in that error but not in the difference, so on a noisy line an unconverged
        // foreground could never be replaced: count only what is above the noise.
        let noise = self.noise_power * (BLOCK as f64) * f64::from(DECISION_BLOCKS);
        let sff_net = (sff - noise).max(MIN_NET_ERROR_SHARE * sff);
        self.decision_blocks = 0;
        let diff = sff - see;
        let variance = sff_net * dbf;
        self.diff_avg_short = 0.6 * self.diff_avg_short + 0.4 * diff;
        self.diff_avg_long = 0.85 * self.diff_avg_long + 0.15 * diff;
        self.diff_var_short = VAR_SHORT_SMOOTH * self.diff_var_short + 0.16 * variance;
        self.diff_var_long = VAR_LONG_SMOOTH * self.diff_var_long + 0.0225 * variance;
        let signed_square = |x: f64| x * x.abs();
        let better = signed_square(diff) > variance
            || signed_square(self.diff_avg_short) > VAR_SHORT_UPDATE * self.diff_var_short
            || signed_square(self.diff_avg_long) > VAR_LONG_UPDATE * self.diff_var_long;
        let worse = signed_square(-diff) > VAR_BACKTRACK * variance
            || signed_square(-self.diff_avg_short) > VAR_BACKTRACK * self.diff_var_short
            || signed_square(-self.diff_avg_long) > VAR_BACKTRACK * self.diff_var_long;
        (better, worse)
    }

    /// Shifts the far-end ring by one block and transforms the newest window.
    fn push_far(&mut self, far: &[f32; BLOCK]) {
        self.far_window.copy_within(BLOCK.., 0);
        self.far_window[BLOCK..].copy_from_slice(far);
        self.newest = (self.newest + self.partitions - 1) % self.partitions;
        let range = self.newest * BINS..(self.newest + 1) * BINS;
        let scale = 1.0 / self.partitions as f32;
        // The slot being overwritten held the oldest partition: take it out of the mean...
        for ((p, re), im) in self
            .far_power
            .iter_mut()
            .zip(&self.far_re[range.clone()])
            .zip(&self.far_im[range.clone()])
        {
            *p -= scale * (re * re + im * im);
        }
        self.fft.forward(
            &self.far_window,
            &mut self.far_re[range.clone()],
            &mut self.far_im[range.clone()],
        );
        // ...and put the newest in. Once per ring turn the sum is recomputed so rounding
        // errors cannot accumulate.
        if self.newest == 0 || self.far_power_stale {
            self.far_power_stale = false;
            self.far_power = [0.0; BINS];
            for (re, im) in self
                .far_re
                .chunks_exact(BINS)
                .zip(self.far_im.chunks_exact(BINS))
            {
                for ((p, r), i) in self.far_power.iter_mut().zip(re).zip(im) {
                    *p += scale * (r * r + i * i);
                }
            }
        } else {
            for ((p, re), im) in self
                .far_power
                .iter_mut()
                .zip(&self.far_re[range.clone()])
                .zip(&self.far_im[range])
            {
                *p = (*p + scale * (re * re + im * im)).max(0.0);
            }
        }
    }

    fn clear_path_statistics(&mut self) {
        self.diff_avg_short = 0.0;
        self.diff_avg_long = 0.0;
        self.diff_var_short = 0.0;
        self.diff_var_long = 0.0;
    }

    /// Computes the per-bin step and the error spectrum. Returns false if there is nothing
    /// to learn from (the far end is silent over the whole filter span).
    fn update_step(&mut self, error_energy: f64, step_scale: f32) -> bool {
        // Far energy per block averaged over the whole filter span (Parseval on the mean
        // spectra; each spectrum covers two blocks). The newest block alone would say
        // "silence" at the end of every word while its echo is still ringing in the window.
        let spectrum_sum: f32 =
            2.0 * self.far_power.iter().sum::<f32>() - self.far_power[0] - self.far_power[BLOCK];
        let far_energy = f64::from(spectrum_sum) / WINDOW as f64 / 2.0;
        if far_energy <= MIN_FAR_ENERGY {
            return false;
        }
        // NLMS step: full while the far end is at least as loud as the error, smaller when
        // the error is louder (then it is mostly not echo).
        let error_energy = error_energy.max(MIN_ERROR_ENERGY);
        let mu =
            2.0 * (0.25 * far_energy).min(0.25 * error_energy) / error_energy * (MAX_STEP / 0.5);
        let mu = mu as f32 * step_scale;
        // Error spectrum E = FFT([0, e]) for the gradient.
        self.time[..BLOCK].fill(0.0);
        self.time[BLOCK..].copy_from_slice(&self.background_error);
        self.fft
            .forward(&self.time, &mut self.error_re, &mut self.error_im);
        // Line noise, bin by bin (a variable step size NLMS per bin): the step is scaled by
        // the share of the error that is still residual echo, not noise. A full step in
        // noise makes the filter chase it and caps the cancellation near the echo-to-noise
        // ratio; as the residual sinks into the noise the step shrinks and the filter
        // settles. Per bin because line noise is coloured: a car's or a fan's lives below
        // 500 Hz, and one factor for the whole band froze the filter where speech echo
        // stands well clear of it.
        let noise_scale = if self.noise_shape_power > 0.0 {
            self.noise_power as f32 / self.noise_shape_power
        } else {
            0.0
        };
        for bin in 0..BINS {
            let (re, im) = (self.error_re[bin], self.error_im[bin]);
            let error = &mut self.error_average[bin];
            *error = ERROR_SMOOTHING * *error + (1.0 - ERROR_SMOOTHING) * (re * re + im * im);
            let noise = noise_scale * self.noise_shape[bin];
            let residual_share = if *error > 0.0 {
                ((*error - noise) / *error).clamp(MIN_NOISE_STEP, 1.0)
            } else {
                1.0
            };
            self.step[bin] = mu * residual_share / (self.far_power[bin] + POWER_FLOOR);
        }
        true
    }

    /// Background update `W_k += μ(f)·p_k·conj(X_k)·E`, then removes the circular part of the
    /// partitions around the onset and of one more in rotation (as in AUMDF) so the blocks
    /// stay linear convolutions.
    fn adapt_background(&mut self) {
        for k in 0..self.partitions {
            let slot = (self.newest + k) % self.partitions;
            let weight = self.proportion[k];
            let x_re = &self.far_re[slot * BINS..(slot + 1) * BINS];
            let x_im = &self.far_im[slot * BINS..(slot + 1) * BINS];
            let w_re = &mut self.background_re[k * BINS..(k + 1) * BINS];
            let w_im = &mut self.background_im[k * BINS..(k + 1) * BINS];
            for bin in 0..BINS {
                let mu = weight * self.step[bin];
                let (xr, xi) = (x_re[bin], x_im[bin]);
                let (er, ei) = (self.error_re[bin], self.error_im[bin]);
                w_re[bin] += mu * (xr * er + xi * ei);
                w_im[bin] += mu * (xr * ei - xi * er);
            }
        }
        let near_onset = self.expected_onset.saturating_sub(1);
        let rotating = self.constrain_next;
        self.constrain_next = (self.constrain_next + 1) % self.partitions;
        for k in 0..self.partitions {
            let always = k >= near_onset && k < near_onset + CONSTRAINED_NEAR_ONSET;
            if always || k == rotating {
                self.constrain(k);
            }
        }
    }

    /// Zeroes the second half of partition `k`'s impulse response.
    fn constrain(&mut self, k: usize) {
        let range = k * BINS..(k + 1) * BINS;
        self.fft.inverse(
            &self.background_re[range.clone()],
            &self.background_im[range.clone()],
            &mut self.time,
        );
        self.time[BLOCK..].fill(0.0);
        self.fft.forward(
            &self.time,
            &mut self.background_re[range.clone()],
            &mut self.background_im[range],
        );
    }

    /// Numerical trouble: forget everything and pass the near signal through this block.
    fn hard_reset(&mut self, near: &[f32; BLOCK], out: &mut [f32; BLOCK]) {
        self.far_re.fill(0.0);
        self.far_im.fill(0.0);
        self.far_window = [0.0; WINDOW];
        self.far_power = [0.0; BINS];
        self.far_power_stale = true;
        let onset = self.expected_onset;
        self.reset_adaptation();
        self.set_expected_onset(onset);
        out.copy_from_slice(near);
    }
}

/// `acc = Σ_k W_k ⊙ X_k` over all partitions.
#[allow(clippy::too_many_arguments)]
fn filter_output(
    w_re: &[f32],
    w_im: &[f32],
    x_re: &[f32],
    x_im: &[f32],
    newest: usize,
    partitions: usize,
    acc_re: &mut [f32; BINS],
    acc_im: &mut [f32; BINS],
) {
    *acc_re = [0.0; BINS];
    *acc_im = [0.0; BINS];
    for k in 0..partitions {
        let slot = (newest + k) % partitions;
        let wr = &w_re[k * BINS..(k + 1) * BINS];
        let wi = &w_im[k * BINS..(k + 1) * BINS];
        let xr = &x_re[slot * BINS..(slot + 1) * BINS];
        let xi = &x_im[slot * BINS..(slot + 1) * BINS];
        for bin in 0..BINS {
            acc_re[bin] += wr[bin] * xr[bin] - wi[bin] * xi[bin];
            acc_im[bin] += wr[bin] * xi[bin] + wi[bin] * xr[bin];
        }
    }
}

/// Moves block `k + shift` of `coeffs` (blocks of `BINS`) to block `k`; vacated blocks become 0.
fn shift_blocks(coeffs: &mut [f32], partitions: usize, shift: isize) {
    let source = |dst: usize| -> Option<usize> {
        let src = dst as isize + shift;
        (0..partitions as isize)
            .contains(&src)
            .then_some(src as usize)
    };
    // Walk in the direction that never reads a block already overwritten.
    let mut move_block = |dst: usize| match source(dst) {
        Some(src) => coeffs.copy_within(src * BINS..(src + 1) * BINS, dst * BINS),
        None => coeffs[dst * BINS..(dst + 1) * BINS].fill(0.0),
    };
    if shift > 0 {
        (0..partitions).for_each(&mut move_block);
    } else {
        (0..partitions).rev().for_each(&mut move_block);
    }
}

/// Scales `values` so that they sum to `total`.
fn normalise(values: &mut [f32], total: f32) {
    let sum: f32 = values.iter().sum();
    if sum > 0.0 {
        for v in values.iter_mut() {
            *v *= total / sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_blocks_moves_partitions_and_zero_fills() {
        let mut coeffs: Vec<f32> = (0..4 * BINS).map(|i| (i / BINS) as f32 + 1.0).collect();
        shift_blocks(&mut coeffs, 4, 1);
        let firsts: Vec<f32> = (0..4).map(|k| coeffs[k * BINS]).collect();
        assert_eq!(firsts, vec![2.0, 3.0, 4.0, 0.0]);
        shift_blocks(&mut coeffs, 4, -2);
        let firsts: Vec<f32> = (0..4).map(|k| coeffs[k * BINS]).collect();
        assert_eq!(firsts, vec![0.0, 0.0, 2.0, 3.0]);
    }

    #[test]
    fn prior_peaks_at_the_onset_and_sums_to_its_budget() {
        let mut filter = BlockFilter::new(10);
        filter.set_expected_onset(3);
        let p = &filter.proportion;
        let max = p.iter().cloned().fold(0.0, f32::max);
        assert_eq!(p[3], max);
        assert!(p[2] < 0.25 * p[3] && p[4] < p[3] && p[9] < 0.2 * p[3]);
        assert!((p.iter().sum::<f32>() - PRIOR_TOTAL).abs() < 1e-4);
        filter.set_expected_onset(99);
        assert_eq!(filter.expected_onset(), 9, "clamped into the filter");
    }

    /// White noise through a short known path: the learnt taps must match it.
    #[test]
    fn learns_a_known_impulse_response() {
        let mut filter = BlockFilter::new(4);
        filter.set_expected_onset(0);
        let path = [0.5f32, -0.3, 0.0, 0.2, 0.1];
        let mut state = 12345u32;
        let mut history = vec![0.0f32; path.len()];
        let (mut far, mut near, mut out) = ([0.0; BLOCK], [0.0; BLOCK], [0.0; BLOCK]);
        let mut last_error = 0.0;
        for block in 0..1500 {
            for i in 0..BLOCK {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let x = ((state >> 16) as f32 / 32768.0 - 1.0) * 8000.0;
                history.rotate_right(1);
                history[0] = x;
                far[i] = x;
                near[i] = path.iter().zip(&history).map(|(h, x)| h * x).sum();
            }
            let report = filter.process_block(&far, &near, &mut out, 1.0);
            if block >= 1400 {
                last_error += f64::from(report.out_energy) / f64::from(report.near_energy);
            }
        }
        let erle = -10.0 * (last_error / 100.0).log10();
        assert!(erle > 40.0, "ERLE {erle:.1} dB");
        let mut taps = vec![0.0; 4 * BLOCK];
        filter.foreground_taps(&mut taps);
        for (j, &h) in path.iter().enumerate() {
            assert!((taps[j] - h).abs() < 0.01, "tap {j}: {} vs {h}", taps[j]);
        }
        assert!(taps[path.len()..].iter().all(|t| t.abs() < 0.01));
    }

    #[test]
    fn frozen_background_leaves_the_filter_untouched() {
        let mut filter = BlockFilter::new(2);
        let far = [1000.0; BLOCK];
        let near = [500.0; BLOCK];
        let mut out = [0.0; BLOCK];
        for _ in 0..20 {
            filter.process_block(&far, &near, &mut out, 0.0);
        }
        assert!(filter
            .background_re
            .iter()
            .chain(&filter.foreground_re)
            .all(|&w| w == 0.0));
        assert_eq!(out, near, "nothing learnt, nothing removed");
    }
}
