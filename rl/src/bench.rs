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
use metaspatial_replay::record::MetricsLine;

use crate::config::RunConfig;
use crate::eval::median;
use crate::run::{Session, bar_style};
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
    /// Where the model ran.
    pub device: tch::Device,
    /// Trainable parameters.
    pub trainable: i64,
    /// Every measured step's logged scalars (as in `metrics.jsonl`).
    pub steps: Vec<BTreeMap<String, f64>>,
    /// The largest memory footprint seen, and what was measured.
    pub peak_memory: Option<(u64, &'static str)>,
}

/// Runs `options.warmup + options.steps` GRPO steps of `config` in the run directory `out`
/// (which must be new or empty) and reports the measured ones.
pub fn bench(config: RunConfig, out: &Path, options: BenchOptions) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(options.steps > 0, "bench: --steps must be at least 1");
    ensure_fresh(out)?;
    let session = Session::open(config, out)?;
    let start = session.prepare_model()?;
    let watch = MemoryWatch::start(session.device);
    let mut learner = session.learner(&start, None)?;
    let trainable = learner.opt.numel();
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
        device: session.device,
        trainable,
        steps: measured,
        peak_memory: watch.finish(),
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
        "GRPO steps on {:?}: {} trainable parameters, G = {}, {} rooms per step, up to {} turns, \
         {} measured steps",
        report.device,
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
        if metric == "time/waiting" {
            let share: Vec<f64> = column(metric)
                .iter()
                .zip(column("time/step"))
                .map(|(w, s)| w / s)
                .collect();
            row("  scoring not hidden, share of step (%)", &share, 100.0, 2);
        }
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
    out
}

/// The table's rows: label, metric of `metrics.jsonl`, decimals.
const ROWS: [(&str, &str, usize); 10] = [
    ("step (s)", "time/step", 2),
    ("  generation (s)", "time/generate", 2),
    ("  update (s)", "time/train", 2),
    ("  scoring not hidden by generation (s)", "time/waiting", 3),
    ("assess, overlapped (s)", "time/assess", 3),
    ("render, overlapped (s)", "time/render", 3),
    ("rewards, overlapped (s)", "time/reward", 3),
    ("prompt tokens per step", "tokens/prompt", 0),
    ("response tokens per step", "tokens/response", 0),
    ("tokens/s (prompt + response)", "tokens_per_s", 0),
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
