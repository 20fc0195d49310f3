//! `bounds`: objects inside the room.
//!
//! **What it does.** For every placed object the environment reports as out of bounds (more
//! than 1% of its volume outside `[0, L] × [0, W] × [0, H]` by default), takes the fraction of
//! its volume outside; the value is 1 − (sum of those fractions) / (placed objects). Components:
//! the number of objects out, the mean fraction outside over placed objects, and the furthest
//! reach past a wall, floor or ceiling (m).
//!
//! **Why.** Volume outside is continuous: an object 2 cm into a wall costs little, one standing
//! in the next room costs its whole share.
//!
//! **Example.** Bedroom with the wardrobe (1 × 0.6 × 2, turned 90° so 0.6 deep along x) centred
//! on the west wall at x = 0: half its volume is outside, the other three objects are in:
//! 1 − 0.5 / 4 = 0.875; it reaches 0.3 m past the west wall.

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The `bounds` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds;

/// The name configs give this reward.
pub const NAME: &str = "bounds";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::without_params(params, Bounds)
}

impl Reward for Bounds {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let a = ctx.assessment;
        let placed = a.layout.poses.len() as f64;
        let outside: f64 = a.out_of_bounds.iter().map(|o| o.fraction_outside).sum();
        let furthest = a
            .out_of_bounds
            .iter()
            .map(|o| o.distance)
            .fold(0.0, f64::max);
        RewardOutcome::new(1.0 - outside / placed)
            .with("out_of_bounds", a.out_of_bounds.len() as f64)
            .with("mean_fraction_outside", outside / placed)
            .with("furthest", furthest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn everything_inside_scores_one() {
        close(score(&Bounds, &bedroom(), &tidy()).value, 1.0);
    }

    #[test]
    fn half_a_wardrobe_through_the_wall() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.0, 2.0, 1.0, 90.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        let r = score(&Bounds, &bedroom(), &response);
        close(r.value, 0.875);
        close(r.components["furthest"], 0.3);
        close(r.components["out_of_bounds"], 1.0);
    }
}
