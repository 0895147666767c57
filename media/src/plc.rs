//! Packet loss concealment after ITU-T G.711 Appendix I (pitch-period repetition).
//!
//! On the first lost sample the pitch period (5–15 ms) of the recent output is found by
//! normalised cross-correlation, and the last period is repeated. Repeating one period for
//! long sounds buzzy, so after 10 ms the repetition widens to the last two periods and after
//! 20 ms to three, each switch cross-faded over a quarter period. From 10 ms on, the output
//! fades linearly by 20 % per 10 ms, reaching silence at 60 ms: a long synthetic vowel is
//! worse than a gap. When real audio returns, its start is cross-faded with the continued
//! synthetic signal (4 ms, +4 ms per extra 10 ms of loss, at most 10 ms) so there is no
//! click; after a loss longer than the fade this is a fade-in from silence.
//!
//! Differences from Appendix I: no 3.75 ms output delay (we cannot modify samples already
//! played, so the first repetition starts one period back without smoothing the junction),
//! and the whole pitch search runs at full rate (cheap enough at one search per loss).

/// Shortest pitch period searched (200 Hz at 8 kHz).
pub const PITCH_MIN: usize = 40;
/// Longest pitch period searched (66.7 Hz).
pub const PITCH_MAX: usize = 120;
/// Samples correlated in the pitch search (20 ms).
const CORRELATION_LEN: usize = 160;
/// Output kept for the search and the repetition (three periods plus a margin).
const HISTORY_LEN: usize = 3 * PITCH_MAX + 30;
/// Full gain for the first 10 ms of a loss.
const FADE_START: usize = 80;
/// Silence from 60 ms on.
const FADE_END: usize = 480;
const MAX_PERIODS: usize = 3;

#[derive(Clone, Copy, Debug)]
struct PeriodCrossfade {
    from_periods: usize,
    from_pos: usize,
    done: usize,
    len: usize,
}

/// Concealment state of one stream. Feed every real block to [`Plc::good`] and ask
/// [`Plc::conceal`] for missing ones; blocks may have any length.
#[derive(Clone, Debug)]
pub struct Plc {
    /// The most recent output, oldest first.
    history: [f32; HISTORY_LEN],
    /// Snapshot of `history` when the current loss began.
    template: [f32; HISTORY_LEN],
    template_has_audio: bool,
    pitch: usize,
    periods: usize,
    /// Position inside the repeated window (the last `periods * pitch` template samples).
    pos: usize,
    crossfade: Option<PeriodCrossfade>,
    /// Samples synthesised in the current loss (0: not concealing).
    erased: usize,
}

impl Default for Plc {
    fn default() -> Self {
        Self::new()
    }
}

impl Plc {
    pub fn new() -> Self {
        Plc {
            history: [0.0; HISTORY_LEN],
            template: [0.0; HISTORY_LEN],
            template_has_audio: false,
            pitch: PITCH_MAX,
            periods: 1,
            pos: 0,
            crossfade: None,
            erased: 0,
        }
    }

    /// True while a loss is being concealed (the next good block will be merged).
    pub fn is_concealing(&self) -> bool {
        self.erased > 0
    }

    /// True when concealment would output silence: the fade-out is over, or there has been
    /// no audio to repeat.
    pub fn is_silent(&self) -> bool {
        if self.erased > 0 {
            self.erased >= FADE_END || !self.template_has_audio
        } else {
            self.history.iter().all(|&s| s == 0.0)
        }
    }

    /// Fills `out` with synthetic audio. Returns whether any of it is audible (false once
    /// faded out, or when there was nothing to repeat).
    pub fn conceal(&mut self, out: &mut [i16]) -> bool {
        if self.erased == 0 {
            self.start_loss();
        }
        let audible = self.template_has_audio && self.erased < FADE_END;
        for sample in out.iter_mut() {
            *sample = to_i16(self.next_synthetic());
        }
        self.remember(out);
        audible
    }

