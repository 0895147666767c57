//! The two measurements the jitter buffer adapts on.
//!
//! [`DelayEstimator`]: network jitter from the relative delay `arrival − timestamp` of the
//! last packets (NetEq's "relative delay", Asterisk's delay history). The fastest packet of
//! the window defines "on time"; jitter is the 95th percentile of how much later the others
//! arrive.
//!
//! [`LevelWindow`]: how much buffered audio on-time packets find ahead of them. Each packet's
//! slack (its timestamp minus the playout position when it arrives) is normalised by how
//! late it was relative to the fastest packet, so a late or reordered packet does not read
//! as "buffer too small", and lost packets, which never arrive, do not bias it at all. The
//! minimum over the last 0.5–1 s (two rotating windows) is the buffer's current delay.

use std::time::Instant;

/// Relative delays remembered (4 s at 20 ms packets).
pub(super) const DELAY_HISTORY: usize = 200;
/// Pops per level window (0.5 s).
const LEVEL_WINDOW_POPS: u32 = 25;
const SAMPLE_RATE: u128 = 8000;

pub(super) struct DelayEstimator {
    epoch: Option<Instant>,
    delays: [i64; DELAY_HISTORY],
    scratch: [i64; DELAY_HISTORY],
    count: usize,
    next: usize,
    min: i64,
    jitter: i64,
}

impl DelayEstimator {
    pub(super) fn new() -> Self {
        DelayEstimator {
            epoch: None,
            delays: [0; DELAY_HISTORY],
            scratch: [0; DELAY_HISTORY],
            count: 0,
            next: 0,
            min: 0,
            jitter: 0,
        }
    }

    /// Forgets the history (new stream). The epoch stays: only differences matter.
    pub(super) fn clear(&mut self) {
        self.count = 0;
        self.next = 0;
        self.min = 0;
        self.jitter = 0;
    }

    /// Packets in the history.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// 95th percentile minus minimum of the relative delay, in samples.
    pub(super) fn jitter(&self) -> i64 {
        self.jitter
    }

    /// Records a packet with extended timestamp `ext` arriving at `now`; returns how much
    /// later (in samples, ≥ 0) it arrived than the fastest packet of the window.
    pub(super) fn record(&mut self, now: Instant, ext: i64) -> i64 {
        let delay = self.arrival(now) - ext;
        if let Some(slot) = self.delays.get_mut(self.next) {
            *slot = delay;
        }
        self.next = (self.next + 1) % DELAY_HISTORY;
        self.count = (self.count + 1).min(DELAY_HISTORY);
        self.recompute();
        delay - self.min
    }

    /// The timestamps jumped but the path did not: shift the history so that a packet at
    /// `ext` arriving `now` has the same relative delay as the last one recorded.
    pub(super) fn rebase(&mut self, now: Instant, ext: i64) {
        if self.count == 0 {
            return;
        }
        let last_index = (self.next + DELAY_HISTORY - 1) % DELAY_HISTORY;
        let Some(&last) = self.delays.get(last_index) else {
            return;
        };
        let offset = self.arrival(now) - ext - last;
        for delay in self.delays.iter_mut().take(self.count) {
            *delay += offset;
        }
        self.min += offset;
    }

    fn arrival(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        (now.saturating_duration_since(epoch).as_nanos() * SAMPLE_RATE / 1_000_000_000) as i64
    }

    fn recompute(&mut self) {
        let count = self.count;
        let (Some(history), Some(scratch)) =
            (self.delays.get(..count), self.scratch.get_mut(..count))
        else {
            return;
        };
        scratch.copy_from_slice(history);
        let Some(&min) = scratch.iter().min() else {
            return;
        };
        let rank = (count * 95 / 100).min(count.saturating_sub(1));
        let (_, &mut p95, _) = scratch.select_nth_unstable(rank);
        self.min = min;
        self.jitter = p95 - min;
    }
}

pub(super) struct LevelWindow {
    current: i64,
    previous: i64,
    pops: u32,
}

impl LevelWindow {
    pub(super) fn new() -> Self {
        LevelWindow {
            current: i64::MAX,
            previous: i64::MAX,
            pops: 0,
        }
    }

    /// Starts over after the playout position moved (the old values mean nothing now).
    pub(super) fn reset(&mut self) {
        *self = Self::new();
    }

    /// One packet's normalised slack.
    pub(super) fn note(&mut self, level: i64) {
        self.current = self.current.min(level);
    }

    pub(super) fn on_pop(&mut self) {
        self.pops = self.pops.saturating_add(1);
        if self.pops.is_multiple_of(LEVEL_WINDOW_POPS) {
            self.previous = self.current;
            self.current = i64::MAX;
        }
    }

    /// After deliberately adding (positive) or removing audio from the timeline.
    pub(super) fn shift(&mut self, delta: i64) {
        for level in [&mut self.current, &mut self.previous] {
            if *level != i64::MAX {
                *level += delta;
            }
        }
    }

    /// The current delay, if packets arrived since the last reset.
    pub(super) fn level(&self) -> Option<i64> {
        let level = self.current.min(self.previous);
        (level != i64::MAX).then_some(level)
    }

    /// A full window has passed since the last reset.
    pub(super) fn settled(&self) -> bool {
        self.pops >= LEVEL_WINDOW_POPS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn jitter_is_the_spread_of_relative_delays() {
        let t0 = Instant::now();
        let mut estimator = DelayEstimator::new();
        for k in 0..100i64 {
            // Every 10th packet 30 ms (240 samples) late.
            let late = if k % 10 == 5 { 30 } else { 0 };
            let now = t0 + Duration::from_millis((k * 20 + late) as u64);
            let behind = estimator.record(now, k * 160);
            assert_eq!(behind, late * 8);
        }
        // 10 % late: the 95th percentile is a late one.
        assert_eq!(estimator.jitter(), 240);
        assert_eq!(estimator.len(), 100);
    }

    #[test]
    fn rebase_keeps_the_estimate_across_a_timestamp_jump() {
        let t0 = Instant::now();
        let mut estimator = DelayEstimator::new();
        for k in 0..50i64 {
            estimator.record(t0 + Duration::from_millis((k * 20) as u64), k * 160);
        }
        let now = t0 + Duration::from_millis(1000);
        let jumped = 50 * 160 + 8000 * 60;
        estimator.rebase(now, jumped);
        assert_eq!(estimator.record(now, jumped), 0);
        assert_eq!(estimator.jitter(), 0);
        estimator.clear();
        assert_eq!(estimator.len(), 0);
    }

    #[test]
    fn level_window_keeps_the_minimum_of_the_last_two_windows() {
        let mut window = LevelWindow::new();
        assert_eq!(window.level(), None);
        window.note(300);
        window.note(200);
        for _ in 0..25 {
            window.on_pop();
        }
        assert!(window.settled());
        window.note(400);
        assert_eq!(window.level(), Some(200));
        for _ in 0..25 {
            window.on_pop();
        }
        // The 200 window is gone; 400 is now the previous one.
        assert_eq!(window.level(), Some(400));
        window.shift(-160);
        assert_eq!(window.level(), Some(240));
        window.reset();
        assert_eq!(window.level(), None);
        assert!(!window.settled());
    }
}
