//! `metaspatial-rl views` run as a user runs it, on the example bedroom and its answer.

use std::path::Path;
use std::process::Command;

fn views(k: &str) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .current_dir(&root)
        .args([
            "views",
            "--room",
            "examples/rooms/bedroom.json",
            "--response",
            "examples/responses/bedroom.txt",
            "--size",
            "112",
            "--json",
            "--k",
            k,
        ])
        .output()
        .expect("run metaspatial-rl views");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn choice<'a>(report: &'a serde_json::Value, method: &str) -> &'a serde_json::Value {
    report["choices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {report}"))
}

#[test]
fn the_greedy_view_sees_at_least_as_much_as_any_single_view() {
    let one = views("1");
    assert_eq!(one["room"], "bedroom");
    assert_eq!(one["objects_placed"], 7);
    assert_eq!(one["room_points_stood_in"], false);
    // With one view, greedy takes the candidate that sees the most; evenly spaced is the first.
    let greedy = choice(&one, "greedy")["coverage"].as_f64().unwrap();
    let even = choice(&one, "evenly spaced")["coverage"].as_f64().unwrap();
    assert!(greedy >= even && greedy > 0.0 && greedy <= 1.0, "{one}");
    assert_eq!(choice(&one, "fixed")["views"], serde_json::json!(["top"]));
    let three = views("3");
    let chosen = choice(&three, "greedy")["views"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(chosen.len(), 3);
    assert!(
        chosen
            .iter()
            .all(|v| v.as_str().unwrap().starts_with("orbit-a"))
    );
    assert!(choice(&three, "greedy")["coverage"].as_f64().unwrap() >= greedy);
}
