//! A run killed with SIGKILL at random moments — during data generation, model and tokenizer
//! preparation, the supervised warm-start, the evaluations and GRPO — and resumed each time
//! (killed again, often) ends with the metrics, evaluations, rollouts and weights of a run
//! never interrupted, with checkpoints rotated away all along.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metaspatial_env::data::rng::Rng;
use metaspatial_replay::record::MetricsLine;

const BIN: &str = env!("CARGO_BIN_EXE_metaspatial-rl");

const SFT_STEPS: u64 = 4;
const GRPO_STEPS: u64 = 4;
/// Kills the test makes at least, over every chain of kills and resumes.
const MIN_KILLS: usize = 20;
/// Kills after a chain's first, before the chain is let finish.
const KILLS_AFTER_FIRST: usize = 3;
/// Chains after which an unhit phase fails the test.
const MAX_CHAINS: usize = 14;

/// `configs/demo.ron` shrunk so that a run takes seconds: a checkpoint every step and two kept,
/// so every resumed session outlives the checkpoint it started from.
fn write_config(path: &Path) {
    let mut config = common::shrunk_demo(40);
    let sft = config.sft.as_mut().unwrap();
    sft.steps = SFT_STEPS;
    sft.batch_size = 2;
    config.algorithm.steps = GRPO_STEPS;
    config.algorithm.rooms_per_step = 2;
    config.algorithm.group_size = 2;
    config.generation.max_new_tokens = 16;
    config.eval.rooms = 2;
    config.env.image_size = 56;
    config.logging.checkpoint_every = 1;
    config.logging.keep_checkpoints = 2;
    config.logging.eval_every = 2;
    config.logging.rollout_images = false;
    std::fs::write(path, config.to_ron().unwrap()).unwrap();
}

/// Where a run stands, read from what its directory holds: the first unfinished phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Not even the config written.
    Start,
    /// Rooms generated and solved.
    Data,
    /// Tokenizer trained and the model built.
    Model,
    /// Supervised warm-start.
    Sft,
    /// Evaluation before GRPO.
    EvalBefore,
    /// GRPO steps (with their evaluations every `eval_every` steps).
    Grpo,
    /// Evaluation after GRPO.
    EvalAfter,
    /// Everything written.
    Done,
}

const PHASES: [Phase; 8] = [
    Phase::Start,
    Phase::Data,
    Phase::Model,
    Phase::Sft,
    Phase::EvalBefore,
    Phase::Grpo,
    Phase::EvalAfter,
    Phase::Done,
];

/// The phases a kill must land in at least once.
const TARGETS: [Phase; 6] = [
    Phase::Data,
    Phase::Model,
    Phase::Sft,
    Phase::EvalBefore,
    Phase::Grpo,
    Phase::EvalAfter,
];

fn step_dir(step: u64) -> String {
    format!("step-{step:06}")
}

fn phase_of(out: &Path) -> Phase {
    let done = [
        out.join("config.ron"),
        out.join("data/manifest.json"),
        out.join("model-init/config.json"),
        out.join("sft/checkpoints")
            .join(step_dir(SFT_STEPS))
            .join("trainer_state.json"),
        out.join("eval/per-room")
            .join(format!("{}.json", step_dir(0))),
        out.join("checkpoints")
            .join(step_dir(GRPO_STEPS))
            .join("trainer_state.json"),
        out.join("eval/per-room")
            .join(format!("{}.json", step_dir(GRPO_STEPS))),
    ];
    let finished = done.iter().take_while(|p| p.exists()).count();
    PHASES[finished]
}