    /// Takes a block of real audio. After a loss, its start is cross-faded from the
    /// synthetic signal (the block is modified in place).
    pub fn good(&mut self, block: &mut [i16]) {
        if self.erased > 0 {
            let merge_len = match self.erased {
                0..=80 => 32,
                81..=160 => 64,
                _ => 80,
            }
            .min(block.len());
            for (i, sample) in block.iter_mut().take(merge_len).enumerate() {
                let synthetic = self.next_synthetic();
                let w = (i + 1) as f32 / (merge_len + 1) as f32;
                *sample = to_i16(synthetic * (1.0 - w) + f32::from(*sample) * w);
            }
            self.erased = 0;
            self.crossfade = None;
        }
        self.remember(block);
    }

    fn start_loss(&mut self) {
        self.template = self.history;
        self.template_has_audio = self.history.iter().any(|&s| s != 0.0);
        self.pitch = find_pitch(&self.history);
        self.periods = 1;
        self.pos = 0;
        self.crossfade = None;
    }

    fn window_sample(&self, periods: usize, pos: usize) -> f32 {
        let start = HISTORY_LEN.saturating_sub(periods * self.pitch);
        self.template.get(start + pos).copied().unwrap_or(0.0)
    }

    fn next_synthetic(&mut self) -> f32 {
        if self.erased >= FADE_END || !self.template_has_audio {
            self.erased = self.erased.saturating_add(1);
            return 0.0;
        }
        let mut value = self.window_sample(self.periods, self.pos);
        if let Some(mut fade) = self.crossfade {
            let old = self.window_sample(fade.from_periods, fade.from_pos);
            let w = (fade.done + 1) as f32 / (fade.len + 1) as f32;
            value = old * (1.0 - w) + value * w;
            fade.from_pos = (fade.from_pos + 1) % (fade.from_periods * self.pitch).max(1);
            fade.done += 1;
            self.crossfade = (fade.done < fade.len).then_some(fade);
        }
        let gain = if self.erased < FADE_START {
            1.0
        } else {
            1.0 - (self.erased - FADE_START) as f32 / (FADE_END - FADE_START) as f32
        };
        self.pos = (self.pos + 1) % (self.periods * self.pitch).max(1);
        self.erased += 1;
        // At 10 and 20 ms repeat one more (older) period. Keeping `pos` keeps the phase:
        // the wider window starts a whole number of periods earlier.
        if (self.erased == 80 || self.erased == 160) && self.periods < MAX_PERIODS {
            self.crossfade = Some(PeriodCrossfade {
                from_periods: self.periods,
                from_pos: self.pos,
                done: 0,
                len: (self.pitch / 4).max(1),
            });
            self.periods += 1;
        }
        value * gain
    }

    fn remember(&mut self, block: &[i16]) {
        let take = block.len().min(HISTORY_LEN);
        let recent = block.get(block.len() - take..).unwrap_or(&[]);
        self.history.copy_within(take.., 0);
        let tail = HISTORY_LEN - take;
        for (slot, &s) in self.history.iter_mut().skip(tail).zip(recent) {
            *slot = f32::from(s);
        }
    }
}

fn to_i16(value: f32) -> i16 {
    value.round().clamp(-32768.0, 32767.0) as i16
}

