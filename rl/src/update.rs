//! One GRPO update from a step's trajectories: group-relative advantages, old-policy and
//! reference log-probabilities, then the clipped loss over micro-batches with gradient
//! accumulation and one (or several) `AdamW` steps.
//!
//! Every log-probability (policy, old policy, reference) and the entropy are those of the
//! logits divided by the sampling temperature: the ratio must compare the policy being trained
//! with the distribution that drew the tokens.

use anyhow::Context;
use metaspatial_env::Room;
use metaspatial_policy::{
    ChatTokenizer, EntropyMode, FinishReason, Policy, ScoreItem, ScoreOptions, Scores, Sequence,
    score, score_no_grad,
};
use tch::{Kind, Tensor};

use crate::config::{AlgorithmConfig, OptimiserConfig};
use crate::credit::token_advantages;
use crate::grpo::{AdvantageMode, LossAggregation, LossInputs, group_advantages, policy_loss};
use crate::optim::AdamW;
use crate::rollout::Trajectory;
use crate::world_model::{self, WorldModelStats, WorldTarget};

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
    /// One advantage per response token instead, where they differ (object-level credit).
    pub token_advantages: Option<Vec<f64>>,
    /// The top view of the layout the response wrote, when the world-model objective trains
    /// on this sample and the answer could be drawn.
    pub world: Option<WorldTarget>,
}

/// Advantages of every trajectory turn, and which groups carried no signal.
pub struct Advantages {
    /// `values[trajectory][turn]`, in the trajectories' order.
    pub values: Vec<Vec<f64>>,
    /// `per_token[trajectory][turn]`: one advantage per response token where the object-level
    /// mode gives the turn's tokens different ones; `None` where `values` applies to all.
    pub per_token: Vec<Vec<Option<Vec<f64>>>>,
    /// Per group (room): all rewards equal.
    pub zero_variance: Vec<bool>,
}

/// Group-relative advantages of room-major trajectories (`group_size` per room); the tokenizer
/// maps answers to tokens for the object-level mode.
pub fn advantages(
    trajectories: &[Trajectory],
    group_size: usize,
    algorithm: &AlgorithmConfig,
    tokenizer: &ChatTokenizer,
) -> anyhow::Result<Advantages> {
    let mut values = Vec::with_capacity(trajectories.len());
    let mut per_token = Vec::with_capacity(trajectories.len());
    let mut zero_variance = Vec::new();
    for group in trajectories.chunks(group_size) {
        let rewards: Vec<Vec<f64>> = group.iter().map(Trajectory::rewards).collect();
        let g = group_advantages(&rewards, algorithm.advantage, algorithm.scale_by_std);
        zero_variance.push(g.zero_variance);
        for (t, turn_rewards) in group.iter().zip(&rewards) {
            let tokens = match (algorithm.advantage, g.normaliser) {
                (AdvantageMode::Object { strength }, Some(normaliser)) => {
                    let outcome = *turn_rewards.last().expect("every trajectory has a turn");
                    t.turns
                        .iter()
                        .map(|turn| {
                            let pieces = turn
                                .response_tokens
                                .iter()
                                .map(|&token| tokenizer.decode(&[token], true))
                                .collect::<Result<Vec<_>, _>>()
                                .context("decoding response tokens one by one")?;
                            Ok(token_advantages(
                                &turn.prepared.response,
                                &pieces,
                                &turn.prepared.assessment,
                                outcome,
                                &normaliser,
                                strength,
                            ))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?
                }
                _ => vec![None; t.turns.len()],
            };
            per_token.push(tokens);
        }
        values.extend(g.values);
    }
    Ok(Advantages {
        values,
        per_token,
        zero_variance,
    })
}

/// The sequences to train on: every turn of every trajectory, except groups without signal
/// (when dropped), turns whose response was cut at `max_new_tokens` (when `mask_truncated`)
/// and empty responses. A left-out turn counts nowhere: not in the token count of `TokenMean`,
/// not in the sequence count of the sequence means. With the world-model objective in GRPO,
/// each parsed answer carries the top view of its layout in its room (`rooms`, indexed by the
/// trajectories' `room`).
#[must_use]
pub fn samples(
    trajectories: &[Trajectory],
    rooms: &[Room],
    advantages: &Advantages,
    group_size: usize,
    algorithm: &AlgorithmConfig,
) -> Vec<Sample> {
    let world_grid = algorithm.world_model.filter(|w| w.in_grpo).map(|w| w.grid);
    let mut out = Vec::new();
    for (k, t) in trajectories.iter().enumerate() {
        if algorithm.drop_zero_variance_groups && advantages.zero_variance[k / group_size] {
            continue;
        }
        for ((turn, a), per_token) in t
            .turns
            .iter()
            .zip(&advantages.values[k])
            .zip(&advantages.per_token[k])
        {
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
                token_advantages: per_token.clone(),
                world: world_grid
                    .filter(|_| turn.prepared.assessment.parsed)
                    .and_then(|grid| {
                        world_model::target(&rooms[t.room], &turn.prepared.assessment.layout, grid)
                    }),
            });
        }
    }
    out
}

