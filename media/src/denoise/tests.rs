//! Behavioural tests of the suppressor and of the resampler pair on its own. Figures are
//! printed (run with `--nocapture`) so the report can quote them.

use super::resample::{CHUNK_48K, CHUNK_8K};
use super::*;

const RATE: f64 = 8000.0;
/// RNNoise's noise estimate needs about this long before it is judged.
const WARM_UP: usize = 4000; // 0.5 s

// ---------- signal helpers ----------

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn white(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.gaussian()).collect()
}

/// Paul Kellet's economy pink filter (−3 dB/octave within ~1 dB over the telephone band).
fn pink(len: usize, seed: u64) -> Vec<f64> {
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    white(len, seed)
        .into_iter()
        .map(|w| {
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect()
}

/// Leaky integrator: −6 dB/octave above ~13 Hz ("brown"), no DC drift.
fn brown(len: usize, seed: u64) -> Vec<f64> {
    let mut level = 0.0;
    white(len, seed)
        .into_iter()
        .map(|w| {
            level = 0.99 * level + w;
            level
        })
        .collect()
}

fn scale_to_dbfs(signal: &[f64], dbfs: f64) -> Vec<f64> {
    let target = 32768.0 * 10f64.powf(dbfs / 20.0);
    let gain = target / rms(signal);
    signal.iter().map(|x| x * gain).collect()
}

fn to_i16(signal: &[f64]) -> Vec<i16> {
    signal
        .iter()
        .map(|x| x.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn to_f64(samples: &[i16]) -> Vec<f64> {
    samples.iter().map(|&s| f64::from(s)).collect()
}

fn tone(len: usize, freq: f64, amplitude: f64, rate: f64) -> Vec<f64> {
    (0..len)
        .map(|n| amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / rate).sin())
        .collect()
}

fn energy(signal: &[f64]) -> f64 {
    signal.iter().map(|x| x * x).sum()
}

fn rms(signal: &[f64]) -> f64 {
    (energy(signal) / signal.len().max(1) as f64).sqrt()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// Lag (0..max_lag) at which `output` best matches `input`.
fn best_lag(input: &[f64], output: &[f64], max_lag: usize) -> usize {
    (0..max_lag)
        .max_by(|&a, &b| {
            let score =
                |lag: usize| -> f64 { input.iter().zip(&output[lag..]).map(|(x, y)| x * y).sum() };
            score(a).total_cmp(&score(b))
        })
        .unwrap()
}

/// PCM16 mono 8 kHz samples of the demo prompt (walks the RIFF chunks to "data").
fn prompt_speech() -> Vec<i16> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prompts/prompt.wav");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut pos = 12;
    loop {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..pos + 8 + size];
        if id == b"fmt " {
            assert_eq!(u16::from_le_bytes([body[0], body[1]]), 1, "PCM");
            assert_eq!(u16::from_le_bytes([body[2], body[3]]), 1, "mono");
            assert_eq!(u32::from_le_bytes(body[4..8].try_into().unwrap()), 8000);
            assert_eq!(u16::from_le_bytes([body[14], body[15]]), 16, "16-bit");
        }
        if id == b"data" {
            return body
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        pos += 8 + size + (size & 1);
    }
}

// ---------- running the DSP ----------

/// Runs `input` (truncated to whole 20 ms frames) through a fresh suppressor.
/// Returns the output and the per-frame voice probabilities.
fn suppress(input: &[i16]) -> (Vec<i16>, Vec<f32>) {
    let mut suppressor = NoiseSuppressor::new();
    let mut out = vec![0i16; input.len() / FRAME_SAMPLES * FRAME_SAMPLES];
    let mut probabilities = Vec::new();
    for (frame_in, frame_out) in input
        .chunks_exact(FRAME_SAMPLES)
        .zip(out.chunks_exact_mut(FRAME_SAMPLES))
    {
        probabilities.push(suppressor.process(frame_in, frame_out).unwrap());
    }
    (out, probabilities)
}

/// Bypass path: 8 kHz → 48 kHz → 8 kHz with no RNNoise (and no tilt) in between.
fn round_trip(input: &[i16]) -> Vec<i16> {
    let mut resampler = Resampler::new();
    let mut wide = [0.0f32; CHUNK_48K];
    let mut narrow = [0.0f32; CHUNK_8K];
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.chunks_exact(CHUNK_8K) {
        for (n, &s) in narrow.iter_mut().zip(chunk) {
            *n = f32::from(s);
        }
        resampler.upsample(&narrow, &mut wide);
        resampler.downsample(&wide, &mut narrow);
        out.extend(narrow.iter().map(|&s| saturate(s)));
    }
    out
}

/// Energy per 20 ms frame.
fn frame_energies(signal: &[f64]) -> Vec<f64> {
    signal.chunks_exact(FRAME_SAMPLES).map(energy).collect()
}

/// Frames of `clean` within `range_db` of its loudest frame.
fn loud_frames(clean: &[f64], range_db: f64) -> Vec<bool> {
    let energies = frame_energies(clean);
    let peak = energies.iter().copied().fold(0.0, f64::max);
    energies.iter().map(|&e| db(e / peak) > -range_db).collect()
}

// ---------- suppressor behaviour ----------

/// Attenuation in dB after the warm-up, and the mean VAD probability after it.
fn noise_attenuation(noise: &[i16]) -> (f64, f32) {
    let (out, probabilities) = suppress(noise);
    let delay = NoiseSuppressor::DELAY_SAMPLES;
    let input_energy = energy(&to_f64(&noise[WARM_UP..out.len() - delay]));
    let output_energy = energy(&to_f64(&out[WARM_UP + delay..]));
    let warm_frames = WARM_UP / FRAME_SAMPLES;
    let mean_probability = probabilities.iter().skip(warm_frames).sum::<f32>()
        / (probabilities.len() - warm_frames) as f32;
    (-db(output_energy / input_energy), mean_probability)
}

#[test]
fn white_noise_at_minus_30_dbfs_is_attenuated_by_at_least_15_db() {
    let noise = to_i16(&scale_to_dbfs(&white(8000 * 4, 1), -30.0));
    let (attenuation, mean_probability) = noise_attenuation(&noise);
    println!(
        "white noise -30 dBFS: attenuation {attenuation:.1} dB, mean VAD p {mean_probability:.3}"
    );
    assert!(attenuation >= 15.0, "only {attenuation:.1} dB");
    assert!(
        mean_probability < 0.3,
        "noise looks like voice: {mean_probability}"
    );
}

/// Stock RNNoise passes white noise louder than about −35 dBFS almost untouched; the tilt
/// in `tilt.rs` is what makes every level here pass.
#[test]
fn white_pink_and_brown_noise_are_attenuated_at_every_level() {
    for (name, generator) in [
        ("white", white as fn(usize, u64) -> Vec<f64>),
        ("pink", pink),
        ("brown", brown),
    ] {
        let mut figures = String::new();
        for dbfs in [-55.0, -45.0, -35.0, -25.0, -15.0] {
            let noise = to_i16(&scale_to_dbfs(&generator(8000 * 3, 21), dbfs));
            let (attenuation, _) = noise_attenuation(&noise);
            figures += &format!(" {dbfs} dBFS: {attenuation:.1} dB;");
            assert!(
                attenuation >= 15.0,
                "{name} at {dbfs} dBFS: {attenuation:.1} dB"
            );
        }
        println!("{name} noise:{figures}");
    }
}

#[test]
fn speech_energy_over_voiced_frames_stays_within_3_db() {
    let speech = prompt_speech();
    let (out, probabilities) = suppress(&speech);
    let delay = NoiseSuppressor::DELAY_SAMPLES;
    let clean = to_f64(&speech[..out.len() - delay]);
    let processed = to_f64(&out[delay..]);
    let voiced = loud_frames(&clean, 25.0);
    let (mut clean_energy, mut processed_energy) = (0.0, 0.0);
    let mut voiced_probability = Vec::new();
    for (i, (c, p)) in frame_energies(&clean)
        .into_iter()
        .zip(frame_energies(&processed))
        .enumerate()
    {
        if voiced[i] {
            clean_energy += c;
            processed_energy += p;
            voiced_probability.push(probabilities[i]);
        }
    }
    let change = db(processed_energy / clean_energy);
    let mean_probability = voiced_probability.iter().sum::<f32>() / voiced_probability.len() as f32;
    println!(
        "speech: {} voiced frames, energy change {change:+.2} dB, mean VAD p {mean_probability:.3}",
        voiced_probability.len()
    );
    assert!(voiced_probability.len() > 100);
    assert!(
        change.abs() <= 3.0,
        "speech energy changed by {change:.2} dB"
    );
    assert!(
        mean_probability > 0.5,
        "voice not recognised: {mean_probability}"
    );
}

/// SNR estimated on the output: noise power from the frames where the clean speech is in
/// a pause, speech power = power over voiced frames minus that noise power.
fn estimated_snr_db(signal: &[f64], voiced: &[bool], pause: &[bool]) -> f64 {
    let energies = frame_energies(signal);
    let mean_over = |mask: &[bool]| {
        let picked: Vec<f64> = energies
            .iter()
            .zip(mask)
            .skip(WARM_UP / FRAME_SAMPLES)
            .filter(|(_, &m)| m)
            .map(|(e, _)| *e)
            .collect();
        assert!(picked.len() > 20, "too few frames: {}", picked.len());
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    let noise = mean_over(pause);
    let speech = (mean_over(voiced) - noise).max(1e-9);
    db(speech / noise)
}

#[test]
fn speech_in_white_pink_and_brown_noise_at_10_db_snr_gains_snr() {
    let speech = prompt_speech();
    let clean = to_f64(&speech);
    let voiced = loud_frames(&clean, 25.0);
    let pause = loud_frames(&clean, 50.0)
        .iter()
        .map(|l| !l)
        .collect::<Vec<_>>();
    let voiced_power = {
        let e = frame_energies(&clean);
        let picked: Vec<f64> = e
            .iter()
            .zip(&voiced)
            .filter(|(_, &v)| v)
            .map(|(e, _)| *e)
            .collect();
        picked.iter().sum::<f64>() / (picked.len() * FRAME_SAMPLES) as f64
    };
    for (name, noise) in [
        ("white", white(clean.len(), 5)),
        ("pink", pink(clean.len(), 7)),
        ("brown", brown(clean.len(), 9)),
    ] {
        // 10 dB below the speech power of voiced frames.
        let gain = (voiced_power / 10.0).sqrt() / rms(&noise);
        let noisy: Vec<f64> = clean
            .iter()
            .zip(&noise)
            .map(|(s, n)| s + gain * n)
            .collect();
        let noisy = to_i16(&noisy);
        let (out, _) = suppress(&noisy);
        let delay = NoiseSuppressor::DELAY_SAMPLES;
        let frames = (out.len() - delay) / FRAME_SAMPLES;
        let snr_in = estimated_snr_db(&to_f64(&noisy[..frames * FRAME_SAMPLES]), &voiced, &pause);
        let snr_out = estimated_snr_db(
            &to_f64(&out[delay..delay + frames * FRAME_SAMPLES]),
            &voiced,
            &pause,
        );
        println!("{name} noise: SNR in {snr_in:.1} dB, out {snr_out:.1} dB");
        assert!((snr_in - 10.0).abs() < 1.5, "{name}: input SNR {snr_in:.1}");
        assert!(
            snr_out > snr_in + 6.0,
            "{name}: {snr_in:.1} -> {snr_out:.1} dB"
        );
    }
}

#[test]
fn reported_delay_matches_cross_correlation_on_speech() {
    let speech = prompt_speech();
    let (out, _) = suppress(&speech);
    let lag = best_lag(&to_f64(&speech[..out.len() - 300]), &to_f64(&out), 300);
    println!(
        "suppressor: measured lag {lag}, reported {}",
        NoiseSuppressor::new().delay_samples()
    );
    assert_eq!(lag, NoiseSuppressor::new().delay_samples());
    assert_eq!(lag, 95);
}

#[test]
fn silence_in_gives_exact_silence_out() {
    let (out, probabilities) = suppress(&vec![0i16; 8000 * 2]);
    assert!(out.iter().all(|&s| s == 0));
    assert!(probabilities
        .iter()
        .all(|p| p.is_finite() && *p >= 0.0 && *p < 0.1));
}

#[test]
fn output_returns_to_exact_silence_after_speech_stops() {
    let mut input = prompt_speech()[..8000].to_vec();
    input.extend(std::iter::repeat_n(0i16, 8000));
    let (out, probabilities) = suppress(&input);
    let last_nonzero = out.iter().rposition(|&s| s != 0).unwrap();
    let tail_ms = (last_nonzero + 1).saturating_sub(8000 + NoiseSuppressor::DELAY_SAMPLES) / 8;
    println!("output silent {tail_ms} ms after the delayed end of speech");
    // RNNoise's input high-pass decays slowly; the rest flushes within one frame.
    assert!(tail_ms < 150, "tail {tail_ms} ms");
    assert!(probabilities.iter().all(|p| p.is_finite()));
}

#[test]
fn full_scale_input_saturates_without_nan_or_panic() {
    let mut rng = Rng(3);
    let mut extreme: Vec<i16> = (0..8000)
        .map(|_| {
            if rng.uniform() < 0.5 {
                i16::MIN
            } else {
                i16::MAX
            }
        })
        .collect();
    // A full-scale 4 kHz (Nyquist) square wave and a clipped 1 kHz square wave.
    extreme.extend((0..8000).map(|n| if n % 2 == 0 { i16::MAX } else { i16::MIN }));
    extreme.extend((0..8000).map(|n| if n % 8 < 4 { i16::MAX } else { i16::MIN }));
    let (out, probabilities) = suppress(&extreme);
    assert_eq!(out.len(), extreme.len());
    assert!(probabilities
        .iter()
        .all(|p| p.is_finite() && (0.0..=1.0).contains(p)));
    // The suppressor's output stays a plausible audio signal, not wrapped garbage.
    assert!(rms(&to_f64(&out)) < 40_000.0);
}

#[test]
fn chunking_does_not_change_the_output() {
    let speech = prompt_speech()[..8000].to_vec();
    let (by_20ms, _) = suppress(&speech);
    let mut suppressor = NoiseSuppressor::new();
    let mut by_10ms = vec![0i16; speech.len()];
    for (i, o) in speech
        .chunks_exact(CHUNK_SAMPLES)
        .zip(by_10ms.chunks_exact_mut(CHUNK_SAMPLES))
    {
        suppressor.process(i, o).unwrap();
    }
    let mut suppressor = NoiseSuppressor::new();
    let mut by_40ms = vec![0i16; speech.len()];
    for (i, o) in speech.chunks_exact(320).zip(by_40ms.chunks_exact_mut(320)) {
        suppressor.process(i, o).unwrap();
    }
    assert_eq!(by_20ms, by_10ms);
    assert_eq!(by_20ms, by_40ms);
}

#[test]
fn bad_frame_lengths_are_rejected_and_leave_output_untouched() {
    let mut suppressor = NoiseSuppressor::new();
    let input = [100i16; 400];
    let mut out = [7i16; 400];
    for (n_in, n_out) in [
        (159, 159),
        (161, 161),
        (160, 80),
        (80, 160),
        (1, 1),
        (160, 0),
    ] {
        let err = suppressor
            .process(&input[..n_in], &mut out[..n_out])
            .unwrap_err();
        assert_eq!(
            err,
            DenoiseError::FrameLength {
                input: n_in,
                output: n_out
            }
        );
        assert!(err.to_string().contains("multiple of 80"));
    }
    assert!(out.iter().all(|&s| s == 7));
    assert_eq!(suppressor.process(&[], &mut []), Ok(0.0));
    assert!(suppressor.process(&input[..240], &mut out[..240]).is_ok());
}

#[test]
fn saturate_clips_rounds_and_zeroes_nan() {
    assert_eq!(saturate(40_000.0), i16::MAX);
    assert_eq!(saturate(-40_000.0), i16::MIN);
    assert_eq!(saturate(1.6), 2);
    assert_eq!(saturate(-1.6), -2);
    assert_eq!(saturate(f32::NAN), 0);
    assert_eq!(saturate(f32::INFINITY), i16::MAX);
}

#[test]
fn suppressor_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<NoiseSuppressor>();
}

// ---------- resampler on its own ----------

#[test]
fn resampler_passes_a_1_khz_tone_with_under_half_a_db_loss() {
    let input = to_i16(&tone(8000, 1000.0, 10_000.0, RATE));
    let out = round_trip(&input);
    let delay = Resampler::new().delay_samples();
    let loss =
        -db(energy(&to_f64(&out[800 + delay..]))
            / energy(&to_f64(&input[800..input.len() - delay])));
    println!("resampler: 1 kHz loss {loss:.3} dB");
    assert!(loss.abs() < 0.5, "{loss:.3} dB");
    // The sample-by-sample match shows it is the same tone, delayed, not just the same level.
    let error: Vec<f64> = out[800 + delay..]
        .iter()
        .zip(&input[800..])
        .map(|(&o, &i)| f64::from(o) - f64::from(i))
        .collect();
    assert!(db(energy(&error) / energy(&to_f64(&input[800..]))) < -40.0);
}

#[test]
fn resampler_delay_matches_cross_correlation_lag() {
    let noise = to_i16(&scale_to_dbfs(&white(8000, 5), -20.0));
    let out = round_trip(&noise);
    let lag = best_lag(&to_f64(&noise[..out.len() - 100]), &to_f64(&out), 100);
    println!(
        "resampler: measured lag {lag}, reported {}",
        Resampler::new().delay_samples()
    );
    assert_eq!(lag, Resampler::new().delay_samples());
    assert_eq!(lag, 15);
}

#[test]
fn resampler_keeps_the_upper_voice_band() {
    let input = to_i16(&tone(8000, 3000.0, 10_000.0, RATE));
    let out = round_trip(&input);
    let delay = Resampler::new().delay_samples();
    let change =
        db(energy(&to_f64(&out[800 + delay..]))
            / energy(&to_f64(&input[800..input.len() - delay])));
    assert!(change > -0.8 && change < 0.1, "3 kHz: {change:.2} dB");
}

/// Power of `signal` at `freq` (single-bin DFT), for telling a tone from its image.
fn tone_power(signal: &[f32], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let (re, im) = signal
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(re, im), (n, &x)| {
            let x = f64::from(x);
            (re + x * (w * n as f64).cos(), im - x * (w * n as f64).sin())
        });
    re * re + im * im
}

#[test]
fn upsampler_suppresses_the_7_khz_image_of_a_1_khz_tone() {
    let input = to_i16(&tone(8000, 1000.0, 10_000.0, RATE));
    let mut resampler = Resampler::new();
    let mut wide = [0.0f32; CHUNK_48K];
    let mut collected = Vec::new();
    for chunk in input.chunks_exact(CHUNK_8K) {
        let chunk: Vec<f32> = chunk.iter().map(|&s| f32::from(s)).collect();
        resampler.upsample(chunk.as_slice().try_into().unwrap(), &mut wide);
        collected.extend_from_slice(&wide);
    }
    let steady = &collected[4800..];
    let rejection = db(tone_power(steady, 7000.0, 48_000.0) / tone_power(steady, 1000.0, 48_000.0));
    println!("upsampler: 7 kHz image at {rejection:.1} dB");
    assert!(rejection < -55.0, "image only {rejection:.1} dB down");
}

#[test]
fn downsampler_rejects_a_48_khz_tone_that_would_alias() {
    // 7 kHz at 48 kHz would fold to 1 kHz at 8 kHz without the anti-alias filter.
    let wide_tone = tone(48_000, 7000.0, 10_000.0, 48_000.0);
    let mut resampler = Resampler::new();
    let mut chunk_out = [0.0f32; CHUNK_8K];
    let mut out = Vec::new();
    for chunk in wide_tone.chunks_exact(CHUNK_48K) {
        let chunk: Vec<f32> = chunk.iter().map(|&x| x as f32).collect();
        resampler.downsample(chunk.as_slice().try_into().unwrap(), &mut chunk_out);
        out.extend(chunk_out.iter().map(|&s| f64::from(s)));
    }
    let rejection = db(energy(&out[800..]) / (10_000.0f64.powi(2) / 2.0 * 7200.0));
    println!("downsampler: 7 kHz alias at {rejection:.1} dB");
    assert!(rejection < -55.0, "alias only {rejection:.1} dB down");
}

#[test]
fn resampler_saturates_full_scale_square_wave_instead_of_wrapping() {
    // 500 Hz square at full scale: band-limiting overshoots (Gibbs), which must clip.
    let input: Vec<i16> = (0..8000)
        .map(|n| if n % 16 < 8 { i16::MAX } else { i16::MIN })
        .collect();
    let out = round_trip(&input);
    let delay = Resampler::new().delay_samples();
    assert!(
        out.contains(&i16::MAX) && out.contains(&i16::MIN),
        "no overshoot clipped"
    );
    // Mid-plateau samples keep the input's sign and stay near full scale; wrapping would
    // flip them.
    for n in (800..out.len() - delay).filter(|n| matches!(n % 8, 3..=5)) {
        let expected = f64::from(input[n]);
        let got = f64::from(out[n + delay]);
        assert!(expected * got > 0.0 && got.abs() > 28_000.0, "n={n}: {got}");
    }
}

#[test]
fn resampler_silence_stays_exactly_zero() {
    assert!(round_trip(&[0i16; 1600]).iter().all(|&s| s == 0));
}
