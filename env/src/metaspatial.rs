//! MetaSpatial-compatible metrics: the collision ratio and the constraint-violation ratio
//! exactly as MetaSpatial's published reward code computes them (`check_collisions`,
//! `check_constraints` and IDesign's constraint functions), so that our numbers can be set
//! beside the paper's.
//!
//! Their definitions, reproduced here in f64 with the same operation order:
//! - **Collision ratio**: the objects and the six layout elements (walls, floor, ceiling) are
//!   axis-aligned boxes, length and width swapped when the heading is within `np.isclose` of 90
//!   or 270; a pair collides when the boxes overlap on all three axes with neither pair of
//!   facing sides within 1 mm; a box whose largest side is at least 40 times its smallest
//!   (non-zero) side is "thin" and never collides. The ratio is the number of colliding pairs
//!   divided by C(N, 2), N = objects + 6.
//! - **Constraint-violation ratio**: each placement relation gives a box of allowed centres; an
//!   object passes when its centre lies in any of them (inclusive bounds, compared exactly, so a
//!   flush-contact requirement is an exact equality), and fails when it has none. The ratio is
//!   failures divided by the number of objects.
//!
//! Where their code raises (a heading that is missing, or a reference object whose heading is
//! not exactly 0, 90, 180 or 270 for a directional relation), the ratio is `None`. Headings
//! that are not right angles are also outside what their boxes mean even where their code runs;
//! [`MetaSpatialRatios::within_definition`] says so, and the `extended_*` ratios give our
//! answer: rotated boxes are replaced by their axis-aligned extent, and reference headings are
//! snapped to the nearest right angle.
//!
//! Headings: an answer's heading is used as if it were written into the scene graph's
//! `rotation.z_angle`; a heading we derived from `facing` is one their code does not have.

// Their code compares headings and coordinates with `==`; reproducing it means comparing
// exactly, so float equality here is deliberate.
#![allow(clippy::float_cmp)]

use serde::{Deserialize, Serialize};

use crate::heading::{HeadingSource, normalize};
use crate::room::{LayoutElement, ObjectPreposition, RoomPreposition, RoomSize};
use crate::scene::{Placed, Scene};
use crate::scene_graph::element_geometry;

/// The two MetaSpatial ratios and how far to trust them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaSpatialRatios {
    /// Their collision ratio; `None` where their code raises or the layout is incomplete.
    pub collision_ratio: Option<f64>,
    /// Their constraint-violation ratio; `None` where their code raises or the layout is
    /// incomplete.
    pub constraint_violation_ratio: Option<f64>,
    /// Whether every heading is exactly 0, 90, 180 or 270 (the values all their functions
    /// handle; their constraint functions compare with `==`) and came from the answer or the
    /// scene graph. The extended ratios then equal theirs.
    pub within_definition: bool,
    /// Our collision ratio by their definition, extended to any heading; `None` only for an
    /// incomplete layout.
    pub extended_collision_ratio: Option<f64>,
    /// Our constraint-violation ratio by their definition, extended to any heading.
    pub extended_constraint_violation_ratio: Option<f64>,
    /// Why a ratio is `None` or outside their definition.
    pub notes: Vec<String>,
}

impl MetaSpatialRatios {
    /// Ratios for a layout that does not place every object exactly once, which their pipeline
    /// rejects before computing anything.
    #[must_use]
    pub fn undefined(reason: &str) -> Self {
        Self {
            collision_ratio: None,
            constraint_violation_ratio: None,
            within_definition: false,
            extended_collision_ratio: None,
            extended_constraint_violation_ratio: None,
            notes: vec![reason.to_owned()],
        }
    }
}

/// A box as their code sees it.
#[derive(Debug, Clone)]
struct MsBox<'a> {
    id: &'a str,
    element: Option<LayoutElement>,
    /// length, width, height.
    size: [f64; 3],
    position: [f64; 3],
    /// `rotation.z_angle`; `None` when their scene graph would have none.
    rotation: Option<f64>,
    /// Our heading, for the extended metrics.
    heading: f64,
    on_floor: bool,
}

/// Their code raised an exception.
#[derive(Debug)]
struct Raised(String);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Exact,
    Extended,
}

