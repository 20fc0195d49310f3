//! `metaspatial-rl bench`: the time and memory of a config's GRPO steps — rollouts, scoring and
//! the update, as `run` does them — without the warm-start or the evaluations. With
//! `model.source: RandomQwen2_5Vl3b` it measures the real 3B model's cost with random weights.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use metaspatial_policy::device::GpuMemory;
use metaspatial_policy::lora::LoraConfig;
use metaspatial_replay::record::MetricsLine;

use crate::config::{Finetune, RunConfig};
use crate::distributed;
use crate::eval::median;
use crate::progress::bar_style;
use crate::run::Session;
use crate::rundir::ensure_fresh;

/// How many steps to time.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Steps run first and left out of the figures (allocator and kernel warm-up).
    pub warmup: u64,
    /// Steps measured.
    pub steps: u64,
}

/// What `bench` measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The number of ranks (processes) that ran the steps together.
    pub world: usize,
    /// Where the model ran.
    pub device: tch::Device,
    /// Trainable parameters.
    pub trainable: i64,
    /// Every measured step's logged scalars (as in `metrics.jsonl`).
    pub steps: Vec<BTreeMap<String, f64>>,
    /// The largest memory footprint seen, and what was measured.
    pub peak_memory: Option<(u64, &'static str)>,
    /// What f32 master copies cost on this model.
    pub master_copies: MasterCopyCost,
}

/// What keeping the trainable values in f32 costs on one model, for both ways of fine-tuning
/// it, from parameter counts: `LoRA` adapters are f32 themselves, full fine-tuning keeps an f32
/// master of every weight beside the compute weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterCopyCost {
    /// The dtype of the model's weights.
    pub weight_kind: tch::Kind,
    /// Parameters of the base model.
    pub base_parameters: i64,
    /// Adapter parameters under the run's `LoRA` config (the default one for full runs).
    pub adapter_parameters: i64,
}

impl MasterCopyCost {
    fn weight_bytes(&self) -> i64 {
        self.weight_kind.elt_size_in_bytes() as i64
    }

    /// Bytes of the f32 adapters.
    #[must_use]
    pub fn lora_bytes(&self) -> i64 {
        4 * self.adapter_parameters
    }

    /// Bytes the f32 adapters take beyond adapters in the weights' dtype.
    #[must_use]
    pub fn lora_extra_bytes(&self) -> i64 {
        (4 - self.weight_bytes()).max(0) * self.adapter_parameters
    }

    /// Bytes of full fine-tuning's masters (none when the weights are f32 already).
    #[must_use]
    pub fn full_bytes(&self) -> i64 {
        if self.weight_bytes() < 4 {
            4 * self.base_parameters
        } else {
            0
        }
    }

    /// One line per way of fine-tuning.
    #[must_use]
    pub fn describe(&self) -> String {
        let gib = |bytes: i64| bytes as f64 / f64::from(1u32 << 30);
        let dtype = dtype_name(self.weight_kind);
        let full = if self.full_bytes() > 0 {
            format!(
                "{} f32 masters = {:.3} GiB beside the {dtype} weights",
                self.base_parameters,
                gib(self.full_bytes())
            )
        } else {
            format!("none, the {} weights are {dtype}", self.base_parameters)
        };
        format!(
            "f32 master copies ({dtype} weights):\n  LoRA: {} adapter parameters in f32 = {:.3} GiB \
             ({:.3} GiB more than in {dtype})\n  full fine-tuning: {full}\n",
            self.adapter_parameters,
            gib(self.lora_bytes()),
            gib(self.lora_extra_bytes()),
        )
    }
}

