//! The scalars `metrics.jsonl` logs for each GRPO step from its rollouts and its update:
//! reward components (mean and spread over turns), final-turn outcomes, lengths and the
//! update's statistics.

use std::collections::BTreeMap;

use metaspatial_policy::FinishReason;

use crate::rollout::{Trajectory, Turn};
use crate::update::UpdateStats;

/// Per-step scalars of the rollouts and the update.
pub(crate) fn step_metrics(
    trajectories: &[Trajectory],
    zero_variance: &[bool],
    stats: &UpdateStats,
) -> BTreeMap<String, f64> {
    let mut columns: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut lengths = Vec::new();
    let mut truncated = 0usize;
    for t in trajectories {
        for turn in &t.turns {
            columns
                .entry("total".to_owned())
                .or_default()
                .push(turn.scored.total);
            for c in &turn.scored.components {
                columns.entry(c.name.clone()).or_default().push(c.value);
            }
            lengths.push(turn.response_tokens.len() as f64);
            truncated += usize::from(turn.finish == FinishReason::Length);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let std = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
    };
    let mut out = BTreeMap::new();
    for (name, values) in &columns {
        out.insert(format!("reward/{name}/mean"), mean(values));
        out.insert(format!("reward/{name}/std"), std(values));
    }
    let finals: Vec<&Turn> = trajectories.iter().filter_map(|t| t.turns.last()).collect();
    let final_rewards: Vec<f64> = finals.iter().map(|t| t.scored.total).collect();
    out.insert("final_turn_reward".to_owned(), mean(&final_rewards));
    out.insert(
        "valid_scene/final".to_owned(),
        mean(
            &finals
                .iter()
                .map(|t| f64::from(u8::from(t.prepared.assessment.valid_scene)))
                .collect::<Vec<_>>(),
        ),
    );
    out.insert(
        "turns/mean".to_owned(),
        mean(
            &trajectories
                .iter()
                .map(|t| t.turns.len() as f64)
                .collect::<Vec<_>>(),
        ),
    );
    out.insert("response_length".to_owned(), mean(&lengths));
    out.insert(
        "truncated_fraction".to_owned(),
        truncated as f64 / lengths.len().max(1) as f64,
    );
    out.insert(
        "zero_variance_groups".to_owned(),
        zero_variance.iter().filter(|z| **z).count() as f64 / zero_variance.len().max(1) as f64,
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::fixtures::{centred_answer, room, turn};
    use crate::update::PassStats;

    #[test]
    fn step_metrics_average_over_turns_and_final_turns() {
        let room = room();
        let answer = centred_answer(&room);
        let trajectories = vec![
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
        ];
        let stats = UpdateStats {
            last: PassStats {
                loss: 0.25,
                ..PassStats::default()
            },
            grad_norm: 1.5,
            sequences: 3,
            tokens: 15,
            skipped: 0,
        };
        let m = step_metrics(&trajectories, &[true, false], &stats);
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
}
