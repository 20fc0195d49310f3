//! The run directory on disk: resolved config, metrics, rollouts, evaluations and checkpoints.
//!
//! Files are written to a temporary name and renamed; a checkpoint is a directory written under
//! a temporary name and renamed whole, so a run killed at any instant (or a full disk) leaves
//! either the previous checkpoint or the new one, never a torn one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use metaspatial_env::data::dataset::write_atomic;
use metaspatial_replay::record::{EvalReport, MetricsLine, RolloutRecord, RunLayout, step_name};
use serde::{Deserialize, Serialize};

use crate::eval::PerRoom;

/// What a checkpoint needs besides weights and optimiser moments to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimiser steps done.
    pub step: u64,
    /// Wall-clock seconds spent so far, over every session of the run.
    pub elapsed: f64,
    /// The run's master seed. Sampling seeds, dropout and the data order derive from
    /// (seed, step), so together with `step` this is the whole random state.
    pub seed: u64,
    /// Training rooms consumed so far (the data cursor); the epoch and position follow.
    pub rooms_seen: u64,
    /// Non-finite losses in a row just before this checkpoint.
    pub bad_steps_in_a_row: u32,
    /// The checkpoint the adapters apply to (`LoRA` runs), or `None` when `model/` holds the
    /// full weights.
    pub base_model: Option<PathBuf>,
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    layout: RunLayout,
}

