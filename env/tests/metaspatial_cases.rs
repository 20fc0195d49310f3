//! The twelve example rooms with known answers: exact collisions and bounds, and MetaSpatial's
//! ratios reproduced bit for bit (or `None` exactly where their code raises).

use std::collections::BTreeSet;

use metaspatial_env::{AssessConfig, assess, load_room};
use serde_json::Value;

fn cases() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("case_")
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 12);
    names
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut ab = [
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            ];
            ab.sort();
            let [a, b] = ab;
            (a, b)
        })
        .collect()
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn collisions_and_bounds_match_the_exact_box_computation() {
    for (name, case) in cases() {
        let room = load_room(&case.to_string(), &name).unwrap();
        let a = assess(
            &room,
            case["response"].as_str().unwrap(),
            &AssessConfig::geometry_only(),
        );
        assert!(a.parsed && a.missing_objects.is_empty(), "{name}: {a:?}");
        let e = &case["expected"];
        let ours: BTreeSet<_> = a
            .collisions
            .iter()
            .map(|c| (c.a.clone(), c.b.clone()))
            .collect();
        assert_between(
            &name,
            "collisions",
            &ours,
            &pairs(&e["collisions"]),
            &pairs(&e["ambiguous_pairs"]),
        );
        let ours: BTreeSet<_> = a.out_of_bounds.iter().map(|o| o.id.clone()).collect();
        assert_between(
            &name,
            "out of bounds",
            &ours,
            &ids(&e["out_of_bounds"]),
            &ids(&e["ambiguous_bounds"]),
        );
    }
}

/// `must ⊆ ours ⊆ must ∪ either`.
fn assert_between<T: Ord + Clone + std::fmt::Debug>(
    name: &str,
    what: &str,
    ours: &BTreeSet<T>,
    must: &BTreeSet<T>,
    either: &BTreeSet<T>,
) {
    assert!(
        must.is_subset(ours),
        "{name}: {what}: expected {must:?}, got {ours:?}"
    );
    let may: BTreeSet<T> = must.union(either).cloned().collect();
    assert!(
        ours.is_subset(&may),
        "{name}: {what}: got {ours:?}, allowed {may:?}"
    );
}

#[test]
fn metaspatial_ratios_are_reproduced_exactly() {
    for (name, case) in cases() {
        let room = load_room(&case.to_string(), &name).unwrap();
        let a = assess(
            &room,
            case["response"].as_str().unwrap(),
            &AssessConfig::geometry_only(),
        );
        let e = &case["expected"]["metaspatial"];
        assert_eq!(
            a.metaspatial.collision_ratio,
            e["collision_ratio"].as_f64(),
            "{name} collision ratio: {:?}",
            a.metaspatial
        );
        assert_eq!(
            a.metaspatial.constraint_violation_ratio,
            e["constraint_violation_ratio"].as_f64(),
            "{name} constraint ratio: {:?}",
            a.metaspatial
        );
        // Ours always answers for a complete layout.
        assert!(a.metaspatial.extended_collision_ratio.is_some(), "{name}");
        assert!(
            a.metaspatial.extended_constraint_violation_ratio.is_some(),
            "{name}"
        );
    }
}
