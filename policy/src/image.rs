//! Image preprocessing exactly as transformers' Qwen2-VL image processor (PIL backend): RGB
//! conversion (alpha composited over white), `smart_resize` to multiples of 28 within the pixel
//! budget, Pillow's bicubic resampling (reimplemented bit for bit: fixed-point coefficients, two
//! passes in the order of the chosen Pillow release, 8-bit rounding between passes), rescale,
//! normalisation, and patches of 14 × 14 with temporal patch 2 and 2 × 2 merge order.

use std::path::Path;

use image::{DynamicImage, RgbImage};
use serde::Deserialize;
use serde_json::Value;
use tch::Tensor;

use crate::error::{PolicyError, Result, read_json};
use crate::geometry::merge_order;
use crate::qwen2_5_vl::ImageInput;

/// `OpenAI` CLIP channel means, the processor's default.
pub const CLIP_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// `OpenAI` CLIP channel standard deviations, the processor's default.
pub const CLIP_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// `size` as transformers 5 writes it.
#[derive(Debug, Clone, Deserialize)]
struct SizeField {
    #[serde(default)]
    shortest_edge: Option<i64>,
    #[serde(default)]
    longest_edge: Option<i64>,
}

/// The processor settings of `preprocessor_config.json` (or the `image_processor` part of
/// transformers 5's `processor_config.json`). Field names are the Hugging Face ones.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageProcessorConfig {
    /// Smallest pixel count after resizing.
    #[serde(default = "default_min_pixels")]
    pub min_pixels: i64,
    /// Largest pixel count after resizing.
    #[serde(default = "default_max_pixels")]
    pub max_pixels: i64,
    /// Patch side in pixels.
    #[serde(default = "default_patch")]
    pub patch_size: i64,
    /// Frames per temporal patch.
    #[serde(default = "default_temporal")]
    pub temporal_patch_size: i64,
    /// Side of the merged square of patches.
    #[serde(default = "default_merge")]
    pub merge_size: i64,
    /// Channel means.
    #[serde(default = "default_mean")]
    pub image_mean: Vec<f64>,
    /// Channel standard deviations.
    #[serde(default = "default_std")]
    pub image_std: Vec<f64>,
    /// Whether to resize.
    #[serde(default = "yes")]
    pub do_resize: bool,
    /// Whether to multiply by `rescale_factor`.
    #[serde(default = "yes")]
    pub do_rescale: bool,
    /// The rescale factor (1 / 255).
    #[serde(default = "default_rescale")]
    pub rescale_factor: f64,
    /// Whether to normalise.
    #[serde(default = "yes")]
    pub do_normalize: bool,
    /// PIL resampling filter; only 3 (bicubic) is supported.
    #[serde(default = "default_resample")]
    pub resample: i64,
    /// Which Pillow release's pass order to reproduce (our key, not Hugging Face's).
    #[serde(default)]
    pub pass_order: PassOrder,
    #[serde(default)]
    size: Option<SizeField>,
}

/// The order of Pillow's two resampling passes, which decides the last bit of a few pixels.
///
/// Pillow up to 12.3 always resamples rows first. Pillow 13 resamples columns first when the
/// height shrinks by more than twice as many pixels as the width (`h − H > 2 (w − W)`, `H < h`);
/// the 8-bit rounding between the passes then moves some pixels by a level or two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOrder {
    /// Pillow ≤ 12.3: horizontal pass first, always.
    Pillow12,
    /// Pillow 13, the current release.
    #[default]
    Pillow13,
}

impl PassOrder {
    /// Whether resizing `(in_w, in_h)` to `(out_w, out_h)` runs the vertical pass first.
    #[must_use]
    pub fn vertical_first(self, in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> bool {
        let shrink = |from: usize, to: usize| from as i64 - to as i64;
        self == Self::Pillow13 && out_h < in_h && shrink(in_h, out_h) > 2 * shrink(in_w, out_w)
    }
}

fn default_min_pixels() -> i64 {
    56 * 56
}
fn default_max_pixels() -> i64 {
    28 * 28 * 1280
}
fn default_patch() -> i64 {
    14
}
fn default_temporal() -> i64 {
    2
}
fn default_merge() -> i64 {
    2
}
fn default_mean() -> Vec<f64> {
    CLIP_MEAN.to_vec()
}
fn default_std() -> Vec<f64> {
    CLIP_STD.to_vec()
}
fn yes() -> bool {
    true
}
fn default_rescale() -> f64 {
    1.0 / 255.0
}
fn default_resample() -> i64 {
    3
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        serde_json::from_value(Value::Object(serde_json::Map::new()))
            .expect("all fields have defaults")
    }
}

