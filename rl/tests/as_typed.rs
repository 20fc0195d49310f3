//! Commands typed the way a user types them: bare file names and relative paths, run from the
//! folder the scaffold or the README puts the user in, optional parameters as plain values.
//! Each test pins something that broke that way: `reward test --config rewards.ron` started its
//! plugin in the empty path, run configs handed rewards the shell's directory, `config: {…}` in
//! `params` was refused, and wgpu's system libraries printed `error: XDG_RUNTIME_DIR …`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metaspatial_replay::record::MetricsLine;

const BIN: &str = env!("CARGO_BIN_EXE_metaspatial-rl");

/// A chair and a wardrobe; the response below places them apart, the wardrobe against a wall.
const ROOM: &str = r#"{"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5}, "objects": [
    {"id": "a", "category": "chair", "on_floor": true, "size": {"length": 0.5, "width": 0.5, "height": 0.9}},
    {"id": "b", "category": "wardrobe", "on_floor": true, "size": {"length": 1.0, "width": 0.6, "height": 2.0}}]}"#;

const RESPONSE: &str = r#"<think>chair in the open, wardrobe against the south wall</think>
<answer>[{"new_object_id": "a", "x": 1.0, "y": 1.5, "z": 0.45, "rotation": 0},
{"new_object_id": "b", "x": 3.0, "y": 0.3, "z": 1.0, "rotation": 0}]</answer>"#;

/// `metaspatial-rl` as the user's shell finds it: by name, on `PATH`.
fn path_with_bin() -> std::ffi::OsString {
    let bin_dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&rest))).unwrap()
}

/// A shell running command lines in `dir` with `metaspatial-rl` on `PATH`.
fn shell_command(dir: &Path, script: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-ec", script])
        .current_dir(dir)
        .env("PATH", path_with_bin());
    command
}

/// Runs command lines in `dir` with `metaspatial-rl` on `PATH`.
fn shell(dir: &Path, script: &str) -> Output {
    shell_command(dir, script).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The commands `reward new` prints after `next:`: the rest of that line and the indented lines
/// under it, one shell command line each.
fn next_steps(stdout: &str) -> Vec<String> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("next:"));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no `next:` line in:\n{stdout}"));
    std::iter::once(first.trim_start_matches("next:"))
        .chain(lines.take_while(|l| l.starts_with(' ')))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Runs `reward new tidy` with `extra` arguments in `dir`; returns the scaffold's directory and
/// its next steps as one script (a shell keeps the `cd` of one line for the next).
fn scaffold(dir: &Path, extra: &str) -> (PathBuf, String) {
    let out = shell(dir, &format!("metaspatial-rl reward new tidy {extra}"));
    assert_ok("reward new", &out);
    (dir.join("tidy"), next_steps(&text(&out.stdout)).join("\n"))
}

/// Regression: the README's and the scaffold's `reward test --config rewards.ron`, typed in the
/// config's own folder, started the plugin with the empty path as its working directory.
/// The shipped example also writes its plugin's `config` as a plain map.
#[test]
fn reward_test_runs_the_python_example_from_its_own_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/reward-plugin-python");
    for name in ["rewards.ron", "against_wall.py"] {
        std::fs::copy(example.join(name), tmp.path().join(name)).unwrap();
    }
    std::fs::write(tmp.path().join("room.json"), ROOM).unwrap();
    std::fs::write(tmp.path().join("response.txt"), RESPONSE).unwrap();
    let out = shell(
        tmp.path(),
        "metaspatial-rl reward test --config rewards.ron --room room.json --response response.txt --json",
    );
    assert_ok("reward test", &out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugin = report[0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "against_wall")
        .unwrap();
    assert!(plugin.get("failed").is_none(), "{plugin}");
    // The wardrobe (2 m > min_height 1.2 m) touches the south wall: gap 0, value 1.
    assert_eq!(plugin["value"], 1.0, "{plugin}");
}

