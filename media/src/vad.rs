//! Silero VAD through ONNX Runtime (`ort`, load-dynamic), batched across calls.
//!
//! Each call owns a [`VadStream`]: every 20 ms it submits, without blocking, the caller frame
//! and the frame it sent to a [`VadPool`]. The pool runs dedicated threads, each with one
//! ONNX Runtime session. A worker runs each stream's [`CallerPipeline`] (echo cancellation,
//! noise suppression — CPU-heavy DSP kept off the call tasks), cuts the result into the
//! 256-sample (32 ms) chunks Silero expects at 8 kHz, and runs every pending chunk (of many
//! calls) as one batch, because a batch of 32 costs about a third per chunk of a batch of
//! one (see docs/figures.md). Pipeline state, Silero's recurrent state and its 32-sample
//! context live inside the worker that owns the stream, so a stream is pinned to one worker.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::pipeline::{CallerPipeline, ChunkContext, PipelineConfig, FRAME_SAMPLES};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

/// Samples per Silero chunk at 8 kHz (32 ms).
pub const CHUNK_SAMPLES: usize = 256;
/// Samples of the previous chunk prepended as context (the reference wrapper does this).
pub const CONTEXT_SAMPLES: usize = 32;
/// Length of one chunk in milliseconds.
pub const CHUNK_MS: u32 = 32;
const STATE_LEN: usize = 128;
const INPUT_LEN: usize = CHUNK_SAMPLES + CONTEXT_SAMPLES;
/// Largest batch one run takes; more pending chunks wait for the next run.
const MAX_BATCH: usize = 512;
/// A frame that waited longer than this in the queue is processed without noise
/// suppression: under overload, a timely barge-in beats a cleaner one.
const SHED_AFTER: std::time::Duration = std::time::Duration::from_millis(40);

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("ONNX Runtime library not found at {0} (run ./scripts/setup-runtime.sh)")]
    LibraryMissing(PathBuf),
    #[error("Silero VAD model not found at {0} (run ./scripts/setup-runtime.sh)")]
    ModelMissing(PathBuf),
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    LoadRuntime { path: PathBuf, reason: String },
    #[error("cannot load Silero model {path}: {reason}")]
    LoadModel { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("cannot start VAD worker thread: {0}")]
    Thread(String),
}

/// Where ONNX Runtime and the model live.
#[derive(Clone, Debug)]
pub struct SileroConfig {
    pub onnxruntime_library: PathBuf,
    pub model: PathBuf,
}

/// Loads ONNX Runtime once per process and opens sessions on the Silero model.
#[derive(Clone)]
pub struct SileroRuntime {
    environment: ort::environment::Environment,
    model: PathBuf,
}

impl SileroRuntime {
    pub fn load(cfg: &SileroConfig) -> Result<Self, VadError> {
        if !cfg.onnxruntime_library.is_file() {
            return Err(VadError::LibraryMissing(cfg.onnxruntime_library.clone()));
        }
        if !cfg.model.is_file() {
            return Err(VadError::ModelMissing(cfg.model.clone()));
        }
        let load_err = |reason: String| VadError::LoadRuntime {
            path: cfg.onnxruntime_library.clone(),
            reason,
        };
        // ONNX Runtime allows one environment per process: create it once, share it after.
        static ENVIRONMENT: std::sync::Mutex<Option<ort::environment::Environment>> =
            std::sync::Mutex::new(None);
        let mut slot = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
        let environment = match slot.as_ref() {
            Some(env) => env.clone(),
            None => {
                let env = ort::init_from(&cfg.onnxruntime_library)
                    .map_err(|e| load_err(e.to_string()))?
                    .with_name("bargein")
                    .build()
                    .map_err(|e| load_err(e.to_string()))?;
                *slot = Some(env.clone());
                env
            }
        };
        drop(slot);
        let runtime = SileroRuntime {
            environment,
            model: cfg.model.clone(),
        };
        // Open one session now so a bad model fails at start, not on the first call.
        runtime.session()?;
        Ok(runtime)
    }

    /// A new single-threaded inference session (about 10 MB; one per worker).
    pub fn session(&self) -> Result<SileroSession, VadError> {
        let model_err = |reason: String| VadError::LoadModel {
            path: self.model.clone(),
            reason,
        };
        let session = Session::builder(&self.environment)
            .map_err(|e| model_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| model_err(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| model_err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| model_err(e.to_string()))?
            .commit_from_file(&self.model)
            .map_err(|e| model_err(e.to_string()))?;
        Ok(SileroSession {
            session,
            input: Vec::new(),
            state: Vec::new(),
        })
    }
}

/// Recurrent state and context of one audio stream.
#[derive(Clone)]
pub struct StreamState {
    state: [f32; 2 * STATE_LEN],
    context: [f32; CONTEXT_SAMPLES],
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            state: [0.0; 2 * STATE_LEN],
            context: [0.0; CONTEXT_SAMPLES],
        }
    }
}

