//! `free_space`: room to walk.
//!
//! **What it does.** Reads the environment's free-floor grid (5 cm cells; objects block when
//! their bottom is below head height and they are taller than a rug; an agent 0.2 m wide must
//! fit): the value is the largest connected walkable region as a fraction of the free floor —
//! or, when the room has a door and `use_door` is on (the default), the fraction reachable from
//! the door. Components: `free_fraction` (floor not covered), `largest_region_fraction` and,
//! with a door, `door_reachable_fraction`. Fails (fallback used) when the assessment skipped
//! free space.
//!
//! **Why.** Collision-free layouts can still wall off a corner or block the door: the floor is
//! free, but nobody can get there.
//!
//! **Example.** Bedroom (80 × 60 cells) with the wardrobe turned along the east wall at
//! y ∈ [0.4, 1.0], so that it closes a 0.5 × 0.4 m pocket (80 cells) east of the nightstand.
//! Occupied: bed 1280 cells, nightstand 80, wardrobe 240, painting 20; free 3180. The pocket is
//! cut off: value (3180 − 80) / 3180 = 0.97484.

use serde::Deserialize;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `free_space`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreeSpaceParams {
    /// Score the region reachable from the door when the room has one.
    pub use_door: bool,
}

impl Default for FreeSpaceParams {
    fn default() -> Self {
        Self { use_door: true }
    }
}

/// The `free_space` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreeSpace {
    /// Its parameters.
    pub params: FreeSpaceParams,
}

/// The name configs give this reward.
pub const NAME: &str = "free_space";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |params| Ok(FreeSpace { params }))
}

impl Reward for FreeSpace {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let Some(f) = &ctx.assessment.free_space else {
            return RewardOutcome::failed(
                "the assessment skipped free space (free_space: None in the assess config)",
            );
        };
        let value = match (self.params.use_door, f.door_reachable_fraction) {
            (true, Some(door)) => door,
            _ => f.largest_region_fraction,
        };
        let out = RewardOutcome::new(value)
            .with("free_fraction", f.free_fraction)
            .with("largest_region_fraction", f.largest_region_fraction);
        match f.door_reachable_fraction {
            Some(d) => out.with("door_reachable_fraction", d),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn tidy_leaves_one_region() {
        close(score(&FreeSpace::default(), &bedroom(), &tidy()).value, 1.0);
    }

    #[test]
    fn a_closed_pocket_by_hand() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            ("wardrobe_1", 3.5, 0.7, 1.0, 0.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        let r = score(&FreeSpace::default(), &bedroom(), &response);
        close(r.components["free_fraction"], 3180.0 / 4800.0);
        close(r.value, 3100.0 / 3180.0);
    }
}
