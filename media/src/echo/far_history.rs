//! What we sent, kept for the echo canceller: every far-end sample of the last few hundred
//! ms (the delay line reads them at any lag) and the mean power of each 4 ms block (the
//! level detectors ask how loud the far end was wherever its echo can come from). Both are
//! rings indexed by absolute sample / block number.

use super::filter::BLOCK;

pub(crate) struct FarHistory {
    /// Samples as sent; length a power of two.
    samples: Vec<f32>,
    written: u64,
    /// Mean power per block; length a power of two.
    block_power: Vec<f32>,
    blocks_written: u64,
}

impl FarHistory {
    /// Room for at least `samples` samples and `blocks` block powers.
    pub(crate) fn new(samples: usize, blocks: usize) -> Self {
        Self {
            samples: vec![0.0; samples.next_power_of_two()],
            written: 0,
            block_power: vec![0.0; blocks.next_power_of_two()],
            blocks_written: 0,
        }
    }

    /// Samples pushed so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Blocks pushed so far (the next block's number).
    pub(crate) fn blocks_written(&self) -> u64 {
        self.blocks_written
    }

    pub(crate) fn push_block(&mut self, block: &[f32; BLOCK], power: f32) {
        let mask = self.samples.len() as u64 - 1;
        for &x in block {
            if let Some(slot) = self.samples.get_mut((self.written & mask) as usize) {
                *slot = x;
            }
            self.written += 1;
        }
        let mask = self.block_power.len() as u64 - 1;
        if let Some(slot) = self
            .block_power
            .get_mut((self.blocks_written & mask) as usize)
        {
            *slot = power;
        }
        self.blocks_written += 1;
    }

    /// Sample `index` (absolute), or 0 if it is not (or no longer) in the history.
    pub(crate) fn sample(&self, index: i64) -> f32 {
        let len = self.samples.len() as i64;
        let written = self.written as i64;
        if index < 0 || index >= written || index < written - len {
            return 0.0;
        }
        self.samples
            .get((index & (len - 1)) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// (max, mean) of the powers of blocks `oldest..=newest` that are still kept and were
    /// pushed; (0, 0) if there are none.
    pub(crate) fn block_power_stats(&self, oldest: u64, newest: u64) -> (f32, f32) {
        let ring = self.block_power.len() as u64;
        let oldest = oldest.max(self.blocks_written.saturating_sub(ring));
        let (mut max, mut sum, mut count) = (0.0f32, 0.0f32, 0u32);
        for block in oldest..=newest.min(self.blocks_written.saturating_sub(1)) {
            let power = self
                .block_power
                .get((block % ring) as usize)
                .copied()
                .unwrap_or(0.0);
            max = max.max(power);
            sum += power;
            count += 1;
        }
        (max, if count > 0 { sum / count as f32 } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(value: f32) -> [f32; BLOCK] {
        [value; BLOCK]
    }

    #[test]
    fn samples_are_read_back_by_absolute_index_until_overwritten() {
        let mut history = FarHistory::new(2 * BLOCK, 2);
        for n in 0..3 {
            history.push_block(&block(n as f32 + 1.0), 0.0);
        }
        assert_eq!(history.written(), 3 * BLOCK as u64);
        // Blocks 1 and 2 are kept; block 0 was overwritten.
        assert_eq!(history.sample(0), 0.0);
        assert_eq!(history.sample(BLOCK as i64), 2.0);
        assert_eq!(history.sample(3 * BLOCK as i64 - 1), 3.0);
        // Not yet written, or before the stream: silence.
        assert_eq!(history.sample(3 * BLOCK as i64), 0.0);
        assert_eq!(history.sample(-1), 0.0);
    }

    #[test]
    fn block_power_stats_cover_only_kept_and_pushed_blocks() {
        let mut history = FarHistory::new(BLOCK, 4);
        assert_eq!(history.block_power_stats(0, 10), (0.0, 0.0));
        for power in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] {
            history.push_block(&block(0.0), power);
        }
        assert_eq!(history.blocks_written(), 6);
        // Blocks 2..=5 are kept (powers 3..6); asking for 0..=9 gets exactly those.
        assert_eq!(history.block_power_stats(0, 9), (6.0, 4.5));
        assert_eq!(history.block_power_stats(3, 4), (5.0, 4.5));
    }
}
