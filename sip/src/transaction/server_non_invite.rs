//! Non-INVITE server transaction (RFC 3261 §17.2.2): Trying → Proceeding → Completed
//! (Timer J = 64·T1 on UDP, 0 on TCP) → Terminated. Retransmitted requests get the last
//! response again; nothing is retransmitted on a timer.

use std::time::Instant;

use bytes::Bytes;

use super::{Fired, TxError};
use crate::timers::TimerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug, Clone)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Bytes>,
    /// Timer J.
    end: Option<Instant>,
}

impl NonInviteServer {
    pub fn new(reliable: bool, timers: TimerConfig) -> Self {
        Self {
            state: NonInviteServerState::Trying,
            reliable,
            timers,
            last_response: None,
            end: None,
        }
    }

    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// A retransmitted request: what to send again (nothing while still Trying).
    pub fn on_retransmission(&self) -> Option<Bytes> {
        match self.state {
            NonInviteServerState::Proceeding | NonInviteServerState::Completed => {
                self.last_response.clone()
            }
            _ => None,
        }
    }

    /// The TU responds; the caller sends `response` once this returns Ok.
    pub fn respond(&mut self, now: Instant, code: u16, response: Bytes) -> Result<(), TxError> {
        match self.state {
            NonInviteServerState::Trying | NonInviteServerState::Proceeding => {}
            _ => return Err(TxError::FinalAlreadySent),
        }
        self.last_response = Some(response);
        if code < 200 {
            self.state = NonInviteServerState::Proceeding;
        } else {
            self.state = NonInviteServerState::Completed;
            self.end = Some(now + self.timers.timer_j(self.reliable));
        }
        Ok(())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.end
    }

    pub fn on_timeout(&mut self, now: Instant) -> Option<Fired> {
        if self.end.is_some_and(|end| end <= now) {
            self.state = NonInviteServerState::Terminated;
            self.end = None;
            return Some(Fired::Terminated);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn trying_absorbs_silently_then_last_response_is_repeated() {
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(false, TimerConfig::default());
        assert_eq!(tx.on_retransmission(), None);
        tx.respond(t0, 100, Bytes::from_static(b"100")).unwrap();
        assert_eq!(tx.state(), NonInviteServerState::Proceeding);
        assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"100")));
        tx.respond(t0, 200, Bytes::from_static(b"200")).unwrap();
        assert_eq!(tx.on_retransmission(), Some(Bytes::from_static(b"200")));
        assert_eq!(
            tx.respond(t0, 500, Bytes::new()),
            Err(TxError::FinalAlreadySent)
        );
    }

    #[test]
    fn timer_j_is_64_t1_on_udp() {
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(false, TimerConfig::default());
        tx.respond(t0, 200, Bytes::new()).unwrap();
        let j = t0 + Duration::from_secs(32);
        assert_eq!(tx.next_deadline(), Some(j));
        assert_eq!(tx.on_timeout(j - Duration::from_millis(1)), None);
        assert_eq!(tx.state(), NonInviteServerState::Completed);
        assert_eq!(tx.on_timeout(j), Some(Fired::Terminated));
        assert_eq!(tx.state(), NonInviteServerState::Terminated);
        assert_eq!(tx.next_deadline(), None);
    }

    #[test]
    fn timer_j_is_zero_on_tcp() {
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(true, TimerConfig::default());
        tx.respond(t0, 481, Bytes::new()).unwrap();
        assert_eq!(tx.next_deadline(), Some(t0));
        assert_eq!(tx.on_timeout(t0), Some(Fired::Terminated));
    }
}
