//! Runs a recorded call through the live barge-in path, offline:
//!
//! ```text
//! every 20 ms frame: CallerPipeline::process_frame(agent, caller)   (echo canceller + NS)
//!   → 256-sample chunks → Silero (one session, batch of 1, one StreamState)
//!   → decision engine (agent_interruptible = the agent channel carries audio)
//! ```
//!
//! and keeps what the plot and the summary need: per-frame levels and echo estimates,
//! per-chunk probabilities, the VAD's input audio and the decisions.
//!
//! A recording does not say when the live gateway's playout was interruptible, only what
//! it sent. The replay counts the agent as interruptible while its channel carries audio:
//! frame level at or above `agent_threshold_dbfs` (−50 dBFS by default, the echo canceller's
//! own far-end threshold), held for `agent_hangover_ms` (300 ms) after the last such frame
//! so pauses between words do not end the prompt.

use media::echo::{EchoGateVerdict, EchoStats};
use media::pipeline::{level_db, CallerPipeline, ChunkContext, PipelineConfig, FRAME_SAMPLES};
use media::policy::PolicyConfig;
use media::vad::{SileroSession, StreamState, CHUNK_SAMPLES};

use super::engine::{ChunkObservation, Decision, DecisionEngine, EngineKind, Thresholds};
use super::input::{CallAudio, RATE_HZ};

/// Caller frames louder than this (dBFS) count as caller activity when no echo is expected.
const CALLER_ACTIVE_DBFS: f32 = -45.0;
/// An echo path loses at least 6 dB (G.168): without the canceller's estimate, inbound
/// audio within 6 dB of what the agent sends may be echo.
const MIN_ECHO_LOSS_DB: f32 = 6.0;
const FRAME_MS: u32 = 20;

/// Speech probabilities, one per 256-sample chunk. Silero in the tool; a stand-in in tests.
pub trait Vad {
    fn probability(&mut self, chunk: &[f32; CHUNK_SAMPLES]) -> Result<f32, String>;
}

/// One Silero session and one stream state: the live worker's path with a batch of one.
pub struct SileroVad {
    session: SileroSession,
    state: StreamState,
    probabilities: Vec<f32>,
}

impl SileroVad {
    pub fn new(session: SileroSession) -> Self {
        SileroVad {
            session,
            state: StreamState::default(),
            probabilities: Vec::with_capacity(1),
        }
    }
}

impl Vad for SileroVad {
    fn probability(&mut self, chunk: &[f32; CHUNK_SAMPLES]) -> Result<f32, String> {
        self.session
            .run_batch(
                std::slice::from_ref(chunk),
                std::slice::from_mut(&mut self.state),
                &mut self.probabilities,
            )
            .map_err(|e| format!("VAD: {e}"))?;
        self.probabilities
            .first()
            .copied()
            .ok_or_else(|| "VAD: no probability returned".to_string())
    }
}

/// Replay-only settings (not gateway config keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgentDetection {
    pub agent_threshold_dbfs: f32,
    pub agent_hangover_ms: u32,
}

impl Default for AgentDetection {
    fn default() -> Self {
        AgentDetection {
            agent_threshold_dbfs: -50.0,
            agent_hangover_ms: 300,
        }
    }
}

/// "The agent channel carries audio", with hangover.
struct AgentActivity {
    threshold_db: f32,
    hangover_frames: u32,
    frames_left: u32,
}

impl AgentActivity {
    fn new(cfg: AgentDetection) -> Self {
        AgentActivity {
            threshold_db: cfg.agent_threshold_dbfs,
            hangover_frames: cfg.agent_hangover_ms / FRAME_MS,
            frames_left: 0,
        }
    }

    fn update(&mut self, level_db: f32) -> bool {
        if level_db >= self.threshold_db {
            self.frames_left = self.hangover_frames + 1;
        }
        let active = self.frames_left > 0;
        self.frames_left = self.frames_left.saturating_sub(1);
        active
    }
}