/// What one update is run with.
#[derive(Debug, Clone, Copy)]
pub struct UpdateSettings<'a> {
    /// Loss, clipping, KL, entropy and passes per batch.
    pub algorithm: &'a AlgorithmConfig,
    /// Micro-batch size and the `AdamW` settings.
    pub optimiser: &'a OptimiserConfig,
    /// The temperature the responses were sampled at (`generation.temperature`).
    pub temperature: f64,
    /// This step's learning rate.
    pub lr: f64,
    /// The world-model loss's weight, when the objective trains in GRPO.
    pub world_model_weight: Option<f64>,
}

impl UpdateSettings<'_> {
    fn micro_batch(&self) -> usize {
        self.optimiser.micro_batch.max(1)
    }

    fn score_options(&self, entropy: EntropyMode) -> ScoreOptions {
        ScoreOptions {
            chunk_tokens: SCORE_CHUNK_TOKENS,
            temperature: self.temperature,
            entropy,
        }
    }
}

/// What one update measured.
#[derive(Debug, Clone, Default)]
pub struct UpdateStats {
    /// The last pass over the batch (its loss is NaN when that pass was skipped).
    pub last: PassStats,
    /// Gradient norm before clipping (of the last optimiser step).
    pub grad_norm: f64,
    /// Sequences trained on.
    pub sequences: usize,
    /// Response tokens trained on.
    pub tokens: usize,
    /// Optimiser steps skipped because the loss or gradient was not finite.
    pub skipped: usize,
}

/// What one forward/backward pass over the batch measured (token-weighted means).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassStats {
    /// The loss whose gradient was accumulated.
    pub loss: f64,
    /// Its clipped-surrogate part.
    pub policy_loss: f64,
    /// Mean KL estimate over response tokens (0 without a reference).
    pub kl: f64,
    /// Mean entropy over response tokens.
    pub entropy: f64,
    /// Fraction of response tokens whose gradient a clip cut.
    pub clip_fraction: f64,
    /// Largest `|log π − log π_old|` over response tokens.
    pub max_log_ratio: f64,
    /// The world-model head's loss and `IoU`, when the objective trains.
    pub world_model: Option<WorldModelStats>,
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

/// `(batch, width)` advantages: each sample's per-token values, or its one value repeated;
/// zero past the response (masked there anyway).
fn advantage_rows(batch: &[Sample], width: i64) -> Tensor {
    let width = usize::try_from(width).expect("a tensor width");
    let mut flat = vec![0f32; batch.len() * width];
    for (row, sample) in flat.chunks_mut(width).zip(batch) {
        let n = response_len(sample).min(width);
        match &sample.token_advantages {
            Some(values) => {
                for (slot, v) in row.iter_mut().zip(values) {
                    *slot = *v as f32;
                }
            }
            None => row[..n].fill(sample.advantage as f32),
        }
    }
    Tensor::from_slice(&flat).view([batch.len() as i64, width as i64])
}

fn response_len(sample: &Sample) -> usize {
    sample.sequence.tokens.len() - sample.response_start
}

