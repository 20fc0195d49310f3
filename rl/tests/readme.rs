//! Every command the READMEs show, run as written and checked against the output they show.
//!
//! A ```` ```console ```` block is a terminal session. `$ ` starts a command (a line ending in
//! `\` continues it on the next line, as in a shell); an optional `? failed` or `? N` line right
//! after it gives the expected exit status (success otherwise); the lines up to the next `$ `
//! or the closing fence are the expected output, stdout and stderr together as a terminal shows
//! them. In expected output `[..]` matches the rest of a line up to the text after it and `...`
//! on a line of its own matches any number of lines.
//!
//! The commands of one file run in order through bash in one scratch copy of the repository's
//! example files, with the `metaspatial-rl` under test first on the `PATH`; a `cd` carries over
//! to the next command, as in a terminal.
//!
//! A ```` ```console,ignore ```` block is not run (long jobs, a GPU, a server that runs until
//! Ctrl-C); the paragraph before it must say so with the words "not run by the tests". Any other
//! shell block (`sh`, `bash`, `shell`) is an error, so no command reaches a README untested.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root, which the README paths are relative to.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rl/ has a parent")
        .to_path_buf()
}

/// What the commands may read: the files the READMEs tell users to try.
const SCRATCH_COPY: [&str; 2] = ["examples", "replay/tests/fixtures/run"];

/// A README command runs in under a minute on a release build; debug builds get twice that.
const TIME_LIMIT: Duration = Duration::from_mins(2);

/// Info strings of blocks that hold shell commands.
const SHELL_LANGS: [&str; 4] = ["console", "sh", "bash", "shell"];

/// The phrase that marks a block as deliberately left out.
const NOT_RUN: &str = "not run by the tests";

/// One `$ ` command of a console block.
#[derive(Debug)]
struct Step {
    /// 1-based line of the `$ `, for messages.
    line: usize,
    /// The command as a shell reads it, continuation lines joined.
    command: String,
    /// `None`: any failure (`? failed`).
    status: Option<i32>,
    /// The expected output, wildcards included.
    output: String,
}

/// The runnable steps of a markdown file, in order, or what is wrong with its blocks.
fn parse(name: &str, text: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let fence_line = i + 1;
        let mut tags = info.split(',').map(str::trim);
        let lang = tags.next().unwrap_or_default();
        let ignored = tags.any(|t| t == "ignore");
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.trim_start().starts_with("```"))
            .map(|n| i + 1 + n)
            .ok_or_else(|| format!("{name}:{fence_line}: code block is never closed"))?;
        if SHELL_LANGS.contains(&lang) {
            if lang != "console" {
                return Err(format!(
                    "{name}:{fence_line}: ```{lang} block: write ```console (run by the tests) or \
                     ```console,ignore with a sentence saying it is {NOT_RUN}"
                ));
            }
            if ignored {
                if !paragraph_before(&lines, i).to_lowercase().contains(NOT_RUN) {
                    return Err(format!(
                        "{name}:{fence_line}: ```console,ignore block without a sentence before it \
                         saying it is {NOT_RUN} and why"
                    ));
                }
            } else {
                steps.extend(parse_block(name, &lines[i + 1..end], i + 2)?);
            }
        }
        i = end + 1;
    }
    Ok(steps)
}

/// The text of the paragraph ending just above line `fence` (0-based).
fn paragraph_before(lines: &[&str], fence: usize) -> String {
    let above = &lines[..fence];
    let end = above
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |n| n + 1);
    let start = above[..end]
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |n| n + 1);
    above[start..end].join(" ")
}

/// The steps of one console block whose first line is `first_line` (1-based).
fn parse_block(name: &str, lines: &[&str], first_line: usize) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = first_line + i;
        let Some(first) = lines[i].strip_prefix("$ ") else {
            return Err(format!(
                "{name}:{line}: a console block starts with a `$ ` command, not `{}`",
                lines[i]
            ));
        };
        let mut command = first.to_owned();
        while command.ends_with('\\') && i + 1 < lines.len() {
            i += 1;
            command.push('\n');
            command.push_str(lines[i]);
        }
        i += 1;
        let mut status = Some(0);
        if let Some(s) = lines.get(i).and_then(|l| l.strip_prefix("? ")) {
            status = match s.trim() {
                "failed" => None,
                code => Some(code.parse().map_err(|_| {
                    format!(
                        "{name}:{}: `? {code}`: expected `? failed` or `? N`",
                        line + 1
                    )
                })?),
            };
            i += 1;
        }
        let mut output = String::new();
        while i < lines.len() && !lines[i].starts_with("$ ") {
            output.push_str(lines[i]);
            output.push('\n');
            i += 1;
        }
        steps.push(Step {
            line,
            command,
            status,
            output,
        });
    }
    Ok(steps)
}

