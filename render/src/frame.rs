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
        let mut counts = vec![0; max_index as usize + 1];
        for &id in &self.ids {
            if let Some(count) = counts.get_mut(id as usize) {
                *count += 1;
            }
        }
        counts
    }
}
