//! Parsing model responses: `<think>…</think><answer>[{"new_object_id", "x", "y", "z"}, …]</answer>`.
//!
//! Model output is never a panic. The parser reports what is wrong, precisely:
//! - a fatal [`AnswerError`] when no list of entries can be read at all (missing tags, invalid
//!   JSON with its line and column in the response, a value that is not a list of entries);
//! - one [`EntryProblem`] per unusable entry (not an object, no id, missing or non-numeric
//!   coordinate, non-finite or absurd number), while the usable entries are kept.
//!
//! Accepted shapes inside `<answer>`: a JSON list; a single object; the bracket-less
//! `{…}, {…}` form shown in MetaSpatial's prompt; any of these inside a Markdown code fence.
//! Headings: `"rotation": 90`, `"z_angle": 90` or `"rotation": {"z_angle": 90}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::layout::Layout;

/// Coordinates beyond this many metres from the origin are rejected as absurd.
pub const MAX_COORDINATE: f64 = 1000.0;
/// Headings beyond this many degrees are rejected as absurd (they lose precision modulo 360).
pub const MAX_HEADING: f64 = 1.0e6;

/// A response from which no entries could be read.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerError {
    /// No `<answer>` tag.
    #[error("no <answer> tag in the response")]
    MissingAnswerTag,
    /// `<answer>` is never closed.
    #[error("<answer> at line {line} is never closed with </answer>")]
    UnclosedAnswer {
        /// 1-based line of the opening tag.
        line: usize,
    },
    /// Nothing between the tags.
    #[error("the <answer> block is empty")]
    EmptyAnswer,
    /// The block is not valid JSON.
    #[error("invalid JSON in <answer> at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line in the whole response.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// Valid JSON, but not a list of objects.
    #[error("the <answer> JSON is {found}, expected a list of objects")]
    NotAList {
        /// What was found instead (`a number`, `a string`, …).
        found: String,
    },
}

/// One entry of the answer list that cannot be used.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryProblem {
    /// The entry is not a JSON object.
    #[error("entry {index} is {found}, not an object")]
    NotAnObject {
        /// 0-based index in the list.
        index: usize,
        /// What it is instead.
        found: String,
    },
    /// No string `new_object_id`.
    #[error("entry {index} has no string \"new_object_id\"")]
    MissingId {
        /// 0-based index.
        index: usize,
    },
    /// A coordinate is missing.
    #[error("entry {index} (`{id}`) has no \"{field}\"")]
    MissingField {
        /// 0-based index.
        index: usize,
        /// The entry's id.
        id: String,
        /// `x`, `y` or `z`.
        field: String,
    },
    /// A field is not a number.
    #[error("entry {index} (`{id}`): \"{field}\" is {found}, not a number")]
    NotANumber {
        /// 0-based index.
        index: usize,
        /// The entry's id.
        id: String,
        /// The field.
        field: String,
        /// What it is instead.
        found: String,
    },
    /// A number is not finite or absurdly large.
    #[error("entry {index} (`{id}`): \"{field}\" = {value} is out of range")]
    OutOfRange {
        /// 0-based index.
        index: usize,
        /// The entry's id.
        id: String,
        /// The field.
        field: String,
        /// The value as written.
        value: String,
    },
}

/// One usable answer entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerEntry {
    /// 0-based index in the answer list.
    pub index: usize,
    /// `new_object_id` as written.
    pub id: String,
    /// Centre `[x, y, z]` in metres.
    pub position: [f64; 3],
    /// Heading in degrees, if the answer gave one.
    pub rotation: Option<f64>,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedAnswer {
    /// The reasoning between `<think>` and `</think>`, if present.
    pub think: Option<String>,
    /// Whether the whole response has MetaSpatial's strict shape: only whitespace around
    /// `<think>…</think>` followed by `<answer>…</answer>`.
    pub strict_format: bool,
    /// The usable entries, in answer order.
    pub entries: Vec<AnswerEntry>,
    /// The unusable entries.
    pub problems: Vec<EntryProblem>,
}

