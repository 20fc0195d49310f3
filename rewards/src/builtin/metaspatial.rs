//! `metaspatial`: MetaSpatial's reward without its judge.
//!
//! **What it does.** Reproduces `metaverse_compute_score` of MetaSpatial's published code with
//! the GPT-4o term left out:
//! - format tier f (0, 0.1, 0.5 or 1; see [`format`](super::format));
//! - when f < 1: value 0.5·f (their early return);
//! - when f = 1 but the answer names an object the room lacks, or repeats one, or has an
//!   unusable entry: 0.5 (their judge step returns 0 on an unknown id, which leads to
//!   0.5·format);
//! - otherwise 0.5·f − 0.2·`collision_ratio` − 0.2·`constraint_ratio` with their two ratios as the
//!   environment reproduces them.
//!
//! Where their ratio code raises (a missing heading; a directional relation to an object whose
//! heading is not a right angle), `extended: true` (default) uses the environment's extension
//! of their definition to any heading and says so in the note; `extended: false` fails (the
//! fallback is used) because their pipeline has no value there. Components: `format`,
//! `collision_ratio`, `constraint_ratio`.
//!
//! **Why.** To compare with the paper, and to start from a known-good recipe.
//!
//! **Example.** MetaSpatial case 0 (seven objects, strict format, collision ratio 1/78,
//! constraint ratio 4/7): 0.5 − 0.2/78 − 0.8/7 = 0.38315. A response without `<think>` scores 0.

use serde::Deserialize;

use super::format::metaspatial_tier;
use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `metaspatial`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSpatialParams {
    /// Use the extended ratios where their code raises.
    pub extended: bool,
}

impl Default for MetaSpatialParams {
    fn default() -> Self {
        Self { extended: true }
    }
}

/// The `metaspatial` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaSpatial {
    /// Its parameters.
    pub params: MetaSpatialParams,
}

/// The name configs give this reward.
pub const NAME: &str = "metaspatial";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |params| Ok(MetaSpatial { params }))
}

impl Reward for MetaSpatial {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let (f, why) = metaspatial_tier(ctx.response, ctx.room.objects.len());
        if f < 1.0 {
            return RewardOutcome::new(0.5 * f).with("format", f).with_note(why);
        }
        let a = ctx.assessment;
        if !(a.unknown_objects.is_empty()
            && a.duplicate_objects.is_empty()
            && a.entry_errors.is_empty())
        {
            return RewardOutcome::new(0.5 * f)
                .with("format", f)
                .with_note("unknown, repeated or unusable entries: their judge step returns 0");
        }
        let ms = &a.metaspatial;
        let exact = ms.collision_ratio.zip(ms.constraint_violation_ratio);
        let extended = ms
            .extended_collision_ratio
            .zip(ms.extended_constraint_violation_ratio);
        let (ratios, note) = match (exact, extended, self.params.extended) {
            (Some(r), _, _) => (r, None),
            (None, Some(r), true) => (r, Some(format!("extended ratios: {}", ms.notes.join("; ")))),
            _ => {
                return RewardOutcome::failed(format!(
                    "their code has no value here: {}",
                    ms.notes.join("; ")
                ));
            }
        };
        let (collision, constraint) = ratios;
        RewardOutcome::new(0.5 * f - 0.2 * collision - 0.2 * constraint)
            .with("format", f)
            .with("collision_ratio", collision)
            .with("constraint_ratio", constraint)
            .with_note_if(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Prepared;
    use crate::builtin::testing::close;
    use metaspatial_env::{AssessConfig, Room, load_room};
    use serde_json::Value;

    fn case(name: &str) -> (Room, String, Value) {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        (
            load_room(&text, &path).unwrap(),
            v["response"].as_str().unwrap().to_owned(),
            v["expected"]["metaspatial"].clone(),
        )
    }

    fn score(reward: MetaSpatial, room: &Room, response: &str) -> RewardOutcome {
        let p = Prepared::new(room, response, &AssessConfig::geometry_only());
        reward.score(&p.context(room))
    }

    #[test]
    fn worked_example_case_000() {
        let (room, response, expected) = case("case_000.json");
        let (c, k) = (
            expected["collision_ratio"].as_f64().unwrap(),
            expected["constraint_violation_ratio"].as_f64().unwrap(),
        );
        close(c, 1.0 / 78.0);
        close(k, 4.0 / 7.0);
        let r = score(MetaSpatial::default(), &room, &response);
        close(r.value, 0.5 - 0.2 / 78.0 - 0.8 / 7.0);
    }

    #[test]
    fn worked_example_case_005_all_constraints_violated() {
        let (room, response, _) = case("case_005.json");
        close(
            score(MetaSpatial::default(), &room, &response).value,
            0.5 - 0.2,
        );
    }

    #[test]
    fn where_their_code_raises() {
        let (room, response, expected) = case("case_002.json");
        assert!(expected["constraint_violation_ratio"].is_null());
        let strict = MetaSpatial {
            params: MetaSpatialParams { extended: false },
        };
        assert!(score(strict, &room, &response).failure.is_some());
        let r = score(MetaSpatial::default(), &room, &response);
        assert!(r.failure.is_none() && r.note.unwrap().starts_with("extended"));
    }

    #[test]
    fn format_failures_follow_their_early_return() {
        let (room, response, _) = case("case_000.json");
        let no_think = response.replace("<think>", "").replace("</think>", "");
        close(score(MetaSpatial::default(), &room, &no_think).value, 0.0);
        // Valid shape, but one object short: tier 0.5, value 0.25.
        let start = response.find('{').unwrap();
        let end = response[start..].find("},").unwrap() + start + 2;
        let short = format!("{}{}", &response[..start], &response[end..]);
        close(score(MetaSpatial::default(), &room, &short).value, 0.25);
        // Not JSON: tier 0.1, value 0.05.
        let broken = response.replace('[', "");
        close(score(MetaSpatial::default(), &room, &broken).value, 0.05);
    }

    #[test]
    fn unknown_ids_take_their_judge_zero_path() {
        let (room, response, _) = case("case_000.json");
        let renamed = response.replacen("tv_stand_1", "tv_stand_9", 1);
        close(score(MetaSpatial::default(), &room, &renamed).value, 0.5);
    }
}
