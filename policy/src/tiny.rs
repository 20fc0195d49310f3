//! A tiny Qwen2.5-VL for CPU tests and the demo: the same architecture (window attention with a
//! full-attention block, tied head, M-RoPE) at a few hundred thousand parameters, seeded random
//! weights, and a byte-level BPE tokenizer trained on the caller's layout text that keeps Qwen's
//! special tokens (after the learned vocabulary, in Qwen's order).
//!
//! The result is an ordinary Hugging Face checkpoint directory, loadable here and by
//! transformers. The same builder at Qwen2.5-VL-3B's sizes ([`RandomModel::qwen2_5_vl_3b`])
//! gives benchmarks the real model's cost without its weights.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use tch::{Kind, Tensor, nn};
use tokenizers::SplitDelimiterBehavior;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, Tokenizer};

use crate::checkpoint::{self, write_json};
use crate::error::{PolicyError, Result, io_error};
use crate::image::ImageProcessorConfig;
use crate::qwen2_5_vl::{Config, ModelStores, Qwen2_5VlModel};
use crate::tokenizer::QWEN_SPECIAL_TOKENS;

/// The chat template of the Qwen2.5-VL instruct checkpoints (written with tiny checkpoints).
pub const QWEN2_5_VL_CHAT_TEMPLATE: &str = "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A randomly initialised Qwen2.5-VL to build: its sizes and weight spread (the tiny model by
/// default, the 3B's with [`RandomModel::qwen2_5_vl_3b`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomModel {
    /// Learned BPE vocabulary (before the 22 special tokens).
    pub bpe_vocab: usize,
    /// Decoder width.
    pub hidden_size: i64,
    /// Decoder feed-forward width.
    pub intermediate_size: i64,
    /// Decoder layers.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads.
    pub num_key_value_heads: i64,
    /// Rows of the embedding and the head; `None` fits the tokenizer exactly. Qwen pads its
    /// 151,665 tokens to 151,936 rows, which the head's cost depends on.
    pub vocab_size: Option<i64>,
    /// Vision width.
    pub vision_hidden_size: i64,
    /// Vision feed-forward width.
    pub vision_intermediate_size: i64,
    /// Vision attention heads.
    pub vision_heads: i64,
    /// Vision blocks.
    pub vision_depth: i64,
    /// The vision blocks that attend over the whole image (the others attend within windows).
    pub vision_full_attention: Vec<i64>,
    /// Largest image, in pixels, after resizing.
    pub max_pixels: i64,
    /// Standard deviation of the random weights.
    pub init_std: f64,
}

impl Default for RandomModel {
    fn default() -> Self {
        Self {
            bpe_vocab: 1024,
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            vocab_size: None,
            vision_hidden_size: 32,
            vision_intermediate_size: 64,
            vision_heads: 2,
            vision_depth: 2,
            vision_full_attention: vec![1],
            max_pixels: 224 * 224,
            init_std: 0.02,
        }
    }
}

/// How text is cut before BPE: a word with its leading space (letters, digits and underscores,
/// so an object id such as `coffee_table_1` stays whole and can become one token), a run of
/// punctuation with its leading space, or whitespace. GPT-2's split would cut ids at every
/// underscore, and copying a multi-token id is much harder for a tiny model than copying one.
const PIECES: &str = r" ?\w+| ?[^\w\s]+|\s+";

