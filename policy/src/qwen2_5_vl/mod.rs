//! Qwen2.5-VL (Bai et al., 2025, "Qwen2.5-VL Technical Report", arXiv:2502.13923) on tch.
//!
//! Model card: <https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct>. Ported from transformers'
//! `models/qwen2_5_vl/modeling_qwen2_5_vl.py` (5.x), which is the ground truth; the parity tests
//! compare logits and greedy tokens with it.
//!
//! Parameters are created under their Hub checkpoint names (`model.layers.*`, `visual.*`,
//! `lm_head.weight`), so loading is a name match; transformers 5 names
//! (`model.language_model.*`, `model.visual.*`) are mapped on load.

pub mod config;
pub mod text;
pub mod vision;

use tch::{Device, Kind, Tensor, nn};

pub use self::config::Config;
pub use self::text::KvCache;
use self::text::TextModel;
use self::vision::VisionModel;
use crate::error::{PolicyError, Result};
use crate::geometry::GeometryConnector;
use crate::layers::{Linear, Scope};
use crate::lora::LoraState;

/// One image ready for the vision tower: flattened patches and their grid.
#[derive(Debug)]
pub struct ImageInput {
    /// `(t·h·w, channels · temporal_patch · patch²)`, f32 on the CPU.
    pub pixel_values: Tensor,
    /// `[t, h, w]` in patches.
    pub grid_thw: [i64; 3],
    /// Per-patch geometry features `(t·h·w, C)`, f32, rows in the order of `pixel_values`
    /// ([`crate::geometry::geometry_input`] makes them); added to the image's visual tokens
    /// through the model's geometry connector when one is attached, ignored otherwise.
    pub geometry: Option<Tensor>,
}

impl Clone for ImageInput {
    fn clone(&self) -> Self {
        Self {
            pixel_values: self.pixel_values.shallow_clone(),
            grid_thw: self.grid_thw,
            geometry: self.geometry.as_ref().map(Tensor::shallow_clone),
        }
    }
}

impl ImageInput {
    /// This image with per-patch geometry rows `(t·h·w, C)` (checked against the grid).
    pub fn with_geometry(mut self, geometry: Tensor) -> Result<Self> {
        let [t, h, w] = self.grid_thw;
        let size = geometry.size();
        if size.len() != 2 || size[0] != t * h * w || geometry.kind() != Kind::Float {
            return Err(PolicyError::Input(format!(
                "geometry of shape {size:?} ({:?}) for an image grid {:?}: expected ({}, C) f32",
                geometry.kind(),
                self.grid_thw,
                t * h * w
            )));
        }
        self.geometry = Some(geometry);
        Ok(self)
    }

    /// The number of visual tokens the image gives (patches / `merge²`).
    fn tokens(&self, merge: i64) -> i64 {
        let [t, h, w] = self.grid_thw;
        t * h * w / (merge * merge)
    }
}

/// A token sequence with the images its `<|image_pad|>` runs stand for, in order.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    /// Token ids, each image already expanded to `t·h·w / merge²` image tokens.
    pub tokens: Vec<i64>,
    /// The images, in the order their token runs appear.
    pub images: Vec<ImageInput>,
}

/// The full model: vision tower, decoder and output head.
pub struct Qwen2_5VlModel {
    config: Config,
    visual: VisionModel,
    text: TextModel,
    /// `None` when the head is tied to the embeddings.
    lm_head: Option<Linear>,
    lora: Option<std::sync::Arc<LoraState>>,
    geometry: Option<Geometry>,
    device: Device,
}

/// The geometry connector being trained, and under `LoRA` the frozen copy it started from,
/// which the reference policy (adapters off) uses.
struct Geometry {
    live: GeometryConnector,
    reference: Option<GeometryConnector>,
}

/// Where a model's parameters live: the base store (names = checkpoint keys) and, with `LoRA`,
/// the adapter store.
pub struct ModelStores<'a> {
    /// Base parameters.
    pub base: &'a nn::VarStore,
    /// Adapter parameters and their shared switch.
    pub lora: Option<(&'a nn::VarStore, std::sync::Arc<LoraState>)>,
    /// Whether base parameters are trainable (full fine-tuning).
    pub train_base: bool,
}

