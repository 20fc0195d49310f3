//! `metaspatial-rl reward`: the reward authoring loop — scaffold a plugin, and score responses
//! with a reward config to see every component.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use metaspatial_env::{AssessConfig, Room};
use metaspatial_render::{Corner, RenderOptions, Renderer, Scene, View};
use metaspatial_rewards::{Prepared, Registry, RenderedView, RewardSet, Scored};

use super::score::{ScoreInputs, read_response, read_room};

/// Arguments of `reward`.
#[derive(Debug, Args)]
pub struct RewardArgs {
    #[command(subcommand)]
    command: RewardCommand,
}

#[derive(Debug, Subcommand)]
enum RewardCommand {
    /// Scaffold a working reward plugin with a test, in a new directory NAME.
    New(NewArgs),
    /// Score responses with a reward config and print every component.
    Test(TestArgs),
}

/// Arguments of `reward new`.
#[derive(Debug, Args)]
struct NewArgs {
    /// The reward's name (lower-case letters, digits and `_`); also the directory created.
    name: String,
    /// The plugin's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Directory to create the plugin in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// For Rust plugins: path of the metaspatial-rewards crate to depend on (default: the
    /// project's git repository).
    #[arg(long)]
    rewards_path: Option<PathBuf>,
}

/// Plugin languages `reward new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    /// A crate implementing the `Reward` trait, registered by name.
    Rust,
    /// A process speaking JSON lines.
    Python,
}

/// Arguments of `reward test`.
#[derive(Debug, Args)]
struct TestArgs {
    /// Reward config (RON).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    inputs: ScoreInputs,
    /// Render each layout (perspective view, with per-object visibility) for image rewards.
    #[arg(long)]
    render: bool,
}

/// Runs `reward`.
pub fn run(args: &RewardArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        RewardCommand::New(a) => new(a),
        RewardCommand::Test(a) => test(a),
    }
}

fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!(
            "reward name `{name}`: use lower-case letters, digits and `_`, starting with a letter"
        );
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!("{} already exists; not overwriting it", root.display());
    }
    let files: Vec<(PathBuf, String)> = match args.lang {
        Lang::Python => vec![
            (
                format!("{name}.py").into(),
                PYTHON_PLUGIN.replace("NAME", name),
            ),
            (
                format!("test_{name}.py").into(),
                PYTHON_TEST.replace("NAME", name),
            ),
            ("rewards.ron".into(), PYTHON_CONFIG.replace("NAME", name)),
        ],
        Lang::Rust => {
            let dependency = match &args.rewards_path {
                Some(p) => {
                    let p = std::fs::canonicalize(p)
                        .with_context(|| format!("--rewards-path {}", p.display()))?;
                    format!("{{ path = {:?} }}", p.display().to_string())
                }
                None => "{ git = \"https://github.com/metaspatial-rl/metaspatial-rl\" }".to_owned(),
            };
            vec![
                (
                    "Cargo.toml".into(),
                    RUST_CARGO
                        .replace("NAME", name)
                        .replace("DEPENDENCY", &dependency),
                ),
                (
                    "src/lib.rs".into(),
                    RUST_LIB.replace("NAME", name).replace("TYPE", &camel(name)),
                ),
            ]
        }
    };
    for (path, text) in &files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("created {}", path.display());
    }
    match args.lang {
        Lang::Python => println!(
            "next: cd {} && python3 -m unittest test_{name}\n      metaspatial-rl reward test --config rewards.ron --room ROOM.json --response RESPONSE.txt",
            root.display()
        ),
        Lang::Rust => println!(
            "next: cd {} && cargo test\nthen register it in the program that reads your reward config: `{name}::register(&mut registry)`",
            root.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `wall_gap` → `WallGap`.
fn camel(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One response to score, with the room it belongs to.
struct Case {
    room: PathBuf,
    response: PathBuf,
}

fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Pairs responses with rooms: one room for every response, or rooms matched by file stem.
fn cases(room: &Path, response: &Path) -> anyhow::Result<Vec<Case>> {
    let responses = if response.is_dir() {
        files_in(response)?
    } else {
        vec![response.to_path_buf()]
    };
    if !room.is_dir() {
        return Ok(responses
            .into_iter()
            .map(|r| Case {
                room: room.to_path_buf(),
                response: r,
            })
            .collect());
    }
    let rooms: BTreeMap<String, PathBuf> =
        files_in(room)?.into_iter().map(|p| (stem(&p), p)).collect();
    responses
        .into_iter()
        .map(|r| {
            let room = rooms.get(&stem(&r)).with_context(|| {
                format!(
                    "{}: no room named `{}` in {}",
                    r.display(),
                    stem(&r),
                    room.display()
                )
            })?;
            Ok(Case {
                room: room.clone(),
                response: r,
            })
        })
        .collect()
}

fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let set = RewardSet::from_file(&args.config, &Registry::with_builtins())?;
    let cases = cases(&args.inputs.room, &args.inputs.response)?;
    let mut renderer = if args.render {
        Some(Renderer::new().context("starting the renderer for --render")?)
    } else {
        None
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for case in &cases {
        let room = read_room(&case.room)?;
        let response = read_response(&case.response)?;
        let prepared = Prepared::new(&room, &response, &AssessConfig::default());
        let views = match &mut renderer {
            Some(r) => render(r, &room, &prepared)?,
            None => Vec::new(),
        };
        let scored = set.score(&prepared.context(&room).with_views(&views));
        failed |= scored.components.iter().any(|c| c.failed.is_some());
        reports.push((case, scored));
    }
    if args.inputs.json {
        let out: Vec<_> = reports
            .iter()
            .map(|(c, s)| {
                serde_json::json!({
                    "room": c.room.display().to_string(),
                    "response": c.response.display().to_string(),
                    "total": s.total,
                    "components": s.components,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (c, s) in &reports {
            print!("{}", table(&c.room, &c.response, s));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn render(
    renderer: &mut Renderer,
    room: &Room,
    prepared: &Prepared,
) -> anyhow::Result<Vec<RenderedView>> {
    let scene = Scene::new(room, &prepared.assessment.layout)?;
    let options = RenderOptions {
        view: View::Perspective(Corner::SouthWest),
        ..RenderOptions::default()
    };
    let frame = renderer.render(&scene, &options)?;
    let visibility = renderer
        .visibility(std::slice::from_ref(&scene), &options)?
        .pop();
    Ok(vec![RenderedView {
        name: "perspective".into(),
        frame,
        visibility,
        path: None,
    }])
}

/// One response's components as a table.
fn table(room: &Path, response: &Path, s: &Scored) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · {} · total {:.4}",
        response.display(),
        room.display(),
        s.total
    );
    let _ = writeln!(
        out,
        "  {:<20} {:<17} {:>7} {:>9} {:>9}  note",
        "component", "reward", "weight", "value", "weighted"
    );
    for c in &s.components {
        let note = match (&c.failed, &c.note) {
            (Some(f), _) => format!("FAILED (fallback): {f}"),
            (None, Some(n)) => n.clone(),
            (None, None) => String::new(),
        };
        let row = format!(
            "  {:<20} {:<17} {:>7.3} {:>9.4} {:>9.4}  {note}",
            c.name, c.reward, c.weight, c.value, c.weighted
        );
        // No trailing blanks when there is no note: they would not survive a copy into a file.
        let _ = writeln!(out, "{}", row.trim_end());
        for (k, v) in &c.components {
            let _ = writeln!(out, "  {:<20} {:>35.4}", format!("  {k}"), v);
        }
    }
    out.push('\n');
    out
}

const PYTHON_PLUGIN: &str = r#"#!/usr/bin/env python3
"""The `NAME` reward plugin: one JSON request per line on stdin, one JSON response per line on
stdout (protocol: rewards/README.md in metaspatial-rl).

It starts as a working example: the fraction of the room's objects the answer places without
any collision. Change `score` to reward what you want.
"""

import json
import sys


def score(request):
    """Returns {"value": float, "components": {name: float}, "note": optional str}."""
    objects = request["room"]["objects"]
    assessment = request["assessment"]
    colliding = {c[k] for c in assessment["collisions"] for k in ("a", "b")}
    placed = [p["id"] for p in assessment["layout"]["poses"]]
    clear = [i for i in placed if i not in colliding]
    value = len(clear) / len(objects) if objects else 1.0
    return {"value": value, "components": {"placed": len(placed), "colliding": len(colliding)}}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            response = score(request)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            response = {"error": f"{type(e).__name__}: {e}"}
        response["id"] = request["id"]
        print(json.dumps(response), flush=True)


if __name__ == "__main__":
    main()
"#;

const PYTHON_TEST: &str = r#""""Runs the NAME plugin as the reward host does."""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def request():
    room = {"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5}, "objects": [
        {"id": "a", "category": "chair", "on_floor": True, "size": {"length": 0.5, "width": 0.5, "height": 0.9}},
        {"id": "b", "category": "chair", "on_floor": True, "size": {"length": 0.5, "width": 0.5, "height": 0.9}},
    ]}
    layout = {"poses": [{"id": "a", "position": [1, 1, 0.45], "rotation": 0},
                        {"id": "b", "position": [3, 1, 0.45], "rotation": 0}]}
    return {"id": 1, "reward": "NAME", "params": {}, "turn": 1, "room": room, "response": "",
            "answer": None, "format_error": None, "images": [],
            "assessment": {"layout": layout, "collisions": []}}


class Test(unittest.TestCase):
    def test_answers_each_request_on_one_line(self):
        out = subprocess.run([sys.executable, os.path.join(HERE, "NAME.py")],
                             input=json.dumps(request()) + "\n", capture_output=True, text=True, timeout=30)
        reply = json.loads(out.stdout.splitlines()[0])
        self.assertEqual(reply["id"], 1)
        self.assertAlmostEqual(reply["value"], 1.0)


if __name__ == "__main__":
    unittest.main()
"#;

const PYTHON_CONFIG: &str = r#"// Try it: metaspatial-rl reward test --config rewards.ron --room ROOM.json --response RESPONSE.txt
(
    rewards: [
        (reward: "format", weight: 0.2),
        (reward: "plugin", name: "NAME", weight: 1.0, fallback: 0.0,
         params: (command: ["python3", "NAME.py"], timeout_s: 5.0)),
    ],
)
"#;

const RUST_CARGO: &str = r#"[package]
name = "NAME"
version = "0.1.0"
edition = "2024"

[dependencies]
metaspatial-rewards = DEPENDENCY
"#;

const RUST_LIB: &str = r##"//! The `NAME` reward. Register it before reading a reward config that names it:
//!
//! ```ignore
//! let mut registry = metaspatial_rewards::Registry::with_builtins();
//! NAME::register(&mut registry);
//! ```
//!
//! It starts as a working example: the fraction of the room's objects placed without any
//! collision. Change `score` to reward what you want.

use metaspatial_rewards::{Params, Registry, Reward, RewardContext, RewardOutcome};

/// The `NAME` reward.
#[derive(Debug, Default)]
pub struct TYPE;

impl Reward for TYPE {
    fn name(&self) -> &'static str {
        "NAME"
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let a = ctx.assessment;
        let objects = ctx.room.objects.len();
        let colliding = |id: &str| a.collisions.iter().any(|c| c.a == id || c.b == id);
        let clear = a.layout.poses.iter().filter(|p| !colliding(&p.id)).count();
        let value = if objects == 0 { 1.0 } else { clear as f64 / objects as f64 };
        RewardOutcome::new(value).with("clear", clear as f64)
    }
}

/// Registers `NAME` by name.
pub fn register(registry: &mut Registry) {
    registry.register("NAME", |_: &Params<'_>| Ok(Box::new(TYPE) as Box<dyn Reward>));
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaspatial_rewards::env::{AssessConfig, load_room};
    use metaspatial_rewards::{Prepared, RewardSet};

    #[test]
    fn two_separate_chairs_score_one() {
        let room = load_room(
            r#"{"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5}, "objects": [
                {"id": "a", "category": "chair", "size": {"length": 0.5, "width": 0.5, "height": 0.9}, "on_floor": true},
                {"id": "b", "category": "chair", "size": {"length": 0.5, "width": 0.5, "height": 0.9}, "on_floor": true}]}"#,
            "room",
        )
        .unwrap();
        let mut registry = Registry::with_builtins();
        register(&mut registry);
        let set = RewardSet::from_ron(r#"(rewards: [(reward: "NAME", weight: 1.0)])"#, "inline", &registry).unwrap();
        let response = r#"<think>apart</think><answer>[{"new_object_id": "a", "x": 1, "y": 1, "z": 0.45}, {"new_object_id": "b", "x": 3, "y": 1, "z": 0.45}]</answer>"#;
        let p = Prepared::new(&room, response, &AssessConfig::geometry_only());
        assert_eq!(set.score(&p.context(&room)).total, 1.0);
    }
}
"##;
