//! `metaspatial-rl doctor`: what this machine offers the trainer, and what is missing.

use std::process::ExitCode;

use clap::Args;
use metaspatial_policy::device::{TorchReport, torch_report};
use metaspatial_render::probe;

/// Arguments of `metaspatial-rl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {}

/// Prints the report; fails when something the trainer needs is missing.
// Every subcommand shares the `Result<ExitCode>` signature the dispatcher expects.
#[allow(clippy::unnecessary_wraps)]
pub fn run(_args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    println!("metaspatial-rl {}", env!("CARGO_PKG_VERSION"));

    let torch = torch_report();
    print_torch(&torch);
    if torch.cuda.is_none() && nvidia_gpu_present() {
        problems.push(if torch.cuda_linked {
            "an NVIDIA GPU is present but CUDA is unavailable to libtorch: check the NVIDIA \
             driver (`nvidia-smi`) and that it supports the CUDA version torch was built for"
                .to_owned()
        } else if torch.cuda_library_present {
            "an NVIDIA GPU is present but libtorch_cuda.so is not linked into this binary: \
             rebuild with the project's build scripts (`cargo xtask setup && cargo build`)"
                .to_owned()
        } else {
            "an NVIDIA GPU is present but the loaded libtorch is a CPU-only build: install the \
             CUDA wheel (`cargo xtask setup` installs `torch==2.11.0` from PyPI)"
                .to_owned()
        });
    }

    println!(
        "{:<11}gloo{} (launch with torchrun or srun; see README, \"Multiple GPUs and nodes\")",
        "c10d",
        if metaspatial_dist::nccl_available() {
            ", nccl"
        } else {
            "; no nccl (this build lacked the CUDA header wheels)"
        }
    );

    let adapters = probe::adapters();
    if adapters.is_empty() {
        println!("{:<11}no adapter", "wgpu");
    }
    for (i, adapter) in adapters.iter().enumerate() {
        let label = if i == 0 { "wgpu" } else { "" };
        println!(
            "{label:<11}{} ({}, {}{})",
            adapter.name,
            adapter.backend,
            adapter.device_type,
            if adapter.driver.is_empty() {
                String::new()
            } else {
                format!(", {}", adapter.driver)
            }
        );
    }
    match probe::test_frame() {
        Ok(check) => println!(
            "{:<11}{}×{} headless frame rendered and read back correctly on {} ({} ms)",
            "",
            check.size.0,
            check.size.1,
            check.adapter.name,
            check.elapsed.as_millis()
        ),
        Err(error) => {
            println!("{:<11}test frame FAILED: {error}", "");
            problems.push(format!("headless rendering does not work: {error}"));
        }
    }
    if nvidia_gpu_present() && !adapters.iter().any(|a| a.name.contains("NVIDIA")) {
        tracing::warn!(
            "an NVIDIA GPU is present but wgpu sees no NVIDIA adapter: rendering runs on the CPU; \
             install the NVIDIA Vulkan driver (libnvidia-gl) for GPU rendering"
        );
    }

    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("{:<11}{cores} threads available", "CPU");

    if problems.is_empty() {
        println!("\nall checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            eprintln!("problem: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn print_torch(torch: &TorchReport) {
    let location = torch
        .library
        .as_ref()
        .and_then(|lib| lib.parent())
        .map_or_else(
            || "location unknown".to_owned(),
            |dir| dir.display().to_string(),
        );
    println!(
        "{:<11}{} ({location}), {} threads",
        "libtorch", torch.version, torch.threads
    );
    match &torch.cuda {
        Some(cuda) => {
            println!(
                "{:<11}available: runtime {}, driver {}, cuDNN {}",
                "CUDA",
                cuda.runtime,
                cuda.driver.as_deref().unwrap_or("unknown"),
                cuda.cudnn.as_deref().unwrap_or("unavailable"),
            );
            for gpu in &cuda.devices {
                println!(
                    "{:<11}cuda:{} {}, {:.1} GiB, compute capability {}.{}",
                    "",
                    gpu.index,
                    gpu.name,
                    gpu.total_memory as f64 / f64::from(1u32 << 30),
                    gpu.compute_capability.0,
                    gpu.compute_capability.1
                );
            }
        }
        None => println!(
            "{:<11}not available ({})",
            "CUDA",
            if torch.cuda_linked {
                "libtorch_cuda linked; no CUDA device or driver"
            } else if torch.cuda_library_present {
                "libtorch_cuda present but NOT linked"
            } else {
                "CPU-only libtorch"
            }
        ),
    }
}

/// Whether the machine has an NVIDIA GPU, judged by the kernel driver's device nodes.
fn nvidia_gpu_present() -> bool {
    std::path::Path::new("/dev/nvidia0").exists()
        || std::path::Path::new("/proc/driver/nvidia/version").exists()
}
