//! Synthetic noise beds for the corpus (8 kHz, f64 samples in 16-bit scale) and level tools.
//!
//! Every generator is a pure function of its `Rng`, so a seed reproduces the bed exactly. Beds
//! come out at an arbitrary level; `scale_to_dbfs` sets the level the corpus asks for.
//! dBFS here is RMS relative to 32768 (a full-scale square wave is 0 dBFS).

use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

use super::rng::Rng;

pub const RATE: f64 = 8000.0;
/// Analysis frame for levels (20 ms, one G.711 packet).
const FRAME: usize = 160;

/// RMS of `x` in dBFS (−200 for silence).
pub fn rms_dbfs(x: &[f64]) -> f64 {
    if x.is_empty() {
        return -200.0;
    }
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    power_dbfs(ms)
}

fn power_dbfs(mean_square: f64) -> f64 {
    if mean_square <= 0.0 {
        -200.0
    } else {
        10.0 * (mean_square / (32768.0 * 32768.0)).log10()
    }
}

/// Active speech level (a simplified P.56): the RMS over the 20 ms frames whose level is within
/// 35 dB of the loudest frame, so pauses inside an utterance do not dilute it.
pub fn active_level_dbfs(x: &[f64]) -> f64 {
    let frames: Vec<f64> = x
        .chunks(FRAME)
        .map(|f| f.iter().map(|v| v * v).sum::<f64>() / f.len() as f64)
        .collect();
    let loudest = frames.iter().copied().fold(0.0, f64::max);
    let floor = loudest * 10f64.powf(-3.5);
    let active: Vec<f64> = frames
        .into_iter()
        .filter(|&p| p > floor && p > 0.0)
        .collect();
    if active.is_empty() {
        return -200.0;
    }
    power_dbfs(active.iter().sum::<f64>() / active.len() as f64)
}

/// Scales `x` in place so that `measure(x)` becomes `target_dbfs`; returns the gain applied
/// (0 for a silent input, which stays silent).
pub fn scale_to(x: &mut [f64], target_dbfs: f64, measure: fn(&[f64]) -> f64) -> f64 {
    let now = measure(x);
    if now <= -199.0 {
        return 0.0;
    }
    let gain = 10f64.powf((target_dbfs - now) / 20.0);
    for v in x.iter_mut() {
        *v *= gain;
    }
    gain
}

/// `scale_to` with plain RMS (noise beds).
pub fn scale_to_dbfs(x: &mut [f64], target_dbfs: f64) -> f64 {
    scale_to(x, target_dbfs, rms_dbfs)
}

/// One-pole low-pass in place (`cutoff_hz`).
pub fn lowpass(x: &mut [f64], cutoff_hz: f64) {
    let a = (-TAU * cutoff_hz / RATE).exp();
    let mut y = 0.0;
    for v in x.iter_mut() {
        y = (1.0 - a) * *v + a * y;
        *v = y;
    }
}

/// One-pole high-pass in place (`cutoff_hz`), removes DC and rumble.
pub fn highpass(x: &mut [f64], cutoff_hz: f64) {
    let a = (-TAU * cutoff_hz / RATE).exp();
    let (mut px, mut py) = (0.0, 0.0);
    for v in x.iter_mut() {
        let y = a * (py + *v - px);
        px = *v;
        py = y;
        *v = y;
    }
}

pub fn white(rng: &mut Rng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.normal()).collect()
}

