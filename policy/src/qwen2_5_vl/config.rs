//! `config.json` of a Qwen2.5-VL checkpoint, in every layout users have.
//!
//! - As published on the Hub: text fields at the top level, rotary settings in `rope_theta` +
//!   `rope_scaling` (`type`), vision fields under `vision_config` (with `in_chans`).
//! - As transformers 4.49 re-saves it: `rope_scaling` with both `type` and `rope_type`, and a
//!   `vision_config` holding only the fields that differ from transformers' defaults.
//! - As transformers 4.53 – 4.57 re-save it: the text fields both at the top level and nested
//!   under `text_config`, `in_chans` beside `in_channels`, `dtype` for `torch_dtype` (4.57).
//! - As transformers 5.x saves it: nested `text_config` / `vision_config`, rotary settings in
//!   `rope_parameters` (with `rope_theta`).
//!
//! Where transformers renamed a key, a file may hold both names: the new name is read, and the
//! two must agree (an error names both otherwise). When the text fields appear both flat and under
//! `text_config`, `text_config` wins, as it does in transformers (4.5x and 5.x build the language
//! model from it). A field a file leaves out takes transformers' default for that field, since
//! that is what transformers loads. Unknown fields are ignored.
//!
//! Field names are those of the Hugging Face files, so a reader can check one against the other.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{PolicyError, Result, read_json};

/// Rotary settings as transformers 5 writes them (`rope_parameters`) or as the Hub files have
/// them (`rope_scaling`, with `rope_theta` beside it).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    /// `default`; the Hub files' legacy `type` (`mrope`, the same rotary) is read into it.
    #[serde(default)]
    pub rope_type: Option<String>,
    /// Base of the rotary frequencies (transformers 5 keeps it here).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// How the rotary half-dimension is split between the temporal, height and width positions.
    #[serde(default)]
    pub mrope_section: Option<Vec<i64>>,
}

/// The language model part (`text_config`, or the top level of a Hub `config.json`). Defaults
/// are transformers' `Qwen2_5_VLTextConfig` defaults (the 72B's sizes).
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    /// Vocabulary size (rows of `embed_tokens`).
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// Width of the residual stream.
    #[serde(default = "default_text_hidden")]
    pub hidden_size: i64,
    /// Width of the `SwiGLU` feed-forward layer.
    #[serde(default = "default_text_intermediate")]
    pub intermediate_size: i64,
    /// Number of decoder layers.
    #[serde(default = "default_text_layers")]
    pub num_hidden_layers: i64,
    /// Query heads.
    #[serde(default = "default_text_heads")]
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention).
    #[serde(default = "default_kv_heads")]
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

