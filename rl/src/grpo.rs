//! Group-relative policy optimisation: advantages over a group of G samples of one room, and
//! the clipped policy loss with a KL penalty to the reference policy.
//!
//! References: Shao et al. 2024, "`DeepSeekMath`" (GRPO); Yu et al. 2025, "DAPO" (asymmetric
//! clipping, token-level aggregation); Liu et al. 2025, "Understanding R1-Zero-Like Training"
//! (Dr. GRPO: no std scaling, constant divisor); Schulman 2020, "Approximating KL divergence"
//! (k1, k2, k3); Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep
//! Reinforcement Learning" (dual clip); `MetaSpatial` (discounted multi-turn returns, γ = 0.9).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::credit::Normaliser;

/// Added to the group's standard deviation before dividing, as in GRPO implementations.
pub const STD_EPSILON: f64 = 1e-6;

/// Log-ratios are clamped to ±this before they are exponentiated (verl's bound): far-off tokens
/// then give a large but finite ratio and k3, with no gradient beyond the bound.
pub const LOG_RATIO_BOUND: f64 = 20.0;

/// The per-token k3 estimate is clamped to ±this (verl's bound), so one token cannot dominate.
pub const K3_BOUND: f64 = 10.0;

/// How a trajectory's rewards become advantages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AdvantageMode {
    /// The final turn's reward, normalised across the G trajectories of a room; every turn of
    /// a trajectory gets its trajectory's advantage.
    Outcome,
    /// `MetaSpatial`'s discounted mean over turns, `Σ γ^i r_i / Σ γ^i`, normalised across the
    /// group; every turn of a trajectory gets its trajectory's advantage.
    Discounted {
        /// Discount per turn (`MetaSpatial` uses 0.9).
        gamma: f64,
    },
    /// Turn t's reward normalised across the trajectories of the group that reached turn t.
    PerTurn,
    /// `MetaSpatial`'s 3D-SPO: [`AdvantageMode::Outcome`], except that the tokens writing each
    /// object's coordinates get the outcome reward lowered by that object's own penalty (see
    /// [`crate::credit`]).
    Object {
        /// How much of `|R|` a fully penalised object loses, in `[0, 1]`.
        strength: f64,
    },
}

/// Advantages of one group: `values[trajectory][turn]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAdvantages {
    /// One advantage per turn of each trajectory (same shape as the rewards).
    pub values: Vec<Vec<f64>>,
    /// Whether every normalisation in the group saw rewards with zero variance, so that the
    /// group carries no learning signal (all its advantages are 0).
    pub zero_variance: bool,
    /// How the outcome rewards were normalised (modes normalising one value per trajectory,
    /// when the group has signal).
    pub normaliser: Option<Normaliser>,
}

