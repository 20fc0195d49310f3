//! `metaspatial-rl score` run as a user runs it, on a MetaSpatial case with known answers.

use std::process::Command;

#[test]
fn score_json_reports_metaspatial_ratios_and_violations() {
    let case: serde_json::Value =
        serde_json::from_str(include_str!("../../env/tests/fixtures/case_000.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("metaspatial-score-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let room = dir.join("room.json");
    let response = dir.join("response.txt");
    let graph = serde_json::json!({"scene_graph": case["scene_graph"], "room": case["room"]});
    std::fs::write(&room, graph.to_string()).unwrap();
    std::fs::write(&response, case["response"].as_str().unwrap()).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .args(["score", "--json", "--room"])
        .arg(&room)
        .arg("--response")
        .arg(&response)
        .output()
        .expect("run metaspatial-rl score");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["parsed"], true);
    assert_eq!(report["valid_scene"], false);
    for ratio in ["collision_ratio", "constraint_violation_ratio"] {
        assert_eq!(
            report["metaspatial"][ratio], case["expected"]["metaspatial"][ratio],
            "{ratio}"
        );
    }
    let outside: Vec<&str> = report["out_of_bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    for id in case["expected"]["out_of_bounds"].as_array().unwrap() {
        assert!(
            outside.contains(&id.as_str().unwrap()),
            "{id} missing from {outside:?}"
        );
    }
}