/// Copies `from` to `to` recursively, leaving out Python caches.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs `step` in bash from `cwd`; returns the exit code (`None` when killed), the output and
/// the directory the command ended in.
fn run_step(step: &Step, cwd: &Path, scratch: &Path) -> (Option<i32>, String, PathBuf) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let log = scratch.join(".readme-output");
    let pwd = scratch.join(".readme-pwd");
    let out = File::create(&log).unwrap();
    // The working directory is written out after the command so that a `cd` carries over.
    let script = format!(
        "{}\nstatus=$?\npwd > {}\nexit $status\n",
        step.command,
        pwd.display()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .process_group(0)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("bash runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > TIME_LIMIT {
            // The whole group: bash and whatever the command started.
            Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status()
                .ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    let dir = std::fs::read_to_string(&pwd).map_or_else(|_| cwd.to_path_buf(), |d| d.trim().into());
    (status, output, dir)
}

/// Runs every command of the markdown file `doc` (relative to the repository) and panics with
/// each mismatch, named by file and line.
fn check(doc: &str) {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let steps = parse(doc, &text).unwrap_or_else(|e| panic!("{e}"));
    let scratch = tempfile::tempdir().unwrap();
    for part in SCRATCH_COPY {
        copy_tree(&repo().join(part), &scratch.path().join(part));
    }
    let mut cwd = scratch.path().to_path_buf();
    let assert = snapbox::Assert::new();
    for step in &steps {
        let started = Instant::now();
        let (status, output, dir) = run_step(step, &cwd, scratch.path());
        let mut problems = String::new();
        match (status, step.status) {
            (None, _) => {
                let _ = writeln!(
                    problems,
                    "still running after {} s; README commands finish in under a minute, or \
                     go in a console,ignore block",
                    TIME_LIMIT.as_secs()
                );
            }
            (Some(0), None) => problems.push_str("succeeded, but the README says it fails\n"),
            (Some(got), Some(want)) if got != want => {
                let _ = writeln!(problems, "exit status {got}, the README says {want}");
            }
            _ => {}
        }
        let label = format!("{doc}:{}", step.line);
        if let Err(diff) = assert.try_eq(
            Some(&label),
            snapbox::Data::text(output.clone()),
            snapbox::Data::text(step.output.clone()),
        ) {
            let _ = writeln!(problems, "output differs:\n{diff}");
        }
        assert!(
            problems.is_empty(),
            "{doc}:{}: `{}`\n{problems}\nwhole output:\n{output}",
            step.line,
            step.command
        );
        eprintln!(
            "{doc}:{}: ok in {:.1} s: {}",
            step.line,
            started.elapsed().as_secs_f64(),
            step.command
        );
        cwd = dir;
    }
}

#[test]
fn root_readme() {
    check("README.md");
}

#[test]
fn rewards_readme() {
    check("rewards/README.md");
}

#[test]
fn replay_readme() {
    check("replay/README.md");
}

#[test]
fn configs_readme() {
    check("configs/README.md");
}

#[test]
fn examples_readmes() {
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("README.md").is_file())
        .map(|p| {
            format!(
                "examples/{}/README.md",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "no examples/*/README.md found");
    for doc in docs {
        check(&doc);
    }
}

#[test]
fn blocks_are_parsed_as_a_terminal_shows_them() {
    let doc = "Run it:\n\n```console\n$ a --x \\\n    --y\nout\n[..]\n$ b\n? 2\nerror: b\n```\n\n\
               Not run by the tests: it takes an hour.\n```console,ignore\n$ long\n```\n";
    let steps = parse("doc.md", doc).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].command, "a --x \\\n    --y");
    assert_eq!((steps[0].line, steps[0].status), (4, Some(0)));
    assert_eq!(steps[0].output, "out\n[..]\n");
    assert_eq!((steps[1].line, steps[1].status), (8, Some(2)));
    assert_eq!(steps[1].output, "error: b\n");
}

#[test]
fn untested_command_blocks_are_refused() {
    let sh = parse("doc.md", "Try:\n\n```sh\nmetaspatial-rl doctor\n```\n").unwrap_err();
    assert!(sh.starts_with("doc.md:3: ```sh block"), "{sh}");
    let silent = parse("doc.md", "Try:\n\n```console,ignore\n$ long\n```\n").unwrap_err();
    assert!(silent.contains("without a sentence"), "{silent}");
    let prose = parse("doc.md", "```console\nmetaspatial-rl doctor\n```\n").unwrap_err();
    assert!(
        prose.starts_with("doc.md:2: a console block starts with"),
        "{prose}"
    );
}
