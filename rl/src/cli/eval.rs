//! `metaspatial-rl eval`: the layout metric table of a checkpoint on a dataset's rooms.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressBar;
use metaspatial_env::data::dataset::{Dataset, Split};
use metaspatial_replay::record::RunLayout;

use super::parse_split;
use crate::checkpoint::load_for_eval;
use crate::config::{DeviceChoice, Finetune, RunConfig};
use crate::eval::{PerRoom, evaluate, format_table, report};
use crate::rollout::RenderAndRewards;

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run checkpoint (`runs/<name>/checkpoints/step-N`) or a model directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset directory holding the rooms.
    #[arg(long)]
    rooms: PathBuf,
    /// The split evaluated: train, val or test.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    split: Split,
    /// Evaluate only the first N rooms of the split.
    #[arg(long)]
    limit: Option<usize>,
    /// Run config giving rewards, views, turns and sampling; by default the config of the run
    /// the checkpoint belongs to.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write each room's final valid-scene flag and reward to this JSON file, for paired
    /// comparisons between checkpoints or settings evaluated on the same rooms.
    #[arg(long, value_name = "FILE")]
    per_room: Option<PathBuf>,
    /// `auto` (the first GPU when there is one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// The config of the run a checkpoint directory sits in (`<run>/checkpoints/step-N`).
fn run_config_of(checkpoint: &Path) -> Option<PathBuf> {
    let run = checkpoint.parent()?.parent()?;
    let path = RunLayout::new(run).config();
    path.exists().then_some(path)
}

/// Says so when the checkpoint does not exist, rather than failing on a file inside it.
fn check_checkpoint(checkpoint: &Path) -> anyhow::Result<()> {
    if !checkpoint.is_dir() {
        bail!(
            "--checkpoint {}: no such checkpoint directory",
            checkpoint.display()
        );
    }
    Ok(())
}

/// Runs `eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let Some(config_path) = args
        .config
        .clone()
        .or_else(|| run_config_of(&args.checkpoint))
    else {
        check_checkpoint(&args.checkpoint)?;
        bail!(
            "{} is not inside a run directory; pass --config with the rewards and settings to use",
            args.checkpoint.display()
        );
    };
    let config = RunConfig::from_file(&config_path)?;
    let split = args.split;
    let data = Dataset::open(&args.rooms)?;
    let rooms = data.split(split);
    let rooms = &rooms[..args.limit.unwrap_or(rooms.len()).min(rooms.len())];
    if rooms.is_empty() {
        bail!(
            "{}: the {} split has no rooms",
            args.rooms.display(),
            split.name()
        );
    }
    let lora = match &config.model.finetune {
        Finetune::Lora(l) => Some(l),
        Finetune::Full => None,
    };
    check_checkpoint(&args.checkpoint)?;
    let policy = load_for_eval(&args.checkpoint, args.device.device()?, lora)?;
    let scoring = RenderAndRewards::for_evaluation(&config, &config_path.display().to_string())?;
    let bar = ProgressBar::new(0);
    let outcomes = evaluate(&policy, &scoring, rooms, 0, &config, &bar)?;
    bar.finish_and_clear();
    let source = format!("{} ({} split)", args.rooms.display(), split.name());
    let step = crate::rundir::read_state(&args.checkpoint).map_or(0, |s| s.step);
    let table = report(step, &source, rooms, &outcomes, config.eval.max_turns);
    if let Some(path) = &args.per_room {
        let per_room = serde_json::to_string(&PerRoom::from_outcomes(&outcomes))?;
        std::fs::write(path, per_room)
            .with_context(|| format!("--per-room: writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        println!("{} rooms of {source}", rooms.len());
        print!("{}", format_table(&[("checkpoint", &table)]));
    }
    Ok(ExitCode::SUCCESS)
}
