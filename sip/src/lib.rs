//! Sans-IO SIP signalling for the gateway: message parsing and validation, RFC 3261
//! transactions, dialogs, and a UAS-side user agent core driven with `(input, now)` and
//! polled for transmits, events and the next deadline. `transport` is the tokio shell that
//! moves bytes; nothing else here does IO or reads a clock.

pub mod dialog;
pub mod message;
pub mod sdp;
pub mod timers;
pub mod transaction;
pub mod transport;
pub mod ua;

pub use message::{Transmit, Transport};
/// The SIP parsing crate this stack is built on, re-exported for its types (`Method`, ...).
pub use rsip;
