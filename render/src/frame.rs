//! Rendered images: colour, object ids and depth of one view of one scene.

use std::path::Path;

use image::{ImageBuffer, Luma, RgbaImage};

use crate::{Camera, RenderError};

/// One rendered view.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// RGBA8 colour, row-major from the top-left pixel.
    pub color: Vec<u8>,
    /// Object index per pixel: 0 for the room or background, `i + 1` for the room's `i`-th object.
    pub ids: Vec<u32>,
    /// Distance along the view axis per pixel (m); infinity where nothing was drawn.
    pub depth: Vec<f32>,
    /// The camera that drew it, to map pixels to the room and back.
    pub camera: Camera,
}

impl Frame {
    /// The colour image.
    #[must_use]
    pub fn color_image(&self) -> RgbaImage {
        RgbaImage::from_raw(self.width, self.height, self.color.clone())
            .expect("colour buffer holds width × height RGBA pixels")
    }

    /// The object-index image as 16-bit greyscale (indices above 65535 saturate).
    #[must_use]
    pub fn ids_image(&self) -> ImageBuffer<Luma<u16>, Vec<u16>> {
        let pixels = self
            .ids
            .iter()
            .map(|&id| u16::try_from(id).unwrap_or(u16::MAX))
            .collect();
        ImageBuffer::from_raw(self.width, self.height, pixels)
            .expect("id buffer holds width × height pixels")
    }

    /// Writes the colour image as PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), RenderError> {
        self.color_image()
            .save(path)
            .map_err(|source| RenderError::Image {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Writes the object-index image as 16-bit greyscale PNG.
    pub fn save_ids_png(&self, path: &Path) -> Result<(), RenderError> {
        self.ids_image()
            .save(path)
            .map_err(|source| RenderError::Image {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Number of pixels showing each object index, indexed by object index.
    #[must_use]
    pub fn pixel_counts(&self, max_index: u32) -> Vec<u32> {
        // Renders are runs of pixels showing one object, so count runs: a block of pixels all
        // equal to the current one costs one vector compare and a register add, where a plain
        // histogram makes every increment wait on the previous one to the same counter.
        const BLOCK: usize = 8;
        let discard = max_index as usize + 1;
        let mut counts = vec![0u32; discard + 1];
        let Some(&first) = self.ids.first() else {
            return vec![0; discard];
        };
        let (mut current, mut run) = (first, 0u32);
        let blocks = self.ids.chunks_exact(BLOCK);
        let rest = blocks.remainder();
        for block in blocks.chain([rest]) {
            // Counting matches, unlike `all`, has no early exit and compiles to vector compares.
            if block.iter().filter(|&&id| id == current).count() == block.len() {
                run += block.len() as u32;
                continue;
            }
            for &id in block {
                if id == current {
                    run += 1;
                } else {
                    counts[(current as usize).min(discard)] += run;
                    (current, run) = (id, 1);
                }
            }
        }
        counts[(current as usize).min(discard)] += run;
        counts.truncate(discard);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::View;

    #[test]
    fn pixel_counts_count_every_index_and_drop_those_above_the_maximum() {
        // 11 pixels: a full block of 8 and a remainder, runs, and a stray index 9.
        let ids = vec![0, 0, 2, 2, 2, 1, 9, 0, 2, 1, 3];
        let frame = Frame {
            width: 11,
            height: 1,
            color: vec![0; 44],
            depth: vec![1.0; 11],
            ids,
            camera: Camera::new(View::Top, glam::Vec3::new(4.0, 3.0, 2.5), 1.0),
        };
        assert_eq!(frame.pixel_counts(3), [3, 2, 4, 1]);
        assert_eq!(frame.pixel_counts(1), [3, 2]);
    }
}
