//! `improvement`: did this turn make the layout better?
//!
//! **What it does.** Scores each turn's assessment with a quality in [0, 1], the mean of four
//! fractions of the room's N objects: placed, not in any collision, not out of bounds, and
//! relations satisfied (1 without relations); an unreadable answer has quality 0. The value is
//! quality(turn t) − quality(turn t − 1), in [−1, 1]; 0 on the first turn. Components:
//! `quality`, `previous_quality`.
//!
//! **Why.** In multi-turn refinement the policy should learn to use the feedback it was shown.
//! Rewarding the absolute score of later turns also rewards having been good already; the
//! difference rewards the step itself.
//!
//! **Example.** Bedroom, turn 1 with the nightstand 0.3 m inside the bed: all placed, 2 of 4
//! in a collision, all inside, 8 of 9 relations: quality (1 + 0.5 + 1 + 8/9) / 4 = 0.84722.
//! Turn 2 tidy: quality 1. Value 0.15278.

use metaspatial_env::{Assessment, Room};

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The `improvement` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Improvement;

/// The name configs give this reward.
pub const NAME: &str = "improvement";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::without_params(params, Improvement)
}

/// The quality of one turn's assessment, in [0, 1].
#[must_use]
pub fn quality(room: &Room, a: &Assessment) -> f64 {
    if !a.parsed || room.objects.is_empty() {
        return 0.0;
    }
    let n = room.objects.len() as f64;
    let placed = a.layout.poses.len() as f64 / n;
    let clear = 1.0 - a.colliding_objects().len() as f64 / n;
    let inside = 1.0 - a.out_of_bounds.len() as f64 / n;
    let (satisfied, total) = a.relations_satisfied();
    let relations = if total == 0 {
        1.0
    } else {
        satisfied as f64 / total as f64
    };
    (placed + clear + inside + relations) / 4.0
}

impl Reward for Improvement {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let now = quality(ctx.room, ctx.assessment);
        let Some(before) = ctx.previous.last() else {
            return RewardOutcome::new(0.0)
                .with("quality", now)
                .with_note("first turn: nothing to improve on");
        };
        let before = quality(ctx.room, before);
        RewardOutcome::new(now - before)
            .with("quality", now)
            .with("previous_quality", before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, prepare, tidy};

    #[test]
    fn fixing_a_collision_by_hand() {
        let room = bedroom();
        let first = prepare(
            &room,
            &answer(&[
                ("bed_1", 2.0, 0.8, 0.25, 0.0),
                ("nightstand_1", 2.95, 0.2, 0.25, 0.0),
                ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
                ("painting_1", 2.0, 2.975, 1.5, 180.0),
            ]),
        );
        let before = (1.0 + 0.5 + 1.0 + 8.0 / 9.0) / 4.0;
        close(quality(&room, &first.assessment), before);
        let second = prepare(&room, &tidy());
        let history = [first.assessment.clone()];
        let r = Improvement.score(&second.context(&room).with_history(2, &history));
        close(r.value, 1.0 - before);
        let r = Improvement.score(&first.context(&room));
        close(r.value, 0.0);
    }
}
