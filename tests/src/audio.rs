//! Test audio: 8 kHz mono 16-bit WAV files, read/written with `hound`, generated with
//! `espeak-ng` + `sox` at test time (nothing binary is committed besides the gateway's prompts).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The only format the peer and the gateway exchange: G.711 narrowband.
pub const SAMPLE_RATE: u32 = 8000;

/// Default caller utterance: about 2.5 s of speech at 170 words per minute.
pub const CALLER_TEXT: &str = "Excuse me, I need help with my invoice";

/// Reads an 8 kHz mono 16-bit WAV; anything else is an error naming what is wrong.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(format!(
            "{}: need 8000 Hz mono 16-bit PCM, got {} Hz, {} channel(s), {} bit {:?}",
            path.display(),
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample,
            spec.sample_format
        ));
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes samples as an 8 kHz mono 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(path, spec).map_err(|e| format!("{}: {e}", path.display()))?;
    for &s in samples {
        writer
            .write_sample(s)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    writer
        .finalize()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs an external audio tool (espeak-ng, sox); its stderr on failure.
pub fn run_tool(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot run {:?}: {e} (run scripts/install-test-deps.sh)",
            cmd.get_program()
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Speaks `text` with espeak-ng and converts it to 8 kHz mono s16 with the leading and trailing
/// silence trimmed, so the file's length is the speech's length.
pub fn make_speech_wav(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let raw = dir.join(format!("{name}.espeak.wav"));
    let out = dir.join(format!("{name}.wav"));
    run_tool(
        Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "170", "-w"])
            .arg(&raw)
            .arg(text),
    )?;
    // silence 1 0.02 0.5% trims the start; reverse + again trims the end.
    run_tool(
        Command::new("sox")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-b", "16"])
            .arg(&out)
            .args([
                "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%",
                "reverse",
            ]),
    )?;
    Ok(out)
}

/// `input` preceded by `before_s` and followed by `after_s` seconds of digital silence
/// (for baresip's aufile source, which hangs up when the file ends).
pub fn pad_wav(input: &Path, output: &Path, before_s: f64, after_s: f64) -> Result<(), String> {
    run_tool(Command::new("sox").arg(input).arg(output).args([
        "pad",
        &format!("{before_s}"),
        &format!("{after_s}"),
    ]))
}

/// `seconds` of digital silence as an 8 kHz mono s16 WAV.
pub fn make_silence_wav(path: &Path, seconds: f64) -> Result<(), String> {
    let samples = vec![0i16; (seconds * f64::from(SAMPLE_RATE)) as usize];
    write_wav(path, &samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bargein-audio-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn wav_round_trip_and_format_check() {
        let dir = tmp("rt");
        let path = dir.join("a.wav");
        write_wav(&path, &[1, -2, 3]).unwrap();
        assert_eq!(read_wav(&path).unwrap(), vec![1, -2, 3]);
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let stereo = dir.join("b.wav");
        let mut w = hound::WavWriter::create(&stereo, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        assert!(read_wav(&stereo).unwrap_err().contains("need 8000 Hz mono"));
        std::fs::write(dir.join("c.wav"), b"RIFF junk").unwrap();
        assert!(read_wav(&dir.join("c.wav")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn silence_has_the_requested_length() {
        let dir = tmp("sil");
        let path = dir.join("s.wav");
        make_silence_wav(&path, 0.5).unwrap();
        let s = read_wav(&path).unwrap();
        assert_eq!(s.len(), 4000);
        assert!(s.iter().all(|&x| x == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