/// The Python scaffold's loop as printed, then its plugin in a two-step training run started
/// from another directory than the config's.
#[test]
fn the_python_scaffold_loop_then_training_with_its_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let (tidy, steps) = scaffold(tmp.path(), "--lang python");
    // The placeholders of the printed command, filled in as the user would.
    std::fs::write(tidy.join("ROOM.json"), ROOM).unwrap();
    std::fs::write(tidy.join("RESPONSE.txt"), RESPONSE).unwrap();
    let out = shell(tmp.path(), &steps);
    assert_ok(&steps, &out);
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("tidy "))
        .unwrap_or_else(|| panic!("no `tidy` row in:\n{table}"));
    assert!(!row.contains("FAILED"), "{row}");

    // A fallback no answer can score, so a plugin that never ran shows in the metrics.
    let config = r#"(
        seed: 3,
        model: (source: Tiny((bpe_vocab: 300)), dtype: F32, device: Cpu),
        data: (source: Generate((rooms: 30, seed: 3, min_objects: 1, max_objects: 2))),
        env: (max_turns: 1, views: [Top], image_size: 56, prompt: Compact),
        rewards: [
            (reward: "format", weight: 0.5),
            (reward: "plugin", name: "tidy", weight: 1.0, fallback: -1.0,
             params: (command: ["python3", "tidy.py"], timeout_s: 10.0, config: {"unused": 1})),
        ],
        algorithm: (steps: 2, rooms_per_step: 2, group_size: 2),
        generation: (max_new_tokens: 16),
        eval: (rooms: 2),
        logging: (checkpoint_every: 2, rollout_images: false),
    )"#;
    std::fs::write(tidy.join("train.ron"), config).unwrap();
    let out = shell(
        tmp.path(),
        "metaspatial-rl run tidy/train.ron --out runs/tidy",
    );
    assert_ok("run", &out);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("reward failed"), "{stderr}");
    let metrics: Vec<MetricsLine> =
        std::fs::read_to_string(tmp.path().join("runs/tidy/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(metrics.len(), 2);
    for m in &metrics {
        let tidy = m.values["reward/tidy/mean"];
        assert!((0.0..=1.0).contains(&tidy), "step {}: {tidy}", m.step);
    }
}

/// The Rust scaffold's loop as printed: `cargo test` in the new crate, which depends on this
/// checkout's rewards crate and so builds its whole dependency tree (wgpu, rapier). It builds
/// in `reward-scaffold/` of this build's target directory, kept between runs — not in the
/// target directory itself, whose lock the `cargo test` running this test holds: about six
/// minutes the first time on two cores, fifteen seconds after. It runs in CI all the same:
/// authoring a Rust reward is one of the ways people use this tool.
#[test]
fn the_rust_scaffold_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let rewards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rewards");
    let (_, steps) = scaffold(
        tmp.path(),
        &format!("--lang rust --rewards-path {}", rewards.display()),
    );
    // The binary lives in <target>/<profile>/.
    let target = Path::new(BIN).ancestors().nth(2).unwrap();
    let out = shell_command(tmp.path(), &steps)
        .env("CARGO_TARGET_DIR", target.join("reward-scaffold"))
        .output()
        .unwrap();
    assert_ok(&steps, &out);
    assert!(
        text(&out.stdout).contains("two_separate_chairs_score_one ... ok"),
        "{}",
        text(&out.stdout)
    );
}

/// Regression: a run config named by a bare file name had the empty path as its directory,
/// which cannot be made absolute, so every command refused it.
#[test]
fn a_run_config_named_by_a_bare_file_name_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let config = r#"(
        model: (source: Checkpoint("model")),
        data: (source: Dir("rooms")),
        rewards: [(reward: "format", weight: 1.0)],
    )"#;
    std::fs::write(tmp.path().join("train.ron"), config).unwrap();
    // `eval` reads the config, then opens the rooms it is given: a missing one ends it there.
    let out = shell(
        tmp.path(),
        "metaspatial-rl eval --config train.ron --checkpoint model --rooms no-rooms",
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no-rooms: no such dataset directory"),
        "{stderr}"
    );
}

/// Commands that start wgpu print only what we print, also on a machine without a display
/// session (libwayland used to add `error: XDG_RUNTIME_DIR is invalid or not set`).
#[test]
fn render_prints_no_graphics_library_noise_without_xdg_runtime_dir() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("room.json"), ROOM).unwrap();
    let out = Command::new(BIN)
        .args([
            "render",
            "--room",
            "room.json",
            "--size",
            "56",
            "--out",
            "room.png",
        ])
        .current_dir(tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_ok("render", &out);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    assert!(tmp.path().join("room.png").is_file());
}
