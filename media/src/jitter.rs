//! Adaptive jitter buffer for 8 kHz audio (sans-IO), with loss concealment ([`crate::plc`]).
//!
//! The caller decodes RTP payloads and [`JitterBuffer::push`]es PCM with the RTP timestamp;
//! the pacing loop calls [`JitterBuffer::pop`] exactly every 20 ms.
//!
//! **Timeline.** Audio is stored by timestamp in 10 ms blocks (80 samples) in a ring sized by
//! `max_delay_ms`, so packets of 10/20/30/… ms are split and merged for free and reordering
//! is just writing to the right slot. `play` is the timestamp of the next sample to output.
//! Packets whose timestamp or length is not a multiple of 80 samples relative to the stream
//! start are not G.711 framing: an unaligned timestamp resynchronises, an unaligned length
//! is dropped (`unsupported`).
//!
//! **Delay and target** (`estimate.rs`). The *delay* is how much audio on-time packets find
//! buffered ahead of them (each packet's slack at arrival, normalised by its lateness
//! relative to the fastest packet; minimum over the last 0.5–1 s). Lost packets never
//! arrive, so loss does not bias it. The *target* is the network jitter: the 95th
//! percentile minus the minimum of `arrival − timestamp` over the last 200 packets, clamped
//! to [min, max] and rounded up to 10 ms; until 50 packets are seen it is `start_delay_ms`.
//!
//! **Growing is fast**: when a block is due and nothing is buffered (underrun) the buffer
//! conceals *without advancing* `play` (an expansion: the delay grows at once). If the
//! missing block turns up later the expansion stays (late packets → more delay); if a later
//! block arrives instead, the missing ones are skipped up to the amount already concealed,
//! so pure loss does not grow the delay. When the delay is more than a frame under target
//! (jitter rose) a frame of concealment is also inserted proactively, at most every 100 ms:
//! one synthetic frame now is better than the lost late packets to come.
//!
//! **Shrinking is slow**: one 20 ms frame is dropped (cross-faded with the next) at most every
//! 500 ms, only when the delay is at least a frame above target, and in quiet audio unless
//! the excess exceeds two frames or has lasted 2 s. Together this absorbs clock skew: a
//! fast sender is trimmed by drops, a slow one padded by expansions, so the buffer neither
//! grows nor drains without bound.
//!
//! **Resync**: on an SSRC change or an unaligned timestamp the buffer restarts like a fresh
//! stream (start delay, estimator cleared) while the concealment fades the old audio out.
//! On a timestamp jump of more than 1 s within the same SSRC, buffered audio is flushed and
//! the new timeline starts at the target delay, keeping the (rebased) jitter estimate: it is
//! the same sender on the same network path. Backward jumps and unaligned timestamps are
//! taken only once a second packet confirms them (one stray packet must not flush audio).
//!
//! **Talkspurts**: when a packet arrives with nothing queued and either the marker bit set
//! (a talkspurt after silence suppression) or the concealment already faded to silence, it
//! is placed at the target delay, so delay changes happen in silence where possible.

use std::time::{Duration, Instant};

use crate::plc::Plc;
use estimate::{DelayEstimator, LevelWindow};

mod estimate;

/// Samples per output frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;
const BLOCK: usize = 80;
const BLOCK_I64: i64 = BLOCK as i64;
const FRAME_I64: i64 = FRAME_SAMPLES as i64;
const SAMPLES_PER_MS: i64 = 8;
/// Largest packet accepted (120 ms, the largest G.711 `maxptime` seen in practice).
const MAX_PACKET_BLOCKS: usize = 12;
/// Packets needed before the estimate replaces the start delay.
const MIN_DELAY_HISTORY: usize = 50;
/// Timestamp discontinuity treated as a new timeline (1 s).
const JUMP_LIMIT: i64 = 8000;
/// Minimum spacing before a frame is dropped (after any adjustment).
const SHRINK_INTERVAL: Duration = Duration::from_millis(500);
/// Minimum spacing before a frame is inserted: growing is fast.
const GROW_INTERVAL: Duration = Duration::from_millis(100);
/// How long an excess of one frame may wait for quiet audio before a frame is dropped
/// anyway.
const SHRINK_PATIENCE: Duration = Duration::from_secs(2);
/// Mean square under which a frame is quiet enough to drop without waiting (≈ −41 dBFS).
const LOW_ENERGY_MEAN_SQUARE: f32 = 300.0 * 300.0;
const MAX_DELAY_LIMIT_MS: u32 = 2000;

