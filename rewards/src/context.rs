//! What a reward sees: [`RewardContext`].

use std::path::PathBuf;

use metaspatial_env::answer::{AnswerError, ParsedAnswer};
use metaspatial_env::{AssessConfig, Assessment, Room, assess_answer};
use metaspatial_render::{Frame, ObjectVisibility};

/// One rendered view of the layout being scored, drawn by the caller.
#[derive(Debug, Clone)]
pub struct RenderedView {
    /// The view's name (`perspective`, `top`, …); rewards select views by it.
    pub name: String,
    /// Colour, object-id and depth buffers.
    pub frame: Frame,
    /// Per-object visible and covered pixels, when the caller measured them
    /// (`Renderer::visibility`).
    pub visibility: Option<Vec<ObjectVisibility>>,
    /// Where the colour image is saved, when it is; plugins receive this path.
    pub path: Option<PathBuf>,
}

/// Everything a reward may look at for one response.
#[derive(Debug, Clone, Copy)]
pub struct RewardContext<'a> {
    /// The room.
    pub room: &'a Room,
    /// The model's response as written.
    pub response: &'a str,
    /// The parsed answer, or why none could be read.
    pub answer: Result<&'a ParsedAnswer, &'a AnswerError>,
    /// The environment's assessment of the response.
    pub assessment: &'a Assessment,
    /// Rendered views of the layout (empty when nothing was rendered).
    pub views: &'a [RenderedView],
    /// 1-based turn of a multi-turn episode.
    pub turn: usize,
    /// Assessments of the earlier turns of the episode, oldest first.
    pub previous: &'a [Assessment],
}

impl<'a> RewardContext<'a> {
    /// A first-turn context without rendered views.
    #[must_use]
    pub fn new(
        room: &'a Room,
        response: &'a str,
        answer: &'a Result<ParsedAnswer, AnswerError>,
        assessment: &'a Assessment,
    ) -> Self {
        Self {
            room,
            response,
            answer: answer.as_ref(),
            assessment,
            views: &[],
            turn: 1,
            previous: &[],
        }
    }

    /// The same context with these rendered views.
    #[must_use]
    pub fn with_views(self, views: &'a [RenderedView]) -> Self {
        Self { views, ..self }
    }

    /// The same context at this 1-based turn, after these earlier assessments (oldest first).
    #[must_use]
    pub fn with_history(self, turn: usize, previous: &'a [Assessment]) -> Self {
        Self {
            turn,
            previous,
            ..self
        }
    }

    /// The view with this name, or the first view when `name` is `None`.
    #[must_use]
    pub fn view(&self, name: Option<&str>) -> Option<&'a RenderedView> {
        match name {
            Some(n) => self.views.iter().find(|v| v.name == n),
            None => self.views.first(),
        }
    }
}

/// A response parsed and assessed once, ready to build [`RewardContext`]s from.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The response text.
    pub response: String,
    /// The parsed answer, or why none could be read.
    pub answer: Result<ParsedAnswer, AnswerError>,
    /// The assessment.
    pub assessment: Assessment,
}

impl Prepared {
    /// Parses and assesses `response` in `room` (the answer is parsed once).
    #[must_use]
    pub fn new(room: &Room, response: &str, cfg: &AssessConfig) -> Self {
        let answer = metaspatial_env::answer::parse(response);
        let assessment = assess_answer(room, &answer, cfg);
        Self {
            response: response.to_owned(),
            answer,
            assessment,
        }
    }

    /// A first-turn context for `room` (the room this was prepared with).
    #[must_use]
    pub fn context<'a>(&'a self, room: &'a Room) -> RewardContext<'a> {
        RewardContext::new(room, &self.response, &self.answer, &self.assessment)
    }
}
