//! Barge-in evaluation: a deterministic corpus of caller-side audio with ground truth
//! (`corpus`, built from `sources` and `synth`), the closed-loop echo path the RTP peer puts
//! on every call (`echo`), the gateway's logged decisions (`gwlog`), per-call verdicts and
//! per-family rates (`score`), and the runner that drives the real gateway (`harness`).

pub mod corpus;
pub mod echo;
pub mod gwlog;
pub mod harness;
pub mod rng;
pub mod score;
pub mod sources;
pub mod synth;
