//! Behaviour tests of the echo canceller in G.168 Annex D style set-ups (see
//! `test_signals`): the demo prompt as far end, decaying 8–16 ms echo paths behind a bulk
//! delay, ERL 6/10/20 dB, µ-law both ways, the demo reply as the caller.
//!
//! Figures measured with these set-ups are in the report of the change that added this
//! module; the thresholds below leave a few dB of margin under them.

use super::test_signals::*;
use super::*;

/// A gateway that feeds its linear audio as reference (instead of what the µ-law coder
/// made of it) leaves the outbound coding noise uncancelled: ERLE is capped lower.
#[test]
fn linear_reference_still_cancels() {
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(4), &[], &[(0, 320, &path)]);
    let (out, _, _) = run(EchoConfig::default(), &line.far_linear, &line.near);
    let erle = erle_db(&line, &out, 100..200);
    assert!(erle >= 20.0, "ERLE {erle:.1} dB");
}

#[test]
fn bulk_delay_is_estimated_within_2_ms() {
    for (seed, delay_ms) in [
        (11u64, 0usize),
        (12, 20),
        (13, 45),
        (14, 80),
        (15, 120),
        (16, 145),
    ] {
        let path = echo_path(seed, 12, 10.0);
        let line = line(&far_speech(4), &[], &[(0, delay_ms * 8, &path)]);
        let (_, _, canceller) = run(EchoConfig::default(), &line.far, &line.near);
        let stats = canceller.stats();
        let estimate = stats.bulk_delay_ms.expect("a delay estimate");
        assert!(
            (estimate - delay_ms as f32).abs() <= 2.0,
            "delay {delay_ms} ms estimated as {estimate} ms"
        );
        assert!(stats.converged, "delay {delay_ms} ms: {stats:?}");
    }
}

struct DoubleTalk {
    attenuation_db: f64,
    suppression_during_db: f64,
    erle_after_db: f64,
    flagged: f64,
}

/// Far speech throughout; the caller (demo reply, `gain_db` relative to its file level,
/// which is about the prompt's level) talks from 3 s on, after the canceller converged.
fn double_talk(case: Case, gain_db: f32) -> DoubleTalk {
    let (seed, erl, delay_ms, dispersion) = case;
    let reply = prompt("reply.wav");
    let len = 9 * SECOND;
    let start = 3 * SECOND;
    let talker = placed(&scaled(&reply, gain_db), start, len);
    let path = echo_path(seed, dispersion, erl);
    let line = line(&far_speech(9), &talker, &[(0, delay_ms * 8, &path)]);
    let (out, infos, _) = run(EchoConfig::default(), &line.far, &line.near);
    let talking: Vec<usize> = (0..infos.len())
        .filter(|&f| dbfs(frame_power(&talker, f)) > -45.0)
        .collect();
    let end = (start + reply.len()) / FRAME_SAMPLES;
    let flagged =
        talking.iter().filter(|&&f| infos[f].double_talk).count() as f64 / talking.len() as f64;
    DoubleTalk {
        attenuation_db: talker_attenuation_db(&talker, &out, &talking),
        suppression_during_db: echo_suppression_db(&line, &out, start / FRAME_SAMPLES..end),
        erle_after_db: erle_db(&line, &out, end + 10..end + 60),
        flagged,
    }
}

#[test]
fn double_talk_keeps_the_caller_and_the_filter() {
    for case in [
        (1, 6.0, 0, 8),
        (2, 10.0, 40, 12),
        (6, 20.0, 10, 8),
        (4, 6.0, 120, 16),
    ] {
        for gain in [0.0, -10.0] {
            let dt = double_talk(case, gain);
            let label = format!("{case:?} caller {gain} dB");
            assert!(
                dt.attenuation_db.abs() <= 1.0,
                "{label}: caller attenuated {:.2} dB",
                dt.attenuation_db
            );
            assert!(
                dt.suppression_during_db >= 15.0,
                "{label}: echo suppression {:.1} dB",
                dt.suppression_during_db
            );
            assert!(
                dt.erle_after_db >= 20.0,
                "{label}: ERLE after {:.1} dB",
                dt.erle_after_db
            );
            assert!(
                dt.flagged >= 0.5,
                "{label}: double talk flagged in {:.0} %",
                dt.flagged * 100.0
            );
        }
    }
}

#[test]
fn echo_alone_is_not_reported_as_double_talk() {
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(8), &[], &[(0, 320, &path)]);
    let (_, infos, _) = run(EchoConfig::default(), &line.far, &line.near);
    let later = &infos[2 * FRAMES_PER_SECOND..];
    let active = later.iter().filter(|i| i.far_active).count();
    let flagged = later.iter().filter(|i| i.double_talk).count();
    assert!(active > 200);
    assert!(
        (flagged as f64) < 0.05 * active as f64,
        "{flagged} of {active} far-active frames"
    );
}

