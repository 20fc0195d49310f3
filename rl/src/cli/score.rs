//! `metaspatial-rl score`: assess one model response against one room.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use metaspatial_env::feedback::{FeedbackConfig, feedback};
use metaspatial_env::{AssessConfig, Assessment, Room, assess, load_room};

/// What the scoring commands (`score`, `reward test`) read and how they print.
#[derive(Debug, Args)]
pub struct ScoreInputs {
    /// The room: our room JSON or a `MetaSpatial` / `IDesign` scene graph (`reward test` also
    /// takes a directory of them, matched to responses by file stem).
    #[arg(long)]
    pub room: PathBuf,
    /// The model's response (`<think>…</think><answer>[…]</answer>`), or for `reward test` a
    /// directory of them.
    #[arg(long)]
    pub response: PathBuf,
    /// Print JSON instead of a readable report.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `metaspatial-rl score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    inputs: ScoreInputs,
    /// Skip settling under gravity (support and stability).
    #[arg(long)]
    no_physics: bool,
}

/// Reads a room file, naming it in any error.
pub fn read_room(path: &Path) -> anyhow::Result<Room> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the room {}", path.display()))?;
    Ok(load_room(&text, &path.display().to_string())?)
}

/// Reads a model response, naming the file in any error.
pub fn read_response(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the response {}", path.display()))?;
    // Model output may hold invalid UTF-8; assess what is readable rather than refuse.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Prints the assessment. The exit status is success whenever the files could be read, whatever
/// the response's quality.
pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let room = read_room(&args.inputs.room)?;
    let response = read_response(&args.inputs.response)?;
    let mut config = AssessConfig::default();
    if args.no_physics {
        config.support = None;
    }
    let assessment = assess(&room, &response, &config);
    if args.inputs.json {
        println!("{}", serde_json::to_string_pretty(&assessment)?);
    } else {
        print_report(&room.id, room.objects.len(), &assessment);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(room: &str, objects: usize, a: &Assessment) {
    println!("room        {room} ({objects} objects)");
    match &a.format_error {
        Some(e) => println!("answer      NOT READ: {e}"),
        None => println!(
            "answer      {} of {objects} objects placed{}",
            a.layout.poses.len(),
            if a.strict_format {
                ""
            } else {
                " (not in the strict <think><answer> format)"
            }
        ),
    }
    println!("valid       {}", if a.valid_scene { "yes" } else { "no" });
    println!("collisions  {}", a.collisions.len());
    for c in &a.collisions {
        println!(
            "            {} × {}: depth {:.3} m, volume {:.4} m³",
            c.a, c.b, c.depth, c.volume
        );
    }
    println!("outside     {}", a.out_of_bounds.len());
    for o in &a.out_of_bounds {
        println!(
            "            {}: {:.1}% outside, {:.3} m past {}",
            o.id,
            100.0 * o.fraction_outside,
            o.distance,
            o.boundary
        );
    }
    if a.support.is_some() {
        println!("unsupported {}", a.unsupported.len());
        for u in &a.unsupported {
            println!(
                "            {}: gap {:.3} m, drop {:.3} m, tilt {:.1}°",
                u.id, u.gap, u.drop, u.tilt
            );
        }
    }
    let (held, total) = a.relations_satisfied();
    println!("relations   {held} of {total} satisfied");
    if let Some(f) = &a.free_space {
        println!(
            "free floor  {:.0}% free, largest walkable region {:.0}% of it",
            100.0 * f.free_fraction,
            100.0 * f.largest_region_fraction
        );
    }
    let show = |v: Option<f64>| v.map_or_else(|| "undefined".to_owned(), |v| format!("{v:.4}"));
    let m = &a.metaspatial;
    println!(
        "metaspatial collision ratio {}, constraint violation ratio {}{}",
        show(m.collision_ratio),
        show(m.constraint_violation_ratio),
        if m.within_definition {
            ""
        } else {
            " (outside their definition; see --json notes)"
        }
    );
    let lines = feedback(a, &FeedbackConfig::default());
    if !lines.is_empty() {
        println!("feedback");
        for l in lines {
            println!("  - {l}");
        }
    }
}
