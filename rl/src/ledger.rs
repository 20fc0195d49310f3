//! The bookkeeping the supervised and GRPO loops share: the run's elapsed time over sessions,
//! one `metrics.jsonl` line per step, and a checkpoint every `checkpoint_every` steps, at the
//! last step, on Ctrl-C and where the caller stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::bail;
use metaspatial_replay::record::MetricsLine;

use crate::checkpoint::save_checkpoint;
use crate::distributed;
use crate::run::{INTERRUPTED, Learner};
use crate::rundir::{RunDir, TrainerState};

/// How a loop is checkpointed.
pub(crate) struct LedgerSettings {
    /// What a step is called in messages.
    pub stage: &'static str,
    /// The run's master seed.
    pub seed: u64,
    /// Rooms (or examples) each step consumes.
    pub per_step: u64,
    /// The loop's last step.
    pub steps: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
    /// The ranks train as one (GRPO): Ctrl-C on any rank stops them all, and rank 0 alone
    /// writes checkpoints. Otherwise (the supervised warm-start, which every rank runs alone
    /// in its own session root) this process decides for itself.
    pub across_ranks: bool,
}

/// A training loop's record keeping in one run directory.
pub(crate) struct Ledger<'a> {
    dir: &'a RunDir,
    settings: LedgerSettings,
    /// Seconds spent by earlier sessions.
    earlier: f64,
    started: Instant,
}

impl<'a> Ledger<'a> {
    /// Starts this session's bookkeeping in `dir`, after `earlier` seconds of earlier sessions.
    pub(crate) fn start(dir: &'a RunDir, settings: LedgerSettings, earlier: f64) -> Self {
        Self {
            dir,
            settings,
            earlier,
            started: Instant::now(),
        }
    }

    fn elapsed(&self) -> f64 {
        self.earlier + self.started.elapsed().as_secs_f64()
    }

    /// Appends `step`'s metrics line.
    pub(crate) fn log(&self, step: u64, values: BTreeMap<String, f64>) -> anyhow::Result<()> {
        self.dir.append_metrics(&MetricsLine {
            step,
            elapsed: self.elapsed(),
            values,
        })
    }

    /// Writes the checkpoint of `step`; `base_model` is the model adapters apply to.
    pub(crate) fn checkpoint(
        &self,
        step: u64,
        bad_steps_in_a_row: u32,
        base_model: Option<&Path>,
        learner: &Learner,
    ) -> anyhow::Result<PathBuf> {
        if self.settings.across_ranks && !distributed::current().is_leader() {
            return Ok(self.dir.checkpoint_dir(step));
        }
        let state = TrainerState {
            step,
            elapsed: self.elapsed(),
            seed: self.settings.seed,
            rooms_seen: step * self.settings.per_step,
            bad_steps_in_a_row,
            base_model: base_model.map(Path::to_path_buf),
        };
        save_checkpoint(
            self.dir,
            &state,
            self.settings.keep_checkpoints,
            &learner.policy,
            &learner.opt,
        )
    }

    /// Ends `step`: a checkpoint when one is due (or the caller stops here), and an error
    /// when Ctrl-C was pressed.
    pub(crate) fn end_step(
        &self,
        step: u64,
        stop_here: bool,
        checkpoint: impl FnOnce() -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<()> {
        let mut interrupted = INTERRUPTED.load(Ordering::SeqCst);
        if self.settings.across_ranks {
            interrupted = distributed::current().any(interrupted)?;
        }
        let s = &self.settings;
        if step == s.steps || step.is_multiple_of(s.checkpoint_every) || interrupted || stop_here {
            checkpoint()?;
        }
        if interrupted {
            bail!(
                "interrupted: checkpoint written at {} {step}; rerun with --resume",
                s.stage
            );
        }
        Ok(())
    }
}
