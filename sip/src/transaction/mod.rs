//! RFC 3261 §17 transactions as sans-IO state machines, and the [`TransactionLayer`] that
//! owns them, matches messages to them and runs their timers.
//!
//! The layer is driven like quinn-proto: feed it requests/responses and `handle_timeout(now)`,
//! then drain `poll_transmit()` / `poll_event()` and sleep until `next_deadline()`.

pub mod client_invite;
pub mod client_non_invite;
pub mod server_invite;
pub mod server_non_invite;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rsip::{Header, Method, Request, Response};

pub use client_invite::{ClientResponse, InviteClient, InviteClientState};
pub use client_non_invite::{NonInviteClient, NonInviteClientState};
pub use server_invite::{InviteServer, InviteServerState};
pub use server_non_invite::{NonInviteServer, NonInviteServerState};

use crate::message::{
    encode_request, encode_response, headers, method_name, top_via, RequestSummary, TopVia,
    Transmit, Transport,
};
use crate::timers::{DeadlineQueue, TimerConfig};

/// What a machine's timer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// Send these bytes again.
    Retransmit(Bytes),
    /// The transaction ended on schedule.
    Terminated,
    /// The transaction ended because something it waited for never came.
    TimedOut(Timeout),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Timer B / F: no final response to our request.
    NoResponse,
    /// Timer H: no ACK for our non-2xx final response.
    NoAck,
    /// Timer L (RFC 6026): no ACK for our 2xx.
    No2xxAck,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("a final response was already sent")]
    FinalAlreadySent,
    #[error("a transaction with this key already exists")]
    Duplicate,
    #[error("the request has no usable Via branch")]
    NoBranch,
    #[error("ACK is never sent inside a transaction")]
    AckIsNotATransaction,
    #[error("status code {0} is outside 100-699")]
    BadStatus(u16),
}

/// Identifies a transaction: the Via branch (with sent-by for server transactions, §17.2.3)
/// plus the method, with ACK folded into INVITE so that an ACK finds its INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    id: String,
    method: &'static str,
}

impl TxKey {
    /// Key of a server transaction for a validated request.
    pub fn server(method: &Method, summary: &RequestSummary) -> Self {
        let via = &summary.via;
        let id = match via.branch() {
            Some(branch) if via.has_rfc3261_branch() => format!("{branch}|{}", via.sent_by()),
            // RFC 2543 peers: no unique branch, so identify the request by its content
            // (§17.2.3); CSeq number and Call-ID are shared by the INVITE, its ACK and CANCEL.
            _ => format!(
                "2543|{}|{}|{}|{}|{}",
                summary.call_id,
                summary.from_tag.as_deref().unwrap_or(""),
                summary.cseq,
                via.sent_by(),
                via.branch().unwrap_or("")
            ),
        };
        Self {
            id,
            method: key_method(method),
        }
    }

    /// Key of a client transaction (our own Via branch is unique on its own).
    pub fn client(branch: &str, method: &Method) -> Self {
        Self {
            id: branch.to_string(),
            method: key_method(method),
        }
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The same branch with another method: CANCEL → the INVITE it cancels.
    pub fn with_method(&self, method: &Method) -> Self {
        Self {
            id: self.id.clone(),
            method: key_method(method),
        }
    }
}

fn key_method(method: &Method) -> &'static str {
    match method {
        Method::Ack => "INVITE",
        other => method_name(other),
    }
}

/// Something the UA core must react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Timer B/F: our request got no final response.
    NoResponse { key: TxKey },
    /// Timer H: the ACK for our non-2xx final never came.
    NoAck { key: TxKey },
    /// Timer L: the ACK for our 2xx never came; the session should be ended with a BYE.
    No2xxAck { key: TxKey },
    /// The transaction is gone (also follows each of the above).
    Terminated { key: TxKey },
}

/// How an incoming request relates to existing server transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMatch {
    /// No transaction took it: a new request, or an ACK for a 2xx (matched by dialog).
    PassUp,
    /// A retransmission; the last response (if any) was queued again.
    Retransmission,
    /// The ACK for a non-2xx final response, absorbed by its INVITE transaction.
    AckAbsorbed,
}