/// The vision tower (`vision_config`). Defaults are transformers' `Qwen2_5_VLVisionConfig`
/// defaults: transformers 4.49 saves only the fields that differ from them.
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    /// Number of vision blocks.
    #[serde(default = "default_depth")]
    pub depth: i64,
    /// Width of the vision residual stream.
    #[serde(default = "default_vision_hidden")]
    pub hidden_size: i64,
    /// Activation of the vision feed-forward layers.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Width of the vision feed-forward layers.
    #[serde(default = "default_vision_intermediate")]
    pub intermediate_size: i64,
    /// Attention heads of the vision blocks.
    #[serde(default = "default_vision_heads")]
    pub num_heads: i64,
    /// Image channels (the Hub files' legacy `in_chans` is read into it).
    #[serde(default = "default_channels")]
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
    #[serde(default = "default_vision_hidden")]
    pub out_hidden_size: i64,
    /// Blocks that attend over the whole image instead of windows.
    #[serde(default = "default_full_attention")]
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
fn default_vocab() -> i64 {
    152_064
}
fn default_text_hidden() -> i64 {
    8192
}
fn default_text_intermediate() -> i64 {
    29_568
}
fn default_text_layers() -> i64 {
    80
}
fn default_text_heads() -> i64 {
    64
}
#[allow(clippy::unnecessary_wraps)] // serde's `default` must return the field's type.
fn default_kv_heads() -> Option<i64> {
    Some(8)
}
fn default_text_eps() -> f64 {
    1e-5
}
fn default_max_positions() -> i64 {
    32_768
}
fn default_depth() -> i64 {
    32
}
fn default_vision_hidden() -> i64 {
    3584
}
fn default_vision_intermediate() -> i64 {
    3420
}
fn default_vision_heads() -> i64 {
    16
}
fn default_full_attention() -> Vec<i64> {
    vec![7, 15, 23, 31]
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
        // Nested `text_config` wins over the flat copy 4.53 – 4.57 also write, as in transformers.
        let (text_prefix, mut text_value) = match raw.get("text_config") {
            Some(nested) => ("text_config.", nested.clone()),
            None => ("", raw.clone()),
        };
        let text_object = object_mut(&mut text_value, path, "text_config")?;
        for key in ["rope_parameters", "rope_scaling"] {
            if let Some(Value::Object(rope)) = text_object.get_mut(key) {
                merge_renamed(
                    rope,
                    "rope_type",
                    "type",
                    path,
                    &format!("{text_prefix}{key}."),
                )?;
            }
        }
        let text_config: TextConfig = serde_json::from_value(text_value).map_err(json_error)?;
        let mut vision_value =
            raw.get("vision_config")
                .cloned()
                .ok_or_else(|| PolicyError::Config {
                    path: path.to_path_buf(),
                    message: "no `vision_config`".to_owned(),
                })?;
        let vision_object = object_mut(&mut vision_value, path, "vision_config")?;
        merge_renamed(
            vision_object,
            "in_channels",
            "in_chans",
            path,
            "vision_config.",
        )?;
        if let Some(Value::Object(rope)) = vision_object.get_mut("rope_parameters") {
            merge_renamed(
                rope,
                "rope_type",
                "type",
                path,
                "vision_config.rope_parameters.",
            )?;
        }
        let vision_config: VisionConfig =
            serde_json::from_value(vision_value).map_err(json_error)?;
        check_sizes(&text_config, &vision_config, text_prefix, path)?;

        let (rope_theta, mrope_section) = resolve_rope(&text_config, text_prefix, path)?;
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
        config.check(text_prefix, path)?;
        Ok(config)
    }

    /// Refuses what the model cannot run; `prefix` is where the text fields were read.
    fn check(&self, prefix: &str, path: &Path) -> Result<()> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let text_field = |field: &str| format!("{prefix}{field}");
        if t.hidden_act != "silu" {
            return Err(unsupported(
                path,
                &text_field("hidden_act"),
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
                &text_field("use_sliding_window"),
                "true (Qwen2.5-VL decoders use full attention)".into(),
            ));
        }
        if t.hidden_size % t.num_attention_heads != 0 {
            return Err(unsupported(
                path,
                &text_field("num_attention_heads"),
                format!(
                    "{} (must divide hidden_size {})",
                    t.num_attention_heads, t.hidden_size
                ),
            ));
        }
        if t.num_attention_heads % self.num_key_value_heads() != 0 {
            return Err(unsupported(
                path,
                &text_field("num_key_value_heads"),
                format!(
                    "{} (must divide num_attention_heads {})",
                    self.num_key_value_heads(),
                    t.num_attention_heads
                ),
            ));
        }
        if v.hidden_size % v.num_heads != 0 || (v.hidden_size / v.num_heads) % 4 != 0 {
            return Err(unsupported(
                path,
                "vision_config.num_heads",
                format!(
                    "{} (must divide hidden_size {} into heads whose width divides by 4)",
                    v.num_heads, v.hidden_size
                ),
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

    /// The file as read, with its weights' dtype set to `dtype` (`"bfloat16"`, `"float32"`…)
    /// wherever it records one: `dtype` (transformers 4.57 and 5) and `torch_dtype` (earlier), at the
    /// top level and in `text_config` / `vision_config`. A file recording none gets `torch_dtype`,
    /// which every release reads.
    #[must_use]
    pub fn with_dtype(&self, dtype: &str) -> Value {
        let mut config = self.raw.clone();
        let mut found = false;
        for part in [None, Some("text_config"), Some("vision_config")] {
            let object = match part {
                None => config.as_object_mut(),
                Some(key) => config.get_mut(key).and_then(Value::as_object_mut),
            };
            for (key, value) in object.into_iter().flatten() {
                if key == "dtype" || key == "torch_dtype" {
                    *value = Value::String(dtype.to_owned());
                    found = true;
                }
            }
        }
        if !found {
            config["torch_dtype"] = Value::String(dtype.to_owned());
        }
        config
    }
}

/// The object at `field`, or an error naming it.
fn object_mut<'a>(
    value: &'a mut Value,
    path: &Path,
    field: &str,
) -> Result<&'a mut Map<String, Value>> {
    value.as_object_mut().ok_or_else(|| PolicyError::Config {
        path: path.to_path_buf(),
        message: format!("`{field}` is not an object"),
    })
}

