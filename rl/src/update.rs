//! One GRPO update from a step's trajectories: group-relative advantages, old-policy and
//! reference log-probabilities, then the clipped loss over micro-batches with gradient
//! accumulation and one (or several) `AdamW` steps.

use std::collections::BTreeMap;

use metaspatial_policy::{FinishReason, Policy, ScoreItem, Scores, Sequence, score, score_no_grad};
use tch::{Kind, Tensor};

use crate::config::{AlgorithmConfig, OptimiserConfig};
use crate::grpo::{LossAggregation, LossInputs, group_advantages, policy_loss};
use crate::optim::AdamW;
use crate::rollout::Trajectory;

/// Rows of the output head evaluated at once when scoring (bounds the logits' memory).
pub const SCORE_CHUNK_TOKENS: i64 = 4096;

/// One trained sequence: a turn's prompt and response, and its advantage.
pub struct Sample {
    /// Prompt + response tokens, with the prompt's images.
    pub sequence: Sequence,
    /// Where the response starts.
    pub response_start: usize,
    /// The advantage of every response token.
    pub advantage: f64,
}

/// Advantages of every trajectory turn, and which groups carried no signal.
pub struct Advantages {
    /// `values[trajectory][turn]`, in the trajectories' order.
    pub values: Vec<Vec<f64>>,
    /// Per group (room): all rewards equal.
    pub zero_variance: Vec<bool>,
}

/// Group-relative advantages of room-major trajectories (`group_size` per room).
#[must_use]
pub fn advantages(
    trajectories: &[Trajectory],
    group_size: usize,
    algorithm: &AlgorithmConfig,
) -> Advantages {
    let mut values = Vec::with_capacity(trajectories.len());
    let mut zero_variance = Vec::new();
    for group in trajectories.chunks(group_size) {
        let rewards: Vec<Vec<f64>> = group.iter().map(Trajectory::rewards).collect();
        let g = group_advantages(&rewards, algorithm.advantage, algorithm.scale_by_std);
        zero_variance.push(g.zero_variance);
        values.extend(g.values);
    }
    Advantages {
        values,
        zero_variance,
    }
}

/// The sequences to train on: every turn of every trajectory, except groups without signal
/// (when dropped) and truncated responses (when masked).
#[must_use]
pub fn samples(
    trajectories: &[Trajectory],
    advantages: &Advantages,
    group_size: usize,
    algorithm: &AlgorithmConfig,
) -> Vec<Sample> {
    let mut out = Vec::new();
    for (k, t) in trajectories.iter().enumerate() {
        if algorithm.drop_zero_variance_groups && advantages.zero_variance[k / group_size] {
            continue;
        }
        for (turn, a) in t.turns.iter().zip(&advantages.values[k]) {
            if (algorithm.mask_truncated && turn.finish == FinishReason::Length)
                || turn.response_tokens.is_empty()
            {
                continue;
            }
            let mut tokens = turn.prompt.tokens.clone();
            tokens.extend_from_slice(&turn.response_tokens);
            out.push(Sample {
                sequence: Sequence {
                    tokens,
                    images: turn.prompt.images.clone(),
                },
                response_start: turn.prompt.tokens.len(),
                advantage: *a,
            });
        }
    }
    out
}

/// What one update measured (token-weighted means over the batch).
#[derive(Debug, Clone, Default)]
pub struct UpdateStats {
    /// The loss that was minimised.
    pub loss: f64,
    /// Its clipped-surrogate part.
    pub policy_loss: f64,
    /// KL to the reference (0 without one).
    pub kl: f64,
    /// Mean entropy of the response tokens.
    pub entropy: f64,
    /// Tokens whose ratio was clipped.
    pub clip_fraction: f64,
    /// Gradient norm before clipping (of the last optimiser step).
    pub grad_norm: f64,
    /// Sequences trained on.
    pub sequences: usize,
    /// Response tokens trained on.
    pub tokens: usize,
    /// Optimiser steps skipped because the loss or gradient was not finite.
    pub skipped: usize,
}

fn items(samples: &[Sample]) -> Vec<ScoreItem<'_>> {
    samples
        .iter()
        .map(|s| ScoreItem {
            sequence: &s.sequence,
            response_start: s.response_start,
        })
        .collect()
}

/// The reference policy's log-probabilities: the adapters switched off (`LoRA`), or the frozen
/// copy (full fine-tuning).
pub fn reference_logprobs(
    policy: &Policy,
    reference: Option<&Policy>,
    samples: &[Sample],
    micro_batch: usize,
) -> anyhow::Result<Tensor> {
    let items = items(samples);
    let scores = if let Some(lora) = policy.lora() {
        lora.set_enabled(false);
        let s = score_no_grad(&policy.model, &items, micro_batch, SCORE_CHUNK_TOKENS);
        lora.set_enabled(true);
        s?
    } else {
        let reference = reference.ok_or_else(|| {
            anyhow::anyhow!("a KL penalty with full fine-tuning needs the frozen reference copy")
        })?;
        score_no_grad(&reference.model, &items, micro_batch, SCORE_CHUNK_TOKENS)?
    };
    Ok(scores.logprobs.to_device(policy.model.device()))
}

