//! `config.json` of a Qwen2.5-VL checkpoint, in both layouts users have.
//!
//! - As published on the Hub (transformers 4.x): text fields at the top level, rotary settings in
//!   `rope_theta` + `rope_scaling.mrope_section`, vision fields under `vision_config` (with
//!   `in_chans`).
//! - As transformers 5.x saves it: nested `text_config` / `vision_config`, rotary settings in
//!   `rope_parameters`.
//!
//! Field names are those of the Hugging Face files, so a reader can check one against the other.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{PolicyError, Result, read_json};

/// Rotary settings as transformers 5 writes them (`rope_parameters`) or as the Hub files have
/// them (`rope_scaling`, with `rope_theta` beside it).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// `default` (transformers 5) or `mrope` / `default` under `type` (Hub files).
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    /// Base of the rotary frequencies (transformers 5 keeps it here).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// How the rotary half-dimension is split between the temporal, height and width positions.
    #[serde(default)]
    pub mrope_section: Option<Vec<i64>>,
}

/// The language model part (`text_config`, or the top level of a Hub `config.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    /// Vocabulary size (rows of `embed_tokens`).
    pub vocab_size: i64,
    /// Width of the residual stream.
    pub hidden_size: i64,
    /// Width of the `SwiGLU` feed-forward layer.
    pub intermediate_size: i64,
    /// Number of decoder layers.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention).
    #[serde(default)]
    pub num_key_value_heads: Option<i64>,
    /// Activation of the feed-forward layer; only `silu` exists in released checkpoints.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Epsilon of the RMS norms.
    #[serde(default = "default_text_eps")]
    pub rms_norm_eps: f64,
    /// Longest context the model was trained for.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: i64,
    /// Rotary base when given at the top level (Hub layout).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Rotary settings, Hub layout.
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// Rotary settings, transformers 5 layout.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Sliding-window attention in the decoder; released checkpoints leave it off.
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
    /// Whether the output head shares the embedding matrix (transformers 5 may put it here).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Beginning-of-text token.
    #[serde(default)]
    pub bos_token_id: Option<i64>,
    /// End-of-sequence token(s).
    #[serde(default)]
    pub eos_token_id: Option<Value>,
}

/// The vision tower (`vision_config`).
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    /// Number of vision blocks.
    pub depth: i64,
    /// Width of the vision residual stream.
    pub hidden_size: i64,
    /// Activation of the vision feed-forward layers.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Width of the vision feed-forward layers.
    pub intermediate_size: i64,
    /// Attention heads of the vision blocks.
    pub num_heads: i64,
    /// Image channels.
    #[serde(default = "default_channels", alias = "in_chans")]
    pub in_channels: i64,
    /// Side of a patch in pixels.
    #[serde(default = "default_patch")]
    pub patch_size: i64,
    /// Side of the square of patches merged into one language-model token.
    #[serde(default = "default_merge")]
    pub spatial_merge_size: i64,
    /// Frames per temporal patch (an image is repeated to fill it).
    #[serde(default = "default_temporal")]
    pub temporal_patch_size: i64,
    /// Side of an attention window in pixels.
    #[serde(default = "default_window")]
    pub window_size: i64,
    /// Width of the merger output (= the language model's `hidden_size`).
    pub out_hidden_size: i64,
    /// Blocks that attend over the whole image instead of windows.
    #[serde(default)]
    pub fullatt_block_indexes: Vec<i64>,
    /// Temporal rotary step per second of video.
    #[serde(default = "default_tokens_per_second")]
    pub tokens_per_second: i64,
    /// Rotary settings of the vision tower (only `rope_theta` is used).
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
}

fn default_act() -> String {
    "silu".to_owned()
}
fn default_text_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> i64 {
    128_000
}
fn default_channels() -> i64 {
    3
}
fn default_patch() -> i64 {
    14
}
fn default_merge() -> i64 {
    2
}
fn default_temporal() -> i64 {
    2
}
fn default_window() -> i64 {
    112
}
fn default_tokens_per_second() -> i64 {
    4
}

/// Special token ids of the multimodal prompt format (top level of `config.json`).
#[derive(Debug, Clone, Deserialize)]
struct TopLevel {
    #[serde(default = "default_image_token")]
    image_token_id: i64,
    #[serde(default = "default_video_token")]
    video_token_id: i64,
    #[serde(default = "default_vision_start")]
    vision_start_token_id: i64,
    #[serde(default = "default_vision_end")]
    vision_end_token_id: i64,
    #[serde(default)]
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_image_token() -> i64 {
    151_655
}
fn default_video_token() -> i64 {
    151_656
}
fn default_vision_start() -> i64 {
    151_652
}
fn default_vision_end() -> i64 {
    151_653
}

/// A whole Qwen2.5-VL configuration, resolved from either layout.
#[derive(Debug, Clone)]
pub struct Config {
    /// The language model.
    pub text_config: TextConfig,
    /// The vision tower.
    pub vision_config: VisionConfig,
    /// `<|image_pad|>`: one per merged image patch.
    pub image_token_id: i64,
    /// `<|video_pad|>`.
    pub video_token_id: i64,
    /// `<|vision_start|>`.
    pub vision_start_token_id: i64,
    /// `<|vision_end|>`.
    pub vision_end_token_id: i64,
    /// Whether `lm_head` is the transposed embedding matrix.
    pub tie_word_embeddings: bool,
    /// Rotary base of the language model.
    pub rope_theta: f64,
    /// Split of the rotary half-dimension between temporal, height and width positions.
    pub mrope_section: Vec<i64>,
    /// Rotary base of the vision tower.
    pub vision_rope_theta: f64,
    /// The file as read, kept so that an export writes back what was loaded.
    pub raw: Value,
}

impl Config {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw: Value = read_json(path)?;
        Self::from_value(raw, path)
    }