/// Folds a key transformers renamed into its new name. Releases from 4.53 on write both names;
/// the new one is read, and a file whose two names disagree is refused rather than guessed at.
fn merge_renamed(
    object: &mut Map<String, Value>,
    new: &str,
    legacy: &str,
    path: &Path,
    prefix: &str,
) -> Result<()> {
    let Some(old) = object.remove(legacy) else {
        return Ok(());
    };
    match object.get(new) {
        None => {
            object.insert(new.to_owned(), old);
        }
        Some(current) if same_setting(current, &old) => {}
        Some(current) => {
            return Err(disagree(
                path,
                (&format!("{prefix}{new}"), current),
                (&format!("{prefix}{legacy}"), &old),
            ));
        }
    }
    Ok(())
}

/// Whether two values of a renamed key mean the same: numbers by value (`3` and `3.0`), and
/// `mrope`, the Hub files' rotary type, is transformers' `default` under its old name.
fn same_setting(a: &Value, b: &Value) -> bool {
    let canonical = |v: &Value| match v {
        Value::String(s) if s == "mrope" => Value::String("default".to_owned()),
        Value::Number(n) => n.as_f64().map_or_else(|| v.clone(), Value::from),
        _ => v.clone(),
    };
    canonical(a) == canonical(b)
}

/// Two fields of one file that say different things, each named with its value (as JSON).
fn disagree(path: &Path, a: (&str, &Value), b: (&str, &Value)) -> PolicyError {
    PolicyError::Config {
        path: path.to_path_buf(),
        message: format!(
            "`{}` = {} and `{}` = {} disagree; the file must say one thing",
            a.0, a.1, b.0, b.1
        ),
    }
}

/// The first of `candidates` given, after checking that every other one given agrees with it.
fn agree<T: PartialEq + Clone + Into<Value>>(
    path: &Path,
    candidates: &[(String, Option<T>)],
) -> Result<Option<T>> {
    let mut given = candidates
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name, v)));
    let Some((first_name, first)) = given.next() else {
        return Ok(None);
    };
    for (name, value) in given {
        if value != first {
            return Err(disagree(
                path,
                (first_name, &first.clone().into()),
                (name, &value.clone().into()),
            ));
        }
    }
    Ok(Some(first.clone()))
}

/// Rotary base and M-RoPE split of the language model. `rope_parameters` (transformers 5) is read
/// before `rope_scaling` and the flat `rope_theta`; where more than one says something, they must
/// agree.
fn resolve_rope(t: &TextConfig, prefix: &str, path: &Path) -> Result<(f64, Vec<i64>)> {
    let new = t.rope_parameters.as_ref();
    let legacy = t.rope_scaling.as_ref();
    let named = |key: &str, field: &str| format!("{prefix}{key}.{field}");
    // `mrope` is the old name of the same rotary; compare and check the canonical name.
    let canonical = |r: Option<&RopeParameters>| {
        r.and_then(|r| r.rope_type.as_deref())
            .map(|kind| if kind == "mrope" { "default" } else { kind }.to_owned())
    };
    let kind = agree(
        path,
        &[
            (named("rope_parameters", "rope_type"), canonical(new)),
            (named("rope_scaling", "rope_type"), canonical(legacy)),
        ],
    )?;
    if let Some(kind) = kind
        && kind != "default"
    {
        let key = if new.is_some() {
            "rope_parameters"
        } else {
            "rope_scaling"
        };
        return Err(unsupported(
            path,
            &named(key, "rope_type"),
            format!("{kind:?} (only the default M-RoPE rotary, `default` or `mrope`)"),
        ));
    }
    let rope_theta = agree(
        path,
        &[
            (
                named("rope_parameters", "rope_theta"),
                new.and_then(|r| r.rope_theta),
            ),
            (
                named("rope_scaling", "rope_theta"),
                legacy.and_then(|r| r.rope_theta),
            ),
            (format!("{prefix}rope_theta"), t.rope_theta),
        ],
    )?
    .unwrap_or(1_000_000.0);
    let mrope_section = agree(
        path,
        &[
            (
                named("rope_parameters", "mrope_section"),
                new.and_then(|r| r.mrope_section.clone()),
            ),
            (
                named("rope_scaling", "mrope_section"),
                legacy.and_then(|r| r.mrope_section.clone()),
            ),
        ],
    )?
    .unwrap_or_else(|| vec![16, 24, 24]);
    let head_dim = t.hidden_size / t.num_attention_heads;
    if mrope_section.len() != 3 || mrope_section.iter().sum::<i64>() * 2 != head_dim {
        let key = if new.is_some() {
            "rope_parameters"
        } else {
            "rope_scaling"
        };
        return Err(unsupported(
            path,
            &named(key, "mrope_section"),
            format!(
                "{mrope_section:?} (needs three parts summing to head_dim / 2 = {})",
                head_dim / 2
            ),
        ));
    }
    Ok((rope_theta, mrope_section))
}

