//! Audio helpers of the example: WAV loading, G.711 µ-law, sentence splitting.

use std::path::Path;

/// Loads a mono 16-bit WAV at 8 kHz (16 kHz is decimated by 2).
pub fn load_wav(path: &Path) -> Result<Vec<i16>, String> {
    let mut r = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = r.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!("{}: need mono 16-bit PCM", path.display()));
    }
    let samples: Vec<i16> = r
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match spec.sample_rate {
        8000 => Ok(samples),
        16000 => Ok(samples
            .chunks(2)
            .map(|p| ((i32::from(p[0]) + i32::from(*p.last().unwrap_or(&p[0]))) / 2) as i16)
            .collect()),
        other => Err(format!(
            "{}: {other} Hz (need 8000 or 16000)",
            path.display()
        )),
    }
}

/// ITU-T G.711 µ-law encoder.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// ITU-T G.711 µ-law decoder.
pub fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if c & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Splits speech at pauses of at least 250 ms (20 ms frames under RMS 200): one piece per
/// sentence for a TTS-like prompt. Pieces keep their trailing pause, so the pieces played
/// back to back are the original prompt.
pub fn split_sentences(samples: &[i16]) -> Vec<&[i16]> {
    const FRAME: usize = 160;
    const MIN_PAUSE_FRAMES: usize = 13;
    let quiet = |f: &[i16]| {
        let e: f64 = f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len().max(1) as f64;
        e.sqrt() < 200.0
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut quiet_run = 0;
    let mut voiced_since_start = false;
    for (i, frame) in samples.chunks(FRAME).enumerate() {
        if quiet(frame) {
            quiet_run += 1;
        } else {
            // Speech after a long enough pause: the previous sentence ends where it starts.
            if quiet_run >= MIN_PAUSE_FRAMES && voiced_since_start {
                let cut = i * FRAME;
                pieces.push(&samples[start..cut]);
                start = cut;
            }
            quiet_run = 0;
            voiced_since_start = true;
        }
    }
    if start < samples.len() {
        pieces.push(&samples[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_is_close() {
        for s in [-32000i16, -1000, -8, 0, 8, 1000, 32000] {
            let back = ulaw_decode(ulaw_encode(s));
            let err = (i32::from(back) - i32::from(s)).abs();
            assert!(err <= i32::from(s).abs() / 16 + 8, "{s} -> {back}");
        }
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
    }

    #[test]
    fn sentences_split_at_long_pauses_only() {
        let tone = |ms: usize| vec![3000i16; ms * 8];
        let pause = |ms: usize| vec![0i16; ms * 8];
        let mut a = tone(500);
        a.extend(pause(100)); // a comma: no split
        a.extend(tone(300));
        a.extend(pause(400)); // a full stop: split
        a.extend(tone(200));
        let pieces = split_sentences(&a);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].len(), (500 + 100 + 300 + 400) * 8);
        assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), a.len());
    }
}
