//! The reference solver: a valid layout for any room, satisfying as many relations as it can.
//!
//! Greedy placement guided by the environment's own checks, with restarts:
//! 1. Objects are placed in dependency order (the targets of an object's relations and facing
//!    first). Among the objects whose targets are placed, the hardest to fit go first: corner
//!    furniture, then furniture against a wall, then other floor furniture, bigger first, then
//!    what hangs, rests on something or lies flat; room order breaks ties and cycles.
//! 2. For each object the solver proposes candidate poses from its relations — on top of its
//!    support, beside / in front of / behind its reference in the reference's frame, centred
//!    under or above it, against its wall, in a corner, in the middle, on the ceiling — with the
//!    heading its `facing` asks for. Candidates that leave the room or penetrate a placed object
//!    are rejected (exact box geometry from [`crate::geometry`]); the others are scored by how
//!    many of the relations involving the object hold, evaluated by [`crate::relations`]. The
//!    first candidate satisfying all of them wins, else the best of the batch. When every
//!    relation-guided and free candidate clashes — a full room leaves only narrow gaps, which
//!    random candidates miss — a grid scan around the least clashing one finds the nearest
//!    clean poses and keeps the one satisfying most relations: validity before relations.
//! 3. Flat objects (rugs, mats; at most [`FLAT_HEIGHT`] tall) are placed without regard to the
//!    furniture standing on them; at the end everything standing on a flat object is lifted
//!    onto it, and whatever rests on that lifted object with it.
//! 4. An attempt that places everything cleanly and satisfies every relation ends the search
//!    if the full assessment finds it valid; otherwise up to `restarts` attempts with fresh
//!    random streams run, and the attempts are assessed best first (clean first, then most
//!    relations satisfied) until one is valid.
//! 5. If none is, the floor furniture that failed (sank through a rug while settling, or was
//!    lifted into something above it) is kept off flat objects and the search runs once more.
//!
//! The assessment — collisions, bounds, Rapier settling, relations — not the solver's own
//! bookkeeping, decides `valid` and lists the relations left unsatisfied.

use crate::assessment::{AssessConfig, Assessment, assess_layout};
use crate::geometry::{OrientedBox, penetration, penetration_2d};
use crate::heading::{angle_between, facing_table, heading_towards, normalize};
use crate::layout::{Layout, Pose};
use crate::relations::{RelationTolerances, evaluate};
use crate::room::{LayoutElement, ObjectPreposition, ObjectSpec, Room, RoomPreposition};
use crate::scene::Scene;

use super::catalogue::FLAT_HEIGHT;
use super::rng::Rng;

/// Solver settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverConfig {
    /// Seed of the solver's random streams (mixed with the room id).
    pub seed: u64,
    /// Attempts at most.
    pub restarts: usize,
    /// Candidate poses tried per object and attempt.
    pub candidates: usize,
    /// How the final layout is assessed.
    pub assess: AssessConfig,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            restarts: 6,
            candidates: 80,
            assess: AssessConfig::default(),
        }
    }
}

/// What the solver found.
#[derive(Debug, Clone)]
pub struct Solution {
    /// One pose per object, in room order.
    pub layout: Layout,
    /// No collisions, nothing out of bounds, every object supported (per the assessment).
    pub valid: bool,
    /// The full assessment of the layout.
    pub assessment: Assessment,
    /// Attempts made.
    pub attempts: usize,
}

impl Solution {
    /// Relations (placement and facing) that hold, and their total.
    #[must_use]
    pub fn relations(&self) -> (usize, usize) {
        self.assessment.relations_satisfied()
    }

    /// The relations that do not hold, as `subject relation object`.
    #[must_use]
    pub fn unsatisfied(&self) -> Vec<String> {
        self.assessment
            .relations
            .iter()
            .filter(|r| !r.satisfied)
            .map(|r| format!("{} {} {}", r.subject, r.relation, r.object))
            .collect()
    }
}

/// How a placed object is held up, for the final lift onto flat objects.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Support {
    /// Stands on the floor (or on a flat object there).
    Floor,
    /// Rests on top of placed object `usize`.
    On(usize),
    /// Held by a wall or the ceiling, or flat itself.
    Fixed,
}

/// One attempt's state.
struct Attempt<'a> {
    room: &'a Room,
    tol: RelationTolerances,
    rng: Rng,
    /// Per room object: its pose and box, once placed.
    placed: Vec<Option<(Pose, OrientedBox, Support)>>,
    /// Objects no candidate could place cleanly.
    forced: usize,
    /// Per room object: it must stand on the floor itself, not on a flat object.
    grounded: &'a [bool],
}

