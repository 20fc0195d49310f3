//! The demo config end to end at toy scale: rooms generated, tokenizer trained, SFT, two GRPO
//! steps with two-turn episodes, evaluation; and a run stopped after a step and resumed gives
//! the same metrics as an uninterrupted one, in f32 and in bf16 (whose f32 master weights the
//! checkpoint must carry).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use metaspatial_replay::record::{MetricsLine, RolloutRecord};
use metaspatial_rl::config::{
    Dtype, GeometryChannel, GeometryModelConfig, RunConfig, ViewChoice, ViewSelection,
};
use metaspatial_rl::run::{RunOptions, run};

/// `configs/demo.ron` shrunk to seconds.
fn small_demo(steps: u64) -> RunConfig {
    let mut config = common::shrunk_demo(40);
    let sft = config.sft.as_mut().unwrap();
    sft.steps = 2;
    sft.batch_size = 4;
    config.algorithm.steps = steps;
    config.algorithm.rooms_per_step = 2;
    config.algorithm.group_size = 2;
    config.generation.max_new_tokens = 24;
    config.eval.rooms = 3;
    config.logging.checkpoint_every = 1;
    config
}

/// Per step, the values a resumed run must reproduce.
fn deterministic(lines: &[MetricsLine]) -> Vec<(u64, BTreeMap<&str, f64>)> {
    lines
        .iter()
        .map(|m| (m.step, m.deterministic_values()))
        .collect()
}

fn metrics(dir: &Path) -> Vec<MetricsLine> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// One test calling both checks in turn: building a tiny model seeds libtorch's global
// generator, which runs in parallel threads would share, and the resume check compares runs
// bit for bit.
#[test]
fn demo_config_runs_and_resumes_exactly() {
    the_demo_config_runs_two_steps_and_writes_a_complete_run_directory();
    a_resumed_run_reproduces_the_uninterrupted_one(Dtype::F32);
    a_resumed_run_reproduces_the_uninterrupted_one(Dtype::Bf16);
}

fn the_demo_config_runs_two_steps_and_writes_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // The model sees the plan and the one of four orbit views that sees the most, with the
    // exact geometry of each through the geometry channel.
    let mut config = small_demo(2);
    config.env.views = vec![ViewChoice::Top];
    config.env.view_selection = Some(ViewSelection {
        candidates: 4,
        k: 1,
        ..ViewSelection::default()
    });
    config.model.geometry = Some(GeometryModelConfig {
        channels: vec![
            GeometryChannel::Points,
            GeometryChannel::Depth,
            GeometryChannel::Valid,
            GeometryChannel::Kind,
            GeometryChannel::RelativePose,
        ],
        hidden: 16,
        lr_scale: 10.0,
    });
    let comparison = run(
        config,
        &RunOptions {
            out: out.clone(),
            resume: false,
            stop_after: None,
        },
    )
    .unwrap()
    .expect("a run that reaches its last step compares before and after");
    assert_eq!(comparison.before.count, 3);
    assert_eq!(comparison.after.step, 2);
    let lines = metrics(&out);
    assert_eq!(lines.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2]);
    for key in [
        "reward/total/mean",
        "reward/collision/std",
        "loss",
        "kl",
        "entropy",
        "clip_fraction",
        "grad_norm",
        "lr",
        "response_length",
        "tokens_per_s",
        "time/generate",
        "time/assess",
        "time/render",
        "time/reward",
        "time/train",
        "zero_variance_groups",
    ] {
        assert!(lines[0].values.contains_key(key), "metrics lack {key}");
    }
    let rollouts: Vec<RolloutRecord> =
        std::fs::read_to_string(out.join("rollouts/step-000002.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(rollouts.len(), 4, "2 rooms × 2 samples");
    let turns: Vec<_> = rollouts.iter().flat_map(|r| &r.turns).collect();
    for images in turns.iter().map(|t| &t.images).filter(|i| !i.is_empty()) {
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].view, "top");
        assert!(images[1].view.starts_with("orbit-a"), "{}", images[1].view);
        for image in images {
            assert!(out.join(&image.path).exists(), "{}", image.path);
            assert!(image.camera.is_some());
        }
    }
    // The connector starts at zero and only the features of the rendered images can move its
    // last layer.
    let connector = tch::Tensor::read_safetensors(
        out.join("checkpoints/step-000002/model/geometry.safetensors"),
    )
    .unwrap();
    let (_, last) = connector
        .iter()
        .find(|(name, _)| name.ends_with("fc2.weight"))
        .expect("the connector's last layer");
    assert!(last.abs().sum(tch::Kind::Double).double_value(&[]) > 0.0);
    for dir in [
        "config.ron",
        "eval/step-000000.json",
        "eval/step-000002.json",
        "checkpoints/step-000002/model/config.json",
        "checkpoints/step-000002/optimizer.safetensors",
        "checkpoints/step-000002/trainer_state.json",
        "sft/checkpoints/step-000002/model/model.safetensors",
        "data/manifest.json",
        "model-init/tokenizer.json",
    ] {
        assert!(out.join(dir).exists(), "missing {dir}");
    }
}

fn a_resumed_run_reproduces_the_uninterrupted_one(dtype: Dtype) {
    let small_demo = |steps| {
        let mut config = small_demo(steps);
        config.model.dtype = dtype;
        config
    };
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let options = |out: &Path, resume: bool, stop_after: Option<u64>| RunOptions {
        out: out.to_path_buf(),
        resume,
        stop_after,
    };
    run(small_demo(3), &options(&whole, false, None)).unwrap();
    let split = tmp.path().join("split");
    let stopped = run(small_demo(3), &options(&split, false, Some(1))).unwrap();
    assert!(stopped.is_none());
    assert_eq!(metrics(&split).len(), 1);
    let fresh_again = run(small_demo(3), &options(&split, false, None));
    assert!(fresh_again.unwrap_err().to_string().contains("--resume"));
    run(small_demo(3), &options(&split, true, None)).unwrap();
    assert_eq!(
        deterministic(&metrics(&split)),
        deterministic(&metrics(&whole))
    );
    let eval = |dir: &Path| std::fs::read_to_string(dir.join("eval/step-000003.json")).unwrap();
    assert_eq!(eval(&split), eval(&whole), "{dtype:?}");
    // Bit for bit: the weights and the optimiser state (moments, and the masters in bf16).
    for file in ["model/model.safetensors", "optimizer.safetensors"] {
        let read =
            |dir: &Path| std::fs::read(dir.join("checkpoints/step-000003").join(file)).unwrap();
        assert!(read(&split) == read(&whole), "{dtype:?}: {file} differs");
    }
}
