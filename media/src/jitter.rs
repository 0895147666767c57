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
//! **Delay.** The *delay* is the audio buffered after the frame being played is taken
//! (`newest received end − play`), tracked as its minimum over the last 0.5–1 s so packet
//! granularity does not read as excess. The *target* comes from a relative-delay estimate
//! (NetEq/Asterisk style): for the last 200 packets, `arrival − timestamp`; jitter is the
//! 95th percentile minus the minimum; target = clamp(max(min_delay, jitter)) rounded up to
//! 10 ms. Until 50 packets are seen the target is `start_delay_ms`.
//!
//! **Growing is fast**: when a block is due and nothing is buffered (underrun) the buffer
//! conceals *without advancing* `play` (an expansion: delay grows by that much at once). If
//! the missing block turns up later the expansion stays (late packets → more delay); if a
//! later block arrives instead, the missing ones are skipped up to the amount already
//! concealed, so pure loss does not grow the delay. In low-energy stretches an expansion is
//! also done proactively when the delay is more than a frame under target.
//!
//! **Shrinking is slow**: one 20 ms frame is dropped (cross-faded into the next) at most every
//! 500 ms, only when the delay is at least a frame above target, and only in low-energy
//! audio unless the excess exceeds two frames. This also absorbs clock skew: a fast sender
//! is trimmed by drops, a slow one is padded by expansions, so the buffer neither grows nor
//! drains without bound.
//!
//! **Resync**: on SSRC change, a timestamp jump of more than 1 s, or an unaligned timestamp,
//! the buffer restarts like a fresh stream (start delay, estimator cleared) while the
//! concealment fades the old audio out. A forward jump of more than 1 s on a marker packet
//! is a talkspurt after silence suppression: the new talkspurt is placed at the target delay
//! and the estimator is kept. After a silent outage with nothing buffered, the next packet
//! is likewise placed at the target delay.

use std::time::{Duration, Instant};

use crate::plc::Plc;