fn is_flat(o: &ObjectSpec) -> bool {
    o.on_floor && o.size.height <= FLAT_HEIGHT
}

/// Distance the box reaches from its centre along a horizontal unit axis.
fn reach(b: &OrientedBox, axis: [f64; 2]) -> f64 {
    let dot = |u: [f64; 2]| (u[0] * axis[0] + u[1] * axis[1]).abs();
    b.half[0] * dot(b.right) + b.half[1] * dot(b.front)
}

/// Headings within this many degrees of a right angle snap to it, which keeps MetaSpatial's
/// axis-aligned ratios defined without leaving the facing tolerance.
const SNAP_DEGREES: f64 = 20.0;

fn snap(heading: f64) -> f64 {
    let right = (heading / 90.0).round() * 90.0;
    if angle_between(heading, right) <= SNAP_DEGREES {
        normalize(right)
    } else {
        heading
    }
}

fn wall_of(o: &ObjectSpec) -> Option<(LayoutElement, RoomPreposition)> {
    o.placement
        .room
        .iter()
        .find(|r| r.element.is_wall())
        .map(|r| (r.element, r.preposition))
}

fn has_room(o: &ObjectSpec, e: LayoutElement) -> bool {
    o.placement.room.iter().any(|r| r.element == e)
}

/// The heading of an object whose back is against `wall`.
fn away_from(wall: LayoutElement) -> f64 {
    match wall {
        LayoutElement::SouthWall => 0.0,
        LayoutElement::NorthWall => 180.0,
        LayoutElement::EastWall => 270.0,
        _ => 90.0,
    }
}

