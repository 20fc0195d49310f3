//! A worked example of a reward written in Rust: `balance`.
//!
//! A Rust reward is a type implementing [`Reward`], plus a function that registers it by name
//! in a [`Registry`]; a reward config then uses it like a built-in:
//!
//! ```ron
//! (rewards: [(reward: "balance", weight: 0.2, params: (by_area: true))])
//! ```
//!
//! and the program that trains registers it before reading the config:
//!
//! ```
//! let mut registry = metaspatial_rewards::Registry::with_builtins();
//! reward_plugin_rust::register(&mut registry);
//! assert!(registry.names().any(|n| n == "balance"));
//! ```
//!
//! **What it does.** Visual balance: the centroid of the floor-standing objects' footprints
//! (weighted by footprint area when `by_area`, the default) should sit near the middle of the
//! room. The value is 1 − d / h, d the centroid's distance from the room's centre and h half the
//! room's diagonal; 0 when nothing stands on the floor.
//!
//! **Why.** A layout with everything crammed into one half of the room satisfies every
//! collision and relation check and still looks wrong.

use metaspatial_rewards::{Params, Registry, Reward, RewardContext, RewardOutcome};
use serde::Deserialize;

/// Parameters of `balance`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalanceParams {
    /// Weight each object by its footprint area (otherwise all count the same).
    pub by_area: bool,
}

impl Default for BalanceParams {
    fn default() -> Self {
        Self { by_area: true }
    }
}

/// The `balance` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Balance {
    /// Its parameters.
    pub params: BalanceParams,
}

impl Reward for Balance {
    fn name(&self) -> &'static str {
        "balance"
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let room = ctx.room;
        let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
        for pose in &ctx.assessment.layout.poses {
            let Some(spec) = room.object(&pose.id).filter(|o| o.on_floor) else {
                continue;
            };
            let w = if self.params.by_area {
                spec.size.length * spec.size.width
            } else {
                1.0
            };
            sx += w * pose.position[0];
            sy += w * pose.position[1];
            total += w;
        }
        if total <= 0.0 {
            return RewardOutcome::new(0.0).with_note("nothing stands on the floor");
        }
        let (cx, cy) = (sx / total, sy / total);
        let (mx, my) = (room.size.length / 2.0, room.size.width / 2.0);
        let d = (cx - mx).hypot(cy - my);
        let half_diagonal = mx.hypot(my);
        RewardOutcome::new(1.0 - d / half_diagonal)
            .with("centroid_x", cx)
            .with("centroid_y", cy)
            .with("offset", d)
    }
}

/// Registers `balance` in a registry.
pub fn register(registry: &mut Registry) {
    registry.register("balance", |params: &Params<'_>| {
        let params = params.parse::<BalanceParams>()?;
        Ok(Box::new(Balance { params }) as Box<dyn Reward>)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaspatial_env::{AssessConfig, load_room};
    use metaspatial_rewards::{Prepared, RewardSet};

    const ROOM: &str = r#"{"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5}, "objects": [
        {"id": "a", "category": "chair", "size": {"length": 1.0, "width": 1.0, "height": 1.0}, "on_floor": true},
        {"id": "b", "category": "chair", "size": {"length": 1.0, "width": 1.0, "height": 1.0}, "on_floor": true},
        {"id": "lamp", "category": "lamp", "size": {"length": 0.3, "width": 0.3, "height": 0.3}, "on_floor": false}]}"#;

    fn score(response: &str) -> f64 {
        let room = load_room(ROOM, "room").unwrap();
        let mut registry = Registry::with_builtins();
        register(&mut registry);
        let set = RewardSet::from_ron(
            r#"(rewards: [(reward: "balance", weight: 1.0)])"#,
            "inline",
            &registry,
        )
        .unwrap();
        let p = Prepared::new(&room, response, &AssessConfig::geometry_only());
        set.score(&p.context(&room)).total
    }

    #[test]
    fn symmetric_chairs_are_balanced() {
        // Centroid (2, 1.5): the room's centre. The lamp is not on the floor and does not count.
        let r = score(
            r#"<answer>[{"new_object_id": "a", "x": 1, "y": 1.5, "z": 0.5}, {"new_object_id": "b", "x": 3, "y": 1.5, "z": 0.5}, {"new_object_id": "lamp", "x": 0.2, "y": 0.2, "z": 2}]</answer>"#,
        );
        assert!((r - 1.0).abs() < 1e-12);
    }

    #[test]
    fn both_chairs_in_a_corner_by_hand() {
        // Centroid (0.5, 1.0): 1.5 m and 0.5 m from the centre; half diagonal 2.5 m.
        let r = score(
            r#"<answer>[{"new_object_id": "a", "x": 0.5, "y": 0.5, "z": 0.5}, {"new_object_id": "b", "x": 0.5, "y": 1.5, "z": 0.5}]</answer>"#,
        );
        assert!((r - (1.0 - 2.5_f64.sqrt() / 2.5)).abs() < 1e-12);
    }
}
