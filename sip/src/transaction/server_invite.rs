//! INVITE server transaction: RFC 3261 §17.2.1 as amended by RFC 6026 (Accepted state).
//!
//! ```text
//!            INVITE → send 100
//!  Proceeding ── 1xx ──▶ Proceeding
//!      │ 2xx                      │ 300-699
//!      ▼                          ▼
//!  Accepted (2xx every T1..T2,   Completed (final every T1..T2 on UDP = Timer G,
//!   Timer L = 64·T1)              Timer H = 64·T1) ── ACK ──▶ Confirmed (Timer I = T4 / 0)
//! ```
//!
//! RFC 6026 leaves 2xx retransmission to the TU; it is done here because the transaction already
//! owns the bytes, the destination and the clock, and the UA core only has to report the ACK.

use std::time::Instant;

use bytes::Bytes;

use super::{Fired, Timeout, TxError};
use crate::timers::{earliest, Backoff, TimerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone)]
pub struct InviteServer {
    state: InviteServerState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Bytes,
    /// Timer G in Completed, the 2xx retransmission in Accepted.
    retransmit: Option<Backoff>,
    /// Timer H (Completed), I (Confirmed) or L (Accepted).
    end: Option<Instant>,
    acked_2xx: bool,
}

impl InviteServer {
    /// Starts in Proceeding; `trying` (the 100) must be sent by the caller right away.
    pub fn new(reliable: bool, timers: TimerConfig, trying: Bytes) -> Self {
        Self {
            state: InviteServerState::Proceeding,
            reliable,
            timers,
            last_response: trying,
            retransmit: None,
            end: None,
            acked_2xx: false,
        }
    }

    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// A retransmitted INVITE: the last provisional or final response to send again, if any.
    /// In Accepted the INVITE is absorbed silently (RFC 6026 §7.1); the timer resends the 2xx.
    pub fn on_retransmission(&self) -> Option<Bytes> {
        match self.state {
            InviteServerState::Proceeding | InviteServerState::Completed => {
                Some(self.last_response.clone())
            }
            _ => None,
        }
    }

    /// The TU responds; the caller sends `response` once this returns Ok.
    pub fn respond(&mut self, now: Instant, code: u16, response: Bytes) -> Result<(), TxError> {
        if self.state != InviteServerState::Proceeding {
            return Err(TxError::FinalAlreadySent);
        }
        self.last_response = response;
        match code {
            100..=199 => {}
            200..=299 => {
                self.state = InviteServerState::Accepted;
                // §13.3.1.4: 2xx retransmission runs even over reliable transports, because a
                // later hop may be UDP.
                self.retransmit = Some(Backoff::start(now, self.timers.t1, Some(self.timers.t2)));
                self.end = Some(now + self.timers.transaction_timeout());
            }
            _ => {
                self.state = InviteServerState::Completed;
                self.retransmit = (!self.reliable)
                    .then(|| Backoff::start(now, self.timers.t1, Some(self.timers.t2)));
                self.end = Some(now + self.timers.transaction_timeout());
            }
        }
        Ok(())
    }

    /// An ACK matching this transaction (same branch): for a non-2xx final, Completed →
    /// Confirmed. Returns whether the ACK was absorbed here.
    pub fn on_ack(&mut self, now: Instant) -> bool {
        match self.state {
            InviteServerState::Completed => {
                self.state = InviteServerState::Confirmed;
                self.retransmit = None;
                self.end = Some(now + self.timers.timer_i(self.reliable));
                true
            }
            InviteServerState::Confirmed => true,
            _ => false,
        }
    }

