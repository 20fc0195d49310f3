//! The [`Reward`] trait and what a reward returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::RewardContext;

/// A reward: turns one scored response into a value.
///
/// Implementations must be cheap to share between threads: a batch calls `score` from several
/// threads at once.
pub trait Reward: Send + Sync {
    /// The reward's name, as written in reward configs (e.g. `collision`).
    fn name(&self) -> &str;

    /// Scores one response. Never panics on model output; a reward that cannot produce a value
    /// returns [`RewardOutcome::failed`].
    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome;

    /// `Some(n)` for rewards that wait on I/O (a process, a server): a batch then calls them
    /// from `n` dedicated threads instead of the CPU pool. `None` (the default) for CPU work.
    fn io_concurrency(&self) -> Option<usize> {
        None
    }
}

/// What a reward returns for one response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardOutcome {
    /// The reward's value (higher is better).
    pub value: f64,
    /// Named sub-components, for logging and inspection.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, f64>,
    /// A remark worth logging (why the value is what it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why no value could be computed; the composition then uses the configured fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl RewardOutcome {
    /// An outcome with this value and nothing else.
    #[must_use]
    pub fn new(value: f64) -> Self {
        Self {
            value,
            ..Self::default()
        }
    }

    /// A failed outcome: no value, and why.
    #[must_use]
    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            failure: Some(reason.into()),
            ..Self::default()
        }
    }

    /// Adds a named sub-component.
    #[must_use]
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.components.insert(name.to_owned(), value);
        self
    }

    /// Sets the note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Sets the note when there is one.
    #[must_use]
    pub fn with_note_if(mut self, note: Option<impl Into<String>>) -> Self {
        self.note = note.map(Into::into).or(self.note);
        self
    }
}
