//! The generation benchmark's workload: prompts of a fixed length with one image each, made from
//! a seed, and saved so that another implementation (transformers) can run the same inputs.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{PolicyError, Result};
use crate::generation::Completion;
use crate::qwen2_5_vl::{Config, ImageInput, Sequence};
use crate::scoring::ScoreItem;

/// How many prompts of which shape, and how much to generate for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Distinct prompts.
    pub prompts: usize,
    /// Samples generated per prompt (G).
    pub group: usize,
    /// Tokens per prompt, image tokens included.
    pub prompt_tokens: usize,
    /// Side in pixels of each prompt's square image (a multiple of 28).
    pub image_side: i64,
    /// New tokens per sample; nothing stops early.
    pub new_tokens: i64,
    /// Seed of the token ids and pixel values.
    pub seed: u64,
}

impl Default for Workload {
    /// The reference setting: 8 prompts × G = 8, about 1,200 tokens with one 448 × 448 image
    /// (256 image tokens), 512 new tokens.
    fn default() -> Self {
        Self {
            prompts: 8,
            group: 8,
            prompt_tokens: 1200,
            image_side: 448,
            new_tokens: 512,
            seed: 0,
        }
    }
}

impl Workload {
    /// Image tokens of one prompt (after the 2 × 2 merge).
    #[must_use]
    pub fn image_tokens(&self, config: &Config) -> usize {
        let patches = self.image_side / config.vision_config.patch_size;
        let merge = config.vision_config.spatial_merge_size;
        ((patches / merge) * (patches / merge)) as usize
    }

    /// The prompts: text tokens drawn below the vision special tokens, the image's
    /// `<|vision_start|>`, image tokens and `<|vision_end|>` in the middle, and pixel values
    /// uniform in [−1, 1) (the range of a normalised image).
    pub fn prompts(&self, config: &Config) -> Result<Vec<Sequence>> {
        let factor = config.vision_config.patch_size * config.vision_config.spatial_merge_size;
        if self.image_side < factor || self.image_side % factor != 0 {
            return Err(PolicyError::Input(format!(
                "image side {} is not a positive multiple of {factor}",
                self.image_side
            )));
        }
        let image_tokens = self.image_tokens(config);
        let Some(text) = self.prompt_tokens.checked_sub(image_tokens + 2) else {
            return Err(PolicyError::Input(format!(
                "{} prompt tokens cannot hold the image's {} tokens",
                self.prompt_tokens,
                image_tokens + 2
            )));
        };
        // Every special id of Qwen's vocabulary follows the text tokens.
        let text_vocab = [
            config.image_token_id,
            config.vision_start_token_id,
            config.vision_end_token_id,
            config.text_config.vocab_size,
        ]
        .into_iter()
        .min()
        .unwrap_or(1)
        .max(1);
        let grid = self.image_side / config.vision_config.patch_size;
        let patch_values =
            3 * config.vision_config.temporal_patch_size * config.vision_config.patch_size.pow(2);
        let mut state = self.seed;
        let text_vocab = text_vocab.unsigned_abs();
        Ok((0..self.prompts)
            .map(|_| {
                let mut tokens: Vec<i64> = (0..text / 2)
                    .map(|_| (split_mix(&mut state) % text_vocab) as i64)
                    .collect();
                tokens.push(config.vision_start_token_id);
                tokens.extend(std::iter::repeat_n(config.image_token_id, image_tokens));
                tokens.push(config.vision_end_token_id);
                tokens.extend(
                    (0..text - text / 2).map(|_| (split_mix(&mut state) % text_vocab) as i64),
                );
                let pixels: Vec<f32> = (0..grid * grid * patch_values)
                    .map(|_| (split_mix(&mut state) >> 40) as f32 / (1_u32 << 23) as f32 - 1.0)
                    .collect();
                Sequence {
                    tokens,
                    images: vec![ImageInput {
                        pixel_values: Tensor::from_slice(&pixels).view([grid * grid, patch_values]),
                        grid_thw: [1, grid, grid],
                        geometry: None,
                    }],
                }
            })
            .collect())
    }

