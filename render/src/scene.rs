//! Scenes: a room and a layout checked and converted into what the GPU draws.

use std::path::PathBuf;

use glam::Vec3;
use metaspatial_env::{Layout, Room};

use crate::RenderError;

/// Thickness of the floor slab and the walls, drawn outside the room's inner box (m).
pub const WALL_THICKNESS: f32 = 0.08;

/// One placed object, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneObject {
    /// Object index as written to id buffers: `i + 1` for the `i`-th object in room order.
    pub index: u32,
    /// The object's id in its room.
    pub id: String,
    /// Its category, which picks its colour.
    pub category: String,
    /// Centre of its box (m).
    pub center: Vec3,
    /// Heading in degrees, clockwise seen from above; 0 faces +y.
    pub heading: f32,
    /// Box size: length (left–right), width (front–back), height (m).
    pub size: Vec3,
    /// GLB/glTF asset scaled to the box, if the object names one.
    pub asset: Option<PathBuf>,
}

impl SceneObject {
    /// Height of the box's bottom face (m).
    #[must_use]
    pub fn bottom(&self) -> f32 {
        self.center.z - 0.5 * self.size.z
    }

    /// Height of the box's top face (m).
    #[must_use]
    pub fn top(&self) -> f32 {
        self.center.z + 0.5 * self.size.z
    }

    /// Whether the point `(x, y)` lies inside the box's footprint seen from above.
    #[must_use]
    pub fn footprint_contains(&self, x: f32, y: f32) -> bool {
        let (sin, cos) = self.heading.to_radians().sin_cos();
        let (dx, dy) = (x - self.center.x, y - self.center.y);
        // Inverse of the clockwise turn: back into the object's own frame.
        let local_x = dx * cos - dy * sin;
        let local_y = dx * sin + dy * cos;
        local_x.abs() <= 0.5 * self.size.x && local_y.abs() <= 0.5 * self.size.y
    }
}

/// A room with its placed objects, checked for drawable values.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// The room's id, for error messages.
    pub room: String,
    /// Inner room size: length (x), width (y), height (z) in metres.
    pub size: Vec3,
    /// The placed objects, in layout order.
    pub objects: Vec<SceneObject>,
}

impl Scene {
    /// The empty room, as shown on the first turn.
    pub fn empty(room: &Room) -> Result<Self, RenderError> {
        Self::new(room, &Layout::default())
    }

    /// The room with the layout's objects placed.
    ///
    /// Errors name the object when a pose refers to an unknown id, places an object twice, or
    /// holds a non-finite value, and when an object's size is not positive and finite.
    pub fn new(room: &Room, layout: &Layout) -> Result<Self, RenderError> {
        let size = Vec3::new(
            room.size.length as f32,
            room.size.width as f32,
            room.size.height as f32,
        );
        if !size.is_finite() || size.min_element() <= 0.0 {
            return Err(RenderError::Room {
                room: room.id.clone(),
                reason: format!(
                    "size must be positive and finite, got {} × {} × {} m",
                    room.size.length, room.size.width, room.size.height
                ),
            });
        }
        let object_error = |object: &str, reason: String| RenderError::Object {
            room: room.id.clone(),
            object: object.to_owned(),
            reason,
        };
        let mut placed = vec![false; room.objects.len()];
        let mut objects = Vec::with_capacity(layout.poses.len());
        for pose in &layout.poses {
            let Some(i) = room.object_index(&pose.id) else {
                return Err(object_error(&pose.id, "not an object of this room".into()));
            };
            if std::mem::replace(&mut placed[i], true) {
                return Err(object_error(&pose.id, "placed more than once".into()));
            }
            let spec = &room.objects[i];
            let center = Vec3::from_array(pose.position.map(|v| v as f32));
            if !center.is_finite() {
                return Err(object_error(
                    &pose.id,
                    format!("position must be finite, got {:?}", pose.position),
                ));
            }
            let heading = pose.rotation as f32;
            if !heading.is_finite() {
                return Err(object_error(
                    &pose.id,
                    format!("rotation must be finite, got {}", pose.rotation),
                ));
            }
            let object_size = Vec3::new(
                spec.size.length as f32,
                spec.size.width as f32,
                spec.size.height as f32,
            );
            if !object_size.is_finite() || object_size.min_element() <= 0.0 {
                return Err(object_error(
                    &pose.id,
                    format!(
                        "size must be positive and finite, got {} × {} × {} m",
                        spec.size.length, spec.size.width, spec.size.height
                    ),
                ));
            }
            objects.push(SceneObject {
                index: i as u32 + 1,
                id: spec.id.clone(),
                category: spec.category.clone(),
                center,
                heading: heading.rem_euclid(360.0),
                size: object_size,
                asset: spec.asset.as_ref().map(PathBuf::from),
            });
        }
        Ok(Self {
            room: room.id.clone(),
            size,
            objects,
        })
    }

