//! `LoRA` adapters (fresh ones change nothing, the switch gives back the base, gradients reach
//! only the adapters) and Hugging Face export (sharded, merged) that loads back to the same
//! logits.

mod common;

use common::{fixtures, load, max_abs_diff, prompt};
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::{LoadOptions, Policy, ScoreItem, ScoreOptions, score};
use tch::Kind;

fn lora_policy(name: &str) -> Policy {
    lora_policy_in(name, None)
}

fn lora_policy_in(name: &str, kind: Option<Kind>) -> Policy {
    let options = LoadOptions {
        kind,
        lora: Some(LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            ..LoraConfig::default()
        }),
        ..LoadOptions::default()
    };
    Policy::load(&fixtures().join(name), &options).unwrap()
}

#[test]
fn adapters_train_switch_off_to_the_reference_and_merge_on_export() {
    let base = load("hub");
    let policy = lora_policy("hub");
    let sequence = prompt(&policy, true);
    let base_logits = base.sequence_logits(&sequence).unwrap();
    // B starts at zero: a fresh adapter is the base model.
    assert!(max_abs_diff(&policy.sequence_logits(&sequence).unwrap(), &base_logits) < 1e-6);

    // Gradients reach the adapters only (base frozen, vision tower not adapted).
    let item = ScoreItem {
        sequence: &sequence,
        response_start: sequence.tokens.len() - 5,
    };
    let scores = score(&policy.model, &[item], &ScoreOptions::log_likelihood(16)).unwrap();
    (scores.logprobs * scores.mask.to_kind(Kind::Float))
        .sum(Kind::Float)
        .backward();
    let adapters = policy.lora_var_store().unwrap().variables();
    assert!(
        adapters.keys().all(|n| n.starts_with("model.layers.")),
        "vision tower has no adapters"
    );
    let b = &adapters["model.layers.0.self_attn.q_proj.lora_B.weight"];
    assert!(b.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(
        policy
            .var_store()
            .variables()
            .values()
            .all(|v| !v.requires_grad())
    );

    // Perturb the adapters: logits move; switching adapters off is the base (the reference).
    tch::no_grad(|| {
        for (name, t) in &adapters {
            if name.contains("lora_B") {
                t.shallow_clone().copy_(&(t.randn_like() * 0.05));
            }
        }
    });
    let tuned = policy.sequence_logits(&sequence).unwrap();
    assert!(max_abs_diff(&tuned, &base_logits) > 1e-3);
    let state = policy.lora().unwrap();
    state.set_enabled(false);
    assert!(max_abs_diff(&policy.sequence_logits(&sequence).unwrap(), &base_logits) < 1e-6);
    state.set_enabled(true);

    // Export merged, sharded small: reloading gives the tuned logits without adapters.
    let dir = tempfile::tempdir().unwrap();
    policy.export(dir.path(), Kind::Float, 64 << 10).unwrap();
    assert!(
        dir.path().join("model.safetensors.index.json").exists(),
        "small shards force an index"
    );
    assert!(
        dir.path().join("tokenizer.json").exists()
            && dir.path().join("chat_template.json").exists()
    );
    let exported = Policy::load(dir.path(), &LoadOptions::default()).unwrap();
    assert!(max_abs_diff(&exported.sequence_logits(&sequence).unwrap(), &tuned) < 1e-4);
}

#[test]
fn a_bf16_model_keeps_f32_adapters_that_receive_f32_gradients() {
    let policy = lora_policy_in("hub", Some(Kind::BFloat16));
    assert_eq!(policy.model.kind(), Kind::BFloat16);
    let sequence = prompt(&policy, false);
    let item = ScoreItem {
        sequence: &sequence,
        response_start: sequence.tokens.len() - 5,
    };
    let scores = score(&policy.model, &[item], &ScoreOptions::log_likelihood(16)).unwrap();
    (scores.logprobs * scores.mask.to_kind(Kind::Float))
        .sum(Kind::Float)
        .backward();
    let adapters = policy.lora_var_store().unwrap().variables();
    assert!(!adapters.is_empty());
    for (name, adapter) in &adapters {
        assert_eq!(adapter.kind(), Kind::Float, "{name}");
        assert_eq!(adapter.grad().kind(), Kind::Float, "{name}'s gradient");
    }
    let b = &adapters["model.layers.0.self_attn.q_proj.lora_B.weight"];
    assert!(b.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

#[test]
fn the_adapter_count_from_the_config_is_the_built_one() {
    let every_layer = LoraConfig {
        rank: 3,
        target_modules: [
            "q_proj",
            "v_proj",
            "down_proj",
            "gate_proj",
            "qkv",
            "proj",
            "0",
            "2",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..LoraConfig::default()
    };
    for adapt_vision in [false, true] {
        let lora = LoraConfig {
            adapt_vision,
            ..every_layer.clone()
        };
        let policy = Policy::load(
            &fixtures().join("hub"),
            &LoadOptions {
                lora: Some(lora.clone()),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        let built: i64 = policy
            .lora_var_store()
            .unwrap()
            .variables()
            .values()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(
            lora.parameter_count(policy.model.config()),
            built,
            "adapt_vision: {adapt_vision}"
        );
    }
}

#[test]
fn export_of_the_transformers5_layout_round_trips() {
    let policy = load("v5");
    let sequence = prompt(&policy, true);
    let dir = tempfile::tempdir().unwrap();
    policy.export(dir.path(), Kind::Float, 1 << 30).unwrap();
    assert!(dir.path().join("model.safetensors").exists());
    let again = Policy::load(dir.path(), &LoadOptions::default()).unwrap();
    let delta = max_abs_diff(
        &again.sequence_logits(&sequence).unwrap(),
        &policy.sequence_logits(&sequence).unwrap(),
    );
    assert!(delta == 0.0, "{delta}");
}

#[test]
fn export_needs_nothing_of_the_directory_the_policy_was_loaded_from() {
    let source = tempfile::tempdir().unwrap();
    let fixture = fixtures().join("hub");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, source.path().join(path.file_name().unwrap())).unwrap();
    }
    // A stale weight file of another format is not carried into the export.
    std::fs::write(source.path().join("pytorch_model.bin"), b"stale").unwrap();
    let policy = Policy::load(source.path(), &LoadOptions::default()).unwrap();
    // A run deletes the checkpoint it resumed from once newer ones exist.
    drop(source);
    let out = tempfile::tempdir().unwrap();
    policy.export(out.path(), Kind::Float, 1 << 30).unwrap();
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.json",
        "preprocessor_config.json",
        "generation_config.json",
    ] {
        assert_eq!(
            std::fs::read(out.path().join(name)).unwrap(),
            std::fs::read(fixture.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(!out.path().join("pytorch_model.bin").exists());
    let again = Policy::load(out.path(), &LoadOptions::default()).unwrap();
    let sequence = prompt(&policy, true);
    let delta = max_abs_diff(
        &again.sequence_logits(&sequence).unwrap(),
        &policy.sequence_logits(&sequence).unwrap(),
    );
    assert!(delta == 0.0, "{delta}");
}
