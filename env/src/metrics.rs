//! The layout metric table every policy, baseline and checkpoint is judged by, each value with
//! its standard error.
//!
//! Scene-level rates and per-room means carry the standard error of a mean over rooms;
//! per-object and per-relation rates that of a proportion over objects or relations. A mean
//! over no values (MetaSpatial's ratios where no room defines them) is 0 ± 0.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::room::Room;

/// One row of the table: a metric's machine name, its value and the value's standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Machine name (`valid_scene_rate`).
    pub name: String,
    /// Mean over rooms, or proportion over objects or relations.
    pub value: f64,
    /// Standard error of `value`.
    pub stderr: f64,
}

impl Metric {
    /// A row from a `(value, stderr)` pair.
    #[must_use]
    pub fn new(name: &str, (value, stderr): (f64, f64)) -> Self {
        Self {
            name: name.to_owned(),
            value,
            stderr,
        }
    }
}

/// Name of the row: scenes that are valid (every object once, no collision, nothing out of
/// bounds).
pub const VALID_SCENE_RATE: &str = "valid_scene_rate";

/// Mean and standard error of per-room values.
#[must_use]
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// A proportion of `hits` out of `n` and its binomial standard error.
#[must_use]
pub fn proportion(hits: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let p = hits as f64 / n as f64;
    (p, (p * (1.0 - p) / n as f64).sqrt())
}

/// 1 for true, 0 for false: a per-room indicator whose mean is a rate.
#[must_use]
pub fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The table over one assessment per room (`assessments` parallel to `rooms`).
#[must_use]
pub fn table(rooms: &[Room], assessments: &[&Assessment]) -> Vec<Metric> {
    let per_room = |f: &dyn Fn(&Assessment) -> bool| -> (f64, f64) {
        mean_se(&assessments.iter().map(|a| flag(f(a))).collect::<Vec<_>>())
    };
    let objects: usize = rooms.iter().map(|r| r.objects.len()).sum();
    let colliding: usize = assessments
        .iter()
        .map(|a| a.colliding_objects().len())
        .sum();
    let outside: usize = assessments.iter().map(|a| a.out_of_bounds.len()).sum();
    let placed: usize = assessments.iter().map(|a| a.layout.poses.len()).sum();
    let unstable: usize = assessments.iter().map(|a| a.unsupported.len()).sum();
    let (mut relations_ok, mut relations, mut facing_ok, mut facing) = (0, 0, 0, 0);
    for r in assessments.iter().flat_map(|a| &a.relations) {
        if r.relation == "facing" {
            facing += 1;
            facing_ok += usize::from(r.satisfied);
        } else {
            relations += 1;
            relations_ok += usize::from(r.satisfied);
        }
    }
    let free: Vec<f64> = assessments
        .iter()
        .filter_map(|a| a.free_space.as_ref().map(|f| f.largest_region_fraction))
        .collect();
    let collision_ratio: Vec<f64> = assessments
        .iter()
        .filter_map(|a| a.metaspatial.collision_ratio)
        .collect();
    let violation_ratio: Vec<f64> = assessments
        .iter()
        .filter_map(|a| a.metaspatial.constraint_violation_ratio)
        .collect();
    vec![
        Metric::new("format_valid_rate", per_room(&|a| a.parsed)),
        Metric::new("object_collision_rate", proportion(colliding, objects)),
        Metric::new(
            "collision_free_rate",
            per_room(&|a| a.parsed && a.collisions.is_empty()),
        ),
        Metric::new("object_out_of_bounds_rate", proportion(outside, objects)),
        Metric::new(
            "in_bounds_rate",
            per_room(&|a| a.parsed && a.out_of_bounds.is_empty()),
        ),
        Metric::new("relation_satisfaction", proportion(relations_ok, relations)),
        // Over the objects the answers placed: a missing object is counted by the valid-scene
        // rate, not here.
        Metric::new(
            "stable_object_rate",
            proportion(placed.saturating_sub(unstable), placed),
        ),
        Metric::new("free_space", mean_se(&free)),
        Metric::new("facing_accuracy", proportion(facing_ok, facing)),
        Metric::new(VALID_SCENE_RATE, per_room(&|a| a.valid_scene)),
        Metric::new(
            "valid_and_stable_rate",
            per_room(&|a| a.valid_scene && a.unsupported.is_empty()),
        ),
        Metric::new("metaspatial_collision_ratio", mean_se(&collision_ratio)),
        Metric::new(
            "metaspatial_constraint_violation_ratio",
            mean_se(&violation_ratio),
        ),
    ]
}

/// Several tables side by side as text: a row per metric of the first column, a `value ± SE`
/// column per table, rows matched by name (a table without the row shows `—`).
#[must_use]
pub fn format_table(columns: &[(&str, &[Metric])]) -> String {
    let width = columns
        .first()
        .into_iter()
        .flat_map(|(_, rows)| rows.iter().map(|m| m.name.chars().count()))
        .max()
        .unwrap_or(0)
        .max("metric".len())
        + 2;
    let mut out = format!("{:<width$}", "metric");
    for (name, _) in columns {
        let _ = write!(out, "{name:>18}");
    }
    out.push('\n');
    let Some((_, first)) = columns.first() else {
        return out;
    };
    for metric in *first {
        let _ = write!(out, "{:<width$}", metric.name);
        for (_, rows) in columns {
            let cell = rows.iter().find(|m| m.name == metric.name).map_or_else(
                || "—".to_owned(),
                |m| format!("{:.3} ± {:.3}", m.value, m.stderr),
            );
            let _ = write!(out, "{cell:>18}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_errors_are_those_of_a_mean_and_a_proportion() {
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        // Sample variance 5/3 over n = 4.
        assert!((se - (5.0 / 3.0 / 4.0f64).sqrt()).abs() < 1e-12);
        assert_eq!(mean_se(&[]), (0.0, 0.0));
        assert_eq!(mean_se(&[0.7]), (0.7, 0.0));
        let (p, se) = proportion(1, 4);
        assert!((p - 0.25).abs() < 1e-12);
        assert!((se - (0.25f64 * 0.75 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!(proportion(0, 0), (0.0, 0.0));
    }

    #[test]
    fn columns_are_matched_by_name_and_a_missing_row_shows_a_dash() {
        let a = [
            Metric::new("valid_scene_rate", (0.5, 0.1)),
            Metric::new("free_space", (0.25, 0.0)),
        ];
        let b = [Metric::new("free_space", (1.0, 0.125))];
        let text = format_table(&[("before", &a), ("after", &b)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("metric") && lines[0].ends_with("after"));
        assert!(lines[1].starts_with("valid_scene_rate"), "{text}");
        assert!(lines[1].contains("0.500 ± 0.100") && lines[1].ends_with('—'));
        assert!(
            lines[2].ends_with("0.250 ± 0.000     1.000 ± 0.125"),
            "{text}"
        );
    }
}
