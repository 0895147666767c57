//! RIFF/WAVE reading and writing for 16-bit PCM, without a crate.
//!
//! Accepts plain PCM (format tag 1) and WAVE_FORMAT_EXTENSIBLE with the PCM sub-format, skips
//! chunks it does not need (LIST, fact, cue, ...), and refuses everything else with an error
//! that names what it found. Prompts are converted to the internal format (8 kHz mono).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::resample::decimate_16k_to_8k;

/// Sample rates [`load_prompt`] accepts (16 kHz is decimated to 8 kHz).
pub const PROMPT_RATES_HZ: [u32; 2] = [8_000, 16_000];

const FORMAT_PCM: u16 = 0x0001;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// KSDATAFORMAT_SUBTYPE_PCM after its first two bytes (which hold the format tag, 1).
const PCM_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];
const RIFF_HEADER_LEN: usize = 12;
const CHUNK_HEADER_LEN: usize = 8;
const PCM_FMT_LEN: usize = 16;
const EXTENSIBLE_FMT_LEN: usize = 40;

/// Decoded audio. `samples` are interleaved when `channels > 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("not a WAV file: expected \"RIFF\"....\"WAVE\", found {found}")]
    NotWav { found: String },
    #[error("truncated WAV file: {0}")]
    Truncated(String),
    #[error("WAV file has no {0:?} chunk")]
    MissingChunk(&'static str),
    #[error("unsupported WAV encoding: {encoding}, {bits_per_sample} bits per sample; only 16-bit PCM is accepted")]
    UnsupportedEncoding {
        encoding: Encoding,
        bits_per_sample: u16,
    },
    #[error("malformed WAV file: {0}")]
    Malformed(String),
    #[error("unsupported prompt format: {sample_rate} Hz, {channels} channel(s); accepted: mono at 8000 or 16000 Hz")]
    UnsupportedLayout { sample_rate: u32, channels: u16 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The encoding a `fmt ` chunk declares, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Pcm,
    /// WAVE_FORMAT_EXTENSIBLE; the value is the sub-format's tag.
    Extensible(u16),
    Other(u16),
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn name(tag: u16) -> &'static str {
            match tag {
                0x0001 => "PCM",
                0x0003 => "IEEE float",
                0x0006 => "A-law",
                0x0007 => "mu-law",
                0x0011 => "IMA ADPCM",
                0x0055 => "MP3",
                _ => "unknown",
            }
        }
        match *self {
            Encoding::Pcm => f.write_str("PCM"),
            Encoding::Extensible(sub) => {
                write!(f, "EXTENSIBLE with {} sub-format (0x{sub:04x})", name(sub))
            }
            Encoding::Other(tag) => write!(f, "{} (format tag 0x{tag:04x})", name(tag)),
        }
    }
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let b = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Printable form of a 4-byte tag for error messages ("RIFF", or escaped bytes).
fn describe_tag(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

#[derive(Clone, Copy, Debug)]
struct Format {
    channels: u16,
    sample_rate: u32,
}

fn parse_fmt(body: &[u8]) -> Result<Format, WavError> {
    let short = || {
        WavError::Truncated(format!(
            "\"fmt \" chunk is {} bytes, needs at least {PCM_FMT_LEN}",
            body.len()
        ))
    };
    let tag = u16_at(body, 0).ok_or_else(short)?;
    let channels = u16_at(body, 2).ok_or_else(short)?;
    let sample_rate = u32_at(body, 4).ok_or_else(short)?;
    let block_align = u16_at(body, 12).ok_or_else(short)?;
    let bits_per_sample = u16_at(body, 14).ok_or_else(short)?;

    let encoding = match tag {
        FORMAT_PCM => Encoding::Pcm,
        FORMAT_EXTENSIBLE => {
            let guid = body.get(24..EXTENSIBLE_FMT_LEN).ok_or_else(|| {
                WavError::Truncated(format!(
                    "EXTENSIBLE \"fmt \" chunk is {} bytes, needs {EXTENSIBLE_FMT_LEN}",
                    body.len()
                ))
            })?;
            let sub_tag = u16_at(guid, 0).unwrap_or(0);
            let is_pcm = sub_tag == FORMAT_PCM && guid.get(2..) == Some(&PCM_GUID_TAIL[..]);
            if is_pcm {
                Encoding::Pcm
            } else {
                Encoding::Extensible(sub_tag)
            }
        }
        other => Encoding::Other(other),
    };
    if encoding != Encoding::Pcm || bits_per_sample != 16 {
        let encoding = if tag == FORMAT_EXTENSIBLE && encoding == Encoding::Pcm {
            Encoding::Extensible(FORMAT_PCM)
        } else {
            encoding
        };
        return Err(WavError::UnsupportedEncoding {
            encoding,
            bits_per_sample,
        });
    }
    if channels == 0 {
        return Err(WavError::Malformed("\"fmt \" declares 0 channels".into()));
    }
    if sample_rate == 0 {
        return Err(WavError::Malformed(
            "\"fmt \" declares a sample rate of 0 Hz".into(),
        ));
    }
    if u32::from(block_align) != u32::from(channels) * 2 {
        return Err(WavError::Malformed(format!(
            "block align {block_align} does not match {channels} channel(s) of 16-bit samples"
        )));
    }
    Ok(Format {
        channels,
        sample_rate,
    })
}

/// Parses a RIFF/WAVE file held in memory (16-bit PCM only).
pub fn read_wav(bytes: &[u8]) -> Result<Wav, WavError> {
    let header_truncated = || {
        WavError::Truncated(format!(
            "{} bytes, a RIFF header needs {RIFF_HEADER_LEN}",
            bytes.len()
        ))
    };
    let riff = bytes.get(..4).unwrap_or(bytes);
    if !b"RIFF".starts_with(riff) {
        return Err(WavError::NotWav {
            found: describe_tag(riff),
        });
    }
    let wave = bytes.get(8..RIFF_HEADER_LEN).ok_or_else(header_truncated)?;
    if wave != b"WAVE" {
        return Err(WavError::NotWav {
            found: format!("\"RIFF\"....{}", describe_tag(wave)),
        });
    }

    let mut format: Option<Format> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos = RIFF_HEADER_LEN;
    while pos < bytes.len() {
        let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(bytes, pos + 4)) else {
            return Err(WavError::Truncated(format!(
                "chunk header at offset {pos} is cut short ({} bytes left)",
                bytes.len() - pos
            )));
        };
        let body_start = pos + CHUNK_HEADER_LEN;
        let body_end = body_start.saturating_add(size as usize);
        let Some(body) = bytes.get(body_start..body_end) else {
            return Err(WavError::Truncated(format!(
                "{} chunk declares {size} bytes, only {} present",
                describe_tag(id),
                bytes.len() - body_start
            )));
        };
        match id {
            b"fmt " => format = Some(parse_fmt(body)?),
            b"data" => data = Some(body),
            _ => {} // LIST, fact, cue, bext, ...: not needed to play the audio
        }
        if format.is_some() && data.is_some() {
            break; // whatever follows (metadata, trailing junk) cannot change the audio
        }
        // Chunks are padded to an even length.
        pos = body_end.saturating_add(size as usize % 2);
    }

    let format = format.ok_or(WavError::MissingChunk("fmt "))?;
    let data = data.ok_or(WavError::MissingChunk("data"))?;
    let frame_bytes = usize::from(format.channels) * 2;
    if data.len() % frame_bytes != 0 {
        return Err(WavError::Truncated(format!(
            "\"data\" chunk holds {} bytes, not a whole number of {frame_bytes}-byte frames",
            data.len()
        )));
    }
    let samples = data
        .chunks_exact(2)
        .map(|pair| match pair {
            [low, high] => i16::from_le_bytes([*low, *high]),
            _ => 0, // chunks_exact(2) yields pairs only
        })
        .collect();
    Ok(Wav {
        sample_rate: format.sample_rate,
        channels: format.channels,
        samples,
    })
}

