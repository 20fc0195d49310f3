//! The config corpus: every Qwen2.5-VL configuration layout users have (the Hub files, and the
//! same files as transformers 4.49, 4.53, 4.57 and 5.x re-save them) loads, with the real sizes.
//! `policy/scripts/make_config_corpus.py` rebuilds the re-saved part.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures;
use metaspatial_policy::image::ImageProcessorConfig;
use metaspatial_policy::qwen2_5_vl::Config;
use metaspatial_policy::{ChatTokenizer, Content, GenerationConfig, Message};

/// What each published size must read as.
struct Expected {
    size: &'static str,
    vocab: i64,
    hidden: i64,
    intermediate: i64,
    layers: i64,
    heads: i64,
    kv_heads: i64,
    tied: bool,
}

const SIZES: [Expected; 4] = [
    Expected {
        size: "3b",
        vocab: 151_936,
        hidden: 2048,
        intermediate: 11_008,
        layers: 36,
        heads: 16,
        kv_heads: 2,
        tied: true,
    },
    Expected {
        size: "7b",
        vocab: 152_064,
        hidden: 3584,
        intermediate: 18_944,
        layers: 28,
        heads: 28,
        kv_heads: 4,
        tied: false,
    },
    Expected {
        size: "32b",
        vocab: 152_064,
        hidden: 5120,
        intermediate: 27_648,
        layers: 64,
        heads: 40,
        kv_heads: 8,
        tied: false,
    },
    Expected {
        size: "72b",
        vocab: 152_064,
        hidden: 8192,
        intermediate: 29_568,
        layers: 80,
        heads: 64,
        kv_heads: 8,
        tied: false,
    },
];

/// The corpus variants: `hub` and one `transformers-<version>` per release.
fn variants() -> Vec<PathBuf> {
    let root = fixtures().join("configs");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // The layouts the loader must keep reading; a missing one would make the test pass vacuously.
    for required in [
        "hub",
        "transformers-4.49.0",
        "transformers-4.53.3",
        "transformers-4.57.3",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} missing");
    }
    assert!(
        names.iter().any(|n| n.starts_with("transformers-5.")),
        "no transformers 5 variant in {names:?}"
    );
    dirs
}