/// Who is audible in a frame or chunk, judged from levels only (independent of the VAD),
/// for the summary's "mean VAD probability during agent-only audio vs caller speech".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Quiet,
    /// The agent talks and the inbound audio is no louder than its echo.
    AgentOnly,
    /// Inbound audio louder than any echo could be (or any audible inbound audio while the
    /// agent is silent).
    Caller,
}

impl Activity {
    fn index(self) -> usize {
        match self {
            Activity::Quiet => 0,
            Activity::AgentOnly => 1,
            Activity::Caller => 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameRecord {
    /// Inbound level before any processing (dBFS).
    pub caller_db: f32,
    pub agent_db: f32,
    pub agent_active: bool,
    /// Level of what the VAD sees (after echo cancellation and noise suppression).
    pub vad_input_db: f32,
    /// Echo level the canceller expects in this frame (None: cancellation off).
    pub expected_echo_db: Option<f32>,
    pub erle_db: Option<f32>,
    pub activity: Activity,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkRecord {
    pub end_s: f64,
    pub probability: f32,
    pub agent_interruptible: bool,
    pub context: ChunkContext,
    pub activity: Activity,
}

/// Everything the replay learned about the call.
pub struct Timeline {
    pub audio: CallAudio,
    /// What the VAD was fed, as 16-bit samples (whole chunks only).
    pub vad_input: Vec<i16>,
    pub frames: Vec<FrameRecord>,
    pub chunks: Vec<ChunkRecord>,
    pub decisions: Vec<Decision>,
    pub thresholds: Thresholds,
    pub engine: EngineKind,
    pub echo_stats: Option<EchoStats>,
}

impl Timeline {
    pub fn duration_s(&self) -> f64 {
        self.audio.duration_s()
    }
}

/// Runs the call through the pipeline, the VAD and the decision engine. `progress` gets the
/// fraction done now and then.
pub fn run(
    audio: CallAudio,
    pipeline: &PipelineConfig,
    bargein: PolicyConfig,
    engine: EngineKind,
    agent: AgentDetection,
    vad: &mut dyn Vad,
    progress: &mut dyn FnMut(f64),
) -> Result<Timeline, String> {
    let mut caller_pipeline = CallerPipeline::new(pipeline);
    let mut engine = DecisionEngine::new(engine, bargein)?;
    let mut agent_activity = AgentActivity::new(agent);
    let total_frames = audio.caller.len().div_ceil(FRAME_SAMPLES);
    let mut frames = Vec::with_capacity(total_frames);
    let mut chunks = Vec::with_capacity(audio.caller.len() / CHUNK_SAMPLES + 1);
    let mut vad_input = Vec::with_capacity(audio.caller.len());
    let mut decisions = Vec::new();
    let mut near = [0i16; FRAME_SAMPLES];
    let mut far = [0i16; FRAME_SAMPLES];
    // Frame activity since the last chunk: a chunk takes the majority of its frames.
    let mut votes = [0u32; 3];
    let report_every = (total_frames / 100).max(1);
    let mut shifts = audio.caller_shifts.iter().peekable();
    for index in 0..total_frames {
        // The live call's jitter-buffer jumps, where they happened.
        while let Some((_, shift)) = shifts.next_if(|(frame, _)| *frame <= index) {
            caller_pipeline.near_timeline_shifted(*shift);
        }
        let start = index * FRAME_SAMPLES;
        // The last frame is padded with silence: the live path only sees whole frames.
        copy_padded(&audio.caller, start, &mut near);
        copy_padded(&audio.agent, start, &mut far);
        let caller_db = level_db(&near);
        let agent_db = level_db(&far);
        let agent_active = agent_activity.update(agent_db);
        let mut completed: Option<([f32; CHUNK_SAMPLES], usize, ChunkContext)> = None;
        let trace = caller_pipeline.process_frame(&far, &near, |samples, end, context| {
            completed = Some((*samples, end, context));
        });
        let frame_end_s = (start + FRAME_SAMPLES) as f64 / f64::from(RATE_HZ);
        engine.on_frame(frame_end_s, agent_active, &mut decisions);
        let activity = classify(caller_db, agent_db, agent_active, trace.gate);
        votes[activity.index()] += 1;
        frames.push(FrameRecord {
            caller_db,
            agent_db,
            agent_active,
            vad_input_db: trace.vad_input_level_db,
            expected_echo_db: trace.echo.map(|e| e.expected_echo_level_db),
            erle_db: trace.echo.map(|e| e.erle_db),
            activity,
        });
        if let Some((samples, end, context)) = completed {
            vad_input.extend(samples.iter().map(|s| to_i16(*s)));
            let probability = vad.probability(&samples)?;
            let chunk = ChunkObservation {
                end_s: (start + end) as f64 / f64::from(RATE_HZ),
                probability,
                agent_interruptible: agent_active,
                context,
            };
            engine.on_chunk(&chunk, &mut decisions);
            chunks.push(ChunkRecord {
                end_s: chunk.end_s,
                probability,
                agent_interruptible: agent_active,
                context,
                activity: majority(&votes),
            });
            votes = [0; 3];
        }
        if index % report_every == 0 {
            progress(index as f64 / total_frames as f64);
        }
    }
    engine.finish(audio.duration_s(), &mut decisions);
    // Ticks and chunks interleave slightly out of time order (a chunk ends before the tick
    // that completes it); print in time order. The sort is stable: same-time decisions keep
    // the order the engine gave them.
    decisions.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    progress(1.0);
    Ok(Timeline {
        audio,
        vad_input,
        frames,
        chunks,
        decisions,
        thresholds: engine.thresholds(),
        engine: engine.kind(),
        echo_stats: caller_pipeline.echo_stats(),
    })
}

fn copy_padded(source: &[i16], start: usize, frame: &mut [i16; FRAME_SAMPLES]) {
    frame.fill(0);
    let available = source.get(start..).unwrap_or(&[]);
    let n = available.len().min(FRAME_SAMPLES);
    if let (Some(dst), Some(src)) = (frame.get_mut(..n), available.get(..n)) {
        dst.copy_from_slice(src);
    }
}

fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0)
        .round()
        .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

fn classify(
    caller_db: f32,
    agent_db: f32,
    agent_active: bool,
    gate: Option<EchoGateVerdict>,
) -> Activity {
    let audible = caller_db > CALLER_ACTIVE_DBFS;
    let possible_echo = match gate {
        Some(EchoGateVerdict::WithinExpectedEcho) => true,
        Some(EchoGateVerdict::AboveExpectedEcho | EchoGateVerdict::NoFarEnd) => false,
        // Cancellation off: no echo estimate, fall back to the minimum echo loss.
        None => agent_active && caller_db <= agent_db - MIN_ECHO_LOSS_DB,
    };
    if possible_echo || (agent_active && !audible) {
        Activity::AgentOnly
    } else if audible {
        Activity::Caller
    } else {
        Activity::Quiet
    }
}

fn majority(votes: &[u32; 3]) -> Activity {
    let [quiet, agent, caller] = *votes;
    // Ties go to the caller: a chunk with as much caller as agent audio is caller speech.
    if caller >= agent && caller >= quiet && caller > 0 {
        Activity::Caller
    } else if agent >= quiet && agent > 0 {
        Activity::AgentOnly
    } else {
        Activity::Quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loud chunks are speech: enough to exercise the plumbing without ONNX Runtime.
    struct EnergyVad;

    impl Vad for EnergyVad {
        fn probability(&mut self, chunk: &[f32; CHUNK_SAMPLES]) -> Result<f32, String> {
            let rms = (chunk.iter().map(|s| s * s).sum::<f32>() / CHUNK_SAMPLES as f32).sqrt();
            Ok(if rms > 0.05 { 0.95 } else { 0.02 })
        }
    }

    fn tone(len: usize, amplitude: f32) -> Vec<i16> {
        (0..len)
            .map(|i| (amplitude * (i as f32 * 0.3).sin()) as i16)
            .collect()
    }

    fn replay(caller: Vec<i16>, agent: Vec<i16>, engine: EngineKind) -> Timeline {
        let pipeline = PipelineConfig {
            echo_cancellation: false,
            noise_suppression: false,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let timeline = run(
            CallAudio {
                caller,
                agent,
                caller_shifts: Vec::new(),
            },
            &pipeline,
            PolicyConfig::default(),
            engine,
            AgentDetection::default(),
            &mut EnergyVad,
            &mut |f| seen.push(f),
        )
        .unwrap();
        assert_eq!(seen.last(), Some(&1.0));
        timeline
    }

    #[test]
    fn caller_speech_over_the_agent_is_a_barge_in_at_its_start() {
        // 2.5 s of agent audio; the caller talks from 1.0 s to 1.6 s.
        let agent = tone(20_000, 8_000.0);
        let mut caller = vec![0i16; 20_000];
        caller[8_000..12_800].copy_from_slice(&tone(4_800, 12_000.0));
        let t = replay(caller.clone(), agent.clone(), EngineKind::Detector);
        assert_eq!(t.frames.len(), 125);
        assert_eq!(t.chunks.len(), 20_000 / CHUNK_SAMPLES);
        assert_eq!(t.vad_input.len(), t.chunks.len() * CHUNK_SAMPLES);
        let names: Vec<_> = t.decisions.iter().map(Decision::name).collect();
        assert_eq!(names, ["barge_in", "turn_ended"]);
        let onset_s = t.decisions[0].onset_s().unwrap();
        assert!((0.98..=1.04).contains(&onset_s), "{onset_s}");
        assert!(t.frames[10].agent_active);
        assert_eq!(t.frames[60].activity, Activity::Caller);
        assert!(t.echo_stats.is_none());
        // The policy pauses first, then truncates at the same point as the detector.
        let p = replay(caller, agent, EngineKind::Policy);
        let names: Vec<_> = p.decisions.iter().map(Decision::name).collect();
        assert_eq!(names, ["paused", "barge_in", "turn_ended"]);
        assert_eq!(p.decisions[1], t.decisions[0]);
    }

    #[test]
    fn caller_speech_alone_is_speech_started_and_the_last_frame_is_padded() {
        let mut caller = vec![0i16; 8_050];
        caller[1_600..6_400].copy_from_slice(&tone(4_800, 12_000.0));
        let t = replay(caller, vec![0; 8_050], EngineKind::Policy);
        assert_eq!(t.frames.len(), 51);
        assert_eq!(t.decisions[0].name(), "speech_started");
        assert!(!t.frames[30].agent_active);
        assert_eq!(t.frames[0].activity, Activity::Quiet);
    }

    #[test]
    fn agent_activity_holds_over_short_pauses() {
        let mut a = AgentActivity::new(AgentDetection::default());
        assert!(!a.update(-80.0));
        assert!(a.update(-20.0));
        // 300 ms hangover = 15 frames.
        for _ in 0..15 {
            assert!(a.update(-80.0));
        }
        assert!(!a.update(-80.0));
    }

    #[test]
    fn activity_classification() {
        use EchoGateVerdict::*;
        assert_eq!(
            classify(-30.0, -20.0, true, Some(WithinExpectedEcho)),
            Activity::AgentOnly
        );
        assert_eq!(
            classify(-10.0, -20.0, true, Some(AboveExpectedEcho)),
            Activity::Caller
        );
        assert_eq!(
            classify(-70.0, -90.0, false, Some(NoFarEnd)),
            Activity::Quiet
        );
        assert_eq!(classify(-30.0, -20.0, true, None), Activity::AgentOnly);
        assert_eq!(classify(-12.0, -20.0, true, None), Activity::Caller);
        assert_eq!(majority(&[1, 1, 1]), Activity::Caller);
        assert_eq!(majority(&[2, 0, 0]), Activity::Quiet);
        assert_eq!(majority(&[0, 2, 1]), Activity::AgentOnly);
    }
}
