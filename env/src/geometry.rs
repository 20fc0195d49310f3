//! Exact geometry of boxes rotated about z: footprints, penetration depth, overlap volume and
//! the part of a box outside the room.
//!
//! Every object is a box whose only rotation is its heading about z, so all questions reduce to
//! convex polygons in the floor plane times intervals along z. That makes the answers exact (up
//! to f64 rounding) rather than approximated by a physics engine's contact tolerance:
//! - penetration depth is the minimum overlap over the separating-axis candidates; for two boxes
//!   rotated about z the edge–edge cross products are all either z or a face normal, so the five
//!   axes (z and the two horizontal face normals of each box) are the complete candidate set;
//! - overlap volume is the area of the intersection of the two footprints (convex polygon
//!   clipping) times the overlap of the two height intervals.

use crate::room::{RoomSize, Size};

/// Sine and cosine of an angle in degrees, exact at multiples of 90°.
///
/// `90f64.to_radians().cos()` is 6e-17, not 0; snapping keeps touching axis-aligned boxes
/// touching instead of overlapping by rounding noise.
#[must_use]
#[allow(clippy::float_cmp)] // exact quarter turns are the point
pub fn sin_cos_deg(degrees: f64) -> (f64, f64) {
    let turned = degrees.rem_euclid(360.0);
    if turned == 0.0 {
        (0.0, 1.0)
    } else if turned == 90.0 {
        (1.0, 0.0)
    } else if turned == 180.0 {
        (0.0, -1.0)
    } else if turned == 270.0 {
        (-1.0, 0.0)
    } else {
        turned.to_radians().sin_cos()
    }
}

/// A box rotated about z by its heading (degrees clockwise from +y seen from above).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrientedBox {
    /// Centre in room coordinates.
    pub center: [f64; 3],
    /// Half extents along the box's right (length), front (width) and up (height) axes.
    pub half: [f64; 3],
    /// Unit vector of the box's right axis in the floor plane.
    pub right: [f64; 2],
    /// Unit vector of the box's front axis in the floor plane (where it faces).
    pub front: [f64; 2],
}

impl OrientedBox {
    /// The box of an object of this size at this centre and heading.
    #[must_use]
    pub fn new(center: [f64; 3], size: Size, heading: f64) -> Self {
        let (s, c) = sin_cos_deg(heading);
        Self {
            center,
            half: [size.length / 2.0, size.width / 2.0, size.height / 2.0],
            // Heading 0 faces +y with the right hand towards +x; heading 90 faces +x.
            front: [s, c],
            right: [c, -s],
        }
    }

    /// Lowest z of the box.
    #[must_use]
    pub fn bottom(&self) -> f64 {
        self.center[2] - self.half[2]
    }

    /// Highest z of the box.
    #[must_use]
    pub fn top(&self) -> f64 {
        self.center[2] + self.half[2]
    }

    /// Volume in cubic metres.
    #[must_use]
    pub fn volume(&self) -> f64 {
        8.0 * self.half[0] * self.half[1] * self.half[2]
    }

    /// The four footprint corners, counter-clockwise seen from above.
    #[must_use]
    pub fn footprint(&self) -> [[f64; 2]; 4] {
        let [cx, cy, _] = self.center;
        let (r, f) = (self.right, self.front);
        let (a, b) = (self.half[0], self.half[1]);
        let corner = |sr: f64, sf: f64| {
            [
                cx + sr * a * r[0] + sf * b * f[0],
                cy + sr * a * r[1] + sf * b * f[1],
            ]
        };
        let mut corners = [
            corner(-1.0, -1.0),
            corner(1.0, -1.0),
            corner(1.0, 1.0),
            corner(-1.0, 1.0),
        ];
        // With a clockwise heading, right × front points down, so this walk is clockwise in
        // room coordinates unless the box is degenerate; clipping wants counter-clockwise.
        if signed_area(&corners) < 0.0 {
            corners.reverse();
        }
        corners
    }