/// Pink (1/f) noise, Paul Kellet's economy filter.
pub fn pink(rng: &mut Rng, len: usize) -> Vec<f64> {
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    (0..len)
        .map(|_| {
            let w = rng.normal();
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect()
}

/// Brown (1/f²) noise: leaky integrated white noise, high-passed at 20 Hz against drift.
pub fn brown(rng: &mut Rng, len: usize) -> Vec<f64> {
    let mut y = 0.0;
    let mut out: Vec<f64> = (0..len)
        .map(|_| {
            y = 0.995 * y + rng.normal();
            y
        })
        .collect();
    highpass(&mut out, 20.0);
    out
}

/// Adds `gain · src` into `dst` from `at` (clipped to `dst`'s length).
pub fn add_into(dst: &mut [f64], src: &[f64], at: usize, gain: f64) {
    if let Some(slot) = dst.get_mut(at..) {
        for (d, s) in slot.iter_mut().zip(src) {
            *d += gain * s;
        }
    }
}

/// Car interior: brown rumble + engine firing harmonics whose RPM drifts + a little road hiss.
pub fn car(rng: &mut Rng, len: usize) -> (Vec<f64>, String) {
    let mut out = brown(rng, len);
    lowpass(&mut out, 600.0);
    scale_to_dbfs(&mut out, -20.0);
    let rpm = rng.range(1400.0, 3200.0);
    let firing = rpm / 60.0 * 2.0; // four-stroke, four cylinders: two firings per revolution
    let wobble_hz = rng.range(0.1, 0.3);
    let mut phase = 0.0;
    let mut engine = vec![0.0; len];
    for (i, e) in engine.iter_mut().enumerate() {
        let t = i as f64 / RATE;
        let f = firing * (1.0 + 0.06 * (TAU * wobble_hz * t).sin());
        phase += TAU * f / RATE;
        *e = (1..=6)
            .map(|k| (phase * f64::from(k)).sin() / f64::from(k))
            .sum();
    }
    scale_to_dbfs(&mut engine, -26.0);
    let mut hiss = pink(rng, len);
    highpass(&mut hiss, 1000.0);
    scale_to_dbfs(&mut hiss, -36.0);
    for ((o, e), h) in out.iter_mut().zip(&engine).zip(&hiss) {
        *o += e + h;
    }
    (out, format!("rpm {rpm:.0}, firing {firing:.1} Hz"))
}

/// HVAC: mains hum (50 or 60 Hz) with harmonics, fan broadband noise and a slow flutter.
pub fn hvac(rng: &mut Rng, len: usize) -> (Vec<f64>, String) {
    let mains = if rng.chance(0.5) { 50.0 } else { 60.0 };
    let amps: Vec<f64> = (1..=8)
        .map(|k| {
            let odd = if k % 2 == 1 { 1.0 } else { 0.5 };
            odd * rng.range(0.3, 1.0) / f64::from(k).sqrt()
        })
        .collect();
    let mut hum: Vec<f64> = (0..len)
        .map(|i| {
            let t = i as f64 / RATE;
            amps.iter()
                .enumerate()
                .map(|(k, a)| a * (TAU * mains * (k + 1) as f64 * t).sin())
                .sum()
        })
        .collect();
    scale_to_dbfs(&mut hum, -24.0);
    let mut fan = pink(rng, len);
    lowpass(&mut fan, rng.range(800.0, 2000.0));
    scale_to_dbfs(&mut fan, -22.0);
    let mut air = white(rng, len);
    scale_to_dbfs(&mut air, -38.0);
    let flutter_hz = rng.range(2.0, 8.0);
    let out = (0..len)
        .map(|i| {
            let t = i as f64 / RATE;
            let flutter = 1.0 + 0.15 * (TAU * flutter_hz * t).sin();
            hum[i] + fan[i] * flutter + air[i]
        })
        .collect();
    (
        out,
        format!("mains {mains:.0} Hz, fan flutter {flutter_hz:.1} Hz"),
    )
}

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// A plucked/organ tone: a few harmonics under an attack–decay envelope.
fn tone(out: &mut [f64], at: usize, len: usize, hz: f64, gain: f64, decay_s: f64, partials: u32) {
    let attack = 80.min(len.max(1));
    for i in 0..len {
        let Some(o) = out.get_mut(at + i) else { break };
        let t = i as f64 / RATE;
        let env = (i as f64 / attack as f64).min(1.0) * (-t / decay_s).exp();
        let s: f64 = (1..=partials)
            .filter(|&k| hz * f64::from(k) < 3800.0)
            .map(|k| (TAU * hz * f64::from(k) * t).sin() / f64::from(k))
            .sum();
        *o += gain * env * s;
    }
}

fn noise_hit(out: &mut [f64], rng: &mut Rng, at: usize, len: usize, gain: f64, bright: bool) {
    let mut prev = 0.0;
    for i in 0..len {
        let Some(o) = out.get_mut(at + i) else { break };
        let w = rng.normal();
        // First difference brightens (hi-hat); plain noise for the snare body.
        let s = if bright { w - prev } else { w };
        prev = w;
        *o += gain * s * (-(i as f64) / (len as f64 / 4.0)).exp();
    }
}

/// Music: chord pads, a bass line, a pentatonic melody with rests, and drums, at a random
/// tempo and key — tonal, rhythmic and sometimes voice-like, the classic hold-music false alarm.
pub fn music(rng: &mut Rng, len: usize) -> (Vec<f64>, String) {
    let bpm = rng.range(80.0, 140.0);
    let beat = (60.0 / bpm * RATE) as usize;
    let root = 45.0 + rng.below(12) as f64;
    let progressions: [[f64; 4]; 4] = [
        [0.0, 7.0, 9.0, 5.0],
        [0.0, 5.0, 7.0, 0.0],
        [9.0, 5.0, 0.0, 7.0],
        [0.0, 9.0, 5.0, 7.0],
    ];
    let prog = *rng.pick(&progressions).unwrap_or(&progressions[0]);
    let pentatonic = [0.0, 2.0, 4.0, 7.0, 9.0, 12.0, 14.0, 16.0];
    let mut out = vec![0.0; len];
    let mut bar = 0usize;
    while bar * 4 * beat < len {
        let at = bar * 4 * beat;
        let degree = prog[bar % 4];
        let minor = degree == 9.0;
        let third = if minor { 3.0 } else { 4.0 };
        for interval in [0.0, third, 7.0] {
            let hz = midi_hz(root + 12.0 + degree + interval);
            tone(&mut out, at, 4 * beat, hz, 0.25, 1.5, 4);
        }
        for b in 0..4 {
            let hz = midi_hz(root - 12.0 + degree + if b % 2 == 1 { 7.0 } else { 0.0 });
            tone(&mut out, at + b * beat, beat, hz, 0.5, 0.4, 3);
            // Kick on 1 and 3, snare on 2 and 4, hi-hat on every eighth.
            if b % 2 == 0 {
                tone(&mut out, at + b * beat, beat / 3, 55.0, 1.2, 0.08, 1);
            } else {
                noise_hit(
                    &mut out,
                    rng,
                    at + b * beat,
                    (0.08 * RATE) as usize,
                    0.5,
                    false,
                );
            }
            for half in 0..2 {
                let hat = at + b * beat + half * beat / 2;
                noise_hit(&mut out, rng, hat, (0.02 * RATE) as usize, 0.25, true);
            }
        }
        for eighth in 0..8 {
            if rng.chance(0.25) {
                continue;
            }
            let note = root + 24.0 + *rng.pick(&pentatonic).unwrap_or(&0.0);
            let start = at + eighth * beat / 2;
            tone(&mut out, start, beat / 2, midi_hz(note), 0.45, 0.35, 5);
        }
        bar += 1;
    }
    (out, format!("{bpm:.0} bpm, root midi {root:.0}"))
}

/// What kind of short burst, for the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BurstKind {
    Click,
    Cough,
    Knock,
    Pop,
}

/// One burst placed in a bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstEvent {
    pub kind: BurstKind,
    pub start_ms: f64,
    pub duration_ms: f64,
}

