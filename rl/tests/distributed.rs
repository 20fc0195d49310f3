//! Data-parallel runs on loopback (Gloo), launched the way torchrun launches them: the ranks
//! together train what one process trains, a killed rank stops the others with its number, and
//! what cannot work (another world size on resume, configs that differ) is refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use metaspatial_replay::record::MetricsLine;
use metaspatial_rl::config::RunConfig;
use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_metaspatial-rl");

/// Rooms per step, split into as many generation calls: any world size from 1 to 3 plays the
/// same calls with the same seeds (two ranks share them out unevenly).
const ROOMS: usize = 3;

fn config(steps: u64) -> RunConfig {
    let mut config = common::shrunk_demo(24);
    config.sft = None;
    config.algorithm.steps = steps;
    config.algorithm.rooms_per_step = ROOMS;
    config.algorithm.group_size = 2;
    config.env.max_turns = 1;
    config.generation.max_new_tokens = 12;
    config.env.image_size = 56;
    config.eval.rooms = 3;
    config.logging.checkpoint_every = 2;
    config.logging.rollout_images = false;
    config.distributed.rollout_chunks = Some(ROOMS);
    config.distributed.timeout_s = 60;
    config
}

fn write(config: &RunConfig, path: &Path) {
    std::fs::write(path, config.to_ron().unwrap()).unwrap();
}

/// A port free on loopback now (rank 0 binds it a moment later).
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
        .to_string()
}

/// Starts `world` ranks of `metaspatial-rl run` with torchrun's variables (rank 0 serves the
/// store); `config_of(rank)` names each rank's config.
fn launch(
    world: usize,
    config_of: impl Fn(usize) -> PathBuf,
    out: &Path,
    extra: &[&str],
) -> Vec<Child> {
    let port = free_port();
    (0..world)
        .map(|rank| {
            Command::new(BIN)
                .args(["-q", "run"])
                .arg(config_of(rank))
                .arg("--out")
                .arg(out)
                .args(extra)
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn finish(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn assert_all_succeeded(outputs: &[Output]) {
    for (rank, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "rank {rank}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn weights(run: &Path, step: &str) -> BTreeMap<String, Tensor> {
    let dir = run.join("checkpoints").join(step).join("model");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            out.extend(Tensor::read_safetensors(&path).unwrap());
        }
    }
    assert!(!out.is_empty(), "no weights in {}", dir.display());
    out
}

fn metrics(run: &Path) -> Vec<MetricsLine> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_same_run(single: &Path, ranks: &Path, world: usize) {
    let (a, b) = (
        weights(single, "step-000002"),
        weights(ranks, "step-000002"),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, x) in &a {
        let diff = (x - &b[name]).abs().max().double_value(&[]);
        assert!(diff <= 1e-5, "world {world}: {name} differs by {diff}");
    }
    let (ma, mb) = (metrics(single), metrics(ranks));
    assert_eq!(ma.len(), 2);
    assert_eq!(ma.len(), mb.len());
    for (la, lb) in ma.iter().zip(&mb) {
        let (va, vb) = (la.deterministic_values(), lb.deterministic_values());
        assert_eq!(
            va.keys().collect::<Vec<_>>(),
            vb.keys().collect::<Vec<_>>(),
            "world {world}, step {}",
            la.step
        );
        for (k, x) in &va {
            let y = vb[k];
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "world {world}, step {}: {k} is {x} alone and {y} on {world} ranks",
                la.step
            );
        }
    }
    // Same parameters at step 1, so the rollouts gathered from the ranks are those of one
    // process, byte for byte.
    let rollouts = |run: &Path| std::fs::read(run.join("rollouts/step-000001.jsonl")).unwrap();
    assert!(
        rollouts(single) == rollouts(ranks),
        "world {world}: the step-1 rollouts differ"
    );
}

#[test]
fn two_and_three_ranks_train_what_one_process_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.ron");
    write(&config(2), &path);
    let single = tmp.path().join("single");
    assert_all_succeeded(&finish(launch(1, |_| path.clone(), &single, &[])));
    for world in [2, 3] {
        let out = tmp.path().join(format!("world{world}"));
        let outputs = finish(launch(world, |_| path.clone(), &out, &[]));
        assert_all_succeeded(&outputs);
        // Rank 0 reports for the job; the others print nothing.
        assert!(String::from_utf8_lossy(&outputs[0].stdout).contains("valid-scene rate change"));
        for other in &outputs[1..] {
            assert!(
                other.stdout.is_empty(),
                "{}",
                String::from_utf8_lossy(&other.stdout)
            );
        }
        assert_eq!(
            std::fs::read_to_string(out.join("world_size"))
                .unwrap()
                .trim(),
            world.to_string()
        );
        assert_same_run(&single, &out, world);
    }
}

#[test]
fn a_killed_rank_stops_the_others_with_its_number() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.ron");
    let mut long = config(500);
    long.distributed.timeout_s = 10;
    write(&long, &path);
    let out = tmp.path().join("run");
    let mut children = launch(3, |_| path.clone(), &out, &[]);
    let start = Instant::now();
    while !out.join("metrics.jsonl").exists() {
        assert!(
            start.elapsed() < Duration::from_mins(3),
            "no step after 3 minutes"
        );
        for c in &mut children {
            assert!(
                c.try_wait().unwrap().is_none(),
                "a rank ended before the kill"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children[2].kill().unwrap();
    let killed = Instant::now();
    let outputs = finish(children);
    // The timeout, the time it takes to learn which ranks are gone, and a loaded machine.
    assert!(
        killed.elapsed() < Duration::from_mins(1),
        "the survivors took {:?}",
        killed.elapsed()
    );
    for (rank, out) in outputs.iter().take(2).enumerate() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "rank {rank} succeeded: {stderr}");
        assert!(
            stderr.contains("rank 2 did not report the failure"),
            "rank {rank}: {stderr}"
        );
    }
}

#[test]
fn resuming_with_another_world_size_or_differing_configs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.ron");
    write(&config(2), &path);
    let out = tmp.path().join("run");
    assert_all_succeeded(&finish(launch(
        1,
        |_| path.clone(),
        &out,
        &["--stop-after", "1"],
    )));
    let resumed = finish(launch(2, |_| path.clone(), &out, &["--resume"]));
    for (rank, o) in resumed.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "rank {rank} resumed");
        assert!(
            stderr.contains("the run was started with 1 rank(s) and this launch has 2"),
            "rank {rank}: {stderr}"
        );
    }

    let other = tmp.path().join("other.ron");
    let mut changed = config(2);
    changed.seed = 7;
    write(&changed, &other);
    let outputs = finish(launch(
        2,
        |rank| {
            if rank == 0 {
                path.clone()
            } else {
                other.clone()
            }
        },
        &tmp.path().join("mixed"),
        &[],
    ));
    for (rank, o) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "rank {rank} ran");
        assert!(
            stderr.contains("the run config differs between ranks: rank(s) 1 differ from rank 0"),
            "rank {rank}: {stderr}"
        );
    }
}
