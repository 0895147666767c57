//! Speech sources for the corpus: human-recorded prompts (Debian `asterisk-core-sounds-en-wav`,
//! Allison Smith, 8 kHz) and espeak-ng voices, or synthetic speech-like clips for unit tests.
//!
//! Every clip is trimmed to its first and last sample above a small amplitude threshold, so
//! the span where the corpus places a clip is the ground truth for "the caller is speaking".

use std::collections::HashMap;
use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::rng::Rng;
use crate::audio::read_wav;

/// Where Debian installs the prompts.
pub const ALLISON_DIR: &str = "/usr/share/asterisk/sounds/en_US_f_Allison";
/// Caller utterances last 0.6–3 s.
pub const CALLER_MIN_MS: f64 = 600.0;
pub const CALLER_MAX_MS: f64 = 3000.0;
/// A caller clip may not pause longer than this inside (a longer pause would legitimately end
/// the caller's turn, so the clip would not be one utterance any more).
pub const MAX_INNER_PAUSE_MS: f64 = 300.0;

/// Short things callers say over a bot.
const CALLER_PHRASES: &[&str] = &[
    "Wait, wait.",
    "No, stop please.",
    "Hold on a second.",
    "Excuse me.",
    "I want to talk to a person.",
    "Operator.",
    "That's not what I asked.",
    "Sorry, can you repeat that?",
    "Yes, that's right.",
    "No, the other account.",
    "Hello? Are you there?",
    "Cancel my order.",
    "I already did that.",
    "Representative, please.",
    "Actually, never mind.",
    "Can I pay my bill?",
];
/// espeak-ng voices (+variants) that ship with Debian's espeak-ng-data.
const ESPEAK_VOICES: &[&str] = &[
    "en-us",
    "en-us+f2",
    "en-us+m3",
    "en-gb",
    "en-gb+f3",
    "en-gb-scotland",
    "en-gb-x-rp+m1",
    "en-029",
    "en-us-nyc+f4",
    "en-gb-x-gbclan",
];

/// A trimmed mono 8 kHz clip (16-bit scale) and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub source: String,
    pub samples: Vec<f64>,
}

impl Clip {
    pub fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 / 8.0
    }
}