/// Samples per output frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;
const BLOCK: usize = 80;
const BLOCK_I64: i64 = BLOCK as i64;
const FRAME_I64: i64 = FRAME_SAMPLES as i64;
const SAMPLES_PER_MS: i64 = 8;
const SAMPLE_RATE: u128 = 8000;
/// Largest packet accepted (120 ms, the largest G.711 `maxptime` seen in practice).
const MAX_PACKET_BLOCKS: usize = 12;
/// Relative delays remembered for the jitter estimate.
const DELAY_HISTORY: usize = 200;
/// Packets needed before the estimate replaces the start delay.
const MIN_DELAY_HISTORY: usize = 50;
/// Timestamp discontinuity treated as a new stream (1 s).
const JUMP_LIMIT: i64 = 8000;
/// Minimum spacing before a frame is dropped (after any adjustment).
const SHRINK_INTERVAL: Duration = Duration::from_millis(500);
/// Minimum spacing before a frame is inserted: growing is fast.
const GROW_INTERVAL: Duration = Duration::from_millis(100);
/// How long an excess of one frame may wait for quiet audio before a frame is dropped
/// anyway.
const SHRINK_PATIENCE: Duration = Duration::from_secs(2);
/// Pops per level-minimum window (0.5 s).
const LEVEL_WINDOW_POPS: u32 = 25;
/// Mean square under which a frame is quiet enough to drop or stretch (≈ −41 dBFS).
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
    /// Buffered audio after the last pop (minimum over the last 0.5–1 s).
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
    /// proactive one-frame stretches in quiet audio.
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
    epoch: Option<Instant>,
    delays: [i64; DELAY_HISTORY],
    delay_count: usize,
    delay_next: usize,
    scratch: [i64; DELAY_HISTORY],
    jitter: i64,
    target: i64,
    level_min_current: i64,
    level_min_previous: i64,
    level_pops: u32,
    last_adjust: Option<Instant>,
    /// Since when the delay has been at least a frame above target.
    excess_since: Option<Instant>,
    last_output_quiet: bool,
    stats: JitterStats,
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
            ssrc: 0,
            ts_ref: 0,
            ext_ref: 0,
            play: 0,
            consumed: i64::MIN,
            newest_end: 0,
            inserted: 0,
            epoch: None,
            delays: [0; DELAY_HISTORY],
            delay_count: 0,
            delay_next: 0,
            scratch: [0; DELAY_HISTORY],
            jitter: 0,
            target: 0,
            level_min_current: i64::MAX,
            level_min_previous: i64::MAX,
            level_pops: 0,
            last_adjust: None,
            excess_since: None,
            last_output_quiet: true,
            stats: JitterStats::default(),
        };
        buffer.target = buffer.start_delay();
        Ok(buffer)
    }

    /// Current counters.
    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats;
        let level = self.level_min_current.min(self.level_min_previous);
        stats.current_delay_ms = if level == i64::MAX {
            0
        } else {
            ms_u32(level)
        };
        stats.target_delay_ms = ms_u32(self.target);
        stats.jitter_ms = ms_u32(self.jitter);
        stats
    }

    /// Adds one decoded packet received at `now`.
    pub fn push(
        &mut self,
        now: Instant,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        pcm: &[i16],
    ) -> PushOutcome {
        if pcm.is_empty() || pcm.len() % BLOCK != 0 || pcm.len() > MAX_PACKET_BLOCKS * BLOCK {
            self.stats.unsupported += 1;
            return PushOutcome::Unsupported;
        }
        let mut resynced = false;
        if !self.started || ssrc != self.ssrc {
            resynced = self.started;
            self.restart(timestamp, ssrc);
        } else {
            let ext = self.unwrap_timestamp(timestamp);
            let jump = ext - self.newest_end;
            let aligned = ext.rem_euclid(BLOCK_I64) == 0;
            if !aligned || jump.abs() > JUMP_LIMIT {
                if aligned && marker && jump > 0 {
                    self.start_talkspurt(ext);
                } else {
                    self.restart(timestamp, ssrc);
                }
                resynced = true;
            }
        }
        if resynced {
            self.stats.resyncs += 1;
        }
        let start = self.unwrap_timestamp(timestamp);
        let end = start + pcm.len() as i64;

        // After a silent outage with nothing queued, place this packet at the target delay
        // (what we output meanwhile was silence, so moving the timeline is inaudible).
        if self.plc.is_silent() && self.next_present_from(self.play).is_none() {
            if start >= self.late_bound() {
                self.play = align_down(start - self.target);
                self.inserted = 0;
            }
        }

        let late_bound = self.late_bound();
        if end <= late_bound {
            // Late packets still teach the estimator that the delay is too small.
            self.record_arrival(now, start);
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
        self.record_arrival(now, start);
        if resynced {
            PushOutcome::Resynced
        } else {
            PushOutcome::Accepted
        }
    }

    /// Produces the next 20 ms. Call exactly once per 20 ms.
    pub fn pop(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let kind = if !self.started {
            out.fill(0);
            FrameKind::Silence
        } else if self.should_accelerate(now) {
            self.accelerate(now, out)
        } else if self.should_expand(now) {
            self.expand(now, out)
        } else {
            self.play_frame(out)
        };
        self.last_output_quiet = mean_square(out) < LOW_ENERGY_MEAN_SQUARE;
        if self.started {
            self.track_level();
        }
        match kind {
            FrameKind::Normal => self.stats.frames_normal += 1,
            FrameKind::Concealed => self.stats.frames_concealed += 1,
            FrameKind::Silence => self.stats.frames_silence += 1,
        }
        kind
    }

    fn start_delay(&self) -> i64 {
        align_up(i64::from(self.config.start_delay_ms) * SAMPLES_PER_MS)
    }

    /// Starts a new timeline at this packet (first packet, SSRC change, discontinuity).
    fn restart(&mut self, timestamp: u32, ssrc: u32) {
        for slot in &mut self.slots {
            slot.present = false;
        }
        self.started = true;
        self.ssrc = ssrc;
        self.ts_ref = timestamp;
        self.ext_ref = 0;
        self.play = -self.start_delay();
        self.consumed = i64::MIN;
        self.newest_end = 0;
        self.inserted = 0;
        self.delay_count = 0;
        self.delay_next = 0;
        self.jitter = 0;
        self.target = self.start_delay();
        self.level_min_current = i64::MAX;
        self.level_min_previous = i64::MAX;
        self.level_pops = 0;
        self.last_adjust = None;
        self.excess_since = None;
    }

    /// A talkspurt far ahead after silence suppression: same stream, same network.
    fn start_talkspurt(&mut self, ext: i64) {
        for slot in &mut self.slots {
            slot.present = false;
        }
        self.play = align_down(ext - self.target);
        self.newest_end = ext;
        self.inserted = 0;
    }

    fn unwrap_timestamp(&mut self, timestamp: u32) -> i64 {
        let ext = self.ext_ref + i64::from(timestamp.wrapping_sub(self.ts_ref) as i32);
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
    }

    fn record_arrival(&mut self, now: Instant, ext: i64) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = (now.saturating_duration_since(epoch).as_nanos() * SAMPLE_RATE
            / 1_000_000_000) as i64;
        if let Some(slot) = self.delays.get_mut(self.delay_next) {
            *slot = arrival - ext;
        }
        self.delay_next = (self.delay_next + 1) % DELAY_HISTORY;
        self.delay_count = (self.delay_count + 1).min(DELAY_HISTORY);
        self.update_target();
    }

    fn update_target(&mut self) {
        let count = self.delay_count;
        let (Some(history), Some(scratch)) =
            (self.delays.get(..count), self.scratch.get_mut(..count))
        else {
            return;
        };
        scratch.copy_from_slice(history);
        let Some(&min) = scratch.iter().min() else {
            return;
        };
        let rank = (count * 95 / 100).min(count.saturating_sub(1));
        let (_, &mut p95, _) = scratch.select_nth_unstable(rank);
        self.jitter = p95 - min;
        self.target = if count < MIN_DELAY_HISTORY {
            self.start_delay()
        } else {
            let min_delay = i64::from(self.config.min_delay_ms) * SAMPLES_PER_MS;
            let max_delay = i64::from(self.config.max_delay_ms) * SAMPLES_PER_MS;
            align_up(self.jitter.clamp(min_delay, max_delay))
        };
    }

    fn adjust_allowed(&self, now: Instant, interval: Duration) -> bool {
        self.delay_count >= MIN_DELAY_HISTORY
            && self.level_pops >= LEVEL_WINDOW_POPS
            && !self.plc.is_concealing()
            && self
                .last_adjust
                .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    fn level(&self) -> i64 {
        self.level_min_current.min(self.level_min_previous)
    }

    fn track_level(&mut self) {
        let level = (self.newest_end - self.play).max(0);
        self.level_min_current = self.level_min_current.min(level);
        self.level_pops = self.level_pops.saturating_add(1);
        if self.level_pops % LEVEL_WINDOW_POPS == 0 {
            self.level_min_previous = self.level_min_current;
            self.level_min_current = i64::MAX;
        }
    }

    /// Shifts the remembered level minima after a deliberate change of the delay.
    fn shift_level(&mut self, delta: i64) {
        for level in [&mut self.level_min_current, &mut self.level_min_previous] {
            if *level != i64::MAX {
                *level = (*level + delta).max(0);
            }
        }
    }

    fn should_accelerate(&mut self, now: Instant) -> bool {
        let excess = self.level() - self.target;
        if excess < FRAME_I64 || self.level_pops < LEVEL_WINDOW_POPS {
            self.excess_since = None;
            return false;
        }
        let excess_since = *self.excess_since.get_or_insert(now);
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
            || excess > 2 * FRAME_I64
            || now.saturating_duration_since(excess_since) >= SHRINK_PATIENCE
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
            let w = (i + 1) as f32 / (FRAME_SAMPLES + 1) as f32;
            let mixed = f32::from(*o) * (1.0 - w) + f32::from(d) * w;
            *o = mixed.round().clamp(-32768.0, 32767.0) as i16;
        }
        self.plc.good(out);
        self.advance_play(2 * FRAME_I64);
        self.inserted = 0;
        self.shift_level(-FRAME_I64);
        self.last_adjust = Some(now);
        self.excess_since = None;
        self.stats.accelerated += 1;
        FrameKind::Normal
    }

    fn should_expand(&self, now: Instant) -> bool {
        let deficit = self.target - self.level();
        deficit > FRAME_I64
            && (self.last_output_quiet || deficit > 2 * FRAME_I64)
            && self.is_present(self.play)
            && self.adjust_allowed(now, GROW_INTERVAL)
    }

    /// Inserts one frame of concealment before the next real frame.
    fn expand(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> FrameKind {
        let audible = self.plc.conceal(out);
        self.shift_level(FRAME_I64);
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
            let (block_kind, expanded) = self.play_block(chunk);
            *kind = block_kind;
            underrun |= expanded;
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
        let next = if self.is_present(self.play) {
            Some(self.play)
        } else {
            self.next_present_from(self.play)
        };
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
