//! A synthetic run as big as a long training run: many metric lines, rollout files of many
//! samples. Shared by the tests and the overview bench.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Reward components of the synthetic run.
const COMPONENTS: [&str; 6] = [
    "format",
    "collision",
    "bounds",
    "support",
    "relations",
    "aesthetic",
];

/// Writes `metrics.jsonl` with `steps` lines of about thirty scalars each.
pub fn write_metrics(run: &Path, steps: u64) {
    std::fs::create_dir_all(run).unwrap();
    let mut text = String::new();
    for step in 1..=steps {
        let t = step as f64;
        write!(text, "{{\"step\":{step},\"elapsed\":{:.3}", 7.25 * t).unwrap();
        let mut value = |name: &str, v: f64| write!(text, ",\"{name}\":{v:.6}").unwrap();
        value(
            "reward/total/mean",
            (t / 2000.0).tanh() + 0.1 * (t * 0.37).sin(),
        );
        value("reward/total/std", 0.4 - 0.1 * (t / 5000.0));
        for (i, c) in COMPONENTS.iter().enumerate() {
            value(
                &format!("reward/{c}/mean"),
                (i as f64 * 0.1 + t / 10_000.0).sin(),
            );
            value(&format!("reward/{c}/std"), 0.2 + 0.01 * i as f64);
        }
        for (name, v) in [
            ("loss", 1.0 / (1.0 + t / 100.0)),
            ("kl", 0.0001 * t.sqrt()),
            ("entropy", 1.5 - t / 20_000.0),
            ("clip_fraction", 0.05),
            ("grad_norm", 0.8 + 0.1 * (t * 0.11).cos()),
            ("lr", 1e-5),
            ("response_length", 200.0 + 30.0 * (t * 0.01).sin()),
            ("tokens_per_s", 1500.0 + 50.0 * (t * 0.07).sin()),
            ("time/generate", 5.0),
            ("time/score", 1.2),
            ("time/render", 0.8),
            ("time/train", 2.5),
            ("zero_variance_groups", (step % 3) as f64),
        ] {
            value(name, v);
        }
        text.push_str("}\n");
    }
    std::fs::write(run.join("metrics.jsonl"), text).unwrap();
}

/// One rollout line of `step`: a room of four objects, two turns.
pub fn rollout_line(step: u64, group: usize, sample: usize) -> String {
    let reward = ((group * 31 + sample * 17) % 100) as f64 / 50.0 - 0.5;
    let turn = |turn: usize| {
        serde_json::json!({
            "turn": turn,
            "prompt": "Place the objects of the room.",
            "response": "<think>The bed goes against the north wall.</think><answer>[]</answer>",
            "reasoning": "The bed goes against the north wall.",
            "answer": "[{\"new_object_id\": \"bed_1\", \"x\": 2.0, \"y\": 1.9, \"z\": 0.25, \"rotation\": 180}]",
            "format_error": null,
            "prompt_tokens": 400,
            "response_tokens": 180 + turn,
            "finish": "stop",
            "reward": reward + turn as f64 * 0.1,
            "advantage": 0.3,
            "components": {"format": 1.0, "collision": -0.5, "relations": 0.25},
            "valid": turn == 2,
            "poses": [{"id": "bed_1", "position": [2.0, 1.9, 0.25], "rotation": 180.0}],
            "violations": {
                "collisions": [{"a": "bed_1", "b": "desk_1", "depth": 0.1}],
                "out_of_bounds": [],
                "unsupported": [],
                "unsatisfied_relations": [],
                "missing_objects": ["lamp_1"]
            },
            "images": [{"view": "top", "path": format!("rollouts/step-{step:06}/g{group}-s{sample}-t{turn}-top.png")}]
        })
    };
    serde_json::json!({
        "step": step,
        "group": group,
        "sample": sample,
        "room": {
            "id": format!("room_{group:04}"),
            "size": [4.0, 3.0, 2.6],
            "description": "A bedroom.",
            "objects": [
                {"id": "bed_1", "category": "bed", "size": [1.6, 2.0, 0.5]},
                {"id": "desk_1", "category": "desk", "size": [1.2, 0.6, 0.75]},
                {"id": "chair_1", "category": "chair", "size": [0.5, 0.5, 0.9]},
                {"id": "lamp_1", "category": "lamp", "size": [0.3, 0.3, 1.5]}
            ]
        },
        "reward": reward,
        "turns": [turn(1), turn(2)]
    })
    .to_string()
}

/// Writes `rollouts/step-NNNNNN.jsonl` for each of `steps`, `groups × group_size` lines each.
pub fn write_rollouts(run: &Path, steps: &[u64], groups: usize, group_size: usize) {
    let dir = run.join("rollouts");
    std::fs::create_dir_all(&dir).unwrap();
    for &step in steps {
        let mut file = std::fs::File::create(dir.join(format!("step-{step:06}.jsonl"))).unwrap();
        for group in 0..groups {
            for sample in 0..group_size {
                writeln!(file, "{}", rollout_line(step, group, sample)).unwrap();
            }
        }
    }
}
