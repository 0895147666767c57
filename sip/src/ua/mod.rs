//! The user agent core the gateway drives: a UAS that owns the transaction layer and the
//! dialogs of its calls.
//!
//! Sans-IO, quinn-proto style: the shell calls [`UserAgent::handle_input`] for each received
//! message and [`UserAgent::handle_timeout`] at [`UserAgent::next_deadline`], then drains
//! [`UserAgent::poll_transmit`] and [`UserAgent::poll_event`]; the application answers events
//! with the commands (`answer`, `reject`, `hangup`, ...), each of which takes `now`.
//!
//! Every [`UaEvent::IncomingCall`] ends in exactly one of: a successful `reject()` (no event),
//! [`UaEvent::CallCancelled`], or [`UaEvent::CallEnded`].

mod call;
mod inbound;
mod outbound;
mod session_timer;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::Method;

pub use crate::message::{Transmit, Transport};
pub use session_timer::RFC_MIN_SE;

use crate::dialog::DialogId;
use crate::message::DEFAULT_MAX_MESSAGE_BYTES;
use crate::timers::{earliest, DeadlineQueue, TimerConfig};
use crate::transaction::{TransactionLayer, TxError, TxKey};
use call::Call;

/// Configuration of the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaConfig {
    pub timers: TimerConfig,
    /// Address advertised in our Via and Contact headers.
    pub local_addr: SocketAddr,
    /// Sent as `Server` in responses and `User-Agent` in requests.
    pub user_agent: String,
    /// Larger messages are dropped unparsed.
    pub max_message_bytes: usize,
    /// Methods we accept and list in `Allow`. Known methods outside this list are answered
    /// 405; ACK and CANCEL are always processed. Methods this UA does not implement (MESSAGE,
    /// SUBSCRIBE, ...) are 405 even if listed.
    pub allow_methods: Vec<Method>,
    /// Smallest RFC 4028 session interval we accept, in seconds (raised to 90 if lower).
    pub min_session_expires: u32,
}

impl UaConfig {
    /// Methods this UA implements.
    pub const SUPPORTED_METHODS: [Method; 9] = [
        Method::Invite,
        Method::Ack,
        Method::Cancel,
        Method::Bye,
        Method::Options,
        Method::Info,
        Method::Update,
        Method::PRack,
        // In-dialog only: the progress reports of our REFER (RFC 3515).
        Method::Notify,
    ];

    /// Defaults for everything but the advertised address.
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            timers: TimerConfig::default(),
            local_addr,
            user_agent: concat!("bargein-sip/", env!("CARGO_PKG_VERSION")).to_string(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            allow_methods: Self::SUPPORTED_METHODS.to_vec(),
            min_session_expires: RFC_MIN_SE,
        }
    }
}

/// Identifies one call for the lifetime of the user agent (never reused).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CallHandle(u64);

impl CallHandle {
    /// Number for logs and metrics.
    pub fn id(self) -> u64 {
        self.0
    }
}

/// Identity and routing headers of an INVITE, verbatim, for the application (in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallHeaders(Vec<(String, String)>);

