//! A one-token bandit: GRPO must raise the probability of the rewarded token. The test fails
//! when the update's sign is wrong (the probability would fall) and checks that a negated
//! advantage does push it down. It runs in f32 and in bf16 with the same thresholds: bf16 full
//! fine-tuning steps f32 master copies, so it learns as its f32 twin does.

use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::{LoadOptions, Policy, SamplingParams, Sequence, generate};
use metaspatial_rl::config::{AlgorithmConfig, OptimiserConfig};
use metaspatial_rl::grpo::{AdvantageMode, group_advantages};
use metaspatial_rl::optim::AdamW;
use metaspatial_rl::update::{Sample, UpdateSettings, update};
use tch::Kind;

const G: usize = 32;

fn policy(dir: &std::path::Path, kind: Kind) -> Policy {
    let preset = RandomModel {
        bpe_vocab: 300,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        ..RandomModel::default()
    };
    let corpus = vec!["place the bed against the north wall".to_owned(); 8];
    preset.write_checkpoint(dir, &corpus, 3).unwrap();
    Policy::load(
        dir,
        &LoadOptions {
            kind: Some(kind),
            train_base: true,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

/// Probability of `target` as the next token after `prompt`.
fn probability(policy: &Policy, prompt: &Sequence, target: i64) -> f64 {
    let logits = policy.sequence_logits(prompt).unwrap();
    let last = logits.get(logits.size()[0] - 1);
    last.softmax(-1, Kind::Float).double_value(&[target])
}

/// Trains the model in `kind` for `steps` GRPO steps with reward `sign` for the target and
/// returns its probability before and after.
fn train(kind: Kind, sign: f64, steps: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), kind);
    let prompt = Sequence {
        tokens: policy.tokenizer.encode("place the bed").unwrap(),
        images: Vec::new(),
    };
    // The target is the model's 4th most likely token: sampled sometimes, never the favourite.
    let logits = policy.sequence_logits(&prompt).unwrap();
    let (_, order) = logits.get(logits.size()[0] - 1).sort(-1, true);
    let target = order.int64_value(&[3]);
    let before = probability(&policy, &prompt, target);
    let mut trainable: Vec<_> = policy.var_store().variables().into_iter().collect();
    trainable.retain(|(_, t)| t.requires_grad());
    let mut opt = AdamW::new(trainable);
    let algorithm = AlgorithmConfig::default();
    let optimiser = OptimiserConfig {
        weight_decay: 0.0,
        micro_batch: 8,
        ..OptimiserConfig::default()
    };
    for step in 0..steps {
        let params = SamplingParams {
            top_k: 8,
            max_new_tokens: 1,
            seed: step,
            suppress_tokens: policy.vision_tokens().unwrap(),
            ..SamplingParams::default()
        };
        let completions =
            generate(&policy.model, std::slice::from_ref(&prompt), G, &params).unwrap();
        let rewards: Vec<Vec<f64>> = completions
            .iter()
            .map(|c| vec![if c.tokens[0] == target { sign } else { 0.0 }])
            .collect();
        let advantages = group_advantages(&rewards, AdvantageMode::Outcome, true);
        let samples: Vec<Sample> = completions
            .iter()
            .zip(&advantages.values)
            .map(|(c, a)| {
                let mut tokens = prompt.tokens.clone();
                tokens.extend_from_slice(&c.tokens);
                Sample {
                    sequence: Sequence {
                        tokens,
                        images: Vec::new(),
                    },
                    response_start: prompt.tokens.len(),
                    advantage: a[0],
                    token_advantages: None,
                    world: None,
                }
            })
            .collect();
        let settings = UpdateSettings {
            algorithm: &algorithm,
            optimiser: &optimiser,
            temperature: params.temperature,
            lr: 1e-2,
            world_model_weight: None,
        };
        update(&policy, None, &mut opt, &samples, &settings).unwrap();
    }
    (before, probability(&policy, &prompt, target))
}

// One test, not two: building the tiny model seeds libtorch's global generator, which tests
// running in parallel threads would share.
#[test]
fn grpo_raises_a_rewarded_token_and_lowers_a_penalised_one_in_f32_and_bf16() {
    for kind in [Kind::Float, Kind::BFloat16] {
        let (before, after) = train(kind, 1.0, 8);
        assert!(
            after > 5.0 * before,
            "{kind:?} rewarded: p(target) went from {before:.4} to {after:.4}"
        );
        let (before, after) = train(kind, -1.0, 8);
        assert!(
            after < 0.5 * before,
            "{kind:?} penalised: p(target) went from {before:.4} to {after:.4}"
        );
    }
}
