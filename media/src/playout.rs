//! Outbound playout: turns queued agent audio into exactly one frame per ptime (sans-IO).
//!
//! The shell owns the clock and the socket. It calls [`Playout::poll_frame`] until it returns
//! `None`, sends every frame it got, then sleeps until [`Playout::next_deadline`]. Deadlines
//! are absolute (`start + n·ptime`), so a late wake-up never shifts later frames (no drift),
//! and RTP timestamps come from the frame counter, never from the wall clock.
//!
//! A frame goes out every ptime even when nothing plays (silence), because a far end that sees
//! gaps runs its packet-loss concealment and its jitter buffer drifts. Truncation (barge-in)
//! just switches the source to silence: queued interruptible audio is dropped and reported with
//! the exact number of samples that were actually sent.
//!
//! Internal format: 8 kHz mono i16.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples per millisecond at the internal rate (8 kHz).
pub const SAMPLES_PER_MS: u32 = 8;

/// Lateness above which missed frames are skipped instead of sent back to back. A burst of
/// more than ~5 frames would overflow or reset a typical far-end jitter buffer, while a
/// timestamp gap is handled as ordinary loss.
pub const STALL_SKIP_THRESHOLD: Duration = Duration::from_millis(100);

/// Bounds accepted by [`PlayoutConfig::validate`].
pub const MIN_PTIME_MS: u32 = 10;
pub const MAX_PTIME_MS: u32 = 60;
/// Largest accepted `max_queued_ms` (10 minutes; 9.6 MB of audio per call).
pub const MAX_QUEUE_LIMIT_MS: u32 = 600_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// Frame duration: 10..=60, a multiple of 10.
    pub ptime_ms: u32,
    /// Bound on audio held (queued and not yet sent); [`Playout::enqueue`] refuses beyond it.
    pub max_queued_ms: u32,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        PlayoutConfig {
            ptime_ms: 20,
            // Bots often push a whole TTS answer faster than real time; holding a minute lets
            // a truncation drop all of it here instead of in some buffer we cannot clear.
            max_queued_ms: 60_000,
        }
    }
}

impl PlayoutConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_PTIME_MS..=MAX_PTIME_MS).contains(&self.ptime_ms)
            || !self.ptime_ms.is_multiple_of(10)
        {
            return Err(format!(
                "playout ptime_ms = {}: must be a multiple of 10 in {MIN_PTIME_MS}..={MAX_PTIME_MS}",
                self.ptime_ms
            ));
        }
        if self.max_queued_ms < self.ptime_ms || self.max_queued_ms > MAX_QUEUE_LIMIT_MS {
            return Err(format!(
                "playout max_queued_ms = {}: must be in {}..={MAX_QUEUE_LIMIT_MS}",
                self.max_queued_ms, self.ptime_ms
            ));
        }
        Ok(())
    }
}

/// A piece of agent audio. Consecutive chunks are contiguous audio: a frame that a chunk
/// only partly fills is completed with the next chunk's samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub playback_id: String,
    /// Reported as [`PlayoutEvent::MarkReached`] once the chunk's last sample has been sent.
    /// A chunk with no samples and a mark is a pure mark (Twilio-style).
    pub mark: Option<String>,
    /// `false`: survives [`Playout::truncate`] (e.g. a compliance disclosure).
    pub interruptible: bool,
    /// 8 kHz mono.
    pub samples: Vec<i16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlayoutError {
    #[error("playout queue full: the chunk would exceed max_queued_ms")]
    Full,
}

/// What the shell needs to send one frame (the samples are in the caller's `out` buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Sample counter of the frame's first sample: RTP timestamp = base + this.
    pub timestamp_samples: u64,
    /// First frame of a talk spurt (after silence, or after skipped frames).
    pub marker: bool,
    /// Carries agent audio (false: silence).
    pub voiced: bool,
    pub deadline: Instant,
    /// How long after its deadline the frame was produced.
    pub lateness: Duration,
}

