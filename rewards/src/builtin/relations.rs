//! `relations`: the scene graph's placement relations, with soft credit.
//!
//! **What it does.** Takes every relation the environment evaluated (`on <wall>`, `in the
//! corner`, `left of <object>`, …, and `facing`), each with a signed error: how far (metres;
//! degrees for `facing`) the layout is from satisfying it. A satisfied relation scores 1; an
//! unsatisfied one `exp(−error / scale)` with `distance_scale` (0.25 m) or `angle_scale` (30°),
//! or 0 when `soft` is off; a relation to an object that is not placed scores 0. The value is
//! the mean. Components: satisfied, total, the hard fraction and the soft mean. A room without
//! relations scores 1. `include_facing: false` leaves `facing` to
//! [`facing_alignment`](super::facing_alignment).
//!
//! **Why.** The fraction satisfied is flat almost everywhere: moving a nightstand from 1 m to
//! 10 cm away from the bed earns nothing until it is within tolerance. The soft error gives a
//! direction.
//!
//! **Example.** Bedroom, tidy but the nightstand 0.25 m further right (x = 3.5): its `right of
//! bed_1, adjacent` relation misses by 0.25 − 0.05 = 0.2 m, scoring exp(−0.2/0.25) = 0.4493; the
//! other eight relations (four walls, four facings) hold: (8 + 0.4493) / 9 = 0.93881.

use serde::Deserialize;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `relations`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelationsParams {
    /// Give unsatisfied relations partial credit by their error.
    pub soft: bool,
    /// Error in metres that costs a factor e.
    pub distance_scale: f64,
    /// Error in degrees (`facing`) that costs a factor e.
    pub angle_scale: f64,
    /// Include `facing` relations.
    pub include_facing: bool,
}

impl Default for RelationsParams {
    fn default() -> Self {
        Self {
            soft: true,
            distance_scale: 0.25,
            angle_scale: 30.0,
            include_facing: true,
        }
    }
}

/// The `relations` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relations {
    /// Its parameters.
    pub params: RelationsParams,
}

/// The name configs give this reward.
pub const NAME: &str = "relations";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |p: RelationsParams| {
        if p.distance_scale > 0.0 && p.angle_scale > 0.0 {
            Ok(Relations { params: p })
        } else {
            Err("distance_scale and angle_scale must be positive".into())
        }
    })
}

impl Reward for Relations {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let p = &self.params;
        let relations = ctx
            .assessment
            .relations
            .iter()
            .filter(|r| p.include_facing || r.relation != "facing");
        let (mut total, mut satisfied, mut soft) = (0usize, 0usize, 0.0);
        for r in relations {
            total += 1;
            if r.satisfied {
                satisfied += 1;
                soft += 1.0;
            } else if let (true, Some(error)) = (p.soft, r.error) {
                let scale = if r.relation == "facing" {
                    p.angle_scale
                } else {
                    p.distance_scale
                };
                soft += (-error.max(0.0) / scale).exp();
            }
        }
        if total == 0 {
            return RewardOutcome::new(1.0)
                .with("total", 0.0)
                .with_note("the room has no relations");
        }
        let n = total as f64;
        RewardOutcome::new(soft / n)
            .with("satisfied", satisfied as f64)
            .with("total", n)
            .with("fraction", satisfied as f64 / n)
            .with("soft", soft / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn tidy_satisfies_every_relation() {
        let r = score(&Relations::default(), &bedroom(), &tidy());
        close(r.value, 1.0);
        close(r.components["total"], 9.0);
    }

    fn nightstand_too_far() -> String {
        answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.5, 0.2, 0.25, 0.0),
            ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ])
    }

    #[test]
    fn soft_credit_by_hand() {
        let r = score(&Relations::default(), &bedroom(), &nightstand_too_far());
        close(r.components["satisfied"], 8.0);
        close(r.value, (8.0 + (-0.2_f64 / 0.25).exp()) / 9.0);
        let hard = Relations {
            params: RelationsParams {
                soft: false,
                ..Default::default()
            },
        };
        close(
            score(&hard, &bedroom(), &nightstand_too_far()).value,
            8.0 / 9.0,
        );
    }
}
