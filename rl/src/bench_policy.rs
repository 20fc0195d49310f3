//! `metaspatial-rl bench-policy`: generation and log-prob throughput of a checkpoint on a fixed
//! workload (prompts with one image, G samples each, no early stops), and the peak memory.
//!
//! `--random-3b DIR` writes a checkpoint with Qwen2.5-VL-3B's sizes and random weights once, in
//! Hugging Face layout, so that `policy/scripts/bench_transformers.py` times transformers'
//! `generate` on the same weights and, with `--save-inputs`, on the same prompts.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use metaspatial_policy::checkpoint::DEFAULT_SHARD_BYTES;
use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::workload::{Workload, completed, score_items};
use metaspatial_policy::{
    LoadOptions, Policy, SamplingParams, ScoreOptions, Weights, generate, score_no_grad,
};
use serde::Serialize;
use tch::{Device, Kind};

use crate::bench::{MemoryWatch, dtype_name, summary};

/// Rows of the log-softmax computed at once in the log-prob pass (as the trainer does).
const SCORE_CHUNK_TOKENS: i64 = 4096;

/// The seed of the random 3B checkpoint's weights.
const RANDOM_SEED: u64 = 0;

/// How to run the benchmark.
#[derive(Debug, Clone)]
pub struct PolicyBenchOptions {
    /// Prompts, samples, lengths.
    pub workload: Workload,
    /// Timed repetitions of generation and of the log-prob pass.
    pub repeats: usize,
    /// Sequences per log-prob forward pass.
    pub micro_batch: usize,
    /// Where the model runs.
    pub device: Device,
}

/// What `bench-policy` measured; times in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyBenchReport {
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Parameter dtype.
    pub dtype: String,
    /// Prompts × samples.
    pub sequences: usize,
    /// Tokens per prompt.
    pub prompt_tokens: usize,
    /// New tokens per sample.
    pub new_tokens: i64,
    /// Generation (prefill, decode and sampling) per repetition.
    pub generate_s: Vec<f64>,
    /// Median generated tokens per second.
    pub generated_tokens_per_s: f64,
    /// The log-prob pass over every prompt + response, per repetition.
    pub score_s: Vec<f64>,
    /// Median scored tokens (prompt + response) per second.
    pub scored_tokens_per_s: f64,
    /// Peak memory in bytes, when it could be measured.
    pub peak_memory_bytes: Option<u64>,
    /// What the peak memory is: device-wide GPU memory in use, or the process's resident set.
    pub peak_memory_measure: Option<&'static str>,
}

/// Writes a Qwen2.5-VL-3B-sized checkpoint with random bf16 weights to `dir`, unless `dir`
/// already holds weights.
pub fn write_random_3b(dir: &Path, device: Device) -> anyhow::Result<()> {
    let has_weights = ["model.safetensors", "model.safetensors.index.json"]
        .iter()
        .any(|name| dir.join(name).exists());
    if dir.join("config.json").exists() && has_weights {
        tracing::info!("reusing the random 3B checkpoint in {}", dir.display());
        return Ok(());
    }
    let files = tempfile::Builder::new()
        .prefix("metaspatial-random-3b-")
        .tempdir()?;
    let preset = RandomModel::qwen2_5_vl_3b();
    let corpus = vec![
        "place the bed against the north wall, the desk by the window".to_owned(),
        r#"[{"id": "bed_1", "x": 1.2, "y": 0.0, "z": 2.4, "rotation": 90}]"#.to_owned(),
    ];
    preset
        .write_files(files.path(), &corpus)
        .context("writing the random checkpoint's config and tokenizer")?;
    tracing::info!("drawing random weights for Qwen2.5-VL-3B's sizes");
    let policy = Policy::load(
        files.path(),
        &LoadOptions {
            device,
            kind: Some(Kind::BFloat16),
            weights: Weights::Random {
                seed: RANDOM_SEED,
                std: preset.init_std,
            },
            ..LoadOptions::default()
        },
    )?;
    let staging = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&staging);
    policy
        .export(&staging, Kind::BFloat16, DEFAULT_SHARD_BYTES)
        .with_context(|| format!("writing {}", staging.display()))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    std::fs::rename(&staging, dir).with_context(|| format!("moving into {}", dir.display()))?;
    tracing::info!("wrote the random 3B checkpoint to {}", dir.display());
    Ok(())
}

