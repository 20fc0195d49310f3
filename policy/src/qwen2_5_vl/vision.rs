//! The Qwen2.5-VL vision tower: patch embedding, 2D rotary positions, window attention with a
//! few full-attention blocks, `SwiGLU` MLPs and the 2×2 patch merger.
//!
//! Port of `Qwen2_5_VisionTransformerPretrainedModel` in transformers'
//! `models/qwen2_5_vl/modeling_qwen2_5_vl.py` and the helpers of `vision_utils.py`.
//! Attention over ragged segments (windows, or whole images) runs as one batched
//! `scaled_dot_product_attention` over segments padded to the longest one, with padded keys
//! masked out: the same result as transformers' per-segment loop, in one kernel call.

use tch::{Device, Kind, Tensor};

use super::config::{Config, VisionConfig};
use crate::error::{PolicyError, Result};
use crate::geometry::merge_order;
use crate::layers::{Linear, RmsNorm, Scope, rotate_half};

const VISION_EPS: f64 = 1e-6;

/// Ragged segments of a packed sequence, as a padded batch: `gather` picks each segment's rows
/// (padding repeats row 0), `key_mask` hides the padding, `scatter` picks the real rows back out
/// of the flattened padded output.
struct Segments {
    count: i64,
    longest: i64,
    gather: Tensor,
    key_mask: Tensor,
    scatter: Tensor,
}

impl Segments {
    /// `lengths` in sequence order; `None` when the whole sequence is a single segment.
    fn new(lengths: &[i64], device: Device) -> Option<Self> {
        if lengths.len() <= 1 {
            return None;
        }
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let mut gather = Vec::new();
        let mut mask = Vec::new();
        let mut scatter = Vec::new();
        let mut start = 0;
        for (s, &len) in lengths.iter().enumerate() {
            for j in 0..longest {
                let real = j < len;
                gather.push(if real { start + j } else { 0 });
                mask.push(real);
                if real {
                    scatter.push(s as i64 * longest + j);
                }
            }
            start += len;
        }
        let count = lengths.len() as i64;
        Some(Self {
            count,
            longest,
            gather: Tensor::from_slice(&gather).to(device),
            key_mask: Tensor::from_slice(&mask)
                .to(device)
                .view([count, 1, 1, longest]),
            scatter: Tensor::from_slice(&scatter).to(device),
        })
    }
}

/// Everything the tower derives from the image grids alone (no weights involved).
struct GridPlan {
    /// Order of merged units for window attention (`window_index`).
    window_index: Tensor,
    /// Its inverse.
    reverse_index: Tensor,
    /// Rotary `(cos, sin)`, already in window order: `(patches, head_dim)`, f32.
    rotary: (Tensor, Tensor),
    windows: Option<Segments>,
    images: Option<Segments>,
}

struct VisionAttention {
    qkv: Linear,
    proj: Linear,
    num_heads: i64,
}

impl VisionAttention {
    fn forward(
        &self,
        x: &Tensor,
        rotary: &(Tensor, Tensor),
        segments: Option<&Segments>,
    ) -> Tensor {
        let (n, dim) = x.size2().expect("vision hidden states are (patches, dim)");
        let head_dim = dim / self.num_heads;
        // (patches, 3, heads, head_dim) → three (patches, heads, head_dim)
        let qkv = self
            .qkv
            .forward(x)
            .reshape([n, 3, self.num_heads, head_dim])
            .permute([1, 0, 2, 3]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let kind = q.kind();
        let (cos, sin) = (rotary.0.unsqueeze(-2), rotary.1.unsqueeze(-2));
        let rope = |t: &Tensor| {
            let t = t.to_kind(Kind::Float);
            (&t * &cos + rotate_half(&t) * &sin).to_kind(kind)
        };
        let (q, k) = (rope(&q), rope(&k));
        let out = match segments {
            None => {
                // (1, heads, patches, head_dim)
                let [q, k, v] = [&q, &k, &v].map(|t| t.transpose(0, 1).unsqueeze(0));
                let o = Tensor::scaled_dot_product_attention::<Tensor>(
                    &q, &k, &v, None, 0.0, false, None, false,
                );
                o.squeeze_dim(0).transpose(0, 1).reshape([n, dim])
            }
            Some(seg) => {
                // (segments, heads, longest, head_dim)
                let [q, k, v] = [&q, &k, &v].map(|t| {
                    t.index_select(0, &seg.gather)
                        .view([seg.count, seg.longest, self.num_heads, head_dim])
                        .transpose(1, 2)
                });
                let o = Tensor::scaled_dot_product_attention(
                    &q,
                    &k,
                    &v,
                    Some(&seg.key_mask),
                    0.0,
                    false,
                    None,
                    false,
                );
                o.transpose(1, 2)
                    .reshape([seg.count * seg.longest, dim])
                    .index_select(0, &seg.scatter)
            }
        };
        self.proj.forward(&out)
    }
}

// Field names are the checkpoint's module names.
#[allow(clippy::struct_field_names)]
struct VisionMlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl VisionMlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(x).silu() * self.up_proj.forward(x)))
    }
}