impl Qwen2_5VlModel {
    /// Creates the parameters (zeros until a checkpoint is loaded into `stores.base`).
    #[must_use]
    pub fn new(config: &Config, stores: &ModelStores) -> Self {
        let lora = stores
            .lora
            .as_ref()
            .map(|(vs, state)| (vs.root(), std::sync::Arc::clone(state)));
        let root = Scope::new(stores.base.root(), lora.clone(), stores.train_base);
        let adapt_vision = lora.as_ref().is_some_and(|(_, s)| s.config.adapt_vision);
        let visual_scope = if adapt_vision {
            root.pp("visual")
        } else {
            root.pp("visual").without_lora()
        };
        let visual = VisionModel::new(&visual_scope, config);
        let text = TextModel::new(&root.pp("model"), config);
        let c = &config.text_config;
        let lm_head = (!config.tie_word_embeddings).then(|| {
            Linear::new(
                &root.without_lora(),
                "lm_head",
                c.hidden_size,
                c.vocab_size,
                false,
            )
        });
        Self {
            config: config.clone(),
            visual,
            text,
            lm_head,
            lora: lora.map(|(_, s)| s),
            geometry: None,
            device: stores.base.device(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device holding the parameters.
    #[must_use]
    pub fn device(&self) -> Device {
        self.device
    }

    /// The parameter dtype.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.text.embed_tokens.kind()
    }

    /// The shared adapter switch, when the model has `LoRA` adapters.
    #[must_use]
    pub fn lora(&self) -> Option<&std::sync::Arc<LoraState>> {
        self.lora.as_ref()
    }

    /// Attaches a geometry connector (replacing any): from now on every image with geometry
    /// gets the connector's output added to its visual tokens. With `LoRA` a frozen copy of its
    /// current values serves the reference policy (adapters off).
    pub fn attach_geometry(&mut self, connector: GeometryConnector) -> Result<()> {
        let hidden = self.config.text_config.hidden_size;
        if connector.out_dim() != hidden || connector.device() != self.device {
            return Err(PolicyError::Input(format!(
                "geometry connector gives {} features on {:?}; the model needs {hidden} on {:?}",
                connector.out_dim(),
                connector.device(),
                self.device
            )));
        }
        let reference = self.lora.is_some().then(|| connector.frozen_copy());
        self.geometry = Some(Geometry {
            live: connector,
            reference,
        });
        Ok(())
    }

    /// The attached geometry connector (the one that trains).
    #[must_use]
    pub fn geometry(&self) -> Option<&GeometryConnector> {
        self.geometry.as_ref().map(|g| &g.live)
    }

    /// Token embeddings `(batch, seq, hidden)` of `tokens` `(batch, seq)` (on the model's
    /// device), with the image tokens replaced by the visual tokens of `images`.
    pub fn embed(&self, tokens: &Tensor, images: &[&ImageInput]) -> Result<Tensor> {
        let embeds = Tensor::embedding(&self.text.embed_tokens, tokens, -1, false, false);
        if images.is_empty() {
            return Ok(embeds);
        }
        let image_mask = tokens.eq(self.config.image_token_id);
        let features = self.image_features(images)?.to_kind(embeds.kind());
        let expected = image_mask.sum(Kind::Int64).int64_value(&[]);
        if expected != features.size()[0] {
            return Err(PolicyError::Input(format!(
                "{expected} image tokens in the prompt, but the images give {} features",
                features.size()[0]
            )));
        }
        Ok(embeds.masked_scatter(&image_mask.unsqueeze(-1), &features))
    }

    /// Visual tokens `(tokens, hidden)` of the images: the vision tower's features, plus the
    /// geometry connector's output for each image with geometry when a connector is attached.
    pub fn image_features(&self, images: &[&ImageInput]) -> Result<Tensor> {
        let pixel_values = Tensor::cat(
            &images.iter().map(|i| &i.pixel_values).collect::<Vec<_>>(),
            0,
        );
        let grids: Vec<[i64; 3]> = images.iter().map(|i| i.grid_thw).collect();
        let features = self.visual.forward(&pixel_values, &grids)?;
        let Some(geometry) = &self.geometry else {
            return Ok(features);
        };
        if images.iter().all(|i| i.geometry.is_none()) {
            return Ok(features);
        }
        // Adapters off is the reference policy, whose connector is the one training started
        // from.
        let connector = match (&geometry.reference, &self.lora) {
            (Some(reference), Some(lora)) if !lora.enabled() => reference,
            _ => &geometry.live,
        };
        let merge = self.config.vision_config.spatial_merge_size;
        let mut start = 0;
        let mut parts = Vec::with_capacity(images.len());
        for image in images {
            let n = image.tokens(merge);
            let part = features.narrow(0, start, n);
            start += n;
            parts.push(match &image.geometry {
                Some(g) if g.size().first() != Some(&(n * merge * merge)) => {
                    return Err(PolicyError::Input(format!(
                        "geometry of shape {:?} for an image grid {:?}: one row per patch needed",
                        g.size(),
                        image.grid_thw
                    )));
                }
                // A zero term added in the features' dtype leaves every value as it was (a
                // −0 becomes +0, which computes alike), so a fresh connector changes nothing.
                Some(g) => &part + connector.forward(g, part.kind())?,
                None => part,
            });
        }
        Ok(Tensor::cat(&parts, 0))
    }

    /// Training path: final hidden states `(batch, seq, hidden)` of whole sequences.
    /// `key_valid` `(batch, seq)` marks real tokens; `None` means no padding.
    pub fn forward_hidden(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        key_valid: Option<&Tensor>,
    ) -> Tensor {
        self.text.forward(embeds, positions, key_valid)
    }

    /// Shared-prompt path, first half: every decoder layer's keys and values of whole prompts
    /// (arguments as [`Self::forward_hidden`]), in the autograd graph.
    pub(crate) fn prefix_keys_values(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        key_valid: Option<&Tensor>,
    ) -> Vec<(Tensor, Tensor)> {
        self.text.prefix_keys_values(embeds, positions, key_valid)
    }

    /// Shared-prompt path, second half: hidden states `(batch, new, hidden)` of new tokens after
    /// the prompts of [`Self::prefix_keys_values`], sequence `i` after prompt `owners[i]`;
    /// `keys_valid` `(batch, prompt + new)` marks real tokens.
    pub(crate) fn forward_after(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        prefix: &[(Tensor, Tensor)],
        owners: &Tensor,
        keys_valid: &Tensor,
    ) -> Tensor {
        self.text
            .forward_after(embeds, positions, prefix, owners, keys_valid)
    }

    /// Generation path: hidden states of new tokens, their keys and values appended to `cache`.
    pub fn forward_cached(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        valid: &Tensor,
        cache: &mut KvCache,
    ) -> Tensor {
        self.text.forward_cached(embeds, positions, valid, cache)
    }

    /// Logits `(…, vocab)` of hidden states `(…, hidden)`.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => tied_head(hidden, &self.text.embed_tokens),
        }
    }

