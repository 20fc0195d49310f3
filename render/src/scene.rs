//! Scenes: a room and a layout checked and converted into what the GPU draws.

use std::collections::HashMap;
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
    /// Its category's colour in this room (linear RGB, 0–1).
    pub color: [f32; 3],
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
        let colors = category_colors(room);
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
                color: colors[&category_key(&spec.category)],
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

    /// Paints the object `id` (if placed) in `color` instead of its category's colour.
    pub fn paint(&mut self, id: &str, color: [f32; 3]) {
        for o in self.objects.iter_mut().filter(|o| o.id == id) {
            o.color = color;
        }
    }

    /// Highest object index in the scene (0 when empty): how many bits coverage masks need.
    #[must_use]
    pub fn max_index(&self) -> u32 {
        self.objects.iter().map(|o| o.index).max().unwrap_or(0)
    }
}

/// Well-separated object colours; each category prefers one slot by a stable hash of its name.
const PALETTE: [[f32; 3]; 20] = [
    [0.31, 0.47, 0.65],
    [0.95, 0.56, 0.17],
    [0.88, 0.34, 0.35],
    [0.46, 0.72, 0.70],
    [0.35, 0.63, 0.31],
    [0.93, 0.79, 0.28],
    [0.69, 0.48, 0.63],
    [1.00, 0.62, 0.66],
    [0.61, 0.46, 0.37],
    [0.55, 0.35, 0.75],
    [0.63, 0.80, 0.91],
    [0.99, 0.75, 0.53],
    [0.60, 0.87, 0.54],
    [0.80, 0.20, 0.55],
    [0.20, 0.40, 0.30],
    [0.45, 0.30, 0.15],
    [0.25, 0.25, 0.55],
    [0.85, 0.85, 0.40],
    [0.40, 0.75, 0.95],
    [0.70, 0.20, 0.20],
];

/// Colour per category of a room: each category takes its preferred palette slot, or the next
/// free one, so that categories of one room never share a colour (up to 20 categories) while a
/// category keeps its colour across rooms as far as possible. Categories are taken in room
/// order, so placing or moving objects never changes colours.
fn category_colors(room: &Room) -> HashMap<String, [f32; 3]> {
    let mut colors = HashMap::new();
    let mut used = [false; PALETTE.len()];
    for spec in &room.objects {
        let key = category_key(&spec.category);
        if colors.contains_key(&key) {
            continue;
        }
        let preferred = category_hash(&key) as usize % PALETTE.len();
        let slot = (0..PALETTE.len())
            .map(|k| (preferred + k) % PALETTE.len())
            .find(|&slot| !used[slot])
            .unwrap_or(preferred);
        used[slot] = true;
        colors.insert(key, PALETTE[slot]);
    }
    colors
}

fn category_key(category: &str) -> String {
    category.trim().to_ascii_lowercase()
}

/// FNV-1a: stable across platforms and Rust versions, unlike `DefaultHasher`.
fn category_hash(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
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
        assert!(
            text.contains("bed_1") && text.contains("position"),
            "{text}"
        );
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
        assert!(
            Scene::new(&room(), &bad)
                .unwrap_err()
                .to_string()
                .contains("sofa_9")
        );
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
    fn categories_of_a_room_get_distinct_colours() {
        let mut room = room();
        for (i, category) in ["sofa", "chair", "Bed ", "desk", "lamp", "rug", "shelf"]
            .iter()
            .enumerate()
        {
            let mut spec = room.objects[0].clone();
            spec.id = format!("extra_{i}");
            spec.category = (*category).into();
            room.objects.push(spec);
        }
        let colors = category_colors(&room);
        assert_eq!(colors.len(), 7, "`Bed ` is the same category as `bed`");
        let mut distinct: Vec<_> = colors.values().map(|c| c.map(f32::to_bits)).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 7);
    }
}
