//! Bulk-delay estimation by correlating the envelopes of the sent and received audio.
//!
//! The adaptive filter only spans ~76 ms, but the echo may come back up to 150 ms late, so
//! the reference has to be delayed first. Waveform cross-correlation over 1 200 lags would
//! cost ~200 k multiply-adds per frame and is fooled by the echo path's phase; instead both
//! signals are high-passed at ≈ 250 Hz (mains hum, fans and car rumble live below it and
//! their envelopes would drown an echo as loud as they are), reduced to 1 ms amplitude
//! envelopes (8 samples → 1 value), high-passed again so that only their fluctuations
//! (syllables, pitch pulses) remain, and correlated over 0–max lags.
//! That is blind to the echo path's phase and level, and locates the echo's energy to about
//! a millisecond — enough to place the filter window, whose own taps then give the precise
//! delay.
//!
//! Two memories are kept: ~1 s, stable, used while the canceller works; ~0.3 s, used while
//! it does not (at start, after an echo-path change), so a new delay is found in a few
//! hundred milliseconds instead of waiting for the old one to fade. Each memory keeps, per
//! lag, the correlation and the far energy that lag saw (instants in which the near end
//! talks are left out, so the far energy "now" is not what a lag met). With the gateway's
//! 266 lags that is ~1 100 multiply-adds per millisecond.
//!
//! Hysteresis: the estimate only moves when two consecutive evaluations (100 ms apart) agree
//! on a lag more than 2 ms away from the current one, and only when the correlation is clear.

/// Samples per envelope value (1 ms at 8 kHz).
pub(crate) const ENVELOPE_SAMPLES: usize = 8;
/// One-pole high-pass before the envelopes (≈ 250 Hz: −8 dB at 100 Hz, −1 dB at 500 Hz).
const HIGH_PASS: f32 = 0.836;
/// Envelope values between evaluations (100 ms).
const EVALUATION_INTERVAL: usize = 100;
/// Memories of the correlations (envelope values).
const SLOW_MEMORY: f32 = 1000.0;
const FAST_MEMORY: f32 = 300.0;
/// High-pass of the envelopes (1-pole mean tracker, ≈ 16 ms).
const MEAN_TRACKING: f32 = 1.0 / 16.0;
/// A far-end envelope value (mean |x|) below this is silence (≈ −66 dBFS).
const ACTIVE_ENVELOPE: f32 = 16.0;
/// Far-end activity (envelope values) needed before the first estimate.
const MIN_ACTIVE_FOR_FIRST: usize = 120;
/// Near-end activity (envelope values) needed before the first estimate.
const MIN_NEAR_ACTIVE_FOR_FIRST: usize = 80;
/// Normalised correlation needed to trust a peak; a clearer one is accepted at once.
const MIN_QUALITY: f32 = 0.25;
const IMMEDIATE_QUALITY: f32 = 0.5;
/// Lags (ms) within which two peaks count as the same delay.
const SAME_LAG: usize = 2;
/// Memory of the echo likeness at the current delay (envelope values: ≈ 160 ms, about
/// one syllable — a caller's first syllable must show).
const LIKENESS_MEMORY: f32 = 160.0;
/// Envelope values correlated at a delay before its likeness is told (≈ 320 ms, two
/// memories): a first delay estimate can be wrong and replaced within ≈ 300 ms, and at the
/// wrong lag pure echo measured −0.3…−0.1 — "something other than our echo", which made a
/// recorded call's first words a crowd for the policy and hid the caller for the call.
const LIKENESS_WARMUP: u32 = 2 * LIKENESS_MEMORY as u32;

/// Exponentially weighted correlation of near(t) with far(t − lag) for every lag.
struct Correlation {
    keep: f32,
    by_lag: Vec<f32>,
    near_energy: f32,
    /// Far energy as each lag saw it: only instants in which the near end did not talk
    /// are pushed, so the far energy "now" is not the far energy those instants met at a
    /// lag (a loud far onset during double talk would otherwise give a correlation > 1).
    far_energy_by_lag: Vec<f32>,
}