    /// Saves `prompts` as safetensors: `input_ids` `(prompts, tokens)`, `pixel_values` (all
    /// images' patches) and `image_grid_thw` `(images, 3)`, the inputs of transformers' `generate`.
    pub fn save(prompts: &[Sequence], path: &Path) -> Result<()> {
        let len = prompts.first().map_or(0, |p| p.tokens.len());
        if prompts.iter().any(|p| p.tokens.len() != len) {
            return Err(PolicyError::Input(
                "saved prompts must have one length".to_owned(),
            ));
        }
        let ids: Vec<i64> = prompts.iter().flat_map(|p| p.tokens.clone()).collect();
        let images: Vec<&ImageInput> = prompts.iter().flat_map(|p| &p.images).collect();
        let grids: Vec<i64> = images.iter().flat_map(|i| i.grid_thw).collect();
        let pixels: Vec<&Tensor> = images.iter().map(|i| &i.pixel_values).collect();
        let tensors = BTreeMap::from([
            (
                "input_ids",
                Tensor::from_slice(&ids).view([prompts.len() as i64, len as i64]),
            ),
            ("pixel_values", Tensor::cat(&pixels, 0).to_kind(Kind::Float)),
            (
                "image_grid_thw",
                Tensor::from_slice(&grids).view([images.len() as i64, 3]),
            ),
        ]);
        let named: Vec<(&str, Tensor)> = tensors.into_iter().collect();
        Tensor::write_safetensors(&named, path).map_err(|e| PolicyError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Each completion appended to its prompt: the sequences of the log-prob pass.
#[must_use]
pub fn completed(prompts: &[Sequence], completions: &[Completion]) -> Vec<Sequence> {
    completions
        .iter()
        .map(|c| {
            let mut sequence = prompts[c.prompt].clone();
            sequence.tokens.extend(&c.tokens);
            sequence
        })
        .collect()
}

/// The log-prob pass's items for `sequences` (made by [`completed`] from the same prompts and
/// completions): each response starts where its prompt ends.
#[must_use]
pub fn score_items<'a>(
    prompts: &[Sequence],
    completions: &[Completion],
    sequences: &'a [Sequence],
) -> Vec<ScoreItem<'a>> {
    sequences
        .iter()
        .zip(completions)
        .map(|(sequence, c)| ScoreItem {
            sequence,
            response_start: prompts[c.prompt].tokens.len(),
        })
        .collect()
}

/// `SplitMix64`: the next value of the sequence seeded by `state`.
pub(crate) fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiny::RandomModel;

    #[test]
    fn prompts_have_the_asked_length_and_one_image_each() {
        let preset = RandomModel::default();
        let config =
            Config::from_value(preset.config_json(400, 300), Path::new("tiny config")).unwrap();
        let workload = Workload {
            prompts: 3,
            prompt_tokens: 40,
            image_side: 56,
            ..Workload::default()
        };
        let prompts = workload.prompts(&config).unwrap();
        assert_eq!(prompts.len(), 3);
        for p in &prompts {
            assert_eq!(p.tokens.len(), 40);
            let image = p.tokens.iter().filter(|&&t| t == config.image_token_id);
            assert_eq!(image.count(), workload.image_tokens(&config));
            assert!(p.tokens.iter().all(|&t| t < config.text_config.vocab_size));
        }
        assert_ne!(prompts[0].tokens, prompts[1].tokens);
        let again = workload.prompts(&config).unwrap();
        assert_eq!(again[2].tokens, prompts[2].tokens);
        assert!(
            again[2].images[0]
                .pixel_values
                .equal(&prompts[2].images[0].pixel_values)
        );
        let short = Workload {
            prompt_tokens: 3,
            ..workload
        };
        assert!(short.prompts(&config).is_err());
    }
}
