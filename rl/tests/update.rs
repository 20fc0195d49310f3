//! The GRPO update on a tiny `LoRA` policy: micro-batching does not change the gradient, the
//! old log-probs of several passes belong to their rows, KL starts at exactly 0, and a NaN
//! reward leaves the parameters alone; per-token advantages reach their own tokens; the
//! world-model loss reaches the policy only with a weight.

use std::collections::BTreeMap;

use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::{EntropyMode, LoadOptions, Policy, ScoreItem, ScoreOptions, Sequence};
use metaspatial_rl::config::{AlgorithmConfig, OptimiserConfig};
use metaspatial_rl::grpo::{AdvantageMode, LossAggregation, group_advantages};
use metaspatial_rl::optim::AdamW;
use metaspatial_rl::update::{
    PassStats, SCORE_CHUNK_TOKENS, Sample, UpdateSettings, accumulate_gradients, baselines, update,
};
use metaspatial_rl::world_model::WorldTarget;
use tch::{Kind, Tensor};

/// The sampling temperature of every test: log-probs must be those of logits / 0.7.
const TEMPERATURE: f64 = 0.7;

const RESPONSES: [&str; 5] = [
    "the bed",
    "place the desk against the north wall",
    "wall",
    "the chair next to the desk",
    "north",
];

/// A one-layer tiny model with fresh `LoRA` adapters (dropout `dropout`).
fn policy(dir: &std::path::Path, dropout: f64) -> Policy {
    let preset = RandomModel {
        bpe_vocab: 300,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        ..RandomModel::default()
    };
    let corpus: Vec<String> = RESPONSES.iter().map(|r| (*r).to_owned()).collect();
    preset.write_checkpoint(dir, &corpus, 5).unwrap();
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout,
        ..LoraConfig::default()
    };
    Policy::load(
        dir,
        &LoadOptions {
            lora: Some(lora),
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

/// One sample per response (lengths differ), all answering the same prompt, with distinct
/// advantages of both signs.
fn samples(policy: &Policy) -> Vec<Sample> {
    let prompt = policy.tokenizer.encode("place the bed").unwrap();
    RESPONSES
        .iter()
        .zip([1.0, -0.5, 0.8, -1.2, 0.3])
        .map(|(response, advantage)| {
            let mut tokens = prompt.clone();
            tokens.extend(policy.tokenizer.encode(response).unwrap());
            Sample {
                sequence: Sequence {
                    tokens,
                    images: Vec::new(),
                },
                response_start: prompt.len(),
                advantage,
                token_advantages: None,
                world: None,
            }
        })
        .collect()
}

fn adapters(policy: &Policy) -> BTreeMap<String, Tensor> {
    policy
        .lora_var_store()
        .unwrap()
        .variables()
        .into_iter()
        .collect()
}

/// Every parameter, base and adapters, copied.
fn snapshot(policy: &Policy) -> BTreeMap<String, Tensor> {
    policy
        .var_store()
        .variables()
        .into_iter()
        .chain(adapters(policy))
        .map(|(name, t)| (name, t.detach().copy()))
        .collect()
}

fn optimiser_for(policy: &Policy) -> AdamW {
    AdamW::new(adapters(policy).into_iter().collect())
}

/// Moves every `lora_B` away from zero, deterministically, so the adapters change the model.
fn perturb_adapters(policy: &Policy) {
    tch::no_grad(|| {
        for (name, mut t) in adapters(policy) {
            if name.contains("lora_B") {
                let values = Tensor::arange(t.numel() as i64, (Kind::Float, t.device()))
                    .sin()
                    .view(t.size().as_slice())
                    * 0.05;
                t.copy_(&values);
            }
        }
    });
}

fn gradients(policy: &Policy) -> BTreeMap<String, Tensor> {
    adapters(policy)
        .into_iter()
        .map(|(name, t)| (name, t.grad().copy()))
        .collect()
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

fn settings<'a>(
    algorithm: &'a AlgorithmConfig,
    optimiser: &'a OptimiserConfig,
    lr: f64,
) -> UpdateSettings<'a> {
    UpdateSettings {
        algorithm,
        optimiser,
        temperature: TEMPERATURE,
        lr,
        world_model_weight: None,
    }
}

#[test]
fn micro_batches_accumulate_the_whole_batch_gradient_in_every_aggregation() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 0.0);
    let samples = samples(&policy);
    let whole = OptimiserConfig {
        micro_batch: samples.len(),
        ..OptimiserConfig::default()
    };
    let single = OptimiserConfig {
        micro_batch: 1,
        ..OptimiserConfig::default()
    };
    let mut opt = optimiser_for(&policy);
    for aggregation in [
        LossAggregation::TokenMean,
        LossAggregation::SeqMeanTokenMean,
        LossAggregation::SeqMeanTokenSum { divisor: 8.0 },
    ] {
        let algorithm = AlgorithmConfig {
            aggregation,
            kl_coef: 0.1,
            entropy_coef: 0.01,
            updates_per_batch: 2,
            ..AlgorithmConfig::default()
        };
        // Old and reference log-probs of the fresh adapters; the perturbed adapters then give
        // ratios away from 1 and a KL term with a gradient.
        let fixed = baselines(&policy, None, &samples, &settings(&algorithm, &whole, 0.0)).unwrap();
        perturb_adapters(&policy);
        let mut pass = |optimiser: &OptimiserConfig| -> (PassStats, BTreeMap<String, Tensor>) {
            opt.zero_grad();
            let stats = accumulate_gradients(
                &policy,
                &samples,
                &fixed,
                &settings(&algorithm, optimiser, 0.0),
            )
            .unwrap()
            .expect("a finite loss");
            (stats, gradients(&policy))
        };
        let (batch_stats, batch_grads) = pass(&whole);
        let (micro_stats, micro_grads) = pass(&single);
        assert!(
            batch_stats.kl > 1e-4 && batch_stats.entropy > 0.1 && batch_stats.max_log_ratio > 1e-3,
            "{aggregation:?}: the KL, entropy and ratio terms must all be live: {batch_stats:?}"
        );
        let largest = batch_grads.values().map(max_abs).fold(0.0, f64::max);
        assert!(largest > 1e-3, "{aggregation:?}: gradient {largest}");
        for (name, g) in &batch_grads {
            let diff = max_abs(&(g - &micro_grads[name]));
            assert!(diff < 1e-6, "{aggregation:?} {name}: differs by {diff}");
        }
        for (what, a, b) in [
            ("loss", batch_stats.loss, micro_stats.loss),
            ("policy", batch_stats.policy_loss, micro_stats.policy_loss),
            ("kl", batch_stats.kl, micro_stats.kl),
            ("entropy", batch_stats.entropy, micro_stats.entropy),
            ("clip", batch_stats.clip_fraction, micro_stats.clip_fraction),
        ] {
            assert!((a - b).abs() < 1e-6, "{aggregation:?} {what}: {a} vs {b}");
        }
        // Back to fresh adapters for the next mode.
        tch::no_grad(|| {
            for (name, mut t) in adapters(&policy) {
                if name.contains("lora_B") {
                    let _ = t.zero_();
                }
            }
        });
    }
}

