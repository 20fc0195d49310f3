//! The viewer's HTTP API as a browser uses it: each endpoint on the fixture run, live updates
//! of a run being written, path traversal and a long synthetic run.

mod common;

use std::io::Write;

use common::{fixture, fixture_copy, get, request};
use metaspatial_replay::record::RolloutRecord;
use metaspatial_replay::{Error, Server};

fn start(run: &std::path::Path) -> Server {
    Server::start(run, "127.0.0.1", 0).unwrap()
}

#[test]
fn overview_has_every_complete_metrics_line_and_the_run_contents() {
    let server = start(&fixture());
    let reply = get(server.addr(), "/api/overview");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let overview = reply.json();
    assert_eq!(overview["run"], "run");
    // The fixture's fifth line has no newline yet: a trainer still writing it.
    assert_eq!(overview["metrics"]["rows"], 4);
    assert_eq!(overview["metrics"]["step"], serde_json::json!([1, 2, 3, 4]));
    let series = overview["metrics"]["series"].as_object().unwrap();
    for name in [
        "reward/total/mean",
        "reward/collision/mean",
        "loss",
        "kl",
        "entropy",
        "response_length",
        "tokens_per_s",
        "time/generate",
    ] {
        assert_eq!(series[name].as_array().unwrap().len(), 4, "{name}");
    }
    assert_eq!(series["loss"][1], 0.45);
    assert_eq!(overview["rollout_steps"], serde_json::json!([1]));
    assert_eq!(overview["eval_steps"], serde_json::json!([2]));
    assert_eq!(overview["checkpoints"], serde_json::json!([2]));
    assert!(
        overview["config"]
            .as_str()
            .unwrap()
            .contains("group_size: 2")
    );
    assert_eq!(overview["warnings"], serde_json::json!([]));
}

#[test]
fn the_app_and_its_assets_are_served() {
    let server = start(&fixture());
    let page = get(server.addr(), "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for script in ["data.js", "chart.js", "plan.js", "view3d.js", "app.js"] {
        assert!(
            page.text().contains(&format!("<script src=\"{script}\">")),
            "{script}"
        );
        let asset = get(server.addr(), &format!("/{script}"));
        assert_eq!(asset.status, 200, "{script}");
        assert!(
            asset
                .header("content-type")
                .unwrap()
                .starts_with("text/javascript")
        );
    }
    assert_eq!(get(server.addr(), "/style.css").status, 200);
    assert_eq!(get(server.addr(), "/nothing.js").status, 404);
    assert_eq!(get(server.addr(), "/api/nothing").status, 404);
}

