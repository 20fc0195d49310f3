//! Weighted composition: a [`RewardSet`] scores responses with every configured reward.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RewardsConfig, absolute_dir, config_dir};
use crate::{Params, Registry, Reward, RewardContext, RewardOutcome};

/// One configured reward.
struct Entry {
    label: String,
    kind: String,
    weight: f64,
    fallback: f64,
    reward: Box<dyn Reward>,
}

/// A weighted list of rewards.
pub struct RewardSet {
    entries: Vec<Entry>,
}

/// One component of a scored response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScore {
    /// Component name (the config's `name`, or the reward's).
    pub name: String,
    /// The reward it comes from.
    pub reward: String,
    /// Its weight.
    pub weight: f64,
    /// Its value (the fallback when it failed).
    pub value: f64,
    /// `weight · value`.
    pub weighted: f64,
    /// The reward's sub-components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, f64>,
    /// The reward's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The score of one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Σ weight·value.
    pub total: f64,
    /// Every component, in config order.
    pub components: Vec<ComponentScore>,
}

impl Scored {
    /// The component with this name.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&ComponentScore> {
        self.components.iter().find(|c| c.name == name)
    }
}

impl RewardSet {
    /// An empty set; add rewards with [`RewardSet::push`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds a reward with a weight and a fallback value, under its own name.
    pub fn push(&mut self, reward: Box<dyn Reward>, weight: f64, fallback: f64) {
        let label = reward.name().to_owned();
        self.push_named(&label, reward, weight, fallback);
    }

    /// Adds a reward under a component name.
    pub fn push_named(&mut self, label: &str, reward: Box<dyn Reward>, weight: f64, fallback: f64) {
        self.entries.push(Entry {
            label: label.to_owned(),
            kind: reward.name().to_owned(),
            weight,
            fallback,
            reward,
        });
    }

    /// Builds the set a config describes; relative paths in parameters are taken from
    /// `base_dir` (itself relative to the current directory, the empty path included).
    pub fn from_config(
        config: &RewardsConfig,
        origin: &str,
        base_dir: &Path,
        registry: &Registry,
    ) -> Result<Self, ConfigError> {
        // Absolute, because plugins run with it as their working directory: a relative one
        // would be taken twice, once by the working directory and once by the program path.
        let base_dir = &absolute_dir(base_dir).map_err(|source| ConfigError::Io {
            path: base_dir.display().to_string(),
            source,
        })?;
        let mut set = Self::new();
        let mut labels = HashSet::new();
        for (index, spec) in config.rewards.iter().enumerate() {
            let label = spec.label();
            let entry = |message: String| ConfigError::Entry {
                origin: origin.to_owned(),
                index,
                label: label.to_owned(),
                message,
            };
            if !labels.insert(label) {
                return Err(entry(format!(
                    "component name `{label}` is used twice; give one a `name`"
                )));
            }
            if !spec.weight.is_finite() || !spec.fallback.is_finite() {
                return Err(entry("weight and fallback must be finite numbers".into()));
            }
            let reward = registry
                .build(
                    &spec.reward,
                    &Params::new(spec.params.as_deref(), base_dir, label),
                )
                .map_err(|e| entry(e.to_string()))?;
            set.push_named(label, reward, spec.weight, spec.fallback);
        }
        Ok(set)
    }

    /// Parses a RON config and builds its set; relative paths are taken from the current
    /// directory.
    pub fn from_ron(text: &str, origin: &str, registry: &Registry) -> Result<Self, ConfigError> {
        Self::from_config(
            &RewardsConfig::parse(text, origin)?,
            origin,
            Path::new("."),
            registry,
        )
    }

