//! Headings: which source wins, and IDesign's table from `facing` to degrees.
//!
//! Precedence: the answer's heading, else the scene graph's `rotation.z_angle`, else derived
//! from `facing`. Facing a wall uses IDesign's table (the object turns its front towards that
//! wall: north 0°, east 90°, south 180°, west 270°); facing an object or the middle of the room
//! points the front at that object's centre (the room's centre); anything else gives 0°.

use serde::{Deserialize, Serialize};

use crate::room::{LayoutElement, ObjectSpec, RoomSize};

/// Where an object's heading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadingSource {
    /// The answer gave it.
    Answer,
    /// The scene graph's `rotation.z_angle`.
    SceneGraph,
    /// IDesign's table for the wall named by `facing`.
    FacingWall,
    /// Pointing at the centre of the object (or the room) named by `facing`.
    FacingTarget,
    /// Nothing said anything usable: 0°.
    Default,
}

/// IDesign's heading for an object whose front faces this layout element.
#[must_use]
pub fn facing_table(element: LayoutElement) -> f64 {
    match element {
        LayoutElement::NorthWall | LayoutElement::Middle | LayoutElement::Ceiling => 0.0,
        LayoutElement::EastWall => 90.0,
        LayoutElement::SouthWall => 180.0,
        LayoutElement::WestWall => 270.0,
    }
}

/// The angle in `[0, 360)` equal to `degrees` modulo 360.
#[must_use]
pub fn normalize(degrees: f64) -> f64 {
    let r = degrees.rem_euclid(360.0);
    // rem_euclid can round up to exactly 360 for tiny negative inputs.
    if r >= 360.0 { 0.0 } else { r }
}

/// Smallest absolute difference between two headings, in `[0, 180]`.
#[must_use]
pub fn angle_between(a: f64, b: f64) -> f64 {
    let d = normalize(a - b);
    d.min(360.0 - d)
}

/// Heading (clockwise from +y) of the direction from `from` to `to` in the floor plane, or
/// `None` when the points coincide.
#[must_use]
pub fn heading_towards(from: [f64; 3], to: [f64; 2]) -> Option<f64> {
    let (dx, dy) = (to[0] - from[0], to[1] - from[1]);
    if dx.hypot(dy) < 1e-9 {
        return None;
    }
    Some(normalize(dx.atan2(dy).to_degrees()))
}

/// Resolves an object's heading by the precedence above.
///
/// `centre_of` returns the placed centre of another object, by id.
pub fn resolve(
    spec: &ObjectSpec,
    answer: Option<f64>,
    position: [f64; 3],
    room: RoomSize,
    centre_of: impl Fn(&str) -> Option<[f64; 3]>,
) -> (f64, HeadingSource) {
    if let Some(h) = answer {
        return (h, HeadingSource::Answer);
    }
    if let Some(h) = spec.rotation {
        return (h, HeadingSource::SceneGraph);
    }
    let Some(facing) = spec.facing.as_deref() else {
        return (0.0, HeadingSource::Default);
    };
    let target = match LayoutElement::from_name(facing) {
        Some(LayoutElement::Middle) => Some([room.length / 2.0, room.width / 2.0]),
        Some(wall) => return (facing_table(wall), HeadingSource::FacingWall),
        None => centre_of(facing).map(|c| [c[0], c[1]]),
    };
    match target.and_then(|t| heading_towards(position, t)) {
        Some(h) => (h, HeadingSource::FacingTarget),
        None => (0.0, HeadingSource::Default),
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact by construction
mod tests {
    use super::*;

    #[test]
    fn heading_towards_follows_the_clockwise_from_north_convention() {
        let o = [0.0, 0.0, 0.0];
        assert_eq!(heading_towards(o, [0.0, 1.0]), Some(0.0));
        assert_eq!(heading_towards(o, [1.0, 0.0]), Some(90.0));
        assert_eq!(heading_towards(o, [0.0, -1.0]), Some(180.0));
        assert_eq!(heading_towards(o, [-1.0, 0.0]), Some(270.0));
        assert_eq!(heading_towards(o, [0.0, 0.0]), None);
    }

    #[test]
    fn angle_between_wraps() {
        assert!((angle_between(350.0, 10.0) - 20.0).abs() < 1e-12);
        assert!((angle_between(-90.0, 270.0)).abs() < 1e-12);
        assert!((angle_between(0.0, 180.0) - 180.0).abs() < 1e-12);
        assert_eq!(normalize(-1e-20), 0.0);
    }
}
