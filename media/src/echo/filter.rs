//! Partitioned-block frequency-domain adaptive filter (MDF family) with two paths.
//!
//! Why frequency domain: a 576-tap time-domain NLMS costs ~1 700 multiply-adds per sample
//! for the two paths (≈ 270 k per 20 ms frame) and converges slowly on speech because speech
//! is strongly coloured. Splitting the filter into `K` partitions of 32 taps and working on
//! 64-point spectra costs a few hundred operations per sample and, because every frequency
//! bin is normalised by its own far-end power, converges about as fast on speech as on white
//! noise. The block size (4 ms) divides the 20 ms frame, so there is no added latency.
//!
//! Two paths (as in OSLEC and Speex): the *background* filter adapts on every block, the
//! *foreground* filter produces the output and only changes by copying the background when
//! the background has a statistically significant lower error. If double talk drags the
//! background away, the foreground keeps cancelling and the background is reset from it.
//!
//! Step size: per bin, `μ(f) = residual-echo power / error power`, the optimal NLMS step in
//! the presence of near-end signal (Valin, "On adjusting the learning rate in frequency domain
//! echo cancellation with double-talk", IEEE TASLP 2007). The residual echo is estimated as
//! `leak · |Ŷ(f)|²`, `leak` being a running regression of the error spectrum's fluctuations
//! on the echo estimate's fluctuations: near-end speech does not follow the echo estimate, so
//! it lowers the step on its own, while an echo-path change raises it.

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
/// Smoothing of the error / echo-estimate spectra used by the leak regression (≈ 1 s).
const SPECTRUM_SMOOTHING: f32 = BLOCK as f32 / 8000.0;
/// Leak regression update-rate bounds (per block), as fractions of echo/error energy.
const LEAK_RATE_GAIN: f64 = 2.0 * BLOCK as f64 / 8000.0 * LEAK_SPEEDUP;
const LEAK_RATE_MAX: f64 = 0.5 * BLOCK as f64 / 8000.0 * LEAK_SPEEDUP;
const LEAK_SPEEDUP: f64 = 1.0;
/// The residual echo is never assumed below this fraction of the echo estimate (−35 dB):
/// µ-law on both directions keeps the achievable ERLE around there anyway.
const MIN_LEAK: f64 = 0.0003;
/// Two-path decision constants (variance smoothing and significance thresholds).
const VAR_SHORT_SMOOTH: f64 = 0.36;
const VAR_LONG_SMOOTH: f64 = 0.7225;
const VAR_SHORT_UPDATE: f64 = 0.5;
const VAR_LONG_UPDATE: f64 = 0.25;
const VAR_BACKTRACK: f64 = 4.0;
/// Prior step weight of each partition before the expected echo onset, relative to the
/// next one: those taps should stay empty, and noise adapted into them costs ERLE.
const PRE_ONSET_WEIGHT: f32 = 0.2;
/// Blocks per two-path decision (20 ms).
const DECISION_BLOCKS: u32 = 5;
/// Consecutive blocks of "output louder than input" after which the filter is reset.
const DIVERGENCE_BLOCKS: u32 = 50;

