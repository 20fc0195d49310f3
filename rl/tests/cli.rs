//! Every subcommand given a wrong argument, as a new user might: a missing file, a directory
//! where a file belongs, a file that is not what it should be. Each answers with one line that
//! names the file and what is wrong, exit status 1; a malformed command line gets clap's usage
//! error, exit status 2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use metaspatial_rl::config::{DataSource, ModelSource, RunConfig};
use parquet::arrow::ArrowWriter;

/// A scratch directory holding one unreadable JSON file, one bad RON file and one parquet file
/// whose `problem` does not end in a scene graph.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.json"), "{\"scene_graph\": [").unwrap();
        std::fs::write(
            dir.path().join("broken.ron"),
            "(model: (source: Tiny(())),\n  dtaa: 1)",
        )
        .unwrap();
        std::fs::write(dir.path().join("response.txt"), "<answer>[]</answer>").unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let problem: StringArray = [Some("Place the furniture. There is no scene graph here.")]
            .into_iter()
            .collect();
        let answer: StringArray = [Some(
            r#"{"room_name": "a", "user_preference": "", "size_of_room": {"x": 5, "y": 4, "z": 3}}"#,
        )]
        .into_iter()
        .collect();
        let batch = RecordBatch::try_from_iter([
            ("problem", Arc::new(problem) as ArrayRef),
            ("answer", Arc::new(answer) as ArrayRef),
        ])
        .unwrap();
        let file = std::fs::File::create(dir.path().join("step2.parquet")).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A file of the repository's examples.
fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Runs `metaspatial-rl ARGS` in `cwd`; returns the exit code and stderr.
fn run(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("metaspatial-rl runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that `args` fails with status 1 and one `error:` line holding every piece of `names`
/// and saying each thing once.
fn fails(cwd: &Path, args: &[&str], names: &[&str]) {
    let (code, stderr) = run(cwd, args);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        code == Some(1) && lines.len() == 1 && lines[0].starts_with("error: "),
        "`metaspatial-rl {}`: want status 1 and one `error:` line, got {code:?}:\n{stderr}",
        args.join(" ")
    );
    let parts: Vec<&str> = lines[0].split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`metaspatial-rl {}`: `{part}` is said twice: {}",
            args.join(" "),
            lines[0]
        );
    }
    for name in names {
        assert!(
            lines[0].contains(name),
            "`metaspatial-rl {}`: the error does not name `{name}`: {}",
            args.join(" "),
            lines[0]
        );
    }
}

/// Asserts that `args` is refused as a usage error: status 2, an `error:` naming `what`.
fn usage_error(cwd: &Path, args: &[&str], what: &str) {
    let (code, stderr) = run(cwd, args);
    assert!(
        code == Some(2) && stderr.starts_with("error: ") && stderr.contains(what),
        "`metaspatial-rl {}`: want status 2 and an error naming `{what}`, got {code:?}:\n{stderr}",
        args.join(" ")
    );
}

#[test]
fn every_subcommand_has_help() {
    let s = Scratch::new();
    let subcommands: [&[&str]; 21] = [
        &[],
        &["run"],
        &["sft"],
        &["bench"],
        &["bench-policy"],
        &["eval"],
        &["doctor"],
        &["data"],
        &["data", "gen"],
        &["data", "stats"],
        &["data", "solve"],
        &["data", "import"],
        &["data", "baseline"],
        &["data", "coverage"],
        &["score"],
        &["generate"],
        &["reward", "new"],
        &["reward", "test"],
        &["render"],
        &["views"],
        &["replay"],
    ];
    for sub in subcommands {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
            .args(&args)
            .current_dir(s.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Usage: metaspatial-rl"),
            "`metaspatial-rl {}`: {text}",
            args.join(" ")
        );
    }
}

#[test]
fn malformed_command_lines_are_usage_errors() {
    let s = Scratch::new();
    let p = s.path();
    usage_error(p, &["scroe"], "scroe");
    usage_error(p, &["score", "--room", "r.json"], "--response");
    usage_error(
        p,
        &[
            "render", "--room", "r.json", "--view", "side", "--out", "o.png",
        ],
        "side",
    );
    usage_error(
        p,
        &[
            "generate",
            "--model",
            "m",
            "--room",
            "r.json",
            "--prompt-file",
            "p",
        ],
        "--prompt-file",
    );
    usage_error(p, &["reward", "new", "tidy", "--lang", "perl"], "perl");
    usage_error(p, &["data", "gen", "--rooms", "many", "--out", "d"], "many");
    usage_error(p, &["run"], "CONFIG");
    usage_error(p, &["doctor", "--gpu"], "--gpu");
    usage_error(p, &["replay", "run", "--port", "99999"], "99999");
    usage_error(p, &["-v", "-q", "doctor"], "--quiet");
    usage_error(
        p,
        &["data", "baseline", "d", "--split", "dev"],
        "expected train, val or test",
    );
    usage_error(
        p,
        &[
            "eval",
            "--checkpoint",
            "c",
            "--rooms",
            "d",
            "--split",
            "dev",
        ],
        "dev",
    );
    usage_error(
        p,
        &[
            "generate", "--model", "m", "--room", "r.json", "--device", "gpu",
        ],
        "expected auto, cpu, cuda or cuda:N",
    );
    usage_error(
        p,
        &[
            "data",
            "gen",
            "--rooms",
            "2",
            "--min-objects",
            "0",
            "--out",
            "d",
        ],
        "--min-objects 0",
    );
    usage_error(
        p,
        &[
            "data",
            "gen",
            "--rooms",
            "2",
            "--min-objects",
            "5",
            "--max-objects",
            "3",
            "--out",
            "d",
        ],
        "1 ≤ min ≤ max",
    );
}

