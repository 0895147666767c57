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

/// Frames (20 ms) the gate remembers the expected echo level: the VAD downstream has memory
/// (Silero's recurrent state keeps its speech probability up for ≈ 100–200 ms after speech
/// ends), so a chunk just after an echoed word — or in a short gap between words — still
/// carries that word's verdict and must be judged against that word's echo level.
pub const ECHO_MEMORY_FRAMES: usize = 10;

/// ERLE beyond which the residual-echo estimate is not lowered further: a measured 40 dB
/// can drop to 20 at the next word, and the residual must not be underestimated.
pub const MAX_TRUSTED_ERLE_DB: f32 = 25.0;

/// How far (dB) beyond the margin the canceller's output must exceed its expected residual
/// echo for the raised echo-gate bar to be lifted (see
/// [`EchoGate::residual_clearly_exceeded`]).
pub const CLEARLY_NOT_ECHO_DB: f32 = 6.0;

/// Compares the inbound level with the echo level expected from the far end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoGate {
    /// How far (dB) inbound audio may exceed the expected echo level and still count as
    /// possible echo. Covers estimation error of the echo return loss; 6 dB by default.
    pub margin_db: f32,
    /// Expected echo levels (dBFS) of the last frames, NaN where the far end was silent.
    recent_expected: [f32; ECHO_MEMORY_FRAMES],
    next: usize,
}