impl Attempt<'_> {
    fn get(&self, id: &str) -> Option<(usize, &Pose, &OrientedBox)> {
        let i = self.room.object_index(id)?;
        self.placed[i].as_ref().map(|(p, b, _)| (i, p, b))
    }

    /// The heading `facing` asks for at this position, if it asks for one that can be known.
    fn facing_heading(&self, o: &ObjectSpec, at: [f64; 3]) -> Option<f64> {
        if let Some(r) = o.rotation {
            return Some(r);
        }
        let facing = o.facing.as_deref()?;
        let s = self.room.size;
        let exact = match LayoutElement::from_name(facing) {
            Some(LayoutElement::Middle) => heading_towards(at, [s.length / 2.0, s.width / 2.0])?,
            Some(e) => return Some(facing_table(e)),
            None => {
                let (_, p, _) = self.get(facing)?;
                heading_towards(at, [p.position[0], p.position[1]])?
            }
        };
        Some(snap(exact))
    }

    /// Shifts a box horizontally into the room where it fits.
    fn clamp_into_room(&self, center: &mut [f64; 3], b: &OrientedBox) {
        let s = self.room.size;
        let [x0, x1, y0, y1] = b.aabb_2d();
        let inset = 0.001;
        if x1 - x0 <= s.length {
            center[0] += (inset - x0).max(0.0) - (x1 - s.length + inset).max(0.0);
        }
        if y1 - y0 <= s.width {
            center[1] += (inset - y0).max(0.0) - (y1 - s.width + inset).max(0.0);
        }
    }

    /// Pushes the box's back against a wall (and, for corners, against a neighbour too).
    fn snap_to_wall(
        &mut self,
        center: &mut [f64; 3],
        b: &OrientedBox,
        wall: LayoutElement,
        corner: bool,
    ) {
        let s = self.room.size;
        let [x0, x1, y0, y1] = b.aabb_2d();
        let inset = 0.001;
        let to_x = |c: &mut [f64; 3], east: bool| {
            c[0] += if east {
                s.length - inset - x1
            } else {
                inset - x0
            }
        };
        let to_y = |c: &mut [f64; 3], north: bool| {
            c[1] += if north {
                s.width - inset - y1
            } else {
                inset - y0
            }
        };
        match wall {
            LayoutElement::SouthWall | LayoutElement::NorthWall => {
                to_y(center, wall == LayoutElement::NorthWall);
                if corner {
                    let east = if self.rng.chance(0.5) {
                        center[0] > s.length / 2.0
                    } else {
                        self.rng.chance(0.5)
                    };
                    to_x(center, east);
                }
            }
            LayoutElement::EastWall | LayoutElement::WestWall => {
                to_x(center, wall == LayoutElement::EastWall);
                if corner {
                    let north = if self.rng.chance(0.5) {
                        center[1] > s.width / 2.0
                    } else {
                        self.rng.chance(0.5)
                    };
                    to_y(center, north);
                }
            }
            _ => {}
        }
    }

    /// One candidate pose for object `i`, and how it is supported.
    fn propose(&mut self, i: usize, k: usize, free: bool) -> (Pose, OrientedBox, Support) {
        let room = self.room;
        let o = &room.objects[i];
        let s = room.size;
        let h = o.size.height;
        // Relations to placed objects that fix a position.
        let anchors: Vec<(ObjectPreposition, bool, [f64; 3], OrientedBox, usize, f64)> = o
            .placement
            .objects
            .iter()
            .filter_map(|r| {
                let (j, p, b) = self.get(&r.target)?;
                Some((r.preposition, r.adjacent, p.position, *b, j, p.rotation))
            })
            .collect();
        let wall = wall_of(o);
        let ceiling = has_room(o, LayoutElement::Ceiling);
        let mounted = !o.on_floor && wall.is_some_and(|(_, p)| p == RoomPreposition::On);
        let mut support = if mounted || ceiling || is_flat(o) {
            Support::Fixed
        } else {
            Support::Floor
        };
        let mut heading = self.rng.below(4) as f64 * 90.0;
        let mut center = [
            self.rng.range(0.0, s.length),
            self.rng.range(0.0, s.width),
            h / 2.0,
        ];
        let anchor = if anchors.is_empty() || free {
            None
        } else {
            Some(anchors[k % anchors.len()])
        };
        let own = |heading: f64| OrientedBox::new([0.0; 3], o.size, heading);
        match anchor {
            Some((ObjectPreposition::On, _, tc, tb, j, th)) => {
                heading = th;
                let b = own(heading);
                let lr = (tb.half[0] - reach(&b, tb.right)).max(0.0);
                let lf = (tb.half[1] - reach(&b, tb.front)).max(0.0);
                let (r, f) = (self.rng.range(-lr, lr), self.rng.range(-lf, lf));
                center = [
                    tc[0] + r * tb.right[0] + f * tb.front[0],
                    tc[1] + r * tb.right[1] + f * tb.front[1],
                    tb.top() + h / 2.0,
                ];
                support = Support::On(j);
            }
            Some((
                side @ (ObjectPreposition::LeftOf
                | ObjectPreposition::RightOf
                | ObjectPreposition::InFront
                | ObjectPreposition::Behind),
                adjacent,
                tc,
                tb,
                _,
                th,
            )) => {
                let gap = if adjacent {
                    self.rng.range(0.006, 0.03)
                } else {
                    self.rng.range(0.15, 0.3 + 0.3 * s.length.min(s.width))
                };
                heading = th;
                // Twice: the heading may point at the reference from where the object lands.
                for _ in 0..2 {
                    let b = own(heading);
                    let (rr, rf) = (reach(&b, tb.right), reach(&b, tb.front));
                    let (r, f) = match side {
                        ObjectPreposition::LeftOf | ObjectPreposition::RightOf => {
                            let sign = if side == ObjectPreposition::LeftOf {
                                -1.0
                            } else {
                                1.0
                            };
                            let lf = (tb.half[1] - rf).max(0.0);
                            let f = if self.rng.chance(0.5) {
                                -lf
                            } else {
                                self.rng.range(-lf, lf)
                            };
                            (sign * (tb.half[0] + rr + gap), f)
                        }
                        _ => {
                            let sign = if side == ObjectPreposition::InFront {
                                1.0
                            } else {
                                -1.0
                            };
                            let lr = (tb.half[0] - rr).max(0.0);
                            (self.rng.range(-lr, lr), sign * (tb.half[1] + rf + gap))
                        }
                    };
                    center = [
                        tc[0] + r * tb.right[0] + f * tb.front[0],
                        tc[1] + r * tb.right[1] + f * tb.front[1],
                        h / 2.0,
                    ];
                    heading = self.facing_heading(o, center).unwrap_or(th);
                }
            }
            Some((ObjectPreposition::Under, _, tc, _, _, th)) => {
                heading = th;
                center = [
                    tc[0] + self.rng.range(-0.15, 0.15),
                    tc[1] + self.rng.range(-0.15, 0.15),
                    h / 2.0,
                ];
            }
            Some((_, _, tc, tb, _, th)) => {
                // Above: over the reference, hung from its wall or the ceiling or free.
                heading = th;
                let top = if ceiling {
                    s.height - h / 2.0
                } else {
                    tb.top() + self.rng.range(0.1, 0.45) + h / 2.0
                };
                center = [
                    tc[0] + self.rng.range(-0.1, 0.1),
                    tc[1] + self.rng.range(-0.1, 0.1),
                    top,
                ];
            }
            None => match wall {
                Some((w, _)) => {
                    heading = away_from(w);
                    center[2] = if mounted {
                        self.rng.range(1.2, 1.7).min(s.height - h / 2.0 - 0.02)
                    } else {
                        h / 2.0
                    };
                }
                None if has_room(o, LayoutElement::Middle) => {
                    let m = 0.35;
                    center[0] = self.rng.range(m, (s.length - m).max(m));
                    center[1] = self.rng.range(m, (s.width - m).max(m));
                }
                None => {}
            },
        }
        if ceiling {
            center[2] = s.height - h / 2.0 - 0.001;
            support = Support::Fixed;
        }
        if matches!(
            anchor,
            Some((ObjectPreposition::On | ObjectPreposition::Above, ..))
        ) {
            // Keep the heading of the reference for things on or above it.
        } else if let Some(f) = self.facing_heading(o, center) {
            heading = f;
        } else if let Some((w, RoomPreposition::On)) = wall {
            heading = away_from(w);
        }
        if let Some((w, RoomPreposition::On)) = wall
            && o.facing.is_none()
            && o.rotation.is_none()
        {
            heading = away_from(w);
        }
        heading = normalize(heading);
        let unclamped = OrientedBox::new(center, o.size, heading);
        self.clamp_into_room(&mut center, &unclamped);
        if let Some((w, p)) = wall
            && (anchor.is_none() || mounted)
        {
            let placed_box = OrientedBox::new(center, o.size, heading);
            self.snap_to_wall(
                &mut center,
                &placed_box,
                w,
                p == RoomPreposition::InTheCorner,
            );
        }
        if mounted {
            center[2] = center[2].clamp(h / 2.0, s.height - h / 2.0 - 0.001);
        }
        let pose = Pose {
            id: o.id.clone(),
            position: center,
            rotation: heading,
        };
        (pose, OrientedBox::new(center, o.size, heading), support)
    }

    /// How badly a box clashes with the room and the placed objects (0 = clean).
    fn clash(&self, i: usize, b: &OrientedBox) -> f64 {
        let s = self.room.size;
        let [x0, x1, y0, y1] = b.aabb_2d();
        let outside = (-x0).max(0.0)
            + (x1 - s.length).max(0.0)
            + (-y0).max(0.0)
            + (y1 - s.width).max(0.0)
            + (-b.bottom()).max(0.0)
            + (b.top() - s.height).max(0.0);
        let flat = is_flat(&self.room.objects[i]);
        let overlap: f64 = self
            .placed
            .iter()
            .enumerate()
            .filter_map(|(j, p)| p.as_ref().map(|(_, q, _)| (j, q)))
            .filter(|&(j, _)| {
                let other = &self.room.objects[j];
                // A flat object and floor furniture may overlap: the furniture is lifted later.
                !(flat != is_flat(other)
                    && other.on_floor
                    && self.room.objects[i].on_floor
                    && !self.grounded[i]
                    && !self.grounded[j])
            })
            .map(|(_, q)| penetration(b, q).max(0.0))
            .filter(|d| *d > 1e-4)
            .sum();
        outside + overlap
    }

    /// Relations involving object `i` that hold with this pose, and how many could.
    fn score(&self, i: usize, pose: &Pose) -> (usize, usize) {
        let id = &self.room.objects[i].id;
        let mut poses = vec![pose.clone()];
        for (j, p) in self.placed.iter().enumerate() {
            let Some((q, ..)) = p else { continue };
            let other = &self.room.objects[j];
            let related = other.placement.objects.iter().any(|r| &r.target == id)
                || other.facing.as_deref() == Some(id)
                || self.room.objects[i]
                    .placement
                    .objects
                    .iter()
                    .any(|r| r.target == other.id)
                || self.room.objects[i].facing.as_deref() == Some(other.id.as_str());
            if related {
                poses.push(q.clone());
            }
        }
        let layout = Layout { poses };
        let scene = Scene::new(self.room, &layout, &[]);
        let results = evaluate(&scene, &self.tol);
        let involved = results
            .iter()
            .filter(|r| (&r.subject == id || &r.object == id) && r.error.is_some());
        involved.fold((0, 0), |(ok, n), r| (ok + usize::from(r.satisfied), n + 1))
    }

    fn place(&mut self, i: usize, candidates: usize) {
        let mut best: Option<((usize, usize), Candidate)> = None;
        let mut least_bad: Option<(f64, Candidate)> = None;
        // Relation-guided candidates first; when none of them fits, free ones, so that an
        // impossible relation costs only itself and never the layout's validity.
        for k in 0..2 * candidates.max(1) {
            let free = k >= candidates.max(1);
            if free && best.is_some() {
                break;
            }
            let cand = self.propose(i, k, free);
            let clash = self.clash(i, &cand.1);
            if clash > 0.0 {
                if least_bad.as_ref().is_none_or(|(c, _)| clash < *c) {
                    least_bad = Some((clash, cand));
                }
                continue;
            }
            let (ok, n) = self.score(i, &cand.0);
            if ok == n {
                best = Some(((ok, n), cand));
                break;
            }
            if best.as_ref().is_none_or(|((b, _), _)| ok > *b) {
                best = Some(((ok, n), cand));
            }
        }
        let chosen = match (best, least_bad) {
            (Some((_, c)), _) => c,
            (None, Some((_, c))) => self.nearby_clean(i, &c).unwrap_or_else(|| {
                self.forced += 1;
                c
            }),
            (None, None) => unreachable!("at least one candidate is proposed"),
        };
        self.placed[i] = Some(chosen);
    }

    /// The clean pose nearest to a clashing candidate that keeps as many relations as the
    /// nearest few clean poses allow, or `None` when the room has no room left for it.
    ///
    /// Sampled candidates miss the narrow gaps a full room leaves (a corner taken by a
    /// wardrobe, a wall lined with shelves), so this scans a grid of offsets around the
    /// candidate in square rings, nearest ring first, at the candidate's heading and the other
    /// three right angles. Floor objects move across the floor; objects on a surface stay on
    /// it; wall-mounted objects slide along their wall and up or down it. Deterministic: it
    /// draws nothing from the attempt's random stream.
    fn nearby_clean(&mut self, i: usize, cand: &Candidate) -> Option<Candidate> {
        let room = self.room;
        let o = &room.objects[i];
        let s = room.size;
        let (pose, _, support) = cand;
        let wall = wall_of(o);
        let mounted = !o.on_floor && wall.is_some_and(|(_, p)| p == RoomPreposition::On);
        let surface = match *support {
            Support::On(j) => self.placed[j].as_ref().map(|(_, b, _)| *b),
            _ => None,
        };
        let headings: Vec<f64> = (0..4)
            .map(|q| normalize(pose.rotation + f64::from(q) * 90.0))
            .collect();
        let farthest = s.length.max(s.width).max(s.height);
        let offsets = (0..)
            .take_while(|&ring| f64::from(ring) * REPAIR_STEP <= farthest)
            .flat_map(|ring| square_ring(ring).map(move |d| (ring, d)));
        let mut clean: Vec<Candidate> = Vec::new();
        let mut last_ring = i32::MAX;
        for (ring, (dx, dy)) in offsets {
            if ring > last_ring || clean.len() >= REPAIR_CANDIDATES {
                break;
            }
            let (dx, dy) = (f64::from(dx) * REPAIR_STEP, f64::from(dy) * REPAIR_STEP);
            for &heading in &headings {
                let mut center = pose.position;
                match (mounted, wall) {
                    // Along the wall, and up or down it; the snap keeps it on the wall.
                    (true, Some((LayoutElement::EastWall | LayoutElement::WestWall, _))) => {
                        center[1] += dy;
                        center[2] += dx;
                    }
                    (true, _) => {
                        center[0] += dx;
                        center[2] += dy;
                    }
                    (false, _) => {
                        center[0] += dx;
                        center[1] += dy;
                    }
                }
                let b = OrientedBox::new(center, o.size, heading);
                self.clamp_into_room(&mut center, &b);
                if mounted {
                    if let Some((w, _)) = wall {
                        let b = OrientedBox::new(center, o.size, heading);
                        self.snap_to_wall(&mut center, &b, w, false);
                    }
                    let h = o.size.height;
                    center[2] = center[2].clamp(h / 2.0, s.height - h / 2.0 - 0.001);
                }
                let b = OrientedBox::new(center, o.size, heading);
                if surface.is_some_and(|t| !within_top(&b, &t)) || self.clash(i, &b) > 0.0 {
                    continue;
                }
                if clean.is_empty() {
                    last_ring = ring + REPAIR_EXTRA_RINGS;
                }
                let pose = Pose {
                    id: o.id.clone(),
                    position: center,
                    rotation: heading,
                };
                clean.push((pose, b, *support));
            }
        }
        // Nearest first among equals: `max_by_key` would keep the last, so scan by hand.
        let mut best: Option<(usize, Candidate)> = None;
        for c in clean {
            let (ok, _) = self.score(i, &c.0);
            if best.as_ref().is_none_or(|(b, _)| ok > *b) {
                best = Some((ok, c));
            }
        }
        best.map(|(_, c)| c)
    }

    /// Lifts furniture standing on flat objects onto them, and what rests on it with it.
    fn lift(&mut self, order: &[usize]) {
        for &i in order {
            let Some((pose, b, support)) = self.placed[i].clone() else {
                continue;
            };
            let base = match support {
                Support::Floor => self
                    .placed
                    .iter()
                    .enumerate()
                    .filter(|&(j, p)| j != i && p.is_some() && is_flat(&self.room.objects[j]))
                    .filter_map(|(_, p)| p.as_ref())
                    .filter(|(_, q, _)| penetration_2d(&b, q) > 1e-9)
                    .map(|(_, q, _)| q.top())
                    .fold(0.0, f64::max),
                Support::On(j) => match &self.placed[j] {
                    Some((_, q, _)) => q.top(),
                    None => continue,
                },
                Support::Fixed => continue,
            };
            let mut pose = pose;
            pose.position[2] = base + b.half[2];
            let nb = OrientedBox::new(pose.position, self.room.objects[i].size, pose.rotation);
            self.placed[i] = Some((pose, nb, support));
        }
    }
}

