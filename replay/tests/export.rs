//! `--export`: the static site holds the app, every API answer as a script, and the images.

mod common;

use common::{fixture, fixture_copy};
use metaspatial_replay::record::RolloutRecord;
use metaspatial_replay::{Error, export};

/// The JSON a `data/*.js` file registers under `key`.
fn registered(path: &std::path::Path, key: &str) -> serde_json::Value {
    let script = std::fs::read_to_string(path).unwrap();
    let json = script
        .strip_prefix(&format!("window.__replayPut(\"{key}\", "))
        .and_then(|rest| rest.strip_suffix(");\n"))
        .unwrap_or_else(|| panic!("{} is not a data script: {script:.80}", path.display()));
    serde_json::from_str(json).unwrap()
}

#[test]
fn the_export_holds_the_app_the_data_and_the_images() {
    let out = tempfile::tempdir().unwrap();
    let site = out.path().join("site");
    let summary = export(&fixture(), &site).unwrap();
    assert_eq!((summary.steps, summary.samples, summary.images), (1, 4, 16));
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);

    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    let data = page.find("data.js").unwrap();
    let overview = page.find("data/overview.js").unwrap();
    let app = page.find("app.js").unwrap();
    assert!(
        data < overview && overview < app,
        "data scripts load between data.js and app.js"
    );
    for asset in ["style.css", "chart.js", "plan.js", "view3d.js"] {
        assert!(site.join(asset).is_file(), "{asset}");
    }

    let overview = registered(&site.join("data/overview.js"), "overview");
    assert_eq!(overview["metrics"]["rows"], 4);
    assert_eq!(overview["rollout_steps"], serde_json::json!([1]));
    assert_eq!(
        registered(&site.join("data/evals.js"), "evals")[0]["step"],
        2
    );

    let step = registered(&site.join("data/step-000001.js"), "step/1");
    assert_eq!(step["summary"]["samples"].as_array().unwrap().len(), 4);
    let records: Vec<RolloutRecord> = serde_json::from_value(step["records"].clone()).unwrap();
    assert_eq!(records.len(), 4);
    for image in records
        .iter()
        .flat_map(|r| &r.turns)
        .flat_map(|t| &t.images)
    {
        let copied = std::fs::read(site.join("files").join(&image.path)).unwrap();
        let original = std::fs::read(fixture().join(&image.path)).unwrap();
        assert_eq!(copied, original, "{}", image.path);
    }
}

#[test]
fn missing_images_are_reported_and_a_full_directory_is_refused() {
    let (dir, run) = fixture_copy();
    std::fs::remove_file(run.join("rollouts/step-000001/g0-s0-t1-top.png")).unwrap();
    let site = dir.path().join("site");
    let summary = export(&run, &site).unwrap();
    assert_eq!(summary.images, 15);
    assert_eq!(
        summary.warnings,
        ["image rollouts/step-000001/g0-s0-t1-top.png is missing in the run directory"]
    );
    let again = export(&run, &site).unwrap_err();
    assert!(matches!(again, Error::ExportNotEmpty(_)));
    assert!(again.to_string().contains("site"), "{again}");
}
