//! Rewards for room layouts: the [`Reward`] trait, the built-in rewards, weighted composition
//! from RON, and reward plugins written in any language.
//!
//! A reward reads one scored response — the room, the response text, the parsed answer or its
//! format error, the environment's [`Assessment`](metaspatial_env::Assessment), the rendered
//! views with their object-id and depth buffers, the turn and the earlier turns' assessments —
//! from a [`RewardContext`] and returns a [`RewardOutcome`]: a value, named sub-components and
//! an optional note.
//!
//! A [`RewardSet`] is a weighted list of rewards read from RON ([`RewardsConfig`]); the total is
//! Σ weight·value and every component is kept for logging. A batch is scored in parallel: CPU
//! rewards on the rayon pool, I/O rewards (the judge, plugins) on their own threads so that
//! waiting on a process or a server never holds a CPU worker. A reward that fails (a plugin that
//! crashed, a judge that timed out) is marked failed with its configured fallback value and a
//! logged reason; the rest of the batch is unaffected.
//!
//! ```
//! use metaspatial_rewards::{Prepared, Registry, RewardSet};
//! # let room_json = include_str!("../tests/fixtures/bedroom.json");
//! let room = metaspatial_env::load_room(room_json, "bedroom.json").unwrap();
//! let set = RewardSet::from_ron(
//!     r#"(rewards: [(reward: "format", weight: 0.5), (reward: "object_set", weight: 0.5)])"#,
//!     "inline",
//!     &Registry::with_builtins(),
//! )
//! .unwrap();
//! let prepared = Prepared::new(&room, "<think>?</think><answer>[]</answer>", &Default::default());
//! let scored = set.score(&prepared.context(&room));
//! assert_eq!(scored.components.len(), 2);
//! ```

pub mod builtin;
mod compose;
mod config;
mod context;
pub mod plugin;
mod registry;
mod reward;

/// The environment crate, re-exported so that reward crates need one dependency.
pub use metaspatial_env as env;

pub use compose::{ComponentScore, RewardSet, Scored};
pub use config::{ConfigError, RewardSpec, RewardsConfig, config_dir, ron_options};
pub use context::{Prepared, RenderedView, RewardContext};
pub use registry::{BuildError, Factory, Params, Registry};
pub use reward::{Reward, RewardOutcome};
