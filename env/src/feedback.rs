//! Feedback for the next turn: the assessment in short, actionable sentences.
//!
//! Order is fixed (format, missing / unknown / duplicated objects, collisions deepest first,
//! out of bounds furthest first, support, unsatisfied relations in scene-graph order) and the
//! text is capped, so the same assessment always gives the same words.

use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::room::LayoutElement;

/// What the image fed back between turns shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FeedbackView {
    /// The layout as it is.
    #[default]
    Plain,
    /// The layout with each object that has a problem painted in its problem's colour
    /// ([`marks`]), and the prompt saying what the colours mean.
    Annotated,
}

/// A problem an annotated render paints an object for, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mark {
    /// The object overlaps another: red.
    Collision,
    /// The object is (partly) outside the room: orange.
    OutOfBounds,
    /// A placement relation the room asks of the object does not hold: yellow.
    Relation,
}

impl Mark {
    /// The paint (linear RGB, 0–1).
    #[must_use]
    pub fn color(self) -> [f32; 3] {
        match self {
            Self::Collision => [0.9, 0.05, 0.05],
            Self::OutOfBounds => [1.0, 0.45, 0.0],
            Self::Relation => [0.95, 0.85, 0.1],
        }
    }
}

/// The prompt's key to an annotated render's colours.
pub const ANNOTATION_KEY: &str = "Red objects collide, orange ones are outside the room, yellow ones miss a requested placement.";

/// Each object with a problem and its most serious one, in object-id order.
#[must_use]
pub fn marks(a: &Assessment) -> Vec<(String, Mark)> {
    // Filled most serious first, so an object keeps its worst problem.
    let mut worst: std::collections::BTreeMap<&str, Mark> = std::collections::BTreeMap::new();
    for c in &a.collisions {
        for id in [c.a.as_str(), c.b.as_str()] {
            worst.insert(id, Mark::Collision);
        }
    }
    for o in &a.out_of_bounds {
        worst.entry(o.id.as_str()).or_insert(Mark::OutOfBounds);
    }
    for r in a.relations.iter().filter(|r| !r.satisfied) {
        worst.entry(r.subject.as_str()).or_insert(Mark::Relation);
    }
    worst
        .into_iter()
        .map(|(id, m)| (id.to_owned(), m))
        .collect()
}

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

    /// A `MetaSpatial` case with collisions, bounds and relation failures, assessed.
    fn case_008(config: &AssessConfig) -> Assessment {
        let text = include_str!("../tests/fixtures/case_008.json");
        let room = load_room(text, "case_008").unwrap();
        let case: serde_json::Value = serde_json::from_str(text).unwrap();
        assess(&room, case["response"].as_str().unwrap(), config)
    }

    #[test]
    fn feedback_is_capped_and_counts_the_rest() {
        let a = case_008(&AssessConfig::geometry_only());
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

    #[test]
    fn each_object_is_marked_once_by_its_most_serious_problem() {
        let a = case_008(&AssessConfig::default());
        let marked = marks(&a);
        let ids: Vec<&str> = marked.iter().map(|(id, _)| id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted, "one mark per object, in id order");
        for (id, mark) in &marked {
            let collides = a.collisions.iter().any(|c| &c.a == id || &c.b == id);
            let outside = a.out_of_bounds.iter().any(|o| &o.id == id);
            let expected = if collides {
                Mark::Collision
            } else if outside {
                Mark::OutOfBounds
            } else {
                Mark::Relation
            };
            assert_eq!(*mark, expected, "{id}");
        }
        let colliding = a
            .collisions
            .iter()
            .flat_map(|c| [&c.a, &c.b])
            .collect::<std::collections::BTreeSet<_>>();
        assert!(!colliding.is_empty(), "the case has collisions");
        assert_eq!(
            marked.iter().filter(|(_, m)| *m == Mark::Collision).count(),
            colliding.len()
        );
    }
}