impl Default for EchoGate {
    fn default() -> Self {
        Self::new(6.0)
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
            recent_expected: [f32::NAN; ECHO_MEMORY_FRAMES],
            next: 0,
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

    /// The verdict for the next frame processed by [`super::EchoCanceller::process`], using
    /// the inbound level before cancellation, against the loudest echo expected over the
    /// last [`ECHO_MEMORY_FRAMES`] frames. Call once per frame, in order.
    pub fn assess_frame(&mut self, info: &EchoFrameInfo) -> EchoGateVerdict {
        let expected = if info.far_active {
            info.expected_echo_level_db
        } else {
            f32::NAN
        };
        if let Some(slot) = self.recent_expected.get_mut(self.next) {
            *slot = expected;
        }
        self.next = (self.next + 1) % ECHO_MEMORY_FRAMES;
        match self.recent_echo_level_db() {
            None => EchoGateVerdict::NoFarEnd,
            Some(loudest) => self.assess(true, loudest, info.near_level_db),
        }
    }

    /// The loudest echo level (dBFS) expected over the last [`ECHO_MEMORY_FRAMES`] frames
    /// assessed, `None` if the far end was silent throughout.
    pub fn recent_echo_level_db(&self) -> Option<f32> {
        let loudest = self
            .recent_expected
            .iter()
            .copied()
            .filter(|l| !l.is_nan())
            .fold(f32::NEG_INFINITY, f32::max);
        (loudest > f32::NEG_INFINITY).then_some(loudest)
    }

    /// Whether the canceller's output (level `out_level_db`) holds nothing but the echo it
    /// should leave behind: the recent expected echo less the canceller's ERLE (capped at
    /// [`MAX_TRUSTED_ERLE_DB`]), plus the margin. Silero hears speech in a residual echo at
    /// any level, so such output must not count as the caller, whatever the VAD says.
    pub fn residual_is_echo(&self, out_level_db: f32, erle_db: f32) -> bool {
        self.output_over_residual_db(out_level_db, erle_db)
            .is_some_and(|over| over <= self.margin_db)
    }

    /// Whether the canceller's output stands [`CLEARLY_NOT_ECHO_DB`] above what its
    /// residual echo can explain (the margin included): then the inbound audio, however
    /// loud our echo is on this line, holds something else — a caller talking over our
    /// converged echo — and the raised echo-gate bar would only delay their barge-in.
    /// Never before convergence: with no ERLE the residual is the whole expected echo,
    /// which the inbound level then exceeds and the gate says so anyway.
    pub fn residual_clearly_exceeded(&self, out_level_db: f32, erle_db: f32) -> bool {
        self.output_over_residual_db(out_level_db, erle_db)
            .is_some_and(|over| over > self.margin_db + CLEARLY_NOT_ECHO_DB)
    }

    /// dB of the canceller's output over the residual echo it should leave (the recent
    /// expected echo less the ERLE, capped at [`MAX_TRUSTED_ERLE_DB`]); None when nothing
    /// was sent. Non-finite levels count as silence, a non-finite ERLE as none.
    fn output_over_residual_db(&self, out_level_db: f32, erle_db: f32) -> Option<f32> {
        let echo = self.recent_echo_level_db()?;
        let erle = if erle_db.is_finite() {
            erle_db.clamp(0.0, MAX_TRUSTED_ERLE_DB)
        } else {
            0.0
        };
        let out = if out_level_db.is_finite() {
            out_level_db
        } else {
            f32::NEG_INFINITY
        };
        Some(out - (echo - erle))
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
    fn the_echo_of_a_word_is_remembered_for_the_vads_memory_span() {
        let mut gate = EchoGate::default();
        let word = EchoFrameInfo {
            far_active: true,
            expected_echo_level_db: -25.0,
            near_level_db: -26.0,
            double_talk: false,
            erle_db: 0.0,
            echo_likeness: None,
        };
        let gap = EchoFrameInfo {
            far_active: false,
            expected_echo_level_db: -100.0,
            near_level_db: -30.0,
            ..word
        };
        assert_eq!(
            gate.assess_frame(&word),
            EchoGateVerdict::WithinExpectedEcho
        );
        for _ in 1..ECHO_MEMORY_FRAMES {
            assert_eq!(gate.assess_frame(&gap), EchoGateVerdict::WithinExpectedEcho);
        }
        // A caller well above the remembered echo is not echo, even inside the span.
        let mut loud = EchoGate::default();
        loud.assess_frame(&word);
        let caller = EchoFrameInfo {
            near_level_db: -12.0,
            ..gap
        };
        assert_eq!(
            loud.assess_frame(&caller),
            EchoGateVerdict::AboveExpectedEcho
        );
        // After the span the far end is forgotten.
        assert_eq!(gate.assess_frame(&gap), EchoGateVerdict::NoFarEnd);
    }

    #[test]
    fn residual_echo_is_judged_against_the_echo_less_the_erle() {
        let mut gate = EchoGate::default();
        assert!(!gate.residual_is_echo(-90.0, 0.0), "no far end, no echo");
        let word = EchoFrameInfo {
            far_active: true,
            expected_echo_level_db: -30.0,
            near_level_db: -30.0,
            double_talk: false,
            erle_db: 0.0,
            echo_likeness: None,
        };
        gate.assess_frame(&word);
        // Not converged: output at the echo level is echo.
        assert!(gate.residual_is_echo(-30.0, 0.0));
        // Converged (20 dB): the residual is expected near -50; -40 is more than echo.
        assert!(gate.residual_is_echo(-46.0, 20.0));
        assert!(!gate.residual_is_echo(-40.0, 20.0));
        // ERLE is trusted only up to 25 dB; NaNs are conservative.
        assert!(gate.residual_is_echo(-50.0, 60.0));
        assert!(gate.residual_is_echo(-30.0, f32::NAN));
        assert!(gate.residual_is_echo(f32::NAN, 20.0));
    }

    /// A caller over a loud but cancelled echo: the inbound level is within our echo's, but
    /// the output is far above the residual the converged canceller leaves, so the raised
    /// bar is lifted (on the corpus it delayed such callers' onset by ≈ 100 ms). Never
    /// before convergence, never for output near the residual.
    #[test]
    fn output_clearly_above_the_residual_lifts_the_raised_bar() {
        let mut gate = EchoGate::default();
        assert!(!gate.residual_clearly_exceeded(-20.0, 25.0), "no far end");
        let word = EchoFrameInfo {
            far_active: true,
            expected_echo_level_db: -20.0,
            near_level_db: -20.0,
            double_talk: false,
            erle_db: 25.0,
            echo_likeness: None,
        };
        gate.assess_frame(&word);
        // Residual expected near -45: -28 is 17 dB over it, the margin is 6 (+6 clear).
        assert!(gate.residual_clearly_exceeded(-28.0, 25.0));
        assert!(
            !gate.residual_clearly_exceeded(-34.0, 25.0),
            "only 11 dB over"
        );
        // The ERLE is trusted only up to 25 dB.
        assert!(!gate.residual_clearly_exceeded(-34.0, 60.0));
        // Not converged: the residual is the whole echo, nothing inbound within it clears it.
        assert!(!gate.residual_clearly_exceeded(-15.0, 0.0));
        // Unknown levels never lift the bar.
        assert!(!gate.residual_clearly_exceeded(f32::NAN, 25.0));
        assert!(!gate.residual_clearly_exceeded(-28.0, f32::NAN));
    }

    #[test]
    fn assess_frame_uses_the_inbound_level_before_cancellation() {
        let mut gate = EchoGate::default();
        let info = EchoFrameInfo {
            far_active: true,
            expected_echo_level_db: -30.0,
            near_level_db: -12.0,
            double_talk: true,
            erle_db: 20.0,
            echo_likeness: None,
        };
        assert_eq!(gate.assess_frame(&info), EchoGateVerdict::AboveExpectedEcho);
        let quiet = EchoFrameInfo {
            near_level_db: -33.0,
            ..info
        };
        let mut gate = EchoGate::default();
        assert_eq!(
            gate.assess_frame(&quiet),
            EchoGateVerdict::WithinExpectedEcho
        );
    }
}
