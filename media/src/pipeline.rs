//! The caller-audio path in front of the VAD, per call:
//!
//! ```text
//! near (jitter buffer out) ─┐
//!                           ├─ echo canceller (linear output) ─ noise suppression ─ 32 ms chunks → Silero
//! far (what we just sent) ──┘        └─ echo gate verdict ───────────────────────────┘ (with each chunk)
//! ```
//!
//! The VAD is fed from the canceller's *linear* output: a residual-echo suppressor would also
//! attenuate the caller during double talk. The echo gate instead tells the barge-in policy
//! when inbound audio is no louder than the echo it should expect, so the policy raises its
//! bar only then. Sans-IO and allocation-free per frame; it runs on the VAD worker threads
//! (CPU-heavy DSP stays off the call tasks) and in the offline replay tool, identically.

use crate::denoise::NoiseSuppressor;
use crate::echo::{EchoCanceller, EchoConfig, EchoFrameInfo, EchoGate, EchoGateVerdict};
use crate::vad::CHUNK_SAMPLES;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Cancel the echo of our own audio (the far end is exactly what we sent).
    pub echo_cancellation: bool,
    pub echo: EchoConfig,
    /// dB inbound audio may exceed the expected echo level and still count as possible echo.
    pub echo_gate_margin_db: f32,
    /// RNNoise (nnnoiseless) before the VAD.
    pub noise_suppression: bool,
    /// Hand each processed chunk (what the VAD heard: after echo cancellation and noise
    /// suppression) back with its VAD result, for bots that want the cleaned caller audio.
    pub deliver_audio: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            echo_cancellation: true,
            echo: EchoConfig {
                // The echo path's own 0–150 ms plus our side of the loop: packetisation
                // (20 ms), the jitter buffer (20–60 ms typically) and the network both ways.
                max_bulk_delay_ms: 250,
                ..EchoConfig::default()
            },
            echo_gate_margin_db: EchoGate::default().margin_db,
            noise_suppression: true,
            deliver_audio: false,
        }
    }
}

/// What the pipeline knew about echo while a chunk was being filled.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChunkContext {
    /// Our audio was audible on the line during the chunk.
    pub far_active: bool,
    /// Some frame of the chunk was no louder than the echo our audio should produce.
    pub echo_likely: bool,
    /// In every frame of the chunk the canceller's output was no louder than the residual
    /// echo it should leave (expected echo − ERLE + margin; see
    /// [`EchoGate::residual_is_echo`]): all the VAD can hear is our own voice (nearly
    /// unattenuated while the canceller converges), so no probability from this chunk can
    /// tell the caller from echo.
    pub echo_masked: bool,
    /// Level of the chunk the VAD hears (dBFS, −100 for digital silence).
    pub level_db: f32,
    /// How well our own audio explained the inbound audio at the chunk's end (see
    /// [`crate::echo::EchoFrameInfo::echo_likeness`]); None until the echo delay is known.
    pub echo_likeness: Option<f32>,
}

/// Per-frame details, for the replay tool's plot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameTrace {
    pub echo: Option<EchoFrameInfo>,
    pub gate: Option<EchoGateVerdict>,
    /// Level of the audio the VAD sees (dBFS).
    pub vad_input_level_db: f32,
}

pub struct CallerPipeline {
    echo: Option<EchoCanceller>,
    gate: EchoGate,
    noise: Option<NoiseSuppressor>,
    cancelled: [i16; FRAME_SAMPLES],
    cleaned: [i16; FRAME_SAMPLES],
    chunk: [f32; CHUNK_SAMPLES],
    filled: usize,
    context: ChunkContext,
    /// AND of the masked verdicts of the frames in the chunk being filled (None: no frame).
    chunk_masked: Option<bool>,
    deliver_audio: bool,
}

impl CallerPipeline {
    pub fn new(cfg: &PipelineConfig) -> Self {
        CallerPipeline {
            echo: cfg
                .echo_cancellation
                .then(|| EchoCanceller::new(cfg.echo.clone())),
            gate: EchoGate::new(cfg.echo_gate_margin_db),
            noise: cfg.noise_suppression.then(NoiseSuppressor::new),
            cancelled: [0; FRAME_SAMPLES],
            cleaned: [0; FRAME_SAMPLES],
            chunk: [0.0; CHUNK_SAMPLES],
            filled: 0,
            context: ChunkContext::default(),
            chunk_masked: None,
            deliver_audio: cfg.deliver_audio,
        }
    }

    /// Whether the processed chunks go back to the call (see [`PipelineConfig::deliver_audio`]).
    pub fn delivers_audio(&self) -> bool {
        self.deliver_audio
    }