/// Every size must be positive before anything divides by it.
fn check_sizes(t: &TextConfig, v: &VisionConfig, prefix: &str, path: &Path) -> Result<()> {
    let text = [
        ("vocab_size", t.vocab_size),
        ("hidden_size", t.hidden_size),
        ("intermediate_size", t.intermediate_size),
        ("num_hidden_layers", t.num_hidden_layers),
        ("num_attention_heads", t.num_attention_heads),
        ("num_key_value_heads", t.num_key_value_heads.unwrap_or(1)),
    ];
    let vision = [
        ("depth", v.depth),
        ("hidden_size", v.hidden_size),
        ("intermediate_size", v.intermediate_size),
        ("num_heads", v.num_heads),
        ("in_channels", v.in_channels),
        ("patch_size", v.patch_size),
        ("spatial_merge_size", v.spatial_merge_size),
        ("temporal_patch_size", v.temporal_patch_size),
        ("window_size", v.window_size),
        ("out_hidden_size", v.out_hidden_size),
    ];
    let named = text
        .iter()
        .map(|&(field, value)| (format!("{prefix}{field}"), value))
        .chain(
            vision
                .iter()
                .map(|&(field, value)| (format!("vision_config.{field}"), value)),
        );
    for (field, value) in named {
        if value <= 0 {
            return Err(unsupported(
                path,
                &field,
                format!("{value} (must be positive)"),
            ));
        }
    }
    Ok(())
}

