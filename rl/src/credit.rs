//! Object-level credit (MetaSpatial's 3D-SPO): the tokens of each object's coordinates get an
//! advantage computed from the trajectory's reward lowered by that object's own penalty, so the
//! object that collided, fell or broke a relation is the one whose placement is pushed away.
//!
//! For the answer of one turn, object j's penalty `π_j ∈ [0, 1]` comes from the environment's
//! findings about j (see [`object_penalties`]). The tokens that write j's coordinates get
//! `(R − s·|R|·π_j − μ) / σ`, where R is the trajectory's outcome reward, s the configured
//! strength and μ, σ the group's mean and denominator of the plain outcome advantage; every
//! other token keeps `(R − μ) / σ`. For R ≥ 0 this is the paper's `R·(1 − s·π_j)`; with |R| the
//! penalty lowers a negative reward too, where the paper's product would raise it.

use std::collections::BTreeMap;
use std::ops::Range;

use metaspatial_env::Assessment;
use serde_json::Value;

/// The keys whose values are an object's coordinates (position and heading).
const COORDINATE_KEYS: [&str; 5] = ["x", "y", "z", "rotation", "z_angle"];

/// How the group's outcome rewards are normalised: `A = (R − mean) / denominator`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normaliser {
    /// The group's mean outcome reward.
    pub mean: f64,
    /// Its standard deviation plus epsilon, or 1 without std scaling.
    pub denominator: f64,
}

impl Normaliser {
    /// The advantage of `reward` lowered by `penalty` at `strength` (both in `[0, 1]`).
    #[must_use]
    pub fn advantage(&self, reward: f64, penalty: f64, strength: f64) -> f64 {
        let lowered = if penalty > 0.0 {
            reward - strength * reward.abs() * penalty
        } else {
            reward
        };
        (lowered - self.mean) / self.denominator
    }
}

/// Each placed object's penalty `π_j = 1 − (1 − c)(1 − o)(1 − u)(1 − r)`: c = 1 when j
/// collides with an object written before it in the answer (`order`: ids in answer order; the
/// answer is written left to right, so the later of two overlapping objects is the one put
/// into occupied space), o the fraction of j outside the room when it is out of bounds, u = 1
/// when j floats, falls or tips, r the fraction of j's own relations (facing included) that
/// fail. 0 means nothing is wrong with j; any one finding at full strength makes it 1.
#[must_use]
pub fn object_penalties(assessment: &Assessment, order: &[&str]) -> BTreeMap<String, f64> {
    let position = |id: &str| order.iter().position(|&o| o == id).unwrap_or(usize::MAX);
    let mut relations: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &assessment.relations {
        let entry = relations.entry(r.subject.as_str()).or_default();
        entry.0 += usize::from(!r.satisfied);
        entry.1 += 1;
    }
    assessment
        .layout
        .poses
        .iter()
        .map(|pose| {
            let id = pose.id.as_str();
            let collides = assessment.collisions.iter().any(|c| {
                let partner = if c.a == id {
                    &c.b
                } else if c.b == id {
                    &c.a
                } else {
                    return false;
                };
                position(partner) < position(id)
            });
            let outside = assessment
                .out_of_bounds
                .iter()
                .find(|o| o.id == id)
                .map_or(0.0, |o| o.fraction_outside.clamp(0.0, 1.0));
            let unstable = assessment.unsupported.iter().any(|u| u.id == id);
            let broken = relations
                .get(id)
                .map_or(0.0, |&(failed, total)| failed as f64 / total as f64);
            let kept = (1.0 - f64::from(u8::from(collides)))
                * (1.0 - outside)
                * (1.0 - f64::from(u8::from(unstable)))
                * (1.0 - broken);
            (pose.id.clone(), 1.0 - kept)
        })
        .collect()
}

