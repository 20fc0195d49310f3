//! What a run directory holds, line by line: the trainer writes these types and the replay
//! viewer reads them, so both sides share one definition.
//!
//! Layout of `runs/<name>/`: `config.ron` · `metrics.jsonl` ([`MetricsLine`]) ·
//! `rollouts/step-NNNNNN.jsonl` ([`RolloutRecord`], one line per sampled trajectory) with its
//! images under `rollouts/step-NNNNNN/` · `eval/step-NNNNNN.json` ([`EvalReport`]) ·
//! `checkpoints/step-NNNNNN/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// File name of a step-numbered record (`step-000042`).
#[must_use]
pub fn step_name(step: u64) -> String {
    format!("step-{step:06}")
}

/// One line of `metrics.jsonl`: the step and its named scalars.
///
/// Names are slash-separated paths: `reward/total/mean`, `reward/<component>/std`, `loss`,
/// `kl`, `entropy`, `clip_fraction`, `grad_norm`, `lr`, `response_length`, `tokens_per_s`,
/// `time/<phase>` (seconds), `zero_variance_groups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// 1-based optimiser step.
    pub step: u64,
    /// Seconds since the run started (wall clock, summed over resumed sessions).
    pub elapsed: f64,
    /// Every scalar of the step.
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
}

impl MetricsLine {
    /// The values that depend only on the seed, not on the wall clock (`time/*`,
    /// `tokens_per_s` left out): what a resumed run must reproduce exactly.
    #[must_use]
    pub fn deterministic_values(&self) -> BTreeMap<&str, f64> {
        self.values
            .iter()
            .filter(|(k, _)| !k.starts_with("time/") && *k != "tokens_per_s")
            .map(|(k, v)| (k.as_str(), *v))
            .collect()
    }
}

/// The room a trajectory was played in, enough to draw it in 3D.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// The room's id in its dataset.
    pub id: String,
    /// Length (x), width (y), height (z) in metres.
    pub size: [f64; 3],
    /// What the user asked for.
    pub description: String,
    /// The objects to place.
    pub objects: Vec<ObjectRecord>,
}

/// One object of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Its id (`bed_1`).
    pub id: String,
    /// Its category (`bed`).
    pub category: String,
    /// Length, width, height in metres.
    pub size: [f64; 3],
}

/// Where an answer put one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoseRecord {
    /// The object's id.
    pub id: String,
    /// Centre of its box, metres.
    pub position: [f64; 3],
    /// Heading in degrees, clockwise from above, 0 = facing +y.
    pub rotation: f64,
}

/// Two objects that overlap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollisionRecord {
    /// One object.
    pub a: String,
    /// The other.
    pub b: String,
    /// Penetration depth, metres.
    pub depth: f64,
}

/// An object that leaves the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfBoundsRecord {
    /// The object.
    pub id: String,
    /// Fraction of its volume outside.
    pub fraction: f64,
    /// The boundary it crosses furthest (`north_wall`, `floor`, …).
    pub boundary: String,
}

/// What is wrong with a layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Violations {
    /// Overlapping pairs.
    pub collisions: Vec<CollisionRecord>,
    /// Objects outside the room.
    pub out_of_bounds: Vec<OutOfBoundsRecord>,
    /// Objects that would fall or tip.
    pub unsupported: Vec<String>,
    /// Requested relations that do not hold, in words (`bed_1 against north_wall`).
    pub unsatisfied_relations: Vec<String>,
    /// Objects of the room the answer left out.
    pub missing_objects: Vec<String>,
}

/// A rendered view saved with a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `perspective` or `top`.
    pub view: String,
    /// PNG path relative to the run directory.
    pub path: String,
}

/// One turn of a trajectory: the model's response and how it was judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// 1-based turn.
    pub turn: usize,
    /// The text of the user message this turn answered (task or feedback).
    pub prompt: String,
    /// The response as generated.
    pub response: String,
    /// The `<think>` part, when present.
    pub reasoning: Option<String>,
    /// The `<answer>` part, when present.
    pub answer: Option<String>,
    /// Why the answer could not be read, when it could not.
    pub format_error: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Response tokens.
    pub response_tokens: usize,
    /// `stop` or `length` (truncated).
    pub finish: String,
    /// Total reward of this turn.
    pub reward: f64,
    /// The advantage its tokens were trained with.
    pub advantage: f64,
    /// Weighted reward components (name → weight · value).
    pub components: BTreeMap<String, f64>,
    /// Whether the layout is a valid scene.
    pub valid: bool,
    /// The parsed poses (empty when the answer could not be read).
    pub poses: Vec<PoseRecord>,
    /// What is wrong with the layout.
    pub violations: Violations,
    /// The renders of this layout.
    pub images: Vec<ImageRecord>,
}

/// One line of `rollouts/step-NNNNNN.jsonl`: a sampled trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The optimiser step it was trained in.
    pub step: u64,
    /// Index of its room (group) within the step.
    pub group: usize,
    /// Index of the sample within the group.
    pub sample: usize,
    /// The room.
    pub room: RoomRecord,
    /// The trajectory's reward as the advantage saw it (final turn, or discounted mean).
    pub reward: f64,
    /// Its turns, in order.
    pub turns: Vec<TurnRecord>,
}

/// One row of an evaluation table: a metric, its mean and standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetric {
    /// Machine name (`valid_scene_rate`).
    pub name: String,
    /// Mean over rooms (or objects, for per-object rates).
    pub value: f64,
    /// Standard error of the mean.
    pub stderr: f64,
}

/// `eval/step-NNNNNN.json`: a checkpoint evaluated on held-out rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The step of the evaluated weights.
    pub step: u64,
    /// Which rooms (dataset directory and split).
    pub rooms: String,
    /// How many rooms.
    pub count: usize,
    /// The table.
    pub metrics: Vec<EvalMetric>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_values_leave_out_the_wall_clock() {
        let line: MetricsLine = serde_json::from_str(
            r#"{"step": 3, "elapsed": 9.5, "loss": 0.25, "time/generate": 1.5, "tokens_per_s": 80.0}"#,
        )
        .unwrap();
        let values = line.deterministic_values();
        assert_eq!(values.into_iter().collect::<Vec<_>>(), [("loss", 0.25)]);
    }
}