/// Trains a byte-level BPE tokenizer on `corpus` and appends Qwen's special tokens.
pub fn train_tokenizer(corpus: &[String], bpe_vocab: usize) -> Result<Tokenizer> {
    let bpe_error = |e: tokenizers::Error| PolicyError::Tokenizer(format!("training BPE: {e}"));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(bpe_vocab)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(BPE::default());
    let pieces = Split::new(
        SplitPattern::Regex(PIECES.to_owned()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(bpe_error)?;
    tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
        pieces.into(),
        ByteLevel::new(false, true, false).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    tokenizer
        .train(&mut trainer, corpus.iter())
        .map_err(bpe_error)?;
    let specials: Vec<AddedToken> = QWEN_SPECIAL_TOKENS
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

impl RandomModel {
    /// Qwen2.5-VL-3B-Instruct's sizes: 36 decoder layers of width 2,048 (16 query and 2
    /// key/value heads, feed-forward 11,008), a tied 151,936-row embedding, and a 32-block
    /// vision tower of width 1,280 with full attention in blocks 7, 15, 23 and 31. The tokenizer
    /// is still trained on the caller's corpus, so prompts cost what they cost the real model
    /// only roughly; the network's cost per token is the real one.
    #[must_use]
    pub fn qwen2_5_vl_3b() -> Self {
        Self {
            bpe_vocab: 8192,
            hidden_size: 2048,
            intermediate_size: 11_008,
            num_hidden_layers: 36,
            num_attention_heads: 16,
            num_key_value_heads: 2,
            vocab_size: Some(151_936),
            vision_hidden_size: 1280,
            vision_intermediate_size: 3420,
            vision_heads: 16,
            vision_depth: 32,
            vision_full_attention: vec![7, 15, 23, 31],
            max_pixels: 12_845_056,
            init_std: 0.02,
        }
    }

    /// `config.json` (Hub layout) for a tokenizer of `tokens` tokens whose special tokens start
    /// at `first_special`.
    #[must_use]
    pub fn config_json(&self, tokens: i64, first_special: i64) -> Value {
        let id = |token: &str| {
            first_special
                + QWEN_SPECIAL_TOKENS
                    .iter()
                    .position(|t| *t == token)
                    .expect("a Qwen token") as i64
        };
        let head_dim = self.hidden_size / self.num_attention_heads;
        // Same proportions as the released models' [16, 24, 24] over head_dim / 2 = 64.
        let t = head_dim / 2 / 4;
        let section = [
            t,
            (head_dim / 2 - t) / 2,
            head_dim / 2 - t - (head_dim / 2 - t) / 2,
        ];
        json!({
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "model_type": "qwen2_5_vl",
            "bos_token_id": id("<|endoftext|>"),
            "eos_token_id": id("<|im_end|>"),
            "vision_start_token_id": id("<|vision_start|>"),
            "vision_end_token_id": id("<|vision_end|>"),
            "vision_token_id": id("<|vision_pad|>"),
            "image_token_id": id("<|image_pad|>"),
            "video_token_id": id("<|video_pad|>"),
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": 32768,
            "max_window_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1_000_000.0,
            "sliding_window": 32768,
            "use_sliding_window": false,
            "tie_word_embeddings": true,
            "torch_dtype": "float32",
            "vocab_size": self.vocab_size.unwrap_or(tokens).max(tokens),
            "rope_scaling": { "type": "mrope", "mrope_section": section },
            "vision_config": {
                "depth": self.vision_depth,
                "hidden_act": "silu",
                "hidden_size": self.vision_hidden_size,
                "intermediate_size": self.vision_intermediate_size,
                "num_heads": self.vision_heads,
                "in_chans": 3,
                "out_hidden_size": self.hidden_size,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 112,
                "fullatt_block_indexes": self.vision_full_attention,
                "tokens_per_second": 2,
            },
        })
    }

    /// Writes a complete checkpoint to `dir`: [`Self::write_files`] and weights drawn from
    /// `seed`.
    pub fn write_checkpoint(&self, dir: &Path, corpus: &[String], seed: u64) -> Result<()> {
        let config = self.write_files(dir, corpus)?;
        let weights = random_weights(&config, seed, self.init_std);
        checkpoint::save_weights(dir, &weights, Kind::Float, checkpoint::DEFAULT_SHARD_BYTES)
    }

    /// Writes everything of a checkpoint but its weights to `dir`: tokenizer trained on
    /// `corpus`, config, processor and generation configs, chat template. Load it with
    /// [`crate::Weights::Random`].
    pub fn write_files(&self, dir: &Path, corpus: &[String]) -> Result<Config> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let tokenizer = train_tokenizer(corpus, self.bpe_vocab)?;
        let first_special = i64::from(
            tokenizer
                .token_to_id(QWEN_SPECIAL_TOKENS[0])
                .expect("special tokens were just added"),
        );
        let vocab = i64::from(tokenizer.get_vocab_size(true) as u32);
        let tokenizer_path = dir.join("tokenizer.json");
        tokenizer
            .save(&tokenizer_path, false)
            .map_err(|e| PolicyError::Tokenizer(format!("{}: {e}", tokenizer_path.display())))?;
        write_json(
            &dir.join("tokenizer_config.json"),
            &json!({
                "tokenizer_class": "Qwen2Tokenizer",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "model_max_length": 32768,
                "chat_template": QWEN2_5_VL_CHAT_TEMPLATE,
            }),
        )?;
        std::fs::write(dir.join("chat_template.jinja"), QWEN2_5_VL_CHAT_TEMPLATE)
            .map_err(io_error(dir.join("chat_template.jinja")))?;
        let mut processor = ImageProcessorConfig::default();
        processor.max_pixels = self.max_pixels;
        write_json(&dir.join("preprocessor_config.json"), &processor.to_json())?;
        let eos = first_special + 2;
        write_json(
            &dir.join("generation_config.json"),
            &json!({ "bos_token_id": first_special, "eos_token_id": [eos, first_special], "pad_token_id": first_special }),
        )?;
        let config_value = self.config_json(vocab, first_special);
        let config_path = dir.join("config.json");
        write_json(&config_path, &config_value)?;
        Config::from_value(config_value, &config_path)
    }
}

/// Seeded random parameters of a model built from `config`, by name.
fn random_weights(config: &Config, seed: u64, std: f64) -> BTreeMap<String, Tensor> {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _model = Qwen2_5VlModel::new(
        config,
        &ModelStores {
            base: &vs,
            lora: None,
            train_base: false,
        },
    );
    fill_random(&vs, seed, std);
    vs.variables().into_iter().collect()
}

/// Overwrites every parameter in `vs` with seeded random values: normal(0, std) for matrices,
/// ones for norm weights, zeros for biases. Parameters are drawn in name order on their own
/// device, so on the CPU the values depend on the seed alone.
pub fn fill_random(vs: &nn::VarStore, seed: u64, std: f64) {
    tch::manual_seed(seed as i64);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut t) in named {
            if name.ends_with("norm.weight")
                || name.contains("norm1")
                || name.contains("norm2")
                || name.contains("ln_q")
            {
                let _ = t.fill_(1.0);
            } else if name.rsplit('.').next() == Some("bias") {
                let _ = t.zero_();
            } else {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, t.device())) * std));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_3b_preset_has_the_released_model_sizes() {
        let preset = RandomModel::qwen2_5_vl_3b();
        let json = preset.config_json(8192 + 22, 8192);
        let config = Config::from_value(json, Path::new("config.json")).unwrap();
        assert_eq!(config.text_config.vocab_size, 151_936);
        assert_eq!(config.text_config.hidden_size, 2048);
        assert_eq!(config.text_config.intermediate_size, 11_008);
        assert_eq!(config.text_config.num_hidden_layers, 36);
        assert_eq!(config.head_dim(), 128);
        assert_eq!(config.mrope_section, vec![16, 24, 24]);
        assert_eq!(config.vision_config.depth, 32);
        assert_eq!(config.vision_config.intermediate_size, 3420);
        assert_eq!(
            config.vision_config.fullatt_block_indexes,
            vec![7, 15, 23, 31]
        );
        assert_eq!(config.vision_config.out_hidden_size, 2048);
        assert!(config.tie_word_embeddings);
        // 36 layers × rank 16 × (q 2048+2048, k and v 2048+256, o 2048+2048, gate, up and
        // down 2048+11008 each).
        let lora = crate::lora::LoraConfig::default();
        assert_eq!(lora.parameter_count(&config), 29_933_568);
        // Qwen's <|image_pad|> is 151,655 = <|endoftext|> + 12; here it follows the learned tokens.
        assert_eq!(config.image_token_id, 8192 + 12);
    }
}