    /// An empty cache sized for this model.
    #[must_use]
    pub fn new_cache(&self, batch: i64, capacity: i64) -> KvCache {
        KvCache::new(&self.config, batch, capacity, self.kind(), self.device)
    }

    /// Multimodal rotary positions of one unpadded sequence (transformers' `get_rope_index`):
    /// text tokens count up on all three axes; an image's tokens take the next position on the
    /// temporal axis and row / column offsets on the height / width axes; text after an image
    /// resumes one past the image's largest position. Returns the `(3, len)` positions flattened
    /// axis-major, and the next position after the sequence.
    pub fn rope_index(&self, sequence: &Sequence) -> Result<(Vec<i64>, i64)> {
        let m = self.config.vision_config.spatial_merge_size;
        let tokens = &sequence.tokens;
        let n = tokens.len();
        let mut axes = [
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        ];
        let mut images = sequence.images.iter();
        let mut next = 0_i64;
        let mut i = 0;
        while i < n {
            if tokens[i] != self.config.image_token_id {
                for axis in &mut axes {
                    axis.push(next);
                }
                next += 1;
                i += 1;
                continue;
            }
            let run = tokens[i..]
                .iter()
                .take_while(|&&t| t == self.config.image_token_id)
                .count();
            let image = images.next().ok_or_else(|| {
                PolicyError::Input(format!(
                    "image token run at position {i} has no image ({} given)",
                    sequence.images.len()
                ))
            })?;
            let [t, h, w] = image.grid_thw;
            let (lh, lw) = (h / m, w / m);
            if (t * lh * lw) as usize != run {
                return Err(PolicyError::Input(format!(
                    "image token run at position {i} has {run} tokens, image grid {:?} needs {}",
                    image.grid_thw,
                    t * lh * lw
                )));
            }
            for ti in 0..t {
                for r in 0..lh {
                    for c in 0..lw {
                        axes[0].push(next + ti);
                        axes[1].push(next + r);
                        axes[2].push(next + c);
                    }
                }
            }
            next += lh.max(lw);
            i += run;
        }
        if images.next().is_some() {
            return Err(PolicyError::Input(format!(
                "{} images given but the tokens hold fewer image runs",
                sequence.images.len()
            )));
        }
        let flat = axes.concat();
        Ok((flat, next))
    }
}

/// `hidden @ embeddings^T`. On the CPU a few rows (a decode step's batch) are computed as
/// `embeddings @ hidden^T`: MKL's kernel for 5 to 15 rows against a transposed weight takes time
/// in proportion to the rows (76 ms for 8 rows against a 151,936 × 512 head on one core), where
/// the other orientation reads the weight once whatever the rows (54 ms).
fn tied_head(hidden: &Tensor, embeddings: &Tensor) -> Tensor {
    let mut shape = hidden.size();
    let width = shape.pop().unwrap_or(0);
    let rows: i64 = shape.iter().product();
    if hidden.device() != Device::Cpu || !(5..16).contains(&rows) {
        return hidden.linear::<Tensor>(embeddings, None);
    }
    shape.push(embeddings.size()[0]);
    embeddings
        .matmul(&hidden.reshape([rows, width]).tr())
        .tr()
        .contiguous()
        .view(shape.as_slice())
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::tied_head;

    #[test]
    fn the_tied_head_gives_the_same_logits_in_either_orientation() {
        tch::manual_seed(0);
        let embeddings = Tensor::randn([300, 32], (Kind::Float, Device::Cpu));
        // 2 × 4 rows take the other orientation, 1 × 3 and 4 × 5 rows the plain product.
        for shape in [[2, 4, 32], [1, 3, 32], [4, 5, 32]] {
            let hidden = Tensor::randn(shape, (Kind::Float, Device::Cpu));
            let expected = hidden.linear::<Tensor>(&embeddings, None);
            let got = tied_head(&hidden, &embeddings);
            assert_eq!(got.size(), [shape[0], shape[1], 300]);
            let delta = (&got - &expected).abs().max().double_value(&[]);
            assert!(delta < 1e-4, "{shape:?}: {delta}");
        }
    }
}
