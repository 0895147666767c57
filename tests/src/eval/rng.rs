//! A small seeded PRNG (xoshiro256** seeded through SplitMix64), written out here so the corpus
//! stays byte-identical for a seed no matter which version of the `rand` crate is in the tree.

use std::f64::consts::TAU;

/// Deterministic pseudo-random source for the corpus and the echo paths.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for a named sub-stream of `seed` (FNV-1a of `tag` mixed in), so every call, every
/// noise bed and every echo path has its own stream and adding one does not shift the others.
pub fn derive_seed(seed: u64, tag: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in tag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut x = seed ^ h.rotate_left(17);
    splitmix64(&mut x)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let state = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Rng { state }
    }

    /// `Rng::new(derive_seed(seed, tag))`.
    pub fn derive(seed: u64, tag: &str) -> Rng {
        Rng::new(derive_seed(seed, tag))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.f64() * n as f64) as usize % n
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(f64::MIN_POSITIVE);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    /// A uniformly chosen element; None for an empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// A seed for a child stream (fits in 53 bits, so it survives JSON readers that use f64).
    pub fn child_seed(&mut self) -> u64 {
        self.next_u64() >> 11
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(43);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(derive_seed(1, "a"), derive_seed(1, "b"));
        assert_ne!(derive_seed(1, "a"), derive_seed(2, "a"));
        assert_eq!(derive_seed(7, "call-3"), derive_seed(7, "call-3"));
    }

    #[test]
    fn distributions_have_the_right_moments_and_bounds() {
        let mut r = Rng::new(1);
        let n = 100_000;
        let u: Vec<f64> = (0..n).map(|_| r.f64()).collect();
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "uniform mean {mean}");
        let g: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let gm = g.iter().sum::<f64>() / n as f64;
        let gv = g.iter().map(|x| (x - gm) * (x - gm)).sum::<f64>() / n as f64;
        assert!(
            gm.abs() < 0.02 && (gv - 1.0).abs() < 0.03,
            "normal {gm} {gv}"
        );
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert_eq!(r.below(0), 0);
        assert!((0..1000)
            .map(|_| r.range(-3.0, 5.0))
            .all(|x| (-3.0..5.0).contains(&x)));
        assert!(r.pick::<u8>(&[]).is_none());
        assert_eq!(r.pick(&[9]), Some(&9));
        assert!(r.child_seed() < (1u64 << 53));
    }
}
