//! The `run` command as a user meets it: killed with SIGKILL mid-run, resumed with `--resume`,
//! finished, then evaluated with `eval`; `bench` on the same config, and `bench-policy`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metaspatial_policy::tiny::RandomModel;
use metaspatial_replay::record::{EvalReport, MetricsLine};

const BIN: &str = env!("CARGO_BIN_EXE_metaspatial-rl");

fn write_config(path: &Path) {
    let mut config = common::shrunk_demo(30);
    config.sft = None;
    config.algorithm.steps = 4;
    config.algorithm.rooms_per_step = 2;
    config.algorithm.group_size = 2;
    config.generation.max_new_tokens = 16;
    config.eval.rooms = 2;
    config.logging.checkpoint_every = 1;
    config.logging.rollout_images = false;
    std::fs::write(path, config.to_ron().unwrap()).unwrap();
}

fn steps(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<MetricsLine>(l).unwrap().step)
        .collect()
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("small.ron");
    write_config(&config);
    let out = tmp.path().join("run");
    let mut child = Command::new(BIN)
        .args(["-q", "run"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = out.join("checkpoints/step-000002/trainer_state.json");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its second checkpoint"
        );
        assert!(
            start.elapsed() < Duration::from_mins(5),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(steps(&out).starts_with(&[1, 2]));

    let resumed = Command::new(BIN)
        .args(["-q", "run"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(steps(&out), [1, 2, 3, 4], "no step lost or repeated");
    let table = String::from_utf8_lossy(&resumed.stdout);
    assert!(table.contains("valid_scene_rate"), "{table}");
    assert!(table.contains("metaspatial-rl replay"), "{table}");

    let eval = Command::new(BIN)
        .args(["-q", "eval", "--checkpoint"])
        .arg(out.join("checkpoints/step-000004"))
        .arg("--rooms")
        .arg(out.join("data"))
        .args(["--limit", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: EvalReport = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!((report.step, report.count), (4, 2));
    assert!(report.metrics.iter().any(|m| m.name == "mean_total_reward"));
}

#[test]
fn a_bad_config_is_refused_with_the_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bad.ron");
    std::fs::write(&config, "(model: (source: Tiny(())), data: (source: Dir(\"nowhere\")), rewards: [], algorithm: (group_size: 1))").unwrap();
    let out = Command::new(BIN).arg("run").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.ron") && err.contains("group_size"),
        "{err}"
    );
}

#[test]
fn bench_times_steps_and_prints_the_breakdown() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("small.ron");
    write_config(&config);
    let out = tmp.path().join("bench");
    let bench = Command::new(BIN)
        .args(["-q", "bench"])
        .arg(&config)
        .args(["--steps", "2", "--warmup", "1"])
        .args(["--finetune", "lora", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let table = String::from_utf8_lossy(&bench.stdout);
    assert!(table.contains("2 measured steps"), "{table}");
    // The untrained model scores every answer alike and runs every answer to `max_new_tokens`;
    // a run would drop all of them, the bench trains them all and times that update.
    let median = |label: &str| -> f64 {
        let row = table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} row: {table}"));
        let values: Vec<&str> = row[label.len()..].split_whitespace().collect();
        values[values.len() - 3].parse().unwrap()
    };
    assert!(median("tokens/s") > 0.0, "{table}");
    assert!(median("  update (s)") > 0.0, "{table}");
    let sequences = median("trained sequences per step");
    assert!(sequences >= 4.0, "{table}");
    assert!(median("trained tokens per step") >= sequences, "{table}");
    assert!(table.contains("peak memory: "), "{table}");
    // The warm-up step is logged too; nothing else of a run (no evaluation, no checkpoint).
    assert_eq!(steps(&out), [1, 2, 3]);
    for empty in ["checkpoints", "eval"] {
        let entries = std::fs::read_dir(out.join(empty)).unwrap().count();
        assert_eq!(entries, 0, "{empty}/ holds {entries} entries");
    }
}

#[test]
fn bench_policy_times_a_checkpoint_and_saves_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    let corpus = ["place the bed by the north wall".to_owned()];
    RandomModel::default()
        .write_checkpoint(&model, &corpus, 3)
        .unwrap();
    let inputs = tmp.path().join("inputs.safetensors");
    let bench = |image_side: &str| {
        Command::new(BIN)
            .args(["-q", "bench-policy", "--model"])
            .arg(&model)
            .args(["--prompts", "2", "--group", "3", "--prompt-tokens", "40"])
            .args([
                "--image-side",
                image_side,
                "--new-tokens",
                "4",
                "--repeats",
                "2",
            ])
            .args(["--device", "cpu", "--json", "--save-inputs"])
            .arg(&inputs)
            .output()
            .unwrap()
    };
    let out = bench("56");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sequences"], 6);
    assert_eq!(report["generate_s"].as_array().unwrap().len(), 2);
    for rate in ["generated_tokens_per_s", "scored_tokens_per_s"] {
        assert!(report[rate].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(report["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);
    let saved: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&inputs)
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(saved["input_ids"].size(), [2, 40]);
    // 56 × 56 pixels: 4 × 4 patches of 14, merged 2 × 2 into 4 image tokens.
    assert_eq!(
        Vec::<i64>::try_from(saved["image_grid_thw"].view([-1])).unwrap(),
        [1, 4, 4, 1, 4, 4]
    );
    assert_eq!(saved["pixel_values"].size()[0], 32);

    let odd = bench("50");
    assert!(!odd.status.success());
    let message = String::from_utf8_lossy(&odd.stderr);
    assert!(message.contains("image side 50"), "{message}");
}
