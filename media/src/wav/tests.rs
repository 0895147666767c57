use super::*;

/// A RIFF file from raw chunks (id, body); odd bodies get their pad byte.
fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data) in chunks {
        body.extend_from_slice(*id);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let block_align = channels * bits.div_ceil(8);
    let mut b = Vec::new();
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    b.extend_from_slice(&block_align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b
}

fn extensible_body(channels: u16, rate: u32, sub_tag: u16) -> Vec<u8> {
    let mut b = fmt_body(FORMAT_EXTENSIBLE, channels, rate, 16);
    b.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    b.extend_from_slice(&16u16.to_le_bytes()); // valid bits
    b.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
    b.extend_from_slice(&sub_tag.to_le_bytes());
    b.extend_from_slice(&PCM_GUID_TAIL);
    b
}

fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("media-wav-test-{}-{name}", std::process::id()))
}

#[test]
fn round_trip_through_encode_and_read() {
    let samples: Vec<i16> = vec![0, 1, -1, i16::MAX, i16::MIN, 1234, -4321, 7];
    let bytes = encode_wav(8_000, 2, &samples).unwrap();
    assert_eq!(bytes.len(), 44 + 16);
    let wav = read_wav(&bytes).unwrap();
    assert_eq!(
        wav,
        Wav {
            sample_rate: 8_000,
            channels: 2,
            samples
        }
    );
}

#[test]
fn reads_the_shipped_prompt() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prompts/prompt.wav");
    let prompt = load_prompt(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // 44-byte header, then the samples.
    assert_eq!(prompt.len(), (bytes.len() - 44) / 2);
    assert!(prompt.iter().any(|&s| s.abs() > 1000), "real audio");
}

