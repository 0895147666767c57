//! Test signals and measurements for the echo canceller (G.168 Annex D style set-ups).
//!
//! An echo path here is a pure delay followed by a decaying FIR of 8–16 ms: band-limited
//! noise under an exponential envelope that falls 40 dB over the dispersion, scaled so the
//! echo return loss for white input is the requested ERL. The phone decodes our µ-law, the
//! echo adds to the caller's voice, and the sum is µ-law coded on the way back.

use crate::g711::{ulaw_decode, ulaw_encode};

use super::{EchoCanceller, EchoConfig, EchoFrameInfo, FRAME_SAMPLES};

/// Deterministic xorshift generator (no dev-dependency needed).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The samples of a PCM16 mono WAV in `deploy/prompts/` (the "data" chunk, found by walking
/// the RIFF chunks so extra chunks written by sox are skipped).
pub(crate) fn prompt(name: &str) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/prompts")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = pos + 8;
        if id == b"data" {
            let end = (body + size).min(bytes.len());
            return bytes[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        pos = body + size + (size & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Speech-like noise: pink-ish noise under a syllabic (4 Hz) on/off envelope, ~−20 dBFS.
pub(crate) fn syllabic_noise(samples: usize, seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let (mut lp1, mut lp2) = (0.0f32, 0.0f32);
    (0..samples)
        .map(|n| {
            let white = rng.uniform();
            lp1 = 0.6 * lp1 + white;
            lp2 = 0.3 * lp2 + lp1 - 0.5 * white;
            let phase = (n % 2000) as f32 / 2000.0;
            let envelope = if phase < 0.7 {
                (std::f32::consts::PI * phase / 0.7).sin()
            } else {
                0.0
            };
            (lp2 * 2500.0 * envelope) as i16
        })
        .collect()
}

/// An echo path impulse response: `dispersion_ms` long, ERL `erl_db` for white input.
pub(crate) fn echo_path(seed: u64, dispersion_ms: usize, erl_db: f32) -> Vec<f32> {
    let taps = dispersion_ms * 8;
    let mut rng = Rng::new(seed);
    let tau = taps as f32 / 4.6; // amplitude falls 40 dB over the dispersion
    let mut previous = 0.0;
    let mut smooth = 0.0;
    let mut h: Vec<f32> = (0..taps)
        .map(|j| {
            let white = rng.uniform();
            // Band-limit: no DC (difference) and some high-frequency roll-off (1-pole).
            let band = white - 0.7 * previous;
            previous = white;
            smooth = 0.5 * smooth + band;
            smooth * (-(j as f32) / tau).exp()
        })
        .collect();
    let energy: f32 = h.iter().map(|v| v * v).sum();
    let scale = (10f32.powf(-erl_db / 10.0) / energy).sqrt();
    h.iter_mut().for_each(|v| *v *= scale);
    h
}

pub(crate) fn ulaw(x: f32) -> i16 {
    ulaw_decode(ulaw_encode(x.round().clamp(-32768.0, 32767.0) as i16))
}

/// What the line does to our audio and the caller's.
pub(crate) struct Line {
    /// What the canceller gets as reference: the µ-law-decoded samples we sent.
    pub far: Vec<i16>,
    /// The far end before µ-law coding (a gateway that keeps its linear audio as reference).
    pub far_linear: Vec<i16>,
    /// What comes back: µ-law(echo + caller).
    pub near: Vec<i16>,
    /// The echo alone (before the return µ-law), for measurements.
    pub echo: Vec<f32>,
}

/// `paths` = (start sample, delay, impulse response): the path in force from that sample on.
pub(crate) fn line(far_linear: &[i16], caller: &[i16], paths: &[(usize, usize, &[f32])]) -> Line {
    let far: Vec<i16> = far_linear.iter().map(|&x| ulaw(f32::from(x))).collect();
    let mut echo = vec![0.0f32; far.len()];
    for (n, e) in echo.iter_mut().enumerate() {
        let Some(&(_, delay, h)) = paths.iter().rev().find(|(start, _, _)| *start <= n) else {
            continue;
        };
        let mut acc = 0.0;
        for (j, &tap) in h.iter().enumerate() {
            if let Some(k) = n.checked_sub(delay + j) {
                acc += tap * f32::from(far[k]);
            }
        }
        *e = acc;
    }
    let near = echo
        .iter()
        .enumerate()
        .map(|(n, &e)| ulaw(e + caller.get(n).map_or(0.0, |&c| f32::from(c))))
        .collect();
    Line {
        far,
        far_linear: far_linear.to_vec(),
        near,
        echo,
    }
}

/// Runs a fresh canceller over whole frames of `far`/`near`.
pub(crate) fn run(
    cfg: EchoConfig,
    far: &[i16],
    near: &[i16],
) -> (Vec<i16>, Vec<EchoFrameInfo>, EchoCanceller) {
    let mut canceller = EchoCanceller::new(cfg);
    let (out, infos) = run_with(&mut canceller, far, near);
    (out, infos, canceller)
}

pub(crate) fn run_with(
    canceller: &mut EchoCanceller,
    far: &[i16],
    near: &[i16],
) -> (Vec<i16>, Vec<EchoFrameInfo>) {
    let frames = far.len().min(near.len()) / FRAME_SAMPLES;
    let mut out = vec![0i16; frames * FRAME_SAMPLES];
    let mut infos = Vec::with_capacity(frames);
    for f in 0..frames {
        let range = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
        infos.push(canceller.process(&far[range.clone()], &near[range.clone()], &mut out[range]));
    }
    (out, infos)
}

pub(crate) fn frame_power<T: Copy + Into<f64>>(signal: &[T], frame: usize) -> f64 {
    let range = frame * FRAME_SAMPLES..((frame + 1) * FRAME_SAMPLES).min(signal.len());
    if range.is_empty() {
        return 0.0;
    }
    signal[range.clone()]
        .iter()
        .map(|&v| v.into() * v.into())
        .sum::<f64>()
        / range.len() as f64
}

/// dBFS of a mean power.
pub(crate) fn dbfs(power: f64) -> f64 {
    10.0 * (power / (32768.0 * 32768.0)).max(1e-12).log10()
}

/// ERLE over the frames in `frames` whose echo is audible (above −55 dBFS):
/// received energy / output energy.
pub(crate) fn erle_db(line: &Line, out: &[i16], frames: std::ops::Range<usize>) -> f64 {
    let (mut received, mut residual) = (0.0, 0.0);
    for f in frames {
        if dbfs(frame_power(&line.echo, f)) < -55.0 {
            continue;
        }
        received += frame_power(&line.near, f);
        residual += frame_power(out, f);
    }
    if received == 0.0 {
        return f64::NAN;
    }
    10.0 * (received / residual.max(1e-9)).log10()
}

/// The frame by which the far end has been active (above −45 dBFS) for `active_ms`.
pub(crate) fn after_far_activity(far: &[i16], active_ms: usize) -> usize {
    let needed = active_ms / 20;
    let mut active = 0;
    for f in 0..far.len() / FRAME_SAMPLES {
        if dbfs(frame_power(far, f)) > -45.0 {
            active += 1;
            if active >= needed {
                return f + 1;
            }
        }
    }
    panic!("far end never active for {active_ms} ms");
}

/// `signal` repeated / truncated to `len` samples.
pub(crate) fn looped(signal: &[i16], len: usize) -> Vec<i16> {
    signal.iter().copied().cycle().take(len).collect()
}

/// `signal` scaled by `gain_db`.
pub(crate) fn scaled(signal: &[i16], gain_db: f32) -> Vec<i16> {
    let gain = 10f32.powf(gain_db / 20.0);
    signal
        .iter()
        .map(|&v| (f32::from(v) * gain).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// `signal` placed at sample `start` of a silent track of `len` samples.
pub(crate) fn placed(signal: &[i16], start: usize, len: usize) -> Vec<i16> {
    let mut track = vec![0i16; len];
    for (i, &v) in signal.iter().enumerate() {
        if let Some(slot) = track.get_mut(start + i) {
            *slot = v;
        }
    }
    track
}

/// Residual-echo suppression over `frames` (dB): Σ echo² / Σ (echo − removed)², where
/// `removed = near − out` is what the canceller took away. Unlike near/out this is not
/// masked by near-end speech, so it measures the filter during double talk too.
pub(crate) fn echo_suppression_db(line: &Line, out: &[i16], frames: std::ops::Range<usize>) -> f64 {
    let (mut echo, mut residual) = (0.0, 0.0);
    let range = frames.start * FRAME_SAMPLES..(frames.end * FRAME_SAMPLES).min(out.len());
    for ((&o, &n), &e) in out[range.clone()]
        .iter()
        .zip(&line.near[range.clone()])
        .zip(&line.echo[range])
    {
        let removed = f64::from(n) - f64::from(o);
        echo += f64::from(e).powi(2);
        residual += (f64::from(e) - removed).powi(2);
    }
    10.0 * (echo / residual.max(1e-9)).log10()
}

/// How much of the near-end talker survives in `out` over `frames`, as an attenuation in
/// dB: the least-squares gain of `out` onto the clean talker, g = Σ out·s / Σ s², reported
/// as −20·log10(g). Residual echo and coding noise are uncorrelated with the talker and do
/// not count; a canceller that removes or distorts the caller does.
pub(crate) fn talker_attenuation_db(talker: &[i16], out: &[i16], frames: &[usize]) -> f64 {
    let (mut cross, mut power) = (0.0, 0.0);
    for &f in frames {
        for i in f * FRAME_SAMPLES..((f + 1) * FRAME_SAMPLES).min(out.len()) {
            cross += f64::from(out[i]) * f64::from(talker[i]);
            power += f64::from(talker[i]).powi(2);
        }
    }
    -20.0 * (cross / power).log10()
}

pub(crate) const SECOND: usize = 8000;
pub(crate) const FRAMES_PER_SECOND: usize = 50;

/// (path seed, ERL dB, bulk delay ms, dispersion ms)
pub(crate) type Case = (u64, f32, usize, usize);

pub(crate) fn far_speech(seconds: usize) -> Vec<i16> {
    looped(&prompt("prompt.wav"), seconds * SECOND)
}

/// ERLE over the second that follows the first second of far-end speech.
pub(crate) fn erle_after_one_second(case: Case) -> f64 {
    let (seed, erl, delay_ms, dispersion) = case;
    let path = echo_path(seed, dispersion, erl);
    let line = line(&far_speech(4), &[], &[(0, delay_ms * 8, &path)]);
    let (out, _, _) = run(EchoConfig::default(), &line.far, &line.near);
    let t1 = after_far_activity(&line.far, 1000);
    erle_db(&line, &out, t1..t1 + FRAMES_PER_SECOND)
}