#[test]
fn a_step_lists_its_groups_and_samples() {
    let server = start(&fixture());
    let step = get(server.addr(), "/api/step/1").json();
    assert_eq!(step["step"], 1);
    let groups = step["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["room_id"], "bedroom_0007");
    assert_eq!(groups[1]["objects"], 2);
    let samples = step["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);
    let g1s0 = samples
        .iter()
        .find(|s| s["group"] == 1 && s["sample"] == 0)
        .unwrap();
    assert_eq!(g1s0["reward"], 1.0);
    assert_eq!(g1s0["turns"][1]["collisions"], 1);
    assert_eq!(g1s0["turns"][1]["valid"], false);
    assert_eq!(get(server.addr(), "/api/step/2").status, 404);
    assert_eq!(get(server.addr(), "/api/step/one").status, 404);
}

#[test]
fn a_rollout_is_the_full_record() {
    let server = start(&fixture());
    let reply = get(server.addr(), "/api/rollout/1/0/1");
    assert_eq!(reply.status, 200);
    let record: RolloutRecord = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!((record.step, record.group, record.sample), (1, 0, 1));
    assert_eq!(record.room.objects.len(), 3);
    assert_eq!(record.turns.len(), 2);
    assert_eq!(record.turns[0].violations.collisions[0].a, "bed_1");
    assert_eq!(record.turns[0].images.len(), 2);
    assert_eq!(get(server.addr(), "/api/rollout/1/0/7").status, 404);
    assert_eq!(get(server.addr(), "/api/rollout/3/0/0").status, 404);
}

#[test]
fn evaluations_are_listed_by_step() {
    let server = start(&fixture());
    let evals = get(server.addr(), "/api/evals").json();
    assert_eq!(evals[0]["step"], 2);
    assert_eq!(evals[0]["metrics"].as_array().unwrap().len(), 4);
    assert_eq!(evals[0]["metrics"][0]["name"], "valid_scene_rate");
}

#[test]
fn images_of_a_rollout_are_served() {
    let server = start(&fixture());
    let record: RolloutRecord =
        serde_json::from_slice(&get(server.addr(), "/api/rollout/1/1/1").body).unwrap();
    for image in &record.turns[1].images {
        let reply = get(server.addr(), &format!("/files/{}", image.path));
        assert_eq!(reply.status, 200, "{}", image.path);
        assert_eq!(reply.header("content-type"), Some("image/png"));
        assert_eq!(&reply.body[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn nothing_outside_the_run_directory_is_served() {
    let (dir, run) = fixture_copy();
    std::fs::write(dir.path().join("secret.png"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.png"), run.join("rollouts/link.png"))
        .unwrap();
    let server = start(&run);
    let forbidden = [
        "/files/../secret.png",
        "/files/rollouts/../../secret.png",
        "/files/..%2fsecret.png",
        "/files/%2e%2e/secret.png",
        "/files/%2E%2E%2Fsecret.png",
        "/files/rollouts/%2e%2e/%2e%2e/secret.png",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/rollouts/link.png",
        "/files/rollouts/..%5C..%5Csecret.png",
        "/files/%zz.png",
    ];
    for target in forbidden {
        let reply = get(server.addr(), target);
        assert_eq!(reply.status, 403, "{target}");
        assert!(!reply.text().contains("SECRET"), "{target}");
    }
    // Inside the run, but not images: configs, metrics and weights stay private.
    for target in [
        "/files/config.ron",
        "/files/metrics.jsonl",
        "/files/checkpoints/step-000002/trainer_state.json",
        "/files/rollouts/none.png",
    ] {
        assert_eq!(get(server.addr(), target).status, 404, "{target}");
    }
    // The server never normalises `..` away into another route either.
    assert_eq!(
        get(server.addr(), "/api/../files/../secret.png").status,
        404
    );
}

#[test]
fn only_local_reads_are_answered() {
    let server = start(&fixture());
    let foreign = request(
        server.addr(),
        "GET",
        "/api/overview",
        &[("Host", "attacker.example")],
        b"",
    );
    assert_eq!(foreign.status, 403);
    let localhost = request(
        server.addr(),
        "GET",
        "/api/overview",
        &[("Host", "localhost:1")],
        b"",
    );
    assert_eq!(localhost.status, 200);
    assert_eq!(
        request(server.addr(), "POST", "/api/overview", &[], b"{}").status,
        405
    );
    assert_eq!(server.addr().ip().to_string(), "127.0.0.1");
}

#[test]
fn a_run_being_written_shows_new_steps_without_a_reload() {
    let (_dir, run) = fixture_copy();
    let server = start(&run);
    let overview = get(server.addr(), "/api/overview").json();
    let version = overview["version"].as_u64().unwrap();
    let unchanged = get(
        server.addr(),
        &format!("/api/poll?version={version}&rows=4"),
    )
    .json();
    assert_eq!(unchanged["unchanged"], true);

    // The trainer finishes the half-written line and starts step 2's rollouts.
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))
        .unwrap();
    metrics
        .write_all(b": 0.18}\n{\"step\": 6, \"elapsed\": 45.0, \"lo")
        .unwrap();
    let step1 = std::fs::read_to_string(run.join("rollouts/step-000001.jsonl")).unwrap();
    let first = step1
        .lines()
        .next()
        .unwrap()
        .replacen("\"step\": 1", "\"step\": 2", 1);
    std::fs::write(run.join("rollouts/step-000002.jsonl"), format!("{first}\n")).unwrap();

    let news = get(
        server.addr(),
        &format!("/api/poll?version={version}&rows=4"),
    )
    .json();
    assert!(news["version"].as_u64().unwrap() > version);
    assert_eq!(news["metrics"]["from"], 4);
    assert_eq!(news["metrics"]["rows"], 5);
    assert_eq!(news["metrics"]["step"], serde_json::json!([5]));
    assert_eq!(news["metrics"]["series"]["loss"], serde_json::json!([0.18]));
    assert_eq!(news["metrics"]["series"]["kl"], serde_json::json!([null]));
    assert_eq!(news["rollout_steps"], serde_json::json!([1, 2]));
    assert_eq!(
        get(server.addr(), "/api/step/2").json()["samples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // More samples of step 2 arrive while it is open.
    let second = step1
        .lines()
        .nth(1)
        .unwrap()
        .replacen("\"step\": 1", "\"step\": 2", 1);
    let mut rollouts = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("rollouts/step-000002.jsonl"))
        .unwrap();
    rollouts.write_all(second.as_bytes()).unwrap();
    assert_eq!(
        get(server.addr(), "/api/step/2").json()["samples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    rollouts.write_all(b"\n").unwrap();
    assert_eq!(
        get(server.addr(), "/api/step/2").json()["samples"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(get(server.addr(), "/api/rollout/2/0/1").status, 200);

    // A checkpoint and its evaluation appear.
    std::fs::create_dir_all(run.join("checkpoints/step-000004")).unwrap();
    let eval = std::fs::read_to_string(run.join("eval/step-000002.json")).unwrap();
    std::fs::write(
        run.join("eval/step-000004.json"),
        eval.replace("\"step\": 2", "\"step\": 4"),
    )
    .unwrap();
    let overview = get(server.addr(), "/api/overview").json();
    assert_eq!(overview["checkpoints"], serde_json::json!([2, 4]));
    assert_eq!(overview["eval_steps"], serde_json::json!([2, 4]));
    assert_eq!(get(server.addr(), "/api/evals").json()[1]["step"], 4);
}

#[test]
fn a_rewritten_rollout_file_is_indexed_again() {
    let (_dir, run) = fixture_copy();
    let server = start(&run);
    let path = run.join("rollouts/step-000001.jsonl");
    assert_eq!(get(server.addr(), "/api/step/1").status, 200);
    // Same length, other order: the byte offsets known to the server now point at other lines.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let record: RolloutRecord =
        serde_json::from_slice(&get(server.addr(), "/api/rollout/1/0/0").body).unwrap();
    assert_eq!((record.group, record.sample), (0, 0));
}

#[test]
fn unreadable_lines_are_reported_with_file_and_line() {
    let (_dir, run) = fixture_copy();
    let mut metrics = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))
        .unwrap();
    metrics.write_all(b"\n{\"step\": \"six\"}\n").unwrap();
    let mut rollouts = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("rollouts/step-000001.jsonl"))
        .unwrap();
    rollouts
        .write_all(b"{\"step\": 1, \"group\": 0}\n")
        .unwrap();
    std::fs::write(run.join("eval/step-000003.json"), "{").unwrap();
    let server = start(&run);
    let warnings = get(server.addr(), "/api/overview").json()["warnings"].clone();
    let warnings: Vec<&str> = warnings
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    // Line 5 is the fixture's partial line, now ended without being finished; line 6 has a
    // string step. Paths are run-relative.
    assert!(
        warnings[0].starts_with("metrics.jsonl:5: EOF"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("metrics.jsonl:6: invalid type"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].starts_with("eval/step-000003.json: "),
        "{warnings:?}"
    );
    let step = get(server.addr(), "/api/step/1").json();
    assert_eq!(step["samples"].as_array().unwrap().len(), 4);
    let warning = step["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with("rollouts/step-000001.jsonl:5: missing field"),
        "{warning}"
    );
}

#[test]
fn a_missing_or_empty_run_directory_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = Server::start(&missing, "127.0.0.1", 0).err().unwrap();
    assert!(matches!(error, Error::NotADirectory(_)));
    assert!(error.to_string().contains("nope"), "{error}");
    let error = Server::start(dir.path(), "127.0.0.1", 0).err().unwrap();
    assert!(matches!(error, Error::NotARun(_)));
    assert!(error.to_string().contains("metrics.jsonl"), "{error}");
    let error = Server::start(&fixture(), "no such host", 0).err().unwrap();
    assert!(error.to_string().contains("no such host"), "{error}");
}

#[test]
fn a_long_run_opens_whole() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    common::synthetic::write_metrics(run, 10_000);
    common::synthetic::write_rollouts(run, &[100, 5000, 10_000], 16, 4);
    let server = start(run);
    let overview = get(server.addr(), "/api/overview").json();
    assert_eq!(overview["metrics"]["rows"], 10_000);
    assert_eq!(overview["metrics"]["step"][9_999], 10_000);
    assert_eq!(overview["metrics"]["series"].as_object().unwrap().len(), 27);
    assert_eq!(
        overview["rollout_steps"],
        serde_json::json!([100, 5000, 10_000])
    );
    let step = get(server.addr(), "/api/step/5000").json();
    assert_eq!(step["samples"].as_array().unwrap().len(), 64);
    assert_eq!(step["groups"].as_array().unwrap().len(), 16);
    let record: RolloutRecord =
        serde_json::from_slice(&get(server.addr(), "/api/rollout/5000/15/3").body).unwrap();
    assert_eq!((record.step, record.group, record.sample), (5000, 15, 3));
}
