//! The per-call echo canceller: delay line, adaptive filter and the control around them
//! (who may adapt when, is the filter converged, did the echo path change).
//!
//! Adaptation control, per 4 ms block:
//! - *near end loud* (level comparison à la OSLEC/Geigel, 75 ms hangover): the near-end block
//!   is louder than the far end could make it through an echo path (ERL ≥ 6 dB, G.168), so
//!   the caller talks: freeze the background filter;
//! - *unexplained output* (once converged): the output is well above the residual the filter
//!   normally leaves *and* the input is well above the echo the far end predicts — quieter
//!   double talk: adapt at a tenth of the step, unless our audio explains what is heard
//!   (echo likeness ≥ 0.7: a changed echo path, not a caller). (Output excess alone is
//!   also what unlearnt speech sounds and echo-path changes look like; those must keep the
//!   full step.)
//! - otherwise full-speed NLMS.
//!
//! Echo-path changes: output louder than input (the filter models an echo that is gone), or
//! a converged filter whose ERLE collapses while the near end is still explained by the far
//! end (envelope correlation) and no loud near-end speech was seen for 0.5 s → forget the
//! path, restart from zero and search the delay with a short memory.
//!
//! First convergence: at the first delay lock the filter is re-taught what it heard while
//! searching (`realign`), and the delay line puts the estimated echo onset in the middle
//! of a 4 ms partition (`place_window`).

use super::delay::DelayEstimator;
use super::erl_bound::ErlBound;
use super::far_history::FarHistory;
use super::filter::{BlockFilter, BLOCK};
use super::noise_floor::NoiseFloor;
use super::realign::{load_far_spectra, re_teach, NearHistory};
use super::{EchoConfig, EchoFrameInfo, EchoStats, FRAME_SAMPLES, MAX_FRAME_SAMPLES};
use crate::denoise::saturate;

const SAMPLES_PER_MS: usize = 8;
/// The filter window starts this long before the estimated echo onset, so an estimate that
/// is a few ms late still leaves the whole echo inside the window.
const PRE_MARGIN: usize = 2 * BLOCK;
/// The envelope correlation peaks at the echo's energy centre, about this long after its
/// onset (samples).
const ONSET_BIAS: usize = SAMPLES_PER_MS;
/// Echo-path dispersion assumed when predicting the echo level from the far-end level.
const DISPERSION: usize = 16 * SAMPLES_PER_MS;
/// Full-scale power (i16).
const FULL_SCALE_POWER: f32 = 32768.0 * 32768.0;
/// Below this mean power (−60 dBFS) the near end is treated as silent.
const NEAR_FLOOR_POWER: f32 = FULL_SCALE_POWER * 1e-6;
/// Per-frame decay of the far end's recent peak power (≈ 2 dB/s).
const FAR_PEAK_DECAY: f32 = 0.99;
/// A far end this far (20 dB) under its recent peak is in a gap between words.
const FAR_GAP_RATIO: f32 = 0.01;
/// Level comparison for the near-end detector: an echo path loses at least 6 dB (G.168), so
/// near-end power above the far-end power minus 3 dB cannot be echo alone.
const NEAR_END_RATIO: f32 = 0.5;
/// "Unexplained output": output above this multiple of the expected residual and input
/// above this multiple of the expected echo (both 6 dB).
const EXCESS_RATIO: f32 = 4.0;
/// Step scale while the output is unexplained.
const SUSPICIOUS_STEP: f32 = 0.1;
/// Echo return loss assumed until it is measured (the G.168 worst case, 6 dB).
const DEFAULT_ERL_GAIN: f32 = 0.25;
/// ERLE (dB) above which the filter counts as converged, and below which it no longer does.
const CONVERGED_ERLE_DB: f32 = 12.0;
const UNCONVERGED_ERLE_DB: f32 = 6.0;
/// Fast ERLE (dB) below which a converged filter may have lost the echo path…
const LOST_ERLE_DB: f32 = 3.0;
/// …if that lasts this many measurable frames…
const LOST_FRAMES: u32 = 8;
/// …and the far end still explains the near end this well (envelope correlation).
const LOST_ECHO_LIKENESS: f32 = 0.4;
/// Likeness above which what is heard is taken for nothing but our echo (0.8–0.95 on pure
/// echo; a caller as loud as the echo pulls it to 0.3–0.6).
const PURE_ECHO_LIKENESS: f32 = 0.7;
/// Frames of output louder than input (by this power ratio) after which the path counts as
/// changed.
const WORSE_THAN_NOTHING_FRAMES: u32 = 3;
const WORSE_THAN_NOTHING_RATIO: f32 = 1.5;
/// …in frames whose predicted echo is at least this far (6 dB) above the line noise.
const WORSE_THAN_NOTHING_NOISE_MARGIN: f32 = 4.0;
/// …or, in other frames, output louder than input by this power ratio (4 dB).
const CLEARLY_WORSE_THAN_NOTHING_RATIO: f32 = 2.5;
/// Low ERLE within this many frames (0.5 s) of loud near-end speech is blamed on the
/// caller, not on a changed echo path.
const NEAR_END_MEMORY_FRAMES: u32 = 25;
/// Smoothing of the ERLE statistics per frame (≈ 0.5 s and ≈ 0.1 s).
const ERLE_SLOW: f32 = 0.96;
const ERLE_FAST: f32 = 0.7;
/// The filter taps are re-examined this often (frames) to refine the bulk delay.
const TAP_SCAN_FRAMES: u32 = 12;