/// One ONNX Runtime session on the Silero model, with reusable batch buffers.
pub struct SileroSession {
    session: Session,
    input: Vec<f32>,
    state: Vec<f32>,
}

impl SileroSession {
    /// Runs one batch: `chunks[i]` (256 samples scaled to ±1.0) belongs to `streams[i]`.
    /// Updates each stream's state and context and writes one probability per chunk.
    pub fn run_batch(
        &mut self,
        chunks: &[[f32; CHUNK_SAMPLES]],
        streams: &mut [StreamState],
        probabilities: &mut Vec<f32>,
    ) -> Result<(), VadError> {
        let batch = chunks.len().min(streams.len());
        probabilities.clear();
        if batch == 0 {
            return Ok(());
        }
        self.input.clear();
        for (chunk, stream) in chunks.iter().zip(streams.iter()) {
            self.input.extend_from_slice(&stream.context);
            self.input.extend_from_slice(chunk);
        }
        // The model's state is [2, B, 128]: layer-major, then stream.
        self.state.clear();
        self.state.resize(2 * batch * STATE_LEN, 0.0);
        for (b, stream) in streams.iter().take(batch).enumerate() {
            for layer in 0..2 {
                let dst = layer * batch * STATE_LEN + b * STATE_LEN;
                let src = layer * STATE_LEN;
                self.state[dst..dst + STATE_LEN]
                    .copy_from_slice(&stream.state[src..src + STATE_LEN]);
            }
        }
        let sr = [8000_i64];
        let infer = |e: ort::Error| VadError::Inference(e.to_string());
        let input =
            TensorRef::from_array_view(([batch, INPUT_LEN], &self.input[..])).map_err(infer)?;
        let state =
            TensorRef::from_array_view(([2, batch, STATE_LEN], &self.state[..])).map_err(infer)?;
        let sr = TensorRef::from_array_view((Vec::<usize>::new(), &sr[..])).map_err(infer)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
            .map_err(infer)?;
        let (_, probs) = outputs
            .get("output")
            .ok_or_else(|| VadError::Inference("model has no `output`".into()))?
            .try_extract_tensor::<f32>()
            .map_err(infer)?;
        let (_, new_state) = outputs
            .get("stateN")
            .ok_or_else(|| VadError::Inference("model has no `stateN`".into()))?
            .try_extract_tensor::<f32>()
            .map_err(infer)?;
        if probs.len() < batch || new_state.len() < 2 * batch * STATE_LEN {
            return Err(VadError::Inference(
                "model output has the wrong shape".into(),
            ));
        }
        probabilities.extend_from_slice(&probs[..batch]);
        for (b, (stream, chunk)) in streams.iter_mut().zip(chunks).take(batch).enumerate() {
            for layer in 0..2 {
                let src = layer * batch * STATE_LEN + b * STATE_LEN;
                let dst = layer * STATE_LEN;
                stream.state[dst..dst + STATE_LEN]
                    .copy_from_slice(&new_state[src..src + STATE_LEN]);
            }
            stream
                .context
                .copy_from_slice(&chunk[CHUNK_SAMPLES - CONTEXT_SAMPLES..]);
        }
        Ok(())
    }
}

/// A VAD result delivered back to the call that submitted the chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct VadResult {
    /// Caller samples (counted from the start of the call) up to the chunk's end.
    pub tag: u64,
    pub probability: f32,
    /// What the echo canceller knew while the chunk was filled (for the echo gate).
    pub context: ChunkContext,
    /// The chunk as the VAD heard it (after echo cancellation and noise suppression), when
    /// the stream was opened with `PipelineConfig::deliver_audio`.
    pub processed_audio: Option<Box<[i16; CHUNK_SAMPLES]>>,
}

/// What happened to a delivered result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The call's queue is full: the result is dropped (counted).
    Full,
    /// The call is gone: the worker forgets the stream.
    Closed,
}

/// Where the pool delivers results: implemented by the call's channel sender.
pub trait VadSink: Send + 'static {
    /// Must not block.
    fn deliver(&self, result: VadResult) -> Delivery;
}

// Frames are the common message and carry their samples inline so submitting one does not
// allocate; the rare Open/Close messages pay the size.
#[allow(clippy::large_enum_variant)]
enum Job {
    Frame {
        stream: u64,
        /// Caller samples before this frame.
        tag_base: u64,
        submitted: std::time::Instant,
        far: [i16; FRAME_SAMPLES],
        near: [i16; FRAME_SAMPLES],
        /// See [`VadStream::push_frame`].
        near_shift: i64,
    },
    Open {
        stream: u64,
        sink: Box<dyn VadSink>,
        pipeline: Box<CallerPipeline>,
    },
    Close {
        stream: u64,
    },
}

