//! `metaspatial-rl score`: assess one model response against one room.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use metaspatial_env::feedback::{FeedbackConfig, feedback};
use metaspatial_env::{AssessConfig, Assessment, assess, load_room};

/// Arguments of `metaspatial-rl score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The room: our room JSON or a `MetaSpatial` / `IDesign` scene graph.
    #[arg(long)]
    room: PathBuf,
    /// The model's response (`<think>…</think><answer>[…]</answer>`).
    #[arg(long)]
    response: PathBuf,
    /// Print one JSON object instead of a readable report.
    #[arg(long)]
    json: bool,
    /// Skip settling under gravity (support and stability).
    #[arg(long)]
    no_physics: bool,
}

/// Prints the assessment. The exit status is success whenever the files could be read, whatever
/// the response's quality.
pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let room_text = std::fs::read_to_string(&args.room)
        .with_context(|| format!("reading the room {}", args.room.display()))?;
    let room = load_room(&room_text, &args.room.display().to_string())?;
    let response = std::fs::read(&args.response)
        .with_context(|| format!("reading the response {}", args.response.display()))?;
    // Model output may hold invalid UTF-8; assess what is readable rather than refuse.
    let response = String::from_utf8_lossy(&response);
    let mut config = AssessConfig::default();
    if args.no_physics {
        config.support = None;
    }
    let assessment = assess(&room, &response, &config);
    if args.json {
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
