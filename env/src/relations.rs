//! Placement relations, evaluated geometrically in the reference's frame.
//!
//! Every relation gets a signed `error`: how far (metres, or degrees for `facing`) the layout is
//! from satisfying it; `error <= 0` means satisfied, and its magnitude is then the margin.
//! Tolerances ([`RelationTolerances`], defaults in brackets):
//! - `on <wall>`: the footprint's nearest point is within `wall` (5 cm) of the wall, on either
//!   side: error = |gap| − 5 cm.
//! - `in the corner` of a wall: within `corner` (0.3 m) of that wall and of one of its two
//!   neighbours: error = max(gap to the wall, smaller gap to a neighbour) − 0.3 m. For the
//!   floor or ceiling, any two adjacent walls.
//! - `on middle of the room`: at least `middle` (0.3 m) clear of every wall: error = 0.3 m −
//!   smallest clearance.
//! - `on ceiling`: top within `support` (2 cm) of the ceiling.
//! - `on <object>`: bottom within 2 cm of the reference's top, and centre over its footprint:
//!   error = max(|bottom − top| − 2 cm, distance of the centre outside the footprint).
//! - `under` / `above`: entirely below the reference's bottom / above its top (2 cm slack), and
//!   footprints overlapping: error = max(vertical intrusion − 2 cm, horizontal separation).
//! - `left of`, `right of`, `in front`, `behind` (the reference's own left, right, front,
//!   back): the object's box does not reach past the reference's facing side by more than
//!   `overlap` (2 cm): error = intrusion − 2 cm. When adjacent, also the gap between them is at
//!   most `adjacent` (5 cm): error = max(that, gap − 5 cm).
//! - `facing`: the heading is within `facing` (30°) of the direction of the target (a wall's
//!   IDesign heading, or towards an object's or the room's centre): error = difference − 30°.

use serde::{Deserialize, Serialize};

use crate::geometry::{OrientedBox, penetration_2d};
use crate::heading::{angle_between, facing_table, heading_towards};
use crate::room::{LayoutElement, ObjectPreposition, RoomPreposition, RoomSize};
use crate::scene::{Placed, Scene};

/// Tolerances of the geometric relation checks (metres and degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RelationTolerances {
    /// Adjacent objects are at most this far apart.
    pub adjacent: f64,
    /// `on` / `under` / `above` vertical slack.
    pub support: f64,
    /// How far a side relation may overlap the reference.
    pub overlap: f64,
    /// `on <wall>`: distance from the wall.
    pub wall: f64,
    /// `in the corner`: distance from each of the two walls.
    pub corner: f64,
    /// `middle of the room`: clearance from every wall.
    pub middle: f64,
    /// `facing`: heading difference, degrees.
    pub facing: f64,
}

impl Default for RelationTolerances {
    fn default() -> Self {
        Self {
            adjacent: 0.05,
            support: 0.02,
            overlap: 0.02,
            wall: 0.05,
            corner: 0.3,
            middle: 0.3,
            facing: 30.0,
        }
    }
}

/// One evaluated relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationResult {
    /// The object the relation is about.
    pub subject: String,
    /// `on`, `in the corner`, `left of`, …, or `facing`.
    pub relation: String,
    /// The reference: a layout element name or an object id.
    pub object: String,
    /// Whether the scene graph asks for contact (object relations).
    pub adjacent: bool,
    /// Whether the relation holds.
    pub satisfied: bool,
    /// Signed distance from satisfying it (≤ 0 when satisfied); metres, or degrees for
    /// `facing`. `None` when the reference is not placed.
    pub error: Option<f64>,
}

/// Evaluates every relation of every placed object, in room order then scene-graph order.
#[must_use]
pub fn evaluate(scene: &Scene<'_>, tol: &RelationTolerances) -> Vec<RelationResult> {
    let mut out = Vec::new();
    for p in &scene.placed {
        for r in &p.spec.placement.room {
            let error = room_relation_error(p, r.element, r.preposition, scene.room.size, tol);
            out.push(result(
                p,
                r.preposition.name(),
                r.element.name(),
                false,
                Some(error),
            ));
        }
        for r in &p.spec.placement.objects {
            let error = scene
                .get(&r.target)
                .map(|q| object_relation_error(p, q, r.preposition, r.adjacent, tol));
            out.push(result(
                p,
                r.preposition.name(),
                &r.target,
                r.adjacent,
                error,
            ));
        }
        if let Some(facing) = p.spec.facing.as_deref() {
            let target = match LayoutElement::from_name(facing) {
                Some(LayoutElement::Middle) => {
                    let s = scene.room.size;
                    heading_towards(p.pose.position, [s.length / 2.0, s.width / 2.0])
                }
                Some(e) => Some(facing_table(e)),
                None => scene.get(facing).and_then(|q| {
                    heading_towards(p.pose.position, [q.pose.position[0], q.pose.position[1]])
                }),
            };
            let error = target.map(|t| angle_between(p.pose.rotation, t) - tol.facing);
            out.push(result(p, "facing", facing, false, error));
        }
    }
    out
}

