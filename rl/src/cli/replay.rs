//! `metaspatial-rl replay`: browse a run directory in a local web app, live or finished, or
//! export that app as a static site.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run directory (`runs/<name>/`, holding `metrics.jsonl`).
    run_dir: PathBuf,
    /// Address to listen on; the default keeps the viewer to this machine.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Instead of serving, write the viewer with all its data to this directory (new or
    /// empty) as a static site that opens from disk.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

/// Runs `replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.export {
        let summary = metaspatial_replay::export(&args.run_dir, out)
            .with_context(|| format!("exporting {}", args.run_dir.display()))?;
        for warning in &summary.warnings {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            "wrote {}: {} steps, {} samples, {} images; open {}",
            out.display(),
            summary.steps,
            summary.samples,
            summary.images,
            out.join("index.html").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    metaspatial_replay::serve(&args.run_dir, &args.host, args.port)
        .with_context(|| format!("serving {}", args.run_dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