impl RunDir {
    /// Creates (or reopens) the directory.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        let layout = RunLayout::new(root);
        for dir in [
            layout.root().to_path_buf(),
            layout.rollouts(),
            layout.checkpoints(),
            layout.evals(),
        ] {
            fs::create_dir_all(&dir)
                .with_context(|| format!("creating the run directory {}", dir.display()))?;
        }
        Ok(Self { layout })
    }

    /// Creates (or reopens) a run's directory with `ron_text` as its resolved `config.ron`,
    /// written before anything else: a directory holding any part of a run then always holds
    /// the config `--resume` reads, and one killed earlier holds nothing that refuses a fresh
    /// start.
    pub fn create_with_config(root: &Path, ron_text: &str) -> anyhow::Result<Self> {
        fs::create_dir_all(root)
            .with_context(|| format!("creating the run directory {}", root.display()))?;
        write_atomic(&RunLayout::new(root).config(), ron_text.as_bytes())?;
        Self::create(root)
    }

    /// The directory itself.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where each of its files lies.
    #[must_use]
    pub fn layout(&self) -> &RunLayout {
        &self.layout
    }

    /// `metrics.jsonl`.
    #[must_use]
    pub fn metrics_path(&self) -> PathBuf {
        self.layout.metrics()
    }

    /// Appends one metrics line (flushed, so a follower sees it at once).
    pub fn append_metrics(&self, line: &MetricsLine) -> anyhow::Result<()> {
        let path = self.metrics_path();
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("appending to {}", path.display()))
    }

    /// Reads every complete metrics line (a partial last line, from a killed run, is skipped).
    pub fn read_metrics(&self) -> anyhow::Result<Vec<MetricsLine>> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = Vec::new();
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if !line.ends_with('\n') {
                break;
            }
            lines.push(
                serde_json::from_str(line)
                    .with_context(|| format!("{}: line {}", path.display(), i + 1))?,
            );
        }
        Ok(lines)
    }

    /// Drops metrics of steps after `step` (work lost when a run was killed after its last
    /// checkpoint), so that the resumed run appends its own.
    pub fn truncate_metrics(&self, step: u64) -> anyhow::Result<()> {
        let kept: Vec<MetricsLine> = self
            .read_metrics()?
            .into_iter()
            .filter(|m| m.step <= step)
            .collect();
        let mut text = String::new();
        for line in &kept {
            text.push_str(&serde_json::to_string(line)?);
            text.push('\n');
        }
        Ok(write_atomic(&self.metrics_path(), text.as_bytes())?)
    }

    /// The folder for step `step`'s rollout images, created.
    pub fn rollout_image_dir(&self, step: u64) -> anyhow::Result<PathBuf> {
        let dir = self.layout.rollout_images(step);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Writes step `step`'s rollouts.
    pub fn write_rollouts(&self, step: u64, records: &[RolloutRecord]) -> anyhow::Result<()> {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        Ok(write_atomic(
            &self.layout.rollout_file(step),
            text.as_bytes(),
        )?)
    }

    /// Writes an evaluation report.
    pub fn write_eval(&self, report: &EvalReport) -> anyhow::Result<()> {
        let path = self.layout.eval_file(report.step);
        Ok(write_atomic(
            &path,
            serde_json::to_string_pretty(report)?.as_bytes(),
        )?)
    }

    /// Writes the per-room headline values of an evaluation (beside the report, in
    /// `eval/per-room/`).
    pub fn write_per_room(&self, step: u64, values: &PerRoom) -> anyhow::Result<()> {
        let dir = self.layout.per_room();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = self.layout.per_room_file(step);
        Ok(write_atomic(
            &path,
            serde_json::to_string(values)?.as_bytes(),
        )?)
    }

    /// Whether the evaluation of `step` is complete (its per-room values are written last).
    #[must_use]
    pub fn has_eval(&self, step: u64) -> bool {
        self.layout.per_room_file(step).exists()
    }

    /// Reads an evaluation report and its per-room values.
    pub fn read_eval(&self, step: u64) -> anyhow::Result<(EvalReport, PerRoom)> {
        let read = |path: PathBuf| -> anyhow::Result<String> {
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let report_path = self.layout.eval_file(step);
        let per_room_path = self.layout.per_room_file(step);
        let report = serde_json::from_str(&read(report_path.clone())?)
            .with_context(|| format!("parsing {}", report_path.display()))?;
        let per_room = serde_json::from_str(&read(per_room_path.clone())?)
            .with_context(|| format!("parsing {}", per_room_path.display()))?;
        Ok((report, per_room))
    }

    /// The checkpoint directory of `step`.
    #[must_use]
    pub fn checkpoint_dir(&self, step: u64) -> PathBuf {
        self.layout.checkpoint(step)
    }

    /// Writes a checkpoint: `fill` writes the files into a temporary directory, which is then
    /// renamed into place; older checkpoints beyond `keep` are removed afterwards.
    pub fn write_checkpoint(
        &self,
        state: &TrainerState,
        keep: usize,
        fill: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<PathBuf> {
        let dir = self.checkpoint_dir(state.step);
        let checkpoints = self.layout.checkpoints();
        // Hidden entries are checkpoints half written or half removed by a killed session.
        for entry in fs::read_dir(&checkpoints)
            .with_context(|| format!("listing {}", checkpoints.display()))?
        {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        let tmp = checkpoints.join(format!(".{}.tmp", step_name(state.step)));
        fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let result = fill(&tmp).and_then(|()| {
            write_atomic(
                &tmp.join("trainer_state.json"),
                serde_json::to_string_pretty(state)?.as_bytes(),
            )?;
            if dir.exists() {
                self.discard(state.step)?;
            }
            fs::rename(&tmp, &dir).with_context(|| format!("renaming into {}", dir.display()))
        });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e.context(format!("writing checkpoint {}", dir.display())));
        }
        let mut steps = self.checkpoint_steps()?;
        steps.sort_unstable();
        while steps.len() > keep.max(1) {
            self.discard(steps.remove(0))?;
        }
        Ok(dir)
    }

    /// Removes the checkpoint of `step`. It is renamed out of the listing first, so a kill
    /// during the removal leaves a hidden remnant (cleared by the next write), never a step
    /// directory with some of its files gone.
    fn discard(&self, step: u64) -> anyhow::Result<()> {
        let dir = self.checkpoint_dir(step);
        let doomed = self
            .layout
            .checkpoints()
            .join(format!(".{}.old", step_name(step)));
        fs::rename(&dir, &doomed).with_context(|| format!("removing {}", dir.display()))?;
        fs::remove_dir_all(&doomed).with_context(|| format!("removing {}", doomed.display()))
    }

    /// Steps of the complete checkpoints present.
    pub fn checkpoint_steps(&self) -> anyhow::Result<Vec<u64>> {
        let dir = self.layout.checkpoints();
        let mut steps = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok())
                && self
                    .checkpoint_dir(step)
                    .join("trainer_state.json")
                    .exists()
            {
                steps.push(step);
            }
        }
        Ok(steps)
    }

    /// The newest complete checkpoint and its state.
    pub fn latest_checkpoint(&self) -> anyhow::Result<Option<(PathBuf, TrainerState)>> {
        let Some(step) = self.checkpoint_steps()?.into_iter().max() else {
            return Ok(None);
        };
        let dir = self.checkpoint_dir(step);
        Ok(Some((dir.clone(), read_state(&dir)?)))
    }
}