/// ERLE over the second from 1 s to 2 s after the echo path is switched mid-stream.
fn erle_after_path_change(before: Case, after: Case) -> (f64, f64) {
    let switch = 4 * SECOND;
    let path1 = echo_path(before.0, before.3, before.1);
    let path2 = echo_path(after.0, after.3, after.1);
    let line = line(
        &far_speech(8),
        &[],
        &[(0, before.2 * 8, &path1), (switch, after.2 * 8, &path2)],
    );
    let (out, _, _) = run(EchoConfig::default(), &line.far, &line.near);
    let sf = switch / FRAME_SAMPLES;
    (
        erle_db(&line, &out, sf - FRAMES_PER_SECOND..sf),
        erle_db(
            &line,
            &out,
            sf + FRAMES_PER_SECOND..sf + 2 * FRAMES_PER_SECOND,
        ),
    )
}

#[test]
fn reconverges_within_one_second_after_an_echo_path_change() {
    for (before, after) in [
        ((1, 6.0, 0, 8), (11, 20.0, 0, 12)),
        ((5, 10.0, 70, 16), (15, 20.0, 70, 12)),
        ((6, 20.0, 10, 8), (16, 6.0, 10, 12)),
        ((7, 10.0, 30, 12), (17, 10.0, 30, 16)),
        // Same delay and ERL, another path: the old model's residual makes each block look
        // like a caller under the echo ("unexplained output"), which slowed the step to a
        // tenth — 15.9 dB here — until the step stayed full while our audio explains what
        // is heard (echo likeness ≥ 0.7): 21.1 dB.
        ((2, 10.0, 40, 12), (12, 10.0, 40, 12)),
    ] {
        let (erle_before, erle_after) = erle_after_path_change(before, after);
        assert!(
            erle_before >= 25.0,
            "{before:?}: {erle_before:.1} dB before the change"
        );
        assert!(
            erle_after >= 20.0,
            "{before:?} → {after:?}: {erle_after:.1} dB 1–2 s after"
        );
    }
}

/// A path change that also moves the bulk delay: the old filter now subtracts an echo that
/// is not there, the output gets louder than the input, the path is dropped and the delay
/// searched again with short memory. Re-converged (≥ 20 dB) within 1–2 s after the change:
/// 20.4, 21.1, 23.0 dB. A later echo used to look like double talk to the level detector
/// (its far window follows the old delay), which froze everything: 5.6 dB for 70 → 110 ms
/// until "output louder than input" was taken at 1.8 dB instead of 3.
#[test]
fn follows_a_bulk_delay_change() {
    for (seed1, delay1, seed2, delay2) in [
        (5u64, 70usize, 25u64, 110usize),
        (6, 30, 26, 90),
        (7, 100, 27, 40),
    ] {
        let switch = 4 * SECOND;
        let path1 = echo_path(seed1, 16, 10.0);
        let path2 = echo_path(seed2, 16, 10.0);
        let line = line(
            &far_speech(9),
            &[],
            &[(0, delay1 * 8, &path1), (switch, delay2 * 8, &path2)],
        );
        let (out, _, canceller) = run(EchoConfig::default(), &line.far, &line.near);
        let sf = switch / FRAME_SAMPLES;
        let erle = erle_db(
            &line,
            &out,
            sf + FRAMES_PER_SECOND..sf + 2 * FRAMES_PER_SECOND,
        );
        println!("delay change {delay1} → {delay2} ms: ERLE {erle:.1} dB 1–2 s after");
        assert!(
            erle >= 20.0,
            "{delay1} → {delay2} ms: ERLE {erle:.1} dB 1–2 s after the change"
        );
        let estimate = canceller.stats().bulk_delay_ms.expect("a delay");
        assert!((estimate - delay2 as f32).abs() <= 2.0, "delay {estimate}");
    }
}

#[test]
fn silence_passes_through_untouched() {
    let zeros = vec![0i16; 2 * SECOND];
    let (out, infos, canceller) = run(EchoConfig::default(), &zeros, &zeros);
    assert!(out.iter().all(|&v| v == 0));
    assert!(infos.iter().all(|i| !i.far_active && !i.double_talk));
    let stats = canceller.stats();
    assert!(!stats.converged && stats.resets == 0 && stats.bulk_delay_ms.is_none());
}

