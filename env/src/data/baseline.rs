//! Baselines and the layout metrics every policy is judged by.
//!
//! The floor is uniform random placement; the ceiling is the reference solver. Both are written
//! out as model answers (`<think>…</think><answer>[…]</answer>`) and scored by the same
//! [`crate::assess`] a trained policy's responses go through, so the format, parsing and
//! heading rules are exercised too.

use serde::{Deserialize, Serialize};

use crate::answer::{self, Precision};
use crate::assessment::Assessment;
use crate::layout::{Layout, Pose};
use crate::room::Room;

use super::rng::Rng;

/// A uniformly random layout: each object's centre uniform where its box fits in the room
/// (floor objects on the floor, others anywhere up to the ceiling), heading a uniform right
/// angle so that MetaSpatial's axis-aligned ratios stay defined.
#[must_use]
pub fn random_layout(room: &Room, rng: &mut Rng) -> Layout {
    let s = room.size;
    let poses = room
        .objects
        .iter()
        .map(|o| {
            let rotation = rng.below(4) as f64 * 90.0;
            let (hx, hy) = if rotation % 180.0 == 0.0 {
                (o.size.length / 2.0, o.size.width / 2.0)
            } else {
                (o.size.width / 2.0, o.size.length / 2.0)
            };
            let h = o.size.height / 2.0;
            let x = rng.range(hx.min(s.length / 2.0), (s.length - hx).max(s.length / 2.0));
            let y = rng.range(hy.min(s.width / 2.0), (s.width - hy).max(s.width / 2.0));
            let z = if o.on_floor {
                h
            } else {
                rng.range(h.min(s.height / 2.0), (s.height - h).max(s.height / 2.0))
            };
            Pose {
                id: o.id.clone(),
                position: [x, y, z],
                rotation,
            }
        })
        .collect();
    Layout { poses }
}

/// The layout as a model answer in MetaSpatial's format, every digit kept.
#[must_use]
pub fn answer_text(layout: &Layout) -> String {
    answer::write(layout, "placed by a baseline", Precision::Exact)
}

/// Layout metrics over a set of rooms (rates in `[0, 1]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Rooms scored.
    pub rooms: usize,
    /// Responses whose answer parsed.
    pub format_valid_rate: f64,
    /// Objects in at least one collision, over all objects.
    pub object_collision_rate: f64,
    /// Scenes without any collision.
    pub collision_free_rate: f64,
    /// Objects out of bounds, over all objects.
    pub object_out_of_bounds_rate: f64,
    /// Scenes with nothing out of bounds.
    pub in_bounds_rate: f64,
    /// Placement relations (not `facing`) that hold, over all of them.
    pub relation_satisfaction: f64,
    /// `facing` relations that hold, over all of them.
    pub facing_accuracy: f64,
    /// Objects that stay put when settled, over all objects.
    pub stable_object_rate: f64,
    /// Mean largest connected free floor region (fraction of free floor).
    pub free_space: f64,
    /// Scenes that are valid (every object once, no collision, nothing out of bounds).
    pub valid_scene_rate: f64,
    /// Valid scenes where also everything is supported.
    pub valid_and_stable_rate: f64,
    /// Mean MetaSpatial collision ratio over the rooms where it is defined.
    pub metaspatial_collision_ratio: Option<f64>,
    /// Mean MetaSpatial constraint-violation ratio over the rooms where it is defined.
    pub metaspatial_constraint_violation_ratio: Option<f64>,
    /// Rooms where MetaSpatial's ratios are defined.
    pub metaspatial_defined: usize,
}