/// The short name of a parameter dtype (`bf16`, `f16`, `f32`).
pub(crate) fn dtype_name(kind: tch::Kind) -> String {
    match kind {
        tch::Kind::BFloat16 => "bf16".to_owned(),
        tch::Kind::Half => "f16".to_owned(),
        tch::Kind::Float => "f32".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Runs `options.warmup + options.steps` GRPO steps of `config` in the run directory `out`
/// (which must be new or empty) and reports the measured ones. Every sampled sequence is
/// trained, whatever its reward: an untrained model scores every answer alike, and a run would
/// drop every group and time an update that does nothing.
pub fn bench(
    mut config: RunConfig,
    out: &Path,
    options: BenchOptions,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(options.steps > 0, "bench: --steps must be at least 1");
    let ranks = distributed::join(&config)?;
    ranks.agree(
        "checking the bench directory",
        if ranks.is_leader() {
            ensure_fresh(out)
        } else {
            Ok(())
        },
    )?;
    ranks.ensure_same("the bench config", config.to_ron()?.as_bytes())?;
    let (root, _scratch) = ranks.session_root(out)?;
    config.algorithm.drop_zero_variance_groups = false;
    config.algorithm.mask_truncated = false;
    let lora = match &config.model.finetune {
        Finetune::Lora(lora) => lora.clone(),
        Finetune::Full => LoraConfig::default(),
    };
    let session = ranks.agree("opening the bench", Session::open(config, &root))?;
    let start = ranks.agree("preparing the model", session.prepare_model())?;
    let watch = MemoryWatch::start(session.device);
    let mut learner = ranks.agree("loading the policy", session.learner(&start, None))?;
    ranks.broadcast_from_leader(learner.parameters())?;
    let trainable = learner.opt.numel();
    let policy = &learner.policy;
    let master_copies = MasterCopyCost {
        weight_kind: policy.model.kind(),
        base_parameters: policy
            .var_store()
            .variables()
            .values()
            .map(|t| t.numel() as i64)
            .sum(),
        adapter_parameters: lora.parameter_count(policy.model.config()),
    };
    let total = options.warmup + options.steps;
    let steps_bar = session.progress.add(ProgressBar::new(total));
    steps_bar.set_style(bar_style(
        "bench [{bar:30}] {pos}/{len} steps  {msg}  {elapsed_precise} (eta {eta})",
    ));
    let rollout_bar = session.progress.add(ProgressBar::new(0));
    rollout_bar.set_style(bar_style("      [{bar:30}] {pos}/{len} answers"));
    let mut measured = Vec::new();
    let started = Instant::now();
    for step in 1..=total {
        let outcome = session.grpo_step(&mut learner, step, None, &rollout_bar)?;
        let trained = outcome.values.get("trained_sequences").copied();
        anyhow::ensure!(
            trained.is_some_and(|n| n > 0.0),
            "bench: step {step} has nothing to train: every sampled response is empty (the model \
             stopped at once), so there is no update to time"
        );
        session.dir.append_metrics(&MetricsLine {
            step,
            elapsed: started.elapsed().as_secs_f64(),
            values: outcome.values.clone(),
        })?;
        steps_bar.set_message(if step <= options.warmup {
            "warm-up".to_owned()
        } else {
            format!(
                "{:.0} tokens/s",
                outcome.values.get("tokens_per_s").copied().unwrap_or(0.0)
            )
        });
        steps_bar.inc(1);
        if step > options.warmup {
            measured.push(outcome.values);
        }
    }
    steps_bar.finish_and_clear();
    rollout_bar.finish_and_clear();
    Ok(BenchReport {
        world: ranks.world(),
        device: session.device,
        trainable,
        steps: measured,
        peak_memory: watch.finish(),
        master_copies,
    })
}

/// The report as a table of medians (and the range over steps).
#[must_use]
pub fn format_report(report: &BenchReport, config: &RunConfig) -> String {
    let column = |name: &str| -> Vec<f64> {
        report
            .steps
            .iter()
            .map(|s| s.get(name).copied().unwrap_or(0.0))
            .collect()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GRPO steps on {:?} × {} rank(s): {} trainable parameters, G = {}, {} rooms per step, up \
         to {} turns, {} measured steps",
        report.device,
        report.world,
        report.trainable,
        config.algorithm.group_size,
        config.algorithm.rooms_per_step,
        config.env.max_turns,
        report.steps.len()
    );
    let _ = writeln!(out, "{:<44}{:>12}{:>12}{:>12}", "", "median", "min", "max");
    let mut row = |label: &str, values: &[f64], scale: f64, digits: usize| {
        let (median, min, max) = summary(values);
        let _ = writeln!(
            out,
            "{label:<44}{:>12.digits$}{:>12.digits$}{:>12.digits$}",
            median * scale,
            min * scale,
            max * scale
        );
    };
    for (label, metric, digits) in ROWS {
        row(label, &column(metric), 1.0, digits);
        let share_label = match metric {
            "time/waiting" => "  scoring not hidden, share of step (%)",
            "time/communicate" => "  communication, share of step (%)",
            _ => continue,
        };
        let share: Vec<f64> = column(metric)
            .iter()
            .zip(column("time/step"))
            .map(|(w, s)| w / s)
            .collect();
        row(share_label, &share, 100.0, 2);
    }
    match report.peak_memory {
        Some((bytes, what)) => {
            let _ = writeln!(
                out,
                "peak memory: {:.2} GiB ({what})",
                bytes as f64 / f64::from(1u32 << 30)
            );
        }
        None => out.push_str("peak memory: not measurable here\n"),
    }
    out.push_str(&report.master_copies.describe());
    out
}

/// The table's rows: label, metric of `metrics.jsonl`, decimals.
const ROWS: [(&str, &str, usize); 13] = [
    ("step (s)", "time/step", 2),
    ("  generation (s)", "time/generate", 2),
    ("  update (s)", "time/train", 2),
    // Collectives between ranks (0 for one process): gradients, metrics, agreement.
    ("  communication between ranks (s)", "time/communicate", 3),
    ("  scoring not hidden by generation (s)", "time/waiting", 3),
    ("assess, overlapped (s)", "time/assess", 3),
    ("render, overlapped (s)", "time/render", 3),
    ("rewards, overlapped (s)", "time/reward", 3),
    ("prompt tokens per step", "tokens/prompt", 0),
    ("response tokens per step", "tokens/response", 0),
    ("trained sequences per step", "trained_sequences", 0),
    ("trained tokens per step (responses)", "trained_tokens", 0),
    (
        "tokens/s (prompt + response, whole step)",
        "tokens_per_s",
        0,
    ),
];

/// Median, minimum and maximum (zeros when there are no values).
pub(crate) fn summary(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(values), min, max)
}

/// Tracks the largest memory footprint: on a GPU by sampling the device's used memory every
/// 10 ms (libtorch keeps its allocator's statistics out of the C API), on the CPU the process's
/// peak resident set, which the kernel keeps.
pub(crate) struct MemoryWatch {
    gpu: Option<(Arc<AtomicBool>, JoinHandle<u64>)>,
}

impl MemoryWatch {
    pub(crate) fn start(device: tch::Device) -> Self {
        let tch::Device::Cuda(index) = device else {
            return Self { gpu: None };
        };
        let Some(memory) = GpuMemory::open(index) else {
            return Self { gpu: None };
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let peak = AtomicU64::new(0);
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some(used) = memory.used() {
                    peak.fetch_max(used, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.load(Ordering::Relaxed)
        });
        Self {
            gpu: Some((stop, handle)),
        }
    }

    pub(crate) fn finish(self) -> Option<(u64, &'static str)> {
        match self.gpu {
            Some((stop, handle)) => {
                stop.store(true, Ordering::Relaxed);
                let peak = handle.join().ok()?;
                (peak > 0).then_some((peak, "GPU memory in use, device-wide, sampled every 10 ms"))
            }
            None => peak_resident().map(|b| (b, "peak resident set of the process")),
        }
    }
}

/// `VmHWM` of /proc/self/status, in bytes.
fn peak_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_copies_at_3b_cost_14_gib_for_full_fine_tuning_and_a_tenth_for_lora() {
        // Qwen2.5-VL-3B: 3,085,938,688 decoder + 668,684,288 vision parameters; default `LoRA`
        // (rank 16 on the 7 decoder projections of 36 layers).
        let cost = MasterCopyCost {
            weight_kind: tch::Kind::BFloat16,
            base_parameters: 3_754_622_976,
            adapter_parameters: 29_933_568,
        };
        assert_eq!(cost.full_bytes(), 15_018_491_904);
        assert_eq!(cost.lora_bytes(), 119_734_272);
        assert_eq!(cost.lora_extra_bytes(), 59_867_136);
        let text = cost.describe();
        assert!(
            text.contains("29933568 adapter parameters in f32 = 0.112 GiB (0.056 GiB more"),
            "{text}"
        );
        assert!(
            text.contains("3754622976 f32 masters = 13.987 GiB beside the bf16 weights"),
            "{text}"
        );
        let f32_weights = MasterCopyCost {
            weight_kind: tch::Kind::Float,
            ..cost
        };
        assert_eq!(f32_weights.full_bytes(), 0);
        assert_eq!(f32_weights.lora_extra_bytes(), 0);
        assert!(
            f32_weights
                .describe()
                .contains("full fine-tuning: none, the 3754622976 weights are f32"),
            "{}",
            f32_weights.describe()
        );
    }

    #[test]
    fn summary_takes_the_middle_of_sorted_values() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(summary(&[4.0, 1.0, 3.0, 2.0]), (2.5, 1.0, 4.0));
        assert_eq!(summary(&[]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_process_peak_resident_set_is_readable() {
        let peak = peak_resident().expect("Linux reports VmHWM");
        assert!(peak > 1 << 20, "{peak} bytes");
    }
}