#[test]
fn rooms_and_responses_that_cannot_be_read_are_named() {
    let s = Scratch::new();
    let p = s.path();
    let room = example("examples/rooms/study.json");
    let room = room.to_str().unwrap();
    for command in [&["score"][..], &["render", "--out", "out.png"][..]] {
        let cases: [(&str, &str, &[&str]); 5] = [
            (
                "missing.json",
                "response.txt",
                &["missing.json", "No such file"],
            ),
            ("empty", "response.txt", &["empty", "directory"]),
            ("broken.json", "response.txt", &["broken.json"]),
            (room, "missing.txt", &["missing.txt", "No such file"]),
            (room, "empty", &["empty", "directory"]),
        ];
        for (room, response, names) in cases {
            let mut args = command.to_vec();
            args.extend(["--room", room, "--response", response]);
            fails(p, &args, names);
        }
    }
}

#[test]
fn configs_that_cannot_be_read_are_named() {
    let s = Scratch::new();
    let p = s.path();
    for command in ["run", "sft", "bench"] {
        fails(
            p,
            &[command, "missing.ron"],
            &["missing.ron", "No such file"],
        );
        fails(p, &[command, "empty"], &["empty", "directory"]);
        fails(p, &[command, "broken.ron"], &["broken.ron", "2:"]);
    }
    fails(
        p,
        &["eval", "--checkpoint", "missing", "--rooms", "empty"],
        &["missing", "no such checkpoint"],
    );
    fails(
        p,
        &["eval", "--checkpoint", "empty", "--rooms", "empty"],
        &["empty", "--config"],
    );
    fails(
        p,
        &[
            "eval",
            "--checkpoint",
            "empty",
            "--rooms",
            "empty",
            "--config",
            "broken.ron",
        ],
        &["broken.ron"],
    );
    fails(
        p,
        &[
            "reward",
            "test",
            "--config",
            "missing.ron",
            "--room",
            "r.json",
            "--response",
            "response.txt",
        ],
        &["missing.ron"],
    );
    fails(
        p,
        &[
            "reward",
            "test",
            "--config",
            "empty",
            "--room",
            "r.json",
            "--response",
            "response.txt",
        ],
        &["empty", "directory"],
    );
}

#[test]
fn checkpoints_that_cannot_be_read_are_named() {
    let s = Scratch::new();
    let p = s.path();
    fails(
        p,
        &[
            "generate",
            "--model",
            "missing",
            "--prompt-file",
            "response.txt",
        ],
        &["missing"],
    );
    fails(
        p,
        &[
            "generate",
            "--model",
            "response.txt",
            "--prompt-file",
            "response.txt",
        ],
        &["response.txt"],
    );
    fails(p, &["bench-policy", "--model", "missing"], &["missing"]);
    // A run whose starting model has no tokenizer names the file it could not read.
    let mut config = RunConfig::from_file(&example("configs/demo.ron")).unwrap();
    config.model.source = ModelSource::Checkpoint(p.join("empty"));
    if let DataSource::Generate(g) = &mut config.data.source {
        g.rooms = 10;
    }
    std::fs::write(p.join("no-tokenizer.ron"), config.to_ron().unwrap()).unwrap();
    fails(
        p,
        &["-q", "run", "no-tokenizer.ron", "--out", "run"],
        &["empty/tokenizer.json", "No such file"],
    );
}

#[test]
fn datasets_that_cannot_be_read_are_named() {
    let s = Scratch::new();
    let p = s.path();
    for command in ["stats", "solve", "baseline", "coverage"] {
        fails(
            p,
            &["data", command, "missing"],
            &["missing", "no such dataset directory"],
        );
        fails(
            p,
            &["data", command, "empty"],
            &["empty", "no manifest.json"],
        );
        fails(
            p,
            &["data", command, "response.txt"],
            &["response.txt", "not a directory"],
        );
    }
    fails(
        p,
        &["data", "gen", "--rooms", "2", "--out", "response.txt"],
        &["response.txt", "not a directory"],
    );
    fails(
        p,
        &[
            "data",
            "import",
            "--from",
            "metaspatial",
            "missing.parquet",
            "--out",
            "d",
        ],
        &["missing.parquet"],
    );
    fails(
        p,
        &[
            "data",
            "import",
            "--from",
            "metaspatial",
            "broken.json",
            "--out",
            "d",
        ],
        &["broken.json", "not a parquet file"],
    );
    fails(
        p,
        &[
            "data",
            "import",
            "--from",
            "metaspatial",
            "empty",
            "--out",
            "d",
        ],
        &["empty", "a directory, not a parquet file"],
    );
    fails(
        p,
        &[
            "data",
            "import",
            "--from",
            "metaspatial",
            "step2.parquet",
            "--out",
            "d",
        ],
        &["step2.parquet row 0", "column `problem`", "scene-graph"],
    );
    fails(
        p,
        &["data", "import", "--from", "idesign", "empty", "--out", "d"],
        &["empty", "no .json scene graphs"],
    );
    fails(
        p,
        &[
            "data", "import", "--from", "idesign", "missing", "--out", "d",
        ],
        &["missing"],
    );
}

#[test]
fn reward_scaffolds_and_replays_refuse_bad_targets() {
    let s = Scratch::new();
    let p = s.path();
    fails(
        p,
        &["reward", "new", "Tidy", "--lang", "python"],
        &["Tidy", "lower-case"],
    );
    fails(
        p,
        &["reward", "new", "empty", "--lang", "python"],
        &["empty", "already exists"],
    );
    fails(p, &["replay", "missing", "--export", "site"], &["missing"]);
    fails(p, &["replay", "missing"], &["missing"]);
    fails(
        p,
        &["replay", "response.txt", "--export", "site"],
        &["response.txt"],
    );
}
