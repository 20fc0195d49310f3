//! Every random stream of a run, derived from the config's seed: the data order, the sampling
//! seeds of each step, turn and chunk, and the evaluation's sampling.
//!
//! A stream is [`mix`]`(seed, stream number)`, the same `SplitMix64` mixing the data generator
//! uses, so a checkpoint's step number is its whole random state and a resumed run on the CPU
//! reproduces the uninterrupted one.

use metaspatial_env::data::rng::{Rng, mix};

/// Stream of the supervised warm-start's example order.
const SFT_ORDER: u64 = 0x5F7;

/// Stream of the evaluation's sampling.
const EVAL_SAMPLING: u64 = 0xE7A1;

/// Stream of a fresh geometry connector's weights (above any step number's stream).
const GEOMETRY_INIT: u64 = 0x6E0 << 40;

/// Stream of a fresh world-model head's weights (above any step number's stream).
const WORLD_MODEL_INIT: u64 = 0x3D0 << 40;

/// Seed of the supervised warm-start's example order.
#[must_use]
pub fn sft_order(seed: u64) -> u64 {
    mix(seed, SFT_ORDER)
}

/// Base sampling seed of an evaluation.
#[must_use]
pub fn eval_sampling(seed: u64) -> u64 {
    mix(seed, EVAL_SAMPLING)
}

/// Seed of a fresh geometry connector's weights.
#[must_use]
pub fn geometry_init(seed: u64) -> u64 {
    mix(seed, GEOMETRY_INIT)
}

/// Seed of a fresh world-model head's weights.
#[must_use]
pub fn world_model_init(seed: u64) -> u64 {
    mix(seed, WORLD_MODEL_INIT)
}

/// Seed of 1-based GRPO `step`: its sampling base and the torch generator (dropout).
#[must_use]
pub fn step(seed: u64, step: u64) -> u64 {
    mix(seed, step)
}

/// Sampling seed of one generation call: turn `turn` of chunk `chunk` under the rollout's base.
#[must_use]
pub fn generation_call(base: u64, turn: usize, chunk: usize) -> u64 {
    mix(base, (turn as u64) << 32 | chunk as u64)
}

/// The data cursor: position p of the stream is item `order_e[p mod n]` of epoch e = p / n,
/// each epoch a fresh permutation drawn from (seed, e).
pub struct EpochOrder {
    n: usize,
    seed: u64,
    epoch: Option<u64>,
    order: Vec<usize>,
}

impl EpochOrder {
    /// The order of `n` items under `seed`.
    #[must_use]
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            seed,
            epoch: None,
            order: Vec::new(),
        }
    }

    /// The item at 0-based stream `position`.
    pub fn at(&mut self, position: u64) -> usize {
        let n = self.n as u64;
        let epoch = position / n;
        if self.epoch != Some(epoch) {
            self.order = (0..self.n).collect();
            Rng::new(mix(self.seed, epoch)).shuffle(&mut self.order);
            self.epoch = Some(epoch);
        }
        self.order[(position % n) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_splitmix_outputs_and_fixed() {
        // For seed 0, stream k is the k-th output of the generator: the two agree by definition.
        let mut rng = Rng::new(0);
        assert_eq!(mix(0, 1), rng.next_u64());
        assert_eq!(mix(0, 2), rng.next_u64());
        // Pinned, so that a change to the mixing (and to every run's data order) shows.
        assert_eq!(sft_order(7), 0x355B_DA8C_0CED_7599);
        assert_ne!(step(7, 1), step(7, 2));
        assert_ne!(generation_call(7, 1, 0), generation_call(7, 0, 1));
    }

    #[test]
    fn every_epoch_is_a_permutation_and_epochs_differ() {
        let mut order = EpochOrder::new(10, 3);
        let epochs: Vec<Vec<usize>> = (0..3)
            .map(|e| (0..10).map(|p| order.at(e * 10 + p)).collect())
            .collect();
        for epoch in &epochs {
            let mut sorted = epoch.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_ne!(epochs[1], epochs[2]);
    }

    #[test]
    fn a_position_is_the_same_whatever_was_read_before() {
        // A resumed run jumps straight to its step's positions; it must see what the
        // uninterrupted run saw there.
        let mut walked = EpochOrder::new(7, 11);
        let sequential: Vec<usize> = (0..30).map(|p| walked.at(p)).collect();
        let mut jumping = EpochOrder::new(7, 11);
        for p in (0..30).rev() {
            assert_eq!(jumping.at(p), sequential[p as usize]);
        }
    }
}