/// The lag (PITCH_MIN..=PITCH_MAX) whose past best predicts the last 20 ms.
fn find_pitch(history: &[f32; HISTORY_LEN]) -> usize {
    let end = HISTORY_LEN;
    let recent = &history[end - CORRELATION_LEN..end];
    let mut best_lag = PITCH_MAX;
    let mut best_score = f32::MIN;
    for lag in PITCH_MIN..=PITCH_MAX {
        let past = &history[end - CORRELATION_LEN - lag..end - lag];
        let (mut correlation, mut energy) = (0.0f32, 0.0f32);
        for (&a, &b) in recent.iter().zip(past) {
            correlation += a * b;
            energy += b * b;
        }
        if energy <= 0.0 {
            continue;
        }
        let score = correlation / energy.sqrt();
        if score > best_score {
            best_score = score;
            best_lag = lag;
        }
    }
    best_lag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voiced(n: usize, offset: usize) -> Vec<i16> {
        // 125 Hz fundamental (64-sample period) with two harmonics.
        (offset..offset + n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let w = 2.0 * std::f32::consts::PI * 125.0 * t;
                (6000.0 * w.sin() + 3000.0 * (2.0 * w).sin() + 1500.0 * (3.0 * w).sin()) as i16
            })
            .collect()
    }

    fn rms(samples: &[i16]) -> f32 {
        let sum: f32 = samples.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
        (sum / samples.len().max(1) as f32).sqrt()
    }

    #[test]
    fn finds_the_pitch_of_a_periodic_signal() {
        let mut plc = Plc::new();
        let mut audio = voiced(400, 0);
        plc.good(&mut audio);
        assert_eq!(find_pitch(&plc.history), 64);
    }

    #[test]
    fn concealment_continues_the_waveform_then_fades_to_silence() {
        let mut plc = Plc::new();
        let mut audio = voiced(480, 0);
        plc.good(&mut audio);
        let truth = voiced(80, 480);
        let mut block = [0i16; 80];
        assert!(plc.conceal(&mut block));
        // A periodic signal is continued almost exactly.
        let error: Vec<i16> = block.iter().zip(&truth).map(|(a, b)| a - b).collect();
        assert!(rms(&error) < 0.05 * rms(&truth), "{}", rms(&error));
        let mut energies = vec![rms(&block)];
        for _ in 0..6 {
            let audible = plc.conceal(&mut block);
            energies.push(rms(&block));
            if energies.len() == 7 {
                assert!(!audible);
            }
        }
        // Fades: 10-20 ms quieter than 0-10 ms, ..., silent from 60 ms.
        assert!(
            energies.windows(2).skip(1).all(|w| w[1] < w[0]),
            "{energies:?}"
        );
        assert!(energies[1] <= 1.05 * rms(&voiced(480, 0)), "{energies:?}");
        assert!(energies[5] < 0.3 * energies[0]);
        assert_eq!(energies[6], 0.0);
        assert!(plc.is_silent());
    }

    #[test]
    fn resumed_audio_is_cross_faded_without_a_click() {
        let mut plc = Plc::new();
        let mut audio = voiced(480, 0);
        plc.good(&mut audio);
        let mut lost = [0i16; 80];
        plc.conceal(&mut lost);
        let last = *lost.last().unwrap();
        // Resume with an inverted signal: a hard switch would jump by ~2× the amplitude.
        let mut resumed: Vec<i16> = voiced(80, 560).iter().map(|&s| -s).collect();
        let original = resumed.clone();
        plc.good(&mut resumed);
        assert!(!plc.is_concealing());
        let step = (i32::from(resumed[0]) - i32::from(last)).abs();
        let hard_step = (i32::from(original[0]) - i32::from(last)).abs();
        assert!(step < hard_step || hard_step < 500, "{step} vs {hard_step}");
        // After the 4 ms merge the real audio passes unchanged.
        assert_eq!(&resumed[32..], &original[32..]);
    }

    #[test]
    fn after_a_long_loss_audio_fades_in() {
        let mut plc = Plc::new();
        let mut audio = voiced(480, 0);
        plc.good(&mut audio);
        let mut lost = [0i16; 80];
        for _ in 0..8 {
            plc.conceal(&mut lost);
        }
        let mut resumed = voiced(80, 1120);
        let original = resumed.clone();
        plc.good(&mut resumed);
        // The 10 ms merge with silence ramps up: the first sample is scaled by 1/81.
        assert!(i32::from(resumed[0]).abs() <= i32::from(original[0]).abs() / 40 + 1);
        assert!(i32::from(resumed[79]).abs() >= i32::from(original[79]).abs() * 9 / 10);
    }

    #[test]
    fn nothing_to_repeat_gives_silence() {
        let mut plc = Plc::new();
        assert!(plc.is_silent());
        let mut block = [5i16; 80];
        assert!(!plc.conceal(&mut block));
        assert!(block.iter().all(|&s| s == 0));
    }
}
