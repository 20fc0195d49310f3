//! `metaspatial-rl views` and `data coverage`: which views see the most of a scene, chosen
//! greedily (Spatial-MLLM's space-aware selection) against evenly spaced, random and fixed ones.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use metaspatial_env::data::dataset::{Dataset, ReferenceLayout, Split, write_atomic};
use metaspatial_env::data::rng::Rng;
use metaspatial_env::data::solver::{SolverConfig, solve};
use metaspatial_env::metrics::mean_se;
use metaspatial_env::{Layout, Room};
use metaspatial_render::coverage::{SceneVoxels, Target, candidate_views, evenly_spaced};
use metaspatial_render::{Corner, Frame, RenderOptions, Renderer, Scene, View};
use rayon::prelude::*;
use serde::Serialize;

use super::render::{layout_of_response, load_room};
use crate::progress::bar_style;

/// The fixed views a run shows without selection, the first `k` of them: the plan, then the
/// corner views.
const FIXED: [View; 4] = [
    View::Top,
    View::Perspective(Corner::SouthWest),
    View::Perspective(Corner::NorthEast),
    View::Perspective(Corner::SouthEast),
];

/// Random choices per room and `k`, each from its own seed.
const RANDOM_SEEDS: u64 = 10;

/// Rooms drawn per renderer submission.
const ROOMS_PER_BATCH: usize = 8;

/// How candidates are set up and judged, shared by `views` and `data coverage`.
#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Candidate orbit views around the room.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    candidates: u16,
    /// The voxel side is the shortest side of the points' bounding box over this.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    voxel_divisions: u32,
    /// What the views should see.
    #[arg(long, value_enum, default_value_t = TargetArg::Objects)]
    target: TargetArg,
    /// Side of the square renders, pixels.
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(16..=2048))]
    size: u32,
}

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// The objects' surfaces (the room's when no object is placed).
    Objects,
    /// Everything drawn: floor, walls and objects.
    Room,
}

impl SelectionArgs {
    fn target(&self) -> Target {
        match self.target {
            TargetArg::Objects => Target::Objects,
            TargetArg::Room => Target::Room,
        }
    }

    /// The candidates, then the fixed views.
    fn all_views(&self) -> Vec<View> {
        candidate_views(usize::from(self.candidates))
            .into_iter()
            .chain(FIXED)
            .collect()
    }
}

/// Arguments of `metaspatial-rl views`.
#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// The room: our room JSON or a `MetaSpatial` / `IDesign` scene graph.
    #[arg(long)]
    room: PathBuf,
    /// A model response whose layout to look at; without it, the empty room.
    #[arg(long)]
    response: Option<PathBuf>,
    /// Views to choose.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    k: u16,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One way of choosing views, judged on one scene.
#[derive(Debug, Clone, Serialize)]
struct Choice {
    /// `greedy`, `evenly spaced`, `fixed`.
    method: &'static str,
    /// The views' names.
    views: Vec<String>,
    /// The fraction of all voxels they see.
    coverage: f64,
    /// The fraction of objects of which they see at least half.
    objects_half_visible: f64,
}

/// The frames of every view of `scenes`, `frames[scene][view]`.
fn draw(
    renderer: &mut Renderer,
    scenes: &[Scene],
    views: &[View],
    size: u32,
) -> anyhow::Result<Vec<Vec<Frame>>> {
    let mut frames: Vec<Vec<Frame>> = vec![Vec::with_capacity(views.len()); scenes.len()];
    for &view in views {
        let options = RenderOptions {
            width: size,
            height: size,
            view,
            labels: false,
        };
        for (i, frame) in renderer
            .render_batch(scenes, &options)?
            .into_iter()
            .enumerate()
        {
            frames[i].push(frame);
        }
    }
    Ok(frames)
}

/// The greedy, evenly spaced and fixed choices of `k` views of one scene.
fn choices(voxels: &SceneVoxels, views: &[View], candidates: usize, k: usize) -> Vec<Choice> {
    let fixed: Vec<usize> = (candidates..views.len()).take(k).collect();
    [
        ("greedy", voxels.greedy(0..candidates, k)),
        ("evenly spaced", evenly_spaced(candidates, k)),
        ("fixed", fixed),
    ]
    .into_iter()
    .map(|(method, chosen)| Choice {
        method,
        views: chosen.iter().map(|&i| views[i].name()).collect(),
        coverage: voxels.coverage(&chosen),
        objects_half_visible: voxels.objects_half_visible(&chosen),
    })
    .collect()
}

