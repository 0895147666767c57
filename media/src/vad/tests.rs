use super::*;
use std::path::Path;
use std::sync::mpsc;

fn runtime() -> SileroRuntime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = SileroConfig {
        onnxruntime_library: root.join(".cache/runtime/libonnxruntime.so"),
        model: root.join(".cache/runtime/silero_vad.onnx"),
    };
    SileroRuntime::load(&cfg).expect("ONNX Runtime + Silero model (run ./scripts/setup-runtime.sh)")
}

/// The samples of the demo prompt (a PCM16 WAV written by sox), scaled to ±1.0.
fn prompt_chunks() -> Vec<[f32; CHUNK_SAMPLES]> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prompts/prompt.wav");
    let bytes = std::fs::read(path).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<f32> = bytes[data..]
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    samples
        .chunks_exact(CHUNK_SAMPLES)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn run_single(session: &mut SileroSession, chunks: &[[f32; CHUNK_SAMPLES]]) -> Vec<f32> {
    let mut state = StreamState::default();
    let mut out = Vec::new();
    let mut probs = Vec::new();
    for c in chunks {
        session
            .run_batch(
                std::slice::from_ref(c),
                std::slice::from_mut(&mut state),
                &mut probs,
            )
            .unwrap();
        out.push(probs[0]);
    }
    out
}

#[test]
fn missing_files_name_the_setup_command() {
    let cfg = SileroConfig {
        onnxruntime_library: "/nonexistent/libonnxruntime.so".into(),
        model: "/nonexistent/model.onnx".into(),
    };
    let err = SileroRuntime::load(&cfg).err().unwrap().to_string();
    assert!(err.contains("setup-runtime.sh"), "{err}");
}

#[test]
fn speech_scores_high_and_silence_low() {
    let rt = runtime();
    let mut session = rt.session().unwrap();
    let chunks = prompt_chunks();
    let probs = run_single(&mut session, &chunks);
    let speechy = probs.iter().filter(|p| **p > 0.5).count() as f32 / probs.len() as f32;
    assert!(
        speechy > 0.5,
        "only {speechy} of prompt chunks look like speech"
    );
    let silence = vec![[0.0f32; CHUNK_SAMPLES]; 30];
    let probs = run_single(&mut session, &silence);
    assert!(probs.iter().all(|p| *p < 0.1), "{probs:?}");
}

#[test]
fn batching_is_identical_to_one_by_one() {
    let rt = runtime();
    let mut session = rt.session().unwrap();
    let chunks = prompt_chunks();
    // Three streams starting at different offsets of the prompt.
    let streams: Vec<&[[f32; CHUNK_SAMPLES]]> =
        vec![&chunks[0..40], &chunks[50..90], &chunks[100..140]];
    let singles: Vec<Vec<f32>> = streams
        .iter()
        .map(|s| run_single(&mut session, s))
        .collect();
    let mut states = vec![StreamState::default(); 3];
    let mut probs = Vec::new();
    for step in 0..40 {
        let batch: Vec<[f32; CHUNK_SAMPLES]> = streams.iter().map(|s| s[step]).collect();
        session.run_batch(&batch, &mut states, &mut probs).unwrap();
        for (i, single) in singles.iter().enumerate() {
            assert!(
                (probs[i] - single[step]).abs() < 1e-5,
                "stream {i} step {step}"
            );
        }
    }
}

struct ChannelSink(mpsc::SyncSender<VadResult>);
impl VadSink for ChannelSink {
    fn deliver(&self, result: VadResult) -> Delivery {
        match self.0.try_send(result) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::TrySendError::Full(_)) => Delivery::Full,
            Err(mpsc::TrySendError::Disconnected(_)) => Delivery::Closed,
        }
    }
}

#[test]
fn pool_returns_every_chunk_in_order_with_its_tag() {
    let rt = runtime();
    let pool = VadPool::start(&rt, 2, 1024).unwrap();
    let (tx, rx) = mpsc::sync_channel(1000);
    // The plain path (no echo cancellation, no noise suppression): Silero sees the input as is.
    let cfg = crate::pipeline::PipelineConfig {
        echo_cancellation: false,
        noise_suppression: false,
        ..Default::default()
    };
    let mut stream = pool.open_stream(Box::new(ChannelSink(tx)), &cfg).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prompts/prompt.wav");
    let bytes = std::fs::read(path).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let pcm: Vec<i16> = bytes[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut fed = 0u64;
    let silence = [0i16; 160];
    for frame in pcm[..160 * 100].chunks(160) {
        stream.push_frame(&silence, frame, fed, 0);
        fed += frame.len() as u64;
    }
    let expected = (160 * 100) / CHUNK_SAMPLES;
    let mut tags = Vec::new();
    for _ in 0..expected {
        let r = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert!((0.0..=1.0).contains(&r.probability));
        tags.push(r.tag);
    }
    let want: Vec<u64> = (1..=expected as u64)
        .map(|i| i * CHUNK_SAMPLES as u64)
        .collect();
    assert_eq!(tags, want);
    // Closing the stream makes the worker forget it; the pool shuts down cleanly.
    drop(stream);
    pool.shutdown();
}

#[test]
fn processed_audio_comes_back_only_when_asked_for_and_is_what_the_vad_heard() {
    let rt = runtime();
    let pool = VadPool::start(&rt, 1, 1024).unwrap();
    let pcm = crate::wav::load_prompt(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prompts/prompt.wav"),
    )
    .unwrap();
    let run = |deliver_audio: bool, noise_suppression: bool| {
        let (tx, rx) = mpsc::sync_channel(1000);
        let cfg = crate::pipeline::PipelineConfig {
            echo_cancellation: true,
            noise_suppression,
            deliver_audio,
            ..Default::default()
        };
        let mut stream = pool.open_stream(Box::new(ChannelSink(tx)), &cfg).unwrap();
        let silence = [0i16; 160];
        for (i, frame) in pcm[..160 * 50].chunks(160).enumerate() {
            stream.push_frame(&silence, frame, (i * 160) as u64, 0);
        }
        (0..(160 * 50) / CHUNK_SAMPLES)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(run(false, false)
        .iter()
        .all(|r| r.processed_audio.is_none()));
    // No far end, no noise suppression: the processed audio is the input, chunk by chunk.
    let plain = run(true, false);
    for r in &plain {
        let pcm_chunk = &pcm[(r.tag as usize - CHUNK_SAMPLES)..r.tag as usize];
        let got = r.processed_audio.as_deref().unwrap();
        assert!(got.iter().zip(pcm_chunk).all(|(a, b)| (a - b).abs() <= 1));
    }
    // With noise suppression it is the suppressor's output (delayed, not the input).
    let cleaned = run(true, true);
    let differs = cleaned
        .iter()
        .zip(&plain)
        .any(|(a, b)| a.processed_audio != b.processed_audio);
    assert!(differs);
    pool.shutdown();
}

#[test]
fn every_batch_size_runs() {
    // Batches of any size up to what 250 calls on two workers produce must succeed.
    let rt = runtime();
    let mut session = rt.session().unwrap();
    let chunks = prompt_chunks();
    let mut probs = Vec::new();
    let mut failures = Vec::new();
    for b in 1..=260usize {
        let batch: Vec<[f32; CHUNK_SAMPLES]> =
            (0..b).map(|i| chunks[(i * 7 + b) % chunks.len()]).collect();
        let mut states = vec![StreamState::default(); b];
        if let Err(e) = session.run_batch(&batch, &mut states, &mut probs) {
            failures.push((b, e.to_string()));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
