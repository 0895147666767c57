//! Loading a recorded call for the replay: one stereo WAV (channel 0 = caller / inbound,
//! channel 1 = agent / outbound) or two mono WAVs, 16-bit PCM at 8 kHz or 16 kHz (16 kHz is
//! low-pass filtered and decimated exactly as prompts are). Everything else is refused with
//! a message saying what was found and what is accepted.

use std::path::{Path, PathBuf};

use media::resample::decimate_16k_to_8k;
use media::wav::{read_timeline_shifts, read_wav, Wav};

/// Rate the pipeline runs at.
pub const RATE_HZ: u32 = 8_000;
/// Channel of a stereo recording that holds the caller (what the gateway received).
pub const CALLER_CHANNEL: usize = 0;
/// Channel of a stereo recording that holds the agent (what the gateway sent).
pub const AGENT_CHANNEL: usize = 1;

/// Where the audio comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stereo(PathBuf),
    Pair { caller: PathBuf, agent: PathBuf },
}

impl Source {
    /// Short name for titles and reports.
    pub fn name(&self) -> String {
        let file = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        };
        match self {
            Source::Stereo(p) => file(p),
            Source::Pair { caller, agent } => format!("{} + {}", file(caller), file(agent)),
        }
    }
}

/// Both sides of a call at 8 kHz, equally long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallAudio {
    pub caller: Vec<i16>,
    pub agent: Vec<i16>,
    /// (20 ms frame index, samples) where the live call's jitter buffer jumped the caller's
    /// timeline (a gateway recording's `bgts` chunk; empty otherwise).
    pub caller_shifts: Vec<(usize, i64)>,
}

impl CallAudio {
    pub fn duration_s(&self) -> f64 {
        self.caller.len() as f64 / f64::from(RATE_HZ)
    }
}

