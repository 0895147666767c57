//! A small real FFT for the block echo filter.
//!
//! The canceller only needs one transform size (64 real points), so a hand-written radix-2
//! FFT with precomputed twiddles is smaller than a dependency and allocation-free after
//! construction. A real transform of `n` points is computed as a complex transform of `n/2`
//! points (even samples in the real part, odd samples in the imaginary part) followed by the
//! usual split step, which halves the work compared with a complex FFT of real data.
//!
//! Conventions: `forward` is unnormalised, `inverse` divides by `n`, so
//! `inverse(forward(x)) == x`, `W = forward(w)` and `inverse(W ⊙ X)` is the circular
//! convolution of `w` and `x`. Spectra are stored split into real and imaginary arrays of
//! `n/2 + 1` bins (DC to Nyquist), which lets the filter loops vectorise.

use std::f64::consts::PI;

pub(crate) struct RealFft {
    /// Real transform size `n` (a power of two ≥ 4).
    size: usize,
    /// Bit-reversal permutation of the `n/2`-point complex transform, applied while loading
    /// the work arrays so the transform itself needs no swap pass.
    bit_reverse: Vec<usize>,
    /// Twiddles of the complex transform, stage by stage: for a butterfly span `s` the `s`
    /// values `e^{-iπ j/s}` (j < s) sit at `[s, 2s)`, so every stage's inner loop reads them
    /// contiguously.
    stage_twiddle_re: Vec<f32>,
    stage_twiddle_im: Vec<f32>,
    /// `e^{-2πi k/n}` for `k ≤ n/2`: twiddles of the real split step.
    split_twiddle_re: Vec<f32>,
    split_twiddle_im: Vec<f32>,
    /// Work arrays of the complex transform (`n/2` each).
    work_re: Vec<f32>,
    work_im: Vec<f32>,
}

