//! `valid_scene`: the whole layout at once.
//!
//! **What it does.** 1 when the environment calls the scene valid — every object placed exactly
//! once, no unusable or unknown entries, no collisions, nothing out of bounds — else 0.
//! Component: `valid` (the same 0 or 1).
//!
//! **Why.** The shaped rewards pay for each property alone, and a policy can trade one for
//! another (push an object half a centimetre through a wall to clear a collision) at almost no
//! cost. The valid-scene rate is the headline metric; this pays for it directly.
//!
//! **Example.** The tidy bedroom: valid, value 1. The same room with the wardrobe's centre on
//! the west wall (half of it outside): invalid, value 0, though `bounds` still gives 0.875.

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The `valid_scene` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidScene;

/// The name configs give this reward.
pub const NAME: &str = "valid_scene";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::without_params(params, ValidScene)
}

impl Reward for ValidScene {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let valid = f64::from(u8::from(ctx.assessment.valid_scene));
        RewardOutcome::new(valid).with("valid", valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn a_tidy_room_is_valid() {
        close(score(&ValidScene, &bedroom(), &tidy()).value, 1.0);
    }

    #[test]
    fn half_a_wardrobe_through_the_wall_is_not() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.0, 2.0, 1.0, 90.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        close(score(&ValidScene, &bedroom(), &response).value, 0.0);
    }

    #[test]
    fn an_unreadable_answer_is_not() {
        close(score(&ValidScene, &bedroom(), "no answer").value, 0.0);
    }
}