/// Counters shared by the pool's workers (lock-free).
#[derive(Default)]
pub struct VadPoolStats {
    pub chunks: AtomicU64,
    pub batches: AtomicU64,
    pub dropped_full: AtomicU64,
    pub errors: AtomicU64,
    /// Frames processed without noise suppression because the worker was behind.
    pub shed_frames: AtomicU64,
    /// Largest batch run so far (mean batch size = chunks / batches).
    pub max_batch: AtomicU64,
}

/// Dedicated inference threads batching the chunks of many calls.
pub struct VadPool {
    senders: Vec<SyncSender<Job>>,
    next_stream: AtomicU64,
    stats: Arc<VadPoolStats>,
    threads: Vec<JoinHandle<()>>,
}

impl VadPool {
    /// Starts `workers` threads, each with its own session. `queue` bounds pending jobs per worker.
    pub fn start(runtime: &SileroRuntime, workers: usize, queue: usize) -> Result<Self, VadError> {
        let stats = Arc::new(VadPoolStats::default());
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for index in 0..workers.max(1) {
            let session = runtime.session()?;
            let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(16));
            let stats = stats.clone();
            let handle = std::thread::Builder::new()
                .name(format!("vad-{index}"))
                .spawn(move || worker_loop(session, rx, stats))
                .map_err(|e| VadError::Thread(e.to_string()))?;
            senders.push(tx);
            threads.push(handle);
        }
        Ok(VadPool {
            senders,
            next_stream: AtomicU64::new(1),
            stats,
            threads,
        })
    }

    pub fn stats(&self) -> &VadPoolStats {
        &self.stats
    }

    /// Opens a stream for one call with its own pipeline settings; results go to `sink`.
    pub fn open_stream(&self, sink: Box<dyn VadSink>, cfg: &PipelineConfig) -> Option<VadStream> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let worker = self.senders.get(id as usize % self.senders.len())?.clone();
        let pipeline = Box::new(CallerPipeline::new(cfg));
        // Never block the caller's task: a full queue means the pool is overloaded and the
        // call is better refused than left without barge-in.
        worker
            .try_send(Job::Open {
                stream: id,
                sink,
                pipeline,
            })
            .ok()?;
        Some(VadStream {
            id,
            worker,
            stats: self.stats.clone(),
        })
    }

    /// Stops the workers (used in tests and on shutdown).
    pub fn shutdown(mut self) {
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker_loop(mut session: SileroSession, rx: Receiver<Job>, stats: Arc<VadPoolStats>) {
    let mut streams: HashMap<u64, Stream> = HashMap::new();
    let mut deferred: VecDeque<Pending> = VecDeque::new();
    let mut rest: VecDeque<Pending> = VecDeque::new();
    let mut batch_ids: Vec<(u64, u64, ChunkContext)> = Vec::with_capacity(MAX_BATCH);
    let mut batch_chunks: Vec<[f32; CHUNK_SAMPLES]> = Vec::with_capacity(MAX_BATCH);
    let mut batch_states: Vec<StreamState> = Vec::with_capacity(MAX_BATCH);
    let mut probabilities = Vec::with_capacity(MAX_BATCH);
    let mut generation = 0u64;
    loop {
        // Block only when nothing is pending.
        if deferred.is_empty() {
            match rx.recv() {
                Ok(job) => apply(job, &mut streams, &mut deferred, &stats),
                Err(_) => return,
            }
        }
        let mut disconnected = false;
        loop {
            match rx.try_recv() {
                Ok(job) => apply(job, &mut streams, &mut deferred, &stats),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        // Run batches until every pending chunk is done. One chunk per stream per batch:
        // a stream's chunks depend on each other's recurrent state.
        while !deferred.is_empty() {
            generation += 1;
            batch_ids.clear();
            batch_chunks.clear();
            batch_states.clear();
            while let Some(p) = deferred.pop_front() {
                let Some(st) = streams.get_mut(&p.stream) else {
                    continue; // closed meanwhile
                };
                if batch_ids.len() >= MAX_BATCH || st.batch_generation == generation {
                    rest.push_back(p);
                    continue;
                }
                st.batch_generation = generation;
                batch_ids.push((p.stream, p.tag, p.context));
                batch_chunks.push(p.samples);
                batch_states.push(st.silero.clone());
            }
            std::mem::swap(&mut deferred, &mut rest);
            if batch_ids.is_empty() {
                break;
            }
            let result = session.run_batch(&batch_chunks, &mut batch_states, &mut probabilities);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .chunks
                .fetch_add(batch_ids.len() as u64, Ordering::Relaxed);
            stats
                .max_batch
                .fetch_max(batch_ids.len() as u64, Ordering::Relaxed);
            if let Err(e) = result {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, batch = batch_ids.len(), "VAD batch failed");
                continue;
            }
            let done = batch_ids
                .iter()
                .zip(&batch_states)
                .zip(&probabilities)
                .zip(&batch_chunks);
            for ((((stream, tag, context), state), probability), chunk) in done {
                let Some(st) = streams.get_mut(stream) else {
                    continue;
                };
                st.silero = state.clone();
                let processed_audio = st.pipeline.delivers_audio().then(|| {
                    let mut pcm = Box::new([0i16; CHUNK_SAMPLES]);
                    for (o, x) in pcm.iter_mut().zip(chunk.iter()) {
                        *o = (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                    }
                    pcm
                });
                let delivery = st.sink.deliver(VadResult {
                    tag: *tag,
                    probability: *probability,
                    context: *context,
                    processed_audio,
                });
                match delivery {
                    Delivery::Delivered => {}
                    Delivery::Full => {
                        stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                    }
                    Delivery::Closed => {
                        streams.remove(stream);
                    }
                }
            }
        }
        if disconnected {
            return;
        }
    }
}

/// A stream as its worker holds it.
struct Stream {
    pipeline: Box<CallerPipeline>,
    silero: StreamState,
    sink: Box<dyn VadSink>,
    /// The batch this stream last joined (one chunk per stream per batch).
    batch_generation: u64,
}

/// A chunk waiting for the next batch.
struct Pending {
    stream: u64,
    tag: u64,
    context: ChunkContext,
    samples: [f32; CHUNK_SAMPLES],
}

fn apply(
    job: Job,
    streams: &mut HashMap<u64, Stream>,
    deferred: &mut VecDeque<Pending>,
    stats: &VadPoolStats,
) {
    match job {
        Job::Open {
            stream,
            sink,
            pipeline,
        } => {
            streams.insert(
                stream,
                Stream {
                    pipeline,
                    silero: StreamState::default(),
                    sink,
                    batch_generation: 0,
                },
            );
        }
        Job::Close { stream } => {
            streams.remove(&stream);
        }
        Job::Frame {
            stream,
            tag_base,
            submitted,
            far,
            near,
            near_shift,
        } => {
            let Some(st) = streams.get_mut(&stream) else {
                return;
            };
            if near_shift != 0 {
                st.pipeline.near_timeline_shifted(near_shift);
            }
            let shed = submitted.elapsed() > SHED_AFTER;
            if shed {
                stats.shed_frames.fetch_add(1, Ordering::Relaxed);
            }
            st.pipeline
                .process_frame_with(&far, &near, shed, |samples, end, context| {
                    deferred.push_back(Pending {
                        stream,
                        tag: tag_base + end as u64,
                        context,
                        samples: *samples,
                    })
                });
        }
    }
}

/// A call's handle on the pool.
pub struct VadStream {
    id: u64,
    worker: SyncSender<Job>,
    stats: Arc<VadPoolStats>,
}

impl VadStream {
    /// Submits one 20 ms tick: the caller frame (`near`), the frame we sent (`far`), and the
    /// count of caller samples before it. Never blocks: a full queue drops the frame
    /// (counted) rather than stalling the call.
    /// `near_shift`: samples the caller's timeline skipped (> 0) or repeated (< 0) in front
    /// of this frame (the jitter buffer dropped or inserted a frame; see
    /// [`crate::jitter::JitterBuffer::last_pop_shift`]); 0 normally.
    pub fn push_frame(
        &mut self,
        far: &[i16],
        near: &[i16],
        caller_samples_before: u64,
        near_shift: i64,
    ) {
        let mut job_far = [0i16; FRAME_SAMPLES];
        let mut job_near = [0i16; FRAME_SAMPLES];
        let n = near.len().min(FRAME_SAMPLES);
        if let (Some(dst), Some(src)) = (job_near.get_mut(..n), near.get(..n)) {
            dst.copy_from_slice(src);
        }
        let m = far.len().min(FRAME_SAMPLES);
        if let (Some(dst), Some(src)) = (job_far.get_mut(..m), far.get(..m)) {
            dst.copy_from_slice(src);
        }
        let job = Job::Frame {
            stream: self.id,
            tag_base: caller_samples_before,
            submitted: std::time::Instant::now(),
            far: job_far,
            near: job_near,
            near_shift,
        };
        if self.worker.try_send(job).is_err() {
            self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for VadStream {
    fn drop(&mut self) {
        // Never blocks: if the queue is full the worker still forgets the stream at its next
        // result, when the call's sink reports `Closed`.
        let _ = self.worker.try_send(Job::Close { stream: self.id });
    }
}

#[cfg(test)]
mod tests;