#[test]
fn skips_unknown_chunks_and_accepts_data_before_fmt() {
    let samples = [5i16, -6, 7];
    let bytes = riff(&[
        (b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00".to_vec()), // odd length: padded
        (b"data", pcm_bytes(&samples)),
        (b"fmt ", fmt_body(FORMAT_PCM, 1, 16_000, 16)),
        (b"junk", vec![1, 2, 3]),
    ]);
    let wav = read_wav(&bytes).unwrap();
    assert_eq!(wav.sample_rate, 16_000);
    assert_eq!(wav.samples, samples);
}

#[test]
fn accepts_extensible_pcm() {
    let samples = [100i16, 200, 300];
    let bytes = riff(&[
        (b"fmt ", extensible_body(1, 8_000, FORMAT_PCM)),
        (b"data", pcm_bytes(&samples)),
    ]);
    assert_eq!(read_wav(&bytes).unwrap().samples, samples);
}

#[test]
fn rejects_extensible_float() {
    let bytes = riff(&[
        (b"fmt ", extensible_body(1, 8_000, 3)),
        (b"data", vec![0; 8]),
    ]);
    let err = read_wav(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            WavError::UnsupportedEncoding {
                encoding: Encoding::Extensible(3),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("IEEE float"), "{err}");
}

#[test]
fn rejects_8_bit_pcm() {
    let bytes = riff(&[
        (b"fmt ", fmt_body(FORMAT_PCM, 1, 8_000, 8)),
        (b"data", vec![128; 10]),
    ]);
    let err = read_wav(&bytes).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("8 bits") && message.contains("16-bit PCM"),
        "{message}"
    );
}

#[test]
fn rejects_mu_law_and_float() {
    for (tag, bits, name) in [(7u16, 8u16, "mu-law"), (3, 32, "IEEE float")] {
        let bytes = riff(&[
            (b"fmt ", fmt_body(tag, 1, 8_000, bits)),
            (b"data", vec![0; 8]),
        ]);
        let err = read_wav(&bytes).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn garbage_is_not_a_wav() {
    for garbage in [
        b"hello world, this is not audio".as_slice(),
        &[0xFF; 64],
        b"RIFX\x24\x00\x00\x00WAVEfmt ",
    ] {
        let err = read_wav(garbage).unwrap_err();
        assert!(matches!(err, WavError::NotWav { .. }), "{err}");
    }
    let err = read_wav(b"RIFF\x24\x00\x00\x00AVI LIST").unwrap_err();
    assert!(err.to_string().contains("AVI"), "{err}");
}

#[test]
fn truncated_files_are_reported_as_truncated() {
    let full = encode_wav(8_000, 1, &[1, 2, 3, 4]).unwrap();
    // Every cut through the header, and a cut inside the data.
    for cut in [0, 3, 4, 11, 12, 15, 20, 30, 36, 40, 43, 46, 51] {
        let err = read_wav(&full[..cut]).unwrap_err();
        let ok = matches!(err, WavError::Truncated(_) | WavError::MissingChunk(_));
        assert!(ok, "cut at {cut}: {err}");
    }
    // The first byte of data present is still a truncation (declared length is missing).
    let err = read_wav(&full[..45]).unwrap_err();
    assert!(err.to_string().contains("only 1 present"), "{err}");
    let err = read_wav(&full[..12]).unwrap_err();
    assert!(matches!(err, WavError::MissingChunk("fmt ")), "{err}");
}

#[test]
fn odd_data_length_and_bad_fmt_are_errors() {
    let bytes = riff(&[
        (b"fmt ", fmt_body(FORMAT_PCM, 1, 8_000, 16)),
        (b"data", vec![1, 2, 3]),
    ]);
    assert!(matches!(read_wav(&bytes), Err(WavError::Truncated(_))));

    let bytes = riff(&[
        (b"fmt ", fmt_body(FORMAT_PCM, 0, 8_000, 16)),
        (b"data", vec![]),
    ]);
    assert!(matches!(read_wav(&bytes), Err(WavError::Malformed(_))));

    let bytes = riff(&[(b"fmt ", fmt_body(FORMAT_PCM, 1, 0, 16)), (b"data", vec![])]);
    assert!(matches!(read_wav(&bytes), Err(WavError::Malformed(_))));

    let mut bad_align = fmt_body(FORMAT_PCM, 2, 8_000, 16);
    bad_align[12] = 2;
    let bytes = riff(&[(b"fmt ", bad_align), (b"data", vec![])]);
    assert!(matches!(read_wav(&bytes), Err(WavError::Malformed(_))));

    let bytes = riff(&[(b"fmt ", vec![1, 0, 1, 0]), (b"data", vec![])]);
    assert!(matches!(read_wav(&bytes), Err(WavError::Truncated(_))));

    let bytes = riff(&[(b"fmt ", fmt_body(FORMAT_PCM, 1, 8_000, 16))]);
    assert!(matches!(
        read_wav(&bytes),
        Err(WavError::MissingChunk("data"))
    ));
}

#[test]
fn chunk_size_beyond_the_file_is_truncated_not_a_panic() {
    let mut bytes = riff(&[(b"fmt ", fmt_body(FORMAT_PCM, 1, 8_000, 16))]);
    bytes.extend_from_slice(b"data\xFF\xFF\xFF\xFF\x01\x00");
    let err = read_wav(&bytes).unwrap_err();
    assert!(err.to_string().contains("4294967295"), "{err}");
}

#[test]
fn write_and_load_8k_prompt() {
    let path = temp_path("8k.wav");
    let samples: Vec<i16> = (0..800).map(|n| (n * 37 % 2000) as i16).collect();
    write_wav(&path, 8_000, 1, &samples).unwrap();
    let loaded = load_prompt(&path);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.unwrap(), samples);
}

#[test]
fn load_16k_prompt_is_decimated() {
    let path = temp_path("16k.wav");
    let tone: Vec<i16> = (0..1_600)
        .map(|n| {
            (8_000.0 * (2.0 * std::f64::consts::PI * 1_000.0 * n as f64 / 16_000.0).sin()) as i16
        })
        .collect();
    write_wav(&path, 16_000, 1, &tone).unwrap();
    let loaded = load_prompt(&path);
    std::fs::remove_file(&path).unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(loaded.len(), 800);
    assert_eq!(loaded, decimate_16k_to_8k(&tone));
}

#[test]
fn load_prompt_rejects_stereo_and_other_rates() {
    for (rate, channels) in [(8_000, 2), (44_100, 1), (48_000, 2), (22_050, 1)] {
        let wav = Wav {
            sample_rate: rate,
            channels,
            samples: vec![0; 4],
        };
        let message = prompt_from_wav(wav).unwrap_err().to_string();
        assert!(message.contains(&format!("{rate} Hz")), "{message}");
        assert!(
            message.contains(&format!("{channels} channel")),
            "{message}"
        );
        assert!(message.contains("mono at 8000 or 16000 Hz"), "{message}");
    }
    let path = temp_path("stereo.wav");
    write_wav(&path, 8_000, 2, &[1, 2, 3, 4]).unwrap();
    let err = load_prompt(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        err,
        Err(WavError::UnsupportedLayout {
            sample_rate: 8_000,
            channels: 2
        })
    ));
}

#[test]
fn load_prompt_missing_file_names_the_path() {
    let path = temp_path("does-not-exist.wav");
    let message = load_prompt(&path).unwrap_err().to_string();
    assert!(message.contains("does-not-exist.wav"), "{message}");
}

#[test]
fn encode_rejects_bad_layouts() {
    assert!(encode_wav(8_000, 0, &[]).is_err());
    assert!(encode_wav(0, 1, &[]).is_err());
    assert!(encode_wav(8_000, 2, &[1, 2, 3]).is_err());
    assert!(encode_wav(u32::MAX, 2, &[]).is_err());
    let empty = encode_wav(8_000, 1, &[]).unwrap();
    assert!(read_wav(&empty).unwrap().samples.is_empty());
}

#[test]
fn timeline_shifts_ride_along_in_their_own_chunk() {
    let samples: Vec<i16> = (0..640).map(|i| i as i16).collect();
    let shifts = vec![(55u32, 160i32), (300, -160)];
    let bytes = encode_wav_with_timeline_shifts(8_000, 2, &samples, &shifts).unwrap();
    // The audio reads as before (other readers skip the chunk), and the shifts come back.
    let wav = read_wav(&bytes).unwrap();
    assert_eq!((wav.channels, wav.samples.clone()), (2, samples.clone()));
    assert_eq!(read_timeline_shifts(&bytes).unwrap(), shifts);
    let riff_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    assert_eq!(riff_len, bytes.len() - 8);
    // No shifts: a plain WAV; a plain WAV has none.
    let plain = encode_wav_with_timeline_shifts(8_000, 2, &samples, &[]).unwrap();
    assert_eq!(plain, encode_wav(8_000, 2, &samples).unwrap());
    assert!(read_timeline_shifts(&plain).unwrap().is_empty());
    // A chunk that is not whole entries is refused with its name.
    let mut bad = bytes.clone();
    bad[40..44].copy_from_slice(&12u32.to_le_bytes());
    let err = read_timeline_shifts(&bad).unwrap_err();
    assert!(err.to_string().contains("bgts"), "{err}");
}