    /// One 20 ms tick: `near` is the caller audio, `far` what we sent in the same tick.
    /// Calls `on_chunk(samples, end, context)` for each completed 32 ms chunk, where `end`
    /// is the index in this frame just past the chunk's last sample.
    pub fn process_frame(
        &mut self,
        far: &[i16],
        near: &[i16],
        on_chunk: impl FnMut(&[f32; CHUNK_SAMPLES], usize, ChunkContext),
    ) -> FrameTrace {
        self.process_frame_with(far, near, false, on_chunk)
    }

    /// As [`Self::process_frame`]; `shed_load` skips noise suppression for this frame (the
    /// workers do this when they fall behind real time, so barge-in stays timely under
    /// overload; echo cancellation is cheap and always runs).
    pub fn process_frame_with(
        &mut self,
        far: &[i16],
        near: &[i16],
        shed_load: bool,
        mut on_chunk: impl FnMut(&[f32; CHUNK_SAMPLES], usize, ChunkContext),
    ) -> FrameTrace {
        let len = near.len().min(FRAME_SAMPLES);
        let mut trace = FrameTrace::default();
        let near = near.get(..len).unwrap_or(&[]);
        let cancelled = &mut self.cancelled[..len];
        let mut frame_masked = false;
        match self.echo.as_mut() {
            Some(echo) if far.len() == len => {
                let info = echo.process(far, near, cancelled);
                let verdict = self.gate.assess_frame(&info);
                self.context.far_active |= info.far_active;
                self.context.echo_likeness = info.echo_likeness;
                let out_level = level_db(cancelled);
                // Inbound within our echo's level, unless the canceller's output says what
                // is left is clearly more than its residual (a caller over a loud echo).
                self.context.echo_likely |= verdict == EchoGateVerdict::WithinExpectedEcho
                    && !self.gate.residual_clearly_exceeded(out_level, info.erle_db);
                frame_masked = self.gate.residual_is_echo(out_level, info.erle_db);
                trace.echo = Some(info);
                trace.gate = Some(verdict);
            }
            _ => cancelled.copy_from_slice(near),
        }
        let cleaned = &mut self.cleaned[..len];
        // A frame the suppressor cannot take (not a multiple of 10 ms) passes unchanged.
        let denoised = match self.noise.as_mut() {
            Some(ns) if !shed_load => ns.process(cancelled, cleaned).is_ok(),
            _ => false,
        };
        if !denoised {
            cleaned.copy_from_slice(cancelled);
        }
        trace.vad_input_level_db = level_db(cleaned);
        self.chunk_masked = Some(self.chunk_masked.unwrap_or(true) && frame_masked);
        for (i, s) in cleaned.iter().enumerate() {
            if let Some(slot) = self.chunk.get_mut(self.filled) {
                *slot = f32::from(*s) / 32768.0;
            }
            self.filled += 1;
            if self.filled == CHUNK_SAMPLES {
                self.filled = 0;
                self.context.echo_masked = self.chunk_masked == Some(true);
                self.context.level_db = chunk_level_db(&self.chunk);
                on_chunk(&self.chunk, i + 1, self.context);
                self.context = ChunkContext::default();
                // The rest of this frame starts the next chunk.
                self.chunk_masked = (i + 1 < len).then_some(frame_masked);
            }
        }
        trace
    }

    /// The caller's timeline jumped by `samples` in front of the next frame (the jitter
    /// buffer dropped or inserted a frame): the echo of our audio now arrives that much
    /// sooner (> 0) or later, and the canceller moves its delay line with it.
    pub fn near_timeline_shifted(&mut self, samples: i64) {
        if let Some(echo) = self.echo.as_mut() {
            echo.near_timeline_shifted(samples);
        }
    }

    /// Echo canceller statistics (None when cancellation is off).
    pub fn echo_stats(&self) -> Option<crate::echo::EchoStats> {
        self.echo.as_ref().map(EchoCanceller::stats)
    }
}

/// Level of a VAD chunk (samples in ±1.0) in dBFS, −100 for digital silence.
fn chunk_level_db(chunk: &[f32; CHUNK_SAMPLES]) -> f32 {
    let mean = chunk.iter().map(|x| x * x).sum::<f32>() / CHUNK_SAMPLES as f32;
    if mean <= 1e-10 {
        -100.0
    } else {
        10.0 * mean.log10()
    }
}

/// RMS level in dBFS (−100 for digital silence).
pub fn level_db(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
    let rms = (energy / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-5 {
        -100.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

#[cfg(test)]
mod tests;