    /// The UA matched an ACK for our 2xx by dialog: stop retransmitting. The transaction stays
    /// in Accepted until Timer L to absorb INVITE retransmissions. Returns true the first time.
    pub fn on_2xx_ack(&mut self) -> bool {
        if self.state != InviteServerState::Accepted || self.acked_2xx {
            return false;
        }
        self.acked_2xx = true;
        self.retransmit = None;
        true
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.retransmit.map(|b| b.due), self.end)
    }

    /// Runs the earliest due timer; call again while `next_deadline() <= now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Fired> {
        if self.end.is_some_and(|end| end <= now) {
            let fired = match self.state {
                InviteServerState::Completed => Fired::TimedOut(Timeout::NoAck),
                InviteServerState::Accepted if !self.acked_2xx => {
                    Fired::TimedOut(Timeout::No2xxAck)
                }
                _ => Fired::Terminated,
            };
            self.terminate();
            return Some(fired);
        }
        let backoff = self.retransmit.as_mut()?;
        if backoff.due > now {
            return None;
        }
        backoff.fire(now);
        Some(Fired::Retransmit(self.last_response.clone()))
    }

    fn terminate(&mut self) {
        self.state = InviteServerState::Terminated;
        self.retransmit = None;
        self.end = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    /// Runs timers until `until`, returning (time since t0 in ms, what fired).
    fn run(tx: &mut InviteServer, t0: Instant, until: Duration) -> Vec<(u128, Fired)> {
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

    fn retransmit_times(fired: &[(u128, Fired)]) -> Vec<u128> {
        fired
            .iter()
            .filter(|(_, f)| matches!(f, Fired::Retransmit(_)))
            .map(|(t, _)| *t)
            .collect()
    }

    fn udp() -> InviteServer {
        InviteServer::new(false, TimerConfig::default(), Bytes::from_static(b"100"))
    }

    #[test]
    fn retransmitted_invite_gets_the_last_provisional() {
        let t0 = Instant::now();
        let mut tx = udp();
        assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"100")));
        tx.respond(t0, 180, Bytes::from_static(b"180")).unwrap();
        assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"180")));
        assert_eq!(tx.next_deadline(), None, "no timers while Proceeding");
    }

    #[test]
    fn timer_g_doubles_to_t2_and_timer_h_gives_up_at_64_t1() {
        let t0 = Instant::now();
        let mut tx = udp();
        tx.respond(t0, 486, Bytes::from_static(b"486")).unwrap();
        assert_eq!(tx.state(), InviteServerState::Completed);
        assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"486")));
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(
            retransmit_times(&fired),
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(
            fired.last(),
            Some(&(32_000, Fired::TimedOut(Timeout::NoAck)))
        );
        assert_eq!(tx.state(), InviteServerState::Terminated);
    }

    #[test]
    fn ack_confirms_then_timer_i_terminates() {
        let t0 = Instant::now();
        let mut tx = udp();
        tx.respond(t0, 487, Bytes::from_static(b"487")).unwrap();
        assert!(tx.on_ack(t0 + 200 * MS));
        assert_eq!(tx.state(), InviteServerState::Confirmed);
        assert!(tx.on_ack(t0 + 300 * MS), "ACK retransmissions absorbed");
        assert_eq!(tx.on_retransmission(), None);
        let fired = run(&mut tx, t0, Duration::from_secs(10));
        assert_eq!(fired, vec![(5200, Fired::Terminated)]);
    }

    #[test]
    fn tcp_has_no_timer_g_and_zero_timer_i() {
        let t0 = Instant::now();
        let mut tx = InviteServer::new(true, TimerConfig::default(), Bytes::new());
        tx.respond(t0, 603, Bytes::from_static(b"603")).unwrap();
        assert_eq!(
            tx.next_deadline(),
            Some(t0 + Duration::from_secs(32)),
            "only Timer H"
        );
        tx.on_ack(t0 + 10 * MS);
        assert_eq!(tx.next_deadline(), Some(t0 + 10 * MS));
        assert_eq!(tx.on_timeout(t0 + 10 * MS), Some(Fired::Terminated));
    }

    #[test]
    fn accepted_retransmits_2xx_until_acked_then_waits_for_timer_l() {
        let t0 = Instant::now();
        let mut tx = udp();
        tx.respond(t0, 200, Bytes::from_static(b"200")).unwrap();
        assert_eq!(tx.state(), InviteServerState::Accepted);
        assert_eq!(
            tx.on_retransmission(),
            None,
            "INVITE retransmissions absorbed"
        );
        let fired = run(&mut tx, t0, Duration::from_millis(4000));
        assert_eq!(retransmit_times(&fired), vec![500, 1500, 3500]);
        assert!(tx.on_2xx_ack());
        assert!(!tx.on_2xx_ack(), "only the first ACK counts");
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(fired, vec![(32_000, Fired::Terminated)]);
    }

    #[test]
    fn timer_l_reports_the_missing_2xx_ack() {
        let t0 = Instant::now();
        let mut tx = udp();
        tx.respond(t0, 200, Bytes::from_static(b"200")).unwrap();
        let fired = run(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(
            retransmit_times(&fired),
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(
            fired.last(),
            Some(&(32_000, Fired::TimedOut(Timeout::No2xxAck)))
        );
    }

    #[test]
    fn only_one_final_response() {
        let t0 = Instant::now();
        let mut tx = udp();
        tx.respond(t0, 200, Bytes::new()).unwrap();
        assert_eq!(
            tx.respond(t0, 486, Bytes::new()),
            Err(TxError::FinalAlreadySent)
        );
        assert!(
            !tx.on_ack(t0),
            "a same-branch ACK in Accepted goes to the UA"
        );
    }
}
