//! External plugins: a working one, and ones that crash, hang, print garbage, exit at start or
//! answer the wrong request. Training must go on through all of them.

mod common;

use std::path::Path;

use common::{TIDY, bedroom, close, prepare};
use metaspatial_rewards::plugin::{Plugin, PluginParams};
use metaspatial_rewards::{Registry, Reward, RewardOutcome, RewardSet};

/// Reads requests forever; `body` computes `reply` (a dict) from `req` and a call counter `n`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let text = format!(
        "import json, os, sys, time\nn = 0\nfor line in sys.stdin:\n    n += 1\n    req = json.loads(line)\n{}\n    print(json.dumps(reply), flush=True)\n",
        body.lines()
            .flat_map(|l| ["    ", l, "\n"])
            .collect::<String>()
    );
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

const GOOD: &str = "placed = len(req['assessment']['layout']['poses'])\n\
                    reply = {'id': req['id'], 'value': placed / len(req['room']['objects']), \
                    'components': {'placed': placed, 'pid': os.getpid(), 'images': len(req['images'])}}";

fn plugin(dir: &Path, file: &str, timeout_s: f64, backoff_s: f64) -> Plugin {
    let params = PluginParams {
        command: vec!["python3".into(), file.into()],
        timeout_s,
        processes: 1,
        restart_backoff_s: backoff_s,
        send_images: true,
        env: std::collections::BTreeMap::default(),
        config: None,
    };
    Plugin::new("test", params, dir).unwrap()
}

fn call(p: &Plugin) -> RewardOutcome {
    let room = bedroom();
    let prepared = prepare(&room, TIDY);
    p.score(&prepared.context(&room))
}

#[test]
fn a_working_plugin_is_started_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let p = plugin(dir.path(), &script(dir.path(), "good.py", GOOD), 5.0, 0.0);
    let first = call(&p);
    assert_eq!(first.failure, None);
    close(first.value, 1.0);
    close(call(&p).components["pid"], first.components["pid"]);
}

#[test]
fn a_crash_fails_that_call_and_the_next_call_restarts_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("if n == 2:\n    sys.exit(3)\n{GOOD}");
    let p = plugin(
        dir.path(),
        &script(dir.path(), "crash.py", &body),
        5.0,
        60.0,
    );
    let first = call(&p);
    assert_eq!(first.failure, None);
    let crashed = call(&p);
    let why = crashed.failure.unwrap();
    assert!(
        why.contains("stdout closed") && why.contains("exit status: 3"),
        "{why}"
    );
    // It had answered before, so it restarts at once despite the long back-off.
    let third = call(&p);
    assert_eq!(third.failure, None);
    assert!(
        (third.components["pid"] - first.components["pid"]).abs() > 0.5,
        "a new process"
    );
}

#[test]
fn a_hang_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = plugin(
        dir.path(),
        &script(dir.path(), "hang.py", "time.sleep(60)\nreply = {}"),
        0.3,
        0.0,
    );
    let start = std::time::Instant::now();
    let why = call(&p).failure.unwrap();
    assert!(why.contains("no answer within 0.3 s"), "{why}");
    assert!(start.elapsed().as_secs_f64() < 5.0);
}

#[test]
fn garbage_and_wrong_ids_are_failures() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = "print('hello, I am debugging')\nreply = {'id': req['id'], 'value': 1}";
    let p = plugin(
        dir.path(),
        &script(dir.path(), "garbage.py", garbage),
        5.0,
        0.0,
    );
    let why = call(&p).failure.unwrap();
    assert!(
        why.contains("not a response line") && why.contains("hello, I am debugging"),
        "{why}"
    );
    let wrong = plugin(
        dir.path(),
        &script(
            dir.path(),
            "wrong.py",
            "reply = {'id': req['id'] + 1, 'value': 1}",
        ),
        5.0,
        0.0,
    );
    assert!(call(&wrong).failure.unwrap().contains("while waiting for"));
    let nan = plugin(
        dir.path(),
        &script(
            dir.path(),
            "nan.py",
            "reply = {'id': req['id'], 'value': None}",
        ),
        5.0,
        0.0,
    );
    assert!(
        call(&nan)
            .failure
            .unwrap()
            .contains("without a finite value")
    );
    let error = plugin(
        dir.path(),
        &script(
            dir.path(),
            "error.py",
            "reply = {'id': req['id'], 'error': 'no mood today'}",
        ),
        5.0,
        0.0,
    );
    assert_eq!(
        call(&error).failure.unwrap(),
        "the plugin reports: no mood today"
    );
}

