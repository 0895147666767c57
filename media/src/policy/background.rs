//! Speech that was already there when the agent started talking is not a barge-in.
//!
//! A barge-in is a *reaction* to the agent, and nobody reacts to the call's first prompt
//! within half a second of its first syllable. Speech that starts sooner was going on anyway: a caller
//! still saying "hello?" at pickup, or — the case that matters — a TV, a radio or a room of
//! people behind the caller. Silero rightly calls a crowd speech (p ≈ 0.95 on 5–6 talkers),
//! so the probability cannot tell it from the caller; its timing and its level can.
//!
//! While such background speech goes on, speech-like chunks at its level are neutral (they
//! neither start nor end the caller's speech); a chunk at least [`RISE_DB`] louder than the
//! background is someone talking over it — the caller, closer to the microphone — and
//! counts as speech. The background is forgotten after [`BACKGROUND_RELEASE`] of silence
//! (the "hello?" ended, the TV went quiet); chunks masked by our own echo are not silence.
//! The background's level is learnt only from chunks heard outside our own echo (unmasked,
//! or masked but badly explained by what we sent, [`OUR_ECHO_LIKENESS`]): Silero hears
//! speech in our unconverged first words too, and a level learnt from them would hide a
//! caller quieter than our own voice.
//!
//! A background noticed on a chunk that may be nothing but our own unconverged first words
//! (masked, and not shown by the likeness to be anything else) is *provisional*: until something is
//! heard outside our echo, its level follows everything heard, our echo included, so the
//! bar falls as the canceller converges; the first chunk heard outside our echo confirms
//! it at that chunk's level — unless it is already louder than the bar (a caller). Taken
//! as confirmed at once, our own first words at −25 dBFS became the call's "background"
//! and a clean caller as loud as them was never heard (CI subset, interrupt_clean-02).

use std::time::{Duration, Instant};

use super::speech::ChunkClass;

/// Speech starting this soon after the agent started playing was not caused by it.
pub const REACTION_GUARD: Duration = Duration::from_millis(500);
/// How much louder than the background's mean level (dB) a chunk must be to count as the
/// caller…
pub const RISE_DB: f32 = 6.0;
/// …and how much louder than its recent peaks: a crowd's own level swings ±5 dB around its
/// mean, and its loud moments must not pass for someone talking over it.
pub const PEAK_RISE_DB: f32 = 2.0;
/// Fall of the tracked peak level per 32 ms chunk (≈ 3 dB/s).
const PEAK_DECAY_DB: f32 = 0.1;
/// After the background is noticed, this long of it is learnt whatever its level (its first
/// syllable alone says little about how loud it gets).
const LEARNING: Duration = Duration::from_millis(500);
/// Silence that ends the background: a crowd or a TV has lulls of a second; a caller who
/// said "hello?" at pickup and then listens is quiet far longer.
pub const BACKGROUND_RELEASE: Duration = Duration::from_millis(1500);
/// A masked chunk explained this badly by our own audio (normalised envelope correlation
/// below it) is something else talking under our words.
pub const OUR_ECHO_LIKENESS: f32 = 0.5;
/// Smoothing of the background level over its speech chunks (≈ 0.5 s time constant).
const LEVEL_SMOOTHING: f32 = 0.9;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Background {
    level_db: f32,
    /// Upper envelope of the background's chunk levels.
    peak_db: f32,
    noticed: Instant,
    /// Start of the current run of silent chunks.
    silent_since: Option<Instant>,
    /// Noticed on a chunk that may be only our echo: its level is what is heard, our echo
    /// included, until something is heard outside our echo.
    provisional: bool,
}

impl Background {
    fn noticed(now: Instant, level_db: f32, provisional: bool) -> Self {
        Self {
            level_db,
            peak_db: level_db,
            noticed: now,
            silent_since: None,
            provisional,
        }
    }
}