/// How [`write`] writes an answer's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Every digit of the layout.
    Exact,
    /// Positions to the centimetre, headings to the degree (what a model learns to write).
    Rounded,
}

/// A layout as an answer in `MetaSpatial`'s format, with `think` as its reasoning: the inverse
/// of [`parse`].
#[must_use]
pub fn write(layout: &Layout, think: &str, precision: Precision) -> String {
    let rounded = precision == Precision::Rounded;
    let position = |v: f64| {
        if rounded {
            (v * 100.0).round() / 100.0
        } else {
            v
        }
    };
    let heading = |v: f64| if rounded { v.round() } else { v };
    let entries: Vec<Value> = layout
        .poses
        .iter()
        .map(|p| {
            serde_json::json!({
                "new_object_id": p.id,
                "x": position(p.position[0]),
                "y": position(p.position[1]),
                "z": position(p.position[2]),
                "rotation": heading(p.rotation),
            })
        })
        .collect();
    format!(
        "<think>{think}</think>\n<answer>{}</answer>",
        Value::Array(entries)
    )
}

/// The `<think>` and `<answer>` sections of a response as written, trimmed, for display: a
/// section never closed runs to the end of the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    /// Between `<think>` and `</think>`.
    pub think: Option<String>,
    /// Between `<answer>` and `</answer>`.
    pub answer: Option<String>,
}

impl Sections {
    /// The sections of `response`; `None` where an opening tag is missing.
    #[must_use]
    pub fn of(response: &str) -> Self {
        let between = |open: &str, close: &str| {
            let start = response.find(open)? + open.len();
            let end = response[start..]
                .find(close)
                .map_or(response.len(), |e| start + e);
            Some(response[start..end].trim().to_owned())
        };
        Self {
            think: between("<think>", "</think>"),
            answer: between("<answer>", "</answer>"),
        }
    }
}

/// Parses a response. Never panics, whatever the input.
pub fn parse(response: &str) -> Result<ParsedAnswer, AnswerError> {
    let think = extract_think(response);
    let search_from = response
        .find("</think>")
        .map_or(0, |i| i + "</think>".len());
    let open = response[search_from..]
        .find("<answer>")
        .map(|i| i + search_from)
        .or_else(|| response.find("<answer>"))
        .ok_or(AnswerError::MissingAnswerTag)?;
    let content_start = open + "<answer>".len();
    let close = response[content_start..]
        .find("</answer>")
        .map(|i| i + content_start)
        .ok_or_else(|| AnswerError::UnclosedAnswer {
            line: line_of(response, open),
        })?;
    let content = &response[content_start..close];
    let (body, body_offset) = strip_fence(content);
    if body.trim().is_empty() {
        return Err(AnswerError::EmptyAnswer);
    }
    if let Some(entries) = fast_entries(body) {
        return Ok(ParsedAnswer {
            think,
            strict_format: is_strict(response),
            entries,
            problems: Vec::new(),
        });
    }
    let value = parse_json(body).map_err(|e| {
        let absolute = content_start + body_offset + offset_of(body, e.line(), e.column());
        AnswerError::InvalidJson {
            line: line_of(response, absolute),
            column: column_of(response, absolute),
            message: strip_position(&e.to_string()),
        }
    })?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        other => {
            return Err(AnswerError::NotAList {
                found: describe(&other).to_owned(),
            });
        }
    };
    let mut entries = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match entry(index, item) {
            Ok(e) => entries.push(e),
            Err(p) => problems.push(p),
        }
    }
    Ok(ParsedAnswer {
        think,
        strict_format: is_strict(response),
        entries,
        problems,
    })
}

