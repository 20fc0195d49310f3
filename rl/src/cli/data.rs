//! `metaspatial-rl data`: generate, inspect, solve and import room datasets, and measure the
//! random and solver baselines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ParallelProgressIterator, ProgressBar};
use metaspatial_env::data::baseline::{answer_text, random_layout};
use metaspatial_env::data::dataset::{
    Dataset, Manifest, ReferenceLayout, Split, summary, write_atomic,
};
use metaspatial_env::data::generate::GenConfig;
use metaspatial_env::data::procedural;
use metaspatial_env::data::rng::Rng;
use metaspatial_env::data::solver::{SolverConfig, solve};
use metaspatial_env::metrics::{format_table, table};
use metaspatial_env::{AssessConfig, Room, assess};
use rayon::prelude::*;

use super::{UsageError, parse_split};
use crate::eval::median;
use crate::import::{Imported, read_idesign, read_metaspatial};
use crate::progress::bar_style;

/// Arguments of `metaspatial-rl data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Generate procedural rooms into a dataset directory.
    Gen {
        /// Number of rooms.
        #[arg(long)]
        rooms: u64,
        /// Master seed; the same seed gives byte-identical files.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Fewest objects per room.
        #[arg(long, default_value_t = 4)]
        min_objects: usize,
        /// Most objects per room.
        #[arg(long, default_value_t = 30)]
        max_objects: usize,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Counts per room type, objects per room and the relation mix.
    Stats {
        /// Dataset directory.
        dir: PathBuf,
    },
    /// Solve every room with the reference solver, write the layouts and report the solve rate.
    Solve {
        /// Dataset directory.
        dir: PathBuf,
        /// Solver attempts per room.
        #[arg(long, default_value_t = 6)]
        restarts: usize,
        /// Candidate poses per object and attempt.
        #[arg(long, default_value_t = 80)]
        candidates: usize,
    },
    /// Import `MetaSpatial`'s parquet or a folder of `IDesign` scene graphs.
    Import {
        /// Source format.
        #[arg(long = "from", value_enum)]
        from: Source,
        /// The parquet file or the folder of JSON files.
        source: PathBuf,
        /// Output dataset directory (an existing one gains or replaces the split).
        #[arg(long)]
        out: PathBuf,
        /// Split the rooms go to: train, val or test.
        #[arg(long, default_value = "train", value_parser = parse_split)]
        split: Split,
    },
    /// How much of the solver's layouts greedy, evenly spaced, random and fixed views see.
    Coverage {
        /// Dataset directory.
        dir: PathBuf,
        #[command(flatten)]
        args: super::views::CoverageArgs,
    },
    /// Random placement vs the reference solver on the test split: metric table and JSON.
    Baseline {
        /// Dataset directory.
        dir: PathBuf,
        /// Split to measure: train, val or test.
        #[arg(long, default_value = "test", value_parser = parse_split)]
        split: Split,
        /// Also write the metrics as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seed of the random baseline.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// `MetaSpatial`'s Hugging Face parquet (`problem`, `answer`, `images`).
    Metaspatial,
    /// A folder of `IDesign` scene-graph JSON files.
    Idesign,
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(bar_style(
        "{msg:>8} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
    ));
    bar.set_message(what.to_owned());
    bar
}

/// Runs a `data` subcommand.
pub fn run(args: &DataArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        DataCommand::Gen {
            rooms,
            seed,
            min_objects,
            max_objects,
            out,
        } => {
            let cfg = GenConfig {
                seed: *seed,
                min_objects: *min_objects,
                max_objects: *max_objects,
            };
            if !cfg.objects_in_range() {
                return Err(UsageError(format!(
                    "--min-objects {min_objects} --max-objects {max_objects}: give 1 ≤ min ≤ max"
                ))
                .into());
            }
            if out.exists() && !out.is_dir() {
                bail!("--out {}: a file, not a directory", out.display());
            }
            let progress = bar(*rooms as usize, "generate");
            let mut data = procedural::build(*rooms, &cfg, None, || progress.inc(1));
            progress.finish();
            data.write(out)?;
            print!("{}", summary(&data.manifest));
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Stats { dir } => {
            let data = Dataset::open(dir)?;
            print!("{}", stats(&data));
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Solve {
            dir,
            restarts,
            candidates,
        } => solve_all(dir, *restarts, *candidates),
        DataCommand::Import {
            from,
            source,
            out,
            split,
        } => {
            let rows = match from {
                Source::Metaspatial => read_metaspatial(source)?,
                Source::Idesign => read_idesign(source)?,
            };
            import(rows, *from, out, *split)
        }
        DataCommand::Baseline {
            dir,
            split,
            json,
            seed,
        } => baseline(dir, *split, json.as_deref(), *seed),
        DataCommand::Coverage { dir, args } => super::views::coverage(dir, args),
    }
}

fn import(rows: Vec<Imported>, from: Source, out: &Path, split: Split) -> anyhow::Result<ExitCode> {
    let source = match from {
        Source::Metaspatial => "metaspatial",
        Source::Idesign => "idesign",
    };
    let mut data = if out.join("manifest.json").exists() {
        let data = Dataset::open(out)?;
        if data.manifest.source != source {
            bail!(
                "{}: holds `{}` rooms, not `{source}` ones",
                out.display(),
                data.manifest.source
            );
        }
        data
    } else {
        Dataset::new(Manifest::new(source, None))
    };
    for other in Split::ALL.into_iter().filter(|&s| s != split) {
        if let Some(r) = rows
            .iter()
            .find(|r| data.split(other).iter().any(|o| o.id == r.room.id))
        {
            bail!(
                "room `{}` is already in the {} split: splits must be disjoint",
                r.room.id,
                other.name()
            );
        }
    }
    let images_dir = out.join("images");
    let mut images = 0;
    for row in &rows {
        if let Some(png) = &row.image {
            std::fs::create_dir_all(&images_dir)
                .with_context(|| format!("{}: cannot create", images_dir.display()))?;
            write_atomic(&images_dir.join(format!("{}.png", row.room.id)), png)?;
            images += 1;
        }
    }
    data.rooms
        .insert(split, rows.into_iter().map(|r| r.room).collect());
    data.layouts.remove(&split);
    data.manifest.splits.entry(split).or_default().images = images;
    let _ = std::fs::remove_file(split.layouts_path(out));
    data.write(out)?;
    print!("{}", summary(&data.manifest));
    Ok(ExitCode::SUCCESS)
}

fn stats(data: &Dataset) -> String {
    use std::fmt::Write as _;
    let rooms: Vec<&Room> = Split::ALL.iter().flat_map(|&s| data.split(s)).collect();
    let mut out = summary(&data.manifest);
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    let mut relations: BTreeMap<String, usize> = BTreeMap::new();
    let mut counts: Vec<usize> = Vec::new();
    for r in &rooms {
        let kind = r.id.rsplit_once('_').map_or(r.id.as_str(), |(t, _)| t);
        *types.entry(kind.to_owned()).or_default() += 1;
        counts.push(r.objects.len());
        for o in &r.objects {
            for x in &o.placement.room {
                *relations
                    .entry(format!("{} {}", x.preposition.name(), x.element.name()))
                    .or_default() += 1;
            }
            for x in &o.placement.objects {
                let adj = if x.adjacent { " (adjacent)" } else { "" };
                *relations
                    .entry(format!("{} <object>{adj}", x.preposition.name()))
                    .or_default() += 1;
            }
            if o.facing.is_some() {
                *relations.entry("facing".to_owned()).or_default() += 1;
            }
        }
    }
    counts.sort_unstable();
    let _ = writeln!(out, "\nrooms per type");
    for (t, n) in &types {
        let _ = writeln!(out, "  {t:<20} {n:>6}");
    }
    if let (Some(min), Some(max)) = (counts.first(), counts.last()) {
        let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        let _ = writeln!(
            out,
            "\nobjects per room: min {min}, median {}, mean {mean:.1}, max {max}",
            counts[counts.len() / 2]
        );
    }
    let total: usize = relations.values().sum();
    let _ = writeln!(out, "\nrelation mix ({total} relations)");
    let mut mix: Vec<_> = relations.into_iter().collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, n) in mix {
        let _ = writeln!(
            out,
            "  {name:<32} {n:>7} {:>6.1} %",
            100.0 * n as f64 / total.max(1) as f64
        );
    }
    out
}

fn solve_all(dir: &Path, restarts: usize, candidates: usize) -> anyhow::Result<ExitCode> {
    let mut data = Dataset::open(dir)?;
    let cfg = SolverConfig {
        restarts,
        candidates,
        ..SolverConfig::default()
    };
    let all: Vec<(Split, &Room)> = Split::ALL
        .iter()
        .flat_map(|&s| data.split(s).iter().map(move |r| (s, r)))
        .collect();
    let results: Vec<(Split, ReferenceLayout, f64, usize)> = all
        .par_iter()
        .progress_with(bar(all.len(), "solve"))
        .map(|&(split, room)| {
            let start = Instant::now();
            let s = solve(room, &cfg);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let layout = ReferenceLayout::from_solution(room, &s);
            (split, layout, ms, room.objects.len())
        })
        .collect();
    let valid = results.iter().filter(|r| r.1.valid).count();
    let (ok, n) = results.iter().fold((0, 0), |(a, b), r| {
        (a + r.1.relations_satisfied, b + r.1.relations_total)
    });
    let all_relations = results
        .iter()
        .filter(|r| r.1.valid && r.1.unsatisfied.is_empty())
        .count();
    println!(
        "solved {valid}/{} rooms validly ({:.1} %)",
        results.len(),
        100.0 * valid as f64 / results.len().max(1) as f64
    );
    println!("rooms valid with every relation satisfied: {all_relations}");
    println!(
        "relations satisfied: {ok}/{n} ({:.1} %)",
        100.0 * ok as f64 / n.max(1) as f64
    );
    for (lo, hi) in [(1, 9), (10, 10), (11, 29), (30, 30)] {
        let group: Vec<&(Split, ReferenceLayout, f64, usize)> = results
            .iter()
            .filter(|r| (lo..=hi).contains(&r.3))
            .collect();
        if group.is_empty() {
            continue;
        }
        let times: Vec<f64> = group.iter().map(|r| r.2).collect();
        let v = group.iter().filter(|r| r.1.valid).count();
        println!(
            "  {lo:>2}-{hi:<2} objects: {:>5} rooms, solve rate {:>5.1} %, median {:.1} ms per room",
            group.len(),
            100.0 * v as f64 / group.len() as f64,
            median(&times)
        );
    }
    data.layouts.clear();
    for (split, layout, ..) in results {
        data.layouts.entry(split).or_default().push(layout);
    }
    data.write(dir)?;
    Ok(ExitCode::SUCCESS)
}

fn baseline(dir: &Path, split: Split, json: Option<&Path>, seed: u64) -> anyhow::Result<ExitCode> {
    let data = Dataset::open(dir)?;
    let rooms = data.split(split);
    if rooms.is_empty() {
        bail!("{}: the {} split has no rooms", dir.display(), split.name());
    }
    let cfg = AssessConfig::default();
    let random: Vec<_> = rooms
        .par_iter()
        .enumerate()
        .progress_with(bar(rooms.len(), "random"))
        .map(|(i, r)| {
            assess(
                r,
                &answer_text(&random_layout(r, &mut Rng::derive(seed, i as u64))),
                &cfg,
            )
        })
        .collect();
    let known: BTreeMap<&str, &ReferenceLayout> = data
        .layouts
        .get(&split)
        .into_iter()
        .flatten()
        .map(|l| (l.room.as_str(), l))
        .collect();
    let solver = SolverConfig::default();
    let solved: Vec<_> = rooms
        .par_iter()
        .progress_with(bar(rooms.len(), "solver"))
        .map(|r| {
            // Stored reference layouts are used as they are; missing ones are solved now.
            let layout = known
                .get(r.id.as_str())
                .map_or_else(|| solve(r, &solver).layout, |l| l.layout());
            assess(r, &answer_text(&layout), &cfg)
        })
        .collect();
    let (rm, sm) = (
        table(rooms, &random.iter().collect::<Vec<_>>()),
        table(rooms, &solved.iter().collect::<Vec<_>>()),
    );
    println!("{} rooms of the {} split", rooms.len(), split.name());
    print!("{}", format_table(&[("random", &rm), ("solver", &sm)]));
    if let Some(path) = json {
        let doc = serde_json::json!({"split": split.name(), "random": rm, "solver": sm});
        let text = serde_json::to_string_pretty(&doc)? + "\n";
        write_atomic(path, text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