/// Jitter buffer settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// Lowest target delay.
    pub min_delay_ms: u32,
    /// Highest target delay; also sizes the buffer (plus room for one large packet).
    pub max_delay_ms: u32,
    /// Delay before the first packet is played and after a resync, until the estimate
    /// has enough packets. 40 ms: one frame of margin over `min` for typical networks.
    pub start_delay_ms: u32,
    /// Output frame size; must be [`FRAME_SAMPLES`].
    pub frame_samples: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_delay_ms: 20,
            max_delay_ms: 200,
            start_delay_ms: 40,
            frame_samples: FRAME_SAMPLES,
        }
    }
}

/// Invalid [`JitterConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterConfigError {
    #[error("frame_samples must be {FRAME_SAMPLES} (20 ms at 8 kHz), got {0}")]
    FrameSamples(usize),
    #[error("delays must satisfy min ({min}) <= start ({start}) <= max ({max}) <= {MAX_DELAY_LIMIT_MS} ms")]
    Delays { min: u32, start: u32, max: u32 },
}

/// What [`JitterBuffer::pop`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Received audio (possibly cross-faded at a merge or a dropped frame).
    Normal,
    /// Audible concealment or stretching.
    Concealed,
    /// Zeros: before the first packet, or once concealment has faded out.
    Silence,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Accepted,
    /// Accepted, after restarting the timeline (SSRC change, timestamp jump).
    Resynced,
    /// Every block was already buffered.
    Duplicate,
    /// Its time has already been played or concealed.
    Late,
    /// Empty, longer than 120 ms, or not a multiple of 10 ms.
    Unsupported,
}

/// Counters and current state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Audio buffered ahead of on-time packets (minimum over the last 0.5–1 s; 0 while
    /// nothing arrives).
    pub current_delay_ms: u32,
    pub target_delay_ms: u32,
    /// 95th percentile minus minimum of the relative packet delay.
    pub jitter_ms: u32,
    pub frames_normal: u64,
    pub frames_concealed: u64,
    pub frames_silence: u64,
    pub late: u64,
    pub duplicates: u64,
    /// 10 ms blocks discarded because a packet arrived beyond the buffer capacity.
    pub overflow_drops: u64,
    pub resyncs: u64,
    /// Frames dropped to shrink the delay.
    pub accelerated: u64,
    /// Delay increases: underruns (nothing to play; counted once per outage) and
    /// proactive one-frame stretches when the delay is under target.
    pub expanded: u64,
    pub unsupported: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    block: i64,
    present: bool,
    pcm: [i16; BLOCK],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Normal,
    Concealed,
    Silence,
}

/// The adaptive jitter buffer of one receive stream.
pub struct JitterBuffer {
    /// `play` at the end of the previous pop (None before the first started pop).
    play_after_last_pop: Option<i64>,
    /// See [`JitterBuffer::last_pop_shift`].
    last_shift: i64,
    config: JitterConfig,
    slots: Vec<Slot>,
    plc: Plc,
    started: bool,
    ssrc: u32,
    /// Timestamp unwrapping: `ts_ref` has extended value `ext_ref`.
    ts_ref: u32,
    ext_ref: i64,
    /// Next sample to output (extended timestamp).
    play: i64,
    /// Everything before this was played or skipped: packets there are late.
    consumed: i64,
    newest_end: i64,
    /// Concealment output since the last real block that did not advance `play`.
    inserted: i64,
    estimator: DelayEstimator,
    levels: LevelWindow,
    target: i64,
    last_adjust: Option<Instant>,
    /// Since when the delay has been at least a frame above target.
    excess_since: Option<Instant>,
    /// Timestamp that would confirm a backward/unaligned discontinuity.
    pending_discontinuity: Option<u32>,
    stats: JitterStats,
}