impl CallHeaders {
    /// Header names kept besides every `X-` header.
    pub const KEPT: [&'static str; 12] = [
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Remote-Party-ID",
        "Privacy",
        "Diversion",
        "History-Info",
        "User-Agent",
        "Subject",
        "Organization",
        "Priority",
        "Alert-Info",
        "Call-Info",
    ];

    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` in message order (e.g. several Diversion headers).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn from_headers(headers: &rsip::Headers) -> Self {
        let kept = headers
            .iter()
            .map(crate::message::headers::name_value)
            .filter(|(name, _)| {
                Self::KEPT.iter().any(|k| k.eq_ignore_ascii_case(name))
                    || name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            })
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        Self(kept)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE (answered 200), or CANCEL-less BYE on an early dialog.
    RemoteHangup,
    /// Our `hangup()` completed: BYE answered (any final), or the call was not answered yet
    /// and was refused with 480.
    LocalHangup,
    /// Our 2xx was never ACKed (Timer L); a BYE was sent.
    AckTimeout,
    /// Our BYE got no response (Timer F).
    ByeTimeout,
    /// RFC 4028: no session refresh arrived in time; a BYE was sent.
    SessionTimerExpired,
}

/// What the application must know or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UaEvent {
    /// A new INVITE. Answer with `answer`, `send_provisional`, `reject` or `hangup`.
    IncomingCall {
        call: CallHandle,
        call_id: String,
        /// From header value.
        from: String,
        /// To header value.
        to: String,
        /// User part of the To URI.
        to_user: Option<String>,
        /// The Request-URI.
        request_uri: String,
        source: SocketAddr,
        transport: Transport,
        /// SDP offer; None for a delayed offer (our 200 must then carry the offer).
        offer: Option<String>,
        headers: CallHeaders,
    },
    /// The ACK for our 2xx arrived. `answer` is the ACK's SDP (delayed-offer calls). Also
    /// emitted for the ACK of a re-INVITE that carried an SDP answer.
    CallConfirmed {
        call: CallHandle,
        answer: Option<String>,
    },
    /// The caller cancelled before we answered (200 to CANCEL and 487 already sent).
    CallCancelled {
        call: CallHandle,
    },
    /// A re-INVITE, or an UPDATE with an SDP offer. Answer with `respond_reinvite`. `offer` is
    /// None for a re-INVITE without SDP (our 200 must carry an offer; the ACK brings the
    /// answer, reported as `CallConfirmed`).
    ReInvite {
        call: CallHandle,
        offer: Option<String>,
    },
    /// An INFO (already answered 200), e.g. SIP INFO DTMF.
    Info {
        call: CallHandle,
        content_type: Option<String>,
        body: String,
    },
    CallEnded {
        call: CallHandle,
        reason: EndReason,
    },
    /// Progress of our `refer()`: the REFER's final response (`from_notify: false`; 202 =
    /// accepted, ≥ 300 = refused, 408 = no answer), then the status line of each NOTIFY's
    /// message/sipfrag body (`from_notify: true`; ≥ 200 is final). NOTIFYs are answered 200.
    TransferProgress {
        call: CallHandle,
        status: u16,
        from_notify: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    #[error("no such call")]
    UnknownCall,
    #[error("not possible in this call state: {0}")]
    InvalidState(&'static str),
    #[error("status code {0} not allowed here")]
    InvalidStatus(u16),
    #[error("a 2xx to INVITE must carry SDP (answer, or offer for a delayed offer)")]
    SdpRequired,
    #[error("transaction error: {0}")]
    Transaction(#[from] TxError),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UaStats {
    /// Messages dropped because they did not parse (never answered).
    pub parse_errors: u64,
    /// CRLF keep-alives received.
    pub keepalives: u64,
    /// Requests that parsed but were invalid, answered with 400 (or 483/505).
    pub bad_requests: u64,
    /// Invalid ACKs, unmatched ACKs and responses with no transaction: dropped.
    pub stray_messages: u64,
    /// Request retransmissions absorbed by server transactions.
    pub retransmissions_absorbed: u64,
    /// Our own retransmissions (requests, 2xx and non-2xx finals).
    pub retransmissions_sent: u64,
    /// Our requests that got no final response (Timers B/F).
    pub transaction_timeouts: u64,
    /// ACKs that never came (Timers H/L).
    pub ack_timeouts: u64,
    pub session_timer_expiries: u64,
    pub calls_offered: u64,
    pub active_calls: usize,
    pub active_transactions: usize,
}

/// The UAS core. See the module documentation for the driving loop.
#[derive(Debug)]
pub struct UserAgent {
    cfg: UaConfig,
    layer: TransactionLayer,
    calls: HashMap<CallHandle, Call>,
    dialogs: HashMap<DialogId, CallHandle>,
    /// Transactions whose outcome matters to a call (INVITE, re-INVITE, our BYE).
    tx_owner: HashMap<TxKey, CallHandle>,
    /// Calls by (Call-ID, From tag, CSeq) to detect merged requests (§8.2.2.2).
    origins: HashMap<(String, String, u32), CallHandle>,
    session_deadlines: DeadlineQueue<CallHandle>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UaEvent>,
    stats: UaStats,
    next_call: u64,
    rng: StdRng,
}

impl UserAgent {
    pub fn new(cfg: UaConfig) -> Self {
        Self {
            layer: TransactionLayer::new(cfg.timers),
            cfg,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            tx_owner: HashMap::new(),
            origins: HashMap::new(),
            session_deadlines: DeadlineQueue::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: UaStats::default(),
            next_call: 1,
            rng: StdRng::from_entropy(),
        }
    }

    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }

    /// One received message (a UDP datagram or one framed TCP message).
    pub fn handle_input(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        datagram: &[u8],
    ) {
        self.on_input(now, transport, source, datagram);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer
            .poll_transmit()
            .or_else(|| self.transmits.pop_front())
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called (may be early, never late).
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.layer.next_deadline(), self.session_deadlines.next())
    }

    /// 200 OK to the INVITE with `sdp` as body (the answer, or our offer for a delayed offer).
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallHandle,
        sdp: Option<String>,
    ) -> Result<(), UaError> {
        self.answer_call(now, call, sdp)
    }

    /// 101-199 (typically 180 or 183), establishing an early dialog.
    pub fn send_provisional(
        &mut self,
        now: Instant,
        call: CallHandle,
        code: u16,
    ) -> Result<(), UaError> {
        self.provisional(now, call, code)
    }

    /// Refuses an unanswered call with a 300-699 final response. No event follows.
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallHandle,
        code: u16,
        reason: &str,
    ) -> Result<(), UaError> {
        self.reject_call(now, call, code, reason)
    }

    /// Ends the call: BYE if answered (deferred until the ACK if it has not come yet), 480 if
    /// not answered yet. `CallEnded { LocalHangup | ByeTimeout }` follows.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), UaError> {
        self.hangup_call(now, call)
    }

    /// Answers the pending re-INVITE / UPDATE: `Ok(sdp)` → 200 with it, `Err((code, reason))`
    /// → that final response (the call continues).
    pub fn respond_reinvite(
        &mut self,
        now: Instant,
        call: CallHandle,
        result: Result<String, (u16, String)>,
    ) -> Result<(), UaError> {
        self.respond_pending_offer(now, call, result)
    }

    /// Asks the peer to call `target` (a SIP URI, sent as Refer-To) with an in-dialog REFER
    /// (RFC 3515). Progress comes back as [`UaEvent::TransferProgress`]. One at a time.
    pub fn refer(&mut self, now: Instant, call: CallHandle, target: &str) -> Result<(), UaError> {
        self.refer_call(now, call, target)
    }

    /// Sends an in-dialog INFO with this body (e.g. `application/dtmf-relay` key presses).
    /// Its response is not reported: INFO carries no state.
    pub fn send_info(
        &mut self,
        now: Instant,
        call: CallHandle,
        content_type: &str,
        body: &str,
    ) -> Result<(), UaError> {
        self.info_call(now, call, content_type, body)
    }

    pub fn stats(&self) -> UaStats {
        let tx = self.layer.stats();
        UaStats {
            retransmissions_absorbed: tx.retransmissions_absorbed,
            retransmissions_sent: tx.retransmissions_sent,
            transaction_timeouts: tx.no_response_timeouts,
            ack_timeouts: tx.ack_timeouts,
            active_calls: self.calls.len(),
            active_transactions: self.layer.len(),
            ..self.stats
        }
    }

    fn random_token(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    /// Initial local CSeq for a dialog: random, well below 2^31 so it can grow.
    fn random_cseq(&mut self) -> u32 {
        self.rng.gen_range(1..=1_000_000)
    }
}