/// Runs `updates_per_batch` optimiser steps on `samples` at learning rate `lr`.
pub fn update(
    policy: &Policy,
    reference: Option<&Policy>,
    opt: &mut AdamW,
    samples: &[Sample],
    algorithm: &AlgorithmConfig,
    optimiser: &OptimiserConfig,
    lr: f64,
) -> anyhow::Result<UpdateStats> {
    let mut stats = UpdateStats {
        sequences: samples.len(),
        ..UpdateStats::default()
    };
    if samples.is_empty() {
        return Ok(stats);
    }
    let micro = optimiser.micro_batch.max(1);
    let all = items(samples);
    let device = policy.model.device();
    let response_len = |s: &Sample| s.sequence.tokens.len() - s.response_start;
    let total_tokens: usize = samples.iter().map(response_len).sum();
    stats.tokens = total_tokens;
    // With one update the old policy is the current one: its log-probs are the detached
    // current ones and need no extra pass.
    let old = (algorithm.updates_per_batch > 1)
        .then(|| score_no_grad(&policy.model, &all, micro, SCORE_CHUNK_TOKENS))
        .transpose()?
        .map(|s| s.logprobs);
    let reference_logp = (algorithm.kl_coef != 0.0)
        .then(|| reference_logprobs(policy, reference, samples, micro))
        .transpose()?;
    let loss_config = algorithm.loss();
    if let Some(lora) = policy.lora() {
        lora.set_training(true);
    }
    for _ in 0..algorithm.updates_per_batch {
        opt.zero_grad();
        let mut sums = BTreeMap::<&str, f64>::new();
        let mut finite = true;
        for (b, batch) in samples.chunks(micro).enumerate() {
            let start = b * micro;
            let Scores {
                logprobs,
                entropy,
                mask,
            } = score(
                &policy.model,
                &all[start..start + batch.len()],
                SCORE_CHUNK_TOKENS,
            )?;
            let width = logprobs.size()[1];
            let rows = |t: &Tensor| {
                t.narrow(0, start as i64, batch.len() as i64)
                    .narrow(1, 0, width)
            };
            let old_logp = old.as_ref().map_or_else(|| logprobs.detach(), rows);
            let ref_logp = reference_logp.as_ref().map(rows);
            let advantage: Vec<f32> = batch.iter().map(|s| s.advantage as f32).collect();
            let advantages = Tensor::from_slice(&advantage)
                .to(device)
                .unsqueeze(1)
                .expand([batch.len() as i64, width], false);
            let mask = mask.to_kind(Kind::Float);
            let out = policy_loss(
                &LossInputs {
                    logp: &logprobs,
                    old_logp: &old_logp,
                    ref_logp: ref_logp.as_ref(),
                    advantages: &advantages,
                    mask: &mask,
                    entropy: Some(&entropy),
                },
                &loss_config,
            );
            // Each micro-batch's mean is weighted by its share of the batch, so the
            // accumulated gradient is that of the whole batch's aggregate.
            let tokens: usize = batch.iter().map(response_len).sum();
            let token_share = tokens as f64 / total_tokens.max(1) as f64;
            let weight = match algorithm.aggregation {
                LossAggregation::TokenMean => token_share,
                LossAggregation::SeqMeanTokenMean | LossAggregation::SeqMeanTokenSum { .. } => {
                    batch.len() as f64 / samples.len() as f64
                }
            };
            let loss_value = out.loss.double_value(&[]);
            if !loss_value.is_finite() {
                finite = false;
                break;
            }
            (out.loss * weight).backward();
            *sums.entry("loss").or_default() += loss_value * weight;
            *sums.entry("policy").or_default() += out.policy * weight;
            *sums.entry("kl").or_default() += out.kl * token_share;
            *sums.entry("entropy").or_default() += out.entropy * token_share;
            *sums.entry("clip").or_default() += out.clip_fraction * token_share;
        }
        let grad_norm = if finite { opt.grad_norm() } else { f64::NAN };
        if !grad_norm.is_finite() {
            tracing::warn!("non-finite loss or gradient norm; the update is skipped");
            opt.zero_grad();
            stats.skipped += 1;
            stats.loss = f64::NAN;
            stats.grad_norm = grad_norm;
            continue;
        }
        opt.step(optimiser, lr, grad_norm);
        stats.loss = sums["loss"];
        stats.policy_loss = sums["policy"];
        stats.kl = sums["kl"];
        stats.entropy = sums["entropy"];
        stats.clip_fraction = sums["clip"];
        stats.grad_norm = grad_norm;
    }
    if let Some(lora) = policy.lora() {
        lora.set_training(false);
    }
    opt.zero_grad();
    Ok(stats)
}