/// The reference policy's log-probabilities: the adapters switched off (`LoRA`), or the frozen
/// copy (full fine-tuning).
pub fn reference_logprobs(
    policy: &Policy,
    reference: Option<&Policy>,
    samples: &[Sample],
    settings: &UpdateSettings<'_>,
) -> anyhow::Result<Tensor> {
    let items = items(samples);
    let (micro, options) = (
        settings.micro_batch(),
        settings.score_options(EntropyMode::Skip),
    );
    let scores = if let Some(lora) = policy.lora() {
        lora.set_enabled(false);
        let s = score_no_grad(&policy.model, &items, micro, &options);
        lora.set_enabled(true);
        s?
    } else {
        let reference = reference.ok_or_else(|| {
            anyhow::anyhow!("a KL penalty with full fine-tuning needs the frozen reference copy")
        })?;
        score_no_grad(&reference.model, &items, micro, &options)?
    };
    Ok(scores.logprobs.to_device(policy.model.device()))
}

/// Log-probabilities fixed before the first optimiser step, `(samples, longest response)`.
pub struct Baselines {
    /// The sampling policy's, when the batch gets several passes (with one pass the current
    /// log-probs, detached, are the old ones and need no extra forward pass).
    pub old: Option<Tensor>,
    /// The reference policy's, when the KL term is on.
    pub reference: Option<Tensor>,
}

/// Scores the batch under the old and the reference policy, as the settings need them.
pub fn baselines(
    policy: &Policy,
    reference: Option<&Policy>,
    samples: &[Sample],
    settings: &UpdateSettings<'_>,
) -> anyhow::Result<Baselines> {
    let algorithm = settings.algorithm;
    let old = (algorithm.updates_per_batch > 1)
        .then(|| {
            score_no_grad(
                &policy.model,
                &items(samples),
                settings.micro_batch(),
                &settings.score_options(EntropyMode::Skip),
            )
        })
        .transpose()?
        .map(|s| s.logprobs);
    let reference = (algorithm.kl_coef != 0.0)
        .then(|| reference_logprobs(policy, reference, samples, settings))
        .transpose()?;
    Ok(Baselines { old, reference })
}

/// One forward and backward pass over `samples` in micro-batches: adds the gradient of the
/// whole batch's loss to the parameters' gradients (which it does not zero). Returns `None`,
/// with part of the gradient accumulated, as soon as a micro-batch's loss is not finite.
pub fn accumulate_gradients(
    policy: &Policy,
    samples: &[Sample],
    baselines: &Baselines,
    settings: &UpdateSettings<'_>,
) -> anyhow::Result<Option<PassStats>> {
    let algorithm = settings.algorithm;
    let micro = settings.micro_batch();
    let all = items(samples);
    let device = policy.model.device();
    // With several ranks each holds part of the batch: shares are of the whole batch.
    let (total_tokens, total_sequences) = crate::distributed::current()
        .totals(samples.iter().map(response_len).sum(), samples.len())?;
    let loss_config = algorithm.loss();
    // Without a bonus the entropy is only a metric: measured outside the autograd graph, so
    // no chunk × vocabulary tensor is kept for a backward pass that would not use it.
    let entropy_mode = if algorithm.entropy_coef == 0.0 {
        EntropyMode::Measure
    } else {
        EntropyMode::Train
    };
    let options = settings.score_options(entropy_mode);
    let head = settings.world_model_weight.zip(policy.world_model.as_ref());
    let with_target = samples.iter().filter(|s| s.world.is_some()).count();
    let total_targets = match head {
        Some(_) => crate::distributed::current().totals(with_target, 0)?.0,
        None => 0,
    };
    let mut pass = PassStats::default();
    let mut world_stats = WorldModelStats::default();
    for (b, batch) in samples.chunks(micro).enumerate() {
        let start = b * micro;
        let Scores {
            logprobs,
            entropy,
            mask,
            final_hidden,
        } = score(&policy.model, &all[start..start + batch.len()], &options)?;
        let width = logprobs.size()[1];
        let rows = |t: &Tensor| {
            t.narrow(0, start as i64, batch.len() as i64)
                .narrow(1, 0, width)
        };
        let old_logp = baselines
            .old
            .as_ref()
            .map_or_else(|| logprobs.detach(), rows);
        let ref_logp = baselines.reference.as_ref().map(rows);
        let advantages = advantage_rows(batch, width).to(device);
        let mask = mask.to_kind(Kind::Float);
        let out = policy_loss(
            &LossInputs {
                logp: &logprobs,
                old_logp: &old_logp,
                ref_logp: ref_logp.as_ref(),
                advantages: &advantages,
                mask: &mask,
                entropy: entropy.as_ref(),
            },
            &loss_config,
        );
        // Each micro-batch's aggregate is weighted by its share of what the whole batch's
        // aggregate divides by (tokens, or sequences), so the accumulated gradient is that of
        // the whole batch's aggregate.
        let tokens: usize = batch.iter().map(response_len).sum();
        let token_share = tokens as f64 / total_tokens.max(1) as f64;
        let weight = match algorithm.aggregation {
            LossAggregation::TokenMean => token_share,
            LossAggregation::SeqMeanTokenMean | LossAggregation::SeqMeanTokenSum { .. } => {
                batch.len() as f64 / total_sequences as f64
            }
        };
        let loss_value = out.loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Ok(None);
        }
        let loss = out.loss * weight;
        let loss = match head {
            // The head's loss is the mean over every answer of the batch with a target.
            Some((world_weight, head)) => world_model::add_loss(
                loss,
                head,
                &final_hidden,
                &batch.iter().map(|s| s.world.as_ref()).collect::<Vec<_>>(),
                world_weight / total_targets.max(1) as f64,
                &mut world_stats,
            )?,
            None => loss,
        };
        loss.backward();
        pass.loss += loss_value * weight;
        pass.policy_loss += out.policy * weight;
        pass.kl += out.kl * token_share;
        pass.entropy += out.entropy * token_share;
        pass.clip_fraction += out.clip_fraction * token_share;
        pass.max_log_ratio = pass.max_log_ratio.max(out.max_log_ratio);
    }
    pass.world_model = head.map(|_| world_stats.means());
    Ok(Some(pass))
}