/// Byte ranges of each answer entry's coordinate values in `response`, with the entry's
/// `new_object_id`, in answer order. `None` when the response has no well-formed answer list.
#[must_use]
pub fn coordinate_spans(response: &str) -> Option<Vec<(String, Vec<Range<usize>>)>> {
    let open = response.find("<answer>")? + "<answer>".len();
    let close = open + response[open..].find("</answer>")?;
    let body = &response[open..close];
    let start = open + body.find('[')?;
    let mut scanner = Scanner {
        text: response,
        at: start + 1,
        end: close,
    };
    let mut out = Vec::new();
    loop {
        scanner.skip_space();
        match scanner.peek()? {
            b']' => return Some(out),
            b',' => scanner.at += 1,
            b'{' => out.push(scanner.entry()?),
            _ => return None,
        }
    }
}

/// A cursor over the answer list; every method returns `None` on anything malformed.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
    end: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        (self.at < self.end).then(|| self.text.as_bytes()[self.at])
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A JSON value's byte range (strings with escapes, nested objects and lists).
    fn value(&mut self) -> Option<Range<usize>> {
        self.skip_space();
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.at += 1;
                loop {
                    match self.peek()? {
                        b'\\' => self.at += 2,
                        b'"' => break,
                        _ => self.at += 1,
                    }
                }
                self.at += 1;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        b'"' => {
                            self.value()?;
                            continue;
                        }
                        _ => {}
                    }
                    self.at += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
            }
        }
        (self.at > start).then_some(start..self.at)
    }

    /// One `{…}` entry: its id and the ranges of its coordinate values.
    fn entry(&mut self) -> Option<(String, Vec<Range<usize>>)> {
        self.expect(b'{')?;
        let mut id = None;
        let mut spans = Vec::new();
        loop {
            self.skip_space();
            if self.peek()? == b'}' {
                self.at += 1;
                break;
            }
            let key = self.value()?;
            let key: String = serde_json::from_str(&self.text[key]).ok()?;
            self.expect(b':')?;
            let value = self.value()?;
            if key == "new_object_id" {
                match serde_json::from_str(&self.text[value]).ok()? {
                    Value::String(s) => id = Some(s),
                    _ => return None,
                }
            } else if COORDINATE_KEYS.contains(&key.as_str()) {
                spans.push(value);
            }
            self.skip_space();
            if self.peek()? == b',' {
                self.at += 1;
            }
        }
        Some((id?, spans))
    }
}

/// Byte range of each token in the text the pieces concatenate to.
fn token_ranges(pieces: &[String]) -> Vec<Range<usize>> {
    let mut at = 0;
    pieces
        .iter()
        .map(|p| {
            let range = at..at + p.len();
            at = range.end;
            range
        })
        .collect()
}

/// Per-token advantages of one answer: object j's coordinate tokens get
/// [`Normaliser::advantage`] with `π_j`, the others the plain group advantage (a token that
/// touches several objects' coordinates takes the largest penalty).
///
/// `pieces` are the response tokens decoded one by one. `None` — the caller then uses the plain
/// advantage everywhere — when they do not concatenate to `response` (a character split across
/// tokens), when the answer does not parse, or when it names an object twice.
#[must_use]
pub fn token_advantages(
    response: &str,
    pieces: &[String],
    assessment: &Assessment,
    reward: f64,
    normaliser: &Normaliser,
    strength: f64,
) -> Option<Vec<f64>> {
    if !assessment.parsed || pieces.concat() != response {
        return None;
    }
    let spans = coordinate_spans(response)?;
    let ids_in_order: Vec<&str> = spans.iter().map(|(id, _)| id.as_str()).collect();
    let mut ids = ids_in_order.clone();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let penalties = object_penalties(assessment, &ids_in_order);
    let plain = normaliser.advantage(reward, 0.0, strength);
    let advantages = token_ranges(pieces)
        .iter()
        .map(|token| {
            let penalty = spans
                .iter()
                .filter(|(_, ranges)| {
                    ranges
                        .iter()
                        .any(|r| r.start < token.end && token.start < r.end)
                })
                .filter_map(|(id, _)| penalties.get(id).copied())
                .reduce(f64::max);
            penalty.map_or(plain, |p| normaliser.advantage(reward, p, strength))
        })
        .collect();
    Some(advantages)
}