/// A complete 16-bit PCM WAV file (44-byte header) for interleaved `samples`.
pub fn encode_wav(sample_rate: u32, channels: u16, samples: &[i16]) -> Result<Vec<u8>, WavError> {
    if channels == 0 || sample_rate == 0 {
        return Err(WavError::Malformed(format!(
            "cannot write {sample_rate} Hz with {channels} channel(s)"
        )));
    }
    if !samples.len().is_multiple_of(usize::from(channels)) {
        return Err(WavError::Malformed(format!(
            "{} samples are not a whole number of {channels}-channel frames",
            samples.len()
        )));
    }
    let too_large = || WavError::Malformed("audio exceeds the 4 GiB limit of a WAV file".into());
    let data_len = u32::try_from(samples.len())
        .ok()
        .and_then(|n| n.checked_mul(2))
        .ok_or_else(too_large)?;
    let riff_len = data_len.checked_add(36).ok_or_else(too_large)?;
    let block_align = channels.checked_mul(2).ok_or_else(too_large)?;
    let byte_rate = sample_rate
        .checked_mul(u32::from(block_align))
        .ok_or_else(|| WavError::Malformed(format!("sample rate {sample_rate} is too high")))?;

    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(PCM_FMT_LEN as u32).to_le_bytes());
    out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&byte_rate.to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    Ok(out)
}

