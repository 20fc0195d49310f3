//! Reward configs in RON: which rewards, with which weights and parameters.
//!
//! ```ron
//! (
//!     rewards: [
//!         (reward: "format", weight: 0.2),
//!         (reward: "relations", weight: 0.5, params: (distance_scale: 0.2)),
//!         (reward: "plugin", name: "tidy", weight: 0.3, fallback: 0.0,
//!          params: (command: ["python3", "tidy.py"], timeout_s: 2.0)),
//!     ],
//! )
//! ```

use std::path::{Path, PathBuf};

use ron::value::RawValue;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A reward config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardsConfig {
    /// The weighted rewards; the total is Σ weight·value.
    pub rewards: Vec<RewardSpec>,
}

/// One weighted reward of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    /// Registered reward name (`format`, `collision`, `plugin`, …).
    pub reward: String,
    /// Component name in logs; defaults to `reward`. Must be unique within a config.
    #[serde(default)]
    pub name: Option<String>,
    /// Weight in the total.
    pub weight: f64,
    /// Value used when the reward fails (a plugin crashed, the judge timed out).
    #[serde(default)]
    pub fallback: f64,
    /// The reward's own parameters, kept as written: each reward reads them into its own type
    /// with the same RON options as the config (see [`Params::parse`](crate::Params::parse)).
    #[serde(default)]
    pub params: Option<Box<RawValue>>,
}

impl RewardSpec {
    /// The component name: `name`, or the reward's name.
    #[must_use]
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.reward)
    }
}

/// A reward config that cannot be used; names the file and the entry.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not a valid config.
    #[error("{origin}: {message}")]
    Syntax {
        /// The config's file name or description.
        origin: String,
        /// RON's description, with its line and column.
        message: String,
    },
    /// One entry cannot be built.
    #[error("{origin}: reward {index} (`{label}`): {message}")]
    Entry {
        /// The config's file name or description.
        origin: String,
        /// 0-based index in `rewards`.
        index: usize,
        /// The entry's component name.
        label: String,
        /// What is wrong.
        message: String,
    },
    /// The config file cannot be read.
    // The io error is the source, so one-line reports (`{:#}`) print it once.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl RewardsConfig {
    /// Parses a config; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        ron_options()
            .from_str(text)
            .map_err(|e| ConfigError::Syntax {
                origin: origin.to_owned(),
                message: e.to_string(),
            })
    }
}

/// The RON options of every config, reward parameters included.
#[must_use]
pub fn ron_options() -> ron::Options {
    // Implicit `Some` lets `name: "x"`, `params: (…)` and optional fields inside `params` be
    // written without `Some(…)`.
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// The absolute directory of the config file `path`, which its relative paths are taken from.
/// A bare file name (`rewards.ron`) lives in the current directory.
pub fn config_dir(path: &Path) -> std::io::Result<PathBuf> {
    absolute_dir(path.parent().unwrap_or(Path::new("")))
}

/// `dir` made absolute against the current directory; the empty path is the current directory.
pub(crate) fn absolute_dir(dir: &Path) -> std::io::Result<PathBuf> {
    if dir.as_os_str().is_empty() {
        std::env::current_dir()
    } else {
        std::path::absolute(dir)
    }
}