#[test]
fn per_token_advantages_reach_their_own_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 0.0);
    perturb_adapters(&policy);
    let plain = samples(&policy);
    // No KL or entropy term: what is left is linear in the advantages.
    let algorithm = AlgorithmConfig {
        kl_coef: 0.0,
        entropy_coef: 0.0,
        ..AlgorithmConfig::default()
    };
    let optimiser = OptimiserConfig {
        micro_batch: 2,
        ..OptimiserConfig::default()
    };
    let mut opt = optimiser_for(&policy);
    let mut gradient_of = |samples: &[Sample]| -> BTreeMap<String, Tensor> {
        opt.zero_grad();
        let settings = settings(&algorithm, &optimiser, 0.0);
        let fixed = baselines(&policy, None, samples, &settings).unwrap();
        accumulate_gradients(&policy, samples, &fixed, &settings)
            .unwrap()
            .expect("a finite loss");
        gradients(&policy)
    };
    let with_tokens = |f: &dyn Fn(usize, f64) -> f64| -> Vec<Sample> {
        samples(&policy)
            .into_iter()
            .map(|s| {
                let n = s.sequence.tokens.len() - s.response_start;
                let values = (0..n).map(|t| f(t, s.advantage)).collect();
                Sample {
                    token_advantages: Some(values),
                    ..s
                }
            })
            .collect()
    };
    let same = |a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>| {
        a.iter()
            .map(|(name, g)| max_abs(&(g - &b[name])))
            .fold(0.0, f64::max)
    };
    // Each sample's one advantage written out per token trains exactly as before.
    let reference = gradient_of(&plain);
    let spelled = gradient_of(&with_tokens(&|_, a| a));
    assert!(same(&reference, &spelled) < 1e-7);
    // At ratio 1 the loss is linear in the advantages: the first tokens' part and the rest's
    // part add up to the whole, and neither is the whole alone.
    let first = gradient_of(&with_tokens(&|t, a| if t < 2 { a } else { 0.0 }));
    let rest = gradient_of(&with_tokens(&|t, a| if t < 2 { 0.0 } else { a }));
    let sum: BTreeMap<String, Tensor> = first
        .iter()
        .map(|(name, g)| (name.clone(), g + &rest[name]))
        .collect();
    assert!(same(&reference, &sum) < 1e-6);
    assert!(same(&reference, &first) > 1e-4 && same(&reference, &rest) > 1e-4);
}

