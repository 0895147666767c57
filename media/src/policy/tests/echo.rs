//! Timelines of the echo gate (raised threshold, masked chunks) and of the first-prompt
//! background guard.

use super::*;

#[test]
fn echo_gate_raises_the_bar_while_echo_is_likely() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    assert!(sim.feed_with(960, 0.7, true).is_empty());
    assert_eq!(sim.policy.counters(), PolicyCounters::default());
    // Speech well above the echo: paused two chunks after its onset (1280).
    let actions = sim.feed_with(64, 0.9, true);
    assert_eq!(actions, [(1344, Pause), (1344, sim.tentative(1280, 1344))]);
}

#[test]
fn without_the_echo_gate_likely_echo_counts_as_speech() {
    let mut sim = Sim::new(PolicyConfig {
        echo_gate: false,
        ..PolicyConfig::default()
    });
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    // Even explained by our audio: the switch turns every echo rule off.
    sim.echo_likeness = Some(0.9);
    let actions = sim.feed_with(64, 0.7, true);
    assert_eq!(actions, [(384, Pause), (384, sim.tentative(320, 384))]);
}

#[test]
fn echo_before_the_canceller_converges_never_barges_in() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    // Our own first words come back nearly unattenuated: Silero is sure it is speech.
    assert!(sim.feed_echo(960, 0.99, true, true).is_empty());
    assert_eq!(sim.policy.counters(), PolicyCounters::default());
    // The caller, louder than the echo (not masked): paused two chunks after onset (960).
    let actions = sim.feed_echo(64, 0.99, true, false);
    assert_eq!(actions, [(1024, Pause), (1024, sim.tentative(960, 1024))]);
}

#[test]
fn our_echo_explained_by_our_audio_is_not_the_caller() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    // The canceller's residual of our own words: within our echo's level, just over the
    // bar the gate expects (not masked), Silero sure it is speech — but our audio explains
    // it (likeness 0.88): no pause.
    sim.echo_likeness = Some(0.88);
    assert!(sim.feed_echo(640, 0.95, true, false).is_empty());
    assert_eq!(sim.policy.counters(), PolicyCounters::default());
    // A caller as loud pulls the likeness down: paused two chunks after their onset (960).
    sim.echo_likeness = Some(0.45);
    let actions = sim.feed_echo(64, 0.95, true, false);
    assert_eq!(actions, [(1024, Pause), (1024, sim.tentative(960, 1024))]);
}

#[test]
fn a_caller_whose_syllable_gaps_are_masked_by_echo_still_barges_in() {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    let mut actions = Vec::new();
    // Syllables louder than the echo (unmasked), gaps of 128 ms hidden under our echo: a
    // masked chunk is no evidence of silence, so the candidate lives on.
    for _ in 0..4 {
        actions.extend(sim.feed_echo(64, 0.99, true, false));
        actions.extend(sim.feed_echo(128, 0.99, true, true));
    }
    assert!(
        actions.iter().any(|(_, a)| *a == Truncate),
        "no barge-in: {actions:?}"
    );
    assert_eq!(sim.policy.counters().barge_ins, 1);
}

#[test]
fn background_speech_from_the_start_of_the_first_prompt_never_barges_in() {
    let mut sim = Sim::with_first_prompt_guard(PolicyConfig::default());
    sim.play(8000, true);
    sim.feed(160, SILENCE);
    // A room of people behind the caller, from 160 ms on, for 3 s: no pause, no barge-in.
    assert!(sim.feed_level(3008, SPEECH, -28.0).is_empty());
    assert_eq!(sim.policy.counters(), PolicyCounters::default());
    // The caller talks over it, 8 dB louder: paused two chunks after their onset (3168).
    let actions = sim.feed_level(64, SPEECH, -20.0);
    assert_eq!(actions, [(3232, Pause), (3232, sim.tentative(3168, 3232))]);
}

#[test]
fn without_the_echo_gate_masked_chunks_count_as_speech() {
    let mut sim = Sim::new(PolicyConfig {
        echo_gate: false,
        ..PolicyConfig::default()
    });
    sim.play(5000, true);
    sim.feed(320, SILENCE);
    let actions = sim.feed_echo(64, 0.99, true, true);
    assert_eq!(actions, [(384, Pause), (384, sim.tentative(320, 384))]);
}
