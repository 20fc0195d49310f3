//! Multi-turn episodes: the prompt, the model's answer, the assessment and the next prompt.
//!
//! The shape echoes burn-rl's `Environment`: [`Episode::reset`] gives the first
//! [`Observation`]; [`Episode::step`] takes a response and returns a [`StepResult`] with the
//! assessment, the next observation, `done` (the layout is valid and the episode stops on
//! valid layouts) and `truncated` (the turn limit was reached).
//!
//! An observation is the whole conversation so far as chat messages, plus the images those
//! messages show, as [`ImageRequest`]s: this crate says *what* to draw (the empty room on the
//! first turn, the layout of each answer later); the render crate draws it. A message's
//! [`Content::Image`] refers to an image by its index in [`Observation::images`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::answer::{self, AnswerError, ParsedAnswer};
use crate::assessment::{AssessConfig, Assessment, assess_answer};
use crate::feedback::{ANNOTATION_KEY, FeedbackConfig, FeedbackView, feedback};
use crate::layout::Layout;
use crate::room::Room;
use crate::scene_graph::to_scene_graph;

/// Episode settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeConfig {
    /// Turns before the episode is truncated.
    pub max_turns: usize,
    /// End the episode as soon as a layout is valid.
    pub stop_when_valid: bool,
    /// What each answer is checked for.
    pub assess: AssessConfig,
    /// Feedback length limits.
    pub feedback: FeedbackConfig,
    /// How the first-turn prompt describes the task.
    #[serde(default)]
    pub prompt: PromptStyle,
    /// What the render fed back between turns shows; with `Annotated` the feedback says what
    /// its colours mean.
    #[serde(default)]
    pub feedback_view: FeedbackView,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self {
            max_turns: 3,
            stop_when_valid: true,
            assess: AssessConfig::default(),
            feedback: FeedbackConfig::default(),
            prompt: PromptStyle::default(),
            feedback_view: FeedbackView::Plain,
        }
    }
}

/// The first-turn prompt's wording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptStyle {
    /// `MetaSpatial`'s task text with the scene graph as pretty JSON ([`task_prompt`]).
    #[default]
    MetaSpatial,
    /// The same facts in a few lines, one per object ([`compact_prompt`]); about a fifth of
    /// the tokens, for small models and quick runs.
    Compact,
}

impl PromptStyle {
    /// The first-turn prompt of `room` in this style.
    #[must_use]
    pub fn prompt(self, room: &Room) -> String {
        match self {
            Self::MetaSpatial => task_prompt(room),
            Self::Compact => compact_prompt(room),
        }
    }
}

/// Who speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The environment.
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Text.
    Text(String),
    /// The image at this index of [`Observation::images`].
    Image(usize),
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// What is said, in order.
    pub content: Vec<Content>,
}

/// An image the renderer should draw for an observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRequest {
    /// The room with no objects placed.
    EmptyRoom,
    /// The room with this layout.
    Layout(Layout),
}

/// What the model sees before a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// 1-based number of the turn this observation asks for.
    pub turn: usize,
    /// The conversation so far, ending with a user message.
    pub messages: Vec<Message>,
    /// The images the messages refer to.
    pub images: Vec<ImageRequest>,
}

/// The outcome of one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// What was read from the response's `<answer>`, or why nothing could be.
    pub answer: Result<ParsedAnswer, AnswerError>,
    /// The assessment of the response.
    pub assessment: Assessment,
    /// The observation for the next turn (the conversation including this response and its
    /// feedback).
    pub observation: Observation,
    /// The layout is valid and the episode stops on valid layouts.
    pub done: bool,
    /// The turn limit was reached.
    pub truncated: bool,
}

/// One room being laid out over several turns.
#[derive(Debug, Clone)]
pub struct Episode {
    room: Room,
    config: EpisodeConfig,
    observation: Observation,
}

impl Episode {
    /// An episode on this room; call [`Episode::reset`] for its first observation.
    #[must_use]
    pub fn new(room: Room, config: EpisodeConfig) -> Self {
        let observation = first_observation(&room, config.prompt);
        Self {
            room,
            config,
            observation,
        }
    }

    /// Starts over and returns the first observation.
    pub fn reset(&mut self) -> Observation {
        self.observation = first_observation(&self.room, self.config.prompt);
        self.observation.clone()
    }

    /// The room.
    #[must_use]
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// The current observation.
    #[must_use]
    pub fn observation(&self) -> &Observation {
        &self.observation
    }

    /// Assesses the model's response to the current observation and moves to the next turn.
    pub fn step(&mut self, response: &str) -> StepResult {
        let answer = answer::parse(response);
        let assessment = assess_answer(&self.room, &answer, &self.config.assess);
        let lines = feedback(&assessment, &self.config.feedback);
        let turn = self.observation.turn;
        let done = self.config.stop_when_valid && assessment.valid_scene;
        let truncated = !done && turn >= self.config.max_turns;
        let mut next = self.observation.clone();
        next.turn = turn + 1;
        next.messages.push(Message {
            role: Role::Assistant,
            content: vec![Content::Text(response.to_owned())],
        });
        let mut content = Vec::new();
        if assessment.parsed {
            next.images
                .push(ImageRequest::Layout(assessment.layout.clone()));
            content.push(Content::Image(next.images.len() - 1));
        }
        content.push(Content::Text(feedback_prompt(
            &lines,
            assessment.parsed,
            self.config.feedback_view,
        )));
        next.messages.push(Message {
            role: Role::User,
            content,
        });
        self.observation = next;
        StepResult {
            answer,
            assessment,
            observation: self.observation.clone(),
            done,
            truncated,
        }
    }
}