fn unsupported(path: &Path, field: &str, value: String) -> PolicyError {
    PolicyError::Unsupported {
        path: path.to_path_buf(),
        field: field.to_owned(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB_3B: &str = include_str!("../../tests/fixtures/configs/hub/3b/config.json");

    fn hub_3b() -> Value {
        serde_json::from_str(HUB_3B).unwrap()
    }

    /// The text fields of a flat file, as a `text_config` object.
    fn text_part(flat: &Value) -> Value {
        let mut nested = flat.clone();
        nested.as_object_mut().unwrap().remove("vision_config");
        nested
    }

    fn load(value: Value) -> Result<Config> {
        Config::from_value(value, Path::new("ckpt/config.json"))
    }

    fn message(value: Value) -> String {
        load(value).unwrap_err().to_string()
    }

    #[test]
    fn rope_type_and_its_legacy_name_may_both_be_present() {
        let mut value = hub_3b();
        value["rope_scaling"] = serde_json::json!({
            "mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"
        });
        assert_eq!(load(value.clone()).unwrap().mrope_section, vec![16, 24, 24]);
        // transformers 5 writes the legacy name with the old spelling of the same rotary.
        value["rope_scaling"]["type"] = "mrope".into();
        load(value).unwrap();
    }

    #[test]
    fn rope_types_that_disagree_are_named_with_their_values() {
        let mut value = hub_3b();
        value["rope_scaling"] = serde_json::json!({
            "mrope_section": [16, 24, 24], "rope_type": "default", "type": "yarn"
        });
        assert_eq!(
            message(value),
            "ckpt/config.json: `rope_scaling.rope_type` = \"default\" and \
             `rope_scaling.type` = \"yarn\" disagree; the file must say one thing"
        );
    }

    #[test]
    fn in_channels_and_in_chans_may_both_be_present() {
        let mut value = hub_3b();
        value["vision_config"]["in_channels"] = 3.into();
        assert_eq!(load(value.clone()).unwrap().vision_config.in_channels, 3);
        value["vision_config"]["in_chans"] = 4.into();
        let error = message(value);
        assert!(
            error.contains("`vision_config.in_channels` = 3 and `vision_config.in_chans` = 4"),
            "{error}"
        );
    }

    #[test]
    fn the_legacy_name_alone_is_read() {
        let mut value = hub_3b();
        value["vision_config"]["in_chans"] = 1.into();
        assert_eq!(load(value).unwrap().vision_config.in_channels, 1);
    }

    #[test]
    fn nested_text_config_wins_over_the_flat_copy() {
        let mut value = hub_3b();
        value["text_config"] = text_part(&value);
        // A flat field that disagrees is what transformers ignores too.
        value["vocab_size"] = 999.into();
        value["num_hidden_layers"] = 2.into();
        let config = load(value).unwrap();
        assert_eq!(config.text_config.vocab_size, 151_936);
        assert_eq!(config.text_config.num_hidden_layers, 36);
    }

    #[test]
    fn rope_parameters_and_rope_scaling_must_agree() {
        let mut value = hub_3b();
        value["rope_parameters"] = serde_json::json!({
            "mrope_section": [16, 24, 24], "rope_theta": 1_000_000.0, "rope_type": "default"
        });
        load(value.clone()).unwrap();
        value["rope_parameters"]["rope_theta"] = 10_000.0.into();
        let error = message(value);
        assert!(
            error.contains("`rope_parameters.rope_theta` = 10000.0 and `rope_theta` = 1000000.0"),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let mut value = hub_3b();
        value["a_field_from_the_future"] = serde_json::json!({"x": [1, 2]});
        value["vision_config"]["another_one"] = true.into();
        load(value).unwrap();
    }

    #[test]
    fn an_unsupported_value_names_file_field_and_value() {
        let mut value = hub_3b();
        value["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 4.0});
        assert_eq!(
            message(value),
            "ckpt/config.json: unsupported value for `rope_scaling.rope_type`: \"yarn\" (only the \
             default M-RoPE rotary, `default` or `mrope`)"
        );
        let mut nested = hub_3b();
        nested["text_config"] = serde_json::json!({"hidden_act": "gelu"});
        let error = message(nested);
        assert!(
            error.contains("unsupported value for `text_config.hidden_act`: \"gelu\""),
            "{error}"
        );
    }

    #[test]
    fn zero_heads_are_an_error_not_a_division_by_zero() {
        let mut value = hub_3b();
        value["num_attention_heads"] = 0.into();
        assert_eq!(
            message(value),
            "ckpt/config.json: unsupported value for `num_attention_heads`: 0 (must be positive)"
        );
    }

    #[test]
    fn fields_left_out_take_transformers_defaults() {
        // transformers 4.49 writes only the vision fields that differ from its defaults.
        let mut value = hub_3b();
        value["vision_config"] = serde_json::json!({
            "hidden_size": 1280, "in_chans": 3, "out_hidden_size": 2048, "tokens_per_second": 2
        });
        let vision = load(value).unwrap().vision_config;
        assert_eq!(
            (vision.depth, vision.num_heads, vision.intermediate_size),
            (32, 16, 3420)
        );
        assert_eq!(vision.fullatt_block_indexes, vec![7, 15, 23, 31]);
        assert_eq!(vision.window_size, 112);
    }

    #[test]
    fn with_dtype_rewrites_every_dtype_key() {
        let mut value = hub_3b();
        let mut nested = text_part(&value);
        nested["dtype"] = "bfloat16".into();
        value["text_config"] = nested;
        value["dtype"] = "bfloat16".into();
        let written = load(value).unwrap().with_dtype("float32");
        for v in [
            &written["dtype"],
            &written["torch_dtype"],
            &written["text_config"]["dtype"],
            &written["text_config"]["torch_dtype"],
        ] {
            assert_eq!(v, "float32");
        }
        let mut bare = hub_3b();
        bare.as_object_mut().unwrap().remove("torch_dtype");
        assert_eq!(
            load(bare).unwrap().with_dtype("bfloat16")["torch_dtype"],
            "bfloat16"
        );
    }
}
