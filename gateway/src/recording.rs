//! Per-call recordings for tuning: a stereo WAV with the caller on the left (as the barge-in
//! pipeline heard it: after the jitter buffer) and the agent on the right (exactly what was
//! sent in the same 20 ms tick). That is the replay tool's input, so an operator can run a
//! real call from a noisy site through any configuration offline and see why the bot did or
//! did not stop: `bargein-gateway replay --stereo CALL.wav --plot out.png`.
//!
//! Off by default (`calls.record_dir = ""`). The samples stay in memory during the call (32 kB
//! per second) and are written once, when the call ends, on a blocking thread: no file I/O on
//! the call task. A call longer than [`MAX_RECORDED_S`] keeps its first part only.

use std::path::{Path, PathBuf};

use media::wav::encode_wav_with_timeline_shifts;
use tracing::{info, warn};

/// Longest stretch of a call that is kept (≈ 29 MB).
pub const MAX_RECORDED_S: usize = 15 * 60;
const RATE: u32 = 8_000;
const MAX_FRAMES: usize = MAX_RECORDED_S * RATE as usize;

/// The recording of one call in progress.
pub struct CallRecorder {
    path: PathBuf,
    /// Interleaved (caller, agent) frames.
    samples: Vec<i16>,
    /// (20 ms frame index, samples) where the jitter buffer jumped the caller's timeline:
    /// written into the file so the replay's echo canceller follows them as the live one did.
    shifts: Vec<(u32, i32)>,
    truncated: bool,
}

impl CallRecorder {
    /// A recorder writing to `dir/<call id>.wav` (None when `dir` is empty: recording off).
    pub fn new(dir: &Path, call_id: &str) -> Option<CallRecorder> {
        if dir.as_os_str().is_empty() {
            return None;
        }
        Some(CallRecorder {
            path: dir.join(format!("{}.wav", file_stem(call_id))),
            // Two minutes up front; longer calls grow the buffer a few times.
            samples: Vec::with_capacity(2 * 120 * RATE as usize),
            shifts: Vec::new(),
            truncated: false,
        })
    }

    /// One tick: the caller audio the pipeline got, the agent audio sent with it and the
    /// jitter buffer's timeline jump in front of it. A side shorter than the other (never in
    /// a running call) is padded with silence.
    pub fn push(&mut self, caller: &[i16], agent: &[i16], caller_shift: i64) {
        let frames = caller.len().max(agent.len());
        if self.samples.len() / 2 + frames > MAX_FRAMES {
            self.truncated = true;
            return;
        }
        if caller_shift != 0 {
            let frame = u32::try_from(self.samples.len() / 2 / 160).unwrap_or(u32::MAX);
            let shift = i32::try_from(caller_shift).unwrap_or(i32::MAX);
            self.shifts.push((frame, shift));
        }
        for i in 0..frames {
            self.samples.push(caller.get(i).copied().unwrap_or(0));
            self.samples.push(agent.get(i).copied().unwrap_or(0));
        }
    }

    /// Writes the file now (blocking I/O).
    #[cfg(test)]
    fn write(&mut self) -> Result<PathBuf, String> {
        let samples = std::mem::take(&mut self.samples);
        let shifts = std::mem::take(&mut self.shifts);
        write_recording(&self.path, &samples, &shifts, self.truncated)?;
        Ok(self.path.clone())
    }
}

/// The call ended (whichever way its task returned): the recording is written on tokio's
/// blocking pool when there is a runtime, else right here; the outcome is logged.
impl Drop for CallRecorder {
    fn drop(&mut self) {
        let (path, samples, shifts, truncated) = (
            self.path.clone(),
            std::mem::take(&mut self.samples),
            std::mem::take(&mut self.shifts),
            self.truncated,
        );
        if samples.is_empty() {
            return;
        }
        let job = move || match write_recording(&path, &samples, &shifts, truncated) {
            Ok(()) => info!(path = %path.display(), "call recorded"),
            Err(e) => warn!("call recording not written: {e}"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(job)),
            Err(_) => job(),
        }
    }
}

fn write_recording(
    path: &Path,
    samples: &[i16],
    shifts: &[(u32, i32)],
    truncated: bool,
) -> Result<(), String> {
    let bytes = encode_wav_with_timeline_shifts(RATE, 2, samples, shifts)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if truncated {
        warn!(
            path = %path.display(),
            "recording kept the first {MAX_RECORDED_S} s of the call only"
        );
    }
    Ok(())
}

/// A Call-ID made safe as a file name: anything but ASCII letters, digits, `-`, `_` and `.`
/// becomes `_`, and a leading dot is replaced so no hidden or relative name results.
pub fn file_stem(call_id: &str) -> String {
    let mut stem: String = call_id
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        stem.insert(0, '_');
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_become_safe_file_names() {
        assert_eq!(file_stem("43-21915@127.0.0.1"), "43-21915_127.0.0.1");
        assert_eq!(file_stem("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(file_stem("a/b\\c d"), "a_b_c_d");
        assert_eq!(file_stem(""), "_");
        assert_eq!(file_stem("x".repeat(500).as_str()).len(), 120);
    }

    #[test]
    fn empty_dir_means_off() {
        assert!(CallRecorder::new(Path::new(""), "x").is_none());
    }

    #[test]
    fn writes_interleaved_caller_left_agent_right() {
        let dir = std::env::temp_dir().join(format!("rec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rec = CallRecorder::new(&dir, "c@h").unwrap();
        rec.push(&[1, 2, 3], &[10, 20, 30], 0);
        rec.push(&[4, 5], &[40], 160);
        let path = rec.write().unwrap();
        drop(rec);
        assert_eq!(path, dir.join("c_h.wav"));
        let wav = media::wav::read_wav(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((wav.sample_rate, wav.channels), (8_000, 2));
        assert_eq!(wav.samples, vec![1, 10, 2, 20, 3, 30, 4, 40, 5, 0]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            media::wav::read_timeline_shifts(&bytes).unwrap(),
            vec![(0, 160)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stops_growing_at_the_cap() {
        let mut rec = CallRecorder::new(Path::new("/nonexistent"), "c").unwrap();
        let frame = [7i16; 160];
        for _ in 0..(MAX_FRAMES / 160) {
            rec.push(&frame, &frame, 0);
        }
        assert_eq!(rec.samples.len(), 2 * MAX_FRAMES);
        assert!(!rec.truncated);
        rec.push(&frame, &frame, 0);
        assert_eq!(rec.samples.len(), 2 * MAX_FRAMES);
        assert!(rec.truncated);
        assert!(
            rec.write().is_err(),
            "unwritable directory is an error, not a panic"
        );
        rec.push(&frame, &frame, 0);
        drop(rec); // logs, does not panic
    }
}
