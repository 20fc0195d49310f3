//! Qwen2.5-VL-3B's real widths on the CPU: its 151,936-row tied embedding, decoder width 2,048
//! (16 query and 2 key/value heads, feed-forward 11,008) and vision tower of width 1,280 (16
//! heads, feed-forward 3,420, 112-pixel windows with a full-attention block), cut to 2 decoder
//! and 2 vision layers with random weights. One GRPO step with `LoRA` runs in f32 and in bf16:
//! generation, the reference pass (adapters off), the clipped loss and the optimiser, at the
//! shapes the real model has, so a shape or dtype mismatch that the tiny model hides shows here.

use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::workload::Workload;
use metaspatial_policy::{LoadOptions, Policy, SamplingParams, Sequence, Weights, generate};
use metaspatial_rl::config::{AlgorithmConfig, OptimiserConfig};
use metaspatial_rl::grpo::{AdvantageMode, group_advantages};
use metaspatial_rl::optim::AdamW;
use metaspatial_rl::update::{Sample, UpdateSettings, update};
use tch::{Kind, Tensor};

const G: usize = 2;

/// The 3B preset with 2 decoder and 2 vision layers; block 1 attends over the whole image, as
/// the last block of each group of 8 does in the released model.
fn preset() -> RandomModel {
    RandomModel {
        bpe_vocab: 300,
        num_hidden_layers: 2,
        vision_depth: 2,
        vision_full_attention: vec![1],
        ..RandomModel::qwen2_5_vl_3b()
    }
}

/// The prompt: text around one 140 × 140 image, 10 × 10 patches, so the 8-patch windows split
/// it into 2 × 2 windows of unequal sizes (the padded case).
fn prompt(policy: &Policy) -> Sequence {
    let workload = Workload {
        prompts: 1,
        group: G,
        prompt_tokens: 40,
        image_side: 140,
        new_tokens: 3,
        seed: 7,
    };
    workload
        .prompts(policy.model.config())
        .unwrap()
        .pop()
        .unwrap()
}

/// One GRPO step in `kind`; checks the loss and gradient are finite and that the adapters (f32
/// whatever `kind`) moved.
fn grpo_step(dir: &std::path::Path, kind: Kind) {
    let started = std::time::Instant::now();
    let policy = Policy::load(
        dir,
        &LoadOptions {
            kind: Some(kind),
            lora: Some(LoraConfig::default()),
            weights: Weights::Random { seed: 0, std: 0.02 },
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let embed = &policy.var_store().variables()["model.embed_tokens.weight"];
    assert_eq!(embed.size(), [151_936, 2048]);
    assert_eq!(embed.kind(), kind);
    let prompt = prompt(&policy);
    let params = SamplingParams {
        max_new_tokens: 3,
        seed: 1,
        suppress_tokens: policy.vision_tokens().unwrap(),
        ..SamplingParams::default()
    };
    let completions = generate(&policy.model, std::slice::from_ref(&prompt), G, &params).unwrap();
    assert_eq!(completions.len(), G);
    assert!(
        completions
            .iter()
            .flat_map(|c| &c.tokens)
            .all(|&t| (0..151_936).contains(&t)),
        "sampled tokens lie in the vocabulary"
    );
    // Distinct rewards, so the group has a non-zero advantage to learn from.
    let rewards: Vec<Vec<f64>> = (0..G).map(|i| vec![i as f64]).collect();
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
                    images: prompt.images.clone(),
                },
                response_start: prompt.tokens.len(),
                advantage: a[0],
                token_advantages: None,
                world: None,
            }
        })
        .collect();
    let adapters = policy.lora_var_store().unwrap().variables();
    let b_name = "model.layers.1.mlp.down_proj.lora_B.weight";
    let b = adapters[b_name].shallow_clone();
    assert_eq!(b.kind(), Kind::Float);
    assert_eq!(b.size(), [2048, 16]);
    let before = b.copy();
    let trainable: Vec<(String, Tensor)> = adapters.into_iter().collect();
    let mut opt = AdamW::new(trainable);
    assert_eq!(opt.master_bytes(), 0, "f32 adapters are their own master");
    let algorithm = AlgorithmConfig {
        kl_coef: 0.04,
        ..AlgorithmConfig::default()
    };
    let optimiser = OptimiserConfig {
        micro_batch: 1,
        ..OptimiserConfig::default()
    };
    let settings = UpdateSettings {
        algorithm: &algorithm,
        optimiser: &optimiser,
        temperature: params.temperature,
        lr: 1e-5,
        world_model_weight: None,
    };
    let stats = update(&policy, None, &mut opt, &samples, &settings).unwrap();
    assert_eq!(stats.skipped, 0, "{kind:?}: the step was skipped");
    assert!(
        stats.last.loss.is_finite(),
        "{kind:?}: loss {}",
        stats.last.loss
    );
    assert!(
        stats.grad_norm.is_finite() && stats.grad_norm > 0.0,
        "{kind:?}: gradient norm {}",
        stats.grad_norm
    );
    assert_eq!(stats.tokens, 2 * 3);
    let moved = (&b - before).abs().max().double_value(&[]);
    // A fresh B is zero, so any update at lr 1e-5 is representable: Adam moves it by ≈ lr.
    assert!(
        moved > 5e-6 && moved < 2e-5,
        "{kind:?}: {b_name} moved by {moved}"
    );
    eprintln!(
        "{kind:?}: load + generate + GRPO step in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// One test, not two: both dtypes share the written files, and the random weights seed
// libtorch's global generator, which tests in parallel threads would share.
#[test]
fn a_grpo_step_runs_at_qwen2_5_vl_3b_widths_in_f32_and_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let config = preset()
        .write_files(
            dir.path(),
            &vec!["place the bed against the north wall".to_owned(); 4],
        )
        .unwrap();
    assert_eq!(config.text_config.vocab_size, 151_936);
    assert_eq!(config.text_config.hidden_size, 2048);
    assert_eq!(config.text_config.intermediate_size, 11_008);
    assert_eq!(config.text_config.num_attention_heads, 16);
    assert_eq!(config.num_key_value_heads(), 2);
    assert_eq!(config.vision_config.hidden_size, 1280);
    assert_eq!(config.vision_config.num_heads, 16);
    assert_eq!(config.vision_config.intermediate_size, 3420);
    assert_eq!(config.vision_config.out_hidden_size, 2048);
    assert_eq!(config.vision_config.window_size, 112);
    assert_eq!(config.vision_config.fullatt_block_indexes, vec![1]);
    grpo_step(dir.path(), Kind::Float);
    grpo_step(dir.path(), Kind::BFloat16);
}