/// Grid spacing of the repair scan, metres.
const REPAIR_STEP: f64 = 0.05;
/// Clean poses the repair scan scores before choosing.
const REPAIR_CANDIDATES: usize = 24;
/// Rings the repair scan goes on for past the first clean pose, to weigh relations.
const REPAIR_EXTRA_RINGS: i32 = 3;

/// The grid offsets at Chebyshev distance `ring` from the origin.
fn square_ring(ring: i32) -> impl Iterator<Item = (i32, i32)> {
    let rows = (-ring..=ring).flat_map(move |x| [(x, -ring), (x, ring)]);
    let columns = (-ring + 1..ring).flat_map(move |y| [(-ring, y), (ring, y)]);
    let origin = (ring == 0).then_some((0, 0));
    origin
        .into_iter()
        .chain(rows.filter(move |_| ring > 0))
        .chain(columns)
}

/// Whether the footprint of `b` lies on the top face of `t`.
fn within_top(b: &OrientedBox, t: &OrientedBox) -> bool {
    let [r, f] = t.to_local([b.center[0], b.center[1]]);
    r.abs() + reach(b, t.right) <= t.half[0] + 1e-9
        && f.abs() + reach(b, t.front) <= t.half[1] + 1e-9
}

/// How hard an object is to fit, hardest first: what stands in a corner has two places to go,
/// then furniture against a wall, then the rest of the floor furniture (bigger first), then
/// what hangs, rests on something or lies flat, which clashes with little.
fn difficulty(o: &ObjectSpec) -> (u8, f64) {
    let class = if !o.on_floor || is_flat(o) {
        3
    } else {
        match wall_of(o) {
            Some((_, RoomPreposition::InTheCorner)) => 0,
            Some(_) => 1,
            None => 2,
        }
    };
    (class, -o.size.length * o.size.width)
}