/// Two-pole resonator in place (a formant for coughs).
fn resonate(x: &mut [f64], hz: f64, bandwidth_hz: f64) {
    let r = (-std::f64::consts::PI * bandwidth_hz / RATE).exp();
    let a1 = 2.0 * r * (TAU * hz / RATE).cos();
    let a2 = -r * r;
    let (mut y1, mut y2) = (0.0, 0.0);
    for v in x.iter_mut() {
        let y = (1.0 - r) * *v + a1 * y1 + a2 * y2;
        y2 = y1;
        y1 = y;
        *v = y;
    }
}

/// Highest sample value of a burst (≈ −1.4 dBFS peak).
const BURST_PEAK_CAP: f64 = 28_000.0;

/// Short (< 200 ms) non-speech bursts — clicks, coughs, knocks, pops — every 0.4–2 s over a
/// faint floor. Each burst's RMS over its own length is `burst_dbfs`.
pub fn bursts(rng: &mut Rng, len: usize, burst_dbfs: f64) -> (Vec<f64>, Vec<BurstEvent>) {
    let mut out = pink(rng, len);
    scale_to_dbfs(&mut out, -62.0);
    let mut events = Vec::new();
    let mut at = (rng.range(0.3, 1.5) * RATE) as usize;
    while at < len {
        let kind = *rng
            .pick(&[
                BurstKind::Click,
                BurstKind::Cough,
                BurstKind::Knock,
                BurstKind::Pop,
            ])
            .unwrap_or(&BurstKind::Click);
        let dur_s = match kind {
            BurstKind::Click => rng.range(0.002, 0.008),
            BurstKind::Cough => rng.range(0.08, 0.19),
            BurstKind::Knock => rng.range(0.03, 0.15),
            BurstKind::Pop => rng.range(0.02, 0.12),
        };
        let n = ((dur_s * RATE) as usize).max(8);
        let mut burst: Vec<f64> = match kind {
            BurstKind::Click => (0..n)
                .map(|i| rng.normal() * (-(i as f64) / 6.0).exp())
                .collect(),
            BurstKind::Cough => {
                let mut b = white(rng, n);
                let mut second = b.clone();
                resonate(&mut b, rng.range(400.0, 900.0), 250.0);
                resonate(&mut second, rng.range(1200.0, 2400.0), 400.0);
                let attack = n / 10 + 1;
                for (i, (v, s)) in b.iter_mut().zip(&second).enumerate() {
                    let env = (i as f64 / attack as f64).min(1.0)
                        * (-(i as f64) / (n as f64 / 3.0)).exp();
                    *v = (*v + 0.6 * s) * env;
                }
                b
            }
            BurstKind::Knock => {
                let hz = rng.range(120.0, 420.0);
                (0..n)
                    .map(|i| {
                        let t = i as f64 / RATE;
                        (TAU * hz * t).sin() * (-(i as f64) / (n as f64 / 5.0)).exp()
                    })
                    .collect()
            }
            BurstKind::Pop => (0..n)
                .map(|i| rng.normal() * (-(i as f64) / (n as f64 / 3.0)).exp())
                .collect(),
        };
        scale_to_dbfs(&mut burst, burst_dbfs + rng.range(-4.0, 4.0));
        // Clicks have a high crest factor: cap the peak so a burst never clips.
        let peak = burst.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if peak > BURST_PEAK_CAP {
            burst.iter_mut().for_each(|v| *v *= BURST_PEAK_CAP / peak);
        }
        add_into(&mut out, &burst, at, 1.0);
        events.push(BurstEvent {
            kind,
            start_ms: at as f64 / 8.0,
            duration_ms: n as f64 / 8.0,
        });
        at += n + (rng.range(0.4, 2.0) * RATE) as usize;
    }
    (out, events)
}