struct VisionBlock {
    norm1: RmsNorm,
    norm2: RmsNorm,
    attn: VisionAttention,
    mlp: VisionMlp,
}

struct PatchMerger {
    ln_q: RmsNorm,
    fc1: Linear,
    fc2: Linear,
    merged_dim: i64,
}

/// The vision tower (`visual.*` in Hub checkpoints).
pub(crate) struct VisionModel {
    config: VisionConfig,
    patch_embed: tch::Tensor,
    inv_freq: Tensor,
    blocks: Vec<VisionBlock>,
    merger: PatchMerger,
    device: Device,
}

impl VisionModel {
    pub(crate) fn new(scope: &Scope, config: &Config) -> Self {
        let c = &config.vision_config;
        let dim = c.hidden_size;
        let linear = |s: &Scope, name, i, o| Linear::new(s, name, i, o, true);
        let patch_embed = scope.pp("patch_embed").pp("proj").param(
            "weight",
            &[
                dim,
                c.in_channels,
                c.temporal_patch_size,
                c.patch_size,
                c.patch_size,
            ],
            false,
        );
        let blocks = (0..c.depth)
            .map(|i| {
                let s = scope.pp("blocks").pp(&i.to_string());
                let attn = s.pp("attn");
                let mlp = s.pp("mlp");
                VisionBlock {
                    norm1: RmsNorm::new(&s, "norm1", dim, VISION_EPS),
                    norm2: RmsNorm::new(&s, "norm2", dim, VISION_EPS),
                    attn: VisionAttention {
                        qkv: linear(&attn, "qkv", dim, 3 * dim),
                        proj: linear(&attn, "proj", dim, dim),
                        num_heads: c.num_heads,
                    },
                    mlp: VisionMlp {
                        gate_proj: linear(&mlp, "gate_proj", dim, c.intermediate_size),
                        up_proj: linear(&mlp, "up_proj", dim, c.intermediate_size),
                        down_proj: linear(&mlp, "down_proj", c.intermediate_size, dim),
                    },
                }
            })
            .collect();
        let merged_dim = dim * c.spatial_merge_size * c.spatial_merge_size;
        let m = scope.pp("merger");
        let merger = PatchMerger {
            ln_q: RmsNorm::new(&m, "ln_q", dim, VISION_EPS),
            fc1: linear(&m.pp("mlp"), "0", merged_dim, merged_dim),
            fc2: linear(&m.pp("mlp"), "2", merged_dim, c.out_hidden_size),
            merged_dim,
        };
        let device = patch_embed.device();
        // Axial rotary: head_dim / 4 frequencies per axis, h and w concatenated, then doubled.
        let spatial_dim = dim / c.num_heads / 2;
        let exponents = Tensor::arange_start_step(0, spatial_dim, 2, (Kind::Float, device))
            / spatial_dim as f64;
        let inv_freq = Tensor::pow_scalar(config.vision_rope_theta, &exponents).reciprocal();
        Self {
            config: c.clone(),
            patch_embed,
            inv_freq,
            blocks,
            merger,
            device,
        }
    }