impl Correlation {
    fn new(lags: usize, memory: f32) -> Self {
        Self {
            keep: 1.0 - 1.0 / memory,
            by_lag: vec![0.0; lags],
            near_energy: 0.0,
            far_energy_by_lag: vec![0.0; lags],
        }
    }

    /// `far_by_lag` = far(t), far(t − 1), … (newest first).
    fn push<'a>(&mut self, near: f32, far_by_lag: impl Iterator<Item = &'a f32>) {
        let keep = self.keep;
        self.near_energy = keep * self.near_energy + near * near;
        for ((c, e), &f) in self
            .by_lag
            .iter_mut()
            .zip(self.far_energy_by_lag.iter_mut())
            .zip(far_by_lag)
        {
            *c = keep * *c + near * f;
            *e = keep * *e + f * f;
        }
    }

    /// (lag, normalised correlation) of the highest peak.
    fn peak(&self) -> (usize, f32) {
        let (lag, best) =
            self.by_lag
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (lag, c)| if c > acc.1 { (lag, c) } else { acc },
                );
        let far_energy = self.far_energy_by_lag.get(lag).copied().unwrap_or(0.0);
        let norm = (self.near_energy * far_energy).sqrt();
        let quality = if norm > 0.0 { best / norm } else { 0.0 };
        (lag, if quality.is_finite() { quality } else { 0.0 })
    }
}

/// Moves per-lag values `k` lags down (`earlier`: the echo now arrives sooner) or up,
/// zero-filling the lags that come in.
fn shift_lags(values: &mut [f32], earlier: bool, k: usize) {
    let n = values.len();
    let k = k.min(n);
    if earlier {
        values.rotate_left(k);
        if let Some(tail) = values.get_mut(n - k..) {
            tail.fill(0.0);
        }
    } else {
        values.rotate_right(k);
        if let Some(head) = values.get_mut(..k) {
            head.fill(0.0);
        }
    }
}

/// Normalised correlation of the near envelope with the far envelope at one lag, always
/// updated (also while the near end talks: that is what it is meant to show). Started
/// afresh at every new delay estimate, and unknown until it has seen [`LIKENESS_WARMUP`]
/// values at it: in its first tens of milliseconds it swings anywhere in −0.3…0.5 on pure
/// echo, and our own first words passed for something else talking under them.
#[derive(Default)]
struct Likeness {
    cross: f32,
    near_energy: f32,
    far_energy: f32,
    pushed: u32,
}

impl Likeness {
    const KEEP: f32 = 1.0 - 1.0 / LIKENESS_MEMORY;

    fn push(&mut self, near: f32, far_at_lag: f32) {
        self.cross = Self::KEEP * self.cross + near * far_at_lag;
        self.near_energy = Self::KEEP * self.near_energy + near * near;
        self.far_energy = Self::KEEP * self.far_energy + far_at_lag * far_at_lag;
        self.pushed = self.pushed.saturating_add(1);
    }

    fn value(&self) -> Option<f32> {
        if self.pushed < LIKENESS_WARMUP {
            return None;
        }
        let norm = (self.near_energy * self.far_energy).sqrt();
        let v = self.cross / norm;
        (norm > 0.0 && v.is_finite()).then_some(v)
    }
}

pub(crate) struct DelayEstimator {
    /// Largest lag searched, in envelope values.
    max_lag: usize,
    /// High-passed far envelope, a ring of `max_lag + 1` values written twice (at `i` and
    /// `i + len`) so the last `len` values are always one contiguous slice, newest last.
    far_history: Vec<f32>,
    head: usize,
    slow: Correlation,
    fast: Correlation,
    far_mean: f32,
    near_mean: f32,
    far_acc: f32,
    near_acc: f32,
    /// Previous far and near samples, for the pre-emphasis.
    far_previous: f32,
    near_previous: f32,
    far_hp: f32,
    near_hp: f32,
    acc_count: usize,
    since_evaluation: usize,
    active_values: usize,
    near_active_values: usize,
    candidate: Option<usize>,
    candidate_hits: u32,
    estimate: Option<usize>,
    likeness: Likeness,
}