enum Timeline {
    Continues,
    Reset,
    /// A discontinuity seen once: the packet is dropped until a second one confirms it.
    Unconfirmed,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Result<Self, JitterConfigError> {
        if config.frame_samples != FRAME_SAMPLES {
            return Err(JitterConfigError::FrameSamples(config.frame_samples));
        }
        let ordered = config.min_delay_ms <= config.start_delay_ms
            && config.start_delay_ms <= config.max_delay_ms
            && config.max_delay_ms <= MAX_DELAY_LIMIT_MS;
        if !ordered {
            return Err(JitterConfigError::Delays {
                min: config.min_delay_ms,
                start: config.start_delay_ms,
                max: config.max_delay_ms,
            });
        }
        let blocks = (config.max_delay_ms as usize).div_ceil(10) + MAX_PACKET_BLOCKS + 2;
        let empty = Slot {
            block: i64::MIN,
            present: false,
            pcm: [0; BLOCK],
        };
        let mut buffer = JitterBuffer {
            config,
            slots: vec![empty; blocks],
            plc: Plc::new(),
            started: false,
            play_after_last_pop: None,
            last_shift: 0,
            ssrc: 0,
            ts_ref: 0,
            ext_ref: 0,
            play: 0,
            consumed: i64::MIN,
            newest_end: 0,
            inserted: 0,
            estimator: DelayEstimator::new(),
            levels: LevelWindow::new(),
            target: 0,
            last_adjust: None,
            excess_since: None,
            pending_discontinuity: None,
            stats: JitterStats::default(),
        };
        buffer.target = buffer.start_delay();
        Ok(buffer)
    }