    /// Half-width of the footprint projected on a horizontal unit axis.
    fn radius_along(&self, axis: [f64; 2]) -> f64 {
        self.half[0] * dot(self.right, axis).abs() + self.half[1] * dot(self.front, axis).abs()
    }

    /// The axis-aligned extent of the footprint: `[x_min, x_max, y_min, y_max]`.
    #[must_use]
    pub fn aabb_2d(&self) -> [f64; 4] {
        let rx = self.radius_along([1.0, 0.0]);
        let ry = self.radius_along([0.0, 1.0]);
        [
            self.center[0] - rx,
            self.center[0] + rx,
            self.center[1] - ry,
            self.center[1] + ry,
        ]
    }

    /// Coordinates of a floor point in the box's frame: (along right, along front).
    #[must_use]
    pub fn to_local(&self, point: [f64; 2]) -> [f64; 2] {
        let d = [point[0] - self.center[0], point[1] - self.center[1]];
        [dot(d, self.right), dot(d, self.front)]
    }
}

fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
    a[0] * b[0] + a[1] * b[1]
}

/// Signed penetration of two boxes: positive is the depth of overlap (the shortest translation
/// that separates them), zero is touching, negative is a separating gap along the best axis.
///
/// The negative branch is a lower bound of the true distance (exact when the closest features
/// are faces); only its sign is relied upon.
#[must_use]
pub fn penetration(a: &OrientedBox, b: &OrientedBox) -> f64 {
    let vertical = (a.half[2] + b.half[2]) - (a.center[2] - b.center[2]).abs();
    penetration_2d(a, b).min(vertical)
}

/// Signed penetration of two footprints in the floor plane (same sign convention as
/// [`penetration`]).
#[must_use]
pub fn penetration_2d(a: &OrientedBox, b: &OrientedBox) -> f64 {
    let d = [b.center[0] - a.center[0], b.center[1] - a.center[1]];
    [a.right, a.front, b.right, b.front]
        .into_iter()
        .map(|axis| a.radius_along(axis) + b.radius_along(axis) - dot(d, axis).abs())
        .fold(f64::INFINITY, f64::min)
}

/// Volume shared by two boxes, in cubic metres.
#[must_use]
pub fn overlap_volume(a: &OrientedBox, b: &OrientedBox) -> f64 {
    let dz = interval_overlap(a.bottom(), a.top(), b.bottom(), b.top());
    if dz <= 0.0 {
        return 0.0;
    }
    footprint_overlap_area(a, b) * dz
}

/// Area shared by the two footprints, in square metres.
#[must_use]
pub fn footprint_overlap_area(a: &OrientedBox, b: &OrientedBox) -> f64 {
    let clipped = clip_convex(&a.footprint(), &b.footprint());
    signed_area(&clipped).abs()
}

/// Length of the intersection of `[a0, a1]` and `[b0, b1]`; zero when disjoint.
#[must_use]
pub fn interval_overlap(a0: f64, a1: f64, b0: f64, b1: f64) -> f64 {
    (a1.min(b1) - a0.max(b0)).max(0.0)
}

/// Volume of the box that lies inside the room `[0, L] × [0, W] × [0, H]`.
#[must_use]
pub fn volume_inside(room: RoomSize, b: &OrientedBox) -> f64 {
    let dz = interval_overlap(b.bottom(), b.top(), 0.0, room.height);
    if dz <= 0.0 {
        return 0.0;
    }
    let [x0, x1, y0, y1] = b.aabb_2d();
    if x0 >= 0.0 && y0 >= 0.0 && x1 <= room.length && y1 <= room.width {
        // The whole footprint is over the floor: no clipping needed.
        return 4.0 * b.half[0] * b.half[1] * dz;
    }
    let floor = [
        [0.0, 0.0],
        [room.length, 0.0],
        [room.length, room.width],
        [0.0, room.width],
    ];
    signed_area(&clip_convex(&b.footprint(), &floor)).abs() * dz
}