/// Nothing sent: whatever comes in is the caller and must come out bit-exact.
#[test]
fn near_end_alone_comes_out_unchanged() {
    let reply = prompt("reply.wav");
    let near = looped(&reply, 4 * SECOND);
    let far = vec![0i16; near.len()];
    let (out, infos, _) = run(EchoConfig::default(), &far, &near);
    assert_eq!(out, near[..out.len()]);
    assert!(infos.iter().all(|i| !i.double_talk));
}

/// Far end talking but no echo at all (a four-wire line), caller talking: the filter must
/// not build an echo path out of nothing. With a caller independent of the far end almost
/// nothing is removed (24.7 dB SNR: the filter adapts a little before any delay is found;
/// 25+ dB only while a bogus delay lock at 42 ms froze it elsewhere); with the demo reply — the same synthetic voice and pitch as the prompt — the
/// filter finds some short-term correlation to "cancel" (−17 dB of the caller's level), yet
/// the caller's level is untouched.
#[test]
fn no_echo_path_does_not_invent_one() {
    let far = far_speech(6);
    let independent = syllabic_noise(far.len(), 3);
    let same_voice = looped(&scaled(&prompt("reply.wav"), -10.0), far.len());
    for (talker, min_snr) in [(independent, 24.0), (same_voice, 15.0)] {
        let near: Vec<i16> = talker.iter().map(|&v| ulaw(f32::from(v))).collect();
        let (out, _, _) = run(EchoConfig::default(), &far, &near);
        let (mut distortion, mut power) = (0.0, 0.0);
        for (o, n) in out.iter().zip(&near) {
            distortion += (f64::from(*o) - f64::from(*n)).powi(2);
            power += f64::from(*n).powi(2);
        }
        let snr = 10.0 * (power / distortion.max(1.0)).log10();
        assert!(
            snr >= min_snr,
            "output differs from input by {snr:.1} dB SNR"
        );
        let frames: Vec<usize> = (0..out.len() / FRAME_SAMPLES).collect();
        let attenuation = talker_attenuation_db(&talker, &out, &frames);
        assert!(
            attenuation.abs() <= 1.0,
            "caller attenuated {attenuation:.2} dB"
        );
    }
}