/// Trims leading and trailing samples below 1 % of the peak (and below 64, i.e. −54 dBFS).
pub fn trim(samples: &[f64]) -> Vec<f64> {
    let peak = samples.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let threshold = (0.01 * peak).max(64.0);
    let first = samples.iter().position(|v| v.abs() >= threshold);
    let last = samples.iter().rposition(|v| v.abs() >= threshold);
    match (first, last) {
        (Some(a), Some(b)) => samples.get(a..=b).map(<[f64]>::to_vec).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Longest run of 10 ms blocks whose RMS is 40 dB below the clip's loudest block, in ms.
pub fn longest_inner_pause_ms(samples: &[f64]) -> f64 {
    let blocks: Vec<f64> = samples
        .chunks(80)
        .map(|b| (b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt())
        .collect();
    let loudest = blocks.iter().copied().fold(0.0, f64::max);
    let quiet = loudest * 0.01;
    let (mut run, mut longest) = (0usize, 0usize);
    for b in blocks {
        if b < quiet {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest as f64 * 10.0
}

fn usable_caller_clip(clip: &Clip) -> bool {
    (CALLER_MIN_MS..=CALLER_MAX_MS).contains(&clip.duration_ms())
        && longest_inner_pause_ms(&clip.samples) <= MAX_INNER_PAUSE_MS
}

/// Where clips come from.
#[derive(Debug)]
enum Origin {
    /// Allison prompts (sorted paths) + espeak-ng, rendered into `work_dir`.
    System {
        allison: Vec<PathBuf>,
        work_dir: PathBuf,
    },
    /// Speech-like tone bursts, no external tools (unit tests).
    Synthetic,
}

/// Loads and caches clips; every choice is made with the caller's `Rng`.
#[derive(Debug)]
pub struct SourceBank {
    origin: Origin,
    cache: HashMap<String, Clip>,
}

impl SourceBank {
    /// The real sources. Fails when the Allison prompts are missing (run
    /// scripts/install-test-deps.sh); espeak-ng and sox are checked when first used.
    pub fn system(work_dir: &Path) -> Result<SourceBank, String> {
        let dir = Path::new(ALLISON_DIR);
        let entries = std::fs::read_dir(dir).map_err(|e| {
            format!(
                "{ALLISON_DIR}: {e} (install asterisk-core-sounds-en-wav: scripts/install-test-deps.sh)"
            )
        })?;
        let mut allison: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav") && p.is_file())
            .collect();
        allison.sort();
        if allison.len() < 20 {
            return Err(format!("{ALLISON_DIR}: only {} WAV files", allison.len()));
        }
        std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
        Ok(SourceBank {
            origin: Origin::System {
                allison,
                work_dir: work_dir.to_path_buf(),
            },
            cache: HashMap::new(),
        })
    }

    /// Synthetic speech-like clips only (for tests that must not depend on installed packages).
    pub fn synthetic() -> SourceBank {
        SourceBank {
            origin: Origin::Synthetic,
            cache: HashMap::new(),
        }
    }

    /// One caller utterance (0.6–3 s, no inner pause over 300 ms): an Allison prompt or an
    /// espeak-ng phrase, half and half.
    pub fn caller_clip(&mut self, rng: &mut Rng) -> Result<Clip, String> {
        let synthetic = matches!(self.origin, Origin::Synthetic);
        for _ in 0..200 {
            let clip = if synthetic {
                synthetic_clip(rng)
            } else if rng.chance(0.5) {
                self.espeak_clip(rng)?
            } else {
                match self.allison_clip(rng, 4.5)? {
                    Some(c) => c,
                    None => continue,
                }
            };
            if usable_caller_clip(&clip) {
                return Ok(clip);
            }
        }
        Err("no caller clip of 0.6–3 s without long pauses after 200 tries".to_string())
    }

    /// `n` clips for one babble talker (any length up to 6 s).
    pub fn babble_clips(&mut self, rng: &mut Rng, n: usize) -> Result<Vec<Clip>, String> {
        let mut out = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n && tries < 50 * n.max(1) {
            tries += 1;
            let clip = if matches!(self.origin, Origin::Synthetic) {
                Some(synthetic_clip(rng))
            } else {
                self.allison_clip(rng, 6.0)?
            };
            if let Some(c) = clip.filter(|c| c.duration_ms() >= 300.0) {
                out.push(c);
            }
        }
        if out.len() < n {
            return Err(format!("found only {} of {n} babble clips", out.len()));
        }
        Ok(out)
    }

    /// A random Allison prompt no longer than `max_s` (judged from the file size first, so
    /// long prompts are never decoded); None when the pick is too long.
    fn allison_clip(&mut self, rng: &mut Rng, max_s: f64) -> Result<Option<Clip>, String> {
        let Origin::System { allison, .. } = &self.origin else {
            return Ok(None);
        };
        let Some(path) = rng.pick(allison).cloned() else {
            return Ok(None);
        };
        let bytes = std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        if bytes as f64 > max_s * 16000.0 + 44.0 {
            return Ok(None);
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = format!("allison:{name}");
        if let Some(c) = self.cache.get(&key) {
            return Ok(Some(c.clone()));
        }
        let samples: Vec<f64> = read_wav(&path)?.into_iter().map(f64::from).collect();
        let clip = Clip {
            source: key.clone(),
            samples: trim(&samples),
        };
        self.cache.insert(key, clip.clone());
        Ok(Some(clip))
    }

    fn espeak_clip(&mut self, rng: &mut Rng) -> Result<Clip, String> {
        let voice = *rng.pick(ESPEAK_VOICES).unwrap_or(&"en-us");
        let text = *rng.pick(CALLER_PHRASES).unwrap_or(&"Wait.");
        let speed = 140 + 10 * rng.below(6);
        let pitch = 30 + 5 * rng.below(9);
        let key = format!("espeak:{voice}:s{speed}:p{pitch}:{text}");
        if let Some(c) = self.cache.get(&key) {
            return Ok(c.clone());
        }
        let Origin::System { work_dir, .. } = &self.origin else {
            return Err("espeak clips need the system source bank".to_string());
        };
        let stem = format!("espeak-{:016x}", super::rng::derive_seed(0, &key));
        // The cache may be shared by concurrent runs: render under private names, then rename.
        let pid = std::process::id();
        let raw = work_dir.join(format!("{stem}.{pid}.raw.wav"));
        let tmp = work_dir.join(format!("{stem}.{pid}.tmp.wav"));
        let wav = work_dir.join(format!("{stem}.wav"));
        if !wav.is_file() {
            crate::audio::run_tool(
                Command::new("espeak-ng")
                    .args([
                        "-v",
                        voice,
                        "-s",
                        &speed.to_string(),
                        "-p",
                        &pitch.to_string(),
                    ])
                    .arg("-w")
                    .arg(&raw)
                    .arg(text),
            )?;
            // -D: no dither, -R: repeatable — the conversion must be byte-identical every run.
            crate::audio::run_tool(
                Command::new("sox")
                    .args(["-D", "-R"])
                    .arg(&raw)
                    .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
                    .arg(&tmp),
            )?;
            let _ = std::fs::remove_file(&raw);
            std::fs::rename(&tmp, &wav).map_err(|e| format!("{}: {e}", wav.display()))?;
        }
        let samples: Vec<f64> = read_wav(&wav)?.into_iter().map(f64::from).collect();
        let clip = Clip {
            source: key.clone(),
            samples: trim(&samples),
        };
        self.cache.insert(key, clip.clone());
        Ok(clip)
    }
}

/// Speech-like: 2–6 syllables of a harmonic tone with a gliding pitch, 120–300 ms each,
/// separated by 30–120 ms, under a raised-cosine envelope.
fn synthetic_clip(rng: &mut Rng) -> Clip {
    let syllables = 2 + rng.below(5);
    let f0 = rng.range(100.0, 240.0);
    let mut samples = Vec::new();
    for s in 0..syllables {
        let n = (rng.range(0.12, 0.3) * 8000.0) as usize;
        let glide = rng.range(-0.2, 0.2);
        for i in 0..n {
            let t = i as f64 / 8000.0;
            let f = f0 * (1.0 + glide * t);
            let env = 0.5 - 0.5 * (TAU * i as f64 / n as f64).cos();
            let v: f64 = (1..=8)
                .map(|k| (TAU * f * f64::from(k) * t).sin() / f64::from(k))
                .sum();
            samples.push(4000.0 * env * v);
        }
        if s + 1 < syllables {
            let gap = (rng.range(0.03, 0.12) * 8000.0) as usize;
            samples.extend(std::iter::repeat_n(0.0, gap));
        }
    }
    Clip {
        source: format!("synthetic:{syllables}syl:{f0:.0}Hz"),
        samples: trim(&samples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_cuts_quiet_ends_only() {
        let mut x = vec![0.0; 100];
        x.extend([5000.0, 20.0, 0.0, -3000.0]);
        x.extend(vec![10.0; 50]);
        assert_eq!(trim(&x), vec![5000.0, 20.0, 0.0, -3000.0]);
        assert!(trim(&[0.0; 10]).is_empty());
        assert!(trim(&[]).is_empty());
    }

    #[test]
    fn inner_pause_is_measured() {
        let mut x = vec![1000.0; 800];
        x.extend(vec![0.0; 8 * 350]);
        x.extend(vec![1000.0; 800]);
        let p = longest_inner_pause_ms(&x);
        assert!((340.0..=360.0).contains(&p), "{p}");
        assert_eq!(longest_inner_pause_ms(&[1000.0; 800]), 0.0);
    }

    #[test]
    fn synthetic_bank_gives_usable_deterministic_clips() {
        let mut bank = SourceBank::synthetic();
        let a = bank.caller_clip(&mut Rng::new(3)).unwrap();
        let b = SourceBank::synthetic()
            .caller_clip(&mut Rng::new(3))
            .unwrap();
        assert_eq!(a, b);
        assert!(usable_caller_clip(&a), "{} ms", a.duration_ms());
        let babble = bank.babble_clips(&mut Rng::new(4), 3).unwrap();
        assert_eq!(babble.len(), 3);
        assert!(bank.espeak_clip(&mut Rng::new(1)).is_err());
    }
}
