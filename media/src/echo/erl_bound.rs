//! An upper bound on the echo return gain, measured without the adaptive filter.
//!
//! Until the filter has converged the canceller cannot measure the echo return loss, and a
//! fixed guess is wrong both ways: on an echo-free line (a clean SIP trunk, a softphone with
//! its own AEC) a 6 dB guess makes every quiet caller look like echo, and on a loud line it
//! understates the echo. But the echo can never carry more energy than the inbound audio
//! itself: over a block of ≥ 500 ms of far-end activity, inbound energy / far energy bounds
//! the echo gain from above (the 0–150 ms delay is small against the block, so the sums are
//! comparable even when the delay is unknown). Blocks in which the caller talks or noise is
//! loud give a high ratio; the smallest ratio of the last few blocks is the tightest bound.
//! On an echo-free line it falls to the noise floor within one block, so quiet callers are
//! judged against the real (absent) echo; with echo it settles near the true gain.

/// Far-active frames per measurement block (25 × 20 ms = 500 ms).
const BLOCK_FRAMES: u32 = 25;
/// Blocks remembered: a louder echo path (a transfer, a new handset) is picked up within
/// this many blocks of far-end activity (2 s).
const BLOCKS: usize = 4;

#[derive(Debug, Clone)]
pub struct ErlBound {
    near_sum: f64,
    far_sum: f64,
    frames: u32,
    ratios: [f32; BLOCKS],
    filled: usize,
    next: usize,
}

impl Default for ErlBound {
    fn default() -> Self {
        Self::new()
    }
}

impl ErlBound {
    pub fn new() -> Self {
        Self {
            near_sum: 0.0,
            far_sum: 0.0,
            frames: 0,
            ratios: [f32::INFINITY; BLOCKS],
            filled: 0,
            next: 0,
        }
    }

    /// One frame in which the far end was active: mean inbound power and the far-end
    /// reference power (same units).
    pub fn push(&mut self, near_power: f32, far_power: f32) {
        if !(near_power.is_finite() && far_power.is_finite() && far_power > 0.0) {
            return;
        }
        self.near_sum += f64::from(near_power.max(0.0));
        self.far_sum += f64::from(far_power);
        self.frames += 1;
        if self.frames >= BLOCK_FRAMES {
            let ratio = (self.near_sum / self.far_sum) as f32;
            if let Some(slot) = self.ratios.get_mut(self.next) {
                *slot = ratio;
            }
            self.next = (self.next + 1) % BLOCKS;
            self.filled = (self.filled + 1).min(BLOCKS);
            self.near_sum = 0.0;
            self.far_sum = 0.0;
            self.frames = 0;
        }
    }

    /// The bound on the echo power gain, once one block has been measured.
    pub fn gain(&self) -> Option<f32> {
        (self.filled > 0).then(|| self.ratios.iter().copied().fold(f32::INFINITY, f32::min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_known_before_one_block() {
        let mut b = ErlBound::new();
        for _ in 0..BLOCK_FRAMES - 1 {
            b.push(1.0, 100.0);
        }
        assert_eq!(b.gain(), None);
        b.push(1.0, 100.0);
        assert_eq!(b.gain(), Some(0.01));
    }

    #[test]
    fn the_quietest_recent_block_wins_and_old_blocks_expire() {
        let mut b = ErlBound::new();
        let block = |b: &mut ErlBound, near: f32| {
            for _ in 0..BLOCK_FRAMES {
                b.push(near, 100.0);
            }
        };
        block(&mut b, 10.0); // caller talking: 0.1
        block(&mut b, 1.0); // echo only: 0.01
        block(&mut b, 30.0);
        assert_eq!(b.gain(), Some(0.01));
        // A louder echo path: after BLOCKS blocks the old quiet block is forgotten.
        for _ in 0..BLOCKS {
            block(&mut b, 5.0);
        }
        assert_eq!(b.gain(), Some(0.05));
    }

    #[test]
    fn junk_frames_are_ignored() {
        let mut b = ErlBound::new();
        for _ in 0..BLOCK_FRAMES {
            b.push(f32::NAN, 1.0);
            b.push(1.0, 0.0);
            b.push(1.0, f32::INFINITY);
        }
        assert_eq!(b.gain(), None);
    }
}