    /// The same scene keeping only the objects `keep` accepts; indices stay those of the room.
    #[must_use]
    pub fn filtered(&self, keep: impl Fn(&SceneObject) -> bool) -> Self {
        Self {
            room: self.room.clone(),
            size: self.size,
            objects: self.objects.iter().filter(|o| keep(o)).cloned().collect(),
        }
    }

    /// Highest object index in the scene (0 when empty): how many bits coverage masks need.
    #[must_use]
    pub fn max_index(&self) -> u32 {
        self.objects.iter().map(|o| o.index).max().unwrap_or(0)
    }
}

/// Colour of a category: a hue picked by a stable hash of its name, so a category keeps its
/// colour across rooms and runs.
#[must_use]
pub fn category_color(category: &str) -> [f32; 3] {
    // FNV-1a: stable across platforms and Rust versions, unlike `DefaultHasher`.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in category.trim().to_ascii_lowercase().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let hue = (hash % 360) as f32;
    let saturation = 0.45 + 0.25 * ((hash >> 9) % 5) as f32 / 4.0;
    let value = 0.72 + 0.2 * ((hash >> 13) % 3) as f32 / 2.0;
    hsv_to_rgb(hue, saturation, value)
}

fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [f32; 3] {
    let c = value * saturation;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    [r + m, g + m, b + m]
}

#[cfg(test)]
mod tests {
    use metaspatial_env::{ObjectSpec, Placement, Pose, RoomSize, Size};

    use super::*;

    fn room() -> Room {
        Room {
            id: "r".into(),
            description: String::new(),
            size: RoomSize {
                length: 4.0,
                width: 3.0,
                height: 2.5,
            },
            objects: vec![ObjectSpec {
                id: "bed_1".into(),
                category: "bed".into(),
                size: Size {
                    length: 1.6,
                    width: 2.0,
                    height: 0.5,
                },
                on_floor: true,
                facing: None,
                placement: Placement::default(),
                rotation: None,
                position: None,
                style: None,
                material: None,
                asset: None,
            }],
            openings: Vec::new(),
        }
    }

    fn layout(position: [f64; 3], rotation: f64) -> Layout {
        Layout {
            poses: vec![Pose {
                id: "bed_1".into(),
                position,
                rotation,
            }],
        }
    }

    #[test]
    fn non_finite_position_names_the_object() {
        let error = Scene::new(&room(), &layout([f64::NAN, 1.0, 0.25], 0.0)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("bed_1") && text.contains("position"), "{text}");
    }

    #[test]
    fn zero_size_names_the_object() {
        let mut room = room();
        room.objects[0].size.height = 0.0;
        let error = Scene::new(&room, &layout([1.0, 1.0, 0.25], 0.0)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("bed_1") && text.contains("size"), "{text}");
    }

    #[test]
    fn unknown_and_repeated_ids_are_errors() {
        let mut bad = layout([1.0, 1.0, 0.25], 0.0);
        bad.poses[0].id = "sofa_9".into();
        assert!(Scene::new(&room(), &bad).unwrap_err().to_string().contains("sofa_9"));
        let mut twice = layout([1.0, 1.0, 0.25], 0.0);
        twice.poses.push(twice.poses[0].clone());
        let text = Scene::new(&room(), &twice).unwrap_err().to_string();
        assert!(text.contains("more than once"), "{text}");
    }

    #[test]
    fn footprint_turns_clockwise() {
        // Heading 90 turns the 1.6 m length onto y and the 2.0 m width onto x.
        let scene = Scene::new(&room(), &layout([2.0, 1.5, 0.25], 90.0)).unwrap();
        let bed = &scene.objects[0];
        assert!(bed.footprint_contains(2.0 + 0.95, 1.5));
        assert!(!bed.footprint_contains(2.0, 1.5 + 0.95));
        assert!(bed.footprint_contains(2.0, 1.5 + 0.75));
    }

    #[test]
    fn category_colours_are_stable_and_distinct() {
        assert_eq!(category_color("bed"), category_color("Bed "));
        assert_ne!(category_color("bed"), category_color("sofa"));
    }
}