/// Group-relative advantages of one room's G trajectories.
///
/// `rewards[trajectory][turn]` holds the reward of each turn; trajectories may have different
/// numbers of turns (episodes stop early when the layout is valid) but none may be empty.
/// With `scale_by_std` the centred rewards are divided by the group's sample standard deviation
/// (Bessel-corrected, as `torch.std`) plus [`STD_EPSILON`]; without it they are only centred
/// (Dr. GRPO). A group whose rewards are all equal gets zero advantages.
#[must_use]
pub fn group_advantages(
    rewards: &[Vec<f64>],
    mode: AdvantageMode,
    scale_by_std: bool,
) -> GroupAdvantages {
    assert!(
        rewards.iter().all(|r| !r.is_empty()),
        "every trajectory has at least one turn"
    );
    match mode {
        AdvantageMode::Outcome
        | AdvantageMode::Discounted { .. }
        | AdvantageMode::Object { .. } => {
            let returns: Vec<f64> = rewards
                .iter()
                .map(|turns| match mode {
                    AdvantageMode::Discounted { gamma } => discounted_mean(turns, gamma),
                    _ => *turns.last().expect("non-empty"),
                })
                .collect();
            let (normalised, normaliser) = normalise(&returns, scale_by_std);
            let values = rewards
                .iter()
                .zip(normalised)
                .map(|(turns, advantage)| vec![advantage; turns.len()])
                .collect();
            GroupAdvantages {
                values,
                zero_variance: normaliser.is_none(),
                normaliser,
            }
        }
        AdvantageMode::PerTurn => {
            let max_turns = rewards.iter().map(Vec::len).max().unwrap_or(0);
            let mut values: Vec<Vec<f64>> = rewards.iter().map(|t| vec![0.0; t.len()]).collect();
            let mut zero_variance = true;
            for turn in 0..max_turns {
                let reached: Vec<usize> = (0..rewards.len())
                    .filter(|&i| rewards[i].len() > turn)
                    .collect();
                let column: Vec<f64> = reached.iter().map(|&i| rewards[i][turn]).collect();
                let (normalised, normaliser) = normalise(&column, scale_by_std);
                zero_variance &= normaliser.is_none();
                for (&i, advantage) in reached.iter().zip(normalised) {
                    values[i][turn] = advantage;
                }
            }
            GroupAdvantages {
                values,
                zero_variance,
                normaliser: None,
            }
        }
    }
}

/// `Σ γ^i r_i / Σ γ^i` over the turns of one trajectory.
#[must_use]
pub fn discounted_mean(rewards: &[f64], gamma: f64) -> f64 {
    let (mut weighted, mut total, mut weight) = (0.0, 0.0, 1.0);
    for reward in rewards {
        weighted += weight * reward;
        total += weight;
        weight *= gamma;
    }
    weighted / total
}

/// Centres (and optionally scales) values; returns zeros and no normaliser when they are all
/// equal.
fn normalise(values: &[f64], scale_by_std: bool) -> (Vec<f64>, Option<Normaliser>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Exact equality: a group of identical rewards has no signal, however they were computed.
    #[allow(clippy::float_cmp)]
    let zero_variance = values.iter().all(|&v| v == values[0]);
    if zero_variance {
        return (vec![0.0; values.len()], None);
    }
    let denominator = if scale_by_std {
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        variance.sqrt() + STD_EPSILON
    } else {
        1.0
    };
    let normaliser = Normaliser { mean, denominator };
    (
        values
            .iter()
            .map(|&v| normaliser.advantage(v, 0.0, 0.0))
            .collect(),
        Some(normaliser),
    )
}

/// Estimator of KL(π ‖ `π_ref`) per token, from log-probabilities of the sampled tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KlEstimator {
    /// `log π − log π_ref`: unbiased, high variance, can be negative.
    K1,
    /// `½ (log π − log π_ref)²`: biased, low variance, non-negative.
    K2,
    /// `π_ref/π − log(π_ref/π) − 1`: unbiased, low variance, non-negative (GRPO's choice).
    /// The log-ratio is clamped to ±[`LOG_RATIO_BOUND`] and the estimate to ±[`K3_BOUND`].
    K3,
}

impl KlEstimator {
    /// Per-token estimate; both inputs have the same shape.
    pub fn estimate(self, logp: &Tensor, ref_logp: &Tensor) -> Tensor {
        let log_ratio = logp - ref_logp;
        match self {
            Self::K1 => log_ratio,
            Self::K2 => log_ratio.square() * 0.5,
            Self::K3 => {
                let ref_over_policy = (-log_ratio).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND);
                (ref_over_policy.exp() - &ref_over_policy - 1.0).clamp(-K3_BOUND, K3_BOUND)
            }
        }
    }
}

/// How per-token losses of a batch are reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LossAggregation {
    /// Sum over every unmasked token of the batch, divided by their count (DAPO).
    TokenMean,
    /// Mean over tokens within each sequence, then mean over sequences (original GRPO).
    SeqMeanTokenMean,
    /// Sum over tokens within each sequence divided by a constant, then mean over sequences
    /// (Dr. GRPO; the constant is typically the maximum response length).
    SeqMeanTokenSum {
        /// The constant divisor.
        divisor: f64,
    },
}