    /// Reads a RON config file; relative paths in it are taken from its directory.
    pub fn from_file(path: &Path, registry: &Registry) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: origin.clone(),
            source,
        })?;
        let base = config_dir(path).map_err(|source| ConfigError::Io {
            path: origin.clone(),
            source,
        })?;
        Self::from_config(
            &RewardsConfig::parse(&text, &origin)?,
            &origin,
            &base,
            registry,
        )
    }

    /// The component names, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.label.as_str())
    }

    /// Scores one response (rewards one after the other on this thread).
    #[must_use]
    pub fn score(&self, ctx: &RewardContext<'_>) -> Scored {
        let outcomes = self.entries.iter().map(|e| e.reward.score(ctx)).collect();
        self.assemble(outcomes)
    }

    /// Scores a batch: CPU rewards in parallel on the rayon pool, each I/O reward concurrently
    /// on its own threads. Results are in batch order and do not depend on scheduling.
    #[must_use]
    pub fn score_batch(&self, batch: &[RewardContext<'_>]) -> Vec<Scored> {
        let io: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].reward.io_concurrency().is_some())
            .collect();
        let (cpu, io_results) = std::thread::scope(|s| {
            let handles: Vec<_> = io
                .iter()
                .map(|&i| {
                    let reward = &*self.entries[i].reward;
                    s.spawn(move || score_io(reward, batch))
                })
                .collect();
            let cpu: Vec<Vec<Option<RewardOutcome>>> = batch
                .par_iter()
                .map(|ctx| {
                    self.entries
                        .iter()
                        .map(|e| {
                            e.reward
                                .io_concurrency()
                                .is_none()
                                .then(|| e.reward.score(ctx))
                        })
                        .collect()
                })
                .collect();
            let io_results: Vec<Vec<RewardOutcome>> = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![RewardOutcome::failed("the reward panicked"); batch.len()]
                    })
                })
                .collect();
            (cpu, io_results)
        });
        let mut io_results: Vec<std::vec::IntoIter<RewardOutcome>> =
            io_results.into_iter().map(Vec::into_iter).collect();
        cpu.into_iter()
            .map(|row| {
                let outcomes = row
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| {
                        o.unwrap_or_else(|| {
                            let k = io.iter().position(|&j| j == i).unwrap_or_default();
                            io_results[k]
                                .next()
                                .unwrap_or_else(|| RewardOutcome::failed("no result"))
                        })
                    })
                    .collect();
                self.assemble(outcomes)
            })
            .collect()
    }

    /// Applies weights and fallbacks; logs failures.
    fn assemble(&self, outcomes: Vec<RewardOutcome>) -> Scored {
        let mut total = 0.0;
        let components = self
            .entries
            .iter()
            .zip(outcomes)
            .map(|(e, o)| {
                let failed = o.failure.or_else(|| (!o.value.is_finite()).then(|| format!("non-finite value {}", o.value)));
                let value = if let Some(reason) = &failed {
                    tracing::warn!(component = %e.label, fallback = e.fallback, "reward failed: {reason}");
                    e.fallback
                } else {
                    o.value
                };
                let weighted = e.weight * value;
                total += weighted;
                ComponentScore {
                    name: e.label.clone(),
                    reward: e.kind.clone(),
                    weight: e.weight,
                    value,
                    weighted,
                    components: o.components,
                    note: o.note,
                    failed,
                }
            })
            .collect();
        Scored { total, components }
    }
}

impl Default for RewardSet {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RewardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.label, &e.kind, e.weight)))
            .finish()
    }
}

/// Scores a batch with one I/O reward from its own small thread pool.
fn score_io(reward: &dyn Reward, batch: &[RewardContext<'_>]) -> Vec<RewardOutcome> {
    let threads = reward
        .io_concurrency()
        .unwrap_or(1)
        .clamp(1, batch.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<RewardOutcome>> = vec![None; batch.len()];
    let done: Vec<Vec<(usize, RewardOutcome)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(ctx) = batch.get(i) else { break };
                        out.push((i, reward.score(ctx)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, o) in done.into_iter().flatten() {
        results[i] = Some(o);
    }
    results
        .into_iter()
        .map(|o| o.unwrap_or_else(|| RewardOutcome::failed("the reward panicked")))
        .collect()
}