/// How an incoming response relates to our client transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMatch {
    /// Hand it to the UA core.
    PassUp(TxKey),
    /// A retransmission handled by the transaction.
    Absorbed,
    /// No transaction (stray, or a 2xx retransmission after the INVITE transaction ended).
    Unmatched,
}

#[derive(Debug)]
enum Machine {
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
    /// Boxed: it holds the whole INVITE (to build the ACK) and would bloat every entry.
    InviteClient(Box<InviteClient>),
    NonInviteClient(NonInviteClient),
}

impl Machine {
    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Machine::InviteServer(m) => m.next_deadline(),
            Machine::NonInviteServer(m) => m.next_deadline(),
            Machine::InviteClient(m) => m.next_deadline(),
            Machine::NonInviteClient(m) => m.next_deadline(),
        }
    }

    fn on_timeout(&mut self, now: Instant) -> Option<Fired> {
        match self {
            Machine::InviteServer(m) => m.on_timeout(now),
            Machine::NonInviteServer(m) => m.on_timeout(now),
            Machine::InviteClient(m) => m.on_timeout(now),
            Machine::NonInviteClient(m) => m.on_timeout(now),
        }
    }

    fn is_server(&self) -> bool {
        matches!(self, Machine::InviteServer(_) | Machine::NonInviteServer(_))
    }
}

#[derive(Debug)]
struct Entry {
    key: TxKey,
    transport: Transport,
    destination: SocketAddr,
    machine: Machine,
    /// The deadline this entry has in the queue; queue entries with another time are stale.
    queued_at: Option<Instant>,
}

/// Counters kept by the layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Requests we sent again (Timers A, E) and responses resent on a timer (G, 2xx).
    pub retransmissions_sent: u64,
    /// Retransmitted requests absorbed by a server transaction.
    pub retransmissions_absorbed: u64,
    /// Retransmitted responses absorbed by a client transaction.
    pub responses_absorbed: u64,
    /// Timer B/F expiries.
    pub no_response_timeouts: u64,
    /// Timer H and L expiries.
    pub ack_timeouts: u64,
}

/// All live transactions.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: TimerConfig,
    entries: HashMap<u64, Entry>,
    servers: HashMap<TxKey, u64>,
    clients: HashMap<TxKey, u64>,
    deadlines: DeadlineQueue<u64>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
    stats: TxStats,
}

