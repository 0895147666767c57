//! Accounting timelines: false barge-ins (no real speech within 2 s of a speech truncation)
//! and premature cut-offs (agent audio starting while the caller still speaks).

use super::*;

/// Pause mode, truncation at 544 ms after exactly 224 ms of speech.
fn truncated_sim() -> Sim {
    let mut sim = Sim::new(PolicyConfig::default());
    sim.play(3000, true);
    sim.feed(320, SILENCE);
    assert_eq!(sim.feed(224, SPEECH)[2], (544, Truncate));
    sim
}

#[test]
fn false_barge_in_when_no_speech_follows_the_truncation() {
    let mut sim = truncated_sim();
    let actions = sim.feed(2016, SILENCE); // chunks end 576 .. 2560
    let ended = ev(PolicyEvent::TurnEnded { at: sim.at(960) });
    let false_barge = ev(PolicyEvent::FalseBargeIn {
        truncated_at: sim.at(544),
    });
    // Decided by the first chunk that ends past 544 + 2000.
    assert_eq!(actions, [(960, ended), (2560, false_barge)]);
    assert_eq!(sim.policy.counters().false_barge_ins, 1);
    assert_eq!(sim.policy.next_deadline(), None);
}

#[test]
fn false_barge_in_decided_by_timeout_after_a_grace_for_late_results() {
    let mut sim = truncated_sim();
    sim.feed(1984, SILENCE); // to 2528
    assert_eq!(sim.policy.next_deadline(), Some(sim.at(2544 + 200)));
    assert!(sim.timeout(2743).is_empty());
    let false_barge = ev(PolicyEvent::FalseBargeIn {
        truncated_at: sim.at(544),
    });
    assert_eq!(sim.timeout(2744), [(2744, false_barge)]);
}

#[test]
fn no_false_barge_in_when_the_caller_keeps_talking() {
    let mut sim = truncated_sim();
    sim.feed(320, SPEECH); // 320 ms after the truncation
    assert_eq!(sim.policy.next_deadline(), None, "decided: a real barge-in");
    sim.feed(2560, SILENCE);
    assert_eq!(sim.policy.counters().false_barge_ins, 0);
}

#[test]
fn false_barge_in_needs_300_ms_of_speech_after_the_truncation() {
    let mut sim = truncated_sim();
    sim.feed(288, SPEECH); // 9 chunks: 288 ms < 300 ms
    sim.feed(2560, SILENCE);
    assert_eq!(sim.policy.counters().false_barge_ins, 1);
    // Speech may come in pieces: 160 + 160 ms within the window is enough.
    let mut sim = truncated_sim();
    sim.feed(160, SPEECH);
    sim.feed(800, SILENCE);
    sim.feed(160, SPEECH);
    sim.feed(2560, SILENCE);
    assert_eq!(sim.policy.counters().false_barge_ins, 0);
}
#[test]
fn premature_cutoff_when_agent_starts_200_ms_after_the_caller_stopped() {
    let mut sim = spoken_sim();
    sim.feed(192, SILENCE); // to 832
    let cutoff = ev(PolicyEvent::PrematureCutoff { at: sim.at(840) });
    assert_eq!(sim.agent_started(840), [(840, cutoff)]);
    assert_eq!(sim.policy.counters().premature_cutoffs, 1);
}

#[test]
fn no_premature_cutoff_when_agent_starts_500_ms_after_the_caller_stopped() {
    let mut sim = spoken_sim();
    let actions = sim.feed(480, SILENCE); // to 1120
    assert_eq!(
        actions,
        [(1056, ev(PolicyEvent::TurnEnded { at: sim.at(1056) }))]
    );
    assert!(sim.agent_started(1140).is_empty());
    assert_eq!(sim.policy.counters().premature_cutoffs, 0);
}

#[test]
fn premature_cutoff_while_the_caller_is_talking() {
    let mut sim = spoken_sim();
    // Long after the last speech chunk (640) but no silence chunk yet: still talking.
    let cutoff = ev(PolicyEvent::PrematureCutoff { at: sim.at(1200) });
    assert_eq!(sim.agent_started(1200), [(1200, cutoff)]);
}

#[test]
fn resumed_audio_is_not_a_premature_cutoff() {
    let mut sim = bot_sim();
    sim.decide(600, false); // resumed while the caller still speaks
    assert!(
        sim.agent_started(620).is_empty(),
        "the paused audio continuing"
    );
    // A real new talk spurt later, caller still talking, is one.
    assert_eq!(sim.agent_started(700).len(), 1);
}