/// Loads `model`, times generation and the log-prob pass `options.repeats` times each (after a
/// short warm-up) and returns the figures; `save_inputs` receives the prompts.
pub fn bench_policy(
    model: &Path,
    options: &PolicyBenchOptions,
    save_inputs: Option<&Path>,
) -> anyhow::Result<PolicyBenchReport> {
    anyhow::ensure!(
        options.repeats > 0,
        "bench-policy: --repeats must be at least 1"
    );
    let watch = MemoryWatch::start(options.device);
    let policy = Policy::load(
        model,
        &LoadOptions {
            device: options.device,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("loading {}", model.display()))?;
    let workload = &options.workload;
    let prompts = workload.prompts(policy.model.config())?;
    if let Some(path) = save_inputs {
        Workload::save(&prompts, path)?;
    }
    let params = SamplingParams {
        max_new_tokens: workload.new_tokens,
        seed: workload.seed,
        ..SamplingParams::default()
    };
    let warmup = SamplingParams {
        max_new_tokens: workload.new_tokens.min(8),
        ..params.clone()
    };
    tracing::info!("warm-up");
    generate(&policy.model, &prompts, workload.group, &warmup)?;
    let mut generate_s = Vec::new();
    let mut completions = Vec::new();
    for repeat in 0..options.repeats {
        let started = Instant::now();
        completions = generate(&policy.model, &prompts, workload.group, &params)?;
        generate_s.push(started.elapsed().as_secs_f64());
        tracing::info!(
            "generation {}/{}: {:.2} s",
            repeat + 1,
            options.repeats,
            generate_s[repeat]
        );
    }
    let sequences = completed(&prompts, &completions);
    let items = score_items(&prompts, &completions, &sequences);
    let mut score_s = Vec::new();
    for repeat in 0..options.repeats {
        let started = Instant::now();
        let scores = score_no_grad(
            &policy.model,
            &items,
            options.micro_batch,
            &ScoreOptions::log_likelihood(SCORE_CHUNK_TOKENS),
        )?;
        // The figures must include the device's work: reading a value waits for it.
        let _ = scores.logprobs.sum(Kind::Float).double_value(&[]);
        score_s.push(started.elapsed().as_secs_f64());
        tracing::info!(
            "log-probs {}/{}: {:.2} s",
            repeat + 1,
            options.repeats,
            score_s[repeat]
        );
    }
    let peak = watch.finish();
    let generated: usize = completions.iter().map(|c| c.tokens.len()).sum();
    let scored: usize = sequences.iter().map(|s| s.tokens.len()).sum();
    Ok(PolicyBenchReport {
        device: match options.device {
            Device::Cuda(index) => format!("cuda:{index}"),
            other => format!("{other:?}").to_lowercase(),
        },
        dtype: dtype_name(policy.model.kind()),
        sequences: completions.len(),
        prompt_tokens: workload.prompt_tokens,
        new_tokens: workload.new_tokens,
        generated_tokens_per_s: generated as f64 / summary(&generate_s).0,
        scored_tokens_per_s: scored as f64 / summary(&score_s).0,
        generate_s,
        score_s,
        peak_memory_bytes: peak.map(|p| p.0),
        peak_memory_measure: peak.map(|p| p.1),
    })
}

/// The report as a table: medians (min–max) and throughputs.
#[must_use]
pub fn format_policy_report(report: &PolicyBenchReport) -> String {
    let mut out = String::new();
    let row = |out: &mut String, name: &str, values: &[f64]| {
        let (median, min, max) = summary(values);
        let _ = writeln!(out, "{name:<28} {median:>9.3} s   ({min:.3} – {max:.3})");
    };
    let _ = writeln!(
        out,
        "{} sequences × ({} prompt + {} new tokens), {} {}, {} repetitions",
        report.sequences,
        report.prompt_tokens,
        report.new_tokens,
        report.device,
        report.dtype,
        report.generate_s.len()
    );
    row(&mut out, "generation", &report.generate_s);
    let _ = writeln!(
        out,
        "{:<28} {:>9.0}",
        "generated tokens/s", report.generated_tokens_per_s
    );
    row(&mut out, "log-prob pass", &report.score_s);
    let _ = writeln!(
        out,
        "{:<28} {:>9.0}",
        "scored tokens/s", report.scored_tokens_per_s
    );
    match report.peak_memory_bytes.zip(report.peak_memory_measure) {
        Some((bytes, what)) => {
            let gib = bytes as f64 / f64::from(1_u32 << 30);
            let _ = writeln!(out, "{:<28} {gib:>9.2} GiB ({what})", "peak memory");
        }
        None => {
            let _ = writeln!(out, "{:<28} {:>9}", "peak memory", "unknown");
        }
    }
    out
}