impl LossAggregation {
    /// Reduces `values` (batch, tokens) under `mask` (batch, tokens; 1 = counts) to a scalar.
    ///
    /// Every row counts in the sequence means, so a row with no unmasked token would add 0 and
    /// still count; the update never passes one (truncated turns, when masked, and empty
    /// responses are left out of the batch before it is scored).
    pub fn reduce(self, values: &Tensor, mask: &Tensor) -> Tensor {
        let masked = values * mask;
        match self {
            Self::TokenMean => masked.sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0),
            Self::SeqMeanTokenMean => {
                let per_seq = masked.sum_dim_intlist(-1, false, Kind::Float)
                    / mask.sum_dim_intlist(-1, false, Kind::Float).clamp_min(1.0);
                per_seq.mean(Kind::Float)
            }
            Self::SeqMeanTokenSum { divisor } => {
                (masked.sum_dim_intlist(-1, false, Kind::Float) / divisor).mean(Kind::Float)
            }
        }
    }
}

/// Settings of the clipped policy loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// Lower clip range: the ratio is kept above `1 − clip_low`.
    pub clip_low: f64,
    /// Upper clip range: the ratio is kept below `1 + clip_high` (DAPO raises it).
    pub clip_high: f64,
    /// Dual clip `c` (> 1): a negative-advantage token's loss is capped at `−c·A`, so a ratio
    /// that grew far past 1 stops pushing (verl's `clip_ratio_c`, typically 3).
    pub clip_dual: Option<f64>,
    /// Weight of the KL penalty in the loss (0 disables it and the reference pass).
    pub kl_coef: f64,
    /// KL estimator.
    pub kl_estimator: KlEstimator,
    /// Weight of the entropy bonus (subtracted from the loss).
    pub entropy_coef: f64,
    /// Reduction over tokens and sequences.
    pub aggregation: LossAggregation,
}

/// Token-level inputs of the loss, all shaped (batch, response tokens).
#[derive(Debug)]
pub struct LossInputs<'a> {
    /// Log-probabilities of the sampled tokens under the policy being trained (with grad).
    pub logp: &'a Tensor,
    /// The same under the policy that sampled them (no grad).
    pub old_logp: &'a Tensor,
    /// The same under the reference policy, when the KL term is on.
    pub ref_logp: Option<&'a Tensor>,
    /// Advantage of each token (its turn's advantage).
    pub advantages: &'a Tensor,
    /// 1 for tokens that count, 0 for the padding beyond each response.
    pub mask: &'a Tensor,
    /// Per-token entropy of the policy, when the entropy bonus is on.
    pub entropy: Option<&'a Tensor>,
}

/// The loss and what to log about it.
#[derive(Debug)]
pub struct PolicyLoss {
    /// Scalar to differentiate.
    pub loss: Tensor,
    /// The clipped surrogate part alone.
    pub policy: f64,
    /// Mean KL estimate over counted tokens (0 without a reference).
    pub kl: f64,
    /// Mean entropy over counted tokens (0 without entropies).
    pub entropy: f64,
    /// Fraction of counted tokens whose gradient a clip cut (the ratio clip or the dual clip).
    pub clip_fraction: f64,
    /// Largest `|log π − log π_old|` over counted tokens (0 when the ratio is 1 everywhere).
    pub max_log_ratio: f64,
}

