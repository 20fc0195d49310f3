//! `object_set`: every object of the room placed exactly once, and nothing else.
//!
//! **What it does.** Counts the answer's entries against the room's objects as multisets:
//! `matched` entries place a room object for the first time; `extra` entries are unknown ids,
//! repeats of an id already placed, and entries that cannot be used at all. The value is
//! matched / (objects + extra) — intersection over union — so 1 means exactly the room's
//! objects, each once.
//!
//! **Why.** A layout that drops the hard objects or invents new ones must not look as good as
//! a complete one; MetaSpatial's format tier only compares list lengths, which a missing object
//! plus an invented one passes.
//!
//! **Example.** Four objects; the answer places three of them, one of them twice, and an unknown
//! `lamp_1`: matched 3, extra 2 (the repeat and the lamp), value 3 / (4 + 2) = 0.5.

use std::collections::HashSet;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The `object_set` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObjectSet;

/// The name configs give this reward.
pub const NAME: &str = "object_set";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::without_params(params, ObjectSet)
}

impl Reward for ObjectSet {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let objects = ctx.room.objects.len();
        let parsed = match ctx.answer {
            Ok(p) => p,
            Err(e) => return RewardOutcome::new(0.0).with_note(format!("no answer: {e}")),
        };
        let mut seen = HashSet::new();
        let (mut matched, mut unknown, mut repeated) = (0usize, 0usize, 0usize);
        for e in &parsed.entries {
            if ctx.room.object(&e.id).is_none() {
                unknown += 1;
            } else if seen.insert(e.id.as_str()) {
                matched += 1;
            } else {
                repeated += 1;
            }
        }
        let unusable = parsed.problems.len();
        let extra = unknown + repeated + unusable;
        let union = objects + extra;
        let value = if union == 0 {
            1.0
        } else {
            matched as f64 / union as f64
        };
        RewardOutcome::new(value)
            .with("matched", matched as f64)
            .with("missing", (objects - matched) as f64)
            .with("unknown", unknown as f64)
            .with("repeated", repeated as f64)
            .with("unusable", unusable as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn exactly_the_rooms_objects_scores_one() {
        close(score(&ObjectSet, &bedroom(), &tidy()).value, 1.0);
    }

    #[test]
    fn repeats_and_unknown_ids_count_against_the_union() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
            ("lamp_1", 1.0, 1.0, 1.0, 0.0),
        ]);
        let r = score(&ObjectSet, &bedroom(), &response);
        close(r.value, 3.0 / 6.0);
        close(r.components["missing"], 1.0);
        close(r.components["repeated"], 1.0);
        close(r.components["unknown"], 1.0);
    }

    #[test]
    fn unusable_entries_are_extra() {
        let response = r#"<answer>[{"new_object_id": "bed_1", "x": 2, "y": 0.8, "z": 0.25}, {"new_object_id": "nightstand_1", "x": "left"}]</answer>"#;
        // matched 1 (bed), extra 1 (the unusable entry): 1 / (4 + 1).
        close(score(&ObjectSet, &bedroom(), response).value, 0.2);
        close(
            score(&ObjectSet, &bedroom(), "<answer>oops</answer>").value,
            0.0,
        );
    }
}
