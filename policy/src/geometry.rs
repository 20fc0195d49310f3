//! The geometry channel (Spatial-MLLM, 2025): per-patch 3D features of an image (room-frame
//! points, depth, validity, …) merged 2 × 2 exactly as the vision patches are, through a
//! connector `RMSNorm → Linear → GELU → Linear` and added to the visual tokens.
//!
//! The connector's last layer starts at zero, so a fresh connector adds exactly nothing: a model
//! with the channel computes what it computed without it until training moves that layer. Its
//! parameters live in their own f32 `VarStore` (saved as [`GEOMETRY_FILE`] beside the model or
//! the adapters) and meet the visual tokens in the model's compute dtype.
//!
//! The helpers turn a per-pixel feature map of a rendered image into the per-patch rows of
//! [`crate::ImageInput::geometry`]: [`geometry_input`] does it all (patch grid as the processor
//! would make it, patch means, merge order).

use std::ops::Range;
use std::path::Path;

use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::error::{PolicyError, Result};
use crate::image::ImageProcessorConfig;
use crate::layers::{Linear, RmsNorm, Scope};
use crate::qwen2_5_vl::Config;
use crate::store::{self, OwnStore};

/// The connector's file name in a model directory or a run checkpoint.
pub const GEOMETRY_FILE: &str = "geometry.safetensors";

/// The norm's epsilon, Qwen2's.
const NORM_EPS: f64 = 1e-6;

/// The connector's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeometryConfig {
    /// Features per vision patch (`C`); a visual token gets `merge² · C`.
    pub channels: usize,
    /// Width of the connector's hidden layer.
    pub hidden: i64,
}

/// `RMSNorm(m²·C) → Linear(m²·C, hidden) → GELU → Linear(hidden, text hidden size)`, on its own
/// f32 `VarStore` (parameter names `norm.weight`, `fc1.*`, `fc2.*`).
pub struct GeometryConnector {
    config: GeometryConfig,
    merge: i64,
    out: i64,
    vs: nn::VarStore,
    norm: RmsNorm,
    fc1: Linear,
    fc2: Linear,
}

impl std::fmt::Debug for GeometryConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeometryConnector")
            .field("config", &self.config)
            .field("merge", &self.merge)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl OwnStore for GeometryConnector {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
}

impl GeometryConnector {
    /// Parameters of zero value (norm weight one) for `merge × merge` patches per token and
    /// `out` outputs on `device`.
    fn build(config: GeometryConfig, merge: i64, out: i64, device: Device) -> Result<Self> {
        if config.channels == 0 || config.hidden < 1 {
            return Err(PolicyError::Input(format!(
                "geometry connector: channels ({}) and hidden ({}) must be positive",
                config.channels, config.hidden
            )));
        }
        let vs = nn::VarStore::new(device);
        let scope = Scope::new(vs.root(), None, true);
        let input = merge * merge * config.channels as i64;
        let norm = RmsNorm::new(&scope, "norm", input, NORM_EPS);
        let fc1 = Linear::new(&scope, "fc1", input, config.hidden, true);
        let fc2 = Linear::new(&scope, "fc2", config.hidden, out, true);
        Ok(Self {
            config,
            merge,
            out,
            vs,
            norm,
            fc1,
            fc2,
        })
    }

    /// A fresh connector for `model`: the first layer's weight uniform in ±1/√fan-in drawn from
    /// `seed` (the same seed gives the same weights on any device), biases and the last layer
    /// zero, norm weight one.
    pub fn new(config: GeometryConfig, model: &Config, device: Device, seed: u64) -> Result<Self> {
        let connector = Self::build(
            config,
            model.vision_config.spatial_merge_size,
            model.text_config.hidden_size,
            device,
        )?;
        store::fill_uniform(&connector.variable("fc1.weight"), seed);
        Ok(connector)
    }