fn each_entry(check: impl Fn(&Path, &Expected)) {
    let mut checked = 0;
    for variant in variants() {
        for expected in &SIZES {
            let dir = variant.join(expected.size);
            assert!(dir.is_dir(), "{} missing", dir.display());
            check(&dir, expected);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} corpus entries");
}

#[test]
fn every_corpus_config_loads_with_its_real_sizes() {
    each_entry(|dir, e| {
        let config = Config::from_file(&dir.join("config.json"))
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        let t = &config.text_config;
        let v = &config.vision_config;
        let at = dir.display();
        assert_eq!(t.vocab_size, e.vocab, "{at}: vocab_size");
        assert_eq!(t.hidden_size, e.hidden, "{at}: hidden_size");
        assert_eq!(
            t.intermediate_size, e.intermediate,
            "{at}: intermediate_size"
        );
        assert_eq!(t.num_hidden_layers, e.layers, "{at}: layers");
        assert_eq!(t.num_attention_heads, e.heads, "{at}: heads");
        assert_eq!(config.num_key_value_heads(), e.kv_heads, "{at}: kv heads");
        assert_eq!(config.head_dim(), 128, "{at}: head_dim");
        assert_eq!(config.tie_word_embeddings, e.tied, "{at}: tied embeddings");
        assert_eq!(
            config.mrope_section,
            vec![16, 24, 24],
            "{at}: mrope_section"
        );
        assert!((config.rope_theta - 1e6).abs() < 1e-3, "{at}: rope_theta");
        assert!((t.rms_norm_eps - 1e-6).abs() < 1e-12, "{at}: rms_norm_eps");
        assert_eq!(t.max_position_embeddings, 128_000, "{at}: max positions");
        assert_eq!(v.depth, 32, "{at}: vision depth");
        assert_eq!(v.hidden_size, 1280, "{at}: vision hidden_size");
        assert_eq!(v.intermediate_size, 3420, "{at}: vision intermediate_size");
        assert_eq!(v.num_heads, 16, "{at}: vision heads");
        assert_eq!(v.in_channels, 3, "{at}: in_channels");
        assert_eq!(v.patch_size, 14, "{at}: patch_size");
        assert_eq!(v.spatial_merge_size, 2, "{at}: spatial_merge_size");
        assert_eq!(v.temporal_patch_size, 2, "{at}: temporal_patch_size");
        assert_eq!(v.window_size, 112, "{at}: window_size");
        assert_eq!(
            v.fullatt_block_indexes,
            vec![7, 15, 23, 31],
            "{at}: full attention"
        );
        assert_eq!(v.out_hidden_size, e.hidden, "{at}: out_hidden_size");
        assert_eq!(v.tokens_per_second, 2, "{at}: tokens_per_second");
        assert!(
            (config.vision_rope_theta - 1e4).abs() < 1e-6,
            "{at}: vision rope"
        );
        assert_eq!(
            [
                config.image_token_id,
                config.video_token_id,
                config.vision_start_token_id,
                config.vision_end_token_id
            ],
            [151_655, 151_656, 151_652, 151_653],
            "{at}: vision token ids"
        );
    });
}

#[test]
fn every_corpus_image_processor_config_loads() {
    each_entry(|dir, _| {
        let processor = ImageProcessorConfig::from_dir(dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        let at = dir.display();
        assert_eq!(processor.min_pixels, 3136, "{at}: min_pixels");
        assert_eq!(processor.max_pixels, 12_845_056, "{at}: max_pixels");
        assert_eq!(processor.patch_size, 14, "{at}: patch_size");
        assert_eq!(processor.merge_size, 2, "{at}: merge_size");
        assert_eq!(
            processor.temporal_patch_size, 2,
            "{at}: temporal_patch_size"
        );
        assert_eq!(processor.resample, 3, "{at}: resample");
        assert!(
            (processor.image_mean[0] - 0.481_454_66).abs() < 1e-9,
            "{at}: mean"
        );
        assert!(
            (processor.image_std[2] - 0.275_777_11).abs() < 1e-9,
            "{at}: std"
        );
        assert!(
            (processor.rescale_factor - 1.0 / 255.0).abs() < 1e-12,
            "{at}: rescale"
        );
    });
}

#[test]
fn every_corpus_generation_config_loads() {
    each_entry(|dir, _| {
        let path = dir.join("generation_config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let generation: GenerationConfig =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let at = path.display();
        assert_eq!(generation.eos_ids(), vec![151_645, 151_643], "{at}: eos");
        assert_eq!(generation.pad_token_id, Some(151_643), "{at}: pad");
        let sampling = generation.sampling();
        assert!(!sampling.greedy, "{at}: do_sample");
        assert!(
            (sampling.temperature - 0.1).abs() < 1e-12,
            "{at}: temperature"
        );
        assert!((sampling.top_p - 0.001).abs() < 1e-12, "{at}: top_p");
        assert_eq!(sampling.top_k, 1, "{at}: top_k");
        assert!(
            (sampling.repetition_penalty - 1.05).abs() < 1e-12,
            "{at}: penalty"
        );
    });
}

/// The chat template is the part of `tokenizer_config.json` we read; the vocabulary comes from
/// `tokenizer.json`, which the corpus leaves out (7 MB), so the test checkpoint's one stands in.
#[test]
fn every_hub_tokenizer_config_gives_the_chat_template() {
    for expected in &SIZES {
        let dir = tempfile::tempdir().unwrap();
        let source = fixtures().join("configs/hub").join(expected.size);
        std::fs::copy(
            source.join("tokenizer_config.json"),
            dir.path().join("tokenizer_config.json"),
        )
        .unwrap();
        std::fs::copy(
            fixtures().join("hub/tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .unwrap();
        let tokenizer = ChatTokenizer::from_dir(dir.path())
            .unwrap_or_else(|err| panic!("{}: {err}", source.display()));
        let messages = [Message {
            role: "user".into(),
            content: vec![
                Content::Image,
                Content::Text {
                    text: "Where is the chair?".into(),
                },
            ],
        }];
        let prompt = tokenizer.render(&messages, true).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
             <|vision_start|><|image_pad|><|vision_end|>Where is the chair?<|im_end|>\n\
             <|im_start|>assistant\n",
            "{}",
            source.display()
        );
    }
}
