//! How fast the canceller converges: ERLE in the second after the first second of far-end
//! speech, over G.168-style echo paths (see `test_signals`), and what it depends on.

use super::test_signals::*;
use super::EchoConfig;

#[test]
fn erle_reaches_25_db_one_second_after_far_speech_starts() {
    for case in [
        (1, 6.0, 0, 8),
        (6, 20.0, 10, 8),
        (7, 10.0, 30, 12),
        (27, 6.0, 45, 8),
        (5, 10.0, 70, 16),
        (30, 6.0, 100, 12),
    ] {
        let erle = erle_after_one_second(case);
        assert!(erle >= 25.0, "{case:?}: ERLE {erle:.1} dB");
    }
}

/// The surveyed paths: seeds 20–43 spread over ERL 6/10/20 dB, bulk delay 0–120 ms and
/// dispersion 8/12/16 ms.
fn survey_cases() -> impl Iterator<Item = Case> {
    (20..44u64).map(|seed| {
        let erl = [6.0, 10.0, 20.0][(seed % 3) as usize];
        let delay_ms = [0, 15, 30, 45, 60, 80, 100, 120][(seed % 8) as usize];
        let dispersion = [8, 12, 16][((seed / 3) % 3) as usize];
        (seed, erl, delay_ms, dispersion)
    })
}

/// ERLE over `frames` of `seconds` of far-end speech through the path of `case`.
fn erle_over(case: Case, seconds: usize, frames: std::ops::Range<usize>) -> f64 {
    let (seed, erl, delay_ms, dispersion) = case;
    let path = echo_path(seed, dispersion, erl);
    let line = line(&far_speech(seconds), &[], &[(0, delay_ms * 8, &path)]);
    let (out, _, _) = run(EchoConfig::default(), &line.far, &line.near);
    erle_db(&line, &out, frames)
}

/// 24 echo paths (ERL 6/10/20 dB, bulk delay 0–120 ms, dispersion 8/12/16 ms): in every
/// one the second after 1 s of speech is at 25 dB (G.168-style requirement of the issue),
/// and 2.5 s in as well. Before the delay line was aimed at the middle of a partition and
/// the filter re-taught what it heard while the delay was searched, the first second
/// left some paths at 21–24 dB (min 20.9, median 25.7; now min 27.3, median 29.9).
#[test]
fn erle_survey_over_many_echo_paths() {
    for case in survey_cases() {
        let first = erle_after_one_second(case);
        assert!(first >= 25.0, "{case:?}: ERLE {first:.1} dB after 1 s");
        let later = erle_over(case, 4, 125..200);
        assert!(later >= 25.0, "{case:?}: ERLE {later:.1} dB from 2.5 s on");
    }
}

/// At 120 ms of bulk delay the echo only starts coming back after 120 ms and the delay is
/// found ≈ 0.3 s into the speech; the catch-up re-teaches that stretch at the found delay,
/// so the second after 1 s is at 25 dB as on shorter paths.
#[test]
fn erle_with_the_longest_bulk_delay() {
    for case in [(4, 6.0, 120, 16), (3, 20.0, 120, 16), (8, 10.0, 120, 8)] {
        let erle = erle_after_one_second(case);
        assert!(erle >= 25.0, "{case:?}: ERLE {erle:.1} dB");
        let later = erle_over(case, 5, 100..200);
        assert!(later >= 25.0, "{case:?}: ERLE {later:.1} dB after 2 s");
    }
}

/// Where the echo starts relative to the filter's 4 ms partitions must not matter: bulk
/// delays 2 ms apart straddle partition boundaries. (With the onset estimate aimed at a
/// partition's edge, every delay that was a multiple of 4 ms lost 5–7 dB: 21 dB at 60 and
/// 64 ms, 28.6 dB at 58, 62 and 66 ms.)
#[test]
fn erle_does_not_depend_on_the_echo_onset_within_a_partition() {
    for delay_ms in [56, 58, 60, 62, 64, 66] {
        let case = (24, 10.0, delay_ms, 12);
        let erle = erle_after_one_second(case);
        assert!(erle >= 27.0, "{case:?}: ERLE {erle:.1} dB");
    }
}

/// The filter re-taught at the first lock what it heard while the delay was searched: the
/// catch-up is worth several dB in the first second on a long path.
#[test]
fn the_first_lock_re_teaches_what_was_heard_during_the_search() {
    let case = (39, 6.0, 120, 12);
    let (seed, erl, delay_ms, dispersion) = case;
    let path = echo_path(seed, dispersion, erl);
    let line = line(&far_speech(2), &[], &[(0, delay_ms * 8, &path)]);
    let mut canceller = super::EchoCanceller::new(EchoConfig::default());
    let (out, _) = run_with(&mut canceller, &line.far, &line.near);
    // 0.4–0.6 s and 0.6–0.9 s into the speech (the delay is found at ≈ 0.3 s): 20.6 and
    // 24.4 dB; without the catch-up 13.8 and 11.8 dB.
    let start = after_far_activity(&line.far, 400);
    let soon = erle_db(&line, &out, start..start + 10);
    let later = erle_db(&line, &out, start + 10..start + 25);
    assert!(
        soon >= 18.0 && later >= 20.0,
        "ERLE {soon:.1}, {later:.1} dB"
    );
}

/// The survey's figures: `cargo test -p bargein-media --release --lib
/// echo::convergence_tests::convergence_survey -- --ignored --nocapture`.
#[test]
#[ignore]
fn convergence_survey() {
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for case in survey_cases() {
        let (e, l) = (erle_after_one_second(case), erle_over(case, 4, 125..200));
        let (seed, erl, delay, disp) = case;
        println!("survey {seed} erl {erl} delay {delay} disp {disp}: {e:.1} (2.5–4 s: {l:.1})");
        first.push(e);
        later.push(l);
    }
    for (what, mut all) in [("after 1 s", first), ("2.5–4 s", later)] {
        all.sort_by(f64::total_cmp);
        println!(
            "survey {what}: min {:.1} median {:.1} max {:.1}",
            all[0],
            all[all.len() / 2],
            all[all.len() - 1]
        );
    }
}