    /// Reads a connector saved by [`Self::save`] for `model` (its sizes from the file's shapes).
    pub fn load(path: &Path, model: &Config, device: Device) -> Result<Self> {
        let tensors = store::read_tensors(path)?;
        let shape = |name: &str| {
            store::shape_of(&tensors, name, path, "a geometry connector has fc1 and fc2")
        };
        let fc1 = shape("fc1.weight")?;
        let merge = model.vision_config.spatial_merge_size;
        let unit = merge * merge;
        if fc1.len() != 2 || fc1[1] % unit != 0 {
            return Err(PolicyError::Safetensors {
                path: path.to_path_buf(),
                message: format!(
                    "`fc1.weight` has shape {fc1:?}: expected (hidden, {unit} · channels)"
                ),
            });
        }
        let config = GeometryConfig {
            channels: (fc1[1] / unit) as usize,
            hidden: fc1[0],
        };
        let connector = Self::build(config, merge, model.text_config.hidden_size, device)?;
        store::copy_from(&connector.vs, &tensors, path)?;
        Ok(connector)
    }

    /// A copy whose parameters do not train: the reference policy's connector under `LoRA`.
    #[must_use]
    pub fn frozen_copy(&self) -> Self {
        let copy = Self::build(self.config, self.merge, self.out, self.vs.device())
            .expect("the sizes were valid for self");
        tch::no_grad(|| {
            for (name, mut variable) in copy.vs.variables() {
                variable.copy_(&self.variable(&name));
                let _ = variable.set_requires_grad(false);
            }
        });
        copy
    }

    /// The sizes.
    #[must_use]
    pub fn config(&self) -> GeometryConfig {
        self.config
    }

    /// The output width (the text model's hidden size).
    #[must_use]
    pub fn out_dim(&self) -> i64 {
        self.out
    }

    /// The device holding the parameters.
    #[must_use]
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    fn variable(&self, name: &str) -> Tensor {
        self.vs.variables()[name].shallow_clone()
    }

    /// The additive term `(patches / merge², out)` in `kind` of one image's geometry rows
    /// `(patches, channels)` (f32, on any device, in the processor's patch order).
    pub fn forward(&self, geometry: &Tensor, kind: Kind) -> Result<Tensor> {
        let unit = self.merge * self.merge;
        let channels = self.config.channels as i64;
        let size = geometry.size();
        if size.len() != 2 || size[1] != channels || size[0] % unit != 0 {
            return Err(PolicyError::Input(format!(
                "geometry of shape {size:?}: the connector needs (patches, {channels}) with \
                 patches a multiple of {unit}"
            )));
        }
        let x = geometry
            .to_device(self.vs.device())
            .to_kind(Kind::Float)
            .reshape([size[0] / unit, unit * channels]);
        let hidden = self.fc1.forward(&self.norm.forward(&x)).gelu("none");
        Ok(self.fc2.forward(&hidden).to_kind(kind))
    }
}

/// Patch `(row, column)` pairs of a `grid_h × grid_w` patch grid in the processor's order: the
/// `merge × merge` squares row by row, and within each square its patches row by row, so that
/// each visual token's patches are `merge²` consecutive rows.
pub fn merge_order(
    grid_h: usize,
    grid_w: usize,
    merge: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..grid_h / merge).flat_map(move |bh| {
        (0..grid_w / merge).flat_map(move |bw| {
            (0..merge * merge).map(move |k| (bh * merge + k / merge, bw * merge + k % merge))
        })
    })
}