/// The common case, a well-formed list of well-formed entries, read straight into typed
/// entries without building a JSON tree. `None` sends the answer down the general path, which
/// reports precisely what is wrong.
fn fast_entries(body: &str) -> Option<Vec<AnswerEntry>> {
    #[derive(Deserialize)]
    struct Fast {
        new_object_id: String,
        x: f64,
        y: f64,
        z: f64,
        // `null` must fail here (the general path reports it), not read as absent.
        #[serde(default, deserialize_with = "present")]
        rotation: Option<FastRotation>,
        #[serde(default, deserialize_with = "present")]
        z_angle: Option<f64>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum FastRotation {
        Degrees(f64),
        Nested { z_angle: f64 },
    }
    fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
    let items: Vec<Fast> = serde_json::from_str(body).ok()?;
    let in_range = |v: f64, limit: f64| v.is_finite() && v.abs() <= limit;
    items
        .into_iter()
        .enumerate()
        .map(|(index, f)| {
            let rotation = match f.rotation {
                Some(FastRotation::Degrees(r) | FastRotation::Nested { z_angle: r }) => Some(r),
                None => f.z_angle,
            };
            let ok = [f.x, f.y, f.z].iter().all(|&v| in_range(v, MAX_COORDINATE))
                && rotation.is_none_or(|r| in_range(r, MAX_HEADING));
            ok.then_some(AnswerEntry {
                index,
                id: f.new_object_id,
                position: [f.x, f.y, f.z],
                rotation,
            })
        })
        .collect()
}

/// JSON as written, or the bracket-less `{…}, {…}` list MetaSpatial's prompt shows.
fn parse_json(body: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(body) {
        Ok(v) => Ok(v),
        Err(first) => {
            let trimmed = body.trim_start();
            if !trimmed.starts_with('{') {
                return Err(first);
            }
            // Only retry as a list when that helps; report the original error otherwise, so
            // the position refers to what the model wrote.
            let wrapped = format!("[{body}]");
            serde_json::from_str(&wrapped).map_err(|_| first)
        }
    }
}

fn entry(index: usize, item: &Value) -> Result<AnswerEntry, EntryProblem> {
    let Value::Object(map) = item else {
        return Err(EntryProblem::NotAnObject {
            index,
            found: describe(item).to_owned(),
        });
    };
    let id = map
        .get("new_object_id")
        .and_then(Value::as_str)
        .ok_or(EntryProblem::MissingId { index })?
        .to_owned();
    let number = |field: &str, limit: f64| -> Result<Option<f64>, EntryProblem> {
        map.get(field)
            .map(|v| checked_number(field, v, limit, index, &id))
            .transpose()
    };
    let mut position = [0.0; 3];
    for (slot, field) in position.iter_mut().zip(["x", "y", "z"]) {
        *slot = number(field, MAX_COORDINATE)?.ok_or_else(|| EntryProblem::MissingField {
            index,
            id: id.clone(),
            field: field.to_owned(),
        })?;
    }
    let rotation = match map.get("rotation") {
        Some(Value::Object(r)) => match r.get("z_angle") {
            Some(z) => Some(checked_number(
                "rotation.z_angle",
                z,
                MAX_HEADING,
                index,
                &id,
            )?),
            None => {
                return Err(EntryProblem::MissingField {
                    index,
                    id,
                    field: "rotation.z_angle".into(),
                });
            }
        },
        Some(_) => number("rotation", MAX_HEADING)?,
        None => number("z_angle", MAX_HEADING)?,
    };
    Ok(AnswerEntry {
        index,
        id,
        position,
        rotation,
    })
}

/// A finite number no larger than `limit` in magnitude, or the problem with it.
fn checked_number(
    field: &str,
    v: &Value,
    limit: f64,
    index: usize,
    id: &str,
) -> Result<f64, EntryProblem> {
    let x = v.as_f64().ok_or_else(|| EntryProblem::NotANumber {
        index,
        id: id.to_owned(),
        field: field.to_owned(),
        found: describe(v).to_owned(),
    })?;
    if !x.is_finite() || x.abs() > limit {
        return Err(EntryProblem::OutOfRange {
            index,
            id: id.to_owned(),
            field: field.to_owned(),
            value: v.to_string(),
        });
    }
    Ok(x)
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn extract_think(response: &str) -> Option<String> {
    let open = response.find("<think>")? + "<think>".len();
    let close = response[open..].find("</think>")? + open;
    Some(response[open..close].trim().to_owned())
}

/// MetaSpatial's format check: `^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$`, whole
/// string, `.` matching newlines.
fn is_strict(response: &str) -> bool {
    let t = response.trim();
    if !t.starts_with("<think>") || !t.ends_with("</answer>") {
        return false;
    }
    let answer_end = t.len() - "</answer>".len();
    let mut from = "<think>".len();
    while let Some(i) = t[from..].find("</think>") {
        let after = from + i + "</think>".len();
        let rest = t[after..].trim_start();
        let open = t.len() - rest.len();
        if rest.starts_with("<answer>") && open + "<answer>".len() <= answer_end {
            return true;
        }
        from = from + i + 1;
    }
    false
}

/// Removes a surrounding Markdown code fence (```` ```json … ``` ````); returns the body and its
/// byte offset in `content`.
fn strip_fence(content: &str) -> (&str, usize) {
    let trimmed = content.trim_start();
    let lead = content.len() - trimmed.len();
    if let Some(rest) = trimmed.strip_prefix("```") {
        let Some(newline) = rest.find('\n') else {
            return (content, 0);
        };
        let body_start = lead + 3 + newline + 1;
        let body = &content[body_start..];
        if let Some(end) = body.rfind("```") {
            return (&body[..end], body_start);
        }
    }
    (content, 0)
}

/// Byte offset of `serde_json`'s 1-based (line, column) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            // serde_json counts columns in bytes; clamp to the line and a char boundary.
            let mut at = offset + column.saturating_sub(1).min(l.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return at;
        }
        offset += l.len();
    }
    text.len()
}

