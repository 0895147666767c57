//! Cost of `EchoCanceller::process` per 20 ms frame.
//!
//! Plain `std::time` (no bench framework): the demo prompt is played as far end, its echo
//! (60 ms bulk delay, 12 ms decaying path, ERL 10 dB, µ-law both ways) comes back as near
//! end, and the canceller runs over it several times; the median per-frame time is reported
//! along with the ERLE reached, so a faster but broken build is visible. Also counts heap
//! allocations during processing and exits non-zero if there are any.
//!
//! Run: `cargo bench -p bargein-media --bench echo`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use media::echo::{EchoCanceller, EchoConfig, FRAME_SAMPLES};
use media::g711::{ulaw_decode, ulaw_encode};

/// Counts allocations so the bench can prove the per-frame path allocates nothing.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const RUNS: usize = 9;

/// Samples of the demo prompt (PCM16 mono WAV, "data" chunk).
fn prompt() -> Vec<i16> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prompts/prompt.wav");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        if &bytes[pos..pos + 4] == b"data" {
            let end = (pos + 8 + size).min(bytes.len());
            return bytes[pos + 8..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        pos += 8 + size + (size & 1);
    }
    panic!("{path}: no data chunk");
}

fn ulaw(x: f32) -> i16 {
    ulaw_decode(ulaw_encode(x.round().clamp(-32768.0, 32767.0) as i16))
}

/// (far as sent, near = µ-law(echo)).
fn line() -> (Vec<i16>, Vec<i16>) {
    let far: Vec<i16> = prompt().iter().map(|&x| ulaw(f32::from(x))).collect();
    let delay = 60 * 8;
    let taps = 12 * 8;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut path: Vec<f32> = (0..taps)
        .map(|j| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            noise * (-(j as f32) * 4.6 / taps as f32).exp()
        })
        .collect();
    let energy: f32 = path.iter().map(|v| v * v).sum();
    let scale = (0.1 / energy).sqrt(); // ERL 10 dB
    path.iter_mut().for_each(|v| *v *= scale);
    let near = (0..far.len())
        .map(|n| {
            let echo: f32 = path
                .iter()
                .enumerate()
                .filter_map(|(j, &h)| n.checked_sub(delay + j).map(|k| h * f32::from(far[k])))
                .sum();
            ulaw(echo)
        })
        .collect();
    (far, near)
}

/// The alternative that was not taken: a plain time-domain NLMS over `taps` taps (one path,
/// filter + update per sample), timed on the same signals for the cost comparison.
fn time_domain_nlms_us_per_frame(far: &[i16], near: &[i16], taps: usize) -> f64 {
    let mut weights = vec![0.0f32; taps];
    // Reference history, newest first, stored twice so a window is one contiguous slice.
    let mut history = vec![0.0f32; 2 * taps];
    let mut head = 0;
    let mut energy = 0.0f32;
    let mut sink = 0.0f32;
    let start = Instant::now();
    for (&x, &y) in far.iter().zip(near) {
        let x = f32::from(x);
        let oldest = history[head + taps - 1];
        head = if head == 0 { taps - 1 } else { head - 1 };
        history[head] = x;
        history[head + taps] = x;
        energy = (energy + x * x - oldest * oldest).max(0.0);
        let window = &history[head..head + taps];
        let estimate: f32 = weights.iter().zip(window).map(|(w, x)| w * x).sum();
        let error = f32::from(y) - estimate;
        let step = 0.5 * error / (energy + 1e6);
        for (w, x) in weights.iter_mut().zip(window) {
            *w += step * x;
        }
        sink += error;
    }
    std::hint::black_box(sink);
    start.elapsed().as_secs_f64() * 1e6 / (far.len() / FRAME_SAMPLES) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (far, near) = line();
    let frames = far.len() / FRAME_SAMPLES;
    let mut out = vec![0i16; frames * FRAME_SAMPLES];
    let mut per_frame_us = Vec::with_capacity(RUNS);
    // The slowest frame of each run: the one whose first delay lock re-teaches the filter
    // the last 384 ms (a one-off per call).
    let mut slowest_us = Vec::with_capacity(RUNS);
    let mut allocations = 0;
    let mut erle = 0.0;
    for _ in 0..RUNS {
        let mut canceller = EchoCanceller::new(EchoConfig::default());
        let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        let mut slowest = 0.0f64;
        for f in 0..frames {
            let range = f * FRAME_SAMPLES..(f + 1) * FRAME_SAMPLES;
            let frame_start = Instant::now();
            canceller.process(&far[range.clone()], &near[range.clone()], &mut out[range]);
            slowest = slowest.max(frame_start.elapsed().as_secs_f64() * 1e6);
        }
        per_frame_us.push(start.elapsed().as_secs_f64() * 1e6 / frames as f64);
        slowest_us.push(slowest);
        allocations += ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
        erle = canceller.stats().erle_db;
    }
    // ERLE over the second half of the prompt, measured from the signals themselves.
    let half = out.len() / 2;
    let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    let measured = 10.0 * (energy(&near[half..out.len()]) / energy(&out[half..]).max(1.0)).log10();

    let median_us = median(per_frame_us.clone());
    println!(
        "EchoCanceller::process: median {median_us:.1} µs per 20 ms frame ({:.3} % of one core), \
         min {:.1}, max {:.1} over {RUNS} runs of {frames} frames",
        median_us / 20_000.0 * 100.0,
        per_frame_us.iter().copied().fold(f64::MAX, f64::min),
        per_frame_us.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "slowest frame (the first delay lock's catch-up): median over runs {:.0} µs",
        median(slowest_us)
    );
    println!(
        "ERLE second half of the prompt: {measured:.1} dB (canceller's own estimate {erle:.1} dB)"
    );
    let nlms: Vec<f64> = (0..3)
        .map(|_| time_domain_nlms_us_per_frame(&far, &near, 512))
        .collect();
    println!(
        "for comparison, time-domain NLMS with 512 taps, one path: median {:.1} µs per 20 ms frame",
        median(nlms)
    );
    println!("heap allocations while processing: {allocations}");
    if allocations != 0 {
        eprintln!("FAIL: the per-frame path allocated");
        std::process::exit(1);
    }
}