/// Largest near-timeline jump followed (3 frames); a larger one is a restarted stream.
const MAX_FOLLOWED_SHIFT: i64 = 3 * FRAME_SAMPLES as i64;

/// What happens to the taps when the delay line moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TapsOnMove {
    /// The echo stayed where it was: the taps move against the window.
    Shift,
    /// The echo moved with the window (the near timeline jumped).
    Keep,
    /// The old alignment was wrong: start over.
    Reset,
}

/// The echo canceller of one call leg. See the module documentation.
pub struct EchoCanceller {
    cfg: EchoConfig,
    max_start: usize,
    hangover_blocks: u32,
    hangover_frames: u32,
    far_active_power: f32,
    /// What we sent: samples for the delay line, block powers for the level detectors.
    far: FarHistory,
    filter: BlockFilter,
    delay: DelayEstimator,
    /// Delay-line length: the filter's first tap sees the far end this many samples late.
    window_start: usize,
    /// Bulk delay read from the converged filter's taps (samples).
    filter_delay: Option<usize>,
    taps: Vec<f32>,
    far_block: [f32; BLOCK],
    /// The last near blocks and their steps, for the catch-up at the first lock.
    near_history: NearHistory,
    near_block: [f32; BLOCK],
    aligned_block: [f32; BLOCK],
    out_block: [f32; BLOCK],
    /// A bulk delay has been found at least once.
    locked: bool,
    /// Blocks left in the loud-near-end hangover.
    near_end_hold: u32,
    /// Blocks left in the unexplained-output hangover.
    suspicion_hold: u32,
    /// Frames left before recent loud near-end speech is forgotten.
    near_end_recent: u32,
    last_out_power: f32,
    poor_frames: u32,
    worse_than_nothing: u32,
    /// Convergence was lost after it had been reached: search the delay with short memory.
    path_lost: bool,
    double_talk_hold: u32,
    double_talk: bool,
    /// ERLE (dB) of measurable frames, smoothed over ≈ 0.5 s and ≈ 0.1 s.
    erle_slow_db: f32,
    /// The slow ERLE as the echo gate is told it: not learnt while a caller may be talking
    /// (see `process`).
    erle_gate_db: f32,
    erle_fast_db: f32,
    converged: bool,
    erl_echo: f32,
    erl_far: f32,
    erl_measured: bool,
    /// Echo gain bound from raw levels, used until the filter measures the ERL.
    erl_bound: ErlBound,
    /// Mean inbound noise power (see [`NoiseFloor::mean`]) and its tracker.
    noise_floor: f32,
    noise_tracker: NoiseFloor,
    /// Recent peak of the far-end reference power (decays ≈ 2 dB/s).
    far_peak: f32,
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
            (max_delay + (partitions + 2 + NearHistory::BLOCKS) * BLOCK + MAX_FRAME_SAMPLES)
                .next_power_of_two();
        let power_blocks =
            ((max_delay + DISPERSION + MAX_FRAME_SAMPLES) / BLOCK + 4).next_power_of_two();
        let hangover_samples = cfg.double_talk_hangover_ms as usize * SAMPLES_PER_MS;
        Self {
            max_start: max_delay / BLOCK * BLOCK,
            hangover_blocks: hangover_samples.div_ceil(BLOCK) as u32,
            hangover_frames: hangover_samples.div_ceil(FRAME_SAMPLES) as u32,
            far_active_power: FULL_SCALE_POWER * 10f32.powf(cfg.far_active_dbfs / 10.0),
            far: FarHistory::new(history, power_blocks),
            filter: BlockFilter::new(partitions),
            delay: DelayEstimator::new(
                cfg.max_bulk_delay_ms as usize + DISPERSION / SAMPLES_PER_MS,
            ),
            window_start: 0,
            filter_delay: None,
            taps: vec![0.0; partitions * BLOCK],
            far_block: [0.0; BLOCK],
            near_history: NearHistory::new(),
            near_block: [0.0; BLOCK],
            aligned_block: [0.0; BLOCK],
            out_block: [0.0; BLOCK],
            locked: false,
            near_end_hold: 0,
            suspicion_hold: 0,
            near_end_recent: 0,
            last_out_power: 0.0,
            poor_frames: 0,
            worse_than_nothing: 0,
            path_lost: false,
            double_talk_hold: 0,
            double_talk: false,
            erle_slow_db: 0.0,
            erle_gate_db: 0.0,
            erle_fast_db: 0.0,
            converged: false,
            erl_echo: 0.0,
            erl_far: 0.0,
            erl_measured: false,
            erl_bound: ErlBound::new(),
            noise_floor: 0.0,
            noise_tracker: NoiseFloor::new(),
            far_peak: 0.0,
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
        if len == 0 || !len.is_multiple_of(BLOCK) || len > MAX_FRAME_SAMPLES || out.len() < len {
            self.invalid_frames += 1;
            for (o, &n) in out.iter_mut().zip(near) {
                *o = n;
            }
            let near_energy: f32 = near.iter().map(|&v| f32::from(v) * f32::from(v)).sum();
            return EchoFrameInfo {
                far_active: false,
                expected_echo_level_db: power_db(0.0),
                near_level_db: power_db(near_energy / len.max(1) as f32),
                double_talk: false,
                erle_db: self.erle_gate_db,
                echo_likeness: None,
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
        let first_block = self.far.blocks_written();
        for (b, (near_chunk, out_chunk)) in near
            .chunks_exact(BLOCK)
            .zip(out.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            let mut far_energy = 0.0f32;
            let far_chunk = far.get(b * BLOCK..).unwrap_or(&[]);
            for (i, (far_slot, near_slot)) in self
                .far_block
                .iter_mut()
                .zip(self.near_block.iter_mut())
                .enumerate()
            {
                // The reference is exactly what was sent (no DC blocker: a high-pass on it
                // alone makes the echo path unmodelable at low frequencies and capped the
                // ERLE near 20 dB on pink-ish noise); the near side is left as it came too.
                let x = far_chunk.get(i).map_or(0.0, |&v| f32::from(v));
                *far_slot = x;
                far_energy += x * x;
                *near_slot = near_chunk.get(i).map_or(0.0, |&v| f32::from(v));
            }
            self.far
                .push_block(&self.far_block, far_energy / BLOCK as f32);
            let near_talks = self.near_end_hold > 0;
            let estimate = self.delay.push(
                &self.far_block,
                &self.near_block,
                self.path_lost,
                near_talks,
            );
            self.read_aligned_block();

            let step_scale =
                self.adaptation_control(&mut near_end_in_frame, &mut suspicious_in_frame);
            self.near_history
                .remember(self.far.blocks_written() - 1, &self.near_block, step_scale);
            let report = self.filter.process_block(
                &self.aligned_block,
                &self.near_block,
                &mut self.out_block,
                step_scale,
            );
            self.last_out_power = report.out_energy / BLOCK as f32;
            if report.reset {
                self.resets += 1;
                self.converged = false;
                self.filter_delay = None;
            }
            for (o, &v) in out_chunk.iter_mut().zip(&self.out_block) {
                *o = saturate(v);
            }
            // A new delay line takes effect from the next block: the filter has taken this
            // one in at the old alignment, and the far spectra it is given for the new one
            // end with this block.
            if let Some(lag) = estimate {
                self.on_delay_estimate(lag);
            }
            near_energy += report.near_energy;
            out_energy += report.out_energy;
            echo_energy += report.echo_estimate_energy;
        }

        let blocks = (len / BLOCK) as u64;
        let (window_max, window_mean) =
            self.far_power_in_echo_window(first_block + blocks - 1, blocks, true);
        // Once the filter has converged the delay is trusted, the echo window is narrow and
        // its mean is the reference; before, the loudest far block that could still echo
        // (a wrong early delay estimate must not make the echo gate expect too little).
        let far_reference = if self.best_lag().is_some() && self.converged {
            window_mean
        } else {
            window_max
        };
        let far_active = far_reference > self.far_active_power;
        let near_power = near_energy / len as f32;
        let out_power = out_energy / len as f32;

        if near_end_in_frame {
            self.near_end_recent = NEAR_END_MEMORY_FRAMES;
        } else {
            self.near_end_recent = self.near_end_recent.saturating_sub(1);
        }
        // Frames where the near end clearly talks say nothing about the echo. Line noise is
        // taken out of both sides: it passes the canceller untouched, and counted as echo it
        // would cap the ERLE near the echo-to-noise ratio (a noisy line never "converges").
        // The ERLE, the step and the two-path test work with the noise's mean power, what
        // it adds to a frame on average. Only frames in a gap of the far end (silent, or
        // 20 dB under its recent peak, as between words) teach it: the echo of a steady far
        // end (a tone, music on hold) has no gaps and would pass for line noise.
        self.far_peak = (self.far_peak * FAR_PEAK_DECAY).max(far_reference);
        let far_gap = !far_active || far_reference < FAR_GAP_RATIO * self.far_peak;
        let noise_mean = if !far_gap {
            self.noise_floor
        } else {
            self.track_noise_floor(near_power)
        };
        self.filter
            .set_noise(noise_mean, far_gap && !near_end_in_frame);
        let echo_in = near_power - noise_mean;
        // The ERLE the echo gate is told holds still while double talk is suspected and our
        // audio does not explain what is heard: a caller at our echo's level is not always
        // caught by the level detector, and each of their frames reads as a poor ERLE — the
        // residual the gate expected rose by 20 dB over two seconds of such a caller, who
        // was then judged at the raised bar. A louder echo after a path change is explained
        // by our audio and is learnt at once. (The canceller's own ERLE, which steers its
        // adaptation, learns from every frame as before.)
        let talk_suspected =
            (near_end_in_frame || suspicious_in_frame || self.double_talk_hold > 0)
                && !self
                    .delay
                    .echo_likeness()
                    .is_some_and(|l| l >= PURE_ECHO_LIKENESS);
        self.update_erle(
            far_active && !near_end_in_frame && echo_in > noise_mean,
            !talk_suspected,
            echo_in,
            (out_power - noise_mean).max(0.0),
        );
        self.check_worse_than_nothing(far_active, near_power, out_power, echo_energy / len as f32);
        if far_active {
            let last = first_block + blocks - 1;
            let (_, whole_window_mean) = self.far_power_in_echo_window(last, blocks, false);
            // Line noise is not echo: a noisy line would otherwise look like a loud echo
            // path, and every caller under it like our own voice.
            self.erl_bound.push(echo_in.max(0.0), whole_window_mean);
        }
        if far_active && !near_end_in_frame && self.converged {
            self.erl_echo = 0.9 * self.erl_echo + 0.1 * echo_energy / len as f32;
            self.erl_far = 0.9 * self.erl_far + 0.1 * window_mean;
            self.erl_measured = true;
        }

        if far_active && (near_end_in_frame || suspicious_in_frame) {
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
            expected_echo_level_db: power_db(far_reference * self.erl_gain()),
            near_level_db: power_db(near_power),
            double_talk: self.double_talk,
            erle_db: self.erle_gate_db,
            echo_likeness: self.delay.echo_likeness(),
        }
    }

    /// Current estimates and counters.
    pub fn stats(&self) -> EchoStats {
        EchoStats {
            bulk_delay_ms: self
                .best_lag()
                .map(|lag| lag as f32 / SAMPLES_PER_MS as f32),
            erl_db: self.erl_measured.then(|| -power_db_ratio(self.erl_gain())),
            erle_db: self.erle_slow_db,
            double_talk: self.double_talk,
            converged: self.converged,
            frames: self.frames,
            invalid_frames: self.invalid_frames,
            far_length_mismatches: self.far_length_mismatches,
            resets: self.resets,
            delay_changes: self.delay_changes,
        }
    }

    /// Decides the background step for the block just read (see the module docs) and
    /// updates the near-end detectors.
    fn adaptation_control(
        &mut self,
        near_end_in_frame: &mut bool,
        suspicious_in_frame: &mut bool,
    ) -> f32 {
        let near_power = self.near_block.iter().map(|v| v * v).sum::<f32>() / BLOCK as f32;
        let block = self.far.blocks_written() - 1;
        // The level comparison must not miss echo arriving at another lag while the delay
        // is in doubt, so it looks at the whole range until the filter has converged.
        let (far_reference, _) = self.far_power_in_echo_window(block, 1, self.converged);
        let (_, far_mean) = self.far_power_in_echo_window(block, 1, true);
        if near_power > NEAR_FLOOR_POWER && near_power > NEAR_END_RATIO * far_reference {
            self.near_end_hold = self.hangover_blocks;
            *near_end_in_frame = true;
        } else {
            self.near_end_hold = self.near_end_hold.saturating_sub(1);
        }
        let expected_echo = far_mean * self.erl_gain();
        let expected_residual = expected_echo / db_to_power(self.erle_slow_db.max(0.0));
        if self.converged
            && self.last_out_power > EXCESS_RATIO * expected_residual + NEAR_FLOOR_POWER
            && near_power > EXCESS_RATIO * expected_echo
        {
            self.suspicion_hold = self.hangover_blocks;
        } else {
            self.suspicion_hold = self.suspicion_hold.saturating_sub(1);
        }
        *suspicious_in_frame |= self.suspicion_hold > 0;
        if self.near_end_hold > 0 || far_reference <= self.far_active_power {
            0.0
        } else if self.suspicion_hold > 0
            && !self
                .delay
                .echo_likeness()
                .is_some_and(|l| l >= PURE_ECHO_LIKENESS)
        {
            SUSPICIOUS_STEP
        } else {
            1.0
        }
    }

    /// The newest block as the filter must see it: `window_start` samples late.
    fn read_aligned_block(&mut self) {
        let first = self.far.written() as i64 - BLOCK as i64 - self.window_start as i64;
        for i in 0..BLOCK {
            self.aligned_block[i] = self.far.sample(first + i as i64);
        }
    }

    /// (max, mean) of the far block powers whose echo can fall into the `blocks` blocks
    /// ending with block `last`: lags around the bulk delay (plus dispersion) if known and
    /// trusted, else anything up to the largest delay.
    fn far_power_in_echo_window(&self, last: u64, blocks: u64, trust_lag: bool) -> (f32, f32) {
        let lag = if trust_lag { self.best_lag() } else { None };
        let (lag_min, lag_max) = match lag {
            Some(lag) => (lag.saturating_sub(4 * SAMPLES_PER_MS), lag + DISPERSION),
            None => (0, self.max_start + BLOCK + DISPERSION),
        };
        let newest = last.saturating_sub((lag_min / BLOCK) as u64);
        let oldest = (last + 1)
            .saturating_sub(blocks)
            .saturating_sub(lag_max.div_ceil(BLOCK) as u64);
        self.far.block_power_stats(oldest, newest)
    }

    /// Best bulk-delay estimate in samples.
    fn best_lag(&self) -> Option<usize> {
        self.filter_delay.or_else(|| self.delay.estimate_samples())
    }

    fn on_delay_estimate(&mut self, lag: usize) {
        // A filter that is cancelling well knows the delay better than the envelopes (they
        // get noisy in double talk); it lets go again once its ERLE drops.
        if self.converged && self.erle_fast_db >= CONVERGED_ERLE_DB {
            return;
        }
        self.filter_delay = None;
        // The envelope correlation peaks at the echo's energy centre, just after its onset.
        self.place_window(lag.saturating_sub(ONSET_BIAS), self.converged);
    }

    /// Moves the delay line if the echo onset `lag` (samples) is not comfortably inside
    /// the window. `keep_taps`: shift the taps along (else, when moving, start over).
    fn place_window(&mut self, lag: usize, keep_taps: bool) {
        let start = self.window_start;
        let inside = lag >= start + BLOCK && lag < start + PRE_MARGIN + 2 * BLOCK;
        // The onset estimate is aimed at the middle of a partition: the step prior peaks
        // at the partition it falls in, and an estimate a millisecond early on a partition
        // boundary would put the peak on the empty partition before the echo, which then
        // learns the echo's correlated part and costs 5–7 dB of ERLE in the first second.
        let aimed = lag.saturating_sub(PRE_MARGIN + BLOCK / 2);
        let target = if keep_taps {
            // Taps move by whole partitions: keep the delay line's phase (not before "now").
            let partitions = (aimed as f64 - start as f64) / BLOCK as f64;
            let target = start as i64 + partitions.round() as i64 * BLOCK as i64;
            if target < 0 {
                target.rem_euclid(BLOCK as i64) as usize
            } else {
                target as usize
            }
        } else {
            aimed
        }
        .min(self.max_start);
        if (!inside || !self.locked) && target != start {
            let taps = if keep_taps {
                TapsOnMove::Shift
            } else {
                TapsOnMove::Reset
            };
            self.move_window(target, taps);
        }
        // Point the step prior at the echo onset: adaptation effort spent on the (empty)
        // taps before it is only noise.
        let onset = lag.saturating_sub(self.window_start) / BLOCK;
        if !self.locked || (!self.converged && onset > self.filter.expected_onset()) {
            // First lock, or a later onset while still converging: what was learnt before
            // the onset was known, in the taps now before it, is noise that the small
            // prior weights there would only slowly undo.
            let first_lock = !self.locked;
            self.locked = true;
            self.filter.restart_at_onset(onset);
            if first_lock {
                re_teach(
                    &mut self.filter,
                    &self.far,
                    &self.near_history,
                    self.window_start,
                );
            }
        } else if onset != self.filter.expected_onset() {
            self.filter.set_expected_onset(onset);
        }
    }

    /// Moves the delay line to `target` samples, doing `taps` with what the filter learnt
    /// (`Shift` needs a move by whole partitions).
    fn move_window(&mut self, target: usize, taps: TapsOnMove) {
        let start = self.window_start;
        let shift = (target as isize - start as isize) / BLOCK as isize;
        match taps {
            // Keep what the filter knows; the echo moved by a few blocks at most.
            TapsOnMove::Shift => self.filter.shift_partitions(shift),
            // Taps learnt at a wrong alignment are noise.
            TapsOnMove::Reset => self.filter.reset_adaptation(),
            TapsOnMove::Keep => {}
        }
        self.window_start = target;
        self.delay_changes += 1;
        // Refill the far-end spectra for the new alignment from the history.
        load_far_spectra(
            &mut self.filter,
            &self.far,
            self.far.written() as i64 - target as i64,
        );
    }

    /// The near end's timeline jumped by `samples` (> 0: skipped ahead, so the echo now
    /// arrives that much sooner) — our own jitter buffer dropped or inserted a frame. The
    /// echo path itself did not change: the delay line, the taps and the delay estimate
    /// move with the jump instead of being re-learnt (which takes seconds, and masks the
    /// caller meanwhile). A jump the delay line cannot follow starts the search over.
    pub fn near_timeline_shifted(&mut self, samples: i64) {
        if samples == 0 {
            return;
        }
        if samples.abs() > MAX_FOLLOWED_SHIFT {
            // Not a dropped or inserted frame but a new timeline (the caller's stream
            // restarted): where the echo now lies is unknown.
            self.lose_path();
            return;
        }
        let blocks = (samples as f64 / BLOCK as f64).round() as i64;
        let mut target = self.window_start as i64 - blocks * BLOCK as i64;
        // The delay line cannot be shorter than nothing: an echo that now comes back
        // almost at once gives up part of the margin before its onset instead (taps that
        // should be empty), whole partitions at a time.
        let mut margin_given = 0;
        if target < 0 && target > -(PRE_MARGIN as i64) {
            margin_given = (-target + BLOCK as i64 - 1) / BLOCK as i64;
            target += margin_given * BLOCK as i64;
        }
        self.delay.timeline_shifted(samples);
        self.filter_delay = self
            .filter_delay
            .and_then(|d| usize::try_from(d as i64 - samples).ok());
        if !(0..=self.max_start as i64).contains(&target) {
            self.lose_path();
            return;
        }
        if blocks != 0 {
            // The echo moved with the delay line: relative to it, nothing changed.
            self.move_window(target as usize, TapsOnMove::Keep);
            if margin_given > 0 {
                self.filter.shift_partitions(margin_given as isize);
                let onset = self.filter.expected_onset();
                self.filter
                    .set_expected_onset(onset.saturating_sub(margin_given as usize));
            }
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
        if peak <= 0.0 || !peak.is_finite() {
            return;
        }
        // The onset: the first tap within 9 dB of the strongest.
        let Some(onset) = self.taps.iter().position(|t| t * t >= peak / 8.0) else {
            return;
        };
        let lag = self.window_start + onset;
        self.place_window(lag, true);
        self.filter_delay = Some(lag);
    }

    /// Tracks the inbound noise by minimum statistics (see [`NoiseFloor`]: follows steady
    /// noise, ignores speech and echo bursts) and returns its mean power, the part of a
    /// frame's power the canceller cannot remove.
    fn track_noise_floor(&mut self, near_power: f32) -> f32 {
        self.noise_tracker.push(near_power);
        self.noise_floor = self.noise_tracker.mean();
        self.noise_floor
    }

    fn update_erle(&mut self, measurable: bool, no_talk: bool, near_power: f32, out_power: f32) {
        if !measurable || near_power < NEAR_FLOOR_POWER {
            return;
        }
        // Averaged in dB, not in power: one loud frame of undetected near-end speech must
        // not wipe out what a second of echo-only frames says.
        let frame_erle = erle_of_frame(near_power, out_power);
        self.erle_slow_db = ERLE_SLOW * self.erle_slow_db + (1.0 - ERLE_SLOW) * frame_erle;
        if no_talk || !self.converged {
            self.erle_gate_db = ERLE_SLOW * self.erle_gate_db + (1.0 - ERLE_SLOW) * frame_erle;
        }
        self.erle_fast_db = ERLE_FAST * self.erle_fast_db + (1.0 - ERLE_FAST) * frame_erle;
        if self.erle_slow_db >= CONVERGED_ERLE_DB {
            self.converged = true;
            self.path_lost = false;
        } else if self.erle_slow_db < UNCONVERGED_ERLE_DB {
            self.converged = false;
        }
        // A converged filter whose output is suddenly as loud as its input, while the far
        // end still explains the near end and the caller has not been heard, has lost the
        // echo path (the call was transferred, the phone switched to speaker...).
        if self.converged
            && self.near_end_recent == 0
            && self.erle_fast_db < LOST_ERLE_DB
            && self.delay.recent_echo_likeness() >= LOST_ECHO_LIKENESS
        {
            self.poor_frames += 1;
            if self.poor_frames >= LOST_FRAMES {
                self.poor_frames = 0;
                self.lose_path();
            }
        } else {
            self.poor_frames = 0;
        }
    }

    /// Output clearly louder than the input means the filters model an echo that is no
    /// longer there (the path changed to a quieter one). Near-end speech cannot cause that
    /// (it adds to both sides), so this is safe in double talk.
    fn check_worse_than_nothing(
        &mut self,
        far_active: bool,
        near_power: f32,
        out_power: f32,
        echo_estimate_power: f32,
    ) {
        if !far_active || out_power <= NEAR_FLOOR_POWER {
            return;
        }
        // Near the line noise a tail predicted slightly too long already makes the output
        // a little "louder", so there only an output far louder than the input counts, and
        // a frame that is not says nothing. (A vanished echo's model is as loud as the echo
        // was at first, but the filter partly unlearns it within a few frames and the rest
        // can sit a few dB over the noise for seconds: the output 4–6 dB over the input.)
        let estimate_over_noise = self.noise_floor <= NEAR_FLOOR_POWER
            || echo_estimate_power > WORSE_THAN_NOTHING_NOISE_MARGIN * self.noise_floor;
        if out_power > WORSE_THAN_NOTHING_RATIO * near_power
            && (estimate_over_noise || out_power > CLEARLY_WORSE_THAN_NOTHING_RATIO * near_power)
        {
            self.worse_than_nothing += 1;
            if self.worse_than_nothing >= WORSE_THAN_NOTHING_FRAMES {
                self.worse_than_nothing = 0;
                self.lose_path();
            }
        } else if estimate_over_noise {
            self.worse_than_nothing = 0;
        }
    }

    /// The echo path changed: forget it (the old taps only slow down learning the new
    /// one: starting from zero is closer) and search the delay with short memory.
    fn lose_path(&mut self) {
        self.converged = false;
        self.path_lost = true;
        self.resets += 1;
        let onset = self.filter.expected_onset();
        self.filter.reset_adaptation();
        self.filter.set_expected_onset(onset);
        self.erle_slow_db = self.erle_fast_db;
        self.erle_gate_db = self.erle_fast_db;
        self.filter_delay = None;
    }

    /// Echo power / far power: measured once converged, else the 6 dB worst case.
    fn erl_gain(&self) -> f32 {
        if self.erl_measured && self.erl_far > 0.0 {
            (self.erl_echo / self.erl_far).clamp(1e-4, 1.0)
        } else {
            // Never assume more echo than the line has shown it can carry.
            self.erl_bound.gain().map_or(DEFAULT_ERL_GAIN, |bound| {
                bound.clamp(1e-4, DEFAULT_ERL_GAIN)
            })
        }
    }
}

/// ERLE of one frame (dB), bounded so a single odd frame cannot dominate an average.
fn erle_of_frame(near: f32, out: f32) -> f32 {
    if near <= 0.0 {
        return 0.0;
    }
    power_db_ratio((near + 1.0) / (out + 1.0)).clamp(-20.0, 50.0)
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
