//! Feedback for the next turn: the assessment in short, actionable sentences.
//!
//! Order is fixed (format, missing / unknown / duplicated objects, collisions deepest first,
//! out of bounds furthest first, support, unsatisfied relations in scene-graph order) and the
//! text is capped, so the same assessment always gives the same words.

use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::room::LayoutElement;

/// Length limits of the feedback text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeedbackConfig {
    /// At most this many problem lines.
    pub max_lines: usize,
    /// At most this many characters of problem lines.
    pub max_chars: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            max_lines: 12,
            max_chars: 1200,
        }
    }
}

/// One sentence per problem, in the fixed order, capped; the last line says how many were left
/// out.
#[must_use]
pub fn feedback(a: &Assessment, cfg: &FeedbackConfig) -> Vec<String> {
    let all = problems(a);
    let mut out = Vec::new();
    let mut chars = 0;
    for line in &all {
        if out.len() == cfg.max_lines || chars + line.len() > cfg.max_chars {
            break;
        }
        chars += line.len();
        out.push(line.clone());
    }
    if out.len() < all.len() {
        out.push(format!("… and {} more problems", all.len() - out.len()));
    }
    out
}

fn problems(a: &Assessment) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(e) = &a.format_error {
        lines.push(format!(
            "your answer could not be read ({e}); write <think>…</think> then <answer>[{{\"new_object_id\": …, \"x\": …, \"y\": …, \"z\": …}}, …]</answer>"
        ));
        return lines;
    }
    lines.extend(
        a.entry_errors
            .iter()
            .map(|e| format!("{e} and was ignored")),
    );
    if !a.missing_objects.is_empty() {
        lines.push(format!(
            "missing from your answer: {}",
            a.missing_objects.join(", ")
        ));
    }
    lines.extend(
        a.unknown_objects
            .iter()
            .map(|id| format!("{id} is not an object of this room")),
    );
    lines.extend(
        a.duplicate_objects
            .iter()
            .map(|id| format!("{id} is placed more than once; only the first counts")),
    );
    let mut collisions: Vec<_> = a.collisions.iter().collect();
    collisions.sort_by(|x, y| {
        y.depth
            .total_cmp(&x.depth)
            .then((&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    lines.extend(
        collisions
            .iter()
            .map(|c| format!("{} overlaps {} by {:.2} m", c.a, c.b, c.depth)),
    );
    let mut outside: Vec<_> = a.out_of_bounds.iter().collect();
    outside.sort_by(|x, y| y.distance.total_cmp(&x.distance).then(x.id.cmp(&y.id)));
    lines.extend(outside.iter().map(|o| match o.boundary.as_str() {
        "floor" => format!("{} is {:.2} m below the floor", o.id, o.distance),
        "ceiling" => format!("{} is {:.2} m above the ceiling", o.id, o.distance),
        wall => format!(
            "{} is {:.2} m past the {}",
            o.id,
            o.distance,
            wall.replace('_', " ")
        ),
    }));
    for u in &a.unsupported {
        if u.floats {
            lines.push(format!(
                "{} floats {:.2} m above what is below it",
                u.id, u.gap
            ));
        } else if u.tilt > 5.0 {
            lines.push(format!(
                "{} tips over ({:.0}°): it needs support",
                u.id, u.tilt
            ));
        } else {
            lines.push(format!("{} falls {:.2} m: it needs support", u.id, u.drop));
        }
    }
    for r in a.relations.iter().filter(|r| !r.satisfied) {
        let wanted = match (r.relation.as_str(), LayoutElement::from_name(&r.object)) {
            ("facing", _) => format!("face {}", r.object.replace('_', " ")),
            ("on", Some(LayoutElement::Middle)) => "be in the middle of the room".to_owned(),
            ("on", Some(LayoutElement::Ceiling)) => "hang from the ceiling".to_owned(),
            ("on", Some(wall)) => format!("be against the {}", wall.name().replace('_', " ")),
            ("in the corner", Some(e)) => {
                format!("be in a corner by the {}", e.name().replace('_', " "))
            }
            ("in front", None) => format!("be in front of {}", r.object),
            (rel, None) if r.adjacent && rel != "on" && rel != "under" && rel != "above" => {
                format!("be {rel} {} and touch it", r.object)
            }
            (rel, _) => format!("be {rel} {}", r.object),
        };
        lines.push(format!("{} should {wanted}", r.subject));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::{AssessConfig, assess};
    use crate::scene_graph::load_room;

    #[test]
    fn feedback_is_capped_and_counts_the_rest() {
        let room = load_room(include_str!("../tests/fixtures/case_008.json"), "case_008").unwrap();
        let response: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/case_008.json")).unwrap();
        let a = assess(
            &room,
            response["response"].as_str().unwrap(),
            &AssessConfig::geometry_only(),
        );
        let lines = feedback(
            &a,
            &FeedbackConfig {
                max_lines: 3,
                max_chars: 1000,
            },
        );
        assert_eq!(lines.len(), 4);
        assert!(lines[3].starts_with("… and "), "{lines:?}");
        assert!(
            lines[0].contains(" overlaps ") && lines[0].ends_with(" m"),
            "{lines:?}"
        );
    }
}
