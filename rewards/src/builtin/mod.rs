//! The built-in rewards, one per file. Each file opens with what the reward does, why, and an
//! example with its value worked out by hand.
//!
//! | name | value |
//! |---|---|
//! | [`format`] | response shape: MetaSpatial's tiers or ours |
//! | [`object_set`] | every object placed exactly once |
//! | [`collision`] | penetration depth, overlap volume and MetaSpatial's pair ratio |
//! | [`bounds`] | volume inside the room |
//! | [`stability`] | objects that stay where they were put under gravity |
//! | [`relations`] | placement relations satisfied, with soft credit by error |
//! | [`facing_alignment`] | headings towards targets, flush and parallel to walls, right angles |
//! | [`free_space`] | walkable floor connected in one region (or reachable from the door) |
//! | [`visibility`] | objects visible in a rendered view (object-id buffer) |
//! | [`improvement`] | this turn's layout quality minus the previous turn's |
//! | [`metaspatial`] | MetaSpatial's reward without its judge |
//! | [`valid_scene`] | 1 when the whole layout is a valid scene |
//! | [`judge`] | a VLM judge over an OpenAI-compatible endpoint, I-Design's rubric |
//! | `plugin` | an external process speaking JSON lines ([`crate::plugin`]) |

pub mod bounds;
pub mod collision;
pub mod facing_alignment;
pub mod format;
pub mod free_space;
pub mod improvement;
pub mod judge;
pub mod metaspatial;
pub mod object_set;
pub mod relations;
pub mod stability;
pub mod valid_scene;
pub mod visibility;

#[cfg(test)]
pub(crate) mod testing;

use crate::{Registry, RewardContext, RewardOutcome};

/// Registers every built-in reward and the plugin host.
pub fn register_all(r: &mut Registry) {
    r.register(format::NAME, format::factory);
    r.register(object_set::NAME, object_set::factory);
    r.register(collision::NAME, collision::factory);
    r.register(bounds::NAME, bounds::factory);
    r.register(stability::NAME, stability::factory);
    r.register(relations::NAME, relations::factory);
    r.register(facing_alignment::NAME, facing_alignment::factory);
    r.register(free_space::NAME, free_space::factory);
    r.register(visibility::NAME, visibility::factory);
    r.register(improvement::NAME, improvement::factory);
    r.register(metaspatial::NAME, metaspatial::factory);
    r.register(valid_scene::NAME, valid_scene::factory);
    r.register(judge::NAME, judge::factory);
    r.register(crate::plugin::NAME, crate::plugin::factory);
}

/// Geometry rewards give 0 when there is no layout to judge: an unreadable answer must never
/// score as "no collisions".
pub(crate) fn no_layout(ctx: &RewardContext<'_>) -> Option<RewardOutcome> {
    let a = ctx.assessment;
    if !a.parsed {
        let why = a.format_error.as_deref().unwrap_or("unreadable answer");
        Some(RewardOutcome::new(0.0).with_note(format!("no layout: {why}")))
    } else if a.layout.poses.is_empty() {
        Some(
            RewardOutcome::new(0.0).with_note("no layout: the answer places no object of the room"),
        )
    } else {
        None
    }
}

/// Builds a reward from its parameter struct.
pub(crate) fn from_params<P, R>(
    params: &crate::Params<'_>,
    build: impl FnOnce(P) -> Result<R, crate::BuildError>,
) -> Result<Box<dyn crate::Reward>, crate::BuildError>
where
    P: serde::de::DeserializeOwned + Default,
    R: crate::Reward + 'static,
{
    Ok(Box::new(build(params.parse::<P>()?)?))
}

/// Rewards without parameters reject any, so that a misplaced parameter is not silently
/// ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// Builds a reward that takes no parameters.
pub(crate) fn without_params<R: crate::Reward + 'static>(
    params: &crate::Params<'_>,
    reward: R,
) -> Result<Box<dyn crate::Reward>, crate::BuildError> {
    params.parse::<NoParams>()?;
    Ok(Box::new(reward))
}