/// Events are per chunk. Millisecond counts are samples actually sent / 8, rounded down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// The chunk's first sample was sent.
    Started { playback_id: String },
    /// Every sample of the chunk carrying this mark was sent.
    MarkReached { playback_id: String, mark: String },
    /// The chunk was sent completely.
    Finished { playback_id: String, played_ms: u64 },
    /// The chunk was dropped by a truncation: one event per dropped chunk, including chunks
    /// that never started (`played_ms` 0). A dropped chunk's mark is not reported as reached.
    Truncated {
        playback_id: String,
        played_ms: u64,
        total_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayoutStats {
    /// Frames produced by `poll_frame` (voiced + silence).
    pub frames_sent: u64,
    pub voiced_frames: u64,
    pub silence_frames: u64,
    /// Frames produced half a ptime or more after their deadline.
    pub late_frames: u64,
    /// Largest lateness seen at a poll, measured from the oldest due deadline.
    pub max_lateness: Duration,
    /// Frames never produced because the shell stalled (timestamp advanced anyway).
    pub skipped_frames: u64,
}

#[derive(Debug)]
struct QueuedChunk {
    chunk: Chunk,
    /// Samples of this chunk already sent.
    played: usize,
}

impl QueuedChunk {
    fn remaining(&self) -> usize {
        self.chunk.samples.len().saturating_sub(self.played)
    }
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 / u64::from(SAMPLES_PER_MS)
}

#[derive(Debug)]
pub struct Playout {
    start: Instant,
    ptime: Duration,
    frame_samples: usize,
    max_queued_samples: usize,
    /// Index of the next frame to produce; its deadline is `start + next_frame·ptime`.
    next_frame: u64,
    queue: VecDeque<QueuedChunk>,
    /// Unsent samples over the whole queue (kept so the bound check is O(1)).
    queued_samples: usize,
    events: VecDeque<PlayoutEvent>,
    paused: bool,
    last_frame_voiced: bool,
    stats: PlayoutStats,
}

impl Playout {
    /// `start` is the deadline of frame 0. An invalid config (see [`PlayoutConfig::validate`])
    /// is clamped into range rather than rejected, so a zero ptime can never spin the shell.
    pub fn new(cfg: PlayoutConfig, start: Instant) -> Self {
        let ptime_ms = (cfg.ptime_ms.clamp(MIN_PTIME_MS, MAX_PTIME_MS) / 10) * 10;
        let max_queued_ms = cfg.max_queued_ms.clamp(ptime_ms, MAX_QUEUE_LIMIT_MS);
        Playout {
            start,
            ptime: Duration::from_millis(u64::from(ptime_ms)),
            frame_samples: (ptime_ms * SAMPLES_PER_MS) as usize,
            max_queued_samples: (max_queued_ms * SAMPLES_PER_MS) as usize,
            next_frame: 0,
            queue: VecDeque::new(),
            queued_samples: 0,
            events: VecDeque::new(),
            paused: false,
            last_frame_voiced: false,
            stats: PlayoutStats::default(),
        }
    }

    /// Samples per frame (`out` of [`Playout::poll_frame`] should be this long).
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    pub fn ptime(&self) -> Duration {
        self.ptime
    }

    /// Audio queued and not yet sent, in ms.
    pub fn queued_ms(&self) -> u64 {
        samples_to_ms(self.queued_samples)
    }

    /// Appends audio after everything queued. Refused as a whole if it would push the unsent
    /// audio beyond `max_queued_ms` (the caller keeps the chunk's ownership semantics simple:
    /// nothing of a refused chunk is queued).
    pub fn enqueue(&mut self, chunk: Chunk) -> Result<(), PlayoutError> {
        if chunk.samples.is_empty() && chunk.mark.is_none() {
            return Ok(()); // nothing to play and nothing to report
        }
        let after = self.queued_samples.saturating_add(chunk.samples.len());
        if after > self.max_queued_samples {
            return Err(PlayoutError::Full);
        }
        self.queued_samples = after;
        self.queue.push_back(QueuedChunk { chunk, played: 0 });
        Ok(())
    }

    /// Deadline of the next frame: `start + n·ptime`.
    pub fn next_deadline(&self) -> Instant {
        self.deadline_of(self.next_frame)
    }

    fn deadline_of(&self, frame: u64) -> Instant {
        // u32 nanoseconds per frame times u64 frames: saturates only after ~10^10 years.
        let offset_ns = (self.ptime.as_nanos() as u64).saturating_mul(frame);
        self.start + Duration::from_nanos(offset_ns)
    }

    /// Produces the frame whose deadline is due (`<= now`) into `out`, or `None` if no frame
    /// is due yet. Call repeatedly until `None`: a slightly late shell gets the missed frames
    /// back to back; a shell more than [`STALL_SKIP_THRESHOLD`] late gets only the newest due
    /// frame and the timestamp jumps over the skipped ones. Queued audio is not lost on a skip,
    /// it resumes where it stopped. If `out` is not `frame_samples()` long, only the common
    /// prefix is written (the timestamp still advances by a full frame).
    pub fn poll_frame(&mut self, now: Instant, out: &mut [i16]) -> Option<FrameInfo> {
        let oldest_due = self.next_deadline();
        let first_lateness = now.checked_duration_since(oldest_due)?;
        self.stats.max_lateness = self.stats.max_lateness.max(first_lateness);

        let mut skipped_now = false;
        if first_lateness > STALL_SKIP_THRESHOLD {
            let newest_due = (now.duration_since(self.start).as_nanos() / self.ptime.as_nanos())
                .min(u128::from(u64::MAX)) as u64;
            let skipped = newest_due.saturating_sub(self.next_frame);
            if skipped > 0 {
                self.stats.skipped_frames += skipped;
                self.next_frame = newest_due;
                skipped_now = true;
            }
        }

        let frame = self.next_frame;
        let deadline = self.deadline_of(frame);
        let lateness = now.saturating_duration_since(deadline);
        self.next_frame += 1;

        let voiced = self.fill_frame(out);
        // RFC 3550: the marker flags the start of a talk spurt; after skipped frames it also
        // tells the far end's jitter buffer to resynchronise instead of waiting for the gap.
        let marker = voiced && (!self.last_frame_voiced || skipped_now);
        self.last_frame_voiced = voiced;

        self.stats.frames_sent += 1;
        if voiced {
            self.stats.voiced_frames += 1;
        } else {
            self.stats.silence_frames += 1;
        }
        if lateness >= self.ptime / 2 {
            self.stats.late_frames += 1;
        }

        Some(FrameInfo {
            timestamp_samples: frame.saturating_mul(self.frame_samples as u64),
            marker,
            voiced,
            deadline,
            lateness,
        })
    }

    /// Writes one frame of queued audio (or silence) into `out`; true if any agent audio went in.
    fn fill_frame(&mut self, out: &mut [i16]) -> bool {
        let frame_len = out.len().min(self.frame_samples);
        let (frame, rest) = out.split_at_mut(frame_len);
        rest.fill(0);
        if self.paused {
            frame.fill(0);
            return false;
        }
        let mut filled = 0;
        while filled < frame_len {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            if front.played == 0 && !front.chunk.samples.is_empty() {
                self.events.push_back(PlayoutEvent::Started {
                    playback_id: front.chunk.playback_id.clone(),
                });
            }
            let source = front.chunk.samples.get(front.played..).unwrap_or(&[]);
            let target = frame.get_mut(filled..).unwrap_or(&mut []);
            let taken = source.len().min(target.len());
            for (t, s) in target.iter_mut().zip(source) {
                *t = *s;
            }
            front.played += taken;
            filled += taken;
            self.queued_samples = self.queued_samples.saturating_sub(taken);
            if front.remaining() == 0 {
                self.complete_front();
            }
        }
        if let Some(tail) = frame.get_mut(filled..) {
            tail.fill(0);
        }
        // Marks queued right behind audio that just ended count as reached now, not a frame later.
        while self.queue.front().is_some_and(|c| c.remaining() == 0) {
            self.complete_front();
        }
        filled > 0
    }

    /// Pops the fully sent front chunk and reports it.
    fn complete_front(&mut self) {
        let Some(done) = self.queue.pop_front() else {
            return;
        };
        let Chunk {
            playback_id, mark, ..
        } = done.chunk;
        let has_audio = done.played > 0;
        match (has_audio, mark) {
            (true, Some(mark)) => {
                self.events.push_back(PlayoutEvent::Finished {
                    playback_id: playback_id.clone(),
                    played_ms: samples_to_ms(done.played),
                });
                self.events
                    .push_back(PlayoutEvent::MarkReached { playback_id, mark });
            }
            (true, None) => self.events.push_back(PlayoutEvent::Finished {
                playback_id,
                played_ms: samples_to_ms(done.played),
            }),
            (false, Some(mark)) => self
                .events
                .push_back(PlayoutEvent::MarkReached { playback_id, mark }),
            (false, None) => {}
        }
    }

    /// Barge-in: drops every queued interruptible chunk (including the one playing) now, so the
    /// next frame carries the following non-interruptible audio or silence. Non-interruptible
    /// chunks keep their place. Emits one `Truncated` per dropped chunk.
    pub fn truncate(&mut self) {
        self.drop_chunks(|c| c.interruptible);
    }

    /// Drops everything queued, interruptible or not (e.g. the bot itself asked to clear).
    pub fn clear(&mut self) {
        self.drop_chunks(|_| true);
    }

    fn drop_chunks(&mut self, should_drop: impl Fn(&Chunk) -> bool) {
        let events = &mut self.events;
        let queued_samples = &mut self.queued_samples;
        self.queue.retain_mut(|queued| {
            if !should_drop(&queued.chunk) {
                return true;
            }
            *queued_samples = queued_samples.saturating_sub(queued.remaining());
            events.push_back(PlayoutEvent::Truncated {
                playback_id: std::mem::take(&mut queued.chunk.playback_id),
                played_ms: samples_to_ms(queued.played),
                total_ms: samples_to_ms(queued.chunk.samples.len()),
            });
            false
        });
    }

    /// Sends silence from the next frame on, keeping the queue and the position in it.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Continues exactly at the sample where [`Playout::pause`] stopped.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn poll_event(&mut self) -> Option<PlayoutEvent> {
        self.events.pop_front()
    }

    /// The next frame will carry agent audio (queued audio and not paused).
    pub fn is_playing(&self) -> bool {
        !self.paused && self.queued_samples > 0
    }

    /// The next frame will carry agent audio from an interruptible chunk.
    pub fn is_playing_interruptible(&self) -> bool {
        !self.paused
            && self
                .queue
                .iter()
                .find(|c| c.remaining() > 0)
                .is_some_and(|c| c.chunk.interruptible)
    }

    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
