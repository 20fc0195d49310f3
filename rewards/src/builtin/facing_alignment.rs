//! `facing_alignment`: headings that make sense.
//!
//! **What it does.** Averages three sub-scores, each in [0, 1], over the placed objects they
//! apply to:
//! - `towards`: objects with a `facing` target — a wall (IDesign's table: north 0°, east 90°,
//!   south 180°, west 270°), `middle of the room` or another object (the direction to its
//!   centre) — score 1 − d/180, d the heading difference in degrees.
//! - `wall`: objects `on` a wall (wall-mounted or standing against it) score the mean of
//!   *flush*, 1 − min(1, |gap| / `flush_scale`) with the footprint's gap to that wall
//!   (`flush_scale` 0.1 m), and *parallel*, 1 − p/90 with p the angle between the object's
//!   left–right axis and the wall (0–90°).
//! - `snap`: every placed object, 1 − s/45 with s its heading's distance to the nearest right
//!   angle.
//!
//! The value is the mean of the sub-scores present, weighted by `towards_weight`,
//! `wall_weight` and `snap_weight` (1 each). Headings are the resolved ones (the answer's,
//! else the scene graph's, else derived from `facing`).
//!
//! **Why.** `relations` only asks whether `facing` is within 30°; a sofa at 29° and one at 0°
//! score the same, a painting hanging at 45° to its wall is never mentioned, and odd headings
//! make a room look broken in the render.
//!
//! **Example.** Bedroom, tidy but the wardrobe turned to 60° (it should face east, 90°):
//! towards = (1 + 1 + (1 − 30/180) + 1) / 4 = 0.95833; wall: the wardrobe's axis is 30° off
//! the west wall (parallel 1 − 30/90) and its rotated footprint still touches the wall
//! (flush 1): (1 + 1 + (1 + 2/3)/2 + 1) / 4 = 0.95833; snap = (1 + 1 + (1 − 30/45) + 1) / 4 =
//! 0.83333; value = 0.91667.

use metaspatial_env::LayoutElement;
use metaspatial_env::heading::{angle_between, facing_table, heading_towards};
use serde::Deserialize;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `facing_alignment`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FacingParams {
    /// Weight of heading towards `facing` targets.
    pub towards_weight: f64,
    /// Weight of wall objects flush and parallel to their wall.
    pub wall_weight: f64,
    /// Weight of right-angle headings.
    pub snap_weight: f64,
    /// Gap to its wall, metres, at which a wall object's flush score reaches 0.
    pub flush_scale: f64,
}

impl Default for FacingParams {
    fn default() -> Self {
        Self {
            towards_weight: 1.0,
            wall_weight: 1.0,
            snap_weight: 1.0,
            flush_scale: 0.1,
        }
    }
}

/// The `facing_alignment` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct FacingAlignment {
    /// Its parameters.
    pub params: FacingParams,
}

/// The name configs give this reward.
pub const NAME: &str = "facing_alignment";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |p: FacingParams| {
        let weights = [p.towards_weight, p.wall_weight, p.snap_weight];
        if weights.iter().all(|w| *w >= 0.0)
            && weights.iter().sum::<f64>() > 0.0
            && p.flush_scale > 0.0
        {
            Ok(FacingAlignment { params: p })
        } else {
            Err("weights must be non-negative with a positive sum, flush_scale positive".into())
        }
    })
}

/// Running mean.
#[derive(Default)]
struct Mean(f64, usize);

impl Mean {
    fn add(&mut self, v: f64) {
        self.0 += v;
        self.1 += 1;
    }

    fn get(&self) -> Option<f64> {
        (self.1 > 0).then(|| self.0 / self.1 as f64)
    }
}

impl Reward for FacingAlignment {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let room = ctx.room;
        let size = room.size;
        let poses = &ctx.assessment.layout.poses;
        let (mut towards, mut wall, mut snap) = (Mean::default(), Mean::default(), Mean::default());
        for pose in poses {
            let Some(spec) = room.object(&pose.id) else {
                continue;
            };
            let h = pose.rotation;
            snap.add(1.0 - (h.rem_euclid(90.0)).min(90.0 - h.rem_euclid(90.0)) / 45.0);
            if let Some(facing) = spec.facing.as_deref() {
                let target = match LayoutElement::from_name(facing) {
                    Some(LayoutElement::Middle) => {
                        heading_towards(pose.position, [size.length / 2.0, size.width / 2.0])
                    }
                    Some(e) => Some(facing_table(e)),
                    None => poses.iter().find(|q| q.id == facing).and_then(|q| {
                        heading_towards(pose.position, [q.position[0], q.position[1]])
                    }),
                };
                if let Some(t) = target {
                    towards.add(1.0 - angle_between(h, t) / 180.0);
                }
            }
            for r in spec.placement.room.iter().filter(|r| r.element.is_wall()) {
                if r.preposition != metaspatial_env::RoomPreposition::On {
                    continue;
                }
                let bounds =
                    metaspatial_env::geometry::OrientedBox::new(pose.position, spec.size, h);
                let [x0, x1, y0, y1] = bounds.aabb_2d();
                // The heading of an object backed onto this wall; its axis is then along the wall.
                let (gap, along) = match r.element {
                    LayoutElement::SouthWall => (y0, 0.0),
                    LayoutElement::NorthWall => (size.width - y1, 180.0),
                    LayoutElement::WestWall => (x0, 90.0),
                    _ => (size.length - x1, 270.0),
                };
                let d = angle_between(h, along);
                let parallel = 1.0 - d.min(180.0 - d) / 90.0;
                let flush = 1.0 - (gap.abs() / self.params.flush_scale).min(1.0);
                wall.add(f64::midpoint(flush, parallel));
            }
        }
        let p = &self.params;
        let parts = [
            (towards.get(), p.towards_weight),
            (wall.get(), p.wall_weight),
            (snap.get(), p.snap_weight),
        ];
        let (sum, weight) = parts
            .iter()
            .filter_map(|(v, w)| v.map(|v| (v * w, *w)))
            .fold((0.0, 0.0), |(s, t), (v, w)| (s + v, t + w));
        let mut out = RewardOutcome::new(if weight > 0.0 { sum / weight } else { 1.0 });
        for (name, (v, _)) in ["towards", "wall", "snap"].iter().zip(parts) {
            if let Some(v) = v {
                out = out.with(name, v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{answer, bedroom, close, score, tidy};

    #[test]
    fn tidy_is_aligned() {
        close(
            score(&FacingAlignment::default(), &bedroom(), &tidy()).value,
            1.0,
        );
    }

    #[test]
    fn a_wardrobe_turned_30_degrees_by_hand() {
        let response = answer(&[
            ("bed_1", 2.0, 0.8, 0.25, 0.0),
            ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
            // Rotated 60°, the footprint reaches 0.25 + 0.15·√3 from its centre along x: flush.
            ("wardrobe_1", 0.25 + 0.15 * 3.0_f64.sqrt(), 2.0, 1.0, 60.0),
            ("painting_1", 2.0, 2.975, 1.5, 180.0),
        ]);
        let r = score(&FacingAlignment::default(), &bedroom(), &response);
        close(r.components["towards"], (3.0 + 1.0 - 30.0 / 180.0) / 4.0);
        close(r.components["snap"], (3.0 + 1.0 - 30.0 / 45.0) / 4.0);
        close(
            r.components["wall"],
            (3.0 + f64::midpoint(1.0, 2.0 / 3.0)) / 4.0,
        );
        close(r.value, 0.916_666_666_666_666_6);
    }
}
