//! Noise suppression for the caller's audio before it reaches the VAD.
//!
//! RNNoise (the `nnnoiseless` port) only runs on 10 ms frames at 48 kHz, so each 10 ms of
//! 8 kHz audio is interpolated to 48 kHz, denoised, and decimated back (see [`resample`]).
//! Around that, a fixed spectral tilt (applied before, undone after) works around RNNoise
//! ignoring loud white noise (see `tilt.rs` for the measurements).
//! Everything is fixed-size and owned by the [`NoiseSuppressor`]: after `new()` nothing
//! allocates, which matters because one instance runs per call, 100 times a second.
//!
//! Delay: RNNoise's overlap-add synthesis lags its input by one frame (10 ms); the FIR pair
//! adds 1.875 ms; the tilt pair adds none. Total 95 samples = 11.875 ms at 8 kHz
//! ([`NoiseSuppressor::DELAY_SAMPLES`]).

pub mod resample;
#[cfg(test)]
mod tests;
mod tilt;

use std::sync::OnceLock;

use nnnoiseless::{DenoiseState, RnnModel};

pub use resample::Resampler;
use resample::{CHUNK_48K, CHUNK_8K, ROUND_TRIP_DELAY_8K};
use tilt::SpectralTilt;

/// Samples in the 20 ms frame the media path normally hands over (8 kHz).
pub const FRAME_SAMPLES: usize = 160;
/// Granularity `process` accepts: any whole number of 10 ms chunks (80 samples at 8 kHz),
/// so 10/20/30/40 ms packet times all work without extra buffering delay.
pub const CHUNK_SAMPLES: usize = CHUNK_8K;

const _: () = assert!(CHUNK_48K == DenoiseState::FRAME_SIZE);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenoiseError {
    #[error(
        "noise suppressor needs equal input and output lengths, a multiple of {CHUNK_SAMPLES} \
         samples (10 ms at 8 kHz); got input {input}, output {output}"
    )]
    FrameLength { input: usize, output: usize },
}

/// The network weights are immutable; one copy is shared by every call's state.
static MODEL: OnceLock<RnnModel> = OnceLock::new();

/// Per-call RNNoise suppressor for 8 kHz i16 audio. Sans-IO: samples in, samples out.
pub struct NoiseSuppressor {
    resampler: Resampler,
    tilt: SpectralTilt,
    rnnoise: Box<DenoiseState<'static>>,
    /// Scratch, reused every chunk.
    narrow: [f32; CHUNK_8K],
    wide_in: [f32; CHUNK_48K],
    wide_out: [f32; CHUNK_48K],
}

impl NoiseSuppressor {
    /// Input-to-output delay in 8 kHz samples: RNNoise's 10 ms frame plus the FIR pair.
    pub const DELAY_SAMPLES: usize = CHUNK_8K + ROUND_TRIP_DELAY_8K;

    pub fn new() -> Self {
        let model = MODEL.get_or_init(RnnModel::default);
        Self {
            resampler: Resampler::new(),
            tilt: SpectralTilt::default(),
            rnnoise: DenoiseState::with_model(model),
            narrow: [0.0; CHUNK_8K],
            wide_in: [0.0; CHUNK_48K],
            wide_out: [0.0; CHUNK_48K],
        }
    }

    /// Denoises `input` into `out` (normally [`FRAME_SAMPLES`] each; any equal multiple of
    /// [`CHUNK_SAMPLES`] works). Output lags input by [`Self::delay_samples`]. Returns
    /// RNNoise's own voice-activity probability, the maximum over the 10 ms chunks (0.0 for
    /// empty input). The first ~0.5 s are a warm-up: RNNoise's noise estimate starts empty.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> Result<f32, DenoiseError> {
        if input.len() != out.len() || !input.len().is_multiple_of(CHUNK_SAMPLES) {
            return Err(DenoiseError::FrameLength {
                input: input.len(),
                output: out.len(),
            });
        }
        let mut voice_probability = 0.0f32;
        for (chunk_in, chunk_out) in input
            .chunks_exact(CHUNK_SAMPLES)
            .zip(out.chunks_exact_mut(CHUNK_SAMPLES))
        {
            for (narrow, &sample) in self.narrow.iter_mut().zip(chunk_in) {
                *narrow = f32::from(sample);
            }
            self.tilt.apply(&mut self.narrow);
            self.resampler.upsample(&self.narrow, &mut self.wide_in);
            let probability = self
                .rnnoise
                .process_frame(&mut self.wide_out, &self.wide_in);
            self.resampler.downsample(&self.wide_out, &mut self.narrow);
            self.tilt.undo(&mut self.narrow);
            for (sample, &narrow) in chunk_out.iter_mut().zip(&self.narrow) {
                *sample = saturate(narrow);
            }
            voice_probability = voice_probability.max(probability);
        }
        Ok(voice_probability)
    }

    /// Input-to-output delay in 8 kHz samples (95 = 11.875 ms).
    pub fn delay_samples(&self) -> usize {
        Self::DELAY_SAMPLES
    }
}

impl Default for NoiseSuppressor {
    fn default() -> Self {
        Self::new()
    }
}

/// Rounds to i16, clipping instead of wrapping: full-scale input plus filter overshoot
/// (Gibbs ringing, the tilt inverse's high-frequency gain) can exceed the range. A
/// float-to-int `as` cast saturates, and maps NaN to 0.
pub fn saturate(sample: f32) -> i16 {
    sample.round() as i16
}