/// Reorders a row-major per-patch grid `(grid_h, grid_w, channels)` into the processor's patch
/// order ([`merge_order`]): the rows of [`crate::ImageInput::geometry`].
pub fn reorder_patches(
    grid: &[f32],
    grid_h: usize,
    grid_w: usize,
    channels: usize,
    merge: usize,
) -> Result<Vec<f32>> {
    if grid.len() != grid_h * grid_w * channels {
        return Err(PolicyError::Input(format!(
            "a {grid_h} × {grid_w} patch grid of {channels} channels has {} values, got {}",
            grid_h * grid_w * channels,
            grid.len()
        )));
    }
    if merge == 0 || !grid_h.is_multiple_of(merge) || !grid_w.is_multiple_of(merge) {
        return Err(PolicyError::Input(format!(
            "the patch grid {grid_h} × {grid_w} is not a multiple of the merge size {merge}"
        )));
    }
    let mut out = Vec::with_capacity(grid.len());
    for (r, c) in merge_order(grid_h, grid_w, merge) {
        let start = (r * grid_w + c) * channels;
        out.extend_from_slice(&grid[start..start + channels]);
    }
    Ok(out)
}

/// The pixels of cell `cell` of `cells` equal cells over `pixels` pixels: those the cell
/// overlaps (at least one, also when cells outnumber pixels).
fn cell_pixels(cell: usize, cells: usize, pixels: usize) -> Range<usize> {
    let start = cell * pixels / cells;
    let end = ((cell + 1) * pixels).div_ceil(cells);
    start..end.max(start + 1).min(pixels)
}

/// Per-patch means of a per-pixel map `(height, width, channels)` (row-major, channels
/// interleaved) over a `grid_h × grid_w` patch grid, row-major `(grid_h, grid_w, channels)`.
/// Each patch averages the pixels its area overlaps, so when the processor keeps the image's
/// size (sides multiples of 28) a patch is exactly its 14 × 14 pixels, and when it resizes
/// the patches cover the same parts of the scene the resized pixels show.
pub fn pool_patches(
    map: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    grid_h: usize,
    grid_w: usize,
) -> Result<Vec<f32>> {
    if map.len() != width * height * channels || width == 0 || height == 0 || channels == 0 {
        return Err(PolicyError::Input(format!(
            "a {width} × {height} map of {channels} channels needs {} values, got {}",
            width * height * channels,
            map.len()
        )));
    }
    if let Some(i) = map.iter().position(|v| !v.is_finite()) {
        return Err(PolicyError::Input(format!(
            "geometry map value {} at pixel (x {}, y {}), channel {} is not finite",
            map[i],
            i / channels % width,
            i / channels / width,
            i % channels
        )));
    }
    let mut out = Vec::with_capacity(grid_h * grid_w * channels);
    let mut sum = vec![0.0_f64; channels];
    for r in 0..grid_h {
        let rows = cell_pixels(r, grid_h, height);
        for c in 0..grid_w {
            let cols = cell_pixels(c, grid_w, width);
            sum.fill(0.0);
            for y in rows.clone() {
                let line =
                    &map[(y * width + cols.start) * channels..(y * width + cols.end) * channels];
                for pixel in line.chunks_exact(channels) {
                    for (s, v) in sum.iter_mut().zip(pixel) {
                        *s += f64::from(*v);
                    }
                }
            }
            let n = (rows.len() * cols.len()) as f64;
            out.extend(sum.iter().map(|s| (s / n) as f32));
        }
    }
    Ok(out)
}

/// The [`crate::ImageInput::geometry`] of an image of `width × height` pixels preprocessed by
/// `processor`, from its per-pixel features `map` (row-major `(height, width, channels)`,
/// channels interleaved, finite): per-patch means over the patch grid the processor makes of
/// the image (resized or not), in its patch order; `(patches, channels)` f32 on the CPU.
pub fn geometry_input(
    processor: &ImageProcessorConfig,
    map: &[f32],
    width: usize,
    height: usize,
    channels: usize,
) -> Result<Tensor> {
    let (h, w) = processor.model_size(height as i64, width as i64)?;
    let patch = processor.patch_size;
    let (grid_h, grid_w) = ((h / patch) as usize, (w / patch) as usize);
    let pooled = pool_patches(map, width, height, channels, grid_h, grid_w)?;
    let rows = reorder_patches(
        &pooled,
        grid_h,
        grid_w,
        channels,
        processor.merge_size as usize,
    )?;
    Ok(Tensor::from_slice(&rows).view([(grid_h * grid_w) as i64, channels as i64]))
}