#[test]
#[allow(clippy::float_cmp)] // exact zeros are the claim
fn several_passes_use_old_log_probs_of_their_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 0.0);
    perturb_adapters(&policy);
    let samples = samples(&policy);
    let algorithm = AlgorithmConfig {
        updates_per_batch: 3,
        ..AlgorithmConfig::default()
    };
    // Two sequences per micro-batch over five of different lengths: a row or column offset
    // would pair tokens with another sample's log-probs.
    let optimiser = OptimiserConfig {
        micro_batch: 2,
        weight_decay: 0.0,
        ..OptimiserConfig::default()
    };
    let settings = settings(&algorithm, &optimiser, 5e-2);
    let fixed = baselines(&policy, None, &samples, &settings).unwrap();
    let old = fixed
        .old
        .as_ref()
        .expect("several passes score the old policy");
    assert!(fixed.reference.is_none(), "no KL, no reference pass");
    let options = ScoreOptions {
        chunk_tokens: SCORE_CHUNK_TOKENS,
        temperature: TEMPERATURE,
        entropy: EntropyMode::Skip,
    };
    for (row, sample) in samples.iter().enumerate() {
        let alone = metaspatial_policy::score_no_grad(
            &policy.model,
            &[ScoreItem {
                sequence: &sample.sequence,
                response_start: sample.response_start,
            }],
            1,
            &options,
        )
        .unwrap()
        .logprobs
        .get(0);
        let n = alone.size()[0];
        let mine = old.get(row as i64);
        assert!(
            max_abs(&(mine.narrow(0, 0, n) - &alone)) < 1e-5,
            "row {row}"
        );
        let rest = mine.size()[0] - n;
        assert!(
            rest == 0 || max_abs(&mine.narrow(0, n, rest)) == 0.0,
            "row {row} padding"
        );
    }
    let mut opt = optimiser_for(&policy);
    let lora = policy.lora().unwrap();
    lora.set_training(true);
    let mut passes = Vec::new();
    for _ in 0..algorithm.updates_per_batch {
        opt.zero_grad();
        let pass = accumulate_gradients(&policy, &samples, &fixed, &settings)
            .unwrap()
            .expect("a finite loss");
        opt.step(&optimiser, settings.lr, opt.grad_norm());
        passes.push(pass);
    }
    lora.set_training(false);
    // Dropout 0: the first pass recomputes exactly what the old pass computed.
    assert_eq!(passes[0].max_log_ratio, 0.0, "{:?}", passes[0]);
    assert_eq!(passes[0].clip_fraction, 0.0);
    assert!(passes[2].max_log_ratio > 0.2, "{:?}", passes[2]);
    assert!(passes[2].clip_fraction > 0.0, "{:?}", passes[2]);

    // The same through `update`: its last pass is measured against the log-probs fixed
    // before its first step.
    let stats = update(&policy, None, &mut opt, &samples, &settings).unwrap();
    assert_eq!(stats.skipped, 0);
    assert!(stats.last.max_log_ratio > 0.2, "{stats:?}");
}

#[test]
#[allow(clippy::float_cmp)] // exact zeros are the claim
fn kl_is_exactly_zero_before_the_adapters_move() {
    let dir = tempfile::tempdir().unwrap();
    // Dropout on: a fresh adapter (B = 0) adds exactly nothing whatever its input.
    let policy = policy(dir.path(), 0.05);
    let samples = samples(&policy);
    let mut opt = optimiser_for(&policy);
    let algorithm = AlgorithmConfig {
        kl_coef: 0.1,
        ..AlgorithmConfig::default()
    };
    let optimiser = OptimiserConfig {
        micro_batch: 2,
        ..OptimiserConfig::default()
    };
    let settings = settings(&algorithm, &optimiser, 1e-2);
    let first = update(&policy, None, &mut opt, &samples, &settings).unwrap();
    assert_eq!(first.last.kl, 0.0, "{first:?}");
    assert_eq!(first.skipped, 0);
    let second = update(&policy, None, &mut opt, &samples, &settings).unwrap();
    assert!(
        second.last.kl > 0.0,
        "after a step the adapters differ: {second:?}"
    );
}

