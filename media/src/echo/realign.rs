//! Putting the filter at a new alignment with what we sent and what came back: the far
//! spectra a moved delay line must start from, and the catch-up at the first delay lock.
//!
//! The delay is found 150–300 ms into our first words. Until then the filter learnt at a
//! guessed alignment (often a wrong one, then reset), so those words would be lost to
//! convergence. Instead the canceller remembers the last [`NearHistory::BLOCKS`] near
//! blocks and the step each was taught with; at the first lock [`re_teach`] runs them
//! through the filter again at the found alignment (blocks of loud near-end speech had a
//! zero step and stay untaught). Cost: ≈ 96 block updates once per call.

use super::far_history::FarHistory;
use super::filter::{BlockFilter, BLOCK};

/// The near blocks last heard and their steps, rings indexed by block number.
pub(crate) struct NearHistory {
    samples: Vec<f32>,
    steps: Vec<f32>,
}

impl NearHistory {
    /// Blocks remembered (384 ms: the latest first lock plus margin).
    pub(crate) const BLOCKS: usize = 96;

    pub(crate) fn new() -> Self {
        Self {
            samples: vec![0.0; Self::BLOCKS * BLOCK],
            steps: vec![0.0; Self::BLOCKS],
        }
    }

    /// Keeps block number `block` and the step it was taught with.
    pub(crate) fn remember(&mut self, block: u64, near: &[f32; BLOCK], step: f32) {
        let slot = (block % Self::BLOCKS as u64) as usize;
        if let Some(dst) = self.samples.get_mut(slot * BLOCK..(slot + 1) * BLOCK) {
            dst.copy_from_slice(near);
        }
        if let Some(s) = self.steps.get_mut(slot) {
            *s = step;
        }
    }

    /// Block number `block` into `near`, and its step (the caller asks only for blocks
    /// still remembered).
    fn recall(&self, block: u64, near: &mut [f32; BLOCK]) -> f32 {
        let slot = (block % Self::BLOCKS as u64) as usize;
        if let Some(src) = self.samples.get(slot * BLOCK..(slot + 1) * BLOCK) {
            near.copy_from_slice(src);
        }
        self.steps.get(slot).copied().unwrap_or(0.0)
    }
}

/// Fills the filter's far spectra with the far history ending at sample `newest_end`
/// (exclusive) as seen through the delay line, newest partition first.
pub(crate) fn load_far_spectra(filter: &mut BlockFilter, far: &FarHistory, newest_end: i64) {
    for k in 0..filter.partitions() {
        let end = newest_end - (k * BLOCK) as i64;
        let mut window = [0.0f32; 2 * BLOCK];
        for (i, slot) in window.iter_mut().enumerate() {
            *slot = far.sample(end - (2 * BLOCK) as i64 + i as i64);
        }
        filter.load_far_window(k, &window);
    }
}

/// Teaches `filter` the remembered near blocks up to the newest one pushed to `far` again,
/// with the far end seen `window_start` samples late, each at the step it had. The filter
/// must just have processed that newest block; it ends there again.
pub(crate) fn re_teach(
    filter: &mut BlockFilter,
    far: &FarHistory,
    near: &NearHistory,
    window_start: usize,
) {
    let end = far.blocks_written();
    let start = end.saturating_sub(NearHistory::BLOCKS as u64);
    // The far spectra as they were just before block `start`, at this alignment.
    load_far_spectra(
        filter,
        far,
        start as i64 * BLOCK as i64 - window_start as i64,
    );
    let (mut aligned, mut near_block, mut out) = ([0.0f32; BLOCK], [0.0f32; BLOCK], [0.0; BLOCK]);
    for block in start..end {
        let first = block as i64 * BLOCK as i64 - window_start as i64;
        for (i, a) in aligned.iter_mut().enumerate() {
            *a = far.sample(first + i as i64);
        }
        let step = near.recall(block, &mut near_block);
        filter.process_block(&aligned, &near_block, &mut out, step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_blocks_and_their_steps() {
        let mut history = NearHistory::new();
        for block in 0..200u64 {
            history.remember(block, &[block as f32; BLOCK], block as f32 / 1000.0);
        }
        let mut near = [0.0; BLOCK];
        let step = history.recall(150, &mut near);
        assert_eq!(near, [150.0; BLOCK]);
        assert!((step - 0.15).abs() < 1e-6);
        // Block 100 was overwritten by block 196 (96 blocks later).
        history.recall(100, &mut near);
        assert_eq!(near, [196.0; BLOCK]);
    }

    /// A far end heard back exactly (an echo path of one unit tap at the window start):
    /// re-teaching 96 blocks of it leaves a filter that cancels it; with a zero step
    /// nothing is learnt.
    #[test]
    fn re_teaching_learns_the_remembered_echo_only_where_the_step_allowed() {
        for (step, should_cancel) in [(1.0, true), (0.0, false)] {
            let mut far = FarHistory::new(8192, 256);
            let mut near = NearHistory::new();
            let mut filter = BlockFilter::new(4);
            filter.set_expected_onset(0);
            let mut state = 7u32;
            let mut block = [0.0f32; BLOCK];
            for b in 0..NearHistory::BLOCKS as u64 {
                for x in block.iter_mut() {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    *x = ((state >> 16) as f32 / 32768.0 - 1.0) * 8000.0;
                }
                let power = block.iter().map(|x| x * x).sum::<f32>() / BLOCK as f32;
                far.push_block(&block, power);
                near.remember(b, &block, step);
            }
            // The filter has "processed" the newest block; teach it everything again.
            re_teach(&mut filter, &far, &near, 0);
            let mut out = [0.0; BLOCK];
            let mut next = [0.0f32; BLOCK];
            for x in next.iter_mut() {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *x = ((state >> 16) as f32 / 32768.0 - 1.0) * 8000.0;
            }
            filter.process_block(&next, &next, &mut out, 0.0);
            let residual: f32 = out.iter().map(|v| v * v).sum();
            let input: f32 = next.iter().map(|v| v * v).sum();
            let erle = 10.0 * (input / residual.max(1e-9)).log10();
            assert_eq!(erle > 20.0, should_cancel, "step {step}: ERLE {erle:.1} dB");
        }
    }
}
