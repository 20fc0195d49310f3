//! Image metrics for rewards: how visible each object is, and where the floor is free.

use image::GrayImage;

use crate::{Camera, RenderError, RenderOptions, Renderer, Scene, View};

/// How much of one object the camera sees.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectVisibility {
    /// The object's index (`i + 1` for the room's `i`-th object).
    pub index: u32,
    /// The object's id.
    pub id: String,
    /// Pixels showing the object in the full render.
    pub visible_pixels: u32,
    /// Pixels the object covers when drawn alone.
    pub covered_pixels: u32,
}

impl ObjectVisibility {
    /// Visible over covered pixels; 0 for an object entirely outside the image.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        if self.covered_pixels == 0 {
            0.0
        } else {
            self.visible_pixels as f32 / self.covered_pixels as f32
        }
    }
}

/// What a pixel of the free-floor picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloorCell {
    /// Outside the room.
    Outside,
    /// Floor under an object someone could not walk through.
    Occupied,
    /// Free floor.
    Free,
}

/// Which objects block the floor: those that reach lower than `head_room` above it and stand
/// taller than `step` (so rugs and ceiling lamps leave the floor free).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorClearance {
    /// Objects whose bottom is at or above this height (m) do not block.
    pub head_room: f32,
    /// Objects whose top is at or below this height (m) do not block.
    pub step: f32,
}

impl Default for FloorClearance {
    fn default() -> Self {
        Self {
            head_room: 1.8,
            step: 0.05,
        }
    }
}

/// The top-down free-floor picture of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeFloor {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// One cell per pixel, row-major from the top-left (north-west) pixel.
    pub cells: Vec<FloorCell>,
    /// The top-view camera, to map pixels to floor coordinates.
    pub camera: Camera,
}

impl FreeFloor {
    /// Free floor over all floor inside the room (0 when the room covers no pixel).
    #[must_use]
    pub fn free_fraction(&self) -> f32 {
        let inside = self
            .cells
            .iter()
            .filter(|&&c| c != FloorCell::Outside)
            .count();
        let free = self.cells.iter().filter(|&&c| c == FloorCell::Free).count();
        if inside == 0 {
            0.0
        } else {
            free as f32 / inside as f32
        }
    }

    /// The picture as greyscale: free white, occupied black, outside mid-grey.
    #[must_use]
    pub fn to_image(&self) -> GrayImage {
        let pixels = self
            .cells
            .iter()
            .map(|c| match c {
                FloorCell::Outside => 128,
                FloorCell::Occupied => 0,
                FloorCell::Free => 255,
            })
            .collect();
        GrayImage::from_raw(self.width, self.height, pixels).expect("one cell per pixel")
    }
}

impl Renderer {
    /// Per-object visibility in each scene's view: visible pixels in the full render over the
    /// pixels the object covers when drawn alone. Objects come in each scene's layout order.
    pub fn visibility(
        &mut self,
        scenes: &[Scene],
        options: &RenderOptions,
    ) -> Result<Vec<Vec<ObjectVisibility>>, RenderError> {
        let options = RenderOptions {
            labels: false,
            ..*options
        };
        let refs: Vec<&Scene> = scenes.iter().collect();
        let drawn = self.draw_batches(&refs, &options, true)?;
        let mut results = Vec::with_capacity(scenes.len());
        let per_scene = drawn.iter().flat_map(|d| {
            d.frames
                .iter()
                .zip(&d.masks)
                .map(move |(frame, mask)| (frame, mask, d.words as usize))
        });
        for (scene, (frame, mask, words)) in scenes.iter().zip(per_scene) {
            let visible = frame.pixel_counts(scene.max_index());
            let mut covered = vec![0_u32; scene.max_index() as usize + 1];
            for pixel in mask.chunks_exact(words) {
                for (w, &bits) in pixel.iter().enumerate() {
                    let mut bits = bits;
                    while bits != 0 {
                        let bit = bits.trailing_zeros() as usize;
                        covered[w * 32 + bit + 1] += 1;
                        bits &= bits - 1;
                    }
                }
            }
            results.push(
                scene
                    .objects
                    .iter()
                    .map(|o| ObjectVisibility {
                        index: o.index,
                        id: o.id.clone(),
                        visible_pixels: visible[o.index as usize],
                        covered_pixels: covered[o.index as usize],
                    })
                    .collect(),
            );
        }
        Ok(results)
    }

    /// The top-down free-floor picture of each scene at `width` × `height` pixels.
    pub fn free_floor(
        &mut self,
        scenes: &[Scene],
        width: u32,
        height: u32,
        clearance: FloorClearance,
    ) -> Result<Vec<FreeFloor>, RenderError> {
        let blocking: Vec<Scene> = scenes
            .iter()
            .map(|s| s.filtered(|o| o.bottom() < clearance.head_room && o.top() > clearance.step))
            .collect();
        let options = RenderOptions {
            width,
            height,
            view: View::Top,
            labels: false,
        };
        let frames = self.render_batch(&blocking, &options)?;
        Ok(frames
            .into_iter()
            .zip(scenes)
            .map(|(frame, scene)| {
                let cells = frame
                    .ids
                    .iter()
                    .enumerate()
                    .map(|(i, &id)| {
                        let (px, py) = (i as u32 % width, i as u32 / width);
                        let p = frame.camera.pixel_to_floor(px, py, width, height);
                        if p.x < 0.0 || p.y < 0.0 || p.x > scene.size.x || p.y > scene.size.y {
                            FloorCell::Outside
                        } else if id == 0 {
                            FloorCell::Free
                        } else {
                            FloorCell::Occupied
                        }
                    })
                    .collect();
                FreeFloor {
                    width,
                    height,
                    cells,
                    camera: frame.camera,
                }
            })
            .collect())
    }
}
