//! Line-echo canceller for the caller's leg (8 kHz, sans-IO).
//!
//! The gateway knows every sample it sent (`far`), and the caller's audio (`near`) comes back
//! with an echo of it: delayed 0–150 ms, smeared over 8–16 ms by the echo path, attenuated
//! 6–20 dB and µ-law coded both ways. The canceller:
//! 1. estimates the bulk delay by correlating sent and received envelopes ([`delay`]) and
//!    delays the reference accordingly (a ring buffer, no copies of whole frames);
//! 2. cancels the echo with a two-path partitioned-block frequency-domain adaptive filter
//!    ([`filter`]) covering `tail_ms` after the bulk delay plus a small margin before it;
//! 3. holds adaptation while the near end clearly talks (level comparison with hangover, as
//!    in OSLEC); quieter double talk is handled by the filter's own step-size control and
//!    its two-path scheme;
//! 4. reports levels so the barge-in policy can judge inbound energy against the echo it
//!    expects ([`EchoGate`]).
//!
//! The output is the *linear* canceller output: no non-linear processor, because residual
//! suppression also attenuates the caller during double talk, and the VAD downstream must
//! hear the caller. One call = one `EchoCanceller`; it allocates only in `new`.

mod delay;
mod fft;
mod filter;
pub mod gate;

#[cfg(test)]
mod test_signals;
#[cfg(test)]
mod tests;

pub use gate::{EchoGate, EchoGateVerdict};

use delay::DelayEstimator;
use filter::{BlockFilter, BLOCK};

/// Sample rate the canceller works at.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Samples per 20 ms frame, the normal `process` size. Any multiple of 32 samples (4 ms)
/// up to [`MAX_FRAME_SAMPLES`] is accepted.
pub const FRAME_SAMPLES: usize = 160;
/// Largest frame `process` accepts (120 ms).
pub const MAX_FRAME_SAMPLES: usize = 960;

const SAMPLES_PER_MS: usize = 8;
/// The filter window starts this long before the estimated echo onset, so an estimate that
/// is a few ms late still leaves the whole echo inside the window.
const PRE_MARGIN: usize = 2 * BLOCK;
/// The envelope correlation peaks at the echo's energy centre, about this long after
/// its onset (samples).
const ONSET_BIAS: usize = 2 * SAMPLES_PER_MS;
/// Echo-path dispersion assumed when predicting the echo level from the far-end level.
const DISPERSION: usize = 16 * SAMPLES_PER_MS;
/// Full-scale power (i16).
const FULL_SCALE_POWER: f32 = 32768.0 * 32768.0;
/// Below this mean power (−60 dBFS) the near end is treated as silent.
const NEAR_FLOOR_POWER: f32 = FULL_SCALE_POWER * 1e-6;
/// Level comparison for the near-end detector: an echo path loses at least 6 dB (G.168), so
/// near-end power above the far-end power minus 3 dB cannot be echo alone.
const NEAR_END_RATIO: f32 = 0.5;
/// Echo return loss assumed until it is measured (the G.168 worst case, 6 dB).
const DEFAULT_ERL_GAIN: f32 = 0.25;
/// ERLE (dB) above which the filter counts as converged, and below which it no longer does.
const CONVERGED_ERLE_DB: f32 = 12.0;
const UNCONVERGED_ERLE_DB: f32 = 6.0;
/// Fast ERLE (dB) below which a converged filter is taken to have lost the echo path.
const LOST_ERLE_DB: f32 = 3.0;
/// Smoothing of the ERLE statistics per frame (≈ 0.5 s and ≈ 0.1 s).
const ERLE_SLOW: f32 = 0.96;
const ERLE_FAST: f32 = 0.7;
/// The filter taps are re-examined this often (frames) to refine the bulk delay.
const TAP_SCAN_FRAMES: u32 = 12;
/// DC blocker pole on the reference (≈ 6 Hz high-pass): a DC offset in what we send
/// would inflate the far-end power estimates but cannot come back as echo.
const DC_POLE: f32 = 0.995;

