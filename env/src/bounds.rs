//! Bounds: how much of each object lies outside the room `[0, L] × [0, W] × [0, H]`.

use serde::{Deserialize, Serialize};

use crate::geometry::volume_inside;
use crate::scene::Scene;

/// Default fraction of an object's volume outside the room above which it is out of bounds.
pub const DEFAULT_MAX_FRACTION_OUTSIDE: f64 = 0.01;

/// An object partly or wholly outside the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfBounds {
    /// The object.
    pub id: String,
    /// Fraction of its volume outside the room, in `[0, 1]`.
    pub fraction_outside: f64,
    /// The boundary it crosses furthest: a wall name, `floor` or `ceiling`.
    pub boundary: String,
    /// How far it reaches past that boundary, metres.
    pub distance: f64,
}

/// Objects with more than `max_fraction` of their volume outside, in room order.
///
/// A box with no volume (a zero size) counts as wholly outside when any part of it is.
#[must_use]
pub fn out_of_bounds(scene: &Scene<'_>, max_fraction: f64) -> Vec<OutOfBounds> {
    let size = scene.room.size;
    scene
        .placed
        .iter()
        .filter_map(|p| {
            let b = &p.bounds;
            let [x0, x1, y0, y1] = b.aabb_2d();
            let past = [
                ("west_wall", -x0),
                ("east_wall", x1 - size.length),
                ("south_wall", -y0),
                ("north_wall", y1 - size.width),
                ("floor", -b.bottom()),
                ("ceiling", b.top() - size.height),
            ];
            let (boundary, distance) =
                past.into_iter().fold(
                    ("", f64::NEG_INFINITY),
                    |m, c| if c.1 > m.1 { c } else { m },
                );
            let volume = b.volume();
            let fraction = if volume > 0.0 {
                (1.0 - volume_inside(size, b) / volume).clamp(0.0, 1.0)
            } else if distance > 0.0 {
                1.0
            } else {
                0.0
            };
            (fraction > max_fraction).then(|| OutOfBounds {
                id: p.spec.id.clone(),
                fraction_outside: fraction,
                boundary: boundary.to_owned(),
                distance: distance.max(0.0),
            })
        })
        .collect()
}
