//! Inbound noise floor by minimum statistics over a sliding window.
//!
//! The minimum of the 20 ms frame powers over the last ≈ 2 s: speech and echo come in
//! syllables with gaps between them, line noise is always there, so the minimum follows the
//! noise and ignores the rest. A sliding window (rather than a floor that drops at once and
//! creeps up slowly) matters on real calls: they start with digital silence before the first
//! packet arrives, and a creeping floor would take most of a minute to climb from there to a
//! car's −30 dBFS — meanwhile the canceller would count the noise as echo it failed to remove.

/// Frames per sub-window (240 ms).
const SUB_FRAMES: u32 = 12;
/// Sub-windows remembered: the floor is the minimum over the last 8 × 240 ms ≈ 1.9 s.
const SUBWINDOWS: usize = 8;
/// Frames within this factor (6 dB) of the minimum are taken as noise alone for the mean.
const NOISE_BAND: f32 = 4.0;
/// Smoothing of the mean noise power per noise frame (≈ 0.5 s).
const MEAN_SMOOTHING: f32 = 0.96;

#[derive(Clone, Debug)]
pub(super) struct NoiseFloor {
    /// Minimum of each finished sub-window (∞: not seen yet).
    minima: [f32; SUBWINDOWS],
    next: usize,
    current: f32,
    frames_in_current: u32,
    /// Mean power of the frames near the minimum (0: none yet).
    mean: f32,
}

impl NoiseFloor {
    pub fn new() -> Self {
        NoiseFloor {
            minima: [f32::INFINITY; SUBWINDOWS],
            next: 0,
            current: f32::INFINITY,
            frames_in_current: 0,
            mean: 0.0,
        }
    }

    /// Adds one frame's mean power; returns the floor (0 before the first valid frame).
    pub fn push(&mut self, power: f32) -> f32 {
        if power.is_finite() && power >= 0.0 {
            self.current = self.current.min(power);
            self.frames_in_current += 1;
            if self.frames_in_current >= SUB_FRAMES {
                if let Some(slot) = self.minima.get_mut(self.next) {
                    *slot = self.current;
                }
                self.next = (self.next + 1) % SUBWINDOWS;
                self.current = f32::INFINITY;
                self.frames_in_current = 0;
            }
            let floor = self.floor();
            if power <= NOISE_BAND * floor {
                self.mean = if self.mean > 0.0 {
                    MEAN_SMOOTHING * self.mean + (1.0 - MEAN_SMOOTHING) * power
                } else {
                    power
                };
            }
            // The mean can never be below the minimum (the floor just fell) nor far above
            // it (noise that went away).
            self.mean = self.mean.clamp(floor, NOISE_BAND * floor);
        }
        self.floor()
    }

    /// Mean power of the noise: the minimum sits below it by how much the noise's frame
    /// powers spread (3 dB for white noise, 5–6 dB for car rumble), so the mean of the
    /// frames near the minimum is the better estimate of what the noise adds to a frame.
    pub fn mean(&self) -> f32 {
        self.mean
    }

    /// The minimum over the window, including the sub-window being filled.
    pub fn floor(&self) -> f32 {
        let min = self
            .minima
            .iter()
            .fold(self.current, |m, &v| if v < m { v } else { m });
        if min.is_finite() {
            min
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(floor: &mut NoiseFloor, power: f32, frames: usize) -> f32 {
        let mut last = 0.0;
        for _ in 0..frames {
            last = floor.push(power);
        }
        last
    }

    #[test]
    fn climbs_out_of_the_digital_silence_a_call_starts_with() {
        let mut f = NoiseFloor::new();
        assert_eq!(f.floor(), 0.0);
        run(&mut f, 0.0, 10);
        assert_eq!(f.floor(), 0.0);
        // Noise from here on: the silence leaves the window within 2 s.
        let after = run(&mut f, 1000.0, 100);
        assert_eq!(after, 1000.0);
    }

    #[test]
    fn falls_at_once_and_ignores_bursts_shorter_than_the_window() {
        let mut f = NoiseFloor::new();
        run(&mut f, 1000.0, 200);
        assert_eq!(f.push(500.0), 500.0);
        run(&mut f, 1000.0, 20);
        // Loud speech with one quiet frame per second: the floor stays at the gaps.
        for _ in 0..4 {
            run(&mut f, 1e6, 49);
            f.push(1000.0);
        }
        assert_eq!(f.floor(), 1000.0);
        // Continuous loud audio for longer than the window moves the floor up to it.
        assert_eq!(run(&mut f, 1e6, 120), 1e6);
    }

    #[test]
    fn mean_sits_between_the_minimum_and_the_spread_of_the_noise() {
        let mut f = NoiseFloor::new();
        // Frame powers alternating 1000 / 3000 (a ±2.4 dB spread around 2000).
        for i in 0..200 {
            f.push(if i % 2 == 0 { 1000.0 } else { 3000.0 });
        }
        assert_eq!(f.floor(), 1000.0);
        assert!((f.mean() - 2000.0).abs() < 100.0, "{}", f.mean());
        // Loud speech frames (far above the band) do not pull the mean up.
        for i in 0..40 {
            f.push(if i % 2 == 0 { 1e6 } else { 1000.0 });
        }
        assert!(f.mean() < 2000.0, "{}", f.mean());
        // Silence: the mean falls with the floor.
        run(&mut f, 0.0, 5);
        assert_eq!(f.mean(), 0.0);
    }

    #[test]
    fn ignores_garbage_powers() {
        let mut f = NoiseFloor::new();
        run(&mut f, 1000.0, 30);
        for p in [f32::NAN, f32::INFINITY, -1.0] {
            assert_eq!(f.push(p), 1000.0);
        }
    }
}