/// The clipped surrogate `−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A)`, capped at `−c·A` for
/// negative advantages under the dual clip, plus `β·KL − c_H·H`, reduced by the configured
/// aggregation. `ρ = exp(log π − log π_old)` with the log-ratio clamped to ±[`LOG_RATIO_BOUND`].
#[must_use]
pub fn policy_loss(inputs: &LossInputs<'_>, config: &LossConfig) -> PolicyLoss {
    let mask = inputs.mask;
    let log_ratio = inputs.logp - inputs.old_logp;
    let max_log_ratio = (log_ratio.detach().abs() * mask).max().double_value(&[]);
    let ratio = log_ratio.clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND).exp();
    let unclipped = &ratio * inputs.advantages;
    let clipped = ratio.clamp(1.0 - config.clip_low, 1.0 + config.clip_high) * inputs.advantages;
    let mut surrogate = -unclipped.minimum(&clipped);
    let mut cut = clipped.lt_tensor(&unclipped);
    if let Some(c) = config.clip_dual {
        let cap = -(inputs.advantages * c);
        let dual = inputs
            .advantages
            .lt(0.0)
            .logical_and(&surrogate.gt_tensor(&cap));
        surrogate = cap.where_self(&dual, &surrogate);
        cut = cut.logical_or(&dual);
    }
    let policy = config.aggregation.reduce(&surrogate, mask);
    let token_mean = |t: &Tensor| -> f64 {
        let t = t.detach() * mask;
        t.sum(Kind::Double).double_value(&[]) / mask.sum(Kind::Double).double_value(&[]).max(1.0)
    };
    let clip_fraction = token_mean(&cut.to_kind(Kind::Float));
    let mut loss = policy.shallow_clone();
    let mut kl = 0.0;
    if let Some(ref_logp) = inputs.ref_logp {
        let estimate = config.kl_estimator.estimate(inputs.logp, ref_logp);
        kl = token_mean(&estimate);
        if config.kl_coef != 0.0 {
            loss += config.aggregation.reduce(&estimate, mask) * config.kl_coef;
        }
    }
    let mut entropy = 0.0;
    if let Some(per_token) = inputs.entropy {
        entropy = token_mean(per_token);
        if config.entropy_coef != 0.0 {
            loss -= config.aggregation.reduce(per_token, mask) * config.entropy_coef;
        }
    }
    PolicyLoss {
        policy: policy.double_value(&[]),
        loss,
        kl,
        entropy,
        clip_fraction,
        max_log_ratio,
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the asserted values are exact
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn outcome_advantages_use_the_last_turn_and_sample_std() {
        // Last-turn rewards 1, 2, 3: mean 2, sample std 1.
        let rewards = vec![vec![9.0, 1.0], vec![2.0], vec![0.0, 0.0, 3.0]];
        let adv = group_advantages(&rewards, AdvantageMode::Outcome, true);
        assert!(!adv.zero_variance);
        let expected = [-1.0 / (1.0 + STD_EPSILON), 0.0, 1.0 / (1.0 + STD_EPSILON)];
        for (turns, e) in adv.values.iter().zip(expected) {
            assert!(turns.iter().all(|&a| close(a, e)), "{turns:?} vs {e}");
        }
        assert_eq!(adv.values[2].len(), 3);
    }

    #[test]
    fn without_std_scaling_advantages_are_only_centred() {
        let rewards = vec![vec![1.0], vec![4.0]];
        let adv = group_advantages(&rewards, AdvantageMode::Outcome, false);
        assert_eq!(adv.values, vec![vec![-1.5], vec![1.5]]);
    }

    #[test]
    fn zero_variance_groups_get_zero_advantages() {
        let rewards = vec![vec![0.5], vec![0.5], vec![0.5]];
        for mode in [
            AdvantageMode::Outcome,
            AdvantageMode::PerTurn,
            AdvantageMode::Discounted { gamma: 0.9 },
            AdvantageMode::Object { strength: 0.5 },
        ] {
            let adv = group_advantages(&rewards, mode, true);
            assert!(adv.zero_variance, "{mode:?}");
            assert!(adv.values.iter().flatten().all(|&a| a == 0.0));
        }
    }

    #[test]
    fn discounted_mean_matches_metaspatial_formula() {
        // (1 + 0.9·2 + 0.81·3) / (1 + 0.9 + 0.81) = 5.23 / 2.71
        assert!(close(discounted_mean(&[1.0, 2.0, 3.0], 0.9), 5.23 / 2.71));
        let rewards = vec![vec![1.0, 2.0, 3.0], vec![1.0]];
        let adv = group_advantages(&rewards, AdvantageMode::Discounted { gamma: 0.9 }, false);
        let centred = (5.23 / 2.71 - 1.0) / 2.0;
        assert!(close(adv.values[0][2], centred) && close(adv.values[1][0], -centred));
    }

    #[test]
    fn per_turn_advantages_normalise_each_turn_over_the_trajectories_that_reached_it() {
        // Turn 0: [0, 2, 4] → mean 2, std 2; turn 1: [1, 3] → mean 2, std √2; turn 2: only one.
        let rewards = vec![vec![0.0, 1.0, 7.0], vec![2.0, 3.0], vec![4.0]];
        let adv = group_advantages(&rewards, AdvantageMode::PerTurn, true);
        let s2 = 2f64.sqrt() + STD_EPSILON;
        assert!(close(adv.values[0][0], -2.0 / (2.0 + STD_EPSILON)));
        assert!(close(adv.values[2][0], 2.0 / (2.0 + STD_EPSILON)));
        assert!(close(adv.values[0][1], -1.0 / s2) && close(adv.values[1][1], 1.0 / s2));
        assert_eq!(
            adv.values[0][2], 0.0,
            "a turn only one trajectory reached has no signal"
        );
        assert!(!adv.zero_variance);
    }

    /// Symmetric ε = 0.2, token-mean, no KL or entropy term: tests change only what they test.
    fn plain_config() -> LossConfig {
        LossConfig {
            clip_low: 0.2,
            clip_high: 0.2,
            clip_dual: None,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
            aggregation: LossAggregation::TokenMean,
        }
    }

    fn t(rows: &[&[f64]]) -> Tensor {
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.iter().map(|&v| v as f32))
            .collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, rows[0].len() as i64])
    }

    #[test]
    fn kl_estimators_match_their_formulas() {
        let logp = t(&[&[-1.0, -2.0]]);
        let ref_logp = t(&[&[-1.5, -1.0]]);
        let values = |k: KlEstimator| -> Vec<f32> {
            Vec::<f32>::try_from(k.estimate(&logp, &ref_logp).flatten(0, -1)).unwrap()
        };
        // log ratio = [0.5, -1.0]
        assert_eq!(values(KlEstimator::K1), vec![0.5, -1.0]);
        assert_eq!(values(KlEstimator::K2), vec![0.125, 0.5]);
        let k3 = values(KlEstimator::K3);
        let expected = [(-0.5f64).exp() + 0.5 - 1.0, 1f64.exp() - 1.0 - 1.0];
        for (a, b) in k3.iter().zip(expected) {
            assert!(close(f64::from(*a), b), "{a} vs {b}");
        }
    }

    #[test]
    fn aggregations_reduce_as_specified() {
        let values = t(&[&[1.0, 2.0, 3.0], &[4.0, 0.0, 0.0]]);
        let mask = t(&[&[1.0, 1.0, 1.0], &[1.0, 0.0, 0.0]]);
        let v = |a: LossAggregation| a.reduce(&values, &mask).double_value(&[]);
        assert!(close(v(LossAggregation::TokenMean), 10.0 / 4.0));
        assert!(close(
            v(LossAggregation::SeqMeanTokenMean),
            f64::midpoint(2.0, 4.0)
        ));
        assert!(close(
            v(LossAggregation::SeqMeanTokenSum { divisor: 3.0 }),
            f64::midpoint(6.0 / 3.0, 4.0 / 3.0)
        ));
    }

    #[test]
    fn clipping_is_asymmetric_and_pessimistic() {
        let ln = |x: f64| x.ln();
        // Ratio 1.5 with A = 1: capped at 1 + 0.28, loss −1.28. Ratio 0.5 with A = −1: the
        // pessimistic term is clip(0.5)·A = −0.8, loss 0.8. Ratio 1.1 with A = 2 is inside the
        // range: loss −2.2.
        let old = t(&[&[0.0, 0.0, 0.0]]);
        let logp = t(&[&[ln(1.5), ln(0.5), ln(1.1)]]);
        let adv = t(&[&[1.0, -1.0, 2.0]]);
        let mask = t(&[&[1.0, 1.0, 1.0]]);
        let config = LossConfig {
            clip_high: 0.28,
            ..plain_config()
        };
        let inputs = LossInputs {
            logp: &logp,
            old_logp: &old,
            ref_logp: None,
            advantages: &adv,
            mask: &mask,
            entropy: None,
        };
        let out = policy_loss(&inputs, &config);
        let expected = (-1.28 + 0.8 - 2.2) / 3.0;
        assert!(
            (out.loss.double_value(&[]) - expected).abs() < 1e-5,
            "{}",
            out.loss.double_value(&[])
        );
        assert!((out.clip_fraction - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn the_dual_clip_caps_negative_advantage_losses_only() {
        // Ratio 5 with A = −1: the surrogate −min(5·−1, 1.2·−1) = 5 is capped at c·|A| = 3 with
        // no gradient. Ratio 5 with A = +1 is left to the ordinary clip (loss −1.2). Ratio 2 with
        // A = −1 stays under the cap (loss 2).
        let logp = t(&[&[5f64.ln(), 5f64.ln(), 2f64.ln()]]).set_requires_grad(true);
        let old = t(&[&[0.0, 0.0, 0.0]]);
        let adv = t(&[&[-1.0, 1.0, -1.0]]);
        let mask = t(&[&[1.0, 1.0, 1.0]]);
        let inputs = LossInputs {
            logp: &logp,
            old_logp: &old,
            ref_logp: None,
            advantages: &adv,
            mask: &mask,
            entropy: None,
        };
        let plain = policy_loss(&inputs, &plain_config());
        assert!(close(plain.loss.double_value(&[]), (5.0 - 1.2 + 2.0) / 3.0));
        assert!(close(plain.clip_fraction, 1.0 / 3.0));
        let config = LossConfig {
            clip_dual: Some(3.0),
            ..plain_config()
        };
        let dual = policy_loss(&inputs, &config);
        assert!(close(dual.loss.double_value(&[]), (3.0 - 1.2 + 2.0) / 3.0));
        assert!(close(dual.clip_fraction, 2.0 / 3.0));
        assert!(close(dual.max_log_ratio, 5f64.ln()));
        dual.loss.backward();
        let grad = Vec::<f32>::try_from(logp.grad().flatten(0, -1)).unwrap();
        // Only the third token (unclipped, ρA = −2) carries a gradient: ∂/∂logp of 2ρ/3… = 2/3.
        assert_eq!(grad[..2], [0.0, 0.0]);
        assert!(close(f64::from(grad[2]), 2.0 / 3.0), "{grad:?}");
    }

    #[test]
    fn ratio_and_k3_stay_finite_far_from_the_old_and_reference_policies() {
        let bound = LOG_RATIO_BOUND;
        let k3_at = |x: f64| ((-x).exp() + x - 1.0).clamp(-K3_BOUND, K3_BOUND);
        for far in [50.0, 100.0] {
            let mut logp = t(&[&[far, -far, far, -far]]).set_requires_grad(true);
            let zeros = t(&[&[0.0, 0.0, 0.0, 0.0]]);
            let adv = t(&[&[1.0, 1.0, -1.0, -1.0]]);
            let mask = t(&[&[1.0, 1.0, 1.0, 1.0]]);
            let k3 = KlEstimator::K3.estimate(&logp, &zeros);
            let k3 = Vec::<f32>::try_from(k3.detach().flatten(0, -1)).unwrap();
            // The log-ratio is clamped to ±20 first (e^20 − 21 and e^−20 + 19), then k3 to ±10.
            let expected = [k3_at(bound), k3_at(-bound), k3_at(bound), k3_at(-bound)];
            for (got, want) in k3.iter().zip(expected) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-4,
                    "{far}: {k3:?} vs {expected:?}"
                );
            }
            for clip_dual in [None, Some(3.0)] {
                let config = LossConfig {
                    clip_dual,
                    kl_coef: 0.1,
                    ..plain_config()
                };
                let out = policy_loss(
                    &LossInputs {
                        logp: &logp,
                        old_logp: &zeros,
                        ref_logp: Some(&zeros),
                        advantages: &adv,
                        mask: &mask,
                        entropy: None,
                    },
                    &config,
                );
                // Tokens: ρ = e^20, A = 1 → −1.2; ρ = e^−20, A = 1 → −e^−20; ρ = e^20, A = −1 →
                // e^20 (3 under the dual clip); ρ = e^−20, A = −1 → 0.8.
                let third = clip_dual.unwrap_or(bound.exp());
                let policy = (-1.2 - (-bound).exp() + third + 0.8) / 4.0;
                let kl = expected.iter().sum::<f64>() / 4.0;
                let loss = out.loss.double_value(&[]);
                assert!(
                    loss.is_finite() && out.kl.is_finite(),
                    "{far} {clip_dual:?}"
                );
                assert!(
                    ((loss - policy - 0.1 * kl) / loss).abs() < 1e-5,
                    "{far} {clip_dual:?}: {loss} vs {}",
                    policy + 0.1 * kl
                );
                assert!(close(out.max_log_ratio, far));
                logp.zero_grad();
                out.loss.backward();
                let grad = Vec::<f32>::try_from(logp.grad().flatten(0, -1)).unwrap();
                assert!(grad.iter().all(|g| g.is_finite()), "{far}: {grad:?}");
            }
        }
    }

    #[test]
    fn kl_and_entropy_terms_enter_with_their_coefficients() {
        let zeros = t(&[&[0.0, 0.0]]);
        let ref_logp = t(&[&[-1.0, -1.0]]); // k1 = +1 per token
        let entropy = t(&[&[2.0, 4.0]]);
        let mask = t(&[&[1.0, 1.0]]);
        let config = LossConfig {
            kl_coef: 0.1,
            kl_estimator: KlEstimator::K1,
            entropy_coef: 0.01,
            ..plain_config()
        };
        let inputs = LossInputs {
            logp: &zeros,
            old_logp: &zeros,
            ref_logp: Some(&ref_logp),
            advantages: &zeros,
            mask: &mask,
            entropy: Some(&entropy),
        };
        let out = policy_loss(&inputs, &config);
        assert!((out.loss.double_value(&[]) - (0.1 * 1.0 - 0.01 * 3.0)).abs() < 1e-6);
        assert!(close(out.kl, 1.0) && close(out.entropy, 3.0));
    }

    #[test]
    fn the_gradient_raises_the_log_prob_of_positive_advantage_tokens() {
        let logp = Tensor::from_slice(&[-1.0f32, -1.0])
            .view([1, 2])
            .set_requires_grad(true);
        let old = logp.detach();
        let adv = t(&[&[1.0, -1.0]]);
        let mask = t(&[&[1.0, 1.0]]);
        let config = plain_config();
        let inputs = LossInputs {
            logp: &logp,
            old_logp: &old,
            ref_logp: None,
            advantages: &adv,
            mask: &mask,
            entropy: None,
        };
        policy_loss(&inputs, &config).loss.backward();
        let grad = Vec::<f32>::try_from(logp.grad().flatten(0, -1)).unwrap();
        // Descent moves against the gradient: negative grad → log-prob goes up.
        assert!(grad[0] < 0.0 && grad[1] > 0.0, "{grad:?}");
    }
}