/// Configuration of one canceller. Out-of-range values are clamped by [`EchoCanceller::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct EchoConfig {
    /// Largest bulk delay searched (ms), 0–500. Default 150.
    pub max_bulk_delay_ms: u32,
    /// Echo tail covered after the bulk delay (ms), 64–256. Default 64 (512 taps).
    pub tail_ms: u32,
    /// Far-end level (dBFS) above which the far end counts as talking. Default −50.
    pub far_active_dbfs: f32,
    /// How long double talk is held after the near end was last detected (ms). Default 75.
    pub double_talk_hangover_ms: u32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self {
            max_bulk_delay_ms: 150,
            tail_ms: 64,
            far_active_dbfs: -50.0,
            double_talk_hangover_ms: 75,
        }
    }
}

/// What happened in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoFrameInfo {
    /// The far end sent audible audio recently enough for its echo to be in this frame.
    pub far_active: bool,
    /// Level (dBFS) of the echo expected in `near` for this frame: delay-aligned far-end
    /// level minus the echo return loss (measured, or 6 dB until measured). −100 if silent.
    pub expected_echo_level_db: f32,
    /// Level (dBFS) of the inbound frame before cancellation.
    pub near_level_db: f32,
    /// Both ends are talking (near-end activity the echo model does not explain).
    pub double_talk: bool,
    /// Smoothed echo return loss enhancement (dB) of the canceller, over far-only frames.
    pub erle_db: f32,
}

/// Running state of a canceller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoStats {
    /// Estimated bulk delay (ms): from the converged filter's taps, else from the envelope
    /// correlation; `None` until anything is known.
    pub bulk_delay_ms: Option<f32>,
    /// Estimated echo return loss (dB), once the filter has converged.
    pub erl_db: Option<f32>,
    /// Smoothed ERLE (dB).
    pub erle_db: f32,
    /// Double talk in the last frame.
    pub double_talk: bool,
    /// The filter cancels at least 12 dB (hysteresis down to 6 dB).
    pub converged: bool,
    /// Frames processed.
    pub frames: u64,
    /// Frames passed through unprocessed (bad length).
    pub invalid_frames: u64,
    /// Frames whose `far` length differed from `near` (missing far samples count as silence).
    pub far_length_mismatches: u64,
    /// Filter restarts after numerical trouble or divergence.
    pub resets: u64,
    /// Times the delay line moved.
    pub delay_changes: u64,
}

/// First-order DC blocker.
#[derive(Debug, Clone, Copy, Default)]
struct DcBlocker {
    last_in: f32,
    last_out: f32,
}

impl DcBlocker {
    fn filter(&mut self, x: f32) -> f32 {
        let y = x - self.last_in + DC_POLE * self.last_out;
        self.last_in = x;
        self.last_out = y;
        y
    }
}

/// The echo canceller of one call leg. See the module documentation.
pub struct EchoCanceller {
    cfg: EchoConfig,
    max_start: usize,
    hangover_blocks: u32,
    hangover_frames: u32,
    far_active_power: f32,
    far_dc: DcBlocker,
    /// Far-end samples as sent (after DC removal), a ring indexed by absolute sample number.
    far_history: Vec<f32>,
    far_written: u64,
    /// Mean power of each far block as sent, a ring indexed by absolute block number.
    far_block_power: Vec<f32>,
    blocks_written: u64,
    filter: BlockFilter,
    delay: DelayEstimator,
    /// Delay-line length: the filter's first tap sees the far end this many samples late.
    window_start: usize,
    /// Bulk delay read from the converged filter's taps (samples).
    filter_delay: Option<usize>,
    taps: Vec<f32>,
    far_block: [f32; BLOCK],
    near_block: [f32; BLOCK],
    aligned_block: [f32; BLOCK],
    out_block: [f32; BLOCK],
    near_end_hold: u32,
    /// A bulk delay has been found at least once.
    locked: bool,
    suspicion_hold: u32,
    poor_frames: u32,
    /// Convergence was lost after it had been reached: search the delay with short memory.
    path_lost: bool,
    #[cfg(test)]
    pub(crate) dbg_counts: [u32; 4],
    last_out_power: f32,
    double_talk_hold: u32,
    double_talk: bool,
    erle_near_slow: f32,
    erle_out_slow: f32,
    erle_near_fast: f32,
    erle_out_fast: f32,
    converged: bool,
    erl_echo: f32,
    erl_far: f32,
    erl_measured: bool,
    frames_since_tap_scan: u32,
    frames: u64,
    invalid_frames: u64,
    far_length_mismatches: u64,
    resets: u64,
    delay_changes: u64,
}

