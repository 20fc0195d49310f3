//! The data generator's random numbers: `SplitMix64`, written out here.
//!
//! Why our own: datasets must be byte-identical for a seed on every platform and every future
//! build. A crate's generator can change its stream between versions (and `rand`'s `StdRng`
//! documents that it may); `SplitMix64` (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014) is twelve lines, passes `BigCrush`, and its output is fixed by
//! its definition. Every room gets its own stream derived from (seed, room index), so room `i`
//! is the same whether 10 or 10 000 rooms are generated, and rooms can be made in parallel.

/// A `SplitMix64` stream.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The `SplitMix64` output function: a bijection that scatters nearby inputs.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed with a stream number, so that nearby streams (steps, turns, epochs) are
/// unrelated: the seed of stream `stream` under `seed`.
#[must_use]
pub fn mix(seed: u64, stream: u64) -> u64 {
    finalise(seed ^ stream.wrapping_mul(GAMMA))
}

impl Rng {
    /// The stream for a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for item `index` under `seed` (room `index`, restart `index`, …).
    #[must_use]
    pub fn derive(seed: u64, index: u64) -> Self {
        Self {
            state: finalise(seed ^ finalise(index.wrapping_add(GAMMA))),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        finalise(self.state)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`; `lo` when the range is empty.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        if hi <= lo {
            lo
        } else {
            lo + (hi - lo) * self.unit()
        }
    }

    /// Uniform integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        // Lemire's multiply-shift: bias below 2^-64 * n, irrelevant at our sizes.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform integer in `[lo, hi]`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniformly chosen element; `None` for an empty slice.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed_by_its_definition() {
        // Reference values of SplitMix64 seeded with 0 (the published test vector's first
        // outputs), so a change to the generator cannot go unnoticed.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn derived_streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|i| Rng::derive(7, i).next_u64()).collect();
        let b: Vec<u64> = (0..4).map(|i| Rng::derive(7, i).next_u64()).collect();
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn ranges_stay_in_range() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            let x = r.range(-2.0, 5.0);
            assert!((-2.0..5.0).contains(&x));
            assert!(r.below(7) < 7);
            assert!((3..=5).contains(&r.between(3, 5)));
        }
    }
}