#[test]
fn garbage_inputs_saturate_and_the_canceller_recovers() {
    let mut canceller = EchoCanceller::new(EchoConfig::default());
    let square = |n: usize, period: usize| -> Vec<i16> {
        (0..n)
            .map(|i| {
                if (i / period).is_multiple_of(2) {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect()
    };
    let mut rng = Rng::new(7);
    let noise: Vec<i16> = (0..SECOND)
        .map(|_| (rng.uniform() * 32767.0) as i16)
        .collect();
    let garbage: [(Vec<i16>, Vec<i16>); 5] = [
        (square(SECOND, 4), square(SECOND, 4)),
        (square(SECOND, 37), square(SECOND, 11)),
        (vec![i16::MAX; SECOND], vec![i16::MIN; SECOND]),
        (vec![i16::MIN; SECOND], square(SECOND, 1)),
        (noise.clone(), noise.iter().rev().copied().collect()),
    ];
    for (far, near) in &garbage {
        let (out, infos) = run_with(&mut canceller, far, near);
        assert_eq!(out.len(), far.len());
        for info in &infos {
            assert!(info.erle_db.is_finite() && info.expected_echo_level_db.is_finite());
            assert!(info.near_level_db.is_finite());
        }
        let stats = canceller.stats();
        assert!(stats.erle_db.is_finite());
        assert!(stats.erl_db.is_none_or(f32::is_finite));
    }
    // Afterwards, an ordinary call still gets its echo cancelled.
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(6), &[], &[(0, 320, &path)]);
    let (out, _) = run_with(&mut canceller, &line.far, &line.near);
    let erle = erle_db(&line, &out, 150..300);
    assert!(erle >= 20.0, "ERLE {erle:.1} dB after the garbage");
}

#[test]
fn bad_frame_lengths_pass_through_and_are_counted() {
    let mut canceller = EchoCanceller::new(EchoConfig::default());
    let near: Vec<i16> = (0..100).map(|i| i as i16 * 7).collect();
    let mut out = vec![0i16; 100];
    canceller.process(&[0; 100], &near, &mut out);
    assert_eq!(
        out, near,
        "100 samples is not a whole number of 4 ms blocks"
    );
    let near = vec![1000i16; FRAME_SAMPLES];
    let mut short_out = vec![0i16; 100];
    canceller.process(&near, &near, &mut short_out);
    assert_eq!(
        short_out,
        near[..100],
        "output too short: pass-through of what fits"
    );
    canceller.process(&[], &[], &mut []);
    let mut big = vec![0i16; 2 * MAX_FRAME_SAMPLES];
    canceller.process(&big.clone(), &big.clone(), &mut big);
    assert_eq!(canceller.stats().invalid_frames, 4);
    assert_eq!(canceller.stats().frames, 0);

    // A far frame shorter than the near frame is padded with silence and counted.
    let mut out = vec![0i16; FRAME_SAMPLES];
    canceller.process(&[5; 10], &near, &mut out);
    let stats = canceller.stats();
    assert_eq!((stats.frames, stats.far_length_mismatches), (1, 1));
    assert_eq!(out, near, "nothing learnt yet, nothing removed");
    // 10 ms frames (80 samples) are not accepted, 40 ms ones are.
    let mut out = vec![0i16; 2 * FRAME_SAMPLES];
    canceller.process(&[0; 320], &[3; 320], &mut out);
    assert_eq!(canceller.stats().frames, 2);
}

#[test]
fn config_is_clamped() {
    let canceller = EchoCanceller::new(EchoConfig {
        max_bulk_delay_ms: 10_000,
        tail_ms: 8,
        far_active_dbfs: f32::NAN,
        double_talk_hangover_ms: u32::MAX,
    });
    let cfg = canceller.config();
    assert_eq!((cfg.max_bulk_delay_ms, cfg.tail_ms), (500, 64));
    assert_eq!(cfg.far_active_dbfs, -50.0);
    assert_eq!(cfg.double_talk_hangover_ms, 1000);
    let canceller = EchoCanceller::new(EchoConfig {
        tail_ms: 1000,
        ..EchoConfig::default()
    });
    assert_eq!(canceller.config().tail_ms, 256);
}

/// A longer tail and a shorter delay range still work (other partition counts).
#[test]
fn other_configurations_cancel() {
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(5), &[], &[(0, 240, &path)]);
    let cfg = EchoConfig {
        max_bulk_delay_ms: 60,
        tail_ms: 128,
        ..EchoConfig::default()
    };
    let (out, _, canceller) = run(cfg, &line.far, &line.near);
    let erle = erle_db(&line, &out, 100..250);
    assert!(erle >= 25.0, "ERLE {erle:.1} dB");
    let delay = canceller.stats().bulk_delay_ms.expect("delay");
    assert!((delay - 30.0).abs() <= 2.0, "delay {delay}");
}

#[test]
fn frame_info_reports_levels_and_expected_echo() {
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(6), &[], &[(0, 320, &path)]);
    let (_, infos, canceller) = run(EchoConfig::default(), &line.far, &line.near);
    let stats = canceller.stats();
    let erl = stats.erl_db.expect("ERL measured");
    assert!(
        (erl - 10.0).abs() <= 3.0,
        "ERL {erl:.1} dB for a 10 dB path"
    );
    // Expected echo level vs the echo actually received, over loud far-active frames.
    let (mut error, mut count) = (0.0, 0);
    for (f, info) in infos.iter().enumerate().skip(3 * FRAMES_PER_SECOND) {
        let actual = dbfs(frame_power(&line.echo, f)) as f32;
        let measured = dbfs(frame_power(&line.near, f)) as f32;
        if measured > -90.0 {
            assert!(
                (info.near_level_db - measured).abs() < 0.1,
                "{} vs {measured}",
                info.near_level_db
            );
        }
        if info.far_active && actual > -45.0 {
            error += (info.expected_echo_level_db - actual).abs();
            count += 1;
        }
    }
    assert!(count > 50);
    assert!(
        error / (count as f32) < 4.0,
        "mean |expected − actual| {:.1} dB",
        error / count as f32
    );
    assert_eq!(infos.last().map(|i| i.erle_db), Some(stats.erle_db));
    assert!(infos[..10].iter().all(|i| i.erle_db.abs() < 30.0));
}

#[test]
fn echo_gate_separates_echo_from_the_caller() {
    let mut gate = EchoGate::default();
    let reply = prompt("reply.wav");
    let len = 9 * SECOND;
    let talker = placed(&reply, 3 * SECOND, len);
    let path = echo_path(2, 12, 10.0);
    let line = line(&far_speech(9), &talker, &[(0, 320, &path)]);
    let (_, infos, _) = run(EchoConfig::default(), &line.far, &line.near);
    let (mut echo_frames, mut echo_within) = (0, 0);
    let (mut talk_frames, mut talk_above) = (0, 0);
    for (f, info) in infos.iter().enumerate().skip(FRAMES_PER_SECOND) {
        let talking = dbfs(frame_power(&talker, f)) > -35.0;
        let echoing = dbfs(frame_power(&line.echo, f)) > -50.0;
        match gate.assess_frame(info) {
            EchoGateVerdict::WithinExpectedEcho if echoing && !talking => echo_within += 1,
            EchoGateVerdict::AboveExpectedEcho if talking => talk_above += 1,
            _ => {}
        }
        echo_frames += usize::from(echoing && !talking && dbfs(frame_power(&talker, f)) < -90.0);
        talk_frames += usize::from(talking && info.far_active);
    }
    assert!(
        echo_within as f64 >= 0.9 * echo_frames as f64,
        "{echo_within}/{echo_frames}"
    );
    // The gate judges each frame against the loudest echo of the last 200 ms (the VAD's
    // memory), so a caller talking over loud agent words is "above" a little less often
    // (69 % here, 77 % when each frame was judged alone): the price of never treating the
    // tail of our own word as the caller.
    assert!(
        talk_above as f64 >= 0.65 * talk_frames as f64,
        "{talk_above}/{talk_frames}"
    );
}

