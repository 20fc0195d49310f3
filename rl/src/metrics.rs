//! The scalars `metrics.jsonl` logs for each GRPO step from its rollouts and its update:
//! reward components (mean and spread over turns), final-turn outcomes, lengths and the
//! update's statistics.

use std::collections::BTreeMap;

use metaspatial_policy::FinishReason;
use serde::{Deserialize, Serialize};

use crate::rollout::Trajectory;
use crate::update::UpdateStats;

/// What the step's metrics are computed from, per turn and per trajectory: the ranks gather
/// theirs, in rank order (the order of the step's rooms), before anything is averaged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StepColumns {
    /// Reward components (and `total`) of every turn, by name.
    columns: BTreeMap<String, Vec<f64>>,
    /// Response tokens of every turn.
    lengths: Vec<f64>,
    /// Turns cut at `max_new_tokens`.
    truncated: usize,
    /// Total reward of every trajectory's last turn.
    final_rewards: Vec<f64>,
    /// 1 where a trajectory's last layout is a valid scene.
    final_valid: Vec<f64>,
    /// Turns of every trajectory.
    turns: Vec<f64>,
    /// Whether each group's rewards were all equal.
    zero_variance: Vec<bool>,
}

impl StepColumns {
    /// The columns of one rank's trajectories and the zero-variance flags of their groups.
    pub(crate) fn of(trajectories: &[Trajectory], zero_variance: &[bool]) -> Self {
        let mut out = Self {
            zero_variance: zero_variance.to_vec(),
            ..Self::default()
        };
        for t in trajectories {
            for turn in &t.turns {
                out.columns
                    .entry("total".to_owned())
                    .or_default()
                    .push(turn.scored.total);
                for c in &turn.scored.components {
                    out.columns.entry(c.name.clone()).or_default().push(c.value);
                }
                out.lengths.push(turn.response_tokens.len() as f64);
                out.truncated += usize::from(turn.finish == FinishReason::Length);
            }
            if let Some(last) = t.turns.last() {
                out.final_rewards.push(last.scored.total);
                out.final_valid
                    .push(f64::from(u8::from(last.prepared.assessment.valid_scene)));
            }
            out.turns.push(t.turns.len() as f64);
        }
        out
    }

    /// The ranks' columns end to end.
    pub(crate) fn concat(parts: Vec<Self>) -> Self {
        let mut out = Self::default();
        for part in parts {
            for (name, values) in part.columns {
                out.columns.entry(name).or_default().extend(values);
            }
            out.lengths.extend(part.lengths);
            out.truncated += part.truncated;
            out.final_rewards.extend(part.final_rewards);
            out.final_valid.extend(part.final_valid);
            out.turns.extend(part.turns);
            out.zero_variance.extend(part.zero_variance);
        }
        out
    }
}

/// Per-step scalars of the rollouts and the update.
pub(crate) fn step_metrics(c: &StepColumns, stats: &UpdateStats) -> BTreeMap<String, f64> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let std = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
    };
    let mut out = BTreeMap::new();
    for (name, values) in &c.columns {
        out.insert(format!("reward/{name}/mean"), mean(values));
        out.insert(format!("reward/{name}/std"), std(values));
    }
    out.insert("final_turn_reward".to_owned(), mean(&c.final_rewards));
    out.insert("valid_scene/final".to_owned(), mean(&c.final_valid));
    out.insert("turns/mean".to_owned(), mean(&c.turns));
    out.insert("response_length".to_owned(), mean(&c.lengths));
    out.insert(
        "truncated_fraction".to_owned(),
        c.truncated as f64 / c.lengths.len().max(1) as f64,
    );
    out.insert(
        "zero_variance_groups".to_owned(),
        c.zero_variance.iter().filter(|z| **z).count() as f64 / c.zero_variance.len().max(1) as f64,
    );
    out.insert("loss".to_owned(), stats.last.loss);
    out.insert("policy_loss".to_owned(), stats.last.policy_loss);
    out.insert("kl".to_owned(), stats.last.kl);
    out.insert("entropy".to_owned(), stats.last.entropy);
    out.insert("clip_fraction".to_owned(), stats.last.clip_fraction);
    out.insert("max_log_ratio".to_owned(), stats.last.max_log_ratio);
    out.insert("grad_norm".to_owned(), stats.grad_norm);
    out.insert("trained_sequences".to_owned(), stats.sequences as f64);
    out.insert("trained_tokens".to_owned(), stats.tokens as f64);
    out.insert("skipped_updates".to_owned(), stats.skipped as f64);
    if let Some(world) = &stats.last.world_model {
        out.extend(world.logged());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{centred_answer, generated_room, turn};
    use crate::update::PassStats;

    /// Two trajectories of one room: an unreadable answer then a centred one; a truncated
    /// centred one.
    fn trajectories() -> Vec<Trajectory> {
        let room = generated_room();
        let answer = centred_answer(&room);
        vec![
            Trajectory {
                room: 0,
                sample: 0,
                turns: vec![
                    turn(&room, "no answer", 0.2, FinishReason::Stop),
                    turn(&room, &answer, 0.6, FinishReason::Stop),
                ],
            },
            Trajectory {
                room: 0,
                sample: 1,
                turns: vec![turn(&room, &answer, 1.0, FinishReason::Length)],
            },
        ]
    }

    fn stats() -> UpdateStats {
        UpdateStats {
            last: PassStats {
                loss: 0.25,
                ..PassStats::default()
            },
            grad_norm: 1.5,
            sequences: 3,
            tokens: 15,
            skipped: 0,
        }
    }

    #[test]
    fn step_metrics_average_over_turns_and_final_turns() {
        let (trajectories, stats) = (trajectories(), stats());
        let m = step_metrics(&StepColumns::of(&trajectories, &[true, false]), &stats);
        let close = |name: &str, want: f64| {
            let got = m[name];
            assert!((got - want).abs() < 1e-12, "{name}: {got} ≠ {want}");
        };
        // Every turn counts for the reward columns: (0.2 + 0.6 + 1.0) / 3.
        close("reward/total/mean", 0.6);
        // Population spread: deviations −0.4, 0, 0.4.
        close("reward/total/std", (0.32_f64 / 3.0).sqrt());
        // The `format` component logs its unweighted value, twice the total here.
        close("reward/format/mean", 1.2);
        // Only the last turn of each trajectory: (0.6 + 1.0) / 2.
        close("final_turn_reward", 0.8);
        close("turns/mean", 1.5);
        close("response_length", 5.0);
        close("truncated_fraction", 1.0 / 3.0);
        close("zero_variance_groups", 0.5);
        close("loss", 0.25);
        close("grad_norm", 1.5);
        close("trained_tokens", 15.0);
        // Every object at the centre collides, so no final layout is a valid scene.
        close("valid_scene/final", 0.0);
    }

    #[test]
    fn columns_gathered_from_ranks_give_the_one_process_metrics() {
        let (trajectories, stats) = (trajectories(), stats());
        let whole = step_metrics(&StepColumns::of(&trajectories, &[true, false]), &stats);
        // Each rank's columns travel as JSON; their concatenation in rank order is the whole.
        let through_json = |c: StepColumns| -> StepColumns {
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap()
        };
        let parts = vec![
            through_json(StepColumns::of(&trajectories[..1], &[true])),
            through_json(StepColumns::of(&trajectories[1..], &[false])),
        ];
        assert_eq!(step_metrics(&StepColumns::concat(parts), &stats), whole);
    }
}