/// Dependency order: targets of relations and facings first; among the objects whose targets
/// are placed, the hardest to fit first ([`difficulty`]), then room order.
fn order(room: &Room) -> Vec<usize> {
    let n = room.objects.len();
    let deps: Vec<Vec<usize>> = room
        .objects
        .iter()
        .map(|o| {
            let mut d: Vec<usize> = o
                .placement
                .objects
                .iter()
                .filter_map(|r| room.object_index(&r.target))
                .collect();
            if let Some(j) = o.facing.as_deref().and_then(|f| room.object_index(f)) {
                d.push(j);
            }
            d
        })
        .collect();
    let mut done = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let hardest = |a: &usize, b: &usize| {
            let (ka, kb) = (difficulty(&room.objects[*a]), difficulty(&room.objects[*b]));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(b))
        };
        let next = (0..n)
            .filter(|&i| !done[i] && deps[i].iter().all(|&j| done[j] || j == i))
            .min_by(hardest)
            .or_else(|| (0..n).find(|&i| !done[i]))
            .unwrap_or(0);
        done[next] = true;
        out.push(next);
    }
    out
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What one attempt found.
struct Outcome {
    layout: Layout,
    /// Every object was placed without a clash.
    clean: bool,
    /// Relations that hold.
    satisfied: usize,
    /// Relations in all.
    total: usize,
}

