//! Generation and scoring throughput of the policy.
//!
//! On a machine with an NVIDIA GPU this runs the setting: Qwen2.5-VL-3B dimensions with
//! random weights in bf16, 8 prompts × G = 8 samples, prompts of about 1,200 tokens with one
//! 448 × 448 image (256 image tokens), 512 new tokens (no stop tokens, so every sequence runs to
//! the end), and the log-prob pass over the 64 resulting sequences. Criterion's throughput is in
//! generated (resp. scored) tokens. Without a GPU the same benches run on a tiny model on the CPU
//! so that the code path stays exercised; those figures say nothing about GPU speed.
//!
//! Run: `cargo bench -p metaspatial-policy --bench generation`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaspatial_policy::qwen2_5_vl::{Config, ModelStores, Qwen2_5VlModel};
use metaspatial_policy::workload::{Workload, completed, score_items};
use metaspatial_policy::{SamplingParams, ScoreOptions, generate, score_no_grad};
use serde_json::json;
use tch::{Device, Kind, nn};

const PROMPTS: usize = 8;
const GROUP: usize = 8;

struct Setting {
    name: &'static str,
    config: serde_json::Value,
    prompt_tokens: usize,
    image_side: i64,
    new_tokens: i64,
    device: Device,
    kind: Kind,
}

fn setting() -> Setting {
    if tch::Cuda::is_available() {
        Setting {
            name: "qwen2.5-vl-3b-bf16",
            config: json!({
                "model_type": "qwen2_5_vl", "hidden_size": 2048, "intermediate_size": 11008,
                "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
                "vocab_size": 151_936, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
                "tie_word_embeddings": true, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
                "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                    "out_hidden_size": 2048, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]}
            }),
            prompt_tokens: 1200,
            image_side: 448,
            new_tokens: 512,
            device: Device::Cuda(0),
            kind: Kind::BFloat16,
        }
    } else {
        Setting {
            name: "tiny-cpu-f32",
            config: json!({
                "model_type": "qwen2_5_vl", "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "vocab_size": 1_000, "tie_word_embeddings": true,
                "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
                "image_token_id": 990, "vision_start_token_id": 991, "vision_end_token_id": 992,
                "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                    "out_hidden_size": 64, "window_size": 112, "fullatt_block_indexes": [1]}
            }),
            prompt_tokens: 120,
            image_side: 112,
            new_tokens: 16,
            device: Device::Cpu,
            kind: Kind::Float,
        }
    }
}

fn random_model(config: &Config, vs: &nn::VarStore) -> Qwen2_5VlModel {
    let model = Qwen2_5VlModel::new(
        config,
        &ModelStores {
            base: vs,
            lora: None,
            train_base: false,
        },
    );
    tch::manual_seed(0);
    tch::no_grad(|| {
        for (name, t) in vs.variables() {
            if !name.contains("norm") && !name.contains("ln_q") {
                t.shallow_clone().copy_(&(t.randn_like() * 0.02));
            }
        }
    });
    model
}

fn bench(c: &mut Criterion) {
    let s = setting();
    let config =
        Config::from_value(s.config.clone(), std::path::Path::new("bench config")).expect("config");
    let mut vs = nn::VarStore::new(s.device);
    let model = random_model(&config, &vs);
    vs.set_kind(s.kind);
    let workload = Workload {
        prompts: PROMPTS,
        group: GROUP,
        prompt_tokens: s.prompt_tokens,
        image_side: s.image_side,
        new_tokens: s.new_tokens,
        seed: 0,
    };
    let prompts = workload.prompts(&config).expect("prompts");
    let params = SamplingParams {
        max_new_tokens: s.new_tokens,
        seed: 1,
        ..SamplingParams::default()
    };

    let mut group = c.benchmark_group(s.name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        (PROMPTS * GROUP) as u64 * s.new_tokens as u64,
    ));
    group.bench_function("generate 8 prompts x G=8", |b| {
        b.iter(|| generate(&model, &prompts, GROUP, &params).expect("generation"));
    });

    let completions = generate(&model, &prompts, GROUP, &params).expect("generation");
    let sequences = completed(&prompts, &completions);
    let items = score_items(&prompts, &completions, &sequences);
    let scored: usize = sequences.iter().map(|s| s.tokens.len()).sum();
    group.throughput(Throughput::Elements(scored as u64));
    group.bench_function("log-probs of 64 sequences (micro-batch 8)", |b| {
        b.iter(|| {
            score_no_grad(&model, &items, 8, &ScoreOptions::log_likelihood(4096)).expect("scoring")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