/// The figures in the report come from here: `cargo test -p bargein-media --release --lib
/// echo::tests::figures -- --ignored --nocapture`.
#[test]
#[ignore]
fn figures() {
    for case in [
        (1, 6.0, 0, 8),
        (2, 10.0, 40, 12),
        (6, 20.0, 10, 8),
        (7, 10.0, 30, 12),
        (5, 10.0, 70, 16),
        (4, 6.0, 120, 16),
        (3, 20.0, 120, 16),
    ] {
        println!(
            "convergence {case:?}: ERLE {:.1} dB in the second after 1 s of speech",
            erle_after_one_second(case)
        );
    }
    for erl in [6.0, 10.0, 20.0] {
        let path = echo_path(2, 12, erl);
        let line = line(&far_speech(6), &[], &[(0, 320, &path)]);
        let (out, _, _) = run(EchoConfig::default(), &line.far, &line.near);
        let (out_lin, _, _) = run(EchoConfig::default(), &line.far_linear, &line.near);
        println!(
            "steady state ERL {erl}: ERLE {:.1} dB (µ-law reference), {:.1} dB (linear reference)",
            erle_db(&line, &out, 150..300),
            erle_db(&line, &out_lin, 150..300)
        );
    }
    for (before, after) in [
        ((1, 6.0, 0, 8), (11, 20.0, 0, 12)),
        ((5, 10.0, 70, 16), (15, 20.0, 70, 12)),
        ((6, 20.0, 10, 8), (16, 6.0, 10, 12)),
        ((7, 10.0, 30, 12), (17, 10.0, 30, 16)),
        ((2, 10.0, 40, 12), (12, 10.0, 40, 12)),
    ] {
        let (erle_before, erle_after) = erle_after_path_change(before, after);
        println!("path change {before:?} -> {after:?}: {erle_before:.1} dB before, {erle_after:.1} dB 1-2 s after");
    }
    for case in [
        (1, 6.0, 0, 8),
        (2, 10.0, 40, 12),
        (6, 20.0, 10, 8),
        (4, 6.0, 120, 16),
    ] {
        for gain in [0.0, -10.0, -20.0] {
            let dt = double_talk(case, gain);
            println!(
                "double talk {case:?} caller {gain} dB: caller attenuation {:.2} dB, echo suppression during {:.1} dB, ERLE after {:.1} dB, flagged {:.0} %",
                dt.attenuation_db, dt.suppression_during_db, dt.erle_after_db, dt.flagged * 100.0
            );
        }
    }
}

/// Steady line noise (HVAC, a car) only 5–10 dB below the echo: the filter must still
/// converge (its residual echo well under the noise), or the echo gate has to mask the
/// caller for the whole call. Measured: 13.7 and 10.3 dB (7.5 dB on the first case before
/// the noise-aware step and two-path test).
///
/// The third case starts like a real call: 100 ms of digital silence from the jitter
/// buffer before the first packet. The old noise floor (drop at once, creep up 1 dB/s) stuck
/// at zero after it, so the canceller counted the noise as echo it failed to remove and
/// never converged (ERLE ≈ 0 dB on every noisy corpus call); with the sliding minimum it
/// converges as on the other cases.
#[test]
fn converges_under_line_noise() {
    for (seed, erl, delay_ms, noise_dbfs, silent_frames) in [
        (3u64, 10.0f32, 40usize, -38.0f32, 0usize),
        (4, 6.0, 90, -33.0, 0),
        (3, 10.0, 40, -38.0, 5),
    ] {
        let mut rng = Rng::new(seed);
        // Brown-ish noise: a leaky integrator of white noise, scaled to the wanted level.
        let mut state = 0.0f32;
        let raw: Vec<f32> = (0..6 * SECOND)
            .map(|_| {
                state = 0.9 * state + 0.1 * (2.0 * rng.uniform() - 1.0);
                state
            })
            .collect();
        let rms = (raw.iter().map(|x| x * x).sum::<f32>() / raw.len() as f32).sqrt();
        let gain = 32768.0 * 10f32.powf(noise_dbfs / 20.0) / rms;
        let noise: Vec<i16> = raw.iter().map(|x| (x * gain) as i16).collect();
        let path = echo_path(seed, 12, erl);
        let mut line = line(&far_speech(6), &noise, &[(0, delay_ms * 8, &path)]);
        for v in line.near.iter_mut().take(silent_frames * FRAME_SAMPLES) {
            *v = 0;
        }
        let (out, _, _) = run(EchoConfig::default(), &line.far, &line.near);
        let suppression = echo_suppression_db(&line, &out, 200..300);
        let level = dbfs((0..300).map(|f| frame_power(&noise, f)).sum::<f64>() / 300.0);
        assert!(
            suppression >= 10.0,
            "ERL {erl} dB, noise {level:.1} dBFS, {silent_frames} silent frames first: echo \
             suppressed by {suppression:.1} dB at 4–6 s"
        );
    }
}