/// One attempt with its own random stream.
fn attempt(
    room: &Room,
    order: &[usize],
    cfg: &SolverConfig,
    rng: Rng,
    grounded: &[bool],
) -> Outcome {
    let mut a = Attempt {
        room,
        tol: cfg.assess.relations,
        rng,
        placed: vec![None; room.objects.len()],
        forced: 0,
        grounded,
    };
    for &i in order {
        a.place(i, cfg.candidates);
    }
    a.lift(order);
    let layout = Layout {
        poses: a.placed.into_iter().flatten().map(|(p, ..)| p).collect(),
    };
    let scene = Scene::new(room, &layout, &[]);
    let relations = evaluate(&scene, &cfg.assess.relations);
    Outcome {
        layout,
        clean: a.forced == 0,
        satisfied: relations.iter().filter(|r| r.satisfied).count(),
        total: relations.len(),
    }
}

/// Assesses a layout in full and wraps it as a solution.
fn judge(room: &Room, layout: Layout, cfg: &SolverConfig, attempts: usize) -> Solution {
    let assessment = assess_layout(room, &layout, &[], &cfg.assess);
    let valid = assessment.valid_scene && assessment.unsupported.is_empty();
    Solution {
        layout,
        valid,
        assessment,
        attempts,
    }
}