#[cfg(test)]
mod tests {
    use metaspatial_env::{AssessConfig, assess};

    use super::*;
    use crate::fixtures::{CLEAN, COLLIDING, room};
    use crate::grpo::{AdvantageMode, group_advantages};

    /// The response split before every space, as a tokenizer would split it into words.
    fn pieces(response: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        for ch in response.chars() {
            if ch == ' ' {
                out.push(String::new());
            }
            out.last_mut().expect("one piece at least").push(ch);
        }
        out
    }

    #[test]
    fn only_the_colliding_objects_coordinate_tokens_get_a_lower_advantage() {
        let room = room();
        let colliding = assess(&room, COLLIDING, &AssessConfig::default());
        // c, written last, overlaps a: c alone is to blame; a and b are fine.
        assert_eq!(colliding.collisions.len(), 1, "{:?}", colliding.collisions);
        assert!(colliding.unsupported.is_empty() && colliding.out_of_bounds.is_empty());
        let penalties = object_penalties(&colliding, &["a", "b", "c"]);
        assert_eq!(
            penalties.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_owned(), 0.0),
                ("b".to_owned(), 0.0),
                ("c".to_owned(), 1.0)
            ]
        );
        // Group rewards 0.4 (the colliding answer) and 0.8: mean 0.6, sample std √0.08.
        let group = group_advantages(
            &[vec![0.4], vec![0.8]],
            AdvantageMode::Object { strength: 0.5 },
            true,
        );
        let normaliser = group.normaliser.unwrap();
        let sigma = 0.08f64.sqrt() + crate::grpo::STD_EPSILON;
        let plain = (0.4 - 0.6) / sigma;
        assert!((group.values[0][0] - plain).abs() < 1e-12);
        // c's tokens: R − s·|R|·π = 0.4 − 0.5·0.4·1 = 0.2, so (0.2 − 0.6) / σ.
        let lowered = (0.2 - 0.6) / sigma;
        let split = pieces(COLLIDING);
        let advantages =
            token_advantages(COLLIDING, &split, &colliding, 0.4, &normaliser, 0.5).unwrap();
        assert_eq!(advantages.len(), split.len());
        let mut lowered_pieces = Vec::new();
        for (piece, a) in split.iter().zip(&advantages) {
            if (a - lowered).abs() < 1e-12 {
                lowered_pieces.push(piece.as_str());
            } else {
                assert!((a - plain).abs() < 1e-12, "{piece:?}: {a}");
            }
        }
        assert_eq!(lowered_pieces, [" 1.2,", " 1.6,", " 0.25}]</answer>"]);

        // The clean answer of the group: nothing to blame, every token keeps its advantage.
        let clean = assess(&room, CLEAN, &AssessConfig::default());
        assert!(clean.valid_scene, "{clean:?}");
        let advantages =
            token_advantages(CLEAN, &pieces(CLEAN), &clean, 0.8, &normaliser, 0.5).unwrap();
        assert!(
            advantages
                .iter()
                .all(|&a| (a - group.values[1][0]).abs() < 1e-12)
        );
    }

    #[test]
    fn the_tiny_models_tokens_decode_one_by_one_to_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = vec![COLLIDING.to_owned(), CLEAN.to_owned()];
        metaspatial_policy::tiny::RandomModel::default()
            .write_files(dir.path(), &corpus)
            .unwrap();
        let tokenizer = metaspatial_policy::ChatTokenizer::from_dir(dir.path()).unwrap();
        let tokens = tokenizer.encode(COLLIDING).unwrap();
        let pieces: Vec<String> = tokens
            .iter()
            .map(|&t| tokenizer.decode(&[t], true).unwrap())
            .collect();
        assert_eq!(pieces.concat(), COLLIDING);
        let assessment = assess(&room(), COLLIDING, &AssessConfig::default());
        let normaliser = Normaliser {
            mean: 0.6,
            denominator: 0.2,
        };
        let advantages =
            token_advantages(COLLIDING, &pieces, &assessment, 0.4, &normaliser, 0.5).unwrap();
        let lowered = advantages.iter().filter(|&&a| a < -1.0 - 1e-9).count();
        assert!(lowered >= 3, "c's three coordinates: {advantages:?}");
    }

    #[test]
    fn a_negative_reward_is_lowered_too() {
        let normaliser = Normaliser {
            mean: -0.5,
            denominator: 2.0,
        };
        // R = −1, π = 1, s = 0.5: −1 − 0.5 = −1.5, so (−1.5 + 0.5) / 2 = −0.5 < (−1 + 0.5) / 2.
        assert!((normaliser.advantage(-1.0, 1.0, 0.5) + 0.5).abs() < 1e-12);
        assert!((normaliser.advantage(-1.0, 0.0, 0.5) + 0.25).abs() < 1e-12);
        // R = 1, π = 0.5: 1 − 0.25 = 0.75, so (0.75 + 0.5) / 2 = 0.625.
        assert!((normaliser.advantage(1.0, 0.5, 0.5) - 0.625).abs() < 1e-12);
    }

    #[test]
    fn malformed_answers_and_mismatched_tokens_fall_back_to_the_plain_advantage() {
        let room = room();
        let normaliser = Normaliser {
            mean: 0.5,
            denominator: 1.0,
        };
        let broken = r#"<answer>[{"new_object_id": "a", "x": 1.0, "y": 1.5"#;
        let assessment = assess(&room, broken, &AssessConfig::default());
        assert_eq!(
            token_advantages(broken, &pieces(broken), &assessment, 0.1, &normaliser, 0.5),
            None
        );
        let assessment = assess(&room, COLLIDING, &AssessConfig::default());
        let mut split = pieces(COLLIDING);
        split[3].pop();
        assert_eq!(
            token_advantages(COLLIDING, &split, &assessment, 0.1, &normaliser, 0.5),
            None,
            "pieces that do not spell the response"
        );
    }

    #[test]
    fn coordinate_spans_cover_the_values_of_each_entry() {
        let response = r#"<think>t</think><answer>[{"new_object_id": "bed_1", "x": 1.5, "y": 2, "z": 0.25, "rotation": {"z_angle": 90}}, {"z": -0.5, "new_object_id": "lamp_1", "x": 3e-1, "y": 1}]</answer>"#;
        let spans = coordinate_spans(response).unwrap();
        let texts: Vec<(String, Vec<&str>)> = spans
            .iter()
            .map(|(id, ranges)| {
                (
                    id.clone(),
                    ranges.iter().map(|r| &response[r.clone()]).collect(),
                )
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                (
                    "bed_1".to_owned(),
                    vec!["1.5", "2", "0.25", r#"{"z_angle": 90}"#]
                ),
                ("lamp_1".to_owned(), vec!["-0.5", "3e-1", "1"]),
            ]
        );
    }

    #[test]
    fn malformed_answers_have_no_spans() {
        for response in [
            "no answer at all",
            "<answer>[{\"new_object_id\": \"a\", \"x\": 1</answer>",
            "<answer>[{\"x\": 1}]</answer>",
            "<answer>[{\"new_object_id\": 3, \"x\": 1}]</answer>",
            "<answer>{\"new_object_id\": \"a\"}</answer>",
            "<answer>[{\"new_object_id\": \"a\\",
        ] {
            assert_eq!(coordinate_spans(response), None, "{response}");
        }
    }
}