/// Our own jitter buffer drops a 20 ms frame (it shrinks its delay after the first second
/// of every call) or inserts one: the echo of everything we send arrives 20 ms sooner or
/// later, although the echo path did not change. Told of the jump, the canceller moves its
/// delay line and taps with it and keeps cancelling; left to find out, it loses the echo
/// and re-learns it. Measured (ERLE over 0.2–1.2 s after the jump, 3 paths): told
/// 25.3–32.7 dB; not told −0.7…1.6 dB.
#[test]
fn follows_the_jitter_buffer_dropping_or_inserting_a_frame() {
    for (case, shift) in [
        ((7u64, 10.0f32, 30usize, 12usize), 160i64),
        // The echo now comes back 5 ms after we send: the delay line gives up part of its
        // margin before the onset.
        ((7, 10.0, 25, 12), 160),
        ((5, 10.0, 70, 16), -160),
        ((2, 6.0, 100, 12), 160),
    ] {
        let (seed, erl, delay_ms, dispersion) = case;
        let path = echo_path(seed, dispersion, erl);
        let line = line(&far_speech(6), &[], &[(0, delay_ms * 8, &path)]);
        // The jump happens at 3 s (frame 150) on the near side only.
        let at = 150 * FRAME_SAMPLES;
        let jumped = |x: &[f32]| -> Vec<f32> {
            let mut v = x[..at].to_vec();
            if shift > 0 {
                v.extend_from_slice(&x[at + shift as usize..]);
            } else {
                v.extend(std::iter::repeat_n(0.0, (-shift) as usize));
                v.extend_from_slice(&x[at..]);
            }
            v.truncate(x.len() - FRAME_SAMPLES);
            v
        };
        let near: Vec<f32> = line.near.iter().map(|&v| f32::from(v)).collect();
        let jumped_line = Line {
            far: line.far[..line.far.len() - FRAME_SAMPLES].to_vec(),
            far_linear: Vec::new(),
            near: jumped(&near).iter().map(|&v| v as i16).collect(),
            echo: jumped(&line.echo),
        };
        let erle_after = |told: bool| {
            let mut ec = EchoCanceller::new(EchoConfig::default());
            let split = at;
            let (mut out, _) = run_with(
                &mut ec,
                &jumped_line.far[..split],
                &jumped_line.near[..split],
            );
            if told {
                ec.near_timeline_shifted(shift);
            }
            let (rest, _) = run_with(
                &mut ec,
                &jumped_line.far[split..],
                &jumped_line.near[split..],
            );
            out.extend(rest);
            erle_db(&jumped_line, &out, 160..210)
        };
        let (told, not_told) = (erle_after(true), erle_after(false));
        println!("jitter jump {case:?} {shift:+}: told {told:.1} dB, not told {not_told:.1} dB");
        assert!(
            told >= 20.0,
            "{case:?} {shift:+}: ERLE {told:.1} dB after the jump"
        );
        assert!(
            told > not_told + 6.0,
            "{case:?}: {told:.1} vs {not_told:.1} dB"
        );
    }
}

/// A jump far larger than a dropped or inserted frame (the caller's stream restarted on a
/// new timeline) is not followed: the canceller forgets the path and searches again.
#[test]
fn a_restarted_caller_stream_is_searched_again_not_followed() {
    let path = echo_path(7, 12, 10.0);
    let line = line(&far_speech(4), &[], &[(0, 30 * 8, &path)]);
    let (_, _, mut ec) = run(EchoConfig::default(), &line.far, &line.near);
    assert!(ec.stats().converged);
    let resets = ec.stats().resets;
    ec.near_timeline_shifted(160);
    assert!(ec.stats().converged, "a dropped frame is followed");
    ec.near_timeline_shifted(-8000);
    let s = ec.stats();
    assert!(!s.converged && s.resets == resets + 1, "{s:?}");
}