/// Runs `views`.
pub fn run(args: &ViewsArgs) -> anyhow::Result<ExitCode> {
    let room = load_room(&args.room)?;
    let layout = match &args.response {
        Some(path) => layout_of_response(&room, path)?,
        None => Layout::default(),
    };
    let k = usize::from(args.k);
    let candidates = usize::from(args.selection.candidates);
    if k > candidates {
        bail!("--k {k}: choose at most the {candidates} candidates");
    }
    let views = args.selection.all_views();
    let scene = Scene::new(&room, &layout)?;
    let frames = draw(
        &mut Renderer::new()?,
        std::slice::from_ref(&scene),
        &views,
        args.selection.size,
    )?;
    let frames: Vec<&Frame> = frames[0].iter().collect();
    let voxels = SceneVoxels::new(
        &frames,
        args.selection.target(),
        args.selection.voxel_divisions,
    );
    let choices = choices(&voxels, &views, candidates, k);
    if args.json {
        let doc = serde_json::json!({
            "room": room.id,
            "objects_placed": layout.poses.len(),
            "candidates": candidates,
            "voxel_size": voxels.size,
            "voxels": voxels.total(),
            "room_points_stood_in": voxels.fell_back_to_room,
            "choices": choices,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "room {} ({} of {} objects placed): {} voxels of {:.3} m seen by {candidates} candidate orbit views and {} fixed ones{}",
        room.id,
        layout.poses.len(),
        room.objects.len(),
        voxels.total(),
        voxels.size,
        FIXED.len(),
        if voxels.fell_back_to_room {
            " (no object in sight: the room's points)"
        } else {
            ""
        }
    );
    println!(
        "{:<14} {:>9} {:>17}  views",
        "method", "coverage", "objects ≥ half"
    );
    for c in &choices {
        println!(
            "{:<14} {:>9.3} {:>17.3}  {}",
            c.method,
            c.coverage,
            c.objects_half_visible,
            c.views.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--k`: one count (`2`) or an inclusive range (`1..4`).
pub fn parse_k_range(text: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<usize>()
            .ok()
            .filter(|&k| k >= 1)
            .ok_or_else(|| format!("`{t}` is not a count of views (1 or more)"))
    };
    let (low, high) = if let Some((a, b)) = text.split_once("..") {
        (parse(a)?, parse(b.trim_start_matches('='))?)
    } else {
        let k = parse(text)?;
        (k, k)
    };
    if low > high {
        return Err(format!("`{text}`: the range is empty"));
    }
    Ok((low, high))
}

/// Arguments of `data coverage` beside the dataset.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Split to measure: train, val or test.
    #[arg(long, default_value = "test", value_parser = super::parse_split)]
    split: Split,
    /// Views chosen: a count (`2`) or an inclusive range (`1..4`).
    #[arg(long, default_value = "1..4", value_parser = parse_k_range)]
    k: (usize, usize),
    /// Rooms measured, the first of the split (0 = all).
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Per room, `(k, method)` with the coverage and the objects seen at least half, in the same
/// order for every room.
type RoomScores = Vec<((usize, &'static str), (f64, f64))>;

/// One room's scores for every `k` of `args`.
fn room_scores(voxels: &SceneVoxels, views: &[View], args: &CoverageArgs, room: u64) -> RoomScores {
    let candidates = usize::from(args.selection.candidates);
    let mut scores = RoomScores::new();
    for k in args.k.0..=args.k.1.min(candidates) {
        let mut fixed = None;
        for c in choices(voxels, views, candidates, k) {
            let score = ((k, c.method), (c.coverage, c.objects_half_visible));
            // Random goes beside the other choices that ignore the scene, fixed views last.
            if c.method == "fixed" {
                fixed = Some(score);
            } else {
                scores.push(score);
            }
        }
        let random: Vec<(f64, f64)> = (0..RANDOM_SEEDS)
            .map(|s| {
                let mut rng = Rng::derive(args.seed.wrapping_add(s), room);
                let mut order: Vec<usize> = (0..candidates).collect();
                rng.shuffle(&mut order);
                let chosen = &order[..k];
                (voxels.coverage(chosen), voxels.objects_half_visible(chosen))
            })
            .collect();
        let n = random.len() as f64;
        scores.push((
            (k, "random"),
            (
                random.iter().map(|r| r.0).sum::<f64>() / n,
                random.iter().map(|r| r.1).sum::<f64>() / n,
            ),
        ));
        scores.extend(fixed);
    }
    scores
}

/// Runs `data coverage` on the dataset in `dir`.
pub fn coverage(dir: &Path, args: &CoverageArgs) -> anyhow::Result<ExitCode> {
    let data = Dataset::open(dir)?;
    let mut rooms = data.split(args.split);
    if args.rooms > 0 {
        rooms = &rooms[..rooms.len().min(args.rooms)];
    }
    if rooms.is_empty() {
        bail!(
            "{}: the {} split has no rooms",
            dir.display(),
            args.split.name()
        );
    }
    let candidates = usize::from(args.selection.candidates);
    if args.k.0 > candidates {
        bail!(
            "--k {}: choose at most the {candidates} candidates",
            args.k.0
        );
    }
    let known: BTreeMap<&str, &ReferenceLayout> = data
        .layouts
        .get(&args.split)
        .into_iter()
        .flatten()
        .map(|l| (l.room.as_str(), l))
        .collect();
    let solver = SolverConfig::default();
    let views = args.selection.all_views();
    let mut renderer = Renderer::new().context("starting the renderer")?;
    let progress = ProgressBar::new(rooms.len() as u64);
    progress.set_style(bar_style(
        "coverage [{bar:40}] {pos}/{len} rooms {elapsed_precise} eta {eta}",
    ));
    let mut scores: Vec<RoomScores> = Vec::with_capacity(rooms.len());
    for (b, batch) in rooms.chunks(ROOMS_PER_BATCH).enumerate() {
        let scenes: Vec<Scene> = batch
            .par_iter()
            .map(|r: &Room| {
                // Stored reference layouts are used as they are; missing ones are solved now.
                let layout = known
                    .get(r.id.as_str())
                    .map_or_else(|| solve(r, &solver).layout, |l| l.layout());
                Scene::new(r, &layout)
            })
            .collect::<Result<_, _>>()?;
        let frames = draw(&mut renderer, &scenes, &views, args.selection.size)?;
        scores.par_extend(frames.par_iter().enumerate().map(|(i, frames)| {
            let frames: Vec<&Frame> = frames.iter().collect();
            let voxels = SceneVoxels::new(
                &frames,
                args.selection.target(),
                args.selection.voxel_divisions,
            );
            room_scores(&voxels, &views, args, (b * ROOMS_PER_BATCH + i) as u64)
        }));
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    let rows = summarise(&scores);
    print!(
        "{}",
        format_rows(&rows, rooms.len(), args.split, candidates)
    );
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "split": args.split.name(),
            "rooms": rooms.len(),
            "candidates": candidates,
            "rows": rows,
        });
        write_atomic(
            path,
            (serde_json::to_string_pretty(&doc)? + "\n").as_bytes(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A method's mean scores over rooms at one `k`.
#[derive(Debug, Serialize)]
struct Row {
    k: usize,
    method: &'static str,
    coverage: (f64, f64),
    objects_half_visible: (f64, f64),
}

fn summarise(scores: &[RoomScores]) -> Vec<Row> {
    let Some(first) = scores.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(row, &((k, method), _))| {
            let column = |f: fn(&(f64, f64)) -> f64| -> Vec<f64> {
                scores.iter().map(|s| f(&s[row].1)).collect()
            };
            Row {
                k,
                method,
                coverage: mean_se(&column(|v| v.0)),
                objects_half_visible: mean_se(&column(|v| v.1)),
            }
        })
        .collect()
}

fn format_rows(rows: &[Row], rooms: usize, split: Split, candidates: usize) -> String {
    let mut out = format!(
        "{rooms} rooms of the {} split, the solver's layouts; {candidates} candidate orbit views\n",
        split.name()
    );
    let _ = writeln!(
        out,
        "{:>2}  {:<14} {:>17} {:>17}",
        "k", "method", "coverage", "objects ≥ half"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>2}  {:<14} {:>17} {:>17}",
            r.k,
            r.method,
            format!("{:.3} ± {:.3}", r.coverage.0, r.coverage.1),
            format!(
                "{:.3} ± {:.3}",
                r.objects_half_visible.0, r.objects_half_visible.1
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_is_a_count_or_an_inclusive_range() {
        assert_eq!(parse_k_range("2"), Ok((2, 2)));
        assert_eq!(parse_k_range("1..4"), Ok((1, 4)));
        assert_eq!(parse_k_range("1..=3"), Ok((1, 3)));
        assert!(parse_k_range("0").unwrap_err().contains("`0`"));
        assert!(parse_k_range("3..1").unwrap_err().contains("empty"));
        assert!(parse_k_range("a..2").is_err());
    }
}