/// Computes both ratios for a scene in which every object of the room is placed once.
#[must_use]
pub fn ratios(scene: &Scene<'_>) -> MetaSpatialRatios {
    let room = scene.room.size;
    let mut boxes: Vec<MsBox<'_>> = scene.placed.iter().map(object_box).collect();
    boxes.extend(LayoutElement::ALL.iter().map(|&e| {
        let (position, size, rotation) = element_geometry(room, e);
        MsBox {
            id: e.name(),
            element: Some(e),
            size,
            position,
            rotation: Some(rotation),
            heading: rotation,
            on_floor: false,
        }
    }));
    let objects = scene.placed.len();
    let mut notes = Vec::new();
    let mut within = true;
    for b in &boxes[..objects] {
        match b.rotation {
            None => {
                within = false;
                notes.push(format!(
                    "`{}` has no rotation.z_angle: their code raises",
                    b.id
                ));
            }
            Some(r) if ![0.0, 90.0, 180.0, 270.0].contains(&r) => {
                within = false;
                notes.push(format!(
                    "`{}` heading {r}° is not exactly 0, 90, 180 or 270",
                    b.id
                ));
            }
            Some(_) => {}
        }
    }
    let exact_collisions = collision_ratio(&boxes, Mode::Exact);
    // Their reward computes collisions first: when that raises, nothing else is computed.
    let exact_constraints = match &exact_collisions {
        Ok(_) => constraint_ratio(scene, &boxes, room, Mode::Exact),
        Err(e) => Err(Raised(e.0.clone())),
    };
    let mut keep = |r: Result<f64, Raised>| match r {
        Ok(v) => Some(v),
        Err(Raised(why)) => {
            if !notes.contains(&why) {
                notes.push(why);
            }
            None
        }
    };
    let collision_ratio = keep(exact_collisions);
    let constraint_violation_ratio = keep(exact_constraints);
    // Within their definition the extended computation is the same arithmetic on the same
    // values.
    let (extended_collision_ratio, extended_constraint_violation_ratio) = if within {
        (collision_ratio, constraint_violation_ratio)
    } else {
        (
            keep(self::collision_ratio(&boxes, Mode::Extended)),
            keep(constraint_ratio(scene, &boxes, room, Mode::Extended)),
        )
    };
    MetaSpatialRatios {
        collision_ratio,
        constraint_violation_ratio,
        within_definition: within,
        extended_collision_ratio,
        extended_constraint_violation_ratio,
        notes,
    }
}

fn object_box<'a>(p: &Placed<'a>) -> MsBox<'a> {
    let rotation = match p.heading_source {
        HeadingSource::Answer | HeadingSource::SceneGraph => Some(p.pose.rotation),
        HeadingSource::FacingWall | HeadingSource::FacingTarget | HeadingSource::Default => None,
    };
    MsBox {
        id: &p.spec.id,
        element: None,
        size: [p.spec.size.length, p.spec.size.width, p.spec.size.height],
        position: p.pose.position,
        rotation,
        heading: p.pose.rotation,
        on_floor: p.spec.on_floor,
    }
}

/// `np.isclose(a, b)` with its default tolerances.
fn isclose(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-8 + 1e-5 * b.abs()
}

/// The quarter turn (0..=3) a heading is `np.isclose` to, modulo 360.
fn right_angle(heading: f64) -> Option<u8> {
    let h = normalize(heading);
    [(0.0, 0), (90.0, 1), (180.0, 2), (270.0, 3), (360.0, 0)]
        .into_iter()
        .find(|&(r, _)| isclose(h, r))
        .map(|(_, k)| k)
}

/// Whether the largest side is at least 40 times the smallest, non-zero one.
fn is_thin(size: [f64; 3]) -> bool {
    let min = size[0].min(size[1]).min(size[2]);
    let max = size[0].max(size[1]).max(size[2]);
    min > 0.0 && max / min >= 40.0
}