impl DelayEstimator {
    /// Searches lags `0..=max_lag_ms` milliseconds.
    pub(crate) fn new(max_lag_ms: usize) -> Self {
        let lags = max_lag_ms + 1;
        Self {
            max_lag: max_lag_ms,
            far_history: vec![0.0; 2 * lags],
            head: 0,
            slow: Correlation::new(lags, SLOW_MEMORY),
            fast: Correlation::new(lags, FAST_MEMORY),
            far_mean: 0.0,
            near_mean: 0.0,
            far_acc: 0.0,
            near_acc: 0.0,
            far_previous: 0.0,
            near_previous: 0.0,
            far_hp: 0.0,
            near_hp: 0.0,
            acc_count: 0,
            since_evaluation: 0,
            active_values: 0,
            near_active_values: 0,
            candidate: None,
            candidate_hits: 0,
            estimate: None,
            likeness: Likeness::default(),
        }
    }

    /// How well the far end, at the estimated delay, explains the near end over the last
    /// ≈ 160 ms (normalised envelope correlation, −1…1): near 1 while the line carries only
    /// our echo, low when anything else (a caller, a crowd) is as loud. None until a delay
    /// is known and ≈ 320 ms have been correlated at it ([`LIKENESS_WARMUP`]), or while
    /// the far end has been silent.
    pub(crate) fn echo_likeness(&self) -> Option<f32> {
        self.estimate.and(self.likeness.value())
    }

    /// Normalised correlation of the short-memory peak: how much of the recent near-end
    /// envelope the far end explains (high for echo, whatever its path; low for a caller).
    pub(crate) fn recent_echo_likeness(&self) -> f32 {
        self.fast.peak().1
    }

    /// The near timeline jumped by `samples` (> 0: the echo now arrives sooner): every lag,
    /// the estimate and what was correlated at each lag move with it.
    pub(crate) fn timeline_shifted(&mut self, samples: i64) {
        let ms = (samples as f64 / ENVELOPE_SAMPLES as f64).round() as i64;
        if ms == 0 {
            return;
        }
        let shift = |lag: usize| usize::try_from(lag as i64 - ms).ok();
        self.estimate = self.estimate.and_then(shift);
        self.candidate = self.candidate.and_then(shift);
        let k = ms.unsigned_abs() as usize;
        for corr in [&mut self.slow, &mut self.fast] {
            // by_lag[l] now holds what was at l + ms; lags shifted in start empty.
            shift_lags(&mut corr.by_lag, ms > 0, k);
            shift_lags(&mut corr.far_energy_by_lag, ms > 0, k);
        }
    }

    /// Current estimate in samples (the lag of the echo's main energy), if any.
    pub(crate) fn estimate_samples(&self) -> Option<usize> {
        self.estimate.map(|ms| ms * ENVELOPE_SAMPLES)
    }

    /// Feeds time-aligned far (as sent now, not delayed) and near samples. `searching`
    /// selects the short memory (the canceller lost an echo path it had). Returns the new estimate
    /// in samples when it changed.
    /// `near_talks`: the near end clearly talks; its envelope then says nothing about the
    /// echo and is kept out of the correlations.
    pub(crate) fn push(
        &mut self,
        far: &[f32],
        near: &[f32],
        searching: bool,
        near_talks: bool,
    ) -> Option<usize> {
        let mut changed = None;
        for (&x, &y) in far.iter().zip(near) {
            // Pre-emphasis on both sides (it commutes with the echo path): line noise —
            // mains hum, fans, car rumble — lives below a few hundred hertz, and its
            // envelope would otherwise drown the echo's.
            self.far_hp = HIGH_PASS * (self.far_hp + x - self.far_previous);
            self.near_hp = HIGH_PASS * (self.near_hp + y - self.near_previous);
            self.far_previous = x;
            self.near_previous = y;
            self.far_acc += self.far_hp.abs();
            self.near_acc += self.near_hp.abs();
            self.acc_count += 1;
            if self.acc_count == ENVELOPE_SAMPLES {
                let far_env = self.far_acc / ENVELOPE_SAMPLES as f32;
                let near_env = self.near_acc / ENVELOPE_SAMPLES as f32;
                self.far_acc = 0.0;
                self.near_acc = 0.0;
                self.acc_count = 0;
                if let Some(lag) = self.push_envelope(far_env, near_env, searching, near_talks) {
                    changed = Some(lag * ENVELOPE_SAMPLES);
                }
            }
        }
        changed
    }