#[test]
fn a_nan_reward_skips_the_update_and_changes_no_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 0.0);
    perturb_adapters(&policy);
    let mut samples = samples(&policy);
    let algorithm = AlgorithmConfig {
        kl_coef: 0.1,
        updates_per_batch: 2,
        ..AlgorithmConfig::default()
    };
    // Weight decay alone would move every adapter if a step were taken.
    let optimiser = OptimiserConfig {
        micro_batch: 2,
        weight_decay: 0.1,
        ..OptimiserConfig::default()
    };
    let settings = settings(&algorithm, &optimiser, 1e-2);
    let mut opt = optimiser_for(&policy);
    let mut train = |rewards: &[f64]| {
        let rewards: Vec<Vec<f64>> = rewards.iter().map(|r| vec![*r]).collect();
        let advantages = group_advantages(&rewards, AdvantageMode::Outcome, true);
        for (sample, a) in samples.iter_mut().zip(&advantages.values) {
            sample.advantage = a[0];
        }
        let before = snapshot(&policy);
        let stats = update(&policy, None, &mut opt, &samples, &settings).unwrap();
        let after = snapshot(&policy);
        let unchanged = before.iter().all(|(name, t)| t.equal(&after[name]));
        (stats, unchanged)
    };
    let (stats, unchanged) = train(&[1.0, f64::NAN, 0.0, 0.5, 0.2]);
    assert_eq!(stats.skipped, 2, "{stats:?}");
    assert!(stats.last.loss.is_nan());
    assert!(unchanged, "a skipped update changed a parameter");
    // The same batch with a finite reward does train, so the check above can fail.
    let (stats, unchanged) = train(&[1.0, 0.7, 0.0, 0.5, 0.2]);
    assert_eq!(stats.skipped, 0, "{stats:?}");
    assert!(!unchanged);
}

#[test]
fn the_world_model_loss_reaches_the_policy_only_with_a_weight_and_micro_batches_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = policy(dir.path(), 0.0);
    policy.attach_fresh_world_model(3, 11).unwrap();
    perturb_adapters(&policy);
    // Every other answer has a target: a different occupied cell and height for each.
    let mut samples = samples(&policy);
    for (k, s) in samples.iter_mut().enumerate() {
        s.world = (k % 2 == 0).then(|| {
            let mut occupancy = vec![0.0; 9];
            occupancy[k] = 1.0;
            let height = occupancy.iter().map(|o| o * 0.3).collect();
            WorldTarget { occupancy, height }
        });
    }
    let algorithm = AlgorithmConfig::default();
    let micro = |n: usize| OptimiserConfig {
        micro_batch: n,
        ..OptimiserConfig::default()
    };
    let mut opt = optimiser_for(&policy);
    let fixed = baselines(
        &policy,
        None,
        &samples,
        &settings(&algorithm, &micro(5), 0.0),
    )
    .unwrap();
    let (whole, single) = (micro(5), micro(1));
    let mut pass = |weight: Option<f64>, n: usize| {
        opt.zero_grad();
        let optimiser = if n == 1 { &single } else { &whole };
        let settings = UpdateSettings {
            world_model_weight: weight,
            ..settings(&algorithm, optimiser, 0.0)
        };
        let stats = accumulate_gradients(&policy, &samples, &fixed, &settings)
            .unwrap()
            .expect("a finite loss");
        (stats, gradients(&policy))
    };
    let (plain, plain_grads) = pass(None, 5);
    let (inert, inert_grads) = pass(Some(0.0), 5);
    let (weighted, weighted_grads) = pass(Some(1.0), 5);
    let (micro_stats, micro_grads) = pass(Some(1.0), 1);
    assert!(plain.world_model.is_none());
    let world = inert.world_model.expect("measured at weight 0");
    assert_eq!(world.answers, 3);
    assert!(world.loss > 0.0 && (0.0..=1.0).contains(&world.occupancy_iou));
    let largest = |a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>| {
        a.iter()
            .map(|(name, g)| max_abs(&(g - &b[name])))
            .fold(0.0, f64::max)
    };
    assert!(
        largest(&plain_grads, &inert_grads) == 0.0,
        "weight 0 moved the gradient"
    );
    assert!(
        largest(&plain_grads, &weighted_grads) > 1e-6,
        "the loss did not reach the adapters"
    );
    assert!(
        largest(&weighted_grads, &micro_grads) < 1e-6,
        "micro-batches differ"
    );
    let (a, b) = (
        weighted.world_model.unwrap(),
        micro_stats.world_model.unwrap(),
    );
    assert_eq!(a.answers, b.answers);
    assert!((a.loss - b.loss).abs() < 1e-6 && (a.occupancy_iou - b.occupancy_iou).abs() < 1e-9);
}