impl RealFft {
    /// A transform of `size` real points. `size` is rounded up to a power of two ≥ 4.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(4).next_power_of_two();
        let half = size / 2;
        let bits = half.trailing_zeros();
        let bit_reverse = (0..half)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }
            })
            .collect();
        let mut stage_twiddle_re = vec![0.0; half.max(2)];
        let mut stage_twiddle_im = vec![0.0; half.max(2)];
        let mut span = 1;
        while span < half {
            for j in 0..span {
                let angle = -PI * j as f64 / span as f64;
                stage_twiddle_re[span + j] = angle.cos() as f32;
                stage_twiddle_im[span + j] = angle.sin() as f32;
            }
            span *= 2;
        }
        let split_angle = |k: usize| -2.0 * PI * k as f64 / size as f64;
        Self {
            size,
            bit_reverse,
            stage_twiddle_re,
            stage_twiddle_im,
            split_twiddle_re: (0..=half).map(|k| split_angle(k).cos() as f32).collect(),
            split_twiddle_im: (0..=half).map(|k| split_angle(k).sin() as f32).collect(),
            work_re: vec![0.0; half],
            work_im: vec![0.0; half],
        }
    }

    /// Number of spectrum bins (`n/2 + 1`).
    #[cfg(test)]
    pub(crate) fn bins(&self) -> usize {
        self.size / 2 + 1
    }

    /// Spectrum of `input` (`size` samples) into `out_re`/`out_im` (`bins` each).
    /// Shorter slices are treated as zero-padded / truncated; nothing panics.
    pub(crate) fn forward(&mut self, input: &[f32], out_re: &mut [f32], out_im: &mut [f32]) {
        let half = self.size / 2;
        for (k, &slot) in self.bit_reverse.iter().enumerate() {
            self.work_re[slot] = input.get(2 * k).copied().unwrap_or(0.0);
            self.work_im[slot] = input.get(2 * k + 1).copied().unwrap_or(0.0);
        }
        self.complex_forward();
        // Split: X[k] = E[k] + W^k·O[k] with E, O the spectra of the even and odd samples,
        // recovered from Z[k] and conj(Z[half-k]).
        let bins = out_re.len().min(out_im.len()).min(half + 1);
        for k in 0..bins {
            // Z[half] is Z[0] (periodicity); index without a modulo in the loop.
            let a = if k == half { 0 } else { k };
            let b = if k == 0 { 0 } else { half - k };
            let (ar, ai) = (self.work_re[a], self.work_im[a]);
            let (br, bi) = (self.work_re[b], -self.work_im[b]);
            let (even_re, even_im) = (0.5 * (ar + br), 0.5 * (ai + bi));
            let (odd_re, odd_im) = (0.5 * (ai - bi), -0.5 * (ar - br));
            let (wr, wi) = (self.split_twiddle_re[k], self.split_twiddle_im[k]);
            out_re[k] = even_re + wr * odd_re - wi * odd_im;
            out_im[k] = even_im + wr * odd_im + wi * odd_re;
        }
    }

    /// Real signal (`size` samples) of the spectrum `in_re`/`in_im` (`bins` each), scaled by
    /// `1/size`. The imaginary parts of DC and Nyquist are ignored, as for any real signal.
    pub(crate) fn inverse(&mut self, in_re: &[f32], in_im: &[f32], out: &mut [f32]) {
        let half = self.size / 2;
        let bin = |spec: &[f32], k: usize| spec.get(k).copied().unwrap_or(0.0);
        for k in 0..half {
            let (ar, ai) = (bin(in_re, k), bin(in_im, k));
            let (br, bi) = (bin(in_re, half - k), -bin(in_im, half - k));
            let (even_re, even_im) = (0.5 * (ar + br), 0.5 * (ai + bi));
            let (diff_re, diff_im) = (0.5 * (ar - br), 0.5 * (ai - bi));
            // O[k] = (X[k] - conj(X[half-k]))/2 · W^{-k}
            let (wr, wi) = (self.split_twiddle_re[k], -self.split_twiddle_im[k]);
            let odd_re = diff_re * wr - diff_im * wi;
            let odd_im = diff_re * wi + diff_im * wr;
            // Z = E + i·O; the complex inverse is done as conj(FFT(conj(Z))), loaded in
            // bit-reversed order.
            let slot = self.bit_reverse[k];
            self.work_re[slot] = even_re - odd_im;
            self.work_im[slot] = -(even_im + odd_re);
        }
        self.complex_forward();
        let scale = 1.0 / half as f32;
        for (k, (re, im)) in self.work_re.iter().zip(&self.work_im).enumerate() {
            if let Some(slot) = out.get_mut(2 * k) {
                *slot = re * scale;
            }
            if let Some(slot) = out.get_mut(2 * k + 1) {
                *slot = -im * scale;
            }
        }
    }

    /// In-place iterative radix-2 decimation-in-time FFT of `work_re`/`work_im`, whose
    /// input is already in bit-reversed order.
    fn complex_forward(&mut self) {
        let half = self.work_re.len();
        if half < 4 {
            self.radix2_stages(1);
            return;
        }
        // Spans 1 and 2 together as one radix-4 pass: their twiddles are 1 and −i, and
        // their inner loops would be too short to vectorise on their own.
        for (re, im) in self
            .work_re
            .chunks_exact_mut(4)
            .zip(self.work_im.chunks_exact_mut(4))
        {
            let (b0r, b0i) = (re[0] + re[1], im[0] + im[1]);
            let (b1r, b1i) = (re[0] - re[1], im[0] - im[1]);
            let (b2r, b2i) = (re[2] + re[3], im[2] + im[3]);
            let (b3r, b3i) = (re[2] - re[3], im[2] - im[3]);
            re[0] = b0r + b2r;
            im[0] = b0i + b2i;
            re[2] = b0r - b2r;
            im[2] = b0i - b2i;
            // (−i)·b3 = (b3i, −b3r)
            re[1] = b1r + b3i;
            im[1] = b1i - b3r;
            re[3] = b1r - b3i;
            im[3] = b1i + b3r;
        }
        self.radix2_stages(4);
    }

    /// Radix-2 stages from butterfly span `first_span` up.
    fn radix2_stages(&mut self, first_span: usize) {
        let half = self.work_re.len();
        let mut span = first_span;
        while span < half {
            let twiddle_re = &self.stage_twiddle_re[span..2 * span];
            let twiddle_im = &self.stage_twiddle_im[span..2 * span];
            for (group_re, group_im) in self
                .work_re
                .chunks_exact_mut(2 * span)
                .zip(self.work_im.chunks_exact_mut(2 * span))
            {
                let (lo_re, hi_re) = group_re.split_at_mut(span);
                let (lo_im, hi_im) = group_im.split_at_mut(span);
                for j in 0..span {
                    let (wr, wi) = (twiddle_re[j], twiddle_im[j]);
                    let (br, bi) = (hi_re[j], hi_im[j]);
                    let tr = wr * br - wi * bi;
                    let ti = wr * bi + wi * br;
                    let (ar, ai) = (lo_re[j], lo_im[j]);
                    hi_re[j] = ar - tr;
                    hi_im[j] = ai - ti;
                    lo_re[j] = ar + tr;
                    lo_im[j] = ai + ti;
                }
            }
            span *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct DFT, the reference the fast transform must match.
    fn dft(x: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let n = x.len();
        (0..=n / 2)
            .map(|k| {
                x.iter().enumerate().fold((0.0, 0.0), |(re, im), (t, &v)| {
                    let angle = -2.0 * PI * (k * t) as f64 / n as f64;
                    (re + v as f64 * angle.cos(), im + v as f64 * angle.sin())
                })
            })
            .unzip()
    }

    fn test_signal(n: usize) -> Vec<f32> {
        (0..n)
            .map(|t| ((t * 7919 + 13) % 101) as f32 - 50.0 + (t as f32 * 0.3).sin() * 20.0)
            .collect()
    }

    #[test]
    fn forward_matches_direct_dft_for_several_sizes() {
        for n in [4, 8, 16, 64, 128] {
            let x = test_signal(n);
            let mut fft = RealFft::new(n);
            let (mut re, mut im) = (vec![0.0; fft.bins()], vec![0.0; fft.bins()]);
            fft.forward(&x, &mut re, &mut im);
            let (ref_re, ref_im) = dft(&x);
            for k in 0..fft.bins() {
                assert!((re[k] as f64 - ref_re[k]).abs() < 1e-2, "n={n} k={k} re");
                assert!((im[k] as f64 - ref_im[k]).abs() < 1e-2, "n={n} k={k} im");
            }
        }
    }

    #[test]
    fn inverse_undoes_forward() {
        let n = 64;
        let x = test_signal(n);
        let mut fft = RealFft::new(n);
        let (mut re, mut im) = (vec![0.0; fft.bins()], vec![0.0; fft.bins()]);
        fft.forward(&x, &mut re, &mut im);
        let mut back = vec![0.0; n];
        fft.inverse(&re, &im, &mut back);
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn product_of_spectra_is_circular_convolution() {
        let n = 16;
        let x = test_signal(n);
        let mut h = vec![0.0; n];
        h[0] = 1.0;
        h[3] = -0.5;
        let mut fft = RealFft::new(n);
        let b = fft.bins();
        let (mut xr, mut xi, mut hr, mut hi) =
            (vec![0.0; b], vec![0.0; b], vec![0.0; b], vec![0.0; b]);
        fft.forward(&x, &mut xr, &mut xi);
        fft.forward(&h, &mut hr, &mut hi);
        let yr: Vec<f32> = (0..b).map(|k| xr[k] * hr[k] - xi[k] * hi[k]).collect();
        let yi: Vec<f32> = (0..b).map(|k| xr[k] * hi[k] + xi[k] * hr[k]).collect();
        let mut y = vec![0.0; n];
        fft.inverse(&yr, &yi, &mut y);
        for t in 0..n {
            let expected = x[t] - 0.5 * x[(t + n - 3) % n];
            assert!(
                (y[t] - expected).abs() < 1e-3,
                "t={t}: {} vs {expected}",
                y[t]
            );
        }
    }

    #[test]
    fn short_slices_do_not_panic() {
        let mut fft = RealFft::new(8);
        let (mut re, mut im) = (vec![0.0; 2], vec![0.0; 5]);
        fft.forward(&[1.0, 2.0], &mut re, &mut im);
        assert_eq!(re[0], 3.0);
        let mut out = vec![0.0; 3];
        fft.inverse(&[8.0], &[], &mut out);
        assert_eq!(out, vec![1.0, 1.0, 1.0]);
    }
}