fn spawn(bin: &Path, config: &Path, out: &Path, resume: bool) -> Child {
    let mut command = Command::new(bin);
    command
        .args(["-q", "run"])
        .arg(config)
        .arg("--out")
        .arg(out);
    if resume {
        command.arg("--resume");
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit, requiring success.
fn finish(child: Child, what: &str) {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The uninterrupted run, with the moment (since its start) each phase began.
fn reference_run(bin: &Path, config: &Path, out: &Path) -> BTreeMap<Phase, Duration> {
    let start = Instant::now();
    let mut child = spawn(bin, config, out, false);
    let mut began = BTreeMap::from([(Phase::Start, Duration::ZERO)]);
    loop {
        let exited = child.try_wait().unwrap().is_some();
        let phase = phase_of(out);
        for p in PHASES.iter().filter(|p| **p <= phase) {
            began.entry(*p).or_insert_with(|| start.elapsed());
        }
        if exited {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_mins(5),
            "the uninterrupted run took over 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    finish(child, "the uninterrupted run");
    assert_eq!(phase_of(out), Phase::Done);
    began
}

/// Runs `child` until its run directory shows `phase` begun and `after` more has passed, then
/// SIGKILLs it; returns the phase it was in, or `None` when it finished first.
fn kill_after(mut child: Child, out: &Path, phase: Phase, after: Duration) -> Option<Phase> {
    let mut start = None;
    while start.is_none_or(|s: Instant| s.elapsed() < after) {
        if child.try_wait().unwrap().is_some() {
            finish(child, "a resumed run");
            return None;
        }
        if start.is_none() && phase_of(out) >= phase {
            start = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if status.success() {
        // It finished between the last look and the kill.
        return None;
    }
    Some(phase_of(out))
}

/// A moment drawn uniformly from the uninterrupted run's time after `from` began, as the
/// phase it falls in and the time since that phase began.
fn random_moment(
    began: &BTreeMap<Phase, Duration>,
    from: Phase,
    rng: &mut Rng,
) -> (Phase, Duration) {
    let start = began[&from];
    let moment = start
        + began[&Phase::Done]
            .saturating_sub(start)
            .mul_f64(rng.unit());
    let phase = *PHASES
        .iter()
        .rev()
        .find(|p| began[p] <= moment)
        .expect("the run starts at zero");
    (phase, moment.saturating_sub(began[&phase]))
}

/// Per step, the metrics that do not depend on the wall clock.
fn metrics(path: &Path) -> Vec<(u64, BTreeMap<String, f64>)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let m: MetricsLine = serde_json::from_str(l).unwrap();
            let values = m
                .deterministic_values()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            (m.step, values)
        })
        .collect()
}

/// Every file under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Requires the finished run `out` to have produced what the uninterrupted `reference` did.
fn assert_same_run(out: &Path, reference: &Path, history: &[Phase]) {
    let context = format!("{} after kills in {history:?}", out.display());
    for metrics_file in ["sft/metrics.jsonl", "metrics.jsonl"] {
        assert!(
            metrics(&out.join(metrics_file)) == metrics(&reference.join(metrics_file)),
            "{metrics_file} differs: {context}"
        );
    }
    for dir in ["eval", "rollouts"] {
        let (got, want) = (files(&out.join(dir)), files(&reference.join(dir)));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{dir}/: {context}"
        );
        for (name, bytes) in &want {
            assert!(got[name] == *bytes, "{dir}/{}: {context}", name.display());
        }
    }
    for last in [
        format!("sft/checkpoints/{}", step_dir(SFT_STEPS)),
        format!("checkpoints/{}", step_dir(GRPO_STEPS)),
    ] {
        let (mut got, mut want) = (files(&out.join(&last)), files(&reference.join(&last)));
        let state = Path::new("trainer_state.json");
        assert_eq!(
            state_without_clock(&got.remove(state).unwrap()),
            state_without_clock(&want.remove(state).unwrap()),
            "{last}/trainer_state.json: {context}"
        );
        assert!(got == want, "{last} differs: {context}");
    }
}

/// A checkpoint's trainer state without its wall-clock time.
fn state_without_clock(bytes: &[u8]) -> serde_json::Value {
    let mut state: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    state.as_object_mut().unwrap().remove("elapsed");
    state
}

/// Complete checkpoints left in `dir`.
fn checkpoints(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect()
}

#[test]
fn a_run_killed_anywhere_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    // A build finishing during the minutes this test runs would replace the binary between
    // two sessions of one run; a copy keeps every session on the same code.
    let bin = tmp.path().join("metaspatial-rl");
    std::fs::copy(BIN, &bin).unwrap();
    let config = tmp.path().join("small.ron");
    write_config(&config);
    let reference = tmp.path().join("reference");
    let began = reference_run(&bin, &config, &reference);
    // Rotation really happens: only the newest two of each stage's checkpoints are left.
    let sft_kept = BTreeSet::from([step_dir(SFT_STEPS - 1), step_dir(SFT_STEPS)]);
    assert_eq!(checkpoints(&reference.join("sft/checkpoints")), sft_kept);
    let grpo_kept = BTreeSet::from([step_dir(GRPO_STEPS - 1), step_dir(GRPO_STEPS)]);
    assert_eq!(checkpoints(&reference.join("checkpoints")), grpo_kept);

    let mut rng = Rng::new(14);
    let mut hits: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut attempts: BTreeMap<Phase, u16> = BTreeMap::new();
    let mut kills = 0;
    let mut chain = 0;
    loop {
        let missing: Vec<Phase> = TARGETS
            .iter()
            .copied()
            .filter(|p| !hits.contains_key(p))
            .collect();
        if kills >= MIN_KILLS && missing.is_empty() {
            break;
        }
        assert!(
            chain < MAX_CHAINS,
            "after {chain} chains of kills no kill landed in {missing:?}; phase start times of \
             the uninterrupted run: {began:?}"
        );
        // A chain's first kill aims at a phase not hit yet (or any): once the directory shows
        // it begun, at a random moment of its span in the uninterrupted run, earlier at each
        // retry (a loaded machine can make the uninterrupted run slower). The next ones aim
        // at a random moment of what remained of the uninterrupted run from the phase the kill
        // left the run in (a resumed session is often killed while it starts up).
        let first = missing
            .first()
            .copied()
            .unwrap_or_else(|| TARGETS[rng.below(TARGETS.len())]);
        let next = PHASES[PHASES.iter().position(|p| *p == first).unwrap() + 1];
        let span = began[&next].saturating_sub(began[&first]);
        let tries = attempts.entry(first).or_insert(0);
        let mut aim = (
            first,
            span.mul_f64(rng.range(0.1, 0.9) / f64::from(1 << *tries)),
        );
        *tries += 1;
        let out = tmp.path().join(format!("chain-{chain}"));
        let mut history = Vec::new();
        let mut resume = false;
        loop {
            let child = spawn(&bin, &config, &out, resume);
            // A run killed with everything written only has its last evaluation to redo.
            if history.len() > KILLS_AFTER_FIRST || history.last() == Some(&Phase::Done) {
                finish(child, "the last resume");
                break;
            }
            let Some(killed_in) = kill_after(child, &out, aim.0, aim.1) else {
                break;
            };
            kills += 1;
            *hits.entry(killed_in).or_default() += 1;
            history.push(killed_in);
            // A run killed before writing its config holds nothing to resume: start afresh.
            resume = killed_in != Phase::Start;
            aim = random_moment(&began, killed_in, &mut rng);
        }
        assert_eq!(phase_of(&out), Phase::Done);
        assert_same_run(&out, &reference, &history);
        std::fs::remove_dir_all(&out).unwrap();
        chain += 1;
    }
    eprintln!("{kills} kills in {chain} chains, by phase: {hits:?}; uninterrupted run: {began:?}");
}