fn result(
    p: &Placed<'_>,
    relation: &str,
    object: &str,
    adjacent: bool,
    error: Option<f64>,
) -> RelationResult {
    RelationResult {
        subject: p.spec.id.clone(),
        relation: relation.to_owned(),
        object: object.to_owned(),
        adjacent,
        satisfied: error.is_some_and(|e| e <= 0.0),
        error,
    }
}

/// Signed gaps from the footprint to each wall (negative: through it), in
/// [`LayoutElement::WALLS`] order (south, north, east, west).
fn wall_gaps(b: &OrientedBox, room: RoomSize) -> [f64; 4] {
    let [x0, x1, y0, y1] = b.aabb_2d();
    [y0, room.width - y1, room.length - x1, x0]
}

fn room_relation_error(
    p: &Placed<'_>,
    element: LayoutElement,
    preposition: RoomPreposition,
    room: RoomSize,
    tol: &RelationTolerances,
) -> f64 {
    let gaps = wall_gaps(&p.bounds, room);
    let gap = |e: LayoutElement| {
        gaps[LayoutElement::WALLS
            .iter()
            .position(|&w| w == e)
            .unwrap_or(0)]
    };
    match (preposition, element) {
        (RoomPreposition::On, LayoutElement::Ceiling) => {
            (room.height - p.bounds.top()).abs() - tol.support
        }
        (RoomPreposition::On, LayoutElement::Middle) => {
            tol.middle - gaps.iter().copied().fold(f64::INFINITY, f64::min)
        }
        (RoomPreposition::On, wall) => gap(wall).abs() - tol.wall,
        (RoomPreposition::InTheCorner, wall) if wall.is_wall() => {
            let neighbours = match wall {
                LayoutElement::SouthWall | LayoutElement::NorthWall => {
                    [LayoutElement::EastWall, LayoutElement::WestWall]
                }
                _ => [LayoutElement::SouthWall, LayoutElement::NorthWall],
            };
            let side = gap(neighbours[0]).abs().min(gap(neighbours[1]).abs());
            gap(wall).abs().max(side) - tol.corner
        }
        (RoomPreposition::InTheCorner, _) => {
            let ns = gaps[0].abs().min(gaps[1].abs());
            let ew = gaps[2].abs().min(gaps[3].abs());
            ns.max(ew) - tol.corner
        }
    }
}

/// The subject's footprint extent in the reference's frame: `[right_min, right_max,
/// front_min, front_max]`.
fn extent_in_frame(subject: &OrientedBox, reference: &OrientedBox) -> [f64; 4] {
    subject.footprint().iter().fold(
        [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ],
        |m, &c| {
            let [r, f] = reference.to_local(c);
            [m[0].min(r), m[1].max(r), m[2].min(f), m[3].max(f)]
        },
    )
}

fn object_relation_error(
    p: &Placed<'_>,
    q: &Placed<'_>,
    preposition: ObjectPreposition,
    adjacent: bool,
    tol: &RelationTolerances,
) -> f64 {
    let (a, b) = (&p.bounds, &q.bounds);
    // Horizontal separation of the footprints (≤ 0 when they overlap).
    let separation = -penetration_2d(a, b);
    match preposition {
        ObjectPreposition::On => {
            let [r, f] = b.to_local([a.center[0], a.center[1]]);
            let outside = (r.abs() - b.half[0]).max(f.abs() - b.half[1]);
            ((a.bottom() - b.top()).abs() - tol.support).max(outside)
        }
        ObjectPreposition::Under => (a.top() - b.bottom() - tol.support).max(separation),
        ObjectPreposition::Above => (b.top() - a.bottom() - tol.support).max(separation),
        side => {
            let e = extent_in_frame(a, b);
            // Intrusion past the reference's side, and the gap to it.
            let (intrusion, gap) = match side {
                ObjectPreposition::LeftOf => (e[1] + b.half[0], -b.half[0] - e[1]),
                ObjectPreposition::RightOf => (b.half[0] - e[0], e[0] - b.half[0]),
                ObjectPreposition::InFront => (b.half[1] - e[2], e[2] - b.half[1]),
                _ => (e[3] + b.half[1], -b.half[1] - e[3]),
            };
            let base = intrusion - tol.overlap;
            if adjacent {
                base.max(gap - tol.adjacent)
            } else {
                base
            }
        }
    }
}
