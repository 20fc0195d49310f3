//! Baselines a policy is judged against.
//!
//! The floor is uniform random placement; the ceiling is the reference solver. Both are written
//! out as model answers (`<think>…</think><answer>[…]</answer>`), scored by the same
//! [`crate::assess`] a trained policy's responses go through, so the format, parsing and
//! heading rules are exercised too, and summarised by the same [`crate::metrics::table`].

use crate::answer::{self, Precision};
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

#[cfg(test)]
#[allow(clippy::float_cmp)] // the asserted values are exact
mod tests {
    use super::*;
    use crate::assessment::{AssessConfig, Assessment, assess};
    use crate::data::generate::{GenConfig, generate};
    use crate::data::solver::{SolverConfig, solve};
    use crate::metrics::table;

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
        let summary = |assessments: &[Assessment]| {
            let rows = table(&rooms, &assessments.iter().collect::<Vec<_>>());
            move |name: &str| rows.iter().find(|m| m.name == name).unwrap().value
        };
        let (random, solved) = (summary(&random), summary(&solved));
        assert_eq!(random("format_valid_rate"), 1.0);
        assert_eq!(solved("format_valid_rate"), 1.0);
        for (better_higher, name) in [
            (true, "valid_scene_rate"),
            (true, "relation_satisfaction"),
            (true, "collision_free_rate"),
            (false, "object_collision_rate"),
        ] {
            let (r, s) = (random(name), solved(name));
            assert!(
                if better_higher { s > r } else { s < r },
                "{name}: {s} vs {r}"
            );
        }
        assert!(solved("valid_scene_rate") >= 0.85);
    }
}