/// RIFF chunk id of the caller-timeline jumps a call recording carries (see
/// [`encode_wav_with_timeline_shifts`]); other WAV readers skip it.
pub const TIMELINE_SHIFTS_CHUNK: &[u8; 4] = b"bgts";

/// A call recording: [`encode_wav`] plus a `bgts` chunk (before `data`) listing where the
/// jitter buffer jumped the caller's timeline: (20 ms frame index, samples skipped > 0 or
/// repeated < 0), each as two little-endian 32-bit integers. The replay feeds them to the
/// echo canceller exactly as the live call did.
pub fn encode_wav_with_timeline_shifts(
    sample_rate: u32,
    channels: u16,
    samples: &[i16],
    shifts: &[(u32, i32)],
) -> Result<Vec<u8>, WavError> {
    let plain = encode_wav(sample_rate, channels, samples)?;
    if shifts.is_empty() {
        return Ok(plain);
    }
    let body_len = shifts.len() * 8;
    let chunk_len = u32::try_from(body_len)
        .map_err(|_| WavError::Malformed(format!("{} timeline shifts", shifts.len())))?;
    let mut out = Vec::with_capacity(plain.len() + 8 + body_len);
    // RIFF header + fmt chunk, then ours, then data.
    let (head, data) = plain.split_at(RIFF_HEADER_LEN + CHUNK_HEADER_LEN + PCM_FMT_LEN);
    out.extend_from_slice(head);
    out.extend_from_slice(TIMELINE_SHIFTS_CHUNK);
    out.extend_from_slice(&chunk_len.to_le_bytes());
    for (frame, shift) in shifts {
        out.extend_from_slice(&frame.to_le_bytes());
        out.extend_from_slice(&shift.to_le_bytes());
    }
    out.extend_from_slice(data);
    let riff_len = u32::try_from(out.len() - 8)
        .map_err(|_| WavError::Malformed("recording too large".into()))?;
    if let Some(slot) = out.get_mut(4..8) {
        slot.copy_from_slice(&riff_len.to_le_bytes());
    }
    Ok(out)
}

/// The timeline shifts of a call recording (empty if it has none; a malformed chunk is an
/// error naming it).
pub fn read_timeline_shifts(bytes: &[u8]) -> Result<Vec<(u32, i32)>, WavError> {
    let mut pos = RIFF_HEADER_LEN;
    while let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(bytes, pos + 4)) {
        let body_start = pos + CHUNK_HEADER_LEN;
        let body_end = body_start.saturating_add(size as usize);
        if id == TIMELINE_SHIFTS_CHUNK {
            let body = bytes.get(body_start..body_end).ok_or_else(|| {
                WavError::Truncated(format!("\"bgts\" chunk declares {size} bytes"))
            })?;
            if body.len() % 8 != 0 {
                return Err(WavError::Malformed(format!(
                    "\"bgts\" chunk of {} bytes is not a list of 8-byte entries",
                    body.len()
                )));
            }
            return Ok(body
                .chunks_exact(8)
                .map(|e| {
                    let word = |i: usize| {
                        let mut b = [0u8; 4];
                        if let Some(src) = e.get(i..i + 4) {
                            b.copy_from_slice(src);
                        }
                        b
                    };
                    (u32::from_le_bytes(word(0)), i32::from_le_bytes(word(4)))
                })
                .collect());
        }
        pos = body_end.saturating_add(size as usize % 2);
    }
    Ok(Vec::new())
}

/// Writes a 16-bit PCM WAV file.
pub fn write_wav(
    path: &Path,
    sample_rate: u32,
    channels: u16,
    samples: &[i16],
) -> Result<(), WavError> {
    let bytes = encode_wav(sample_rate, channels, samples)?;
    std::fs::write(path, bytes).map_err(|source| WavError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a prompt as 8 kHz mono. Accepts mono 16-bit PCM at 8 kHz, or at 16 kHz (low-pass
/// filtered and decimated); anything else is refused with what was found.
pub fn load_prompt(path: &Path) -> Result<Vec<i16>, WavError> {
    let bytes = std::fs::read(path).map_err(|source| WavError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    prompt_from_wav(read_wav(&bytes)?)
}

/// [`load_prompt`] for a WAV already parsed.
pub fn prompt_from_wav(wav: Wav) -> Result<Vec<i16>, WavError> {
    match (wav.sample_rate, wav.channels) {
        (8_000, 1) => Ok(wav.samples),
        (16_000, 1) => Ok(decimate_16k_to_8k(&wav.samples)),
        (sample_rate, channels) => Err(WavError::UnsupportedLayout {
            sample_rate,
            channels,
        }),
    }
}

#[cfg(test)]
mod tests;
