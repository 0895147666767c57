//! Cost of `NoiseSuppressor::process` per 20 ms frame, and of the resampler pair alone.
//! Plain `std::time` (no bench framework, to keep the dependency tree lean): several runs
//! over the same noisy-speech signal, median reported. Also counts heap allocations during
//! processing and exits non-zero if there are any, since the hot path must not allocate.
//!
//! Run: `cargo bench -p bargein-media --bench denoise`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use media::denoise::resample::{CHUNK_48K, CHUNK_8K};
use media::denoise::{NoiseSuppressor, Resampler, FRAME_SAMPLES};

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

const RUNS: usize = 15;
const FRAMES_PER_RUN: usize = 500; // 10 s of audio

/// Deterministic speech-like test signal: two harmonic "vowels" over noise.
fn signal() -> Vec<i16> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..FRAMES_PER_RUN * FRAME_SAMPLES)
        .map(|n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            let t = n as f64 / 8000.0;
            let voiced = if (n / 4000) % 2 == 0 { 1.0 } else { 0.0 };
            let vowel: f64 = (1..8)
                .map(|h| (2.0 * std::f64::consts::PI * 140.0 * h as f64 * t).sin() / h as f64)
                .sum();
            (voiced * 6000.0 * vowel + 2000.0 * noise) as i16
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let input = signal();
    let mut out = vec![0i16; FRAME_SAMPLES];

    // The first frames on each thread allocate once (easyfft keeps its FFT plans and scratch
    // in thread-locals); that is set-up, not per-frame cost, so it is measured apart.
    let mut suppressor = NoiseSuppressor::new();
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    for frame in input.chunks_exact(FRAME_SAMPLES).take(10) {
        let _ = suppressor.process(frame, &mut out);
    }
    let first_frames_allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    let mut suppressor = NoiseSuppressor::new();
    let mut voice_probability_sum = 0.0f32;
    let mut per_frame_us = Vec::with_capacity(RUNS);
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..RUNS {
        let start = Instant::now();
        for frame in input.chunks_exact(FRAME_SAMPLES) {
            match suppressor.process(frame, &mut out) {
                Ok(p) => voice_probability_sum += p,
                Err(e) => panic!("{e}"),
            }
        }
        per_frame_us.push(start.elapsed().as_secs_f64() * 1e6 / FRAMES_PER_RUN as f64);
    }
    let suppressor_allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;

    let mut resampler = Resampler::new();
    let mut wide = [0.0f32; CHUNK_48K];
    let mut narrow = [0.0f32; CHUNK_8K];
    let mut resampler_us = Vec::with_capacity(RUNS);
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..RUNS {
        let start = Instant::now();
        for chunk in input.chunks_exact(CHUNK_8K) {
            for (n, &s) in narrow.iter_mut().zip(chunk) {
                *n = f32::from(s);
            }
            resampler.upsample(&narrow, &mut wide);
            resampler.downsample(&wide, &mut narrow);
        }
        resampler_us.push(start.elapsed().as_secs_f64() * 1e6 / FRAMES_PER_RUN as f64);
    }
    let resampler_allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;

    // RNNoise alone, for the ratio to the notes' 38 µs per 10 ms (this VM is noisy).
    let mut rnnoise = nnnoiseless::DenoiseState::new();
    let mut wide_input = Vec::with_capacity(input.len() * 6);
    for chunk in input.chunks_exact(CHUNK_8K) {
        for (n, &s) in narrow.iter_mut().zip(chunk) {
            *n = f32::from(s);
        }
        resampler.upsample(&narrow, &mut wide);
        wide_input.extend_from_slice(&wide);
    }
    let mut wide_out = [0.0f32; CHUNK_48K];
    let mut rnnoise_us = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        for frame in wide_input.chunks_exact(CHUNK_48K) {
            rnnoise.process_frame(&mut wide_out, frame);
        }
        rnnoise_us.push(start.elapsed().as_secs_f64() * 1e6 / (2 * FRAMES_PER_RUN) as f64);
    }

    let start = Instant::now();
    let constructed: Vec<NoiseSuppressor> = (0..100).map(|_| NoiseSuppressor::new()).collect();
    let construct_us = start.elapsed().as_secs_f64() * 1e6 / constructed.len() as f64;

    let suppressor_median = median(per_frame_us.clone());
    println!(
        "NoiseSuppressor::process: median {suppressor_median:.1} µs per 20 ms frame \
         ({:.2} % of one core), min {:.1}, max {:.1} over {RUNS} runs of {FRAMES_PER_RUN} frames",
        suppressor_median / 20_000.0 * 100.0,
        per_frame_us.iter().copied().fold(f64::MAX, f64::min),
        per_frame_us.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "  of which resampler 8k→48k→8k: median {:.1} µs per 20 ms frame",
        median(resampler_us)
    );
    println!(
        "  RNNoise process_frame alone: median {:.1} µs per 10 ms",
        median(rnnoise_us)
    );
    println!("NoiseSuppressor::new: {construct_us:.1} µs");
    println!(
        "heap allocations while processing: suppressor {suppressor_allocations}, \
         resampler {resampler_allocations}; one-off on this thread's first 10 frames: \
         {first_frames_allocations} (mean VAD p {:.2})",
        voice_probability_sum / (RUNS * FRAMES_PER_RUN) as f32
    );
    if suppressor_allocations + resampler_allocations != 0 {
        eprintln!("FAIL: the per-frame path allocated");
        std::process::exit(1);
    }
}
