//! Non-INVITE client transaction (RFC 3261 §17.1.2): Timer E retransmits (UDP) from T1
//! doubling to T2, and stays at T2 once a provisional arrived; Timer F = 64·T1 gives up;
//! Timer K = T4 (0 on TCP) absorbs retransmitted finals.

use std::time::Instant;

use bytes::Bytes;

use super::{Fired, Timeout};
use crate::timers::{earliest, Backoff, TimerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug, Clone)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    reliable: bool,
    timers: TimerConfig,
    request: Bytes,
    /// Timer E.
    retransmit: Option<Backoff>,
    /// Timer F.
    timeout: Option<Instant>,
    /// Timer K.
    end: Option<Instant>,
}

impl NonInviteClient {
    /// Starts in Trying; the caller sends `request` right away.
    pub fn new(now: Instant, reliable: bool, timers: TimerConfig, request: Bytes) -> Self {
        Self {
            state: NonInviteClientState::Trying,
            reliable,
            timers,
            request,
            retransmit: (!reliable).then(|| Backoff::start(now, timers.t1, Some(timers.t2))),
            timeout: Some(now + timers.transaction_timeout()),
            end: None,
        }
    }

    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// A response matched this transaction. Returns whether it goes up to the TU.
    pub fn on_response(&mut self, now: Instant, code: u16) -> bool {
        match (self.state, code) {
            (NonInviteClientState::Trying | NonInviteClientState::Proceeding, 100..=199) => {
                self.state = NonInviteClientState::Proceeding;
                if let Some(e) = self.retransmit.as_mut() {
                    e.set_interval(self.timers.t2);
                }
                true
            }
            (NonInviteClientState::Trying | NonInviteClientState::Proceeding, _) => {
                self.state = NonInviteClientState::Completed;
                self.retransmit = None;
                self.timeout = None;
                self.end = Some(now + self.timers.timer_k(self.reliable));
                true
            }
            // Completed: retransmitted final, absorbed.
            _ => false,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(
            earliest(self.retransmit.map(|b| b.due), self.timeout),
            self.end,
        )
    }

    pub fn on_timeout(&mut self, now: Instant) -> Option<Fired> {
        if self.timeout.is_some_and(|t| t <= now) {
            self.terminate();
            return Some(Fired::TimedOut(Timeout::NoResponse));
        }
        if self.end.is_some_and(|t| t <= now) {
            self.terminate();
            return Some(Fired::Terminated);
        }
        let backoff = self.retransmit.as_mut()?;
        if backoff.due > now {
            return None;
        }
        backoff.fire(now);
        Some(Fired::Retransmit(self.request.clone()))
    }

    fn terminate(&mut self) {
        self.state = NonInviteClientState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.end = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(tx: &mut NonInviteClient, t0: Instant, until: Duration) -> Vec<(u128, Fired)> {
        let mut out = Vec::new();
        while let Some(at) = tx.next_deadline() {
            if at > t0 + until {
                break;
            }
            while let Some(f) = tx.on_timeout(at) {
                out.push(((at - t0).as_millis(), f));
            }
        }
        out
    }

    fn times(fired: &[(u128, Fired)]) -> Vec<u128> {
        fired
            .iter()
            .filter(|(_, f)| matches!(f, Fired::Retransmit(_)))
            .map(|(t, _)| *t)
            .collect()
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_gives_up() {
        let t0 = Instant::now();
        let mut tx = NonInviteClient::new(
            t0,
            false,
            TimerConfig::default(),
            Bytes::from_static(b"BYE"),
        );
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(
            times(&fired),
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(
            fired.last(),
            Some(&(32_000, Fired::TimedOut(Timeout::NoResponse)))
        );
        assert_eq!(tx.state(), NonInviteClientState::Terminated);
    }

    #[test]
    fn after_a_provisional_timer_e_stays_at_t2() {
        let t0 = Instant::now();
        let mut tx = NonInviteClient::new(t0, false, TimerConfig::default(), Bytes::new());
        let fired = run(&mut tx, t0, Duration::from_millis(600));
        assert_eq!(times(&fired), vec![500]);
        assert!(tx.on_response(t0 + Duration::from_millis(600), 100));
        assert_eq!(tx.state(), NonInviteClientState::Proceeding);
        let fired = run(&mut tx, t0, Duration::from_millis(12_000));
        // The pending firing at 1.5 s keeps its time; after it the interval is T2.
        assert_eq!(times(&fired), vec![1500, 5500, 9500]);
    }

    #[test]
    fn final_response_then_timer_k_absorbs_retransmissions() {
        let t0 = Instant::now();
        let mut tx = NonInviteClient::new(t0, false, TimerConfig::default(), Bytes::new());
        assert!(tx.on_response(t0 + Duration::from_millis(100), 200));
        assert!(
            !tx.on_response(t0 + Duration::from_millis(200), 200),
            "retransmitted final"
        );
        let fired = run(&mut tx, t0, Duration::from_secs(10));
        assert_eq!(fired, vec![(5100, Fired::Terminated)]);
    }

    #[test]
    fn tcp_never_retransmits_and_k_is_zero() {
        let t0 = Instant::now();
        let mut tx = NonInviteClient::new(t0, true, TimerConfig::default(), Bytes::new());
        assert_eq!(
            tx.next_deadline(),
            Some(t0 + Duration::from_secs(32)),
            "only Timer F"
        );
        tx.on_response(t0, 200);
        assert_eq!(tx.on_timeout(t0), Some(Fired::Terminated));
    }
}