/// Shoelace area, positive for counter-clockwise polygons.
fn signed_area(polygon: &[[f64; 2]]) -> f64 {
    let n = polygon.len();
    if n < 3 {
        return 0.0;
    }
    let twice: f64 = (0..n)
        .map(|i| {
            let (p, q) = (polygon[i], polygon[(i + 1) % n]);
            p[0] * q[1] - q[0] * p[1]
        })
        .sum();
    twice / 2.0
}

/// Sutherland–Hodgman clipping of a convex polygon by a convex, counter-clockwise clip polygon.
fn clip_convex(subject: &[[f64; 2]], clip: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut output: Vec<[f64; 2]> = subject.to_vec();
    let n = clip.len();
    for i in 0..n {
        if output.is_empty() {
            break;
        }
        let (e0, e1) = (clip[i], clip[(i + 1) % n]);
        let side =
            |p: [f64; 2]| (e1[0] - e0[0]) * (p[1] - e0[1]) - (e1[1] - e0[1]) * (p[0] - e0[0]);
        let input = std::mem::take(&mut output);
        let m = input.len();
        for j in 0..m {
            let (p, q) = (input[j], input[(j + 1) % m]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                output.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                output.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
            }
        }
    }
    output
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // hand-computed values are exact
mod tests {
    use super::*;

    fn obb(center: [f64; 3], [length, width, height]: [f64; 3], heading: f64) -> OrientedBox {
        OrientedBox::new(
            center,
            Size {
                length,
                width,
                height,
            },
            heading,
        )
    }

    fn unit(center: [f64; 3], heading: f64) -> OrientedBox {
        obb(center, [1.0; 3], heading)
    }

    #[test]
    fn touching_boxes_have_zero_depth_and_volume() {
        let a = unit([0.5, 0.5, 0.5], 0.0);
        let b = unit([1.5, 0.5, 0.5], 90.0);
        assert_eq!(penetration(&a, &b), 0.0);
        assert_eq!(overlap_volume(&a, &b), 0.0);
    }

    #[test]
    fn boxes_at_45_degrees_overlap_by_hand_computed_amounts() {
        // A unit square rotated 45° reaches sqrt(2)/2 from its centre along x. Centres 1.0 apart:
        // along x the overlap is 0.5 + 0.7071 - 1.0 = 0.2071; along the diamond's own axes it is
        // 2 * 0.5 * sqrt(2) ... - 1/sqrt(2) = 0.7071 + 0.5 - 0.7071 = 0.5 (b's axes see a as
        // radius 0.7071). The minimum is 0.2071.
        let a = unit([0.0, 0.0, 0.5], 0.0);
        let b = unit([1.0, 0.0, 0.5], 45.0);
        let depth = penetration(&a, &b);
        assert!((depth - (0.5 + std::f64::consts::FRAC_1_SQRT_2 - 1.0)).abs() < 1e-12);
        // The overlap is the triangle of the diamond left of x = 0.5: height 2 * 0.2071, base
        // 0.2071, area 0.2071^2.
        let t: f64 = 0.5 + std::f64::consts::FRAC_1_SQRT_2 - 1.0;
        assert!((footprint_overlap_area(&a, &b) - t * t).abs() < 1e-12);
        assert!((overlap_volume(&a, &b) - t * t).abs() < 1e-12);
    }

    #[test]
    fn half_a_box_through_a_wall_is_half_outside() {
        let room = RoomSize {
            length: 4.0,
            width: 3.0,
            height: 2.5,
        };
        let b = obb([4.0, 1.0, 0.5], [1.0, 0.5, 1.0], 0.0);
        assert!((volume_inside(room, &b) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn footprint_is_counter_clockwise_and_has_the_box_area() {
        let b = obb([1.0, 2.0, 0.0], [2.0, 0.5, 1.0], 30.0);
        assert!((signed_area(&b.footprint()) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn heading_90_faces_east_with_length_along_y() {
        let b = obb([0.0, 0.0, 0.0], [2.0, 1.0, 1.0], 90.0);
        assert_eq!(b.front, [1.0, 0.0]);
        assert_eq!(b.aabb_2d(), [-0.5, 0.5, -1.0, 1.0]);
    }
}
