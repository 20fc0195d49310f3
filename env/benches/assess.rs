//! Speed of the environment's checks on a 30-object room.
//!
//! Targets: assessing a 30-object answer without settling (parse, collisions, bounds,
//! relations, MetaSpatial's ratios) in ≤ 100 µs on one core; settling a 30-object scene in
//! ≤ 5 ms. Run: `cargo bench -p metaspatial-env --bench assess`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use metaspatial_env::physics::{SupportConfig, settle};
use metaspatial_env::scene::Scene;
use metaspatial_env::{
    AssessConfig, Layout, ObjectPreposition, ObjectRelation, ObjectSpec, Placement, Pose, Room,
    RoomSize, Size, assess,
};

/// A 10 × 8 m room with 30 objects on a 6 × 5 grid: tables with boxes on half of them, each
/// object related to its neighbour, a few of them overlapping so collisions are exercised.
fn room_and_response() -> (Room, String, Layout) {
    let mut objects = Vec::new();
    let mut poses = Vec::new();
    for i in 0..30 {
        let (col, row) = (i % 6, i / 6);
        let stacked = i % 2 == 1;
        let mut placement = Placement::default();
        if i > 0 {
            placement.objects.push(ObjectRelation {
                target: format!("object_{}", i - 1),
                preposition: if stacked {
                    ObjectPreposition::On
                } else {
                    ObjectPreposition::RightOf
                },
                adjacent: !stacked,
            });
        }
        let size = if stacked {
            Size {
                length: 0.4,
                width: 0.4,
                height: 0.3,
            }
        } else {
            Size {
                length: 1.2,
                width: 0.8,
                height: 0.75,
            }
        };
        objects.push(ObjectSpec {
            id: format!("object_{i}"),
            category: "object".into(),
            size,
            on_floor: !stacked,
            facing: None,
            placement,
            rotation: Some(f64::from(i % 4) * 90.0),
            position: None,
            style: None,
            material: None,
            asset: None,
        });
        let base = [
            0.9 + 1.65 * f64::from(col / 2 * 2),
            0.8 + 1.5 * f64::from(row),
            0.0,
        ];
        let z = if stacked { 0.75 + 0.15 } else { 0.375 };
        // Every fifth object is nudged into its neighbour.
        let nudge = if i % 5 == 4 { 0.3 } else { 0.0 };
        poses.push(Pose {
            id: format!("object_{i}"),
            position: [base[0] + nudge, base[1], z],
            rotation: f64::from(i % 4) * 90.0,
        });
    }
    let room = Room {
        id: "bench".into(),
        description: String::new(),
        size: RoomSize {
            length: 10.0,
            width: 8.0,
            height: 3.0,
        },
        objects,
        openings: Vec::new(),
    };
    let mut text = String::from("<think>grid</think>\n<answer>[");
    for (k, p) in poses.iter().enumerate() {
        let sep = if k == 0 { "" } else { ", " };
        let _ = write!(
            text,
            r#"{sep}{{"new_object_id": "{}", "x": {}, "y": {}, "z": {}}}"#,
            p.id, p.position[0], p.position[1], p.position[2]
        );
    }
    text.push_str("]</answer>");
    (room, text, Layout { poses })
}

fn benches(c: &mut Criterion) {
    let (room, response, layout) = room_and_response();
    let geometry = AssessConfig::geometry_only();
    c.bench_function("assess_30_objects_without_settling", |b| {
        b.iter(|| assess(black_box(&room), black_box(&response), &geometry));
    });
    c.bench_function("parse_30_object_answer", |b| {
        b.iter(|| metaspatial_env::answer::parse(black_box(&response)));
    });
    let parsed = metaspatial_env::answer::parse(&response).unwrap();
    c.bench_function("assess_parsed_30_objects_without_settling", |b| {
        b.iter(|| metaspatial_env::assess_parsed(black_box(&room), black_box(&parsed), &geometry));
    });
    let scene = Scene::new(&room, &layout, &[]);
    c.bench_function("metaspatial_ratios_30_objects", |b| {
        b.iter(|| metaspatial_env::metaspatial::ratios(black_box(&scene)));
    });
    c.bench_function("relations_30_objects", |b| {
        b.iter(|| metaspatial_env::relations::evaluate(black_box(&scene), &geometry.relations));
    });
    let support = SupportConfig::default();
    c.bench_function("settle_30_objects", |b| {
        b.iter(|| settle(black_box(&scene), &support));
    });
}

criterion_group!(group, benches);
criterion_main!(group);