    /// Merged image features `(sum of t·h·w / merge², out_hidden_size)` for flattened patches
    /// `(sum of t·h·w, channels · temporal · patch²)` and their grids.
    pub(crate) fn forward(&self, pixel_values: &Tensor, grid_thw: &[[i64; 3]]) -> Result<Tensor> {
        let c = &self.config;
        let patches: i64 = grid_thw.iter().map(|g| g[0] * g[1] * g[2]).sum();
        let width = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
        if pixel_values.size() != [patches, width] {
            return Err(PolicyError::Input(format!(
                "pixel values have shape {:?}, the image grids {grid_thw:?} need [{patches}, {width}]",
                pixel_values.size()
            )));
        }
        let plan = self.plan(grid_thw)?;
        let kind = self.patch_embed.kind();
        let dim = c.hidden_size;
        let weight = self.patch_embed.view([dim, width]);
        // A stride-equals-kernel Conv3d is a matrix product over flattened patches.
        let x = pixel_values
            .to_device(self.device)
            .to_kind(kind)
            .matmul(&weight.tr());
        let unit = c.spatial_merge_size * c.spatial_merge_size;
        let mut x = reorder(&x, &plan.window_index, unit);
        for (i, block) in self.blocks.iter().enumerate() {
            let full = c.fullatt_block_indexes.contains(&(i as i64));
            let segments = if full {
                plan.images.as_ref()
            } else {
                plan.windows.as_ref()
            };
            x = &x
                + block
                    .attn
                    .forward(&block.norm1.forward(&x), &plan.rotary, segments);
            x = &x + block.mlp.forward(&block.norm2.forward(&x));
        }
        let merged = self
            .merger
            .ln_q
            .forward(&x)
            .view([-1, self.merger.merged_dim]);
        let merged = self
            .merger
            .fc2
            .forward(&self.merger.fc1.forward(&merged).gelu("none"));
        Ok(merged.index_select(0, &plan.reverse_index))
    }

    fn plan(&self, grid_thw: &[[i64; 3]]) -> Result<GridPlan> {
        let c = &self.config;
        let m = c.spatial_merge_size;
        let unit = m * m;
        let window = c.window_size / m / c.patch_size;
        let mut positions: Vec<i64> = Vec::new();
        let mut window_index: Vec<i64> = Vec::new();
        let mut window_lengths: Vec<i64> = Vec::new();
        let mut image_lengths: Vec<i64> = Vec::new();
        let mut offset = 0;
        for &[t, h, w] in grid_thw {
            if t < 1 || h % m != 0 || w % m != 0 || h == 0 || w == 0 {
                return Err(PolicyError::Input(format!(
                    "image grid [{t}, {h}, {w}] is not a positive multiple of the merge size {m}"
                )));
            }
            // Patch positions, block-major over the m×m merge squares.
            for _ in 0..t {
                for (row, col) in merge_order(h as usize, w as usize, m as usize) {
                    positions.extend([row as i64, col as i64]);
                }
                image_lengths.push(h * w);
            }
            let (lh, lw) = (h / m, w / m);
            // transformers pads by a whole window when the side is already a multiple; empty
            // windows vanish either way.
            let (nh, nw) = ((lh + window - 1) / window, (lw + window - 1) / window);
            for ti in 0..t {
                for wh in 0..nh {
                    for ww in 0..nw {
                        let mut count = 0;
                        for r in wh * window..((wh + 1) * window).min(lh) {
                            for col in ww * window..((ww + 1) * window).min(lw) {
                                window_index.push(offset + ti * lh * lw + r * lw + col);
                                count += 1;
                            }
                        }
                        if count > 0 {
                            window_lengths.push(count * unit);
                        }
                    }
                }
            }
            offset += t * lh * lw;
        }
        let device = self.device;
        let window_index = Tensor::from_slice(&window_index).to(device);
        let reverse_index = window_index.argsort(0, false);
        let n = positions.len() as i64 / 2;
        let positions = Tensor::from_slice(&positions)
            .view([n, 2])
            .to(device)
            .to_kind(Kind::Float);
        // (patches, 2, head_dim / 4) → (patches, head_dim / 2) → (patches, head_dim)
        let freqs = positions.unsqueeze(-1) * &self.inv_freq;
        let freqs = freqs.view([n, -1]);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        let rotary = (
            reorder(&emb.cos(), &window_index, unit),
            reorder(&emb.sin(), &window_index, unit),
        );
        Ok(GridPlan {
            window_index,
            reverse_index,
            rotary,
            windows: Segments::new(&window_lengths, device),
            images: Segments::new(&image_lengths, device),
        })
    }
}

/// Reorders rows of `x` (patches, …) in groups of `unit` by `index` over groups.
fn reorder(x: &Tensor, index: &Tensor, unit: i64) -> Tensor {
    let size = x.size();
    x.reshape([size[0] / unit, unit, -1])
        .index_select(0, index)
        .reshape(size)
}
