//! Collisions: every pair of placed objects as boxes oriented by heading.
//!
//! A pair collides when it penetrates deeper than the configured depth (5 mm by default);
//! touching is not colliding. Depth and overlap volume are exact for boxes rotated about z (see
//! [`crate::geometry`]).

use serde::{Deserialize, Serialize};

use crate::geometry::{overlap_volume, penetration};
use crate::scene::Scene;

/// Default penetration, in metres, above which two objects collide.
pub const DEFAULT_MIN_DEPTH: f64 = 0.005;

/// Two colliding objects, `a` < `b` by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collision {
    /// The id that sorts first.
    pub a: String,
    /// The id that sorts second.
    pub b: String,
    /// Penetration depth (shortest separating translation), metres.
    pub depth: f64,
    /// Shared volume, cubic metres.
    pub volume: f64,
}

/// All pairs penetrating deeper than `min_depth`, sorted by `(a, b)`.
#[must_use]
pub fn collisions(scene: &Scene<'_>, min_depth: f64) -> Vec<Collision> {
    let mut out = Vec::new();
    let aabbs: Vec<[f64; 4]> = scene.placed.iter().map(|p| p.bounds.aabb_2d()).collect();
    for (i, p) in scene.placed.iter().enumerate() {
        for (j, q) in scene.placed.iter().enumerate().skip(i + 1) {
            let (u, v) = (aabbs[i], aabbs[j]);
            // Cheap reject: footprints' axis-aligned extents apart by more than the threshold.
            if u[0] > v[1] - min_depth
                || v[0] > u[1] - min_depth
                || u[2] > v[3] - min_depth
                || v[2] > u[3] - min_depth
            {
                continue;
            }
            let depth = penetration(&p.bounds, &q.bounds);
            if depth > min_depth {
                let (a, b) = if p.spec.id <= q.spec.id {
                    (p, q)
                } else {
                    (q, p)
                };
                out.push(Collision {
                    a: a.spec.id.clone(),
                    b: b.spec.id.clone(),
                    depth,
                    volume: overlap_volume(&p.bounds, &q.bounds),
                });
            }
        }
    }
    out.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
    out
}
