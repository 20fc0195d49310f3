//! `metaspatial-rl bench`: time a config's GRPO steps and print the breakdown.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use metaspatial_policy::lora::LoraConfig;

use crate::bench::{BenchOptions, bench, format_report};
use crate::config::{Finetune, RunConfig};

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The run config, e.g. `configs/bench_qwen2_5_vl_3b.ron` (Qwen2.5-VL-3B sizes, random weights).
    config: PathBuf,
    /// Steps measured.
    #[arg(long, default_value_t = 3)]
    steps: u64,
    /// Steps run first and left out of the figures.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Override the config's fine-tuning mode (`lora` uses the config's adapters when it has
    /// them, else the defaults).
    #[arg(long, value_enum)]
    finetune: Option<FinetuneArg>,
    /// Keep the bench's run directory (rooms, tokenizer, metrics.jsonl) here; by default a
    /// temporary directory, removed afterwards.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Fine-tuning mode on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FinetuneArg {
    /// Every parameter.
    Full,
    /// `LoRA` adapters.
    Lora,
}

/// Runs `bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let mut config = RunConfig::from_file(&args.config)?;
    match (args.finetune, &config.model.finetune) {
        (Some(FinetuneArg::Full), _) => config.model.finetune = Finetune::Full,
        (Some(FinetuneArg::Lora), Finetune::Full) => {
            config.model.finetune = Finetune::Lora(LoraConfig::default());
        }
        _ => {}
    }
    let scratch;
    let out = if let Some(out) = &args.out {
        out.clone()
    } else {
        scratch = tempfile::Builder::new()
            .prefix("metaspatial-bench-")
            .tempdir()?;
        scratch.path().join("run")
    };
    let options = BenchOptions {
        warmup: args.warmup,
        steps: args.steps,
    };
    let report = bench(config.clone(), &out, options)?;
    // Rank 0 reports for the whole job.
    if crate::distributed::current().is_leader() {
        print!("{}", format_report(&report, &config));
    }
    Ok(ExitCode::SUCCESS)
}