#[test]
fn a_plugin_that_exits_at_start_is_retried_only_after_a_back_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dead.py"), "import sys\nsys.exit(1)\n").unwrap();
    let p = plugin(dir.path(), "dead.py", 5.0, 30.0);
    let why = call(&p).failure.unwrap();
    assert!(
        why.contains("exit status: 1") || why.contains("cannot write"),
        "{why}"
    );
    let why = call(&p).failure.unwrap();
    assert!(why.contains("not restarted yet"), "{why}");
    let missing = Plugin::new(
        "missing",
        PluginParams {
            command: vec!["./no-such-program".into()],
            ..plugin_params()
        },
        dir.path(),
    )
    .unwrap();
    assert!(call(&missing).failure.unwrap().contains("cannot start"));
}

fn plugin_params() -> PluginParams {
    ron::from_str("(command: [\"python3\"])").unwrap()
}

#[test]
fn a_failing_plugin_gets_its_fallback_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "good.py", GOOD);
    std::fs::write(dir.path().join("dead.py"), "import sys\nsys.exit(1)\n").unwrap();
    let config = r#"(rewards: [
        (reward: "object_set", weight: 1.0),
        (reward: "plugin", name: "placed", weight: 2.0, params: (command: ["python3", "good.py"], processes: 2)),
        (reward: "plugin", name: "dead", weight: 4.0, fallback: 0.25, params: (command: ["python3", "dead.py"])),
    ])"#;
    let path = dir.path().join("rewards.ron");
    std::fs::write(&path, config).unwrap();
    let set = RewardSet::from_file(&path, &Registry::with_builtins()).unwrap();
    let room = bedroom();
    let half = r#"<think>x</think><answer>[{"new_object_id": "bed_1", "x": 2.0, "y": 0.8, "z": 0.25}, {"new_object_id": "wardrobe_1", "x": 0.3, "y": 2.0, "z": 1.0, "rotation": 90}]</answer>"#;
    let prepared: Vec<_> = (0..6)
        .map(|i| prepare(&room, if i % 2 == 0 { TIDY } else { half }))
        .collect();
    let contexts: Vec<_> = prepared.iter().map(|p| p.context(&room)).collect();
    let scored = set.score_batch(&contexts);
    assert_eq!(scored.len(), 6);
    for (i, s) in scored.iter().enumerate() {
        let dead = s.component("dead").unwrap();
        assert!(dead.failed.is_some());
        close(dead.value, 0.25);
        let placed = s.component("placed").unwrap();
        assert_eq!(placed.failed, None);
        let expected = if i % 2 == 0 { 1.0 } else { 0.5 };
        close(placed.value, expected);
        // object_set: 1 or 2/4; placed: weight 2; dead: 4 · 0.25.
        assert!(
            (s.total - (expected + 2.0 * expected + 1.0)).abs() < 1e-12,
            "{}",
            s.total
        );
    }
}

#[test]
fn images_without_files_are_written_for_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let body = "p = req['images'][0]['path']\nreply = {'id': req['id'], 'value': float(os.path.getsize(p) > 0)}";
    let p = plugin(dir.path(), &script(dir.path(), "img.py", body), 5.0, 0.0);
    let room = bedroom();
    let prepared = prepare(&room, TIDY);
    let views = [common::view(3)];
    let out = p.score(&prepared.context(&room).with_views(&views));
    assert_eq!(out.failure, None);
    close(out.value, 1.0);
}

/// Regression: `config: {…}` was refused ("Expected option but found a map") because `params`
/// lost the config's implicit `Some` when read back from a `ron::Value`.
#[test]
fn optional_params_take_plain_values_as_the_readme_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "echo.py",
        "reply = {'id': req['id'], 'value': req['params']['min_height']}",
    );
    let path = dir.path().join("rewards.ron");
    for (config, expected) in [
        (r#"{"min_height": 1.2}"#, 1.2),
        (r#"Some({"min_height": 0.7})"#, 0.7),
    ] {
        let text = format!(
            "(rewards: [(reward: \"plugin\", name: \"echo\", weight: 1.0,\n  params: (command: [\"python3\", \"echo.py\"], timeout_s: 5.0, config: {config}))])"
        );
        std::fs::write(&path, text).unwrap();
        let set = RewardSet::from_file(&path, &Registry::with_builtins())
            .unwrap_or_else(|e| panic!("config: {config}: {e}"));
        let room = bedroom();
        let prepared = prepare(&room, TIDY);
        let echo = set.score(&prepared.context(&room)).components.remove(0);
        assert_eq!(echo.failed, None, "config: {config}");
        close(echo.value, expected);
    }
}
