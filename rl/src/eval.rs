//! A policy on held-out rooms: the layout metric table ([`metaspatial_env::metrics`]) of its
//! episodes, with their mean total reward, and the comparison before and after GRPO.
//!
//! Episodes are played as in training (the render and the feedback go back to the model for
//! up to `eval.max_turns` turns). The unprefixed rows describe each room's final layout; with
//! more than one turn the table adds every row at turn 1 (`turn1/…`) and the repair rate.

use std::fmt::Write as _;
use std::path::Path;

use indicatif::ProgressBar;
use metaspatial_env::metrics::{self, Metric, flag, mean_se, proportion};
use metaspatial_env::{Assessment, EpisodeConfig, Room};
use metaspatial_policy::{Policy, SamplingParams};
use metaspatial_replay::record::{EvalMetric, EvalReport};
use serde::{Deserialize, Serialize};

use crate::config::{ExpectedChanges, RunConfig};
use crate::rollout::{RenderAndRewards, RolloutSettings, rollout};
use crate::seeds;

/// One answer's assessment and total reward.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnOutcome {
    /// The assessment of the answer.
    pub assessment: Assessment,
    /// Its total reward.
    pub reward: f64,
}

/// One room's episode: its first and its last answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomOutcome {
    /// Turn 1.
    pub first: TurnOutcome,
    /// The final turn (turn 1 again when the episode stopped there).
    pub last: TurnOutcome,
}

/// Name of the row: of the rooms whose first layout is not a valid scene, the fraction whose
/// final layout is.
pub const REPAIR_RATE: &str = "repair_rate";

/// Prefix of the rows measured on the first answer.
pub const TURN1_PREFIX: &str = "turn1/";

/// Rooms per generation call in evaluation; with several ranks each evaluates whole calls.
pub(crate) const EVAL_ROOMS_PER_CALL: usize = 32;

/// Plays one greedy (or low-temperature) episode per room and returns each room's outcome;
/// `first_call` is the index of the rooms' first generation call among the whole evaluation's,
/// which seeds its sampling.
pub fn evaluate(
    policy: &Policy,
    scoring: &RenderAndRewards,
    rooms: &[Room],
    first_call: usize,
    config: &RunConfig,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<RoomOutcome>> {
    let settings = RolloutSettings {
        group_size: 1,
        episode: EpisodeConfig {
            max_turns: config.eval.max_turns,
            ..config.episode()
        },
        sampling: SamplingParams {
            greedy: config.eval.temperature <= 0.0,
            temperature: config.eval.temperature.max(1e-6),
            top_p: config.generation.top_p,
            max_new_tokens: config.generation.max_new_tokens,
            stop_tokens: policy.stop_tokens()?,
            suppress_tokens: policy.vision_tokens()?,
            seed: seeds::eval_sampling(config.seed),
            ..SamplingParams::default()
        },
        rooms_per_call: EVAL_ROOMS_PER_CALL,
        first_chunk: first_call,
        save_images: None,
    };
    let (trajectories, _) = rollout(policy, scoring, rooms, &settings, progress)?;
    Ok(trajectories
        .into_iter()
        .map(|t| {
            let mut turns = t.turns.into_iter().map(|turn| TurnOutcome {
                assessment: turn.prepared.assessment,
                reward: turn.scored.total,
            });
            let first = turns.next().expect("every episode plays a turn");
            let last = turns.last().unwrap_or_else(|| first.clone());
            RoomOutcome { first, last }
        })
        .collect())
}

/// Per-room values of the two headline metrics, kept for paired comparisons between
/// checkpoints evaluated on the same rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerRoom {
    /// 1 where the final layout is a valid scene, else 0.
    pub valid: Vec<f64>,
    /// The final turn's total reward.
    pub reward: Vec<f64>,
}

impl PerRoom {
    /// The headline values of each room.
    #[must_use]
    pub fn from_outcomes(outcomes: &[RoomOutcome]) -> Self {
        Self {
            valid: outcomes
                .iter()
                .map(|o| flag(o.last.assessment.valid_scene))
                .collect(),
            reward: outcomes.iter().map(|o| o.last.reward).collect(),
        }
    }
}

/// The metric table over `rooms` (parallel to `outcomes`): the final layouts' rows, then, when
/// `turns > 1`, the same rows at turn 1 and the repair rate.
#[must_use]
pub fn table(rooms: &[Room], outcomes: &[RoomOutcome], turns: usize) -> Vec<Metric> {
    let last: Vec<&TurnOutcome> = outcomes.iter().map(|o| &o.last).collect();
    let mut rows = turn_table(rooms, &last);
    if turns > 1 {
        let first: Vec<&TurnOutcome> = outcomes.iter().map(|o| &o.first).collect();
        rows.extend(turn_table(rooms, &first).into_iter().map(|m| Metric {
            name: format!("{TURN1_PREFIX}{}", m.name),
            ..m
        }));
        let invalid_first = outcomes
            .iter()
            .filter(|o| !o.first.assessment.valid_scene)
            .count();
        let repaired = outcomes
            .iter()
            .filter(|o| !o.first.assessment.valid_scene && o.last.assessment.valid_scene)
            .count();
        rows.push(Metric::new(
            REPAIR_RATE,
            proportion(repaired, invalid_first),
        ));
    }
    rows
}

