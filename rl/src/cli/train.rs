//! `metaspatial-rl run` and `metaspatial-rl sft`: train from a RON config into a run directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use clap::Args;
use metaspatial_replay::record::RunLayout;

use crate::config::RunConfig;
use crate::eval::format_comparison;
use crate::run::{INTERRUPTED, RunOptions, run, run_sft};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run config (RON; fields documented in configs/README.md).
    config: PathBuf,
    /// Run directory; by default `runs/<config file stem>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in `--out` from its newest checkpoint (the config is read from there).
    #[arg(long)]
    resume: bool,
    /// Stop after this step with a checkpoint, as if interrupted there.
    #[arg(long, hide = true)]
    stop_after: Option<u64>,
}

/// Arguments of `sft`.
#[derive(Debug, Args)]
pub struct SftArgs {
    /// The run config; its `sft` section says how long and how fast.
    config: PathBuf,
    /// Output directory (same format as a run); by default `runs/<config file stem>-sft`.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn default_out(config: &Path, suffix: &str) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(format!("{stem}{suffix}"))
}

/// Ctrl-C asks the run to checkpoint and stop at the end of its step; a second Ctrl-C kills.
fn install_interrupt() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step, writing a checkpoint (Ctrl-C again to kill)");
    })
    .context("installing the Ctrl-C handler")
}

/// Runs `run`.
pub fn run_command(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.config, ""));
    let saved = RunLayout::new(&out).config();
    let config = if args.resume && saved.exists() {
        RunConfig::from_file(&saved)?
    } else {
        RunConfig::from_file(&args.config)?
    };
    install_interrupt()?;
    let comparison = run(
        config,
        &RunOptions {
            out: out.clone(),
            resume: args.resume,
            stop_after: args.stop_after,
        },
    )?;
    match comparison {
        // Rank 0 reports for the whole job.
        _ if !crate::distributed::current().is_leader() => {}
        Some(c) => print!("{}", format_comparison(&c, &out)),
        None => println!(
            "stopped with a checkpoint; continue with: metaspatial-rl run {} --out {} --resume",
            args.config.display(),
            out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `sft`.
pub fn sft_command(args: &SftArgs) -> anyhow::Result<ExitCode> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.config, "-sft"));
    let config = RunConfig::from_file(&args.config)?;
    install_interrupt()?;
    let model = run_sft(config, &out)?;
    println!("supervised model: {}", model.display());
    Ok(ExitCode::SUCCESS)
}
