//! `metaspatial-rl bench-policy`: generation and log-prob throughput of a checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use metaspatial_policy::workload::Workload;

use crate::bench_policy::{
    PolicyBenchOptions, bench_policy, format_policy_report, write_random_3b,
};
use crate::config::DeviceChoice;

/// Arguments of `bench-policy`.
#[derive(Debug, Args)]
pub struct BenchPolicyArgs {
    /// The checkpoint to time (Hugging Face layout).
    #[arg(
        long,
        required_unless_present = "random_3b",
        conflicts_with = "random_3b"
    )]
    model: Option<PathBuf>,
    /// Time a checkpoint with Qwen2.5-VL-3B's sizes and random bf16 weights, written to this
    /// directory first unless it is there already (about 7.5 GB).
    #[arg(long, value_name = "DIR")]
    random_3b: Option<PathBuf>,
    /// Distinct prompts.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    prompts: u32,
    /// Samples per prompt (G).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    group: u32,
    /// Tokens per prompt, the image's included.
    #[arg(long, default_value_t = 1200)]
    prompt_tokens: usize,
    /// Side of each prompt's square image in pixels (a multiple of 28).
    #[arg(long, default_value_t = 448)]
    image_side: i64,
    /// New tokens per sample (nothing stops early).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(i64).range(1..))]
    new_tokens: i64,
    /// Timed repetitions of each pass, after a short warm-up.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// Sequences per forward pass of the log-prob pass.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    micro_batch: u32,
    /// Save the prompts (`input_ids`, `pixel_values`, `image_grid_thw`) as safetensors, the
    /// input of `policy/scripts/bench_transformers.py`.
    #[arg(long, value_name = "FILE")]
    save_inputs: Option<PathBuf>,
    /// `auto` (the first GPU when there is one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `bench-policy`.
pub fn run(args: &BenchPolicyArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let model = match (&args.model, &args.random_3b) {
        (Some(model), _) => model.clone(),
        (None, Some(dir)) => {
            write_random_3b(dir, device)?;
            dir.clone()
        }
        (None, None) => unreachable!("clap requires --model or --random-3b"),
    };
    let options = PolicyBenchOptions {
        workload: Workload {
            prompts: args.prompts as usize,
            group: args.group as usize,
            prompt_tokens: args.prompt_tokens,
            image_side: args.image_side,
            new_tokens: args.new_tokens,
            seed: 0,
        },
        repeats: args.repeats as usize,
        micro_batch: args.micro_batch as usize,
        device,
    };
    let report = bench_policy(&model, &options, args.save_inputs.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", format_policy_report(&report));
    }
    Ok(ExitCode::SUCCESS)
}