    fn push_envelope(
        &mut self,
        far_env: f32,
        near_env: f32,
        searching: bool,
        near_talks: bool,
    ) -> Option<usize> {
        self.far_mean += MEAN_TRACKING * (far_env - self.far_mean);
        self.near_mean += MEAN_TRACKING * (near_env - self.near_mean);
        let far_hp = far_env - self.far_mean;
        let near_hp = near_env - self.near_mean;
        let len = self.slow.by_lag.len();
        self.head = (self.head + 1) % len;
        if let Some(slot) = self.far_history.get_mut(self.head) {
            *slot = far_hp;
        }
        if let Some(slot) = self.far_history.get_mut(self.head + len) {
            *slot = far_hp;
        }
        // Near-end activity counts only what the correlations saw: a few instants between
        // a caller's words correlate with anything.
        if far_env > ACTIVE_ENVELOPE {
            self.active_values += 1;
        }
        if !near_talks && near_env > ACTIVE_ENVELOPE {
            self.near_active_values += 1;
        }
        // The window ending with the newest value at `head + len`, read backwards, is
        // ordered by lag.
        let window = self
            .far_history
            .get(self.head + 1..self.head + 1 + len)
            .unwrap_or(&[]);
        if let Some(lag) = self.estimate {
            let far_at_lag = window
                .len()
                .checked_sub(1 + lag)
                .and_then(|i| window.get(i))
                .copied()
                .unwrap_or(0.0);
            self.likeness.push(near_hp, far_at_lag);
        }
        if !near_talks {
            self.slow.push(near_hp, window.iter().rev());
            self.fast.push(near_hp, window.iter().rev());
        }

        self.since_evaluation += 1;
        // Until the first estimate every 50 ms: nothing can be cancelled before it.
        let interval = if self.estimate.is_none() {
            EVALUATION_INTERVAL / 2
        } else {
            EVALUATION_INTERVAL
        };
        if self.since_evaluation < interval {
            return None;
        }
        self.since_evaluation = 0;
        self.evaluate(searching)
    }

    fn evaluate(&mut self, searching: bool) -> Option<usize> {
        // Deciding before the echo has come back at all would pick a random lag.
        if self.active_values < MIN_ACTIVE_FOR_FIRST
            || self.near_active_values < MIN_NEAR_ACTIVE_FOR_FIRST
        {
            return None;
        }
        let (best_lag, quality) = if searching {
            self.fast.peak()
        } else {
            self.slow.peak()
        };
        // The short memory is noisy: there a new lag must be clearly correlated and clearly
        // beat the current one, or double talk would move the window about.
        let convincing = !searching
            || (quality >= IMMEDIATE_QUALITY
                && self.estimate.is_none_or(|current| {
                    let at = |lag: usize| self.fast.by_lag.get(lag).copied().unwrap_or(0.0);
                    at(best_lag) > 2.0 * at(current)
                }));
        if quality < MIN_QUALITY || best_lag > self.max_lag || !convincing {
            self.candidate = None;
            self.candidate_hits = 0;
            return None;
        }
        if let Some(current) = self.estimate {
            if current.abs_diff(best_lag) <= SAME_LAG {
                self.candidate = None;
                self.candidate_hits = 0;
                return None;
            }
        }
        match self.candidate {
            Some(c) if c.abs_diff(best_lag) <= SAME_LAG => self.candidate_hits += 1,
            _ => {
                self.candidate = Some(best_lag);
                self.candidate_hits = 1;
            }
        }
        let first_and_clear = self.estimate.is_none() && quality >= IMMEDIATE_QUALITY;
        if self.candidate_hits >= 2 || first_and_clear {
            self.estimate = Some(best_lag);
            self.likeness = Likeness::default();
            self.candidate = None;
            self.candidate_hits = 0;
            return Some(best_lag);
        }
        None
    }
}