/// Speech under a background is neither the caller's start nor their silence.
fn neutral(class: ChunkClass) -> ChunkClass {
    if class == ChunkClass::Speech {
        ChunkClass::Between
    } else {
        class
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct BackgroundGuard {
    #[cfg(test)]
    disabled: bool,
    agent_playing: bool,
    agent_started: Option<Instant>,
    background: Option<Background>,
    /// The chunk the next [`Self::filter`] call is about may be nothing but our echo:
    /// masked, and not known to be anything else (it is heard outside our echo when it is
    /// unmasked, or masked but not explained by our audio).
    maybe_our_echo: bool,
}

impl BackgroundGuard {
    /// The class the policy should use for a chunk ending at `now`: `heard` is what the
    /// VAD said (speech even if masked by our echo: a crowd under our own first words is
    /// still a crowd), `class` what the policy would use without this guard, `level_db`
    /// the chunk's level (dBFS of the VAD input); `agent_playing` and `tracker_idle` (no
    /// caller speech in progress) as the policy knows them.
    #[allow(clippy::too_many_arguments)]
    pub fn filter(
        &mut self,
        now: Instant,
        heard: ChunkClass,
        class: ChunkClass,
        level_db: f32,
        agent_playing: bool,
        tracker_idle: bool,
        min_silence: Duration,
    ) -> ChunkClass {
        #[cfg(test)]
        if self.disabled {
            return class;
        }
        // Only the call's first prompt: later, a caller who starts talking just as a
        // reply starts collides with it and must be heard.
        if agent_playing && !self.agent_playing && self.agent_started.is_none() {
            self.agent_started = Some(now);
        }
        self.agent_playing = agent_playing;
        let level = if level_db.is_finite() {
            level_db
        } else {
            -100.0
        };
        if let Some(bg) = self.background.as_mut() {
            match heard {
                // Only real silence ends the background; an in-between probability says
                // nothing either way.
                ChunkClass::Silence => {
                    let since = *bg.silent_since.get_or_insert(now);
                    if now.saturating_duration_since(since) >= min_silence.max(BACKGROUND_RELEASE) {
                        self.background = None;
                    }
                    return class;
                }
                ChunkClass::Between => return class,
                ChunkClass::Speech => {}
            }
            bg.silent_since = None;
            let over = (bg.level_db + RISE_DB).max(bg.peak_db + PEAK_RISE_DB);
            let learning = now.saturating_duration_since(bg.noticed) < LEARNING;
            if bg.provisional {
                if class == ChunkClass::Speech && level >= over && !learning {
                    return ChunkClass::Speech;
                }
                if !tracker_idle {
                    // A caller rose over the bar: their quieter syllables (or those at the
                    // raised bar) are theirs, not a background's.
                } else if !self.maybe_our_echo {
                    // Heard outside our echo: a background after all, at this level.
                    // (Its learning time counts from the notice: a caller's soft first
                    // syllable may be what confirms it, and their next ones must count.)
                    bg.provisional = false;
                    bg.level_db = level;
                    bg.peak_db = bg.peak_db.max(level);
                } else {
                    // Until then its level is what is heard, our echo included: the bar
                    // falls as the canceller converges.
                    bg.level_db = LEVEL_SMOOTHING * bg.level_db + (1.0 - LEVEL_SMOOTHING) * level;
                    bg.peak_db = (bg.peak_db - PEAK_DECAY_DB).max(level);
                }
                return neutral(class);
            }
            if class == ChunkClass::Speech && level >= over && !learning {
                return ChunkClass::Speech;
            }
            // Its level is learnt where it is heard outside our echo: a chunk that may be
            // only our unconverged voice would teach it our echo's loudness, and hide a
            // caller quieter than our own voice behind it.
            // Nor while a candidate is under way: its quieter syllables are the caller's too.
            if !self.maybe_our_echo && tracker_idle {
                bg.level_db = LEVEL_SMOOTHING * bg.level_db + (1.0 - LEVEL_SMOOTHING) * level;
                bg.peak_db = (bg.peak_db - PEAK_DECAY_DB).max(level);
            }
            return neutral(class);
        }
        let too_soon = self
            .agent_started
            .is_some_and(|t| agent_playing && now.saturating_duration_since(t) < REACTION_GUARD);
        if heard == ChunkClass::Speech && tracker_idle && too_soon {
            self.background = Some(Background::noticed(now, level, self.maybe_our_echo));
            return neutral(class);
        }
        class
    }

    /// What the echo gate says of the chunk the next [`Self::filter`] call is about: masked
    /// (no louder than our residual echo) and how well our audio explains it. Masked and
    /// well explained, it is taken for our echo.
    pub fn set_echo_evidence(&mut self, masked: bool, echo_likeness: Option<f32>) {
        self.maybe_our_echo = masked && !echo_likeness.is_some_and(|l| l < OUR_ECHO_LIKENESS);
    }

    /// The agent's audio started at `at` (the first call counts).
    pub fn note_agent_started(&mut self, at: Instant) {
        self.agent_started.get_or_insert(at);
    }

    /// For the policy tests whose timelines are about something else.
    #[cfg(test)]
    pub fn disable(&mut self) {
        self.disabled = true;
    }

    /// Background speech is being discounted.
    #[cfg(test)]
    pub fn active(&self) -> bool {
        self.background.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChunkClass::{Between, Silence, Speech};

    const MIN_SILENCE: Duration = Duration::from_millis(400);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// One chunk while the agent plays and no caller speech is in progress.
    fn playing(
        g: &mut BackgroundGuard,
        now: Instant,
        heard: ChunkClass,
        class: ChunkClass,
        level_db: f32,
    ) -> ChunkClass {
        g.filter(now, heard, class, level_db, true, true, MIN_SILENCE)
    }

    /// The agent starts at 0; at `notice_ms` a chunk at `level_db`, masked and not yet
    /// explained (our unconverged first words, or something under them), is noticed as a
    /// provisional background.
    fn provisional_start(t0: Instant, notice_ms: u64, level_db: f32) -> BackgroundGuard {
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        g.set_echo_evidence(true, None);
        assert_eq!(
            playing(&mut g, at(t0, notice_ms), Speech, Between, level_db),
            Between
        );
        assert!(g.active());
        g
    }

    #[test]
    fn speech_right_after_the_agent_starts_is_background_until_it_ends() {
        let t0 = Instant::now();
        let mut g = BackgroundGuard::default();
        assert_eq!(playing(&mut g, at(t0, 0), Silence, Silence, -60.0), Silence);
        // A crowd starts 200 ms into the prompt and goes on at about -28 dBFS.
        for ms in (200..3000).step_by(32) {
            let level = if ms % 64 == 0 { -27.0 } else { -29.0 };
            // Masked by our echo at first (the policy would call it neutral anyway).
            let class = if ms < 1000 { Between } else { Speech };
            assert_eq!(playing(&mut g, at(t0, ms), Speech, class, level), Between);
        }
        assert!(g.active());
        // Half a second of the crowd masked under our echo (heard as speech, neutral for
        // the policy) does not end it, nor do in-between chunks.
        for ms in (3000..3500).step_by(32) {
            let heard = if ms % 64 == 0 { Speech } else { Between };
            assert_eq!(playing(&mut g, at(t0, ms), heard, Between, -28.0), Between);
        }
        assert!(g.active());
        // The caller, 8 dB above it, is heard.
        assert_eq!(playing(&mut g, at(t0, 3500), Speech, Speech, -20.0), Speech);
        // The crowd stops: after 1.5 s of silence (not 1.4) it is forgotten, and speech counts.
        assert_eq!(
            playing(&mut g, at(t0, 3600), Silence, Silence, -60.0),
            Silence
        );
        assert_eq!(
            playing(&mut g, at(t0, 5000), Silence, Silence, -60.0),
            Silence
        );
        assert!(g.active());
        assert_eq!(
            playing(&mut g, at(t0, 5100), Silence, Silence, -60.0),
            Silence
        );
        assert!(!g.active());
        assert_eq!(playing(&mut g, at(t0, 5200), Speech, Speech, -28.0), Speech);
    }

    #[test]
    fn the_crowds_own_loud_moments_are_not_the_caller() {
        let t0 = Instant::now();
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        // A crowd swinging between -34 and -24 dBFS (mean ≈ -29).
        for (i, ms) in (200..3000).step_by(32).enumerate() {
            let level = [-34.0, -29.0, -24.0, -29.0][i % 4];
            playing(&mut g, at(t0, ms), Speech, Speech, level);
        }
        // 6 dB over its mean but no louder than its peaks: still the crowd.
        assert_eq!(
            playing(&mut g, at(t0, 3000), Speech, Speech, -23.0),
            Between
        );
        // Clearly over its peaks: someone closer to the microphone.
        assert_eq!(playing(&mut g, at(t0, 3032), Speech, Speech, -19.0), Speech);
    }

    #[test]
    fn our_echos_loudness_is_not_learnt_as_the_backgrounds() {
        let t0 = Instant::now();
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        // Noticed at -40 dBFS; then our loud unconverged echo, masked (the delay not yet
        // known, then well explained by what we sent): not learnt.
        playing(&mut g, at(t0, 300), Speech, Between, -40.0);
        for (i, ms) in (332..2000).step_by(32).enumerate() {
            g.set_echo_evidence(true, if i < 5 { None } else { Some(0.9) });
            playing(&mut g, at(t0, ms), Speech, Between, -22.0);
        }
        assert!(g.active());
        // A caller at -28 dBFS, quieter than our echo was, is heard over the background;
        // their softer syllables while the candidate lives are not learnt as background.
        g.set_echo_evidence(false, Some(0.2));
        assert_eq!(playing(&mut g, at(t0, 2000), Speech, Speech, -28.0), Speech);
        for ms in (2032..2200).step_by(32) {
            g.filter(at(t0, ms), Speech, Between, -31.0, true, false, MIN_SILENCE);
        }
        assert_eq!(
            g.filter(
                at(t0, 2200),
                Speech,
                Speech,
                -30.0,
                true,
                false,
                MIN_SILENCE
            ),
            Speech
        );
        // A crowd under our words (masked, badly explained by them) is learnt.
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        playing(&mut g, at(t0, 300), Speech, Between, -40.0);
        for ms in (332..2000).step_by(32) {
            g.set_echo_evidence(true, Some(0.3));
            playing(&mut g, at(t0, ms), Speech, Between, -26.0);
        }
        g.set_echo_evidence(false, Some(0.2));
        assert_eq!(
            playing(&mut g, at(t0, 2000), Speech, Speech, -28.0),
            Between
        );
    }

    /// Our own first words, before the delay is known, are heard as speech at −25 dBFS in
    /// the first half second: a provisional background. Its bar follows what is heard —
    /// our converging echo — down, and a caller as loud as our first words is heard; their
    /// soft first syllable confirms the background but does not hide the next ones. (Taken
    /// as a background at −25 dBFS, the caller needed −19 dBFS: a clean caller of the CI
    /// subset was missed.)
    #[test]
    fn our_first_words_do_not_set_the_bar_for_the_call() {
        let t0 = Instant::now();
        let mut g = provisional_start(t0, 320, -25.0);
        // Our echo, masked: unexplained until the delay is found, then well explained, ever
        // quieter as the canceller converges. Never silence, so never forgotten.
        for (i, ms) in (352..3000).step_by(32).enumerate() {
            g.set_echo_evidence(true, if ms < 600 { None } else { Some(0.8) });
            let level = if ms < 600 {
                -30.0
            } else {
                -45.0 - (i % 3) as f32
            };
            assert_eq!(playing(&mut g, at(t0, ms), Speech, Between, level), Between);
        }
        assert!(g.active());
        // The caller's soft first syllable, under the bar, confirms a background…
        g.set_echo_evidence(false, Some(0.3));
        assert_eq!(
            playing(&mut g, at(t0, 3000), Speech, Speech, -40.0),
            Between
        );
        // …but the next, as loud as our first words were, is the caller.
        g.set_echo_evidence(false, Some(0.2));
        assert_eq!(playing(&mut g, at(t0, 3032), Speech, Speech, -25.0), Speech);
    }

    /// A caller who rises over a provisional background's bar is talking; their next chunk,
    /// judged at the echo-raised bar (in between) while their candidate lives, must not
    /// confirm the background at their own level (it did: a car-line caller at −19 dBFS was
    /// then under a "background" at −20 for the rest of the call).
    #[test]
    fn a_callers_own_syllables_do_not_confirm_a_provisional_background() {
        let t0 = Instant::now();
        let mut g = provisional_start(t0, 256, -36.0);
        for ms in (288..3000).step_by(32) {
            g.set_echo_evidence(true, Some(0.7));
            playing(&mut g, at(t0, ms), Speech, Between, -50.0);
        }
        g.set_echo_evidence(false, Some(0.0));
        assert_eq!(playing(&mut g, at(t0, 3008), Speech, Speech, -18.6), Speech);
        // The candidate is under way (tracker not idle).
        let busy = |g: &mut BackgroundGuard, ms: u64, class: ChunkClass, level: f32| {
            g.filter(at(t0, ms), Speech, class, level, true, false, MIN_SILENCE)
        };
        assert_eq!(busy(&mut g, 3040, Between, -19.9), Between);
        assert_eq!(busy(&mut g, 3072, Speech, -24.0), Speech);
        assert_eq!(busy(&mut g, 3104, Speech, -18.0), Speech);
    }

    /// The same provisional start, but a crowd is under our first words: heard outside our
    /// echo (unmasked, or masked and badly explained) it confirms the background at its own
    /// level, and the crowd stays neutral while a caller over it is heard. Once confirmed,
    /// our own loud echo no longer moves its level.
    #[test]
    fn a_crowd_under_our_first_words_confirms_the_background_at_its_own_level() {
        let t0 = Instant::now();
        for confirming in [(true, Some(0.3)), (false, None)] {
            let mut g = provisional_start(t0, 320, -25.0);
            // Masked, likeness unknown: still provisional for a second.
            for ms in (352..1400).step_by(32) {
                g.set_echo_evidence(true, None);
                assert_eq!(playing(&mut g, at(t0, ms), Speech, Speech, -28.0), Between);
            }
            // The crowd at -36 dBFS, heard outside our echo: confirmed at its level.
            for ms in (1400..3000).step_by(32) {
                g.set_echo_evidence(confirming.0, confirming.1);
                assert_eq!(playing(&mut g, at(t0, ms), Speech, Speech, -36.0), Between);
            }
            // A loud stretch of our own echo (masked, well explained) is not learnt as the
            // crowd's level: it would be if the background had stayed provisional.
            for ms in (3000..4000).step_by(32) {
                g.set_echo_evidence(true, Some(0.9));
                playing(&mut g, at(t0, ms), Speech, Between, -24.0);
            }
            // Our echo's loudness was not kept as the crowd's: a caller at -28 is heard.
            g.set_echo_evidence(false, Some(0.2));
            assert_eq!(playing(&mut g, at(t0, 4000), Speech, Speech, -28.0), Speech);
        }
    }

    #[test]
    fn a_reaction_to_the_prompt_is_speech() {
        let t0 = Instant::now();
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        assert_eq!(playing(&mut g, at(t0, 600), Speech, Speech, -25.0), Speech);
        assert!(!g.active());
    }

    #[test]
    fn only_a_fresh_start_of_the_agent_opens_the_guard() {
        let t0 = Instant::now();
        let mut g = BackgroundGuard::default();
        // No agent audio: speech is just speech.
        assert_eq!(
            g.filter(at(t0, 0), Speech, Speech, -25.0, false, true, MIN_SILENCE),
            Speech
        );
        // Caller already in a candidate when the agent starts: the tracker owns it.
        assert_eq!(
            g.filter(at(t0, 100), Speech, Speech, -25.0, true, false, MIN_SILENCE),
            Speech
        );
        // The agent keeps playing: 2 s later, no guard.
        assert_eq!(playing(&mut g, at(t0, 2100), Speech, Speech, -25.0), Speech);
        // A later prompt (the reply) does not open it again.
        g.filter(
            at(t0, 3000),
            Silence,
            Silence,
            -60.0,
            false,
            true,
            MIN_SILENCE,
        );
        assert_eq!(playing(&mut g, at(t0, 3032), Speech, Speech, -25.0), Speech);
        // Non-finite levels count as silence-level (never "louder than the background").
        let mut g = BackgroundGuard::default();
        playing(&mut g, at(t0, 0), Silence, Silence, -60.0);
        playing(&mut g, at(t0, 100), Speech, Speech, -30.0);
        assert_eq!(
            playing(&mut g, at(t0, 132), Speech, Speech, f32::NAN),
            Between
        );
    }
}
