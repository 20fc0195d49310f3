//! The tiny preset: a trained tokenizer keeping Qwen's special tokens and a checkpoint that
//! loads, renders the chat template and generates, and the same weights made in memory.

mod common;

use metaspatial_policy::tiny::{RandomModel, train_tokenizer};
use metaspatial_policy::tokenizer::QWEN_SPECIAL_TOKENS;
use metaspatial_policy::{LoadOptions, Message, Policy, SamplingParams, Weights, generate};

fn corpus() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..40 {
        lines.push(format!(
            "<think>Place the bed_{i} against the north wall.</think><answer>[{{\"new_object_id\": \"bed_{i}\", \"x\": {}.5, \"y\": 2.0, \"z\": 0.3, \"rotation\": 180}}]</answer>",
            i % 5
        ));
        lines.push(format!(
            "The room is {}.0 m long and 3.5 m wide. Keep objects inside the room.",
            3 + i % 4
        ));
    }
    lines
}

#[test]
fn tokenizer_keeps_qwen_special_tokens_after_the_learned_vocabulary() {
    let tokenizer = train_tokenizer(&corpus(), 400).unwrap();
    let first = tokenizer.token_to_id("<|endoftext|>").unwrap();
    assert!(first >= 256, "byte alphabet comes first");
    for (i, token) in QWEN_SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(
            tokenizer.token_to_id(token),
            Some(first + i as u32),
            "{token}"
        );
    }
    let text = "<|im_start|>user\nPlace the bed.<|im_end|>";
    let ids = tokenizer.encode(text, false).unwrap();
    assert_eq!(ids.get_ids()[0], first + 1);
    assert_eq!(tokenizer.decode(ids.get_ids(), false).unwrap(), text);
}

// One test, not several: building weights seeds libtorch's global generator, which parallel
// tests would share.
#[test]
fn tiny_checkpoint_loads_and_generates_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let preset = RandomModel {
        bpe_vocab: 400,
        ..RandomModel::default()
    };
    preset.write_checkpoint(dir.path(), &corpus(), 11).unwrap();
    let policy = Policy::load(dir.path(), &LoadOptions::default()).unwrap();

    // The same weights made in memory from the seed, for a directory without weight files.
    let bare = tempfile::tempdir().unwrap();
    preset.write_files(bare.path(), &corpus()).unwrap();
    let random = Weights::Random {
        seed: 11,
        std: preset.init_std,
    };
    let in_memory = Policy::load(
        bare.path(),
        &LoadOptions {
            weights: random,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let saved = policy.var_store().variables();
    let made = in_memory.var_store().variables();
    assert_eq!(saved.len(), made.len());
    for (name, value) in &saved {
        assert!(value.equal(&made[name]), "{name} differs");
    }
    assert!(
        Policy::load(bare.path(), &LoadOptions::default()).is_err(),
        "a directory without weights loads only with Weights::Random"
    );

    let images = vec![
        policy
            .processor
            .load(&common::fixtures().join("images/a.png"))
            .unwrap(),
    ];
    let prompt = policy
        .prompt(&[Message::user(1, "Place the bed.")], images)
        .unwrap();
    let text = policy.tokenizer.decode(&prompt.tokens, false).unwrap();
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"), "{text}");
    assert!(
        text.ends_with("Place the bed.<|im_end|>\n<|im_start|>assistant\n"),
        "{text}"
    );
    let params = SamplingParams {
        max_new_tokens: 6,
        seed: 1,
        stop_tokens: policy.stop_tokens().unwrap(),
        ..SamplingParams::default()
    };
    let a = generate(&policy.model, std::slice::from_ref(&prompt), 2, &params).unwrap();
    assert_eq!(
        a,
        generate(&policy.model, std::slice::from_ref(&prompt), 2, &params).unwrap()
    );
}

#[test]
fn frequent_object_ids_become_single_tokens() {
    let corpus: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "{{\"new_object_id\": \"coffee_table_{}\", \"x\": 1.25}}",
                i % 3 + 1
            )
        })
        .collect();
    let tokenizer = train_tokenizer(&corpus, 600).unwrap();
    let ids = tokenizer.encode("\"coffee_table_2\"", false).unwrap();
    assert!(ids.get_ids().len() <= 3, "{:?}", ids.get_tokens());
    let text = "{\"new_object_id\": \"coffee_table_2\", \"x\": 1.25}";
    let ids = tokenizer.encode(text, false).unwrap();
    assert_eq!(tokenizer.decode(ids.get_ids(), false).unwrap(), text);
}
