//! The world-model objective end to end at toy scale: at weight 0 a run computes exactly what
//! the same run without the head computes; with a weight its head is logged, saved with the
//! checkpoints, and a resumed run reproduces the uninterrupted one.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use metaspatial_replay::record::MetricsLine;
use metaspatial_rl::config::{RunConfig, WorldModelConfig};
use metaspatial_rl::run::{RunOptions, run};

fn small_demo(world_model: Option<WorldModelConfig>) -> RunConfig {
    let mut config = common::shrunk_demo(40);
    let sft = config.sft.as_mut().unwrap();
    sft.steps = 2;
    sft.batch_size = 4;
    config.algorithm.steps = 2;
    config.algorithm.rooms_per_step = 2;
    config.algorithm.group_size = 2;
    config.algorithm.world_model = world_model;
    config.generation.max_new_tokens = 24;
    config.eval.rooms = 3;
    config.logging.checkpoint_every = 1;
    config
}

fn metrics(path: &Path) -> Vec<MetricsLine> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Per step, the deterministic values, without (`aux`) or with only (`!aux`) the head's.
fn values(path: &Path, aux: bool) -> Vec<BTreeMap<String, f64>> {
    metrics(path)
        .iter()
        .map(|m| {
            m.deterministic_values()
                .into_iter()
                .filter(|(k, _)| k.starts_with("aux/") == aux)
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        })
        .collect()
}

fn options(out: &Path, resume: bool, stop_after: Option<u64>) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        resume,
        stop_after,
    }
}

// One test calling the checks in turn: building a tiny model seeds libtorch's global generator,
// which runs in parallel threads would share.
#[test]
fn the_world_model_objective_is_inert_at_weight_zero_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, inert) = (tmp.path().join("plain"), tmp.path().join("inert"));
    run(small_demo(None), &options(&plain, false, None)).unwrap();
    let zero = WorldModelConfig {
        weight: 0.0,
        ..WorldModelConfig::default()
    };
    run(small_demo(Some(zero)), &options(&inert, false, None)).unwrap();
    for file in ["sft/metrics.jsonl", "metrics.jsonl"] {
        assert_eq!(
            values(&plain.join(file), false),
            values(&inert.join(file), false),
            "{file}"
        );
        assert!(
            values(&plain.join(file), true)
                .iter()
                .all(BTreeMap::is_empty)
        );
    }
    // Every warm-start example has a target (its reference layout); the two-step warm-start
    // writes no answer that parses, so GRPO logs the head's values on no step here (the
    // update's own test covers that path).
    for step in values(&inert.join("sft/metrics.jsonl"), true) {
        let (loss, iou) = (step["aux/world_model_loss"], step["aux/occupancy_iou"]);
        assert!(
            loss.is_finite() && loss > 0.0 && (0.0..=1.0).contains(&iou),
            "{step:?}"
        );
    }
    let eval = |dir: &Path| std::fs::read_to_string(dir.join("eval/step-000002.json")).unwrap();
    assert_eq!(eval(&plain), eval(&inert));

    let trained = WorldModelConfig {
        weight: 1.0,
        ..WorldModelConfig::default()
    };
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    run(small_demo(Some(trained)), &options(&whole, false, None)).unwrap();
    for head in [
        "sft/checkpoints/step-000002/model/world_model.safetensors",
        "checkpoints/step-000002/model/world_model.safetensors",
    ] {
        assert!(whole.join(head).exists(), "missing {head}");
    }
    // The head's loss moves the policy: the warm-starts part ways.
    assert_ne!(
        values(&whole.join("sft/metrics.jsonl"), false),
        values(&inert.join("sft/metrics.jsonl"), false)
    );
    run(small_demo(Some(trained)), &options(&split, false, Some(1))).unwrap();
    run(small_demo(Some(trained)), &options(&split, true, None)).unwrap();
    for aux in [false, true] {
        assert_eq!(
            values(&split.join("metrics.jsonl"), aux),
            values(&whole.join("metrics.jsonl"), aux)
        );
    }
    let head = |dir: &Path| {
        std::fs::read(dir.join("checkpoints/step-000002/model/world_model.safetensors")).unwrap()
    };
    assert!(head(&split) == head(&whole), "the resumed head differs");
}