/// `[x_min, x_max, y_min, y_max, z_min, z_max]` of a box in their collision check.
fn collision_extent(b: &MsBox<'_>, mode: Mode) -> Result<[f64; 6], Raised> {
    let [mut l, mut w, h] = b.size;
    let p = b.position;
    match mode {
        Mode::Exact => {
            let r = b.rotation.ok_or_else(|| {
                Raised(format!(
                    "`{}` has no rotation.z_angle: their code raises",
                    b.id
                ))
            })?;
            if isclose(r, 90.0) || isclose(r, 270.0) {
                std::mem::swap(&mut l, &mut w);
            }
        }
        Mode::Extended => match right_angle(b.heading) {
            Some(1 | 3) => std::mem::swap(&mut l, &mut w),
            Some(_) => {}
            None => {
                let obb = crate::geometry::OrientedBox::new(
                    p,
                    crate::room::Size {
                        length: l,
                        width: w,
                        height: h,
                    },
                    b.heading,
                );
                let [x0, x1, y0, y1] = obb.aabb_2d();
                return Ok([x0, x1, y0, y1, p[2] - h / 2.0, p[2] + h / 2.0]);
            }
        },
    }
    Ok([
        p[0] - l / 2.0,
        p[0] + l / 2.0,
        p[1] - w / 2.0,
        p[1] + w / 2.0,
        p[2] - h / 2.0,
        p[2] + h / 2.0,
    ])
}

/// Their per-axis overlap test: strict overlap with neither facing pair within 1 mm.
fn axis_overlap(min1: f64, max1: f64, min2: f64, max2: f64) -> bool {
    min1 < max2 && max1 > min2 && (min1 - max2).abs() > 1e-3 && (max1 - min2).abs() > 1e-3
}