/// Resamples by linear interpolation: `factor` > 1 raises pitch and speeds up (for babble
/// talkers that should not all sound like the same voice).
pub fn change_speed(x: &[f64], factor: f64) -> Vec<f64> {
    if x.is_empty() || factor <= 0.0 {
        return Vec::new();
    }
    let n = ((x.len() as f64) / factor) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * factor;
            let k = pos as usize;
            let frac = pos - k as f64;
            let a = x.get(k).copied().unwrap_or(0.0);
            let b = x.get(k + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

/// Babble: each talker (a list of clips) speaks them back to back with short gaps from a random
/// start, looping to fill `len`; talkers are summed with ±4 dB random gains.
pub fn babble(rng: &mut Rng, len: usize, talkers: &[Vec<Vec<f64>>]) -> Vec<f64> {
    let mut out = vec![0.0; len];
    for clips in talkers {
        if clips.iter().all(|c| c.is_empty()) {
            continue;
        }
        let speed = rng.range(0.85, 1.2);
        let clips: Vec<Vec<f64>> = clips.iter().map(|c| change_speed(c, speed)).collect();
        let mut voice = vec![0.0; len];
        let mut at = rng.below((2.0 * RATE) as usize);
        let mut k = rng.below(clips.len());
        while at < len {
            let Some(clip) = clips.get(k % clips.len()) else {
                break;
            };
            let mut c = clip.clone();
            scale_to(&mut c, -26.0, active_level_dbfs);
            add_into(&mut voice, &c, at, 1.0);
            at += clip.len() + (rng.range(0.05, 0.4) * RATE) as usize;
            k += 1;
        }
        let gain = 10f64.powf(rng.range(-4.0, 4.0) / 20.0);
        add_into(&mut out, &voice, 0, gain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band_power(x: &[f64], hz: f64) -> f64 {
        // Goertzel-like single bin correlation.
        let (mut re, mut im) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            let ph = TAU * hz * i as f64 / RATE;
            re += v * ph.cos();
            im += v * ph.sin();
        }
        (re * re + im * im) / (x.len() as f64).powi(2)
    }

    #[test]
    fn levels_and_scaling() {
        let mut x: Vec<f64> = (0..8000)
            .map(|i| if i % 2 == 0 { 1000.0 } else { -1000.0 })
            .collect();
        assert!((rms_dbfs(&x) - 20.0 * (1000.0f64 / 32768.0).log10()).abs() < 1e-9);
        scale_to_dbfs(&mut x, -30.0);
        assert!((rms_dbfs(&x) + 30.0).abs() < 1e-9);
        assert_eq!(rms_dbfs(&[]), -200.0);
        let mut silent = vec![0.0; 100];
        assert_eq!(scale_to_dbfs(&mut silent, -10.0), 0.0);
        // Active level ignores the silent half of an utterance, plain RMS does not.
        let mut speechy = vec![0.0; 16000];
        for (i, v) in speechy.iter_mut().take(8000).enumerate() {
            *v = 3000.0 * (TAU * 200.0 * i as f64 / RATE).sin();
        }
        let active = active_level_dbfs(&speechy);
        assert!((active - rms_dbfs(&speechy) - 3.01).abs() < 0.1, "{active}");
        scale_to(&mut speechy, -26.0, active_level_dbfs);
        assert!((active_level_dbfs(&speechy) + 26.0).abs() < 1e-9);
    }

    #[test]
    fn generators_are_deterministic_and_nonsilent() {
        let len = 8000 * 3;
        for seed in [1, 2] {
            let a = music(&mut Rng::new(seed), len);
            let b = music(&mut Rng::new(seed), len);
            assert_eq!(a, b);
            let mut bed = a.0.clone();
            assert!(rms_dbfs(&bed) > -150.0, "music is silent");
            scale_to_dbfs(&mut bed, -25.0);
            assert!((rms_dbfs(&bed) + 25.0).abs() < 1e-9);
            assert_eq!(car(&mut Rng::new(seed), len), car(&mut Rng::new(seed), len));
            assert_eq!(
                hvac(&mut Rng::new(seed), len),
                hvac(&mut Rng::new(seed), len)
            );
        }
        assert_ne!(
            music(&mut Rng::new(1), len).0,
            music(&mut Rng::new(2), len).0
        );
        assert_eq!(pink(&mut Rng::new(3), 100).len(), 100);
    }

    #[test]
    fn hvac_hums_at_the_mains_frequency() {
        let (x, detail) = hvac(&mut Rng::new(11), 8000 * 2);
        let mains = if detail.contains("50 Hz") { 50.0 } else { 60.0 };
        let other = if mains == 50.0 { 60.0 } else { 50.0 };
        assert!(
            band_power(&x, mains) > 20.0 * band_power(&x, other),
            "{detail}"
        );
    }

    #[test]
    fn car_noise_is_low_frequency_heavy() {
        let (x, _) = car(&mut Rng::new(4), 8000 * 2);
        let mut high = x.clone();
        highpass(&mut high, 1500.0);
        assert!(rms_dbfs(&x) - rms_dbfs(&high) > 10.0);
    }

    #[test]
    fn bursts_are_short_and_where_the_events_say() {
        let len = 8000 * 10;
        let (x, events) = bursts(&mut Rng::new(8), len, -20.0);
        assert!(events.len() >= 4, "{events:?}");
        for e in &events {
            assert!(e.duration_ms < 200.0, "{e:?}");
            let at = (e.start_ms * 8.0) as usize;
            let n = (e.duration_ms * 8.0) as usize;
            let inside = rms_dbfs(&x[at..at + n]);
            assert!(inside > -40.0, "burst {e:?} at {inside:.1} dBFS");
        }
        // Between bursts only the faint floor.
        let first = (events[0].start_ms * 8.0) as usize;
        assert!(rms_dbfs(&x[..first]) < -55.0);
        for pair in events.windows(2) {
            assert!(pair[1].start_ms >= pair[0].start_ms + pair[0].duration_ms + 399.0);
        }
    }

    #[test]
    fn babble_mixes_every_talker_and_speed_change_resamples() {
        let clip: Vec<f64> = (0..4000)
            .map(|i| 1000.0 * (TAU * 300.0 * i as f64 / RATE).sin())
            .collect();
        assert_eq!(change_speed(&clip, 2.0).len(), 2000);
        assert!(change_speed(&[], 1.0).is_empty());
        let talkers = vec![
            vec![clip.clone()],
            vec![clip.clone(), clip],
            vec![Vec::new()],
        ];
        let len = 8000 * 4;
        let a = babble(&mut Rng::new(5), len, &talkers);
        assert_eq!(a, babble(&mut Rng::new(5), len, &talkers));
        assert_eq!(a.len(), len);
        // Fills the whole bed (talkers loop), not just the first clip.
        assert!(rms_dbfs(&a[len - 8000..]) > -45.0);
    }
}