fn line_of(text: &str, offset: usize) -> usize {
    // Segments between newlines: one more than the newlines before `offset`.
    text.as_bytes()[..offset.min(text.len())]
        .split(|&b| b == b'\n')
        .count()
}

fn column_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..offset].chars().count() + 1
}

/// `serde_json` appends " at line L column C"; we report our own position instead.
pub(crate) fn strip_position(message: &str) -> String {
    message
        .find(" at line ")
        .map_or_else(|| message.to_owned(), |i| message[..i].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // written and read back through decimal text, exactly
    fn a_written_answer_parses_back_to_its_layout() {
        let layout = Layout {
            poses: vec![crate::layout::Pose {
                id: "bed_1".to_owned(),
                position: [1.234_56, 2.0, 0.25],
                rotation: 89.6,
            }],
        };
        let exact = parse(&write(&layout, "why", Precision::Exact)).unwrap();
        assert!(exact.strict_format);
        assert_eq!(exact.think.as_deref(), Some("why"));
        assert_eq!(exact.entries[0].id, "bed_1");
        assert_eq!(exact.entries[0].position, [1.234_56, 2.0, 0.25]);
        assert_eq!(exact.entries[0].rotation, Some(89.6));
        let rounded = parse(&write(&layout, "why", Precision::Rounded)).unwrap();
        assert_eq!(rounded.entries[0].position, [1.23, 2.0, 0.25]);
        assert_eq!(rounded.entries[0].rotation, Some(90.0));
    }

    #[test]
    fn sections_are_read_as_written_and_run_on_when_unclosed() {
        let s = Sections::of("<think> a plan </think>\n<answer>[1]</answer>");
        assert_eq!(s.think.as_deref(), Some("a plan"));
        assert_eq!(s.answer.as_deref(), Some("[1]"));
        let s = Sections::of("<think>cut off");
        assert_eq!(s.think.as_deref(), Some("cut off"));
        assert_eq!(s.answer, None);
    }

    #[test]
    fn reads_the_three_heading_spellings() {
        let r = parse(
            r#"<think>t</think><answer>[
            {"new_object_id": "a", "x": 1, "y": 2, "z": 0.5, "rotation": 90},
            {"new_object_id": "b", "x": 1, "y": 2, "z": 0.5, "z_angle": 180},
            {"new_object_id": "c", "x": 1, "y": 2, "z": 0.5, "rotation": {"z_angle": 270}},
            {"new_object_id": "d", "x": 1, "y": 2, "z": 0.5}]</answer>"#,
        )
        .unwrap();
        let rotations: Vec<_> = r.entries.iter().map(|e| e.rotation).collect();
        assert_eq!(rotations, [Some(90.0), Some(180.0), Some(270.0), None]);
        assert!(r.strict_format);
        assert_eq!(r.think.as_deref(), Some("t"));
    }

    #[test]
    fn reads_the_bracketless_form_and_code_fences() {
        let r = parse(
            "<think>x</think>\n<answer>\n{\"new_object_id\": \"a\",\"x\": 1.0,\"y\": 1.5,\"z\": 0.45}, \
             {\"new_object_id\": \"b\",\"x\": 1.0,\"y\": 1.8,\"z\": 0.45}\n</answer>",
        )
        .unwrap();
        assert_eq!(r.entries.len(), 2);
        let r = parse("<answer>```json\n[{\"new_object_id\": \"a\",\"x\": 1,\"y\": 1,\"z\": 1}]\n```</answer>")
            .unwrap();
        assert_eq!(r.entries.len(), 1);
        assert!(!r.strict_format);
    }

    #[test]
    fn invalid_json_reports_its_position_in_the_response() {
        let err = parse(
            "<think>\nok\n</think>\n<answer>\n[{\"new_object_id\": \"a\", \"x\": 1,,}]\n</answer>",
        )
        .unwrap_err();
        match err {
            AnswerError::InvalidJson { line, column, .. } => {
                assert_eq!(line, 5);
                assert_eq!(column, 32);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn missing_and_unclosed_tags_are_named() {
        assert_eq!(parse("no tags").unwrap_err(), AnswerError::MissingAnswerTag);
        assert_eq!(
            parse("a\n<answer>[").unwrap_err(),
            AnswerError::UnclosedAnswer { line: 2 }
        );
        assert_eq!(
            parse("<answer> </answer>").unwrap_err(),
            AnswerError::EmptyAnswer
        );
        assert_eq!(
            parse("<answer>3</answer>").unwrap_err(),
            AnswerError::NotAList {
                found: "a number".into()
            }
        );
    }

    #[test]
    fn bad_entries_are_reported_and_good_ones_kept() {
        let r = parse(
            r#"<answer>[1, {"x": 1}, {"new_object_id": "a", "x": "1", "y": 0, "z": 0},
            {"new_object_id": "b", "x": 1e308, "y": 0, "z": 0},
            {"new_object_id": "c", "y": 0, "z": 0},
            {"new_object_id": "d", "x": 0, "y": 0, "z": 0}]</answer>"#,
        )
        .unwrap();
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries[0].id, "d");
        let messages: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "entry 0 is a number, not an object",
                "entry 1 has no string \"new_object_id\"",
                "entry 2 (`a`): \"x\" is a string, not a number",
                "entry 3 (`b`): \"x\" = 1e+308 is out of range",
                "entry 4 (`c`) has no \"x\"",
            ]
        );
    }

    #[test]
    fn strict_format_matches_metaspatial_regex() {
        assert!(is_strict("  <think>a</think>\n <answer>b</answer>\n"));
        assert!(!is_strict("x<think>a</think><answer>b</answer>"));
        assert!(!is_strict("<think>a</think>x<answer>b</answer>"));
        assert!(is_strict("<think>a</think>x</think><answer>b</answer>"));
        assert!(!is_strict("<think>a</think><answer>"));
    }
}
