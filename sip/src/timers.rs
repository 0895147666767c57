//! RFC 3261 timer values (§17, Table 4) and a small deadline queue shared by the transaction
//! layer and the UA core.
//!
//! Everything here is plain arithmetic on `Instant`/`Duration`, so tests drive it in virtual
//! time (`t0 + Duration`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The three base timers every other SIP timer is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; first retransmission interval (default 500 ms).
    pub t1: Duration,
    /// Cap on the retransmission interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// RFC 3261 §17.1.1.2: Timer D must be at least 32 s on unreliable transports.
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

impl TimerConfig {
    /// 64·T1: Timers B, F, H, L and the UDP value of J.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D (INVITE client, Completed → Terminated): absorbs retransmitted final responses.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            TIMER_D_FLOOR.max(self.transaction_timeout())
        }
    }

    /// Timer I (INVITE server, Confirmed → Terminated): absorbs ACK retransmissions.
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J (non-INVITE server, Completed → Terminated): absorbs request retransmissions.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// Timer K (non-INVITE client, Completed → Terminated): absorbs response retransmissions.
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }
}

/// A retransmission timer whose interval doubles on every firing, optionally capped
/// (Timers A, E, G and the RFC 6026 2xx retransmission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) due: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Backoff {
    pub(crate) fn start(now: Instant, first: Duration, cap: Option<Duration>) -> Self {
        Self {
            due: now + first,
            interval: first,
            cap,
        }
    }

    /// Called when the timer fired at `now`: doubles the interval and re-arms.
    pub(crate) fn fire(&mut self, now: Instant) {
        let doubled = self.interval.saturating_mul(2);
        self.interval = match self.cap {
            Some(cap) => doubled.min(cap),
            None => doubled,
        };
        self.due = now + self.interval;
    }

    /// Pins the interval (Timer E after a provisional response stays at T2).
    pub(crate) fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
        self.cap = Some(interval);
    }
}

/// Earliest of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Min-heap of `(deadline, key)` with lazy invalidation: owners push a new entry whenever their
/// deadline changes and, when an entry pops, check whether the owner is really due. Stale
/// entries only cause an early wake-up, never a missed one, and keep every operation
/// O(log n) instead of scanning all transactions per packet.
#[derive(Debug)]
pub(crate) struct DeadlineQueue<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> DeadlineQueue<K> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }

    pub(crate) fn schedule(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one entry due at or before `now`, with the time it was scheduled
    /// for (owners compare it with their current deadline to spot stale entries).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rfc3261_values() {
        let t = TimerConfig::default();
        assert_eq!(t.t1, Duration::from_millis(500));
        assert_eq!(t.t2, Duration::from_secs(4));
        assert_eq!(t.t4, Duration::from_secs(5));
        assert_eq!(t.transaction_timeout(), Duration::from_secs(32));
    }

    #[test]
    fn reliable_transports_zero_the_absorb_timers() {
        let t = TimerConfig::default();
        assert_eq!(t.timer_d(true), Duration::ZERO);
        assert_eq!(t.timer_i(true), Duration::ZERO);
        assert_eq!(t.timer_j(true), Duration::ZERO);
        assert_eq!(t.timer_k(true), Duration::ZERO);
        assert_eq!(t.timer_d(false), Duration::from_secs(32));
        assert_eq!(t.timer_i(false), Duration::from_secs(5));
        assert_eq!(t.timer_j(false), Duration::from_secs(32));
        assert_eq!(t.timer_k(false), Duration::from_secs(5));
    }

    #[test]
    fn timer_d_never_below_32s_even_with_small_t1() {
        let t = TimerConfig {
            t1: Duration::from_millis(10),
            ..TimerConfig::default()
        };
        assert_eq!(t.timer_d(false), Duration::from_secs(32));
    }

    #[test]
    fn backoff_doubles_up_to_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::start(t0, Duration::from_millis(500), Some(Duration::from_secs(4)));
        let mut intervals = Vec::new();
        let mut now = t0;
        for _ in 0..6 {
            intervals.push(b.due - now);
            now = b.due;
            b.fire(now);
        }
        let ms: Vec<u128> = intervals.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn deadline_queue_pops_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut q = DeadlineQueue::new();
        q.schedule(t0 + Duration::from_secs(2), 2u64);
        q.schedule(t0 + Duration::from_secs(1), 1u64);
        assert_eq!(q.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(q.pop_due(late), Some((t0 + Duration::from_secs(1), 1)));
        assert_eq!(q.pop_due(late), Some((t0 + Duration::from_secs(2), 2)));
        assert_eq!(q.pop_due(t0 + Duration::from_secs(5)), None);
    }
}