/// Runs `updates_per_batch` optimiser steps on `samples`. A pass whose loss or gradient is not
/// finite (a NaN reward, an overflow) leaves the parameters and the optimiser untouched.
pub fn update(
    policy: &Policy,
    reference: Option<&Policy>,
    opt: &mut AdamW,
    samples: &[Sample],
    settings: &UpdateSettings<'_>,
) -> anyhow::Result<UpdateStats> {
    let mut stats = UpdateStats {
        sequences: samples.len(),
        tokens: samples.iter().map(response_len).sum(),
        ..UpdateStats::default()
    };
    let ranks = crate::distributed::current();
    // A rank may hold no samples while others do; it still takes part in every collective.
    if ranks.totals(stats.tokens, stats.sequences)?.1 == 0 {
        return Ok(stats);
    }
    let baselines = if samples.is_empty() {
        Baselines {
            old: None,
            reference: None,
        }
    } else {
        baselines(policy, reference, samples, settings)?
    };
    if let Some(lora) = policy.lora() {
        lora.set_training(true);
    }
    let passes = (0..settings.algorithm.updates_per_batch).try_for_each(|_| {
        opt.zero_grad();
        let pass = accumulate_gradients(policy, samples, &baselines, settings)?;
        let pass = ranks.sync_gradients(opt.params(), pass)?;
        let grad_norm = if pass.is_some() {
            opt.grad_norm()
        } else {
            f64::NAN
        };
        stats.grad_norm = grad_norm;
        match pass {
            Some(pass) if grad_norm.is_finite() => {
                opt.step(settings.optimiser, settings.lr, grad_norm);
                stats.last = pass;
            }
            _ => {
                tracing::warn!("non-finite loss or gradient norm; the update is skipped");
                opt.zero_grad();
                stats.skipped += 1;
                stats.last.loss = f64::NAN;
            }
        }
        anyhow::Ok(())
    });
    if let Some(lora) = policy.lora() {
        lora.set_training(false);
    }
    opt.zero_grad();
    passes?;
    Ok(stats)
}

/// Runs the update, turning a CUDA out-of-memory panic into an error naming the setting to
/// lower.
pub(crate) fn guard_oom(
    optimiser: &OptimiserConfig,
    f: impl FnOnce() -> anyhow::Result<UpdateStats>,
) -> anyhow::Result<UpdateStats> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            if message.contains("out of memory") {
                anyhow::bail!(
                    "the GPU ran out of memory in the update with optimiser.micro_batch = {}; \
                     lower it (gradients accumulate, results stay the same): {message}",
                    optimiser.micro_batch
                );
            }
            std::panic::resume_unwind(panic)
        }
    }
}
