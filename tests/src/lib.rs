//! End-to-end harness for the bargein gateway.
//!
//! The tests start the real gateway binary (`target/release/bargein-gateway`, or
//! `$BARGEIN_GATEWAY_BIN`) and drive it with independent peers: SIPp for signalling, the
//! `rtp_peer` binary of this crate for media (it shares no code with the gateway's `media`
//! crate), baresip as a real softphone, and raw UDP for the malformed-message corpus.
//!
//! Every test owns a `TestRun`: a run directory `target/e2e/<test>/` (gateway logs, SIPp traces,
//! peer reports and recordings stay there for inspection) and an exclusive block of ports, so
//! tests can run in parallel.

pub mod analysis;
pub mod audio;
pub mod baresip;
pub mod corpus;
pub mod eval;
pub mod flows;
pub mod gateway;
pub mod grpcbot;
pub mod peer;
pub mod ports;
pub mod report;
pub mod routing_hook;
pub mod routing_invite;
pub mod rtp;
pub mod run;
pub mod rxstamp;
pub mod sipp;
pub mod sipprobe;
pub mod twilio_peer;

pub use baresip::{Baresip, BaresipCall};
pub use gateway::Gateway;
pub use peer::{PeerOptions, RtpPeer};
pub use report::PeerReport;
pub use run::TestRun;
pub use sipp::{Sipp, SippRun};
pub use sipprobe::{send_udp_and_wait_response, SipProbe};