/// Per-block information the canceller needs for its statistics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BlockReport {
    /// Σ near² (after DC removal).
    pub near_energy: f32,
    /// Σ out² (foreground error, the output).
    pub out_energy: f32,
    /// Σ ŷ² of the foreground echo estimate.
    pub echo_estimate_energy: f32,
    /// The filter state was reset (numerical trouble or divergence).
    pub reset: bool,
    /// The background was copied into the foreground.
    pub foreground_updated: bool,
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
    /// Adaptation weight per partition (proportionate update, sums to < 1).
    proportion: Vec<f32>,
    /// Mean far-end power per bin over all partitions.
    far_power: [f32; BINS],
    /// The far spectra were replaced wholesale: recompute `far_power` from scratch.
    far_power_stale: bool,
    /// Prior step weight per partition (see `restart_step_control`).
    prior: Vec<f32>,
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
    // Leak regression state.
    error_psd_avg: [f32; BINS],
    echo_psd_avg: [f32; BINS],
    corr_error_echo: f64,
    var_echo: f64,
    leak: f64,
    adapted: bool,
    adaptation_sum: f64,
    // Two-path decision state.
    diff_avg_short: f64,
    diff_avg_long: f64,
    diff_var_short: f64,
    diff_var_long: f64,
    /// Σ fg error², Σ bg error², Σ (fg − bg)² since the last two-path decision.
    decision_sums: [f64; 3],
    decision_blocks: u32,
    /// Partition whose circular-convolution part is removed next (one per block).
    constrain_next: usize,
    divergent_blocks: u32,
    #[cfg(test)]
    pub(crate) dbg: [f64; 4],
    /// Partition where the echo is expected to start (the delay line's pre-margin).
    expected_onset: usize,
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
            far_power: [0.0; BINS],
            far_power_stale: false,
            prior: vec![0.0; partitions],
            step: [0.0; BINS],
            acc_re: [0.0; BINS],
            acc_im: [0.0; BINS],
            error_re: [0.0; BINS],
            error_im: [0.0; BINS],
            time: [0.0; WINDOW],
            foreground_echo: [0.0; BLOCK],
            background_echo: [0.0; BLOCK],
            background_error: [0.0; BLOCK],
            error_psd_avg: [0.0; BINS],
            echo_psd_avg: [0.0; BINS],
            corr_error_echo: 1.0,
            var_echo: 1.0,
            leak: 0.0,
            adapted: false,
            adaptation_sum: 0.0,
            diff_avg_short: 0.0,
            diff_avg_long: 0.0,
            diff_var_short: 0.0,
            diff_var_long: 0.0,
            decision_sums: [0.0; 3],
            decision_blocks: 0,
            constrain_next: 0,
            divergent_blocks: 0,
            #[cfg(test)]
            dbg: [0.0; 4],
            expected_onset: 0,
        };
        filter.reset_adaptation();
        filter
    }

    #[cfg(test)]
    pub(crate) fn debug_state(&self) -> String {
        let step_mean: f32 = self
            .step
            .iter()
            .zip(&self.far_power)
            .map(|(s, p)| s * (p + POWER_FLOOR))
            .sum::<f32>()
            / BINS as f32;
        let energies: Vec<String> = (0..self.partitions)
            .map(|k| {
                let e: f32 = (k * BINS..(k + 1) * BINS)
                    .map(|i| self.foreground_re[i].powi(2) + self.foreground_im[i].powi(2))
                    .sum();
                format!("{:.0}", 10.0 * (e + 1e-9).log10())
            })
            .collect();
        format!(
            "fg {:.1} bg {:.1} mu {:.2} adapted {} leak {:.4} mu {:.3} prop0..4 {:?} fgE {:?}",
            10.0 * (self.dbg[0] / self.dbg[1]).log10(),
            10.0 * (self.dbg[0] / self.dbg[2]).log10(),
            self.dbg[3] / 20.0,
            self.adapted,
            self.leak,
            step_mean,
            &self.proportion[..5],
            energies
        )
    }

    pub(crate) fn expected_onset(&self) -> usize {
        self.expected_onset
    }

    pub(crate) fn partitions(&self) -> usize {
        self.partitions
    }

    /// Forgets the echo path (both filters) but keeps the far-end history.
    pub(crate) fn reset_adaptation(&mut self) {
        self.background_re.fill(0.0);
        self.background_im.fill(0.0);
        self.foreground_re.fill(0.0);
        self.foreground_im.fill(0.0);
        self.restart_step_control(0);
    }

    /// Restarts the step-size control in its fast initial mode, keeping the taps. Used when
    /// the window moved onto an echo the statistics have not seen yet.
    /// Re-aims the step-size prior at a new expected onset, keeping everything else.
    pub(crate) fn set_expected_onset(&mut self, expected_onset: usize) {
        self.expected_onset = expected_onset;
        let partitions = self.partitions;
        for (k, p) in self.prior.iter_mut().enumerate() {
            *p = prior_weight(k, expected_onset, partitions);
        }
        normalise(&mut self.prior, 0.99);
    }

    pub(crate) fn restart_step_control(&mut self, expected_onset: usize) {
        self.expected_onset = expected_onset;
        if knob("ZPRE", 1.0) != 0.0 {
            // Taps before the onset were learnt before the delay was known (speech is
            // correlated, so they partly "predict" the echo) and would only decay slowly.
            let end = expected_onset.min(self.partitions) * BINS;
            for coeffs in [
                &mut self.background_re,
                &mut self.background_im,
                &mut self.foreground_re,
                &mut self.foreground_im,
            ] {
                coeffs[..end].fill(0.0);
            }
        }
        // Prior: the echo starts at `expected_onset` and its energy decays along the tail,
        // so the onset partition gets the largest step (ratio ≈ 10 to the last) and the
        // margin before it, which should stay empty, small ones until the filter knows better.
        let onset = self.expected_onset;
        let partitions = self.partitions;
        for (k, p) in self.prior.iter_mut().enumerate() {
            *p = prior_weight(k, onset, partitions);
        }
        normalise(&mut self.prior, 0.99);
        self.proportion.copy_from_slice(&self.prior);
        normalise(&mut self.proportion, 0.8);
        self.error_psd_avg = [0.0; BINS];
        self.echo_psd_avg = [0.0; BINS];
        self.corr_error_echo = 1.0;
        self.var_echo = 1.0;
        self.leak = 0.0;
        self.adapted = false;
        self.adaptation_sum = 0.0;
        self.diff_avg_short = 0.0;
        self.diff_avg_long = 0.0;
        self.diff_var_short = 0.0;
        self.diff_var_long = 0.0;
        self.divergent_blocks = 0;
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
    /// signal, `out` receives the foreground error. `step_scale` scales the background's step (0 freezes it).
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
        #[cfg(test)]
        {
            self.dbg[0] += near_energy;
            self.dbg[1] += foreground_error_energy;
            self.dbg[2] += background_error_energy;
            self.dbg[3] += self
                .step
                .iter()
                .zip(&self.far_power)
                .map(|(s, p)| (s * (p + POWER_FLOOR)) as f64)
                .sum::<f64>()
                / BINS as f64;
        }
        if !foreground_error_energy.is_finite() || !background_error_energy.is_finite() {
            self.hard_reset(near, out);
            report.reset = true;
            report.out_energy = report.near_energy;
            return report;
        }

        // Two-path logic, decided every DECISION_BLOCKS blocks (20 ms, as in Speex: with
        // fewer samples the energy differences are too noisy and double talk would leak
        // into the foreground): is the background significantly better (copy it to the
        // output path) or significantly worse (it diverged: restart it from the foreground)?
        self.decision_sums[0] += foreground_error_energy;
        self.decision_sums[1] += background_error_energy;
        self.decision_sums[2] += path_difference;
        self.decision_blocks += 1;
        let (mut better, mut worse) = (false, false);
        if self.decision_blocks >= DECISION_BLOCKS {
            let [sff, see, dbf] = self.decision_sums;
            self.decision_sums = [0.0; 3];
            self.decision_blocks = 0;
            let diff = sff - see;
            let variance = sff * dbf;
            self.diff_avg_short = 0.6 * self.diff_avg_short + 0.4 * diff;
            self.diff_avg_long = 0.85 * self.diff_avg_long + 0.15 * diff;
            self.diff_var_short = VAR_SHORT_SMOOTH * self.diff_var_short + 0.16 * variance;
            self.diff_var_long = VAR_LONG_SMOOTH * self.diff_var_long + 0.0225 * variance;
            better = diff * diff.abs() > variance
                || self.diff_avg_short * self.diff_avg_short.abs() > VAR_SHORT_UPDATE * self.diff_var_short
                || self.diff_avg_long * self.diff_avg_long.abs() > VAR_LONG_UPDATE * self.diff_var_long;
            worse = -diff * diff.abs() > VAR_BACKTRACK * variance
                || -self.diff_avg_short * self.diff_avg_short.abs() > VAR_BACKTRACK * self.diff_var_short
                || -self.diff_avg_long * self.diff_avg_long.abs() > VAR_BACKTRACK * self.diff_var_long;
        }
        let mut output_energy = foreground_error_energy;
        if better {
            self.foreground_re.copy_from_slice(&self.background_re);
            self.foreground_im.copy_from_slice(&self.background_im);
            // Cross-fade to the new filter over the block so the switch makes no click.
            output_energy = 0.0;
            for i in 0..BLOCK {
                let fade = (i as f32 + 0.5) / BLOCK as f32;
                out[i] = (1.0 - fade) * out[i] + fade * self.background_error[i];
                output_energy += f64::from(out[i]) * f64::from(out[i]);
            }
            self.clear_path_statistics();
            report.foreground_updated = true;
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

        let saturated = near.iter().any(|v| v.abs() >= 32000.0);
        self.update_step(background_error_energy);
        if step_scale > 0.0 && !saturated {
            if step_scale < 1.0 {
                for s in self.step.iter_mut() {
                    *s *= step_scale;
                }
            }
            self.adapt_background();
        }
        report
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

    /// Computes the per-bin step `self.step` from the background error and echo estimate.
    fn update_step(&mut self, error_energy: f64) {
        // Far energy per block averaged over the whole filter span (Parseval on the mean
        // spectra; each spectrum covers two blocks). The newest block alone would say
        // "silence" at the end of every word while its echo is still ringing in the window.
        let spectrum_sum: f32 =
            2.0 * self.far_power.iter().sum::<f32>() - self.far_power[0] - self.far_power[BLOCK];
        let far_energy = f64::from(spectrum_sum) / WINDOW as f64 / 2.0;
        let echo_energy: f64 = self
            .background_echo
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        let cross: f64 = self
            .background_echo
            .iter()
            .zip(&self.background_error)
            .map(|(&y, &e)| f64::from(y) * f64::from(e))
            .sum();
        let error_energy = error_energy.max(BLOCK as f64 * 100.0 / 64.0);

        // Error spectrum E (the gradient needs it too) and echo-estimate spectrum Ŷ.
        self.time[..BLOCK].fill(0.0);
        self.time[BLOCK..].copy_from_slice(&self.background_error);
        self.fft
            .forward(&self.time, &mut self.error_re, &mut self.error_im);
        self.time[BLOCK..].copy_from_slice(&self.background_echo);
        self.fft
            .forward(&self.time, &mut self.acc_re, &mut self.acc_im);

        // Leak regression: how much of the echo estimate's spectral fluctuation shows up in
        // the error's? That fraction is the residual echo.
        let mut corr = 0.0f64;
        let mut var = 0.0f64;
        for bin in 0..BINS {
            let error_psd =
                self.error_re[bin] * self.error_re[bin] + self.error_im[bin] * self.error_im[bin];
            let echo_psd =
                self.acc_re[bin] * self.acc_re[bin] + self.acc_im[bin] * self.acc_im[bin];
            let de = f64::from(error_psd - self.error_psd_avg[bin]);
            let dy = f64::from(echo_psd - self.echo_psd_avg[bin]);
            corr += de * dy;
            var += dy * dy;
            self.error_psd_avg[bin] += SPECTRUM_SMOOTHING * (error_psd - self.error_psd_avg[bin]);
            self.echo_psd_avg[bin] += SPECTRUM_SMOOTHING * (echo_psd - self.echo_psd_avg[bin]);
            // Keep |Ŷ|² and |E|² for the per-bin step below.
            self.acc_re[bin] = echo_psd;
            self.acc_im[bin] = error_psd;
        }
        let var = var.sqrt().max(1e-9);
        let corr = corr / var;
        let rate = (LEAK_RATE_GAIN * echo_energy).min(LEAK_RATE_MAX * error_energy) / error_energy;
        self.corr_error_echo = (1.0 - rate) * self.corr_error_echo + rate * corr;
        self.var_echo = ((1.0 - rate) * self.var_echo + rate * var).max(1.0);
        self.corr_error_echo = self
            .corr_error_echo
            .clamp(MIN_LEAK * self.var_echo, self.var_echo);
        self.leak = self.corr_error_echo / self.var_echo;

        // Residual-to-error ratio over the whole block, bounded below by the part of the
        // error that is visibly correlated with the echo estimate.
        let mut residual_ratio = (1e-4 * far_energy + 3.0 * self.leak * echo_energy) / error_energy;
        let correlated = cross * cross / (1.0 + error_energy * echo_energy);
        let rcap: f64 = knob("RCAP", 0.5);
        residual_ratio = residual_ratio.max(correlated).min(rcap);

        if !self.adapted
            && knob("NOADAPT", 1.0) == 0.0
            && self.adaptation_sum > self.partitions as f64
            && self.leak > 0.03
        {
            self.adapted = true;
        }
        if self.adapted {
            let leak = self.leak as f32;
            let ratio = residual_ratio as f32;
            for bin in 0..BINS {
                let error_psd = self.acc_im[bin] + 1.0;
                let residual = (leak * self.acc_re[bin]).min(rcap as f32 * error_psd);
                let residual = 0.7 * residual + 0.3 * ratio * error_psd;
                self.step[bin] = residual / (error_psd * (self.far_power[bin] + POWER_FLOOR));
            }
        } else {
            // Until the leak regression has something to regress on, adapt at a fixed
            // fraction of the far-to-error energy ratio (large while there is only echo).
            let rate = if far_energy > BLOCK as f64 * 1000.0 / 64.0 {
                (0.25 * far_energy).min(0.25 * error_energy) / error_energy * knob("INITMU", 0.5)
                    / 0.5
            } else {
                0.0
            };
            self.adaptation_sum += rate;
            for bin in 0..BINS {
                self.step[bin] = 2.0 * rate as f32 / (self.far_power[bin] + POWER_FLOOR * knob("PFL", 1.0) as f32);
            }
        }
    }

    /// Background update `W_k += μ(f)·p_k·conj(X_k)·E`, then removes the circular part of one
    /// partition (rotating, as in AUMDF) so the blocks stay linear convolutions.
    fn adapt_background(&mut self) {
        let mode = knob("PROPMODE", 2.0) as u32;
        if self.adapted && mode != 1 {
            self.update_proportion();
        }
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
        let all = knob("ALLC", 0.0) != 0.0;
        for k in 0..self.partitions {
            let cons = knob("CONS", 2.0) as usize;
            let lo = self.expected_onset.saturating_sub(1);
            let always = cons > 0 && k >= lo && k < lo + cons;
            if !all && !always && k != self.constrain_next {
                continue;
            }
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
        self.constrain_next = (self.constrain_next + 1) % self.partitions;
    }

    /// Proportionate weights: partitions holding more of the echo path adapt faster.
    fn update_proportion(&mut self) {
        let mut max = 1.0f32;
        for (k, p) in self.proportion.iter_mut().enumerate() {
            let range = k * BINS..(k + 1) * BINS;
            let energy: f32 = self.background_re[range.clone()]
                .iter()
                .zip(&self.background_im[range])
                .map(|(r, i)| r * r + i * i)
                .sum();
            *p = energy.sqrt() + 1.0;
            max = max.max(*p);
        }
        for p in self.proportion.iter_mut() {
            *p += 0.1 * max;
        }
        normalise(&mut self.proportion, 0.99);
        let mode = knob("PROPMODE", 2.0) as u32;
        if mode == 2 {
            for (p, prior) in self.proportion.iter_mut().zip(&self.prior) {
                *p = (*p * prior).sqrt();
            }
            normalise(&mut self.proportion, 0.99);
        }
    }

    /// Numerical trouble: forget everything and pass the near signal through this block.
    fn hard_reset(&mut self, near: &[f32; BLOCK], out: &mut [f32; BLOCK]) {
        self.far_re.fill(0.0);
        self.far_im.fill(0.0);
        self.far_window = [0.0; WINDOW];
        self.far_power = [0.0; BINS];
        self.far_power_stale = true;
        self.reset_adaptation();
        out.copy_from_slice(near);
    }
}

/// Prior step weight of partition `k` when the echo is expected to start in `onset`.
fn prior_weight(k: usize, onset: usize, partitions: usize) -> f32 {
    let pd = knob("PD", 4.0) as f32;
    let pf = knob("PF", 0.0) as f32;
    let decay = (-2.4 / pd).exp();
    if k >= onset {
        decay.powi((k - onset) as i32).max(pf)
    } else {
        (knob("PRE", f64::from(PRE_ONSET_WEIGHT)) as f32).powi((onset - k) as i32)
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

/// Tuning knobs read once from the environment (development only).
pub(crate) fn knob(name: &str, default: f64) -> f64 {
    static KNOBS: std::sync::OnceLock<Vec<(String, f64)>> = std::sync::OnceLock::new();
    let knobs = KNOBS.get_or_init(|| {
        [
            "RCAP", "NOADAPT", "SUSP", "SLIM", "PFL", "LOSTF", "LIKE", "PRE", "ZPRE", "INITMU", "PROPMODE", "ALLC", "PD", "PF", "KEEPTAPS",
            "BIAS", "CONS",
        ]
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .map(|v| (k.to_string(), v))
        })
        .collect()
    });
    knobs
        .iter()
        .find(|(k, _)| k == name)
        .map_or(default, |(_, v)| *v)
}