impl EchoCanceller {
    pub fn new(cfg: EchoConfig) -> Self {
        let cfg = EchoConfig {
            max_bulk_delay_ms: cfg.max_bulk_delay_ms.min(500),
            tail_ms: cfg.tail_ms.clamp(64, 256),
            far_active_dbfs: if cfg.far_active_dbfs.is_finite() {
                cfg.far_active_dbfs.clamp(-90.0, 0.0)
            } else {
                -50.0
            },
            double_talk_hangover_ms: cfg.double_talk_hangover_ms.min(1000),
        };
        let max_delay = cfg.max_bulk_delay_ms as usize * SAMPLES_PER_MS;
        let tail = cfg.tail_ms as usize * SAMPLES_PER_MS;
        // Margin before the onset + tail + one block of rounding slack.
        let partitions = (PRE_MARGIN + tail).div_ceil(BLOCK) + 1;
        let history =
            (max_delay + (partitions + 2) * BLOCK + MAX_FRAME_SAMPLES).next_power_of_two();
        let power_blocks =
            ((max_delay + DISPERSION + MAX_FRAME_SAMPLES) / BLOCK + 4).next_power_of_two();
        let hangover_samples = cfg.double_talk_hangover_ms as usize * SAMPLES_PER_MS;
        Self {
            max_start: max_delay / BLOCK * BLOCK,
            hangover_blocks: hangover_samples.div_ceil(BLOCK) as u32,
            hangover_frames: hangover_samples.div_ceil(FRAME_SAMPLES) as u32,
            far_active_power: FULL_SCALE_POWER * 10f32.powf(cfg.far_active_dbfs / 10.0),
            far_dc: DcBlocker::default(),
            far_history: vec![0.0; history],
            far_written: 0,
            far_block_power: vec![0.0; power_blocks],
            blocks_written: 0,
            filter: BlockFilter::new(partitions),
            delay: DelayEstimator::new(
                cfg.max_bulk_delay_ms as usize + DISPERSION / SAMPLES_PER_MS,
            ),
            window_start: 0,
            filter_delay: None,
            taps: vec![0.0; partitions * BLOCK],
            far_block: [0.0; BLOCK],
            near_block: [0.0; BLOCK],
            aligned_block: [0.0; BLOCK],
            out_block: [0.0; BLOCK],
            near_end_hold: 0,
            locked: false,
            suspicion_hold: 0,
            poor_frames: 0,
            path_lost: false,
            #[cfg(test)]
            dbg_counts: [0; 4],
            last_out_power: 0.0,
            double_talk_hold: 0,
            double_talk: false,
            erle_near_slow: 0.0,
            erle_out_slow: 0.0,
            erle_near_fast: 0.0,
            erle_out_fast: 0.0,
            converged: false,
            erl_echo: 0.0,
            erl_far: 0.0,
            erl_measured: false,
            frames_since_tap_scan: 0,
            frames: 0,
            invalid_frames: 0,
            far_length_mismatches: 0,
            resets: 0,
            delay_changes: 0,
            cfg,
        }
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &EchoConfig {
        &self.cfg
    }

    /// Cancels the echo of `far` (the samples sent in this tick) in `near` (the samples
    /// received in the same tick) and writes the linear canceller output to `out`.
    ///
    /// `near.len()` must be a multiple of 32 samples up to [`MAX_FRAME_SAMPLES`] (normally
    /// [`FRAME_SAMPLES`]) and `out` at least as long; otherwise `near` is copied to `out`
    /// unchanged and the frame is counted in [`EchoStats::invalid_frames`]. Missing `far`
    /// samples are taken as silence, extra ones are ignored.
    pub fn process(&mut self, far: &[i16], near: &[i16], out: &mut [i16]) -> EchoFrameInfo {
        let len = near.len();
        if len == 0 || len % BLOCK != 0 || len > MAX_FRAME_SAMPLES || out.len() < len {
            self.invalid_frames += 1;
            for (o, &n) in out.iter_mut().zip(near) {
                *o = n;
            }
            let near_energy: f32 = near.iter().map(|&v| f32::from(v) * f32::from(v)).sum();
            return EchoFrameInfo {
                far_active: false,
                expected_echo_level_db: level_db(0.0, 1),
                near_level_db: level_db(near_energy, len.max(1)),
                double_talk: false,
                erle_db: self.erle_db(),
            };
        }
        if far.len() != len {
            self.far_length_mismatches += 1;
        }
        self.frames += 1;

        let mut near_energy = 0.0f32;
        let mut out_energy = 0.0f32;
        let mut echo_energy = 0.0f32;
        let mut near_end_in_frame = false;
        let mut suspicious_in_frame = false;
        let first_block = self.blocks_written;
        for (b, (near_chunk, out_chunk)) in near
            .chunks_exact(BLOCK)
            .zip(out.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            let mut far_energy = 0.0f32;
            for i in 0..BLOCK {
                let x = far.get(b * BLOCK + i).map_or(0.0, |&v| f32::from(v));
                let x = self.far_dc.filter(x);
                self.far_block[i] = x;
                far_energy += x * x;
                // No DC blocker on the near side: the caller's audio must reach the VAD as
                // it came, and a DC offset there cannot correlate with the reference anyway.
                self.near_block[i] = f32::from(near_chunk[i]);
            }
            self.push_far_block(far_energy / BLOCK as f32);
            if let Some(lag) = self.delay.push(&self.far_block, &self.near_block, self.path_lost, self.near_end_hold > 0) {
                self.on_delay_estimate(lag);
            }
            self.read_aligned_block();

            let near_power = self.near_block.iter().map(|v| v * v).sum::<f32>() / BLOCK as f32;
            let (far_reference, far_mean) = self.far_power_in_echo_window(self.blocks_written - 1, 1);
            if near_power > NEAR_FLOOR_POWER && near_power > NEAR_END_RATIO * far_reference {
                self.near_end_hold = self.hangover_blocks;
                near_end_in_frame = true;
            } else {
                self.near_end_hold = self.near_end_hold.saturating_sub(1);
            }
            // Once converged, output well above the residual the filter normally leaves is
            // either quiet near-end speech or an echo-path change: adapt only slowly, so the
            // former cannot drag the filter away while the latter is still learnt (the
            // background then beats the foreground and gets copied).
            let expected_residual = far_mean * self.erl_gain() / db_to_power(self.erle_db().max(0.0));
            if self.converged && self.last_out_power > 4.0 * expected_residual + NEAR_FLOOR_POWER {
                self.suspicion_hold = self.hangover_blocks;
            } else {
                self.suspicion_hold = self.suspicion_hold.saturating_sub(1);
            }
            suspicious_in_frame |= self.suspicion_hold > 0;
            let step_scale = if self.near_end_hold > 0 || far_reference <= self.far_active_power {
                0.0
            } else if self.suspicion_hold > 0 {
                filter::knob("SUSP", 1.0) as f32
            } else {
                1.0
            };
            let report = self.filter.process_block(
                &self.aligned_block,
                &self.near_block,
                &mut self.out_block,
                step_scale,
            );
            self.last_out_power = report.out_energy / BLOCK as f32;
            #[cfg(test)]
            {
                self.dbg_counts[if step_scale == 0.0 { 0 } else if step_scale < 1.0 { 1 } else { 2 }] += 1;
                if report.foreground_updated {
                    self.dbg_counts[3] += 1;
                }
            }
            if report.reset {
                self.resets += 1;
                self.converged = false;
                self.filter_delay = None;
            }
            for (o, &v) in out_chunk.iter_mut().zip(&self.out_block) {
                *o = saturate(v);
            }
            near_energy += report.near_energy;
            out_energy += report.out_energy;
            echo_energy += report.echo_estimate_energy;
        }

        let blocks = (len / BLOCK) as u64;
        let (window_max, window_mean) =
            self.far_power_in_echo_window(first_block + blocks - 1, blocks);
        let far_reference = if self.best_lag().is_some() {
            window_mean
        } else {
            window_max
        };
        let far_active = far_reference > self.far_active_power;
        let near_power = near_energy / len as f32;
        let out_power = out_energy / len as f32;
        // Frames where the near end clearly talks say nothing about the echo.
        self.update_erle(far_active && !near_end_in_frame, near_power, out_power);
        if far_active && !near_end_in_frame && self.converged {
            self.erl_echo = 0.9 * self.erl_echo + 0.1 * echo_energy / len as f32;
            self.erl_far = 0.9 * self.erl_far + 0.1 * window_mean;
            self.erl_measured = true;
        }
        let expected_echo_power = far_reference * self.erl_gain();

        // Near-end activity the echo model does not explain: loud near end (level
        // comparison) or, once converged, an output well above the expected residual.
        let residual_expected = expected_echo_power / db_to_power(self.erle_db().max(0.0));
        let unexplained = self.converged && out_power > 4.0 * residual_expected + NEAR_FLOOR_POWER;
        if far_active && (near_end_in_frame || unexplained) {
            self.double_talk_hold = self.hangover_frames.max(1);
        } else {
            self.double_talk_hold = self.double_talk_hold.saturating_sub(1);
        }
        self.double_talk = far_active && self.double_talk_hold > 0;

        self.frames_since_tap_scan += 1;
        if self.frames_since_tap_scan >= TAP_SCAN_FRAMES {
            self.frames_since_tap_scan = 0;
            self.scan_taps();
        }

        EchoFrameInfo {
            far_active,
            expected_echo_level_db: power_db(expected_echo_power),
            near_level_db: power_db(near_power),
            double_talk: self.double_talk,
            erle_db: self.erle_db(),
        }
    }

    /// Current estimates and counters.
    pub fn stats(&self) -> EchoStats {
        let bulk_delay_ms = self
            .best_lag()
            .map(|lag| lag as f32 / SAMPLES_PER_MS as f32);
        EchoStats {
            bulk_delay_ms,
            erl_db: self.erl_measured.then(|| -power_db_ratio(self.erl_gain())),
            erle_db: self.erle_db(),
            double_talk: self.double_talk,
            converged: self.converged,
            frames: self.frames,
            invalid_frames: self.invalid_frames,
            far_length_mismatches: self.far_length_mismatches,
            resets: self.resets,
            delay_changes: self.delay_changes,
        }
    }

    fn push_far_block(&mut self, power: f32) {
        let mask = self.far_history.len() as u64 - 1;
        for &x in &self.far_block {
            if let Some(slot) = self.far_history.get_mut((self.far_written & mask) as usize) {
                *slot = x;
            }
            self.far_written += 1;
        }
        let mask = self.far_block_power.len() as u64 - 1;
        if let Some(slot) = self
            .far_block_power
            .get_mut((self.blocks_written & mask) as usize)
        {
            *slot = power;
        }
        self.blocks_written += 1;
    }

    /// Far-end sample `index` (absolute), or 0 if it is not (or no longer) in the history.
    fn far_sample(&self, index: i64) -> f32 {
        let len = self.far_history.len() as i64;
        let written = self.far_written as i64;
        if index < 0 || index >= written || index < written - len {
            return 0.0;
        }
        self.far_history
            .get((index & (len - 1)) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// The newest block as the filter must see it: `window_start` samples late.
    fn read_aligned_block(&mut self) {
        let first = self.far_written as i64 - BLOCK as i64 - self.window_start as i64;
        for i in 0..BLOCK {
            self.aligned_block[i] = self.far_sample(first + i as i64);
        }
    }

    /// (max, mean) of the far block powers whose echo can fall into the `blocks` blocks
    /// ending with block `last`: lags around the bulk delay (plus dispersion) if known,
    /// else anything up to the largest delay.
    fn far_power_in_echo_window(&self, last: u64, blocks: u64) -> (f32, f32) {
        let (lag_min, lag_max) = match self.best_lag() {
            Some(lag) => (lag.saturating_sub(4 * SAMPLES_PER_MS), lag + DISPERSION),
            None => (0, self.max_start + BLOCK + DISPERSION),
        };
        let newest = last.saturating_sub((lag_min / BLOCK) as u64);
        let oldest = (last + 1)
            .saturating_sub(blocks)
            .saturating_sub(lag_max.div_ceil(BLOCK) as u64);
        let ring = self.far_block_power.len() as u64;
        let oldest = oldest.max(self.blocks_written.saturating_sub(ring));
        let (mut max, mut sum, mut count) = (0.0f32, 0.0f32, 0u32);
        for block in oldest..=newest.min(self.blocks_written.saturating_sub(1)) {
            let power = self
                .far_block_power
                .get((block % ring) as usize)
                .copied()
                .unwrap_or(0.0);
            max = max.max(power);
            sum += power;
            count += 1;
        }
        (max, if count > 0 { sum / count as f32 } else { 0.0 })
    }

    /// Best bulk-delay estimate in samples.
    fn best_lag(&self) -> Option<usize> {
        self.filter_delay.or_else(|| self.delay.estimate_samples())
    }

    fn on_delay_estimate(&mut self, lag: usize) {
        // A filter that is cancelling well knows the delay better than the envelopes (they
        // get noisy in double talk); it lets go again once its ERLE drops.
        if self.converged && self.fast_erle_db() >= CONVERGED_ERLE_DB {
            return;
        }
        self.filter_delay = None;
        self.place_window(lag);
    }

    #[cfg(test)]
    pub(crate) fn debug_state(&mut self) -> String {
        let s = format!("S {} {}", self.window_start, self.filter.debug_state());
        self.filter.dbg = [0.0; 4];
        s
    }

    #[cfg(test)]
    pub(crate) fn debug_levels(&self) -> String {
        format!("like {:.2} fast {:.1} slow {:.1} conv {} lost {} S {} est {:?}", self.delay.recent_echo_likeness(), self.fast_erle_db(), self.erle_db(), self.converged, self.path_lost, self.window_start, self.delay.estimate_samples())
    }

    #[cfg(test)]
    pub(crate) fn force_lag(&mut self, lag: usize) {
        self.place_window(lag);
    }

    /// Moves the delay line if the echo onset `lag` is not comfortably inside the window.
    fn place_window(&mut self, lag: usize) {
        let start = self.window_start;
        let inside = lag >= start + BLOCK && lag < start + PRE_MARGIN + 2 * BLOCK;
        let target = (lag.saturating_sub(PRE_MARGIN) / BLOCK * BLOCK).min(self.max_start);
        if !inside && target != start {
            let shift = (target as isize - start as isize) / BLOCK as isize;
            if self.converged {
                // Keep what the filter knows; the echo moved by a few blocks at most.
                self.filter.shift_partitions(shift);
            } else {
                // Taps learnt at a wrong alignment are noise: start clean.
                self.filter.reset_adaptation();
            }
            self.window_start = target;
            self.delay_changes += 1;
            // Refill the far-end spectra for the new alignment from the history.
            let newest_end = self.far_written as i64 - target as i64;
            for k in 0..self.filter.partitions() {
                let end = newest_end - (k * BLOCK) as i64;
                let mut window = [0.0f32; 2 * BLOCK];
                for (i, slot) in window.iter_mut().enumerate() {
                    *slot = self.far_sample(end - (2 * BLOCK) as i64 + i as i64);
                }
                self.filter.load_far_window(k, &window);
            }
        }
        // Point the step-size prior at the echo onset: adaptation effort spent on the
        // (empty) taps before it is only noise. The envelope lag is the echo's energy
        // centre, about 2 ms after its onset.
        let onset = lag.saturating_sub(ONSET_BIAS).saturating_sub(self.window_start) / BLOCK;
        if !self.locked {
            // First lock: what was learnt before the delay was known goes.
            self.locked = true;
            self.filter.restart_step_control(onset);
        } else if onset != self.filter.expected_onset() {
            self.filter.set_expected_onset(onset);
        }
    }

    /// Reads the converged filter's impulse response: where it starts is the bulk delay;
    /// if it sits at the edge of the window, re-centre the window around it.
    fn scan_taps(&mut self) {
        if !self.converged {
            self.filter_delay = None;
            return;
        }
        self.filter.foreground_taps(&mut self.taps);
        let peak = self.taps.iter().fold(0.0f32, |m, t| m.max(t * t));
        if !(peak > 0.0) {
            return;
        }
        let Some(onset) = self.taps.iter().position(|t| t * t >= peak / 8.0) else {
            return;
        };
        let lag = self.window_start + onset;
        self.filter_delay = Some(lag);
        self.place_window(lag);
        self.filter_delay = Some(lag);
    }

    fn update_erle(&mut self, measurable: bool, near_power: f32, out_power: f32) {
        if !measurable || near_power < NEAR_FLOOR_POWER {
            return;
        }
        self.erle_near_slow = ERLE_SLOW * self.erle_near_slow + (1.0 - ERLE_SLOW) * near_power;
        self.erle_out_slow = ERLE_SLOW * self.erle_out_slow + (1.0 - ERLE_SLOW) * out_power;
        self.erle_near_fast = ERLE_FAST * self.erle_near_fast + (1.0 - ERLE_FAST) * near_power;
        self.erle_out_fast = ERLE_FAST * self.erle_out_fast + (1.0 - ERLE_FAST) * out_power;
        let erle = self.erle_db();
        if erle >= CONVERGED_ERLE_DB {
            self.converged = true;
            self.path_lost = false;
        } else if erle < UNCONVERGED_ERLE_DB {
            self.converged = false;
        }
        // A converged filter whose output is suddenly as loud as its input for a while has
        // lost the echo path (the call was transferred, the phone switched to speaker...).
        // Say so at once: the delay search then switches to its short memory, which would
        // otherwise hold on to the old delay for a second or more.
        if self.converged
            && self.fast_erle_db() < LOST_ERLE_DB
            && self.delay.recent_echo_likeness() >= filter::knob("LIKE", 0.4) as f32
        {
            self.poor_frames += 1;
            if self.poor_frames >= filter::knob("LOSTF", 8.0) as u32 {
                self.converged = false;
                self.path_lost = true;
                self.poor_frames = 0;
                self.erle_near_slow = self.erle_near_fast;
                self.erle_out_slow = self.erle_out_fast;
                self.filter_delay = None;
            }
        } else {
            self.poor_frames = 0;
        }
    }

    fn erle_db(&self) -> f32 {
        erle_from(self.erle_near_slow, self.erle_out_slow)
    }

    fn fast_erle_db(&self) -> f32 {
        erle_from(self.erle_near_fast, self.erle_out_fast)
    }

    /// Echo power / far power: measured once converged, else the 6 dB worst case.
    fn erl_gain(&self) -> f32 {
        if self.erl_measured && self.erl_far > 0.0 {
            (self.erl_echo / self.erl_far).clamp(1e-4, 1.0)
        } else {
            DEFAULT_ERL_GAIN
        }
    }
}

fn erle_from(near: f32, out: f32) -> f32 {
    if near <= 0.0 {
        return 0.0;
    }
    power_db_ratio((near + 1.0) / (out + 1.0)).clamp(-30.0, 60.0)
}

fn saturate(v: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    v.round() as i16
}

fn power_db_ratio(ratio: f32) -> f32 {
    10.0 * ratio.max(1e-12).log10()
}

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Mean power (i16 scale) → dBFS, floored at −100.
fn power_db(power: f32) -> f32 {
    power_db_ratio(power / FULL_SCALE_POWER).max(-100.0)
}

fn level_db(energy: f32, samples: usize) -> f32 {
    power_db(energy / samples.max(1) as f32)
}