    /// Resolves a parsed `config.json`; `path` names the file in errors.
    pub fn from_value(raw: Value, path: &Path) -> Result<Self> {
        let json_error = |error| PolicyError::Json {
            path: path.to_path_buf(),
            error,
        };
        let top: TopLevel = serde_json::from_value(raw.clone()).map_err(json_error)?;
        if let Some(model_type) = &top.model_type
            && model_type != "qwen2_5_vl"
        {
            return Err(unsupported(
                path,
                "model_type",
                format!("{model_type:?} (expected \"qwen2_5_vl\")"),
            ));
        }
        let text_value = raw
            .get("text_config")
            .cloned()
            .unwrap_or_else(|| raw.clone());
        let text_config: TextConfig = serde_json::from_value(text_value).map_err(json_error)?;
        let vision_value =
            raw.get("vision_config")
                .cloned()
                .ok_or_else(|| PolicyError::Config {
                    path: path.to_path_buf(),
                    message: "no `vision_config`".to_owned(),
                })?;
        let vision_config: VisionConfig =
            serde_json::from_value(vision_value).map_err(json_error)?;

        let rope = text_config
            .rope_parameters
            .as_ref()
            .or(text_config.rope_scaling.as_ref());
        let rope_theta = rope
            .and_then(|r| r.rope_theta)
            .or(text_config.rope_theta)
            .unwrap_or(1_000_000.0);
        if let Some(kind) = rope.and_then(|r| r.rope_type.as_deref())
            && kind != "default"
            && kind != "mrope"
        {
            return Err(unsupported(
                path,
                "rope_type",
                format!("{kind:?} (only default / mrope rotary)"),
            ));
        }
        let head_dim = text_config.hidden_size / text_config.num_attention_heads;
        let mrope_section = rope
            .and_then(|r| r.mrope_section.clone())
            .unwrap_or_else(|| vec![16, 24, 24]);
        if mrope_section.len() != 3 || mrope_section.iter().sum::<i64>() * 2 != head_dim {
            return Err(unsupported(
                path,
                "mrope_section",
                format!(
                    "{mrope_section:?} (needs three parts summing to head_dim / 2 = {})",
                    head_dim / 2
                ),
            ));
        }
        let vision_rope_theta = vision_config
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .unwrap_or(10_000.0);
        let config = Self {
            tie_word_embeddings: top
                .tie_word_embeddings
                .or(text_config.tie_word_embeddings)
                .unwrap_or(false),
            image_token_id: top.image_token_id,
            video_token_id: top.video_token_id,
            vision_start_token_id: top.vision_start_token_id,
            vision_end_token_id: top.vision_end_token_id,
            text_config,
            vision_config,
            rope_theta,
            mrope_section,
            vision_rope_theta,
            raw,
        };
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let t = &self.text_config;
        let v = &self.vision_config;
        if t.hidden_act != "silu" {
            return Err(unsupported(
                path,
                "hidden_act",
                format!("{:?} (only silu)", t.hidden_act),
            ));
        }
        if v.hidden_act != "silu" {
            return Err(unsupported(
                path,
                "vision_config.hidden_act",
                format!("{:?} (only silu)", v.hidden_act),
            ));
        }
        if t.use_sliding_window == Some(true) {
            return Err(unsupported(
                path,
                "use_sliding_window",
                "true (Qwen2.5-VL decoders use full attention)".into(),
            ));
        }
        if t.hidden_size % t.num_attention_heads != 0 {
            return Err(unsupported(
                path,
                "num_attention_heads",
                "must divide hidden_size".into(),
            ));
        }
        if t.num_attention_heads % self.num_key_value_heads() != 0 {
            return Err(unsupported(
                path,
                "num_key_value_heads",
                "must divide num_attention_heads".into(),
            ));
        }
        if v.hidden_size % v.num_heads != 0 || (v.hidden_size / v.num_heads) % 4 != 0 {
            return Err(unsupported(
                path,
                "vision_config.num_heads",
                "head width must divide by 4".into(),
            ));
        }
        if v.out_hidden_size != t.hidden_size {
            return Err(unsupported(
                path,
                "vision_config.out_hidden_size",
                format!(
                    "{} (must equal hidden_size {})",
                    v.out_hidden_size, t.hidden_size
                ),
            ));
        }
        let unit = v.spatial_merge_size * v.patch_size;
        if v.window_size % unit != 0 {
            return Err(unsupported(
                path,
                "vision_config.window_size",
                format!(
                    "{} (must be a multiple of patch_size * spatial_merge_size = {unit})",
                    v.window_size
                ),
            ));
        }
        if let Some(&bad) = v
            .fullatt_block_indexes
            .iter()
            .find(|&&i| i < 0 || i >= v.depth)
        {
            return Err(unsupported(
                path,
                "vision_config.fullatt_block_indexes",
                format!("{bad} (depth is {})", v.depth),
            ));
        }
        Ok(())
    }

    /// Key/value heads of the decoder.
    #[must_use]
    pub fn num_key_value_heads(&self) -> i64 {
        self.text_config
            .num_key_value_heads
            .unwrap_or(self.text_config.num_attention_heads)
    }

    /// Width of one decoder attention head.
    #[must_use]
    pub fn head_dim(&self) -> i64 {
        self.text_config.hidden_size / self.text_config.num_attention_heads
    }
}

fn unsupported(path: &Path, field: &str, value: String) -> PolicyError {
    PolicyError::Unsupported {
        path: path.to_path_buf(),
        field: field.to_owned(),
        value,
    }
}