/// The layout rows of one answer per room, and the answers' mean total reward.
fn turn_table(rooms: &[Room], outcomes: &[&TurnOutcome]) -> Vec<Metric> {
    let assessments: Vec<&Assessment> = outcomes.iter().map(|o| &o.assessment).collect();
    let mut rows = metrics::table(rooms, &assessments);
    rows.push(Metric::new(
        "mean_total_reward",
        mean_se(&outcomes.iter().map(|o| o.reward).collect::<Vec<_>>()),
    ));
    rows
}

/// The report written to `eval/step-NNNNNN.json`.
#[must_use]
pub fn report(
    step: u64,
    source: &str,
    rooms: &[Room],
    outcomes: &[RoomOutcome],
    turns: usize,
) -> EvalReport {
    EvalReport {
        step,
        rooms: source.to_owned(),
        count: outcomes.len(),
        metrics: table(rooms, outcomes, turns)
            .into_iter()
            .map(|m| EvalMetric {
                name: m.name,
                value: m.value,
                stderr: m.stderr,
            })
            .collect(),
    }
}

/// The reports as text: one row per metric, a column per report.
#[must_use]
pub fn format_table(columns: &[(&str, &EvalReport)]) -> String {
    let rows: Vec<(&str, Vec<Metric>)> = columns
        .iter()
        .map(|(name, report)| {
            let rows = report
                .metrics
                .iter()
                .map(|m| Metric::new(&m.name, (m.value, m.stderr)))
                .collect();
            (*name, rows)
        })
        .collect();
    let columns: Vec<(&str, &[Metric])> = rows.iter().map(|(n, r)| (*n, r.as_slice())).collect();
    metrics::format_table(&columns)
}

/// Evaluations of the policy before and after GRPO.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Before GRPO (after SFT when there is one).
    pub before: EvalReport,
    /// After the last step.
    pub after: EvalReport,
    /// Paired per-room difference of the valid-scene rate (after − before) and its SE.
    pub valid_difference: (f64, f64),
    /// Paired per-room difference of the mean total reward and its SE.
    pub reward_difference: (f64, f64),
    /// The range the config expects the two differences in (`eval.expect`).
    pub expected: Option<ExpectedChanges>,
}

/// Formats the before/after comparison.
#[must_use]
pub fn format_comparison(c: &Comparison, run_dir: &Path) -> String {
    let mut out = format_table(&[("before GRPO", &c.before), ("after GRPO", &c.after)]);
    let verdict = |(d, se): (f64, f64)| {
        let z = if se > 0.0 {
            d / se
        } else if d == 0.0 {
            0.0
        } else {
            f64::INFINITY * d.signum()
        };
        format!(
            "{d:+.3} ± {se:.3} (paired SE; {z:.1} SE{})",
            if z > 2.0 { ", improved" } else { "" }
        )
    };
    let _ = write!(
        out,
        "\nvalid-scene rate change: {}\nmean total reward change: {}\n",
        verdict(c.valid_difference),
        verdict(c.reward_difference),
    );
    if let Some(e) = &c.expected {
        out.push_str(&expectation(c, e));
    }
    let _ = writeln!(
        out,
        "\nbrowse the rollouts: metaspatial-rl replay {}",
        run_dir.display()
    );
    out
}

/// Whether the run's changes fall inside the range its config expects, in words.
fn expectation(c: &Comparison, e: &ExpectedChanges) -> String {
    let checks = [
        ("valid-scene rate", c.valid_difference.0, e.valid_scene),
        ("mean total reward", c.reward_difference.0, e.mean_reward),
    ];
    let ranges: Vec<String> = checks
        .iter()
        .map(|(name, _, (low, high))| format!("{name} change {low:+.3} to {high:+.3}"))
        .collect();
    let mut out = format!("expected ({}): {}\n", e.source, ranges.join("; "));
    let outside: Vec<String> = checks
        .iter()
        .filter_map(|(name, d, (low, high))| {
            let side = if d < low {
                "below"
            } else if d > high {
                "above"
            } else {
                return None;
            };
            Some(format!("the {name} change {d:+.3} is {side} that range"))
        })
        .collect();
    if outside.is_empty() {
        out.push_str("this run is inside the expected range\n");
    } else {
        let _ = writeln!(
            out,
            "this run is outside the expected range: {}",
            outside.join("; ")
        );
    }
    out
}