/// Reads a checkpoint's `trainer_state.json`.
pub fn read_state(checkpoint: &Path) -> anyhow::Result<TrainerState> {
    let path = checkpoint.join("trainer_state.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Refuses to start a fresh run over an existing one.
pub fn ensure_fresh(root: &Path) -> anyhow::Result<()> {
    let layout = RunLayout::new(root);
    if layout.metrics().exists() || layout.checkpoints().exists() {
        bail!(
            "{} already holds a run; pass --resume to continue it, or choose another --out",
            root.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn state(step: u64) -> TrainerState {
        TrainerState {
            step,
            elapsed: 1.0,
            seed: 7,
            rooms_seen: step * 4,
            bad_steps_in_a_row: 0,
            base_model: None,
        }
    }

    #[test]
    fn checkpoints_are_whole_or_absent_and_old_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path()).unwrap();
        for step in [1, 2, 3] {
            run.write_checkpoint(&state(step), 2, |dir| {
                fs::write(dir.join("weights"), b"w").map_err(Into::into)
            })
            .unwrap();
        }
        assert_eq!(
            {
                let mut s = run.checkpoint_steps().unwrap();
                s.sort_unstable();
                s
            },
            vec![2, 3]
        );
        let failed = run.write_checkpoint(&state(4), 2, |_| bail!("disk full"));
        assert!(failed.unwrap_err().to_string().contains("step-000004"));
        let (dir, latest) = run.latest_checkpoint().unwrap().unwrap();
        assert_eq!(latest.step, 3);
        assert!(dir.join("weights").exists());
        assert!(!tmp.path().join("checkpoints/.step-000004.tmp").exists());

        // What a session killed while writing or rotating leaves is cleared by the next write.
        for remnant in [".step-000002.old", ".step-000005.tmp"] {
            let dir = tmp.path().join("checkpoints").join(remnant);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("trainer_state.json"), b"{").unwrap();
        }
        run.write_checkpoint(&state(5), 2, |_| Ok(())).unwrap();
        let mut left: Vec<String> = fs::read_dir(tmp.path().join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort_unstable();
        assert_eq!(left, ["step-000003", "step-000005"]);
    }

    #[test]
    fn metrics_after_the_checkpoint_are_dropped_on_resume_and_partial_lines_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path()).unwrap();
        for step in 1..=3 {
            run.append_metrics(&MetricsLine {
                step,
                elapsed: 0.0,
                values: BTreeMap::from([("loss".to_owned(), step as f64)]),
            })
            .unwrap();
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(run.metrics_path())
            .unwrap();
        file.write_all(b"{\"step\": 4, \"ela").unwrap();
        assert_eq!(run.read_metrics().unwrap().len(), 3);
        run.truncate_metrics(2).unwrap();
        let kept = run.read_metrics().unwrap();
        assert_eq!(kept.iter().map(|m| m.step).collect::<Vec<_>>(), vec![1, 2]);
    }
}