impl ImageProcessorConfig {
    /// Reads the processor settings of a checkpoint: `preprocessor_config.json`, else the
    /// `image_processor` object of `processor_config.json`, else the defaults.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let pre = dir.join("preprocessor_config.json");
        let processor = dir.join("processor_config.json");
        let (value, path) = if pre.exists() {
            (read_json::<Value>(&pre)?, pre)
        } else if processor.exists() {
            let value: Value = read_json(&processor)?;
            (
                value.get("image_processor").cloned().unwrap_or(value),
                processor,
            )
        } else {
            return Ok(Self::default());
        };
        let mut config: Self =
            serde_json::from_value(value).map_err(|error| PolicyError::Json {
                path: path.clone(),
                error,
            })?;
        // transformers 5 keeps the pixel budget in `size`; it wins over the legacy fields.
        if let Some(size) = config.size.take() {
            config.min_pixels = size.shortest_edge.unwrap_or(config.min_pixels);
            config.max_pixels = size.longest_edge.unwrap_or(config.max_pixels);
        }
        if config.resample != 3 {
            return Err(PolicyError::Unsupported {
                path,
                field: "resample".to_owned(),
                value: format!("{} (only 3, bicubic)", config.resample),
            });
        }
        if config.image_mean.len() != 3 || config.image_std.len() != 3 {
            return Err(PolicyError::Unsupported {
                path,
                field: "image_mean / image_std".to_owned(),
                value: "need three channels".to_owned(),
            });
        }
        Ok(config)
    }

    /// The processor settings as a `preprocessor_config.json` value (for new checkpoints).
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2_5_VLProcessor",
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
            "do_resize": self.do_resize,
            "do_rescale": self.do_rescale,
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
            "resample": self.resample,
            "do_convert_rgb": true,
        })
    }

    /// Decodes an image file and preprocesses it.
    pub fn load(&self, path: &Path) -> Result<ImageInput> {
        let image = image::open(path).map_err(|e| PolicyError::Image {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.preprocess(&image).map_err(|e| match e {
            PolicyError::Image { message, .. } => PolicyError::Image {
                what: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Preprocesses a decoded image into patches and its grid.
    pub fn preprocess(&self, image: &DynamicImage) -> Result<ImageInput> {
        let rgb = to_rgb(image);
        let (height, width) = (i64::from(rgb.height()), i64::from(rgb.width()));
        let (h, w) = self.model_size(height, width)?;
        let rgb = if (h, w) == (height, width) {
            rgb
        } else {
            resize_bicubic(&rgb, w as u32, h as u32, self.pass_order)
        };
        Ok(self.patchify(&rgb))
    }

    /// The `(height, width)` in pixels the model sees of an image of `height × width`: resized
    /// by [`smart_resize`], or as is when resizing is off (then the sides must be multiples of
    /// `patch_size · merge_size`).
    pub fn model_size(&self, height: i64, width: i64) -> Result<(i64, i64)> {
        let factor = self.patch_size * self.merge_size;
        if self.do_resize {
            return smart_resize(height, width, factor, self.min_pixels, self.max_pixels);
        }
        if height % factor != 0 || width % factor != 0 {
            return Err(PolicyError::Image {
                what: "input".to_owned(),
                message: format!(
                    "{width}×{height} is not a multiple of {factor} and resizing is off"
                ),
            });
        }
        Ok((height, width))
    }

    /// Normalised channel-first values laid out as transformers' `patchify`: patches in 2 × 2
    /// merge order, each `(channel, temporal, row, column)` with the frame repeated.
    fn patchify(&self, rgb: &RgbImage) -> ImageInput {
        let (p, m, tp) = (
            self.patch_size as usize,
            self.merge_size as usize,
            self.temporal_patch_size as usize,
        );
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let (gh, gw) = (h / p, w / p);
        let raw = rgb.as_raw();
        let value = |c: usize, y: usize, x: usize| -> f32 {
            let mut v = f64::from(raw[(y * w + x) * 3 + c]);
            if self.do_rescale {
                v *= self.rescale_factor;
            }
            if self.do_normalize {
                v = (v - self.image_mean[c]) / self.image_std[c];
            }
            v as f32
        };
        let per_patch = 3 * tp * p * p;
        let mut out = Vec::with_capacity(gh * gw * per_patch);
        for (row, col) in merge_order(gh, gw, m) {
            let (y0, x0) = (row * p, col * p);
            for c in 0..3 {
                for _ in 0..tp {
                    for dy in 0..p {
                        for dx in 0..p {
                            out.push(value(c, y0 + dy, x0 + dx));
                        }
                    }
                }
            }
        }
        ImageInput {
            pixel_values: Tensor::from_slice(&out).view([(gh * gw) as i64, per_patch as i64]),
            grid_thw: [1, gh as i64, gw as i64],
            geometry: None,
        }
    }
}

/// transformers' `smart_resize`: the nearest multiples of `factor` (Python's round-half-even),
/// scaled down or up to fit `[min_pixels, max_pixels]` keeping the aspect ratio.
pub fn smart_resize(
    height: i64,
    width: i64,
    factor: i64,
    min_pixels: i64,
    max_pixels: i64,
) -> Result<(i64, i64)> {
    if height < 1 || width < 1 {
        return Err(PolicyError::Image {
            what: "input".to_owned(),
            message: format!("empty image {width}×{height}"),
        });
    }
    let (hf, wf, f) = (height as f64, width as f64, factor as f64);
    if hf.max(wf) / hf.min(wf) > 200.0 {
        return Err(PolicyError::Image {
            what: "input".to_owned(),
            message: format!("aspect ratio of {width}×{height} exceeds 200"),
        });
    }
    let mut h_bar = (hf / f).round_ties_even() as i64 * factor;
    let mut w_bar = (wf / f).round_ties_even() as i64 * factor;
    if h_bar * w_bar > max_pixels {
        let beta = (hf * wf / max_pixels as f64).sqrt();
        h_bar = factor.max((hf / beta / f).floor() as i64 * factor);
        w_bar = factor.max((wf / beta / f).floor() as i64 * factor);
    } else if h_bar * w_bar < min_pixels {
        let beta = (min_pixels as f64 / (hf * wf)).sqrt();
        h_bar = (hf * beta / f).ceil() as i64 * factor;
        w_bar = (wf * beta / f).ceil() as i64 * factor;
    }
    Ok((h_bar, w_bar))
}

/// transformers' `convert_to_rgb`: RGB as is, alpha composited over white with Pillow's
/// `alpha_composite` integer arithmetic, grey replicated.
fn to_rgb(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(px[3]);
        // Pillow: coef1 = a·128, coef2 = (255 − a)·128 over an opaque white background.
        let blend = |c: u8| -> u8 {
            let tmp = (u32::from(c) * alpha + 255 * (255 - alpha)) * 128 + (0x80 << 7);
            let div255 = ((tmp >> 8) + tmp) >> 8;
            (div255 >> 7) as u8
        };
        *out = image::Rgb([blend(px[0]), blend(px[1]), blend(px[2])]);
    }
    rgb
}

/// Pillow's fixed-point precision for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (a = −0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output pixel, the first
/// input pixel and fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filter_scale;
            // Pillow truncates `center ± support + 0.5` toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|&w| {
                    let w = if total == 0.0 { w } else { w / total };
                    let scaled = w * f64::from(1_u32 << PRECISION_BITS);
                    (if scaled < 0.0 {
                        scaled - 0.5
                    } else {
                        scaled + 0.5
                    }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize(size, Image.BICUBIC)` on an RGB image, passes in `order`.
fn resize_bicubic(src: &RgbImage, out_w: u32, out_h: u32, order: PassOrder) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    if order.vertical_first(w, h, out_w as usize, out_h as usize) {
        // Columns first is rows first on the transposed image.
        transpose(&resize_rows_first(&transpose(src), out_h, out_w))
    } else {
        resize_rows_first(src, out_w, out_h)
    }
}

/// The image mirrored about its main diagonal: pixel (x, y) moves to (y, x).
fn transpose(src: &RgbImage) -> RgbImage {
    RgbImage::from_fn(src.height(), src.width(), |x, y| *src.get_pixel(y, x))
}

/// Pillow's two-pass bicubic resize with the horizontal pass first.
fn resize_rows_first(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    let horizontal = coefficients(in_w, out_w);
    let vertical = coefficients(in_h, out_h);
    let round = 1_i64 << (PRECISION_BITS - 1);
    let raw = src.as_raw();
    // Horizontal pass first, only over the rows the vertical pass reads (as Pillow does).
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let (first_row, rows) = if need_v {
        let first = vertical[0].0;
        let (last_start, last_w) = &vertical[out_h - 1];
        (first, last_start + last_w.len() - first)
    } else {
        (0, in_h)
    };
    let temp: Vec<u8> = if need_h {
        let mut temp = vec![0_u8; rows * out_w * 3];
        for y in 0..rows {
            let row = &raw[(y + first_row) * in_w * 3..(y + first_row + 1) * in_w * 3];
            for (xx, (xmin, weights)) in horizontal.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = round;
                    for (k, &w) in weights.iter().enumerate() {
                        acc += i64::from(row[(xmin + k) * 3 + c]) * i64::from(w);
                    }
                    temp[(y * out_w + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        temp
    } else {
        raw[first_row * in_w * 3..(first_row + rows) * in_w * 3].to_vec()
    };
    if !need_v {
        return RgbImage::from_raw(out_w as u32, out_h as u32, temp).expect("sizes match");
    }
    let mut out = vec![0_u8; out_h * out_w * 3];
    for (yy, (ymin, weights)) in vertical.iter().enumerate() {
        let ymin = ymin - first_row;
        for x in 0..out_w * 3 {
            let mut acc = round;
            for (k, &w) in weights.iter().enumerate() {
                acc += i64::from(temp[(ymin + k) * out_w * 3 + x]) * i64::from(w);
            }
            out[yy * out_w * 3 + x] = clip8(acc);
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("sizes match")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_rounds_half_to_even_like_python() {
        // 42 / 28 = 1.5 → 2 (even), 70 / 28 = 2.5 → 2 (even)
        assert_eq!(
            smart_resize(42, 70, 28, 56 * 56, 28 * 28 * 1280).unwrap(),
            (56, 56)
        );
    }

    #[test]
    fn smart_resize_respects_the_pixel_budget() {
        let (h, w) = smart_resize(1000, 2000, 28, 56 * 56, 28 * 28 * 64).unwrap();
        assert!(
            h * w <= 28 * 28 * 64 && h % 28 == 0 && w % 28 == 0,
            "{h}×{w}"
        );
        let (h, w) = smart_resize(10, 10, 28, 56 * 56, 28 * 28 * 64).unwrap();
        assert_eq!((h, w), (56, 56));
        assert!(smart_resize(1, 400, 28, 56 * 56, 1 << 20).is_err());
    }

    #[test]
    fn resize_to_the_same_size_is_the_identity() {
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7]));
        for order in [PassOrder::Pillow12, PassOrder::Pillow13] {
            assert_eq!(resize_bicubic(&img, 5, 4, order), img);
        }
    }

    #[test]
    fn pillow_13_resamples_columns_first_only_when_the_height_shrinks_most() {
        let order = PassOrder::Pillow13;
        // 37 × 100: the threshold measured against Pillow 13.0 is H ≤ 2W + 25.
        assert!(order.vertical_first(37, 100, 20, 65));
        assert!(!order.vertical_first(37, 100, 20, 66));
        // Wider and lower: columns first; wider and taller, or no height change: rows first.
        assert!(order.vertical_first(100, 60, 112, 56));
        assert!(!order.vertical_first(20, 20, 56, 37));
        assert!(!order.vertical_first(50, 40, 30, 40));
        assert!(!PassOrder::Pillow12.vertical_first(37, 100, 20, 20));
    }
}