/// The median (the mean of the middle two for an even count); NaN when there are no values.
#[must_use]
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
    }
}

/// Difference of paired per-room values (`after − before`) with its standard error.
#[must_use]
pub fn paired_difference(before: &[f64], after: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = before.iter().zip(after).map(|(b, a)| a - b).collect();
    mean_se(&d)
}

#[cfg(test)]
mod tests {
    use metaspatial_env::{AssessConfig, assess};

    use super::*;
    use crate::fixtures::{CLEAN, COLLIDING, room};

    fn value(rows: &[Metric], name: &str) -> Option<(f64, f64)> {
        rows.iter()
            .find(|m| m.name == name)
            .map(|m| (m.value, m.stderr))
    }

    #[test]
    fn multi_turn_tables_give_turn_one_the_final_turn_and_the_repair_rate() {
        let room = room();
        let turn = |response: &str, reward: f64| TurnOutcome {
            assessment: assess(&room, response, &AssessConfig::default()),
            reward,
        };
        // Repaired; valid from the start (stopped at turn 1); still invalid at the end.
        let outcomes = vec![
            RoomOutcome {
                first: turn(COLLIDING, 0.5),
                last: turn(CLEAN, 1.0),
            },
            RoomOutcome {
                first: turn(CLEAN, 1.0),
                last: turn(CLEAN, 1.0),
            },
            RoomOutcome {
                first: turn(COLLIDING, 0.5),
                last: turn(COLLIDING, 0.25),
            },
        ];
        let rooms = vec![room.clone(), room.clone(), room.clone()];
        let rows = table(&rooms, &outcomes, 2);
        let (valid, _) = value(&rows, "valid_scene_rate").unwrap();
        let (first_valid, _) = value(&rows, "turn1/valid_scene_rate").unwrap();
        assert!((valid - 2.0 / 3.0).abs() < 1e-12 && (first_valid - 1.0 / 3.0).abs() < 1e-12);
        let (reward, _) = value(&rows, "mean_total_reward").unwrap();
        let (first_reward, _) = value(&rows, "turn1/mean_total_reward").unwrap();
        assert!((reward - 0.75).abs() < 1e-12 && (first_reward - 2.0 / 3.0).abs() < 1e-12);
        // Two rooms were invalid at turn 1 and one of them was repaired.
        let (repair, se) = value(&rows, REPAIR_RATE).unwrap();
        assert!((repair - 0.5).abs() < 1e-12 && (se - 0.125f64.sqrt()).abs() < 1e-12);
        let per_turn = rows.len() / 2;
        assert_eq!(rows.len(), 2 * per_turn + 1);
        // One turn: the final rows only.
        let single = table(&rooms, &outcomes, 1);
        assert_eq!(single.len(), per_turn);
        assert!(value(&single, REPAIR_RATE).is_none());
    }

    #[test]
    fn medians_and_paired_differences() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < 1e-12);
        assert!(median(&[]).is_nan());
        let (d, se) = paired_difference(&[0.0, 1.0, 0.0], &[1.0, 1.0, 1.0]);
        assert!((d - 2.0 / 3.0).abs() < 1e-12);
        assert!(se > 0.0);
    }

    #[test]
    fn the_summary_says_whether_a_run_is_inside_the_expected_range() {
        let report = |step| EvalReport {
            step,
            rooms: "test split".into(),
            count: 200,
            metrics: Vec::new(),
        };
        let comparison = |valid: f64, reward: f64| Comparison {
            before: report(0),
            after: report(30),
            valid_difference: (valid, 0.03),
            reward_difference: (reward, 0.02),
            expected: Some(ExpectedChanges {
                source: "three seeds".into(),
                valid_scene: (0.10, 0.20),
                mean_reward: (0.05, 0.15),
            }),
        };
        let inside = format_comparison(&comparison(0.15, 0.10), Path::new("runs/demo"));
        assert!(inside.contains(
            "expected (three seeds): valid-scene rate change +0.100 to +0.200; mean total reward change +0.050 to +0.150\nthis run is inside the expected range\n"
        ), "{inside}");
        let outside = format_comparison(&comparison(0.05, 0.20), Path::new("runs/demo"));
        assert!(outside.contains(
            "this run is outside the expected range: the valid-scene rate change +0.050 is below that range; the mean total reward change +0.200 is above that range\n"
        ), "{outside}");
        let mut unexpected = comparison(0.0, 0.0);
        unexpected.expected = None;
        assert!(!format_comparison(&unexpected, Path::new("runs/demo")).contains("expected"));
    }
}