impl TransactionLayer {
    pub fn new(timers: TimerConfig) -> Self {
        Self {
            timers,
            entries: HashMap::new(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            deadlines: DeadlineQueue::new(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: TxStats::default(),
        }
    }

    pub fn timers(&self) -> TimerConfig {
        self.timers
    }

    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offers an incoming request to the server transactions (§17.2.3 matching). For ACK pass
    /// the INVITE-folded key, which `TxKey::server` produces for ACK.
    pub fn match_request(&mut self, now: Instant, method: &Method, key: &TxKey) -> ServerMatch {
        let Some(&id) = self.servers.get(key) else {
            return ServerMatch::PassUp;
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return ServerMatch::PassUp;
        };
        let (resend, outcome) = match (&mut entry.machine, method) {
            (Machine::InviteServer(m), Method::Ack) => {
                // An ACK with the INVITE's branch in Accepted belongs to the UA (RFC 6026).
                let absorbed = m.on_ack(now);
                (None, absorbed.then_some(ServerMatch::AckAbsorbed))
            }
            (Machine::InviteServer(m), _) => {
                (m.on_retransmission(), Some(ServerMatch::Retransmission))
            }
            (Machine::NonInviteServer(m), _) => {
                (m.on_retransmission(), Some(ServerMatch::Retransmission))
            }
            _ => (None, None),
        };
        let Some(outcome) = outcome else {
            return ServerMatch::PassUp;
        };
        if outcome == ServerMatch::Retransmission {
            self.stats.retransmissions_absorbed += 1;
        }
        if let Some(payload) = resend {
            self.transmits.push_back(Transmit {
                transport: entry.transport,
                destination: entry.destination,
                payload,
            });
        }
        self.schedule(id);
        outcome
    }

    /// Creates the server transaction for a new INVITE and sends `trying` (the 100) at once.
    pub fn create_invite_server(
        &mut self,
        key: TxKey,
        transport: Transport,
        destination: SocketAddr,
        trying: &Response,
    ) -> Result<(), TxError> {
        let payload = encode_response(trying);
        let machine = InviteServer::new(transport.is_reliable(), self.timers, payload.clone());
        self.insert(key, transport, destination, Machine::InviteServer(machine))?;
        self.transmits.push_back(Transmit {
            transport,
            destination,
            payload,
        });
        Ok(())
    }

    /// Creates the server transaction for a new non-INVITE request (not ACK).
    pub fn create_server(
        &mut self,
        key: TxKey,
        transport: Transport,
        destination: SocketAddr,
    ) -> Result<(), TxError> {
        let machine = NonInviteServer::new(transport.is_reliable(), self.timers);
        self.insert(
            key,
            transport,
            destination,
            Machine::NonInviteServer(machine),
        )
    }

    /// Sends a response within a server transaction.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TxKey,
        response: &Response,
    ) -> Result<(), TxError> {
        let code = response.status_code.code();
        if !(100..=699).contains(&code) {
            return Err(TxError::BadStatus(code));
        }
        let id = *self.servers.get(key).ok_or(TxError::UnknownTransaction)?;
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(TxError::UnknownTransaction)?;
        let payload = encode_response(response);
        match &mut entry.machine {
            Machine::InviteServer(m) => m.respond(now, code, payload.clone())?,
            Machine::NonInviteServer(m) => m.respond(now, code, payload.clone())?,
            _ => return Err(TxError::UnknownTransaction),
        }
        self.transmits.push_back(Transmit {
            transport: entry.transport,
            destination: entry.destination,
            payload,
        });
        self.schedule(id);
        Ok(())
    }

    /// The UA matched an ACK for the 2xx of this INVITE transaction. Returns true for the
    /// first such ACK (later ones are retransmissions).
    pub fn ack_2xx(&mut self, key: &TxKey) -> bool {
        let Some(id) = self.servers.get(key) else {
            return false;
        };
        match self.entries.get_mut(id).map(|e| &mut e.machine) {
            Some(Machine::InviteServer(m)) => m.on_2xx_ack(),
            _ => false,
        }
    }

    pub fn invite_server_state(&self, key: &TxKey) -> Option<InviteServerState> {
        let id = self.servers.get(key)?;
        match self.entries.get(id).map(|e| &e.machine) {
            Some(Machine::InviteServer(m)) => Some(m.state()),
            _ => None,
        }
    }

    /// Starts a client transaction for `request` (its top Via must carry our branch) and
    /// sends it.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: &Request,
        transport: Transport,
        destination: SocketAddr,
    ) -> Result<TxKey, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::AckIsNotATransaction);
        }
        let via = top_via(request).map_err(|_| TxError::NoBranch)?;
        let branch = via.branch().ok_or(TxError::NoBranch)?;
        let key = TxKey::client(branch, &request.method);
        let payload = encode_request(request);
        let reliable = transport.is_reliable();
        let machine = match request.method {
            Method::Invite => Machine::InviteClient(Box::new(InviteClient::new(
                now,
                reliable,
                self.timers,
                request.clone(),
                payload.clone(),
            ))),
            _ => Machine::NonInviteClient(NonInviteClient::new(
                now,
                reliable,
                self.timers,
                payload.clone(),
            )),
        };
        self.insert(key.clone(), transport, destination, machine)?;
        self.transmits.push_back(Transmit {
            transport,
            destination,
            payload,
        });
        Ok(key)
    }

    /// Offers an incoming response to the client transactions (§17.1.3 matching).
    pub fn receive_response(&mut self, now: Instant, response: &Response) -> ResponseMatch {
        let Some(key) = client_key(response) else {
            return ResponseMatch::Unmatched;
        };
        let Some(&id) = self.clients.get(&key) else {
            return ResponseMatch::Unmatched;
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return ResponseMatch::Unmatched;
        };
        let outcome = match &mut entry.machine {
            Machine::InviteClient(m) => m.on_response(now, response),
            Machine::NonInviteClient(m) => ClientResponse {
                pass_up: m.on_response(now, response.status_code.code()),
                send: None,
            },
            _ => return ResponseMatch::Unmatched,
        };
        if let Some(payload) = outcome.send {
            self.transmits.push_back(Transmit {
                transport: entry.transport,
                destination: entry.destination,
                payload,
            });
        }
        self.schedule(id);
        if outcome.pass_up {
            ResponseMatch::PassUp(key)
        } else {
            self.stats.responses_absorbed += 1;
            ResponseMatch::Absorbed
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id)) = self.deadlines.pop_due(now) {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue; // stale entry of a finished transaction
            };
            if entry.queued_at != Some(at) {
                continue; // stale: the deadline moved and was queued again
            }
            entry.queued_at = None;
            let mut finished = false;
            while entry.machine.next_deadline().is_some_and(|at| at <= now) {
                let Some(fired) = entry.machine.on_timeout(now) else {
                    break;
                };
                match fired {
                    Fired::Retransmit(payload) => {
                        self.stats.retransmissions_sent += 1;
                        self.transmits.push_back(Transmit {
                            transport: entry.transport,
                            destination: entry.destination,
                            payload,
                        });
                    }
                    Fired::TimedOut(timeout) => {
                        let key = entry.key.clone();
                        self.events.push_back(match timeout {
                            Timeout::NoResponse => {
                                self.stats.no_response_timeouts += 1;
                                TxEvent::NoResponse { key }
                            }
                            Timeout::NoAck => {
                                self.stats.ack_timeouts += 1;
                                TxEvent::NoAck { key }
                            }
                            Timeout::No2xxAck => {
                                self.stats.ack_timeouts += 1;
                                TxEvent::No2xxAck { key }
                            }
                        });
                        finished = true;
                        break;
                    }
                    Fired::Terminated => {
                        finished = true;
                        break;
                    }
                }
            }
            if finished {
                self.remove(id);
            } else {
                self.schedule(id);
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// Earliest time `handle_timeout` has work (may be early, never late).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    fn insert(
        &mut self,
        key: TxKey,
        transport: Transport,
        destination: SocketAddr,
        machine: Machine,
    ) -> Result<(), TxError> {
        let index = if machine.is_server() {
            &mut self.servers
        } else {
            &mut self.clients
        };
        if index.contains_key(&key) {
            return Err(TxError::Duplicate);
        }
        let id = self.next_id;
        self.next_id += 1;
        index.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                key,
                transport,
                destination,
                machine,
                queued_at: None,
            },
        );
        self.schedule(id);
        Ok(())
    }

    /// Queues the transaction's current deadline unless it is queued already.
    fn schedule(&mut self, id: u64) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Some(at) = entry.machine.next_deadline() else {
            return;
        };
        if entry.queued_at != Some(at) {
            entry.queued_at = Some(at);
            self.deadlines.schedule(at, id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            let index = if entry.machine.is_server() {
                &mut self.servers
            } else {
                &mut self.clients
            };
            index.remove(&entry.key);
            self.events
                .push_back(TxEvent::Terminated { key: entry.key });
        }
    }
}

/// §17.1.3: a response matches the client transaction with the top Via's branch and the
/// CSeq method.
fn client_key(response: &Response) -> Option<TxKey> {
    let via = response.headers.iter().find_map(|h| match h {
        Header::Via(v) => Some(rsip::headers::UntypedHeader::value(v)),
        _ => None,
    })?;
    let via = TopVia::parse(via).ok()?;
    let method = headers::find(&response.headers, "CSeq")?
        .split_whitespace()
        .nth(1)?
        .parse::<Method>()
        .ok()?;
    Some(TxKey::client(via.branch()?, &method))
}

#[cfg(test)]
mod tests;
