//! `format`: is the response shaped as asked?
//!
//! **What it does.** Scores the response's shape in one of two tier systems (`tiers` param):
//! - `ours` (default): 0 when no list of entries can be read from `<answer>`; otherwise
//!   0.5·(usable entries / entries) + 0.25·[a non-empty `<think>` block] + 0.25·[MetaSpatial's
//!   strict `<think>…</think><answer>…</answer>` shape with nothing around it]. A list with no
//!   entry at all counts as 0 usable of 1.
//! - `metaspatial`: exactly MetaSpatial's `metaverse_format_reward`: 0 without the strict
//!   shape; 0.1 when the text between the first `<answer>` and its `</answer>` (trimmed) is not
//!   strict JSON; 0.5 when its length (list entries, or keys of an object — their `len()`)
//!   differs from the number of objects; 1 otherwise.
//!
//! **Why.** Nothing else can be scored from an unreadable answer, and early in training the
//! format is what the policy learns first. Our tiers give partial credit per usable entry, so
//! one malformed coordinate does not cost as much as a missing tag; MetaSpatial's tiers are
//! there to reproduce the paper.
//!
//! **Example.** `<think>plan</think><answer>[{…bed…}, {"new_object_id": "lamp"}]</answer>`:
//! two entries, one usable (the lamp has no coordinates), think present, strict shape: ours
//! gives 0.5·½ + 0.25 + 0.25 = 0.75. MetaSpatial's gives 0.5 for a four-object room (two
//! entries), 1 for a two-object room.

use serde::Deserialize;
use serde_json::Value;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Which tier system to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tiers {
    /// Partial credit per usable entry, think block and strict shape.
    #[default]
    Ours,
    /// MetaSpatial's 0 / 0.1 / 0.5 / 1.
    Metaspatial,
}

/// Parameters of `format`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatParams {
    /// The tier system.
    pub tiers: Tiers,
}

/// The `format` reward.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    /// Its parameters.
    pub params: FormatParams,
}

/// The name configs give this reward.
pub const NAME: &str = "format";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |params| Ok(Format { params }))
}

impl Reward for Format {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        match self.params.tiers {
            Tiers::Ours => ours(ctx),
            Tiers::Metaspatial => {
                let (value, why) = metaspatial_tier(ctx.response, ctx.room.objects.len());
                RewardOutcome::new(value).with_note(why)
            }
        }
    }
}

fn ours(ctx: &RewardContext<'_>) -> RewardOutcome {
    let parsed = match ctx.answer {
        Ok(p) => p,
        Err(e) => {
            return RewardOutcome::new(0.0)
                .with("readable", 0.0)
                .with_note(e.to_string());
        }
    };
    let entries = parsed.entries.len() + parsed.problems.len();
    let usable = if entries == 0 {
        0.0
    } else {
        parsed.entries.len() as f64 / entries as f64
    };
    let think = f64::from(u8::from(
        parsed.think.as_deref().is_some_and(|t| !t.is_empty()),
    ));
    let strict = f64::from(u8::from(parsed.strict_format));
    RewardOutcome::new(0.5 * usable + 0.25 * think + 0.25 * strict)
        .with("readable", 1.0)
        .with("usable_fraction", usable)
        .with("think", think)
        .with("strict", strict)
}

/// MetaSpatial's format tier of a response for a room of `objects` objects, and why.
#[must_use]
pub fn metaspatial_tier(response: &str, objects: usize) -> (f64, &'static str) {
    if !strict_shape(response) {
        return (0.0, "not <think>…</think><answer>…</answer>");
    }
    let Some(block) = answer_block(response) else {
        return (0.1, "no answer block");
    };
    let Ok(value) = serde_json::from_str::<Value>(block) else {
        return (0.1, "the answer block is not strict JSON");
    };
    let len = match &value {
        Value::Array(items) => Some(items.len()),
        // Their `len()` of a dict counts its keys.
        Value::Object(map) => Some(map.len()),
        Value::String(s) => Some(s.chars().count()),
        _ => None,
    };
    if len == Some(objects) {
        (1.0, "well formed")
    } else {
        (0.5, "the answer does not list every object")
    }
}

/// `^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$` over the whole text, `.` matching
/// newlines.
fn strict_shape(response: &str) -> bool {
    let t = response.trim();
    let Some(rest) = t.strip_prefix("<think>") else {
        return false;
    };
    if !t.ends_with("</answer>") {
        return false;
    }
    // Some `</think>` must be followed (after whitespace) by `<answer>` whose content runs to
    // the final `</answer>`.
    let mut from = 0;
    while let Some(i) = rest[from..].find("</think>") {
        let after = rest[from + i + "</think>".len()..].trim_start();
        if after
            .strip_prefix("<answer>")
            .is_some_and(|tail| tail.len() >= "</answer>".len())
        {
            return true;
        }
        from += i + 1;
    }
    false
}

/// Python's `re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL).group(1)`.
fn answer_block(response: &str) -> Option<&str> {
    let open = response.find("<answer>")? + "<answer>".len();
    let close = response[open..].find("</answer>")? + open;
    Some(response[open..close].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::testing::{bedroom, close, score, tidy};

    #[test]
    fn ours_gives_full_credit_to_a_clean_answer() {
        let r = score(&Format::default(), &bedroom(), &tidy());
        close(r.value, 1.0);
    }

    #[test]
    fn ours_gives_partial_credit_per_usable_entry() {
        let response = r#"<think>plan</think><answer>[{"new_object_id": "bed_1", "x": 2, "y": 0.8, "z": 0.25}, {"new_object_id": "lamp"}]</answer>"#;
        let r = score(&Format::default(), &bedroom(), response);
        close(r.value, 0.75);
        close(r.components["usable_fraction"], 0.5);
    }

    #[test]
    fn ours_without_think_or_strict_shape() {
        let response =
            r#"Sure! <answer>[{"new_object_id": "bed_1", "x": 2, "y": 0.8, "z": 0.25}]</answer>"#;
        let r = score(&Format::default(), &bedroom(), response);
        close(r.value, 0.5);
        let r = score(&Format::default(), &bedroom(), "no answer at all");
        close(r.value, 0.0);
        assert_eq!(r.note.as_deref(), Some("no <answer> tag in the response"));
    }

    #[test]
    fn metaspatial_tiers_match_their_code() {
        let four = r#"<think>a</think><answer>[{"new_object_id": "a"}, 1, 2, 3]</answer>"#;
        close(metaspatial_tier(four, 4).0, 1.0);
        close(metaspatial_tier(four, 3).0, 0.5);
        // Bracket-less objects are not JSON for `json.loads`.
        close(
            metaspatial_tier("<think>a</think><answer>{\"a\": 1}, {\"b\": 2}</answer>", 2).0,
            0.1,
        );
        // A dict's len() is its number of keys.
        close(
            metaspatial_tier("<think>a</think><answer>{\"a\": 1, \"b\": 2}</answer>", 2).0,
            1.0,
        );
        close(
            metaspatial_tier("x <think>a</think><answer>[]</answer>", 0).0,
            0.0,
        );
        close(
            metaspatial_tier("<think>a</think> <answer>[]</answer> ", 0).0,
            1.0,
        );
        let r = Format {
            params: FormatParams {
                tiers: Tiers::Metaspatial,
            },
        };
        close(score(&r, &bedroom(), &tidy()).value, 1.0);
    }
}