/// The echo vanishes on a noisy line (the call moved to a four-wire path): the filter's old
/// estimate would now add our voice to the output. "Output louder than input" must still
/// catch it although the input is only line noise (the check ignores frames whose
/// *predicted* echo is near the noise, not frames whose input is).
#[test]
fn a_vanished_echo_is_forgotten_on_a_noisy_line() {
    let mut rng = Rng::new(12);
    let noise: Vec<i16> = (0..8 * SECOND)
        .map(|_| (rng.uniform() * 400.0) as i16) // ≈ −43 dBFS
        .collect();
    let path = echo_path(3, 12, 6.0);
    let silent = vec![0.0f32; path.len()];
    let line = line(
        &far_speech(8),
        &noise,
        &[(0, 40 * 8, &path), (4 * SECOND, 40 * 8, &silent)],
    );
    let (out, _, canceller) = run(EchoConfig::default(), &line.far, &line.near);
    assert!(canceller.stats().resets >= 1, "{:?}", canceller.stats());
    let frames = 300..400; // 6–8 s
    let near: f64 = frames.clone().map(|f| frame_power(&line.near, f)).sum();
    let output: f64 = frames.map(|f| frame_power(&out, f)).sum();
    let added_db = 10.0 * (output / near).log10();
    assert!(added_db < 1.0, "output {added_db:.1} dB over the input");
}

/// Line noise as an air conditioner or a car makes it — brown rumble plus 50 Hz mains hum
/// and its harmonics, nearly all its power below 400 Hz — `echo_to_noise_db` under (−) or
/// over (+) the echo's mean level.
fn brown_noise_under(echo: &[f32], echo_to_noise_db: f32, seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let mut state = 0.0f32;
    let raw: Vec<f32> = (0..echo.len())
        .map(|n| {
            state = 0.95 * state + 0.05 * rng.uniform();
            // Mains hum and its harmonics, as loud as the rumble.
            let t = n as f32 / 8000.0;
            let hum: f32 = (1..=8)
                .map(|k| (std::f32::consts::TAU * 50.0 * k as f32 * t).sin() / (k as f32).sqrt())
                .sum();
            state + 0.03 * hum
        })
        .collect();
    let mean = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32;
    let active: Vec<f32> = echo.iter().copied().filter(|e| e.abs() > 1.0).collect();
    let gain = (mean(&active) / mean(&raw) / 10f32.powf(echo_to_noise_db / 10.0)).sqrt();
    raw.iter().map(|x| (x * gain) as i16).collect()
}

/// The bulk delay must be found on a noisy line too, even with our echo under the noise: no
/// delay means no cancellation and no echo likeness for the policy (a recorded corpus call
/// over HVAC noise, echo 3 dB under it, never found its delay in 18 s and every caller
/// syllable stayed masked as possible echo). The envelopes are high-passed (≈ 250 Hz) before
/// they are correlated, which takes the hum and rumble out. Measured, frame of lock (within
/// 2 ms, for good): before 267 / never / 99; now 9 / 9 / 22.
#[test]
fn finds_the_bulk_delay_under_low_frequency_line_noise() {
    for (seed, erl, delay_ms, echo_to_noise_db) in [
        (3u64, 15.0f32, 67usize, -3.0f32),
        (3, 15.0, 67, -6.0),
        (4, 10.0, 100, -6.0),
        (5, 20.0, 30, -3.0),
    ] {
        let path = echo_path(seed, 12, erl);
        let clean = line(&far_speech(6), &[], &[(0, delay_ms * 8, &path)]);
        let noise = brown_noise_under(&clean.echo, echo_to_noise_db, seed);
        let noisy = line(&far_speech(6), &noise, &[(0, delay_ms * 8, &path)]);
        let mut canceller = EchoCanceller::new(EchoConfig::default());
        let mut out = vec![0i16; FRAME_SAMPLES];
        let mut locked_since = None;
        for f in 0..noisy.far.len() / FRAME_SAMPLES {
            let r = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
            canceller.process(&noisy.far[r.clone()], &noisy.near[r], &mut out);
            let estimate = canceller.stats().bulk_delay_ms;
            if estimate.is_some_and(|d| (d - delay_ms as f32).abs() <= 2.0) {
                locked_since.get_or_insert(f);
            } else {
                locked_since = None;
            }
        }
        let case = (seed, erl, delay_ms, echo_to_noise_db);
        assert!(
            locked_since.is_some_and(|f| f < FRAMES_PER_SECOND),
            "{case:?}: locked for good from frame {locked_since:?}"
        );
    }
}

