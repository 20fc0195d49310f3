//! `stability`: objects that stay where they were put.
//!
//! **What it does.** Reads the environment's settling run (Rapier, gravity, a step cap): an
//! object is unsupported when it floats with nothing below it, falls more than 2 cm or tips
//! more than 5° (the environment's defaults). The value is the fraction of placed objects that
//! are supported. Components: unsupported and floating counts, the largest drop (m) and tilt
//! (degrees). Fails (and the configured fallback is used) when the assessment skipped physics.
//!
//! **Why.** A lamp 30 cm above its table or a bookshelf balanced on one edge passes every
//! box-overlap check; only simulation catches it.
//!
//! **Example.** Bedroom with the bed lifted to z = 0.6 (its bottom 0.35 m above the floor), all
//! else tidy: three of four objects supported, value 0.75.

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The `stability` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stability;

/// The name configs give this reward.
pub const NAME: &str = "stability";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::without_params(params, Stability)
}

impl Reward for Stability {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let a = ctx.assessment;
        let Some(reports) = &a.support else {
            return RewardOutcome::failed(
                "the assessment skipped physics (support: None in the assess config)",
            );
        };
        let placed = reports.len().max(1) as f64;
        let unsupported = reports.iter().filter(|r| r.unsupported).count();
        let floating = reports.iter().filter(|r| r.floats).count();
        let drop = reports.iter().map(|r| r.drop).fold(0.0, f64::max);
        let tilt = reports.iter().map(|r| r.tilt).fold(0.0, f64::max);
        RewardOutcome::new(1.0 - unsupported as f64 / placed)
            .with("unsupported", unsupported as f64)
            .with("floating", floating as f64)
            .with("max_drop", drop)
            .with("max_tilt", tilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Prepared;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};
    use metaspatial_env::AssessConfig;

    #[test]
    fn a_tidy_room_stands() {
        close(score(&Stability, &bedroom(), &tidy()).value, 1.0);
    }

    #[test]
    fn a_floating_bed_is_unsupported() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.6, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        let r = score(&Stability, &bedroom(), &response);
        close(r.value, 0.75);
        close(r.components["floating"], 1.0);
    }

    #[test]
    fn skipped_physics_is_a_failure_not_a_score() {
        let room = bedroom();
        let p = Prepared::new(&room, &tidy(), &AssessConfig::geometry_only());
        assert!(Stability.score(&p.context(&room)).failure.is_some());
    }
}