/// Runs up to `cfg.restarts` attempts and returns the first layout the full assessment finds
/// valid, best attempts first, or else the best attempt's; `attempts` counts on from `done`.
fn search(
    room: &Room,
    order: &[usize],
    cfg: &SolverConfig,
    grounded: &[bool],
    done: usize,
) -> Solution {
    let stream = cfg.seed ^ fnv1a(&room.id);
    let mut tried: Vec<((bool, usize), Layout)> = Vec::new();
    for k in 0..cfg.restarts.max(1) {
        let o = attempt(room, order, cfg, Rng::derive(stream, k as u64), grounded);
        let key = (o.clean, o.satisfied);
        if o.clean && o.satisfied == o.total {
            let s = judge(room, o.layout, cfg, done + k + 1);
            if s.valid {
                return s;
            }
            // Clean boxes can still fail settling (a thin frame that topples): search on.
            tried.push((key, s.layout));
        } else {
            tried.push((key, o.layout));
        }
    }
    let attempts = done + tried.len();
    // Best first (stable: earlier attempts first among equals); the assessment, which also
    // settles the scene, has the last word.
    tried.sort_by_key(|t| std::cmp::Reverse(t.0));
    let mut layouts = tried.into_iter().map(|(_, layout)| layout);
    let best = judge(room, layouts.next().unwrap_or_default(), cfg, attempts);
    if best.valid {
        return best;
    }
    layouts
        .map(|layout| judge(room, layout, cfg, attempts))
        .find(|s| s.valid)
        .unwrap_or(best)
}

/// Lays out a room (see the module documentation).
#[must_use]
pub fn solve(room: &Room, cfg: &SolverConfig) -> Solution {
    let order = order(room);
    let mut grounded = vec![false; room.objects.len()];
    let mut s = search(room, &order, cfg, &grounded, 0);
    if s.valid {
        return s;
    }
    // Heavy furniture lifted onto a thin rug can sink through it when the scene settles, and a
    // lifted object can rise into what hangs above it. Validity comes before relations: search
    // again with the floor furniture that failed standing on the floor itself, which may cost
    // a rug its place under it.
    let failed = s
        .assessment
        .unsupported
        .iter()
        .map(|u| u.id.as_str())
        .chain(
            s.assessment
                .collisions
                .iter()
                .flat_map(|c| [c.a.as_str(), c.b.as_str()]),
        );
    let mut more = false;
    for id in failed {
        if let Some(i) = room.object_index(id) {
            let o = &room.objects[i];
            if o.on_floor && !is_flat(o) && !grounded[i] {
                grounded[i] = true;
                more = true;
            }
        }
    }
    if more {
        let again = search(room, &order, cfg, &grounded, s.attempts);
        if again.valid {
            return again;
        }
        s.attempts = again.attempts;
    }
    s
}