    /// Current counters.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        stats.current_delay_ms = self.levels.level().map_or(0, ms_u32);
        stats.target_delay_ms = ms_u32(self.target);
        stats.jitter_ms = ms_u32(self.estimator.jitter());
        stats
    }

    /// Adds one decoded packet (RTP timestamp, SSRC, marker bit, PCM) received at `now`.
    pub fn push(
        &mut self,
        now: Instant,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        pcm: &[i16],
    ) -> PushOutcome {
        if pcm.is_empty()
            || !pcm.len().is_multiple_of(BLOCK)
            || pcm.len() > MAX_PACKET_BLOCKS * BLOCK
        {
            self.stats.unsupported += 1;
            return PushOutcome::Unsupported;
        }
        let resynced = match self.follow_timeline(now, timestamp, ssrc, pcm.len()) {
            Timeline::Continues => false,
            Timeline::Reset => {
                self.stats.resyncs += 1;
                true
            }
            Timeline::Unconfirmed => {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
        };
        let start = self.unwrap_timestamp(timestamp);
        let end = start + pcm.len() as i64;

        // Nothing queued and either a silent outage or a new talkspurt (marker): place this
        // packet at the target delay. The timeline moves during silence, so it is inaudible;
        // this is where the delay follows the target without dropping or stretching audio.
        let idle = self.plc.is_silent() || marker;
        if idle && start >= self.late_bound() && self.next_present_from(self.play).is_none() {
            let anchored = align_down(start - self.target);
            if anchored != self.play {
                self.play = anchored;
                self.inserted = 0;
                self.levels.reset();
            }
        }

        let slack = start - self.play;
        let late_bound = self.late_bound();
        if end <= late_bound {
            // Late packets still teach the estimator that the delay is too small.
            self.record_arrival(now, start, slack);
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        let capacity = (self.slots.len() * BLOCK) as i64;
        if end - self.play > capacity {
            self.drop_oldest(end - capacity);
        }
        let (mut written, mut duplicate) = (0, 0);
        for (pos, chunk) in (start..).step_by(BLOCK).zip(pcm.chunks_exact(BLOCK)) {
            if pos < late_bound {
                continue;
            }
            let block = pos.div_euclid(BLOCK_I64);
            let Some(slot) = self.slot_mut(block) else {
                continue;
            };
            if slot.present && slot.block == block {
                duplicate += 1;
                continue;
            }
            slot.block = block;
            slot.present = true;
            slot.pcm.copy_from_slice(chunk);
            written += 1;
        }
        self.newest_end = self.newest_end.max(end);
        if written == 0 && duplicate > 0 {
            // Not fed to the estimator: a retransmitted copy says nothing about the path.
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.record_arrival(now, start, slack);
        if resynced {
            PushOutcome::Resynced
        } else {
            PushOutcome::Accepted
        }
    }

    /// Produces the next 20 ms into `out`. Call exactly once per 20 ms.
    pub fn pop(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let kind = if !self.started {
            out.fill(0);
            FrameKind::Silence
        } else {
            self.track_excess(now);
            if self.should_accelerate(now) {
                self.accelerate(now, out)
            } else if self.should_expand(now) {
                self.expand(now, out)
            } else {
                self.play_frame(out)
            }
        };
        // How far this frame jumped on the sender's timeline beyond its own 20 ms: a dropped
        // frame, an expansion, skipped loss, a re-anchored talkspurt, a resync.
        self.last_shift = match (self.started, self.play_after_last_pop) {
            (true, Some(prev)) => self.play - prev - FRAME_I64,
            _ => 0,
        };
        self.play_after_last_pop = self.started.then_some(self.play);
        self.levels.on_pop();
        match kind {
            FrameKind::Normal => self.stats.frames_normal += 1,
            FrameKind::Concealed => self.stats.frames_concealed += 1,
            FrameKind::Silence => self.stats.frames_silence += 1,
        }
        kind
    }

    /// Samples the last popped frame skipped (> 0) or repeated (< 0) of the sender's
    /// timeline, beyond the 20 ms it played: +160 for a frame dropped to shrink the delay,
    /// −160 for one inserted to grow it. Anything echoed by the far end (our own audio) now
    /// reaches us that much sooner (> 0) or later: the echo canceller moves its delay line by
    /// it instead of re-learning the echo path. 0 before the first packet.
    pub fn last_pop_shift(&self) -> i64 {
        self.last_shift
    }

    fn start_delay(&self) -> i64 {
        align_up(i64::from(self.config.start_delay_ms) * SAMPLES_PER_MS)
    }

    /// Handles a new SSRC or a timestamp discontinuity.
    ///
    /// A forward jump is taken at once (the usual cause is a talkspurt after a long
    /// silence). A backward jump or an unaligned timestamp could also be one stray packet
    /// (a very late straggler, a corrupt header), which must not flush good audio: it is
    /// taken only when the next packet continues from it, like RFC 3550 A.1 does for
    /// sequence jumps.
    fn follow_timeline(
        &mut self,
        now: Instant,
        timestamp: u32,
        ssrc: u32,
        samples: usize,
    ) -> Timeline {
        if !self.started || ssrc != self.ssrc {
            let was_started = self.started;
            self.restart(timestamp, ssrc);
            return if was_started {
                Timeline::Reset
            } else {
                Timeline::Continues
            };
        }
        let ext = self.ext_of(timestamp);
        let aligned = ext.rem_euclid(BLOCK_I64) == 0;
        let jump = ext - self.newest_end;
        if aligned && (-JUMP_LIMIT..=JUMP_LIMIT).contains(&jump) {
            self.pending_discontinuity = None;
            return Timeline::Continues;
        }
        if aligned && jump > JUMP_LIMIT {
            self.pending_discontinuity = None;
            self.jump_timeline(now, ext);
            return Timeline::Reset;
        }
        if self.pending_discontinuity != Some(timestamp) {
            self.pending_discontinuity = Some(timestamp.wrapping_add(samples as u32));
            return Timeline::Unconfirmed;
        }
        self.pending_discontinuity = None;
        if aligned {
            self.jump_timeline(now, ext);
        } else {
            self.restart(timestamp, ssrc);
        }
        Timeline::Reset
    }

    /// Starts a new timeline at this packet (first packet, SSRC change, unaligned).
    fn restart(&mut self, timestamp: u32, ssrc: u32) {
        self.flush();
        self.started = true;
        self.ssrc = ssrc;
        self.ts_ref = timestamp;
        self.ext_ref = 0;
        self.play = -self.start_delay();
        self.consumed = i64::MIN;
        self.newest_end = 0;
        self.estimator.clear();
        self.target = self.start_delay();
        self.last_adjust = None;
    }

    /// Same stream, but its timestamps jumped (silence suppression with a long pause, or
    /// the sender restarted its clock): the network is unchanged, so the delay estimate is
    /// kept, rebased onto the new timestamps.
    fn jump_timeline(&mut self, now: Instant, ext: i64) {
        self.flush();
        self.estimator.rebase(now, ext);
        self.play = align_down(ext - self.target);
        self.consumed = self.play;
        self.newest_end = ext;
    }

    fn flush(&mut self) {
        for slot in &mut self.slots {
            slot.present = false;
        }
        self.inserted = 0;
        self.levels.reset();
        self.excess_since = None;
    }

    /// Extended value of `timestamp` (nearest to the newest seen), without updating.
    fn ext_of(&self, timestamp: u32) -> i64 {
        self.ext_ref + i64::from(timestamp.wrapping_sub(self.ts_ref) as i32)
    }

    fn unwrap_timestamp(&mut self, timestamp: u32) -> i64 {
        let ext = self.ext_of(timestamp);
        if ext > self.ext_ref {
            self.ts_ref = timestamp;
            self.ext_ref = ext;
        }
        ext
    }

    fn late_bound(&self) -> i64 {
        self.play.max(self.consumed)
    }

    fn slot_index(&self, block: i64) -> usize {
        block.rem_euclid(self.slots.len() as i64) as usize
    }

    fn slot_mut(&mut self, block: i64) -> Option<&mut Slot> {
        let index = self.slot_index(block);
        self.slots.get_mut(index)
    }

    fn is_present(&self, pos: i64) -> bool {
        let block = pos.div_euclid(BLOCK_I64);
        self.slots
            .get(self.slot_index(block))
            .is_some_and(|s| s.present && s.block == block)
    }

    /// First buffered position at or after `pos`.
    fn next_present_from(&self, pos: i64) -> Option<i64> {
        (pos..self.newest_end)
            .step_by(BLOCK)
            .take(self.slots.len())
            .find(|&p| self.is_present(p))
    }

    /// Copies the block at `pos` into `out` and frees its slot.
    fn take_block(&mut self, pos: i64, out: &mut [i16]) -> bool {
        if !self.is_present(pos) {
            return false;
        }
        let Some(slot) = self.slot_mut(pos.div_euclid(BLOCK_I64)) else {
            return false;
        };
        slot.present = false;
        for (o, &s) in out.iter_mut().zip(slot.pcm.iter()) {
            *o = s;
        }
        true
    }

    fn advance_play(&mut self, samples: i64) {
        self.play += samples;
        self.consumed = self.consumed.max(self.play);
    }

    /// Makes room for a packet ending at `new_play + capacity` by discarding the oldest audio.
    fn drop_oldest(&mut self, new_play: i64) {
        let new_play = align_up(new_play);
        let mut pos = self.play;
        while pos < new_play {
            if self.is_present(pos) {
                if let Some(slot) = self.slot_mut(pos.div_euclid(BLOCK_I64)) {
                    slot.present = false;
                }
                self.stats.overflow_drops += 1;
            }
            pos += BLOCK_I64;
        }
        self.play = new_play;
        self.consumed = self.consumed.max(new_play);
        self.inserted = 0;
        self.levels.reset();
    }

    /// Feeds the estimator and the level window with one arrived packet whose timestamp
    /// was `slack` samples ahead of the playout position.
    fn record_arrival(&mut self, now: Instant, start: i64, slack: i64) {
        let behind_fastest = self.estimator.record(now, start);
        self.levels.note(slack + behind_fastest);
        self.target = if self.estimator.len() < MIN_DELAY_HISTORY {
            self.start_delay()
        } else {
            let min_delay = i64::from(self.config.min_delay_ms) * SAMPLES_PER_MS;
            let max_delay = i64::from(self.config.max_delay_ms) * SAMPLES_PER_MS;
            align_up(self.estimator.jitter().clamp(min_delay, max_delay))
        };
    }

    fn adjust_allowed(&self, now: Instant, interval: Duration) -> bool {
        self.estimator.len() >= MIN_DELAY_HISTORY
            && self.levels.settled()
            && !self.plc.is_concealing()
            && self
                .last_adjust
                .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    fn track_excess(&mut self, now: Instant) {
        let excess = self.levels.level().map(|level| level - self.target);
        if excess.is_some_and(|e| e >= FRAME_I64) {
            self.excess_since.get_or_insert(now);
        } else {
            self.excess_since = None;
        }
    }

    fn should_accelerate(&self, now: Instant) -> bool {
        let (Some(level), Some(since)) = (self.levels.level(), self.excess_since) else {
            return false;
        };
        if !self.adjust_allowed(now, SHRINK_INTERVAL) {
            return false;
        }
        let mut two_frames = (self.play..self.play + 2 * FRAME_I64).step_by(BLOCK);
        if !two_frames.clone().all(|p| self.is_present(p)) {
            return false;
        }
        // Prefer dropping quiet audio; drop voiced audio only for a large excess or after
        // waiting a while for a pause.
        two_frames.all(|p| self.block_is_quiet(p))
            || level - self.target > 2 * FRAME_I64
            || now.saturating_duration_since(since) >= SHRINK_PATIENCE
    }

    fn block_is_quiet(&self, pos: i64) -> bool {
        let block = pos.div_euclid(BLOCK_I64);
        self.slots
            .get(self.slot_index(block))
            .is_some_and(|s| mean_square(&s.pcm) < LOW_ENERGY_MEAN_SQUARE)
    }

    /// Plays the next frame and drops the one after it, cross-fading the two over the
    /// whole frame so that the output ends where the dropped frame ended.
    fn accelerate(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let mut dropped = [0i16; FRAME_SAMPLES];
        for (half, chunk) in out.chunks_exact_mut(BLOCK).enumerate() {
            self.take_block(self.play + (half * BLOCK) as i64, chunk);
        }
        for (half, chunk) in dropped.chunks_exact_mut(BLOCK).enumerate() {
            self.take_block(self.play + FRAME_I64 + (half * BLOCK) as i64, chunk);
        }
        for (i, (o, &d)) in out.iter_mut().zip(dropped.iter()).enumerate() {
            // Ends exactly on the dropped frame's last sample, so the next frame follows on.
            let w = (i + 1) as f32 / FRAME_SAMPLES as f32;
            let mixed = f32::from(*o) * (1.0 - w) + f32::from(d) * w;
            *o = mixed.round().clamp(-32768.0, 32767.0) as i16;
        }
        self.plc.good(out);
        self.advance_play(2 * FRAME_I64);
        self.inserted = 0;
        self.levels.shift(-FRAME_I64);
        self.last_adjust = Some(now);
        self.excess_since = None;
        self.stats.accelerated += 1;
        FrameKind::Normal
    }

    fn should_expand(&self, now: Instant) -> bool {
        let Some(level) = self.levels.level() else {
            return false;
        };
        let deficit = self.target - level;
        deficit > FRAME_I64 && self.is_present(self.play) && self.adjust_allowed(now, GROW_INTERVAL)
    }

    /// Inserts one frame of concealment before the next real frame.
    fn expand(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let audible = self.plc.conceal(out);
        self.levels.shift(FRAME_I64);
        self.last_adjust = Some(now);
        self.stats.expanded += 1;
        if audible {
            FrameKind::Concealed
        } else {
            FrameKind::Silence
        }
    }

    fn play_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let mut kinds = [BlockKind::Silence; FRAME_SAMPLES / BLOCK];
        let mut underrun = false;
        for (kind, chunk) in kinds.iter_mut().zip(out.chunks_exact_mut(BLOCK)) {
            let (block_kind, new_underrun) = self.play_block(chunk);
            *kind = block_kind;
            underrun |= new_underrun;
        }
        if underrun {
            self.stats.expanded += 1;
        }
        if kinds.contains(&BlockKind::Concealed) {
            FrameKind::Concealed
        } else if kinds.contains(&BlockKind::Normal) {
            FrameKind::Normal
        } else {
            FrameKind::Silence
        }
    }

    /// Outputs the block at `play`; returns its kind and whether an underrun began.
    fn play_block(&mut self, out: &mut [i16]) -> (BlockKind, bool) {
        let next = self.next_present_from(self.play);
        if let Some(next) = next {
            // Concealment already output without advancing covers (part of) the gap.
            let skip = (next - self.play).min(self.inserted);
            self.advance_play(skip);
            self.inserted -= skip;
        }
        if self.take_block(self.play, out) {
            self.plc.good(out);
            self.advance_play(BLOCK_I64);
            self.inserted = 0;
            return (BlockKind::Normal, false);
        }
        let audible = self.plc.conceal(out);
        let kind = if audible {
            BlockKind::Concealed
        } else {
            BlockKind::Silence
        };
        if next.is_some() {
            // Lost block with audio after it: conceal in its place.
            self.advance_play(BLOCK_I64);
            (kind, false)
        } else {
            // Nothing buffered: wait for it (the delay grows). Count each underrun once.
            let new_underrun = self.inserted == 0;
            self.inserted += BLOCK_I64;
            (kind, new_underrun)
        }
    }
}

fn align_down(samples: i64) -> i64 {
    samples.div_euclid(BLOCK_I64) * BLOCK_I64
}

fn align_up(samples: i64) -> i64 {
    align_down(samples + BLOCK_I64 - 1)
}

fn ms_u32(samples: i64) -> u32 {
    u32::try_from((samples / SAMPLES_PER_MS).max(0)).unwrap_or(u32::MAX)
}

fn mean_square(samples: &[i16]) -> f32 {
    let sum: f32 = samples.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
    sum / samples.len().max(1) as f32
}

#[cfg(test)]
mod tests;