fn first_observation(room: &Room, style: PromptStyle) -> Observation {
    Observation {
        turn: 1,
        messages: vec![Message {
            role: Role::User,
            content: vec![Content::Image(0), Content::Text(style.prompt(room))],
        }],
        images: vec![ImageRequest::EmptyRoom],
    }
}

/// The first-turn prompt: MetaSpatial's task text (room size, layout elements, user
/// preference, rules, output format) followed by the scene graph without positions.
#[must_use]
pub fn task_prompt(room: &Room) -> String {
    let s = room.size;
    let graph = serde_json::to_string_pretty(&to_scene_graph(room)).unwrap_or_default();
    format!(
        "## Task Description
You are an intelligent assistant for arranging objects in a room based on JSON data. The given image is the shape of the room. Your task is to:
1. Compute spatial coordinates for each object, respecting room layout and constraints.
2. Ensure logical placement by preventing object collisions and respecting spatial boundaries.
3. Respect user preferences when arranging objects.

## Room Information
- Room Dimensions: {l} × {w} × {h} (Length meter × Width meter × Height meter).
- Room Layout Elements (reference points for object placement):
['south_wall', 'north_wall', 'west_wall', 'east_wall', 'middle of the room', 'ceiling'].
- Axes: x runs along the length from the west wall (x = 0) to the east wall; y along the width from the south wall (y = 0) to the north wall; z up from the floor. Positions are object centres in meters.

## User Preferences
{description}

## Placement Rules:
### 1. Compute the Spatial Coordinates of Each Object and Generate a \"positions\" (x, y, z) field for each object.
### 2. Ensure Objects Do Not Collide
### 3. Maintain Logical Consistency

## Output Format
First reason about the placement logic and provide a step-by-step explanation within the <think> </think> tags. After the reasoning process, the final output must be structured in JSON format within <answer> </answer> tags. Only output the generated position of the objects. Do not output the original object information like style, material, size_in_meters, etc.
---
## Expected Output
<think>
Thinking process here.
</think>
<answer>
[{{\"new_object_id\": \"sofa_1\", \"x\": 1.0, \"y\": 1.8, \"z\": 0.45}}, {{\"new_object_id\": \"coffee_table_1\", \"x\": 1.0, \"y\": 2.9, \"z\": 0.25}}]
</answer>
## Input JSON Data:
{graph}",
        l = s.length,
        w = s.width,
        h = s.height,
        description = room.description,
    )
}

/// The first-turn prompt in a few lines: the room, the answer format, then one line per
/// object with its size (length × width × height), what it stands on and its relations.
#[must_use]
pub fn compact_prompt(room: &Room) -> String {
    let s = room.size;
    let mut text = format!(
        "Room {l} x {w} x {h} m; x runs west to east (0 to {l}), y south to north (0 to {w}).\n\
         Place every object, no overlaps, inside the walls. Answer <think>...</think> then \
         <answer>[{{\"new_object_id\": id, \"x\": x, \"y\": y, \"z\": z, \"rotation\": degrees}}, ...]</answer>.\n",
        l = s.length,
        w = s.width,
        h = s.height,
    );
    // The ids first, in answer order: a model can then copy "the id after the one it just
    // wrote" from one line instead of counting object lines.
    // Quoted as in the answer, so that an id reads (and tokenises) the same in both.
    let ids: Vec<String> = room
        .objects
        .iter()
        .map(|o| format!("\"{}\"", o.id))
        .collect();
    let _ = writeln!(text, "Objects: [{}]", ids.join(", "));
    for o in &room.objects {
        let mut parts: Vec<String> = o
            .placement
            .room
            .iter()
            .map(|r| format!("{} {}", r.preposition.name(), r.element.name()))
            .collect();
        parts.extend(
            o.placement
                .objects
                .iter()
                .map(|r| format!("{} {}", r.preposition.name(), r.target)),
        );
        if let Some(f) = &o.facing {
            parts.push(format!("facing {f}"));
        }
        // Centimetres are enough, and float noise (0.47000000000000003) only costs tokens.
        let cm = |v: f64| (v * 100.0).round() / 100.0;
        let _ = writeln!(
            text,
            "{}: {} x {} x {}{}{}{}",
            o.id,
            cm(o.size.length),
            cm(o.size.width),
            cm(o.size.height),
            if o.on_floor { ", on the floor" } else { "" },
            if parts.is_empty() { "" } else { ", " },
            parts.join(", ")
        );
    }
    text
}

fn feedback_prompt(lines: &[String], parsed: bool, view: FeedbackView) -> String {
    let mut text = String::new();
    if parsed {
        text.push_str("This is a render of your layout.\n");
        if view == FeedbackView::Annotated {
            text.push_str(ANNOTATION_KEY);
            text.push('\n');
        }
    }
    if lines.is_empty() {
        text.push_str("No problems were found. Improve the layout if you can, keeping it free of collisions.\n");
    } else {
        text.push_str("Problems:\n");
        for l in lines {
            text.push_str("- ");
            text.push_str(l);
            text.push('\n');
        }
    }
    text.push_str("Answer again in the same format: <think>…</think> then <answer>[…]</answer> with every object.");
    text
}
