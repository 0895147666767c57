//! Line-echo canceller for the caller's leg (8 kHz, sans-IO).
//!
//! The gateway knows every sample it sent (`far`), and the caller's audio (`near`) comes back
//! with an echo of it: delayed 0–150 ms, smeared over 8–16 ms by the echo path, attenuated
//! 6–20 dB and µ-law coded both ways. The canceller:
//! 1. estimates the bulk delay by correlating sent and received envelopes (`delay`) and
//!    delays the reference accordingly (a ring buffer, no copies of whole frames);
//! 2. cancels the echo with a two-path partitioned-block frequency-domain adaptive filter
//!    (`filter`) covering `tail_ms` after the bulk delay plus 12 ms around it; at the first
//!    delay lock the filter is re-taught the last 384 ms at the found alignment (`realign`),
//!    so the words spoken while the delay was searched are not lost to convergence;
//! 3. controls adaptation (`canceller`): frozen while the near end is clearly louder than
//!    an echo can be (level comparison with 75 ms hangover, as in OSLEC), slowed while the
//!    output and input are both well above what the echo model predicts (quieter double
//!    talk), and restarted when the echo path changes;
//! 4. reports levels so the barge-in policy can judge inbound energy against the echo it
//!    expects ([`EchoGate`]).
//!
//! Feed it, as `far`, exactly what went out on the wire (the µ-law-decoded samples): the
//! outbound coding noise then is part of the reference instead of an uncancellable residue
//! (≈ 2 dB more ERLE than with the linear audio before coding).
//!
//! The output is the *linear* canceller output: no non-linear processor, because residual
//! suppression also attenuates the caller during double talk, and the VAD downstream must
//! hear the caller. One call = one `EchoCanceller`; it allocates only in `new`; about 16 µs
//! per 20 ms frame, and once per call ≈ 130 µs for the frame of the first delay lock
//! (`cargo bench -p bargein-media --bench echo`).

mod canceller;
mod delay;
mod erl_bound;
mod far_history;
mod fft;
mod filter;
pub mod gate;
mod noise_floor;
mod realign;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod test_signals;
#[cfg(test)]
mod tests;

pub use canceller::EchoCanceller;
pub use gate::{EchoGate, EchoGateVerdict};

/// Sample rate the canceller works at.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Samples per 20 ms frame, the normal `process` size. Any multiple of 32 samples (4 ms)
/// up to [`MAX_FRAME_SAMPLES`] is accepted.
pub const FRAME_SAMPLES: usize = 160;
/// Largest frame `process` accepts (120 ms).
pub const MAX_FRAME_SAMPLES: usize = 960;

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
    /// How well our own audio explains the inbound audio over the last ≈ 160 ms
    /// (normalised envelope correlation at the bulk delay; None until the delay is known).
    pub echo_likeness: Option<f32>,
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
    /// Filter restarts: numerical trouble, divergence, or a detected echo-path change.
    pub resets: u64,
    /// Times the delay line moved.
    pub delay_changes: u64,
}