fn rate(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Aggregates assessments (one per room, parallel to `rooms`).
#[must_use]
pub fn metrics(rooms: &[Room], assessments: &[Assessment]) -> Metrics {
    let objects: usize = rooms.iter().map(|r| r.objects.len()).sum();
    let mut m = Metrics {
        rooms: assessments.len(),
        ..Metrics::default()
    };
    let (mut parsed, mut colliding, mut free, mut oob, mut inb, mut valid, mut valid_stable) =
        (0, 0, 0, 0, 0, 0, 0);
    let (mut rel_ok, mut rel_n, mut face_ok, mut face_n, mut unstable) = (0, 0, 0, 0, 0);
    let (mut space, mut coll, mut viol) = (Vec::new(), Vec::new(), Vec::new());
    for a in assessments {
        parsed += usize::from(a.parsed);
        let mut ids: Vec<&str> = a
            .collisions
            .iter()
            .flat_map(|c| [c.a.as_str(), c.b.as_str()])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        colliding += ids.len();
        free += usize::from(a.collisions.is_empty() && a.parsed);
        oob += a.out_of_bounds.len();
        inb += usize::from(a.out_of_bounds.is_empty() && a.parsed);
        valid += usize::from(a.valid_scene);
        valid_stable += usize::from(a.valid_scene && a.unsupported.is_empty());
        unstable += a.unsupported.len() + a.missing_objects.len();
        for r in &a.relations {
            if r.relation == "facing" {
                face_n += 1;
                face_ok += usize::from(r.satisfied);
            } else {
                rel_n += 1;
                rel_ok += usize::from(r.satisfied);
            }
        }
        if let Some(f) = &a.free_space {
            space.push(f.largest_region_fraction);
        }
        if let (Some(c), Some(v)) = (
            a.metaspatial.collision_ratio,
            a.metaspatial.constraint_violation_ratio,
        ) {
            coll.push(c);
            viol.push(v);
        }
    }
    let n = assessments.len();
    m.format_valid_rate = rate(parsed, n);
    m.object_collision_rate = rate(colliding, objects);
    m.collision_free_rate = rate(free, n);
    m.object_out_of_bounds_rate = rate(oob, objects);
    m.in_bounds_rate = rate(inb, n);
    m.relation_satisfaction = rate(rel_ok, rel_n);
    m.facing_accuracy = rate(face_ok, face_n);
    m.stable_object_rate = 1.0 - rate(unstable, objects);
    m.free_space = mean(&space).unwrap_or(0.0);
    m.valid_scene_rate = rate(valid, n);
    m.valid_and_stable_rate = rate(valid_stable, n);
    m.metaspatial_collision_ratio = mean(&coll);
    m.metaspatial_constraint_violation_ratio = mean(&viol);
    m.metaspatial_defined = coll.len();
    m
}

/// The metrics of several baselines side by side as a text table.
#[must_use]
pub fn table(columns: &[(&str, &Metrics)]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{:<40}", "metric");
    for (name, _) in columns {
        let _ = write!(out, "{name:>12}");
    }
    out.push('\n');
    let rows: [MetricRow; 14] = [
        ("rooms", |m| Some(m.rooms as f64)),
        ("format-valid rate", |m| Some(m.format_valid_rate)),
        ("per-object collision rate", |m| {
            Some(m.object_collision_rate)
        }),
        ("collision-free scene rate", |m| Some(m.collision_free_rate)),
        ("per-object out-of-bounds rate", |m| {
            Some(m.object_out_of_bounds_rate)
        }),
        ("in-bounds scene rate", |m| Some(m.in_bounds_rate)),
        ("relation satisfaction", |m| Some(m.relation_satisfaction)),
        ("facing accuracy", |m| Some(m.facing_accuracy)),
        ("stable object rate", |m| Some(m.stable_object_rate)),
        ("free space (largest region)", |m| Some(m.free_space)),
        ("valid-scene rate", |m| Some(m.valid_scene_rate)),
        ("valid and stable scene rate", |m| {
            Some(m.valid_and_stable_rate)
        }),
        ("MetaSpatial collision ratio", |m| {
            m.metaspatial_collision_ratio
        }),
        ("MetaSpatial constraint-violation ratio", |m| {
            m.metaspatial_constraint_violation_ratio
        }),
    ];
    for (name, get) in rows {
        let _ = write!(out, "{name:<40}");
        for (_, m) in columns {
            match get(m) {
                Some(v) if name == "rooms" => {
                    let _ = write!(out, "{v:>12.0}");
                }
                Some(v) => {
                    let _ = write!(out, "{v:>12.3}");
                }
                None => {
                    let _ = write!(out, "{:>12}", "—");
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A table row: its label and how to read its value from the metrics.
type MetricRow = (&'static str, fn(&Metrics) -> Option<f64>);

#[cfg(test)]
#[allow(clippy::float_cmp)] // the asserted values are exact
mod tests {
    use super::*;
    use crate::assessment::{AssessConfig, assess};
    use crate::data::generate::{GenConfig, generate};
    use crate::data::solver::{SolverConfig, solve};

    #[test]
    fn the_solver_beats_random_placement_on_every_headline_metric() {
        let cfg = GenConfig {
            seed: 2,
            min_objects: 6,
            max_objects: 10,
        };
        let rooms: Vec<Room> = (0..8).map(|i| generate(&cfg, i)).collect();
        let assess_cfg = AssessConfig::default();
        let mut rng = Rng::new(1);
        let random: Vec<Assessment> = rooms
            .iter()
            .map(|r| assess(r, &answer_text(&random_layout(r, &mut rng)), &assess_cfg))
            .collect();
        let solved: Vec<Assessment> = rooms
            .iter()
            .map(|r| {
                assess(
                    r,
                    &answer_text(&solve(r, &SolverConfig::default()).layout),
                    &assess_cfg,
                )
            })
            .collect();
        let (rm, sm) = (metrics(&rooms, &random), metrics(&rooms, &solved));
        assert_eq!(rm.format_valid_rate, 1.0);
        assert_eq!(sm.format_valid_rate, 1.0);
        assert!(
            sm.valid_scene_rate > rm.valid_scene_rate,
            "{sm:?} vs {rm:?}"
        );
        assert!(sm.relation_satisfaction > rm.relation_satisfaction);
        assert!(sm.object_collision_rate < rm.object_collision_rate);
        assert!(sm.valid_scene_rate >= 0.85, "{sm:?}");
        let t = table(&[("random", &rm), ("solver", &sm)]);
        assert!(
            t.contains("valid-scene rate") && t.lines().count() == 15,
            "{t}"
        );
    }
}
