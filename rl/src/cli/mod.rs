//! Command-line interface: argument parsing, logging set-up and dispatch to one module per
//! subcommand.

mod bench;
mod bench_policy;
mod data;
mod doctor;
mod eval;
mod generate;
mod render;
mod replay;
mod reward;
mod score;
mod train;
mod views;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use metaspatial_env::data::dataset::Split;
use tracing_subscriber::EnvFilter;

/// Post-train vision-language models with GRPO to lay out 3D rooms.
#[derive(Debug, Parser)]
#[command(name = "metaspatial-rl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(subcommand)]
    command: Command,
}

/// `-v` / `-q` flags, accepted by every subcommand.
#[derive(Debug, Args)]
struct Verbosity {
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (-q: warnings and errors only, -qq: errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train: prepare rooms and model, optional supervised warm-start, GRPO, evaluation.
    Run(train::RunArgs),
    /// Supervised warm-start on the reference layouts only (same run-directory format).
    Sft(train::SftArgs),
    /// Time a config's GRPO steps: step breakdown, tokens/s and peak memory.
    Bench(bench::BenchArgs),
    /// Time a checkpoint's generation and log-prob pass on a fixed workload, and its peak memory.
    BenchPolicy(bench_policy::BenchPolicyArgs),
    /// The layout metric table of a checkpoint on a dataset's rooms, with standard errors.
    Eval(eval::EvalArgs),
    /// Check the machine: libtorch, CUDA, wgpu adapters and a headless test frame.
    Doctor(doctor::DoctorArgs),
    /// Datasets: generate rooms, solve them, import MetaSpatial / IDesign data, baselines.
    Data(data::DataArgs),
    /// Assess one model response against one room (collisions, bounds, support, relations).
    Score(score::ScoreArgs),
    /// Print a checkpoint's response to a room's first-turn prompt or to a prompt file.
    Generate(generate::GenerateArgs),
    /// Author rewards: scaffold a plugin (`reward new`), score responses with a config (`reward test`).
    Reward(reward::RewardArgs),
    /// Draw a room, or a response's layout in it, to PNG (colour and optional object ids).
    Render(render::RenderArgs),
    /// Choose the views that see the most of a room (space-aware selection) and compare them
    /// with evenly spaced and fixed views.
    Views(views::ViewsArgs),
    /// Browse a run in a local web app (metrics, rollouts, renders, 3D, evals), or export it.
    Replay(replay::ReplayArgs),
}

/// Parses the command line, sets up logging and runs the subcommand.
#[must_use]
pub fn main() -> ExitCode {
    // Parsed first: `--help` and usage errors exit the process here, and would leave the
    // directory below behind.
    let cli = Cli::parse();
    // SAFETY: no other thread has started yet, so none reads the environment.
    let runtime_dir = unsafe { metaspatial_render::headless::quiet_display_probe() };
    init_logging(&cli.verbosity);
    match &runtime_dir {
        Ok(Some(dir)) => tracing::debug!(
            "XDG_RUNTIME_DIR was unset or relative: using {} so that graphics libraries stay quiet",
            dir.path().display()
        ),
        Ok(None) => {}
        Err(e) => tracing::info!(
            "no private XDG_RUNTIME_DIR ({e}): an `XDG_RUNTIME_DIR is invalid` line from the \
             graphics libraries is harmless"
        ),
    }
    let result = match cli.command {
        Command::Run(args) => train::run_command(&args),
        Command::Sft(args) => train::sft_command(&args),
        Command::Bench(args) => bench::run(&args),
        Command::BenchPolicy(args) => bench_policy::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Data(args) => data::run(&args),
        Command::Score(args) => score::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Reward(args) => reward::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Views(args) => views::run(&args),
        Command::Replay(args) => replay::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line: "what failed: why".
            eprintln!("error: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(USAGE_STATUS)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit status of a malformed command line, as clap gives it.
const USAGE_STATUS: u8 = 2;

/// A command line that clap accepts but that asks for something impossible (arguments that
/// contradict each other); exits with clap's status for usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// `--split`: a dataset split by name.
fn parse_split(name: &str) -> Result<Split, String> {
    Split::from_name(name).ok_or_else(|| "expected train, val or test".to_owned())
}

fn init_logging(verbosity: &Verbosity) {
    let default = match (verbosity.verbose, verbosity.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
