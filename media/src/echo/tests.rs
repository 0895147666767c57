//! Behaviour tests of the echo canceller (G.168 Annex D style set-ups, see `test_signals`).

use super::test_signals::*;
use super::*;

const SECOND: usize = 8000;
const FRAMES_PER_SECOND: usize = 50;

fn cases() -> Vec<(u64, f32, usize, usize)> {
    let spec = std::env::var("CASES").unwrap_or("1,6,0,8;1,6,4,8".into());
    spec.split(';')
        .map(|c| {
            let v: Vec<&str> = c.split(',').collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
                v[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn explore_erle() {
    let far_linear = prompt("prompt.wav");
    for (seed, erl, delay_ms, disp) in cases() {
        let h = echo_path(seed, disp, erl);
        let len = 6 * SECOND;
        let far_in = looped(&far_linear, len);
        let line = line(&far_in, &[], &[(0, delay_ms * 8, &h)]);
        let mut ec = EchoCanceller::new(EchoConfig::default());
        if std::env::var("FORCE").is_ok() {
            ec.force_lag(delay_ms * 8);
        }
        let mut out = vec![0i16; line.far.len()];
        let mut events = Vec::new();
        let mut last = (0, None, false);
        for f in 0..line.far.len() / 160 {
            let r = f * 160..f * 160 + 160;
            ec.process(&line.far[r.clone()], &line.near[r.clone()], &mut out[r]);
            let st = ec.stats();
            if std::env::var("DBG").is_ok() && f % 4 == 0 && f < 120 {
                println!("f {f} {}", ec.debug_state());
            }
            let now = (
                st.delay_changes,
                st.bulk_delay_ms.map(|d| d as i32),
                st.converged,
            );
            if now != last {
                events.push((f, now));
                last = now;
            }
        }
        println!("events {:?}", &events[..events.len().min(12)]);
        if std::env::var("FRAMES").is_ok() {
            for f in 60..120 {
                let hf = |x: &[i16]| -> f64 {
                    let r = &x[f * 160..f * 160 + 160];
                    r.windows(2)
                        .map(|w| {
                            let d = f64::from(w[1]) - f64::from(w[0]);
                            d * d
                        })
                        .sum::<f64>()
                        / 160.0
                };
                println!(
                    "frame {f}: echo {:.1} dBFS near {:.1} out {:.1} erle {:.1} | hf near {:.1} hf out {:.1}",
                    dbfs(frame_power(&line.echo, f)),
                    dbfs(frame_power(&line.near, f)),
                    dbfs(frame_power(&out, f)),
                    dbfs(frame_power(&line.near, f)) - dbfs(frame_power(&out, f)),
                    dbfs(hf(&line.near)),
                    dbfs(hf(&out)),
                );
            }
        }
        let t1 = after_far_activity(&line.far, 1000);
        let s = ec.stats();
        let mut per_half = Vec::new();
        for k in 0..10 {
            let a = k * 25;
            per_half.push(format!("{:.1}", erle_db(&line, &out, a..a + 25)));
        }
        println!(
            "erl {erl} delay {delay_ms} t1 {t1}: erle next second {:.1} dB; halves {:?}; stats {:?}",
            erle_db(&line, &out, t1..t1 + FRAMES_PER_SECOND),
            per_half,
            s
        );
    }
}

#[test]
fn explore_double_talk() {
    let far_linear = prompt("prompt.wav");
    let reply = prompt("reply.wav");
    let far_rms = (far_linear
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        / far_linear.len() as f64)
        .sqrt();
    let reply_rms =
        (reply.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / reply.len() as f64).sqrt();
    println!(
        "far rms {:.1} dBFS reply rms {:.1} dBFS",
        dbfs(far_rms * far_rms),
        dbfs(reply_rms * reply_rms)
    );
    for (seed, erl, delay_ms, disp) in cases() {
        for near_gain in [0.0f32, -10.0, -20.0] {
            let h = echo_path(seed, disp, erl);
            let len = 9 * SECOND;
            let far_in = looped(&far_linear, len);
            let start = 3 * SECOND;
            let talker = placed(&scaled(&reply, near_gain), start, len);
            let line = line(&far_in, &talker, &[(0, delay_ms * 8, &h)]);
            let mut ec = EchoCanceller::new(EchoConfig::default());
            let mut out = vec![0i16; line.far.len()];
            let mut infos = Vec::new();
            for f in 0..line.far.len() / 160 {
                let r = f * 160..f * 160 + 160;
                infos.push(ec.process(&line.far[r.clone()], &line.near[r.clone()], &mut out[r]));
                if std::env::var("DTF").is_ok() && f >= 140 && f < 340 && near_gain == 0.0 {
                    let res: f64 = (f * 160..f * 160 + 160).map(|i| (f64::from(out[i]) - f64::from(talker[i])).powi(2)).sum::<f64>() / 160.0;
                    println!("f {f}: echo {:.1} talker {:.1} residual {:.1} counts {:?} dt {} erle {:.1}", dbfs(frame_power(&line.echo, f)), dbfs(frame_power(&talker, f)), dbfs(res), ec.dbg_counts, infos[f].double_talk, infos[f].erle_db);
                    ec.dbg_counts = [0; 4];
                }
            }
            // Near-active frames: talker above -45 dBFS.
            let (mut so, mut ss, mut res, mut echo_e) = (0.0, 0.0, 0.0, 0.0);
            let mut dt_frames = 0;
            let mut active = 0;
            for f in 0..out.len() / 160 {
                if dbfs(frame_power(&talker, f)) < -45.0 {
                    continue;
                }
                active += 1;
                if infos[f].double_talk {
                    dt_frames += 1;
                }
                for i in f * 160..f * 160 + 160 {
                    let s = f64::from(talker[i]);
                    let o = f64::from(out[i]);
                    so += s * o;
                    ss += s * s;
                    res += (o - s) * (o - s);
                    echo_e += f64::from(line.echo[i]).powi(2);
                }
            }
            let gain = so / ss;
            let end_frame = (start + reply.len()) / 160;
            println!(
                "erl {erl} delay {delay_ms} near {near_gain} dB: attenuation {:.2} dB, echo-to-residual during DT {:.1} dB, DT flagged {}/{} frames, ERLE before {:.1}, after DT {:.1}; {:?}",
                -20.0 * gain.log10(),
                10.0 * (echo_e / res).log10(),
                dt_frames,
                active,
                erle_db(&line, &out, 100..150),
                erle_db(&line, &out, end_frame + 10..end_frame + 60),
                ec.stats()
            );
        }
    }
}

#[test]
fn explore_path_change() {
    let far_linear = prompt("prompt.wav");
    for (seed, erl, delay_ms, disp) in cases() {
        for (seed2, erl2, delay2, disp2) in [(seed + 10, erl, delay_ms, disp), (seed + 20, 6.0, delay_ms, 12), (seed + 30, 20.0, delay_ms + 30, 16)] {
            let h1 = echo_path(seed, disp, erl);
            let h2 = echo_path(seed2, disp2, erl2);
            let len = 10 * SECOND;
            let far_in = looped(&far_linear, len);
            let switch = 4 * SECOND;
            let line = line(&far_in, &[], &[(0, delay_ms * 8, &h1), (switch, delay2 * 8, &h2)]);
            let mut ec = EchoCanceller::new(EchoConfig::default());
            let mut out = vec![0i16; line.far.len()];
            let mut last = (0, None, false);
            for f in 0..line.far.len() / 160 {
                let r = f * 160..f * 160 + 160;
                ec.process(&line.far[r.clone()], &line.near[r.clone()], &mut out[r]);
                let st = ec.stats();
                let now = (st.delay_changes, st.bulk_delay_ms.map(|d| d as i32), st.converged);
                if std::env::var("PCDBG2").is_ok() && f > 190 && f < 300 && f % 5 == 0 {
                    println!("  f {f} {} | {}", ec.debug_levels(), ec.debug_state().chars().take(140).collect::<String>());
                }
                if now != last && std::env::var("PCDBG").is_ok() && f > 190 {
                    println!("  f {f} {now:?} S {}", ec.debug_state().split(' ').nth(1).unwrap_or(""));
                    last = now;
                }
            }
            let sf = switch / 160;
            let halves: Vec<String> = (0..8).map(|k| format!("{:.1}", erle_db(&line, &out, sf + k * 12..sf + k * 12 + 12))).collect();
            println!(
                "erl {erl}->{erl2} delay {delay_ms}->{delay2}: before {:.1}, after-switch quarter-seconds {:?}, 1-2 s after {:.1}; {:?}",
                erle_db(&line, &out, sf - 50..sf),
                halves,
                erle_db(&line, &out, sf + 50..sf + 100),
                ec.stats()
            );
        }
    }
}

#[test]
fn scoreboard() {
    if std::env::var("SCORE").is_err() {
        return;
    }
    let far_linear = prompt("prompt.wav");
    let reply = prompt("reply.wav");
    let cases = [(1u64, 6.0f32, 0usize, 8usize), (4, 6.0, 120, 16), (5, 10.0, 70, 16), (6, 20.0, 10, 8), (3, 20.0, 120, 16), (7, 10.0, 30, 12)];
    let mut conv = Vec::new();
    let mut dt = Vec::new();
    let mut pc = Vec::new();
    let mut pcd = Vec::new();
    for &(seed, erl, delay_ms, disp) in &cases {
        let h = echo_path(seed, disp, erl);
        // convergence
        let far_in = looped(&far_linear, 4 * SECOND);
        let l = line(&far_in, &[], &[(0, delay_ms * 8, &h)]);
        let (out, _, _) = run(EchoConfig::default(), &l.far, &l.near);
        let t1 = after_far_activity(&l.far, 1000);
        conv.push(erle_db(&l, &out, t1..t1 + FRAMES_PER_SECOND));
        // double talk
        for g in [0.0f32, -10.0, -20.0] {
            let len = 9 * SECOND;
            let far_in = looped(&far_linear, len);
            let start = 3 * SECOND;
            let talker = placed(&scaled(&reply, g), start, len);
            let l = line(&far_in, &talker, &[(0, delay_ms * 8, &h)]);
            let (out, _, _) = run(EchoConfig::default(), &l.far, &l.near);
            let (mut res, mut echo_e) = (0.0, 0.0);
            for f in start / 160..(start + reply.len()) / 160 {
                for i in f * 160..f * 160 + 160 {
                    res += (f64::from(out[i]) - f64::from(talker[i])).powi(2);
                    echo_e += f64::from(l.echo[i]).powi(2);
                }
            }
            let end = (start + reply.len()) / 160;
            dt.push(format!("{:.0}/{:.0}", 10.0 * (echo_e / res).log10(), erle_db(&l, &out, end + 10..end + 60)));
        }
        // path changes
        for (k, (seed2, erl2, d2, disp2)) in [(seed + 10, if erl > 10.0 { 6.0 } else { 20.0 }, delay_ms, 12usize), (seed + 30, erl, (delay_ms + 40) % 150, disp)].into_iter().enumerate() {
            let h2 = echo_path(seed2, disp2, erl2);
            let far_in = looped(&far_linear, 8 * SECOND);
            let switch = 4 * SECOND;
            let l = line(&far_in, &[], &[(0, delay_ms * 8, &h), (switch, d2 * 8, &h2)]);
            let (out, _, _) = run(EchoConfig::default(), &l.far, &l.near);
            let sf = switch / 160;
            let v = format!("{:.0}/{:.0}", erle_db(&l, &out, sf + 25..sf + 50), erle_db(&l, &out, sf + 50..sf + 100));
            if k == 0 { pc.push(v) } else { pcd.push(v) }
        }
    }
    println!("CONV {:?}", conv.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>());
    println!("DT (echo/res during, ERLE after) {:?}", dt);
    println!("PC same delay (0.5-1 s / 1-2 s) {:?}", pc);
    println!("PC new delay (0.5-1 s / 1-2 s) {:?}", pcd);
}