/// A placement under consideration: the pose, its box and what holds it up.
type Candidate = (Pose, OrientedBox, Support);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate::{GenConfig, generate};

    #[test]
    fn generated_rooms_solve_validly_and_repeatably() {
        let cfg = GenConfig {
            seed: 11,
            min_objects: 4,
            max_objects: 12,
        };
        let solver = SolverConfig::default();
        let mut valid = 0;
        for i in 0..12 {
            let room = generate(&cfg, i);
            let a = solve(&room, &solver);
            let b = solve(&room, &solver);
            assert_eq!(a.layout, b.layout, "{}", room.id);
            assert_eq!(a.layout.poses.len(), room.objects.len());
            if !a.valid {
                eprintln!(
                    "{} {:?} {:?} {:?}",
                    room.id,
                    a.assessment.collisions,
                    a.assessment.out_of_bounds,
                    a.assessment.unsupported
                );
            }
            valid += usize::from(a.valid);
        }
        assert_eq!(valid, 12, "{valid} of 12 valid");
    }

    #[test]
    fn full_thirty_object_rooms_solve_validly() {
        let cfg = GenConfig {
            seed: 5,
            min_objects: 30,
            max_objects: 30,
        };
        for i in 0..5 {
            let room = generate(&cfg, i);
            assert_eq!(room.objects.len(), 30, "{}", room.id);
            let s = solve(&room, &SolverConfig::default());
            assert!(
                s.valid,
                "{}: {:?} {:?} {:?}",
                room.id,
                s.assessment.collisions,
                s.assessment.out_of_bounds,
                s.assessment.unsupported
            );
            let (ok, total) = s.relations();
            assert!(
                10 * ok >= 9 * total,
                "{}: {ok} of {total} relations",
                room.id
            );
        }
    }

    #[test]
    fn square_rings_cover_the_grid_once_nearest_first() {
        let mut seen = std::collections::HashSet::new();
        for ring in 0..4 {
            let cells: Vec<(i32, i32)> = square_ring(ring).collect();
            assert_eq!(
                cells.len(),
                usize::try_from(if ring == 0 { 1 } else { 8 * ring }).unwrap()
            );
            for (x, y) in cells {
                assert_eq!(x.abs().max(y.abs()), ring);
                assert!(seen.insert((x, y)), "({x}, {y}) twice");
            }
        }
        assert_eq!(seen.len(), 7 * 7);
    }

    #[test]
    fn a_nightstand_lands_beside_its_bed_and_a_lamp_on_it() {
        let room: Room = serde_json::from_value(serde_json::json!({
            "id": "tiny", "size": {"length": 4.0, "width": 3.5, "height": 2.6},
            "objects": [
                {"id": "double_bed_1", "category": "double_bed", "size": {"length": 1.6, "width": 2.1, "height": 1.0},
                 "on_floor": true, "facing": "south_wall",
                 "placement": {"room": [{"element": "north_wall", "preposition": "on"}], "objects": []}},
                {"id": "nightstand_1", "category": "nightstand", "size": {"length": 0.5, "width": 0.4, "height": 0.55},
                 "on_floor": true, "facing": "south_wall",
                 "placement": {"room": [], "objects": [{"target": "double_bed_1", "preposition": "left of", "adjacent": true}]}},
                {"id": "table_lamp_1", "category": "table_lamp", "size": {"length": 0.3, "width": 0.3, "height": 0.5},
                 "on_floor": false,
                 "placement": {"room": [], "objects": [{"target": "nightstand_1", "preposition": "on", "adjacent": true}]}},
                {"id": "rug_1", "category": "rug", "size": {"length": 2.0, "width": 1.5, "height": 0.015},
                 "on_floor": true,
                 "placement": {"room": [], "objects": [{"target": "double_bed_1", "preposition": "under", "adjacent": false}]}},
                {"id": "painting_1", "category": "painting", "size": {"length": 0.9, "width": 0.04, "height": 0.6},
                 "on_floor": false, "facing": "south_wall",
                 "placement": {"room": [{"element": "north_wall", "preposition": "on"}],
                               "objects": [{"target": "double_bed_1", "preposition": "above", "adjacent": false}]}}
            ]
        }))
        .unwrap();
        let s = solve(&room, &SolverConfig::default());
        assert!(
            s.valid,
            "{:?} {:?} {:?}",
            s.assessment.collisions, s.assessment.out_of_bounds, s.assessment.unsupported
        );
        assert!(s.unsatisfied().is_empty(), "{:?}", s.unsatisfied());
        // The bed stands on the rug.
        let bed = s.layout.pose("double_bed_1").unwrap();
        assert!(
            (bed.position[2] - (0.015 + 0.5)).abs() < 1e-9,
            "{:?}",
            bed.position
        );
    }

    #[test]
    fn impossible_relations_are_reported_not_hidden() {
        // Two wardrobes that both want the same corner.
        let room: Room = serde_json::from_value(serde_json::json!({
            "id": "clash", "size": {"length": 3.0, "width": 3.0, "height": 2.6},
            "objects": [
                {"id": "a_1", "category": "wardrobe", "size": {"length": 1.0, "width": 0.6, "height": 2.0}, "on_floor": true,
                 "placement": {"room": [], "objects": [{"target": "b_1", "preposition": "on", "adjacent": true}]}},
                {"id": "b_1", "category": "wardrobe", "size": {"length": 1.0, "width": 0.6, "height": 2.0}, "on_floor": true,
                 "placement": {"room": [{"element": "west_wall", "preposition": "on"}], "objects": []}}
            ]
        }))
        .unwrap();
        let s = solve(&room, &SolverConfig::default());
        // A wardrobe on a wardrobe would poke through the 2.6 m ceiling: the solver keeps the
        // layout valid and says which relation it gave up.
        assert!(s.valid);
        assert_eq!(s.unsatisfied(), vec!["a_1 on b_1".to_owned()]);
    }
}
