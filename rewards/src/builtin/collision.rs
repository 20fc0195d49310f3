//! `collision`: how badly objects interpenetrate, continuously.
//!
//! **What it does.** Sums, over the colliding pairs the environment found (penetrating deeper
//! than its threshold), the penetration depth `depth` (m) and the shared volume `volume` (m³),
//! and takes MetaSpatial's collision ratio `pair_ratio` (colliding pairs over C(N + 6, 2), walls
//! included; the exact ratio where their code is defined, our extension to any heading
//! otherwise, and our own pairs over the same denominator for a layout that leaves objects
//! out). The value is
//!
//! `exp(−(depth / depth_scale + volume / volume_scale + pair_weight · pair_ratio))`
//!
//! with `depth_scale` 0.1 m, `volume_scale` 0.05 m³ and `pair_weight` 1 by default: 1 without
//! collisions, falling smoothly as objects sink into each other.
//!
//! **Why.** A pair count gives the policy no signal about which way to move: 1 mm and 50 cm of
//! overlap score the same. Depth says how far to move; volume separates a chair leg in a table
//! from a sofa inside a bed.
//!
//! **Example.** Bedroom: the nightstand (0.5 × 0.4 × 0.5) pushed 0.3 m into the bed along x:
//! depth 0.3, volume 0.3 × 0.4 × 0.5 = 0.06, one pair of C(10, 2) = 45: value
//! exp(−(3 + 1.2 + 1/45)) = 0.01467.

use serde::Deserialize;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `collision`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollisionParams {
    /// Total depth, metres, that costs a factor e.
    pub depth_scale: f64,
    /// Total overlap volume, cubic metres, that costs a factor e.
    pub volume_scale: f64,
    /// Weight of MetaSpatial's pair ratio in the exponent.
    pub pair_weight: f64,
}

impl Default for CollisionParams {
    fn default() -> Self {
        Self {
            depth_scale: 0.1,
            volume_scale: 0.05,
            pair_weight: 1.0,
        }
    }
}

/// The `collision` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Collision {
    /// Its parameters.
    pub params: CollisionParams,
}

/// The name configs give this reward.
pub const NAME: &str = "collision";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |p: CollisionParams| {
        if p.depth_scale > 0.0 && p.volume_scale > 0.0 && p.pair_weight >= 0.0 {
            Ok(Collision { params: p })
        } else {
            Err("depth_scale and volume_scale must be positive, pair_weight not negative".into())
        }
    })
}

impl Reward for Collision {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let a = ctx.assessment;
        let depth: f64 = a.collisions.iter().map(|c| c.depth).sum();
        let volume: f64 = a.collisions.iter().map(|c| c.volume).sum();
        let ms = &a.metaspatial;
        let (pair_ratio, note) = match (ms.collision_ratio, ms.extended_collision_ratio) {
            (Some(r), _) => (r, None),
            (None, Some(r)) => (r, Some("MetaSpatial's ratio extended to these headings")),
            (None, None) => {
                let n = a.layout.poses.len() + 6;
                (
                    a.collisions.len() as f64 / (n * (n - 1) / 2) as f64,
                    Some("pair ratio from our own collision test"),
                )
            }
        };
        let p = &self.params;
        let penalty = depth / p.depth_scale + volume / p.volume_scale + p.pair_weight * pair_ratio;
        RewardOutcome::new((-penalty).exp())
            .with("pairs", a.collisions.len() as f64)
            .with("depth", depth)
            .with("volume", volume)
            .with("pair_ratio", pair_ratio)
            .with_note_if(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn no_collision_scores_one() {
        let r = score(&Collision::default(), &bedroom(), &tidy());
        close(r.value, 1.0);
        close(r.components["pairs"], 0.0);
    }

    #[test]
    fn depth_volume_and_pair_ratio_by_hand() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 2.95, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        let r = score(&Collision::default(), &bedroom(), &response);
        close(r.components["depth"], 0.3);
        close(r.components["volume"], 0.06);
        close(r.components["pair_ratio"], 1.0 / 45.0);
        close(r.value, (-(3.0 + 1.2 + 1.0 / 45.0_f64)).exp());
    }

    #[test]
    fn unreadable_answers_score_zero_not_collision_free() {
        let r = score(&Collision::default(), &bedroom(), "<think>x</think>");
        close(r.value, 0.0);
        assert!(r.note.unwrap().starts_with("no layout"));
    }
}
