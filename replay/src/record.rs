//! What a run directory holds, line by line: the trainer writes these types and the replay
//! viewer reads them, so both sides share one definition.
//!
//! Layout of `runs/<name>/`: `config.ron` · `metrics.jsonl` ([`MetricsLine`]) ·
//! `rollouts/step-NNNNNN.jsonl` ([`RolloutRecord`], one line per sampled trajectory) with its
//! images under `rollouts/step-NNNNNN/` · `eval/step-NNNNNN.json` ([`EvalReport`]) ·
//! `checkpoints/step-NNNNNN/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of a step-numbered record (`step-000042`).
#[must_use]
pub fn step_name(step: u64) -> String {
    format!("step-{step:06}")
}

/// Where each file of a run directory lies: the trainer writes by it and the viewer reads by
/// it, so the names are spelled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    root: PathBuf,
}

impl RunLayout {
    /// The layout of the run directory `root`.
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The run directory itself.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.ron`: the resolved config.
    #[must_use]
    pub fn config(&self) -> PathBuf {
        self.root.join("config.ron")
    }

    /// `metrics.jsonl`: one [`MetricsLine`] per step.
    #[must_use]
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `rollouts/`: one file of [`RolloutRecord`]s per logged step, and its images.
    #[must_use]
    pub fn rollouts(&self) -> PathBuf {
        self.root.join(ROLLOUTS)
    }

    /// `rollouts/step-NNNNNN.jsonl`.
    #[must_use]
    pub fn rollout_file(&self, step: u64) -> PathBuf {
        self.rollouts().join(format!("{}.jsonl", step_name(step)))
    }

    /// `rollouts/step-NNNNNN/`: the step's images.
    #[must_use]
    pub fn rollout_images(&self, step: u64) -> PathBuf {
        self.root.join(Self::rollout_images_relative(step))
    }

    /// The step's image folder relative to the run directory, as image records give paths.
    #[must_use]
    pub fn rollout_images_relative(step: u64) -> String {
        format!("{ROLLOUTS}/{}", step_name(step))
    }

    /// `eval/`: one [`EvalReport`] per evaluation.
    #[must_use]
    pub fn evals(&self) -> PathBuf {
        self.root.join("eval")
    }

    /// `eval/step-NNNNNN.json`.
    #[must_use]
    pub fn eval_file(&self, step: u64) -> PathBuf {
        self.evals().join(format!("{}.json", step_name(step)))
    }

    /// `eval/per-room/`: each evaluation's per-room headline values.
    #[must_use]
    pub fn per_room(&self) -> PathBuf {
        self.evals().join("per-room")
    }

    /// `eval/per-room/step-NNNNNN.json`.
    #[must_use]
    pub fn per_room_file(&self, step: u64) -> PathBuf {
        self.per_room().join(format!("{}.json", step_name(step)))
    }

    /// `checkpoints/`.
    #[must_use]
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `checkpoints/step-NNNNNN/`.
    #[must_use]
    pub fn checkpoint(&self, step: u64) -> PathBuf {
        self.checkpoints().join(step_name(step))
    }
}

/// The rollouts folder's name.
const ROLLOUTS: &str = "rollouts";

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
    /// Requested relations that do not hold (runs recorded before these were structured
    /// wrote them in words, `bed_1 against north_wall`, and are read the same).
    #[serde(deserialize_with = "relation_records")]
    pub unsatisfied_relations: Vec<RelationRecord>,
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
    /// For a top view, the floor rectangle the image shows edge to edge, `[x_min, y_min,
    /// x_max, y_max]` in metres (x to the right, y up the image), taken from the camera that
    /// drew it; absent for other views and in runs recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<[f64; 4]>,
    /// The camera that drew it; absent in runs recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraRecord>,
}

/// Where an image was taken from: enough to map its pixels to the room and back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraRecord {
    /// Position of the eye in the room (m).
    pub eye: [f64; 3],
    /// Room to eye space (right-handed, looking down −z), column-major.
    pub view: [f64; 16],
    /// Room to clip space (depth in `[0, 1]`), column-major.
    pub view_proj: [f64; 16],
    /// Near plane distance (m).
    pub near: f64,
    /// Far plane distance (m).
    pub far: f64,
    /// Orthographic (a top view) rather than perspective.
    pub orthographic: bool,
}

/// A requested relation between an object and a reference (a layout element or an object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationRecord {
    /// The object the relation is about.
    pub subject: String,
    /// `on`, `in the corner`, `left of`, …, or `facing`.
    pub relation: String,
    /// The reference: a layout element name or an object id.
    pub object: String,
}

/// Relation records, or the `subject relation… object` sentences of older runs (ids hold no
/// spaces, relations may).
fn relation_records<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<RelationRecord>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Record(RelationRecord),
        Words(String),
    }
    Vec::<Written>::deserialize(d)?
        .into_iter()
        .map(|w| match w {
            Written::Record(r) => Ok(r),
            Written::Words(text) => {
                let words: Vec<&str> = text.split_whitespace().collect();
                match words.as_slice() {
                    [subject, relation @ .., object] if !relation.is_empty() => {
                        Ok(RelationRecord {
                            subject: (*subject).to_owned(),
                            relation: relation.join(" "),
                            object: (*object).to_owned(),
                        })
                    }
                    _ => Err(serde::de::Error::custom(format!(
                        "unsatisfied relation `{text}`: expected `subject relation object`"
                    ))),
                }
            }
        })
        .collect()
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
    fn relations_read_as_records_or_as_the_sentences_of_older_runs() {
        let v: Violations = serde_json::from_str(
            r#"{"collisions": [], "out_of_bounds": [], "unsupported": [], "missing_objects": [],
                "unsatisfied_relations": ["lamp_1 in the corner north_wall",
                    {"subject": "bed_1", "relation": "against", "object": "north_wall"}]}"#,
        )
        .unwrap();
        let record = |s: &str, r: &str, o: &str| RelationRecord {
            subject: s.to_owned(),
            relation: r.to_owned(),
            object: o.to_owned(),
        };
        assert_eq!(
            v.unsatisfied_relations,
            [
                record("lamp_1", "in the corner", "north_wall"),
                record("bed_1", "against", "north_wall")
            ]
        );
        let again: Violations = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(again, v);
        let bad = r#"{"collisions": [], "out_of_bounds": [], "unsupported": [], "missing_objects": [], "unsatisfied_relations": ["bed_1"]}"#;
        let error = serde_json::from_str::<Violations>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`bed_1`"), "{error}");
    }

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
