//! Behaviour tests of the echo canceller (G.168 Annex D style set-ups, see `test_signals`).

use super::test_signals::*;
use super::*;

const SECOND: usize = 8000;
const FRAMES_PER_SECOND: usize = 50;

fn cases() -> Vec<(u64, f32, usize, usize)> {
    let spec = std::env::var("CASES").unwrap_or("1,6,0,8;1,6,4,8".into());
    spec.split(';').map(|c| { let v: Vec<&str> = c.split(',').collect(); (v[0].parse().unwrap(), v[1].parse().unwrap(), v[2].parse().unwrap(), v[3].parse().unwrap()) }).collect()
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
            if std::env::var("DBG").is_ok() && f % 4 == 0 && f < 120 { println!("f {f} {}", ec.debug_state()); }
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