/// Reads the call; errors are ready to print.
pub fn load(source: &Source) -> Result<CallAudio, String> {
    match source {
        Source::Stereo(path) => {
            let (wav, shifts) = read_file(path)?;
            if wav.channels != 2 {
                let hint = if wav.channels == 1 {
                    " (for two mono files use --caller CALLER.wav --agent AGENT.wav)"
                } else {
                    ""
                };
                return Err(format!(
                    "{}: {} channel(s); --stereo expects 2 (channel 0 = caller, channel 1 = agent){hint}",
                    path.display(),
                    wav.channels
                ));
            }
            let rate = wav.sample_rate;
            let caller = channel(&wav.samples, CALLER_CHANNEL);
            let agent = channel(&wav.samples, AGENT_CHANNEL);
            let caller = to_8k(path, rate, caller)?;
            let agent = to_8k(path, rate, agent)?;
            let caller_shifts = if rate == RATE_HZ {
                shifts
                    .into_iter()
                    .map(|(frame, shift)| (frame as usize, i64::from(shift)))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(CallAudio {
                caller,
                agent,
                caller_shifts,
            })
        }
        Source::Pair { caller, agent } => {
            let caller = load_mono(caller, "--caller")?;
            let agent = load_mono(agent, "--agent")?;
            Ok(equal_length(caller, agent))
        }
    }
}

/// The WAV and the timeline shifts of a gateway recording (none in other files).
fn read_file(path: &Path) -> Result<(Wav, Vec<(u32, i32)>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let wav = read_wav(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if wav.samples.is_empty() {
        return Err(format!("{}: the WAV file holds no audio", path.display()));
    }
    let shifts = read_timeline_shifts(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((wav, shifts))
}

fn load_mono(path: &Path, flag: &str) -> Result<Vec<i16>, String> {
    let (wav, _) = read_file(path)?;
    if wav.channels != 1 {
        return Err(format!(
            "{}: {} channels; {flag} expects a mono file (for one stereo file use --stereo)",
            path.display(),
            wav.channels
        ));
    }
    to_8k(path, wav.sample_rate, wav.samples)
}

fn channel(interleaved: &[i16], index: usize) -> Vec<i16> {
    interleaved
        .chunks_exact(2)
        .filter_map(|frame| frame.get(index).copied())
        .collect()
}

fn to_8k(path: &Path, rate: u32, samples: Vec<i16>) -> Result<Vec<i16>, String> {
    match rate {
        8_000 => Ok(samples),
        16_000 => Ok(decimate_16k_to_8k(&samples)),
        other => Err(format!(
            "{}: sample rate {other} Hz is not supported; accepted: 8000 or 16000 Hz \
             (convert first, e.g. `sox IN.wav -r 8000 -b 16 OUT.wav`)",
            path.display()
        )),
    }
}

/// Two separately recorded sides may differ in length: the shorter is padded with silence,
/// so the replay covers everything either side holds.
fn equal_length(mut caller: Vec<i16>, mut agent: Vec<i16>) -> CallAudio {
    let len = caller.len().max(agent.len());
    caller.resize(len, 0);
    agent.resize(len, 0);
    CallAudio {
        caller,
        agent,
        caller_shifts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::wav::encode_wav;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("replay-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn stereo_is_split_caller_first() {
        let samples: Vec<i16> = (0..200).flat_map(|i| [i, -i]).collect();
        let path = temp("st.wav", &encode_wav(8_000, 2, &samples).unwrap());
        let call = load(&Source::Stereo(path)).unwrap();
        assert_eq!(call.caller.len(), 200);
        assert_eq!(call.caller[5], 5);
        assert_eq!(call.agent[5], -5);
        assert!(call.caller_shifts.is_empty());
    }

    #[test]
    fn a_gateway_recording_brings_its_jitter_buffer_jumps() {
        let samples: Vec<i16> = (0..1600).flat_map(|i| [i as i16, 0]).collect();
        let bytes =
            media::wav::encode_wav_with_timeline_shifts(8_000, 2, &samples, &[(3, 160), (7, -160)])
                .unwrap();
        let call = load(&Source::Stereo(temp("shifts.wav", &bytes))).unwrap();
        assert_eq!(call.caller_shifts, vec![(3, 160), (7, -160)]);
        assert_eq!(call.caller.len(), 1600);
    }

    #[test]
    fn sixteen_khz_is_decimated_and_pairs_are_padded() {
        let caller = temp("c16.wav", &encode_wav(16_000, 1, &[1000; 800]).unwrap());
        let agent = temp("a8.wav", &encode_wav(8_000, 1, &[7; 100]).unwrap());
        let call = load(&Source::Pair { caller, agent }).unwrap();
        assert_eq!(call.caller.len(), 400);
        assert_eq!(call.agent.len(), 400);
        assert_eq!(call.agent[99], 7);
        assert_eq!(call.agent[100], 0);
        // DC passes the decimator's low-pass unchanged (away from the edges).
        assert!((i32::from(call.caller[200]) - 1000).abs() <= 2);
    }

    #[test]
    fn bad_inputs_are_refused_with_a_reason() {
        let three = temp("three.wav", &encode_wav(8_000, 3, &[0; 30]).unwrap());
        let err = load(&Source::Stereo(three)).unwrap_err();
        assert!(err.contains("3 channel"), "{err}");
        let mono = temp("mono.wav", &encode_wav(8_000, 1, &[0; 30]).unwrap());
        let err = load(&Source::Stereo(mono.clone())).unwrap_err();
        assert!(err.contains("--caller"), "{err}");
        let cd = temp("cd.wav", &encode_wav(44_100, 2, &[0; 30]).unwrap());
        let err = load(&Source::Stereo(cd)).unwrap_err();
        assert!(err.contains("44100 Hz"), "{err}");
        let empty = temp("empty.wav", &encode_wav(8_000, 2, &[]).unwrap());
        let err = load(&Source::Stereo(empty)).unwrap_err();
        assert!(err.contains("no audio"), "{err}");
        let junk = temp("junk.wav", b"this is not audio at all");
        let err = load(&Source::Stereo(junk)).unwrap_err();
        assert!(err.contains("not a WAV"), "{err}");
        let err = load(&Source::Stereo("/nonexistent/call.wav".into())).unwrap_err();
        assert!(err.contains("/nonexistent/call.wav"), "{err}");
        let stereo = temp("st2.wav", &encode_wav(8_000, 2, &[0; 30]).unwrap());
        let err = load(&Source::Pair {
            caller: stereo,
            agent: mono,
        })
        .unwrap_err();
        assert!(err.contains("--caller expects a mono"), "{err}");
    }
}
