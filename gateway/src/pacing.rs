//! Process-wide histogram of outbound pacing lateness (how late each 20 ms tick ran against
//! its absolute deadline). Lock-free: one relaxed atomic add per tick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// 50 µs buckets up to 50 ms; the last bucket collects everything later.
const BUCKET_US: u64 = 50;
const BUCKETS: usize = 1001;

pub struct LatenessHistogram {
    buckets: [AtomicU64; BUCKETS],
}

impl LatenessHistogram {
    pub const fn new() -> Self {
        LatenessHistogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }

    pub fn record(&self, lateness: Duration) {
        let index = (lateness.as_micros() as u64 / BUCKET_US).min(BUCKETS as u64 - 1) as usize;
        if let Some(b) = self.buckets.get(index) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper edge of the bucket holding quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(((i as u64 + 1) * BUCKET_US) as f64 / 1000.0);
            }
        }
        None
    }
}

/// All calls' ticks.
pub static OUTBOUND_LATENESS: LatenessHistogram = LatenessHistogram::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_bucket_edges() {
        let h = LatenessHistogram::new();
        assert_eq!(h.quantile_ms(0.5), None);
        for us in 0..100u64 {
            h.record(Duration::from_micros(us * 10)); // 0..990 µs
        }
        h.record(Duration::from_secs(5)); // far outlier lands in the last bucket
        assert_eq!(h.count(), 101);
        assert_eq!(h.quantile_ms(0.5), Some(0.55)); // 500 µs lies in [500, 550)
        assert_eq!(h.quantile_ms(0.99), Some(1.0));
        assert_eq!(h.quantile_ms(1.0), Some(50.05));
    }
}