fn collision_ratio(boxes: &[MsBox<'_>], mode: Mode) -> Result<f64, Raised> {
    // Their loop reads every box's rotation (each is the first of some pair) before any
    // thinness test can skip it, so one missing rotation raises whatever the sizes.
    let extents = boxes
        .iter()
        .map(|b| collision_extent(b, mode))
        .collect::<Result<Vec<_>, _>>()?;
    let n = boxes.len();
    let mut count = 0usize;
    for i in 0..n {
        for j in i + 1..n {
            if is_thin(boxes[i].size) || is_thin(boxes[j].size) {
                continue;
            }
            let (ea, eb) = (extents[i], extents[j]);
            if (0..3).all(|k| axis_overlap(ea[2 * k], ea[2 * k + 1], eb[2 * k], eb[2 * k + 1])) {
                count += 1;
            }
        }
    }
    Ok(if n > 1 {
        count as f64 / (n * (n - 1) / 2) as f64
    } else {
        0.0
    })
}

/// What a constraint function needs of each box: rotation as they compare it.
fn rotation_for(b: &MsBox<'_>, mode: Mode) -> Result<f64, Raised> {
    match mode {
        Mode::Exact => b.rotation.ok_or_else(|| {
            Raised(format!(
                "`{}` has no rotation.z_angle: their code raises",
                b.id
            ))
        }),
        Mode::Extended => Ok(f64::from(right_angle(b.heading).map_or_else(
            || ((normalize(b.heading) / 90.0).round() as u32 % 4) * 90,
            |k| u32::from(k) * 90,
        ))),
    }
}

/// Which of their constraint functions applies.
#[derive(Debug, Clone, Copy)]
enum Relation {
    On,
    Corner,
    Object(ObjectPreposition),
}

fn constraint_ratio(
    scene: &Scene<'_>,
    boxes: &[MsBox<'_>],
    room: RoomSize,
    mode: Mode,
) -> Result<f64, Raised> {
    let objects = scene.placed.len();
    let dims = [room.length, room.width, room.height];
    let mut violations = 0usize;
    for (p, a) in scene.placed.iter().zip(boxes) {
        let mut regions = Vec::new();
        for r in &p.spec.placement.room {
            let b = boxes
                .iter()
                .find(|b| b.element == Some(r.element))
                .unwrap_or_else(|| unreachable!("all six elements are present"));
            let relation = match r.preposition {
                RoomPreposition::On => Relation::On,
                RoomPreposition::InTheCorner => Relation::Corner,
            };
            regions.push(region(relation, a, b, true, dims, mode)?);
        }
        for r in &p.spec.placement.objects {
            let b = boxes.iter().find(|b| b.id == r.target).ok_or_else(|| {
                Raised(format!(
                    "`{}` refers to `{}`, which is not in the scene",
                    a.id, r.target
                ))
            })?;
            regions.push(region(
                Relation::Object(r.preposition),
                a,
                b,
                r.adjacent,
                dims,
                mode,
            )?);
        }
        let [x, y, z] = a.position;
        let inside = regions
            .iter()
            .any(|g| g[0] <= x && x <= g[1] && g[2] <= y && y <= g[3] && g[4] <= z && z <= g[5]);
        if !inside {
            violations += 1;
        }
    }
    Ok(if objects > 0 {
        violations as f64 / objects as f64
    } else {
        0.0
    })
}

/// Python's `((adj * s) - (not adj * s)) / 2`: the lateral margin of their directional
/// relations, which is `-0.5` (not 0) for non-adjacent ones.
fn lateral_margin(adjacent: bool, s: f64) -> f64 {
    let p = if adjacent { s } else { 0.0 };
    let not_p = if p == 0.0 { 1.0 } else { 0.0 };
    (p - not_p) / 2.0
}

fn ordered(lo: f64, hi: f64) -> (f64, f64) {
    if lo > hi { (hi, lo) } else { (lo, hi) }
}

/// Their final clamp of an axis to the room: `max = max(a, min(max, R - a))`,
/// `min = max(min, 0 + a)`, where `a` is the object's half extent.
fn clamp(lo: f64, hi: f64, half: f64, extent: f64) -> (f64, f64) {
    (lo.max(0.0 + half), half.max(hi.min(extent - half)))
}

/// The box of allowed centres of `a` for one relation to `b`:
/// `[x_min, x_max, y_min, y_max, z_min, z_max]`.
fn region(
    relation: Relation,
    a: &MsBox<'_>,
    b: &MsBox<'_>,
    adjacent: bool,
    room: [f64; 3],
    mode: Mode,
) -> Result<[f64; 6], Raised> {
    let rot_a = rotation_for(a, mode)?;
    let rot_b = rotation_for(b, mode)?;
    let [mut la, mut wa, ha] = a.size;
    if rot_a == 90.0 || rot_a == 270.0 {
        std::mem::swap(&mut la, &mut wa);
    }
    let [lb0, wb0, hb] = b.size;
    let p = b.position;
    let floor = a.on_floor;
    // The quarter turn of the reference, for the functions that branch on it exactly.
    let quarter = || -> Result<usize, Raised> {
        [0.0, 90.0, 180.0, 270.0].iter().position(|&r| rot_b == r).ok_or_else(|| {
            Raised(format!(
                "`{}` is placed relative to `{}` whose heading {rot_b}° is not 0, 90, 180 or 270: \
                 their code raises",
                a.id, b.id
            ))
        })
    };
    match relation {
        Relation::On | Relation::Object(ObjectPreposition::On) => {
            let (lb, wb) = if rot_b == 90.0 || rot_b == 270.0 {
                (wb0, lb0)
            } else {
                (lb0, wb0)
            };
            let (z0, z1, x0, x1, y0, y1);
            match b.element {
                Some(LayoutElement::Ceiling) => {
                    z0 = p[2] - hb / 2.0 - ha / 2.0;
                    z1 = z0;
                    (x0, x1) = (p[0] - lb / 2.0 + la / 2.0, p[0] + lb / 2.0 - la / 2.0);
                    (y0, y1) = (p[1] - wb / 2.0 + wa / 2.0, p[1] + wb / 2.0 - wa / 2.0);
                }
                Some(wall) if wall.is_wall() => {
                    z0 = if floor {
                        ha / 2.0
                    } else {
                        p[2] - hb / 2.0 + ha / 2.0
                    };
                    z1 = if floor {
                        ha / 2.0
                    } else {
                        p[2] + hb / 2.0 - ha / 2.0
                    };
                    let s: [f64; 8] = match wall {
                        LayoutElement::WestWall => [1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0],
                        LayoutElement::EastWall => [-1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0],
                        LayoutElement::NorthWall => [-1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0],
                        _ => [-1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0],
                    };
                    x0 = p[0] + s[0] * lb / 2.0 + s[4] * la / 2.0;
                    x1 = p[0] + s[1] * lb / 2.0 + s[5] * la / 2.0;
                    y0 = p[1] + s[2] * wb / 2.0 + s[6] * wa / 2.0;
                    y1 = p[1] + s[3] * wb / 2.0 + s[7] * wa / 2.0;
                }
                // Objects and `middle of the room` (their dedicated branch for it is
                // unreachable: the first test already takes every non-wall, non-ceiling id).
                _ => {
                    z0 = if floor {
                        ha / 2.0
                    } else {
                        p[2] + hb / 2.0 + ha / 2.0
                    };
                    z1 = z0;
                    (x0, x1) = (p[0] - lb / 2.0 + la / 2.0, p[0] + lb / 2.0 - la / 2.0);
                    (y0, y1) = (p[1] - wb / 2.0 + wa / 2.0, p[1] + wb / 2.0 - wa / 2.0);
                }
            }
            Ok(clamp_all([x0, x1, y0, y1, z0, z1], [la, wa, ha], room))
        }
        Relation::Object(ObjectPreposition::Under) => {
            let (lb, wb) = if rot_b == 90.0 || rot_b == 270.0 {
                (wb0, lb0)
            } else {
                (lb0, wb0)
            };
            let z1 = if floor {
                ha / 2.0
            } else {
                p[2] - hb / 2.0 - ha / 2.0
            };
            Ok(clamp_all(
                [
                    p[0] - lb / 2.0 - la / 2.0,
                    p[0] + lb / 2.0 + la / 2.0,
                    p[1] - wb / 2.0 - wa / 2.0,
                    p[1] + wb / 2.0 + wa / 2.0,
                    ha / 2.0,
                    z1,
                ],
                [la, wa, ha],
                room,
            ))
        }
        Relation::Object(ObjectPreposition::Above) => {
            let k = quarter()?;
            // Their size_B is not swapped here; the branch picks the sides instead.
            let (ex, ey) = if k % 2 == 0 { (lb0, wb0) } else { (wb0, lb0) };
            let (x0, x1) = ordered(p[0] - ex / 2.0 - la / 2.0, p[0] + ex / 2.0 + la / 2.0);
            let (y0, y1) = ordered(p[1] - ey / 2.0 - wa / 2.0, p[1] + ey / 2.0 + wa / 2.0);
            let (x0, x1) = clamp(x0, x1, la / 2.0, room[0]);
            let (y0, y1) = clamp(y0, y1, wa / 2.0, room[1]);
            let mut z0 = if floor {
                ha / 2.0
            } else {
                p[2] + hb / 2.0 + ha / 2.0
            };
            let z1 = if floor { ha / 2.0 } else { room[2] };
            z0 = (ha / 2.0).max(z0.min(room[2] - ha / 2.0));
            z0 = z0.max(0.0 + ha / 2.0);
            Ok([x0, x1, y0, y1, z0, z1])
        }
        Relation::Corner => {
            let k = quarter()?;
            let z = if floor {
                ha / 2.0
            } else {
                p[2] - hb / 2.0 + ha / 2.0
            };
            // Flush in front of the reference, spanning its width less the object's half; no
            // ordering and no clamping in their code.
            Ok(match k {
                0 => {
                    let y = p[1] + wb0 / 2.0 + wa / 2.0;
                    [
                        p[0] - lb0 / 2.0 + la / 2.0,
                        p[0] + lb0 / 2.0 - la / 2.0,
                        y,
                        y,
                        z,
                        z,
                    ]
                }
                1 => {
                    let x = p[0] + wb0 / 2.0 + la / 2.0;
                    [
                        x,
                        x,
                        p[1] - lb0 / 2.0 + wa / 2.0,
                        p[1] + lb0 / 2.0 - wa / 2.0,
                        z,
                        z,
                    ]
                }
                2 => {
                    let y = p[1] - wb0 / 2.0 - wa / 2.0;
                    [
                        p[0] - lb0 / 2.0 + la / 2.0,
                        p[0] + lb0 / 2.0 - la / 2.0,
                        y,
                        y,
                        z,
                        z,
                    ]
                }
                _ => {
                    let x = p[0] - wb0 / 2.0 - la / 2.0;
                    [
                        x,
                        x,
                        p[1] - lb0 / 2.0 + wa / 2.0,
                        p[1] + lb0 / 2.0 - wa / 2.0,
                        z,
                        z,
                    ]
                }
            })
        }
        Relation::Object(direction) => {
            let k = quarter()?;
            // Direction of the relation in room axes for each quarter turn of the reference:
            // (axis 0 = x / 1 = y, sign).
            let table: [(usize, f64); 4] = match direction {
                ObjectPreposition::LeftOf => [(0, -1.0), (1, 1.0), (0, 1.0), (1, -1.0)],
                ObjectPreposition::RightOf => [(0, 1.0), (1, -1.0), (0, -1.0), (1, 1.0)],
                ObjectPreposition::InFront => [(1, 1.0), (0, 1.0), (1, -1.0), (0, -1.0)],
                _ => [(1, -1.0), (0, -1.0), (1, 1.0), (0, 1.0)],
            };
            let (axis, sign) = table[k];
            // The reference's extent along room x and y for this quarter turn.
            let eb = if k % 2 == 0 { [lb0, wb0] } else { [wb0, lb0] };
            let ea = [la, wa];
            let mut out = [0.0; 6];
            for ax in 0..2 {
                let (lo, hi) = if ax == axis {
                    let face = if sign > 0.0 {
                        p[ax] + eb[ax] / 2.0 + ea[ax] / 2.0
                    } else {
                        p[ax] - eb[ax] / 2.0 - ea[ax] / 2.0
                    };
                    match (sign > 0.0, adjacent) {
                        (_, true) => (face, face),
                        (true, false) => (face, room[ax] - ea[ax] / 2.0),
                        (false, false) => (ea[ax] / 2.0, face),
                    }
                } else {
                    let m = lateral_margin(adjacent, ea[ax]);
                    (p[ax] - eb[ax] / 2.0 + m, p[ax] + eb[ax] / 2.0 - m)
                };
                let (lo, hi) = ordered(lo, hi);
                let (lo, hi) = clamp(lo, hi, ea[ax] / 2.0, room[ax]);
                out[2 * ax] = lo;
                out[2 * ax + 1] = hi;
            }
            out[4] = if floor {
                ha / 2.0
            } else {
                p[2] - hb / 2.0 + ha / 2.0
            };
            out[5] = if floor { ha / 2.0 } else { room[2] - ha / 2.0 };
            Ok(out)
        }
    }
}

/// Orders and clamps all three axes; `sizes` are the object's (swapped) full sizes.
fn clamp_all(g: [f64; 6], sizes: [f64; 3], room: [f64; 3]) -> [f64; 6] {
    let mut out = [0.0; 6];
    for ax in 0..3 {
        let (lo, hi) = ordered(g[2 * ax], g[2 * ax + 1]);
        let (lo, hi) = clamp(lo, hi, sizes[ax] / 2.0, room[ax]);
        out[2 * ax] = lo;
        out[2 * ax + 1] = hi;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateral_margin_reproduces_python_truthiness() {
        assert_eq!(lateral_margin(true, 0.4), 0.2);
        assert_eq!(lateral_margin(false, 0.4), -0.5);
        assert_eq!(lateral_margin(true, 0.0), -0.5);
    }

    #[test]
    fn thin_needs_a_ratio_of_40_and_no_zero_side() {
        assert!(is_thin([2.0, 0.05, 1.0]));
        assert!(!is_thin([2.0, 0.051, 1.0]));
        assert!(!is_thin([5.0, 0.0, 3.0]));
    }

    #[test]
    fn right_angles_use_numpy_isclose() {
        assert_eq!(right_angle(90.0009), Some(1));
        assert_eq!(right_angle(90.001), None);
        assert_eq!(right_angle(-90.0), Some(3));
        assert_eq!(right_angle(359.999_999_9), Some(0));
    }

    #[test]
    fn touching_within_a_millimetre_is_not_a_collision() {
        assert!(!axis_overlap(0.0, 1.0, 0.9995, 2.0));
        assert!(axis_overlap(0.0, 1.0, 0.998, 2.0));
        assert!(!axis_overlap(0.0, 1.0, 1.0, 2.0));
    }
}
