//! `LoRA` adapters (Hu et al., 2021, "`LoRA`: Low-Rank Adaptation of Large Language Models",
//! arXiv:2106.09685) on the decoder's linear layers.
//!
//! The base weights stay frozen; each targeted layer gains `lora_A` (rank × in, Kaiming-uniform
//! like PEFT) and `lora_B` (out × rank, zeros), so a fresh adapter changes nothing. The adapters
//! live in their own `VarStore`, named like the layer they adapt (`….q_proj.lora_A.weight`), so
//! the base `VarStore` still matches the checkpoint one-to-one. One shared switch turns every
//! adapter off: that is the reference policy for the KL term, without a second model in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::qwen2_5_vl::Config;

/// Which layers get adapters and how they are scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank of the update `B · A`.
    pub rank: i64,
    /// The update is scaled by `alpha / rank`.
    pub alpha: f64,
    /// Dropout on the adapter's input while training.
    pub dropout: f64,
    /// Names of the adapted modules (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`,
    /// `up_proj`, `down_proj`).
    pub target_modules: Vec<String>,
    /// Also adapt the vision tower's layers (frozen by default, as in `MetaSpatial`).
    #[serde(default)]
    pub adapt_vision: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            dropout: 0.05,
            target_modules: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(str::to_owned)
            .to_vec(),
            adapt_vision: false,
        }
    }
}

impl LoraConfig {
    /// The factor applied to `B · A x`.
    #[must_use]
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Whether a module of this name gets an adapter.
    #[must_use]
    pub fn targets(&self, module: &str) -> bool {
        self.target_modules.iter().any(|t| t == module)
    }

    /// Adapter parameters (`A` and `B` of every targeted layer) on a model of `config`, without
    /// building it: what the memory reports need at sizes too large to allocate here.
    #[must_use]
    pub fn parameter_count(&self, config: &Config) -> i64 {
        let t = &config.text_config;
        let attention = t.num_attention_heads * config.head_dim();
        let kv = config.num_key_value_heads() * config.head_dim();
        let (h, ff) = (t.hidden_size, t.intermediate_size);
        // (module, in, out), as `text.rs` and `vision.rs` build them.
        let decoder = [
            ("q_proj", h, attention),
            ("k_proj", h, kv),
            ("v_proj", h, kv),
            ("o_proj", attention, h),
            ("gate_proj", h, ff),
            ("up_proj", h, ff),
            ("down_proj", ff, h),
        ];
        let v = &config.vision_config;
        let (d, vff) = (v.hidden_size, v.intermediate_size);
        let merged = d * v.spatial_merge_size * v.spatial_merge_size;
        let block = [
            ("qkv", d, 3 * d),
            ("proj", d, d),
            ("gate_proj", d, vff),
            ("up_proj", d, vff),
            ("down_proj", vff, d),
        ];
        let merger = [("0", merged, merged), ("2", merged, v.out_hidden_size)];
        let adapted = |layers: &[(&str, i64, i64)]| -> i64 {
            layers
                .iter()
                .filter(|(name, _, _)| self.targets(name))
                .map(|(_, i, o)| self.rank * (i + o))
                .sum()
        };
        let text = t.num_hidden_layers * adapted(&decoder);
        if self.adapt_vision {
            text + v.depth * adapted(&block) + adapted(&merger)
        } else {
            text
        }
    }
}

/// State shared by every adapter of one model: the configuration and two switches.
#[derive(Debug)]
pub struct LoraState {
    /// The configuration the adapters were built with.
    pub config: LoraConfig,
    enabled: AtomicBool,
    training: AtomicBool,
}

impl LoraState {
    /// Adapters on, not training.
    #[must_use]
    pub fn new(config: LoraConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            enabled: AtomicBool::new(true),
            training: AtomicBool::new(false),
        })
    }

    /// Whether adapters contribute to forward passes.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns every adapter on or off (off = the base model, i.e. the reference policy).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether adapter dropout is active.
    #[must_use]
    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// Turns adapter dropout on (training) or off (generation, scoring).
    pub fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }
}
