//! Echo-aware gate for the barge-in policy.
//!
//! The linear canceller removes most of the echo, but not all of it (and none of it while
//! it converges). When the bot is talking and the inbound audio is no louder than the echo
//! that talking should produce, inbound speech-like energy may well be the bot's own voice:
//! the barge-in policy should then ask for more evidence (higher VAD threshold, longer
//! onset). When the inbound level clearly exceeds the expected echo, something other than
//! echo is there. This module only states which case applies; the policy decides the bar.

use super::EchoFrameInfo;

/// What the inbound audio of a frame can be, given what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoGateVerdict {
    /// Nothing audible was sent recently: inbound audio cannot be echo.
    NoFarEnd,
    /// The bot is talking and the inbound level is within the expected echo level (plus
    /// margin): it may be echo, raise the bar.
    WithinExpectedEcho,
    /// The bot is talking but the inbound audio is louder than its echo can be.
    AboveExpectedEcho,
}

/// Compares the inbound level with the echo level expected from the far end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoGate {
    /// How far (dB) inbound audio may exceed the expected echo level and still count as
    /// possible echo. Covers estimation error of the echo return loss; 6 dB by default.
    pub margin_db: f32,
}

impl Default for EchoGate {
    fn default() -> Self {
        Self { margin_db: 6.0 }
    }
}

impl EchoGate {
    pub fn new(margin_db: f32) -> Self {
        Self {
            margin_db: if margin_db.is_finite() {
                margin_db
            } else {
                6.0
            },
        }
    }

    /// The verdict for one frame from its levels (dBFS). Non-finite levels count as
    /// silence, so a NaN can never hide the far end.
    pub fn assess(
        &self,
        far_active: bool,
        expected_echo_level_db: f32,
        inbound_level_db: f32,
    ) -> EchoGateVerdict {
        if !far_active {
            return EchoGateVerdict::NoFarEnd;
        }
        let expected = if expected_echo_level_db.is_finite() {
            expected_echo_level_db
        } else {
            0.0
        };
        let inbound = if inbound_level_db.is_finite() {
            inbound_level_db
        } else {
            f32::NEG_INFINITY
        };
        if inbound <= expected + self.margin_db {
            EchoGateVerdict::WithinExpectedEcho
        } else {
            EchoGateVerdict::AboveExpectedEcho
        }
    }

    /// The verdict for a frame processed by [`super::EchoCanceller::process`], using the
    /// inbound level before cancellation.
    pub fn assess_frame(&self, info: &EchoFrameInfo) -> EchoGateVerdict {
        self.assess(
            info.far_active,
            info.expected_echo_level_db,
            info.near_level_db,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_far_end_means_no_echo() {
        let gate = EchoGate::default();
        assert_eq!(gate.assess(false, -20.0, -25.0), EchoGateVerdict::NoFarEnd);
    }

    #[test]
    fn inbound_at_or_below_expected_echo_plus_margin_is_possible_echo() {
        let gate = EchoGate::new(6.0);
        assert_eq!(
            gate.assess(true, -30.0, -40.0),
            EchoGateVerdict::WithinExpectedEcho
        );
        assert_eq!(
            gate.assess(true, -30.0, -24.0),
            EchoGateVerdict::WithinExpectedEcho
        );
        assert_eq!(
            gate.assess(true, -30.0, -23.9),
            EchoGateVerdict::AboveExpectedEcho
        );
    }

    #[test]
    fn non_finite_levels_are_handled_conservatively() {
        let gate = EchoGate::new(f32::NAN);
        assert_eq!(gate.margin_db, 6.0);
        // Unknown expected level: assume loud echo (0 dBFS), so the bar stays raised.
        assert_eq!(
            gate.assess(true, f32::NAN, -10.0),
            EchoGateVerdict::WithinExpectedEcho
        );
        assert_eq!(
            gate.assess(true, -30.0, f32::NAN),
            EchoGateVerdict::WithinExpectedEcho
        );
    }

    #[test]
    fn assess_frame_uses_the_inbound_level_before_cancellation() {
        let gate = EchoGate::default();
        let info = EchoFrameInfo {
            far_active: true,
            expected_echo_level_db: -30.0,
            near_level_db: -12.0,
            double_talk: true,
            erle_db: 20.0,
        };
        assert_eq!(gate.assess_frame(&info), EchoGateVerdict::AboveExpectedEcho);
        let quiet = EchoFrameInfo {
            near_level_db: -33.0,
            ..info
        };
        assert_eq!(
            gate.assess_frame(&quiet),
            EchoGateVerdict::WithinExpectedEcho
        );
    }
}
