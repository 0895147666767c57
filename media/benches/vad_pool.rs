//! Real-time load on the VAD pool: N calls each submit a 20 ms frame (caller + agent audio)
//! on an absolute 20 ms clock, exactly as the call tasks do; the workers run the caller
//! pipeline (echo cancellation, noise suppression) and batched Silero. Measures how long a
//! chunk's result takes to come back after the frame that completed it was submitted (the
//! issue's bar: within one 32 ms chunk period at 250 calls), and the workers' CPU.
//!
//! cargo bench -p bargein-media --bench vad_pool -- [--calls 250] [--seconds 10] [--workers 2] [--no-ns] [--no-aec]
//! Needs ./scripts/setup-runtime.sh first.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use media::pipeline::PipelineConfig;
use media::vad::{Delivery, SileroConfig, SileroRuntime, VadPool, VadResult, VadSink};

struct Sink {
    stream: usize,
    tx: mpsc::Sender<(usize, u64, Instant)>,
}

impl VadSink for Sink {
    fn deliver(&self, r: VadResult) -> Delivery {
        match self.tx.send((self.stream, r.tag, Instant::now())) {
            Ok(()) => Delivery::Delivered,
            Err(_) => Delivery::Closed,
        }
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn thread_cpu() -> Duration {
    // Process CPU time (user + system) from /proc/self/stat; the feeder's share is small.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|r| r.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = arg(&args, "--calls", 250) as usize;
    let seconds = arg(&args, "--seconds", 10);
    let workers = arg(&args, "--workers", 2) as usize;
    let cfg = PipelineConfig {
        noise_suppression: !args.iter().any(|a| a == "--no-ns"),
        echo_cancellation: !args.iter().any(|a| a == "--no-aec"),
        ..Default::default()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = SileroRuntime::load(&SileroConfig {
        onnxruntime_library: root.join(".cache/runtime/libonnxruntime.so"),
        model: root.join(".cache/runtime/silero_vad.onnx"),
    })
    .expect("run ./scripts/setup-runtime.sh");
    let prompt = media::wav::load_prompt(&root.join("deploy/prompts/prompt.wav")).unwrap();
    let reply = media::wav::load_prompt(&root.join("deploy/prompts/reply.wav")).unwrap();
    let pool = VadPool::start(&runtime, workers, 64 * 1024).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut streams: Vec<_> = (0..calls)
        .map(|i| {
            pool.open_stream(
                Box::new(Sink {
                    stream: i,
                    tx: tx.clone(),
                }),
                &cfg,
            )
            .unwrap()
        })
        .collect();
    drop(tx);
    let frames = (seconds * 50) as usize;
    let mut submitted = vec![Vec::with_capacity(frames); calls];
    let cpu0 = thread_cpu();
    let start = Instant::now();
    for k in 0..frames {
        let deadline = start + Duration::from_millis(20 * k as u64);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for (i, s) in streams.iter_mut().enumerate() {
            // Each call at its own offset in the prompt; the caller speaks the reply.
            let off = ((k + i * 37) * 160) % (prompt.len() - 160);
            let near_off = ((k + i * 11) * 160) % (reply.len() - 160);
            s.push_frame(
                &prompt[off..off + 160],
                &reply[near_off..near_off + 160],
                (k * 160) as u64,
                0,
            );
            submitted[i].push(Instant::now());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let wall = start.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu0);
    drop(streams);
    let mut lat: Vec<f64> = Vec::new();
    // Late results (over one 32 ms chunk period) in the first second and after it.
    let mut late = [0usize; 2];
    while let Ok((stream, tag, at)) = rx.try_recv() {
        let frame = ((tag - 1) / 160) as usize;
        if let Some(t) = submitted.get(stream).and_then(|v| v.get(frame)) {
            let ms = at.saturating_duration_since(*t).as_secs_f64() * 1000.0;
            if ms > 32.0 {
                late[usize::from(frame >= 50)] += 1;
            }
            lat.push(ms);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let expected = calls * frames * 160 / 256;
    let st = pool.stats();
    let chunks = st.chunks.load(std::sync::atomic::Ordering::Relaxed);
    let batches = st.batches.load(std::sync::atomic::Ordering::Relaxed).max(1);
    let shed = st.shed_frames.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "calls={calls} workers={workers} ns={} aec={} results={}/{expected} dropped={} shed_ns_frames={shed} \
         latency ms p50={:.1} p95={:.1} p99={:.1} max={:.1} | within 32 ms: {:.2} % (late: {} in the first second, {} after) | \
         mean batch {:.1} | CPU {:.0} % of one core ({:.3} % per call)",
        cfg.noise_suppression,
        cfg.echo_cancellation,
        lat.len(),
        st.dropped_full.load(std::sync::atomic::Ordering::Relaxed),
        q(0.5),
        q(0.95),
        q(0.99),
        q(1.0),
        100.0 * lat.iter().filter(|l| **l <= 32.0).count() as f64 / lat.len().max(1) as f64,
        late[0],
        late[1],
        chunks as f64 / batches as f64,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / calls as f64,
    );
}