#[cfg(test)]
// Means of small integers and moved values are exact.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn merge_order_walks_two_by_two_squares_row_by_row() {
        let order: Vec<_> = merge_order(2, 4, 2).collect();
        assert_eq!(
            order,
            [
                (0, 0),
                (0, 1),
                (1, 0),
                (1, 1),
                (0, 2),
                (0, 3),
                (1, 2),
                (1, 3)
            ]
        );
    }

    #[test]
    fn reorder_moves_each_patch_with_its_channels() {
        // 2 × 4 grid, two channels: value = 10·row + column, and its negation.
        let grid: Vec<f32> = (0..2)
            .flat_map(|r| (0..4).flat_map(move |c| [(10 * r + c) as f32, -((10 * r + c) as f32)]))
            .collect();
        let out = reorder_patches(&grid, 2, 4, 2, 2).unwrap();
        let firsts: Vec<f32> = out.chunks(2).map(|p| p[0]).collect();
        assert_eq!(firsts, [0.0, 1.0, 10.0, 11.0, 2.0, 3.0, 12.0, 13.0]);
        assert!(out.chunks(2).all(|p| p[1] == -p[0]));
        assert!(reorder_patches(&grid, 2, 4, 3, 2).is_err());
        assert!(reorder_patches(&grid[..12], 3, 2, 2, 2).is_err());
    }

    #[test]
    fn pooling_an_unresized_image_averages_each_14_pixel_patch() {
        // 28 × 56 pixels, one channel: value = x + 100·y.
        let (w, h) = (56, 28);
        let map: Vec<f32> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x + 100 * y) as f32))
            .collect();
        let pooled = pool_patches(&map, w, h, 1, 2, 4).unwrap();
        // Patch (r, c) covers x in 14c..14c+14 and y in 14r..14r+14: mean x 14c + 6.5.
        for r in 0..2 {
            for c in 0..4 {
                let expect = (14 * c) as f32 + 6.5 + 100.0 * ((14 * r) as f32 + 6.5);
                assert_eq!(pooled[r * 4 + c], expect, "patch ({r}, {c})");
            }
        }
        let mut bad = map.clone();
        bad[3 * w + 5] = f32::NAN;
        let error = pool_patches(&bad, w, h, 1, 2, 4).unwrap_err().to_string();
        assert!(error.contains("x 5, y 3"), "{error}");
        assert!(pool_patches(&map[1..], w, h, 1, 2, 4).is_err());
    }

    #[test]
    fn every_patch_gets_pixels_when_the_processor_enlarges_the_image() {
        assert_eq!(cell_pixels(0, 4, 2), 0..1);
        assert_eq!(cell_pixels(3, 4, 2), 1..2);
        assert_eq!(cell_pixels(2, 16, 224), 28..42);
        let map = vec![1.0_f32; 2 * 3];
        assert_eq!(pool_patches(&map, 2, 3, 1, 4, 4).unwrap(), vec![1.0; 16]);
    }

    #[test]
    fn geometry_input_follows_the_processor_grid_and_order() {
        let mut processor = ImageProcessorConfig::default();
        // The default pixel budget would enlarge so small an image.
        processor.min_pixels = 28 * 28;
        // 56 × 28: grid 2 × 4, one value per patch = its row-major index.
        let (w, h) = (56, 28);
        let map: Vec<f32> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y / 14 * 4 + x / 14) as f32))
            .collect();
        let rows = geometry_input(&processor, &map, w, h, 1).unwrap();
        assert_eq!(rows.size(), [8, 1]);
        let values = Vec::<f32>::try_from(rows.view([-1])).unwrap();
        assert_eq!(values, [0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
    }
}