/// A caller independent of what we send, no echo at all: no delay may be "found". (The
/// correlation was once normalised by the far energy of the instants pushed at lag 0, not
/// at the lag: a loud far onset while the caller talked gave a normalised correlation of 3
/// and an instant bogus lock at 42 ms.)
#[test]
fn no_echo_no_delay() {
    let far = far_speech(6);
    let caller = syllabic_noise(far.len(), 3);
    let near: Vec<i16> = caller.iter().map(|&v| ulaw(f32::from(v))).collect();
    let (_, infos, canceller) = run(EchoConfig::default(), &far, &near);
    assert_eq!(canceller.stats().bulk_delay_ms, None);
    assert!(infos.iter().all(|i| i.echo_likeness.is_none()));
}

/// Echo about as loud as hum and rumble: the step is set per frequency bin from the share
/// of the error that is noise there, so the filter keeps learning above the noise's band
/// instead of freezing everywhere. Echo suppression 3–8 s (8 s of speech; one step factor
/// for the whole band → per bin): 5.2 → 8.2 dB and 6.2 → 10.9 dB. (The catch-up at the
/// first lock moved these two to 9.1 and 8.5 dB; over 24 such paths, 3 ENRs × 8 seeds, it
/// is neutral: mean 9.2 → 9.0 dB, median 8.9 → 9.4.)
#[test]
fn cancels_above_the_band_of_low_frequency_line_noise() {
    for (seed, erl, delay_ms, echo_to_noise_db, min_suppression_db) in [
        (6u64, 8.0f32, 120usize, -3.0f32, 7.0f64),
        (5, 20.0, 30, 3.0, 8.0),
    ] {
        let path = echo_path(seed, 12, erl);
        let clean = line(&far_speech(8), &[], &[(0, delay_ms * 8, &path)]);
        let noise = brown_noise_under(&clean.echo, echo_to_noise_db, seed);
        let noisy = line(&far_speech(8), &noise, &[(0, delay_ms * 8, &path)]);
        let (out, _, _) = run(EchoConfig::default(), &noisy.far, &noisy.near);
        let suppression = echo_suppression_db(&noisy, &out, 150..400);
        assert!(
            suppression >= min_suppression_db,
            "{:?}: echo suppressed by {suppression:.1} dB at 3–8 s",
            (seed, erl, delay_ms, echo_to_noise_db)
        );
    }
}

/// The echo likeness (how well our audio explains what comes back) is what tells the policy
/// a crowd or a caller under our echo from the echo itself. It is unknown until it has
/// correlated ≈ 320 ms at a delay (its first values swung between −0.3 and 0.5 on pure
/// echo, and a first estimate can be replaced within ≈ 300 ms), high on echo alone, low
/// while a talker is as loud as the echo. Measured: known 16 frames after the lock (at
/// first: at the lock), 0.88 on echo, 0.42 under the talker.
#[test]
fn echo_likeness_is_unknown_at_first_then_tells_echo_from_a_talker() {
    let path = echo_path(9, 12, 10.0);
    let far = far_speech(4);
    let talker = placed(&prompt("reply.wav"), (27 * SECOND) / 10, far.len());
    let line = line(&far, &talker, &[(0, 40 * 8, &path)]);
    let mut canceller = EchoCanceller::new(EchoConfig::default());
    let mut out = vec![0i16; FRAME_SAMPLES];
    let (mut locked_at, mut known_at) = (None, None);
    let mut values = Vec::new();
    for f in 0..line.far.len() / FRAME_SAMPLES {
        let r = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
        let info = canceller.process(&line.far[r.clone()], &line.near[r], &mut out);
        if canceller.stats().bulk_delay_ms.is_some() {
            locked_at.get_or_insert(f);
        }
        if info.echo_likeness.is_some() {
            known_at.get_or_insert(f);
        }
        values.push(info.echo_likeness.unwrap_or(f32::NAN));
    }
    let (locked_at, known_at) = (locked_at.expect("a delay"), known_at.expect("a likeness"));
    assert!(
        known_at >= locked_at + 16,
        "locked {locked_at}, known {known_at}"
    );
    let mean = |r: std::ops::Range<usize>| {
        let v: Vec<f32> = values[r]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    let (echo, caller) = (mean(75..130), mean(140..170));
    assert!(
        echo >= 0.6 && caller < 0.5,
        "echo {echo:.2}, caller {caller:.2}"
    );
}
