//! Every built-in except `judge` and `stability`, over a batch of 64 answers of 30 objects.
//!
//! `cargo bench -p metaspatial-rewards --bench rewards`. Two figures: the rewards alone on
//! prepared assessments (what the trainer pays after the environment), and parsing plus
//! assessment (geometry and free space, no physics) plus rewards.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaspatial_env::{
    AssessConfig, LayoutElement, ObjectPreposition, ObjectRelation, ObjectSpec, Placement, Room,
    RoomPreposition, RoomRelation, RoomSize, Size,
};
use metaspatial_render::{Camera, Frame, View};
use metaspatial_rewards::{Prepared, Registry, RenderedView, RewardSet};

const OBJECTS: usize = 30;
const BATCH: usize = 64;

const CONFIG: &str = r#"(rewards: [
    (reward: "format", weight: 1.0),
    (reward: "object_set", weight: 1.0),
    (reward: "collision", weight: 1.0),
    (reward: "bounds", weight: 1.0),
    (reward: "relations", weight: 1.0),
    (reward: "facing_alignment", weight: 1.0),
    (reward: "free_space", weight: 1.0),
    (reward: "visibility", weight: 1.0),
    (reward: "improvement", weight: 1.0),
    (reward: "metaspatial", weight: 1.0),
])"#;

fn room() -> Room {
    let walls = LayoutElement::WALLS;
    let objects = (0..OBJECTS)
        .map(|i| ObjectSpec {
            id: format!("object_{i}"),
            category: "chair".into(),
            size: Size {
                length: 0.4 + 0.02 * (i % 7) as f64,
                width: 0.4,
                height: 0.5 + 0.05 * (i % 5) as f64,
            },
            on_floor: true,
            facing: Some(walls[i % 4].name().into()),
            placement: Placement {
                room: vec![RoomRelation {
                    element: walls[(i + 2) % 4],
                    preposition: RoomPreposition::On,
                }],
                objects: (i > 0)
                    .then(|| ObjectRelation {
                        target: format!("object_{}", i - 1),
                        preposition: ObjectPreposition::ALL[i % 7],
                        adjacent: i % 2 == 0,
                    })
                    .into_iter()
                    .collect(),
            },
            rotation: None,
            position: None,
            style: None,
            material: None,
            asset: None,
        })
        .collect();
    Room {
        id: "bench".into(),
        description: "A room with thirty chairs.".into(),
        size: RoomSize {
            length: 8.0,
            width: 6.0,
            height: 3.0,
        },
        objects,
        openings: Vec::new(),
    }
}

/// A deterministic scatter of the room's objects, different for every `seed`.
fn response(seed: u64) -> String {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let entries: Vec<String> = (0..OBJECTS)
        .map(|i| {
            let (x, y) = (0.3 + 7.4 * next(), 0.3 + 5.4 * next());
            let rotation = [0.0, 90.0, 180.0, 270.0, 45.0][(next() * 5.0) as usize % 5];
            format!(r#"{{"new_object_id": "object_{i}", "x": {x:.3}, "y": {y:.3}, "z": 0.3, "rotation": {rotation}}}"#)
        })
        .collect();
    format!(
        "<think>scatter</think>\n<answer>[{}]</answer>",
        entries.join(",\n")
    )
}

/// A 448 × 448 id buffer in which every object shows as a band of rows.
fn view() -> RenderedView {
    let (w, h) = (448u32, 448u32);
    let ids = (0..w * h).map(|p| (p / w) % (OBJECTS as u32 + 1)).collect();
    let camera = Camera::new(View::Top, glam::Vec3::new(8.0, 6.0, 3.0), 1.0);
    let frame = Frame {
        width: w,
        height: h,
        color: vec![0; (w * h * 4) as usize],
        ids,
        depth: vec![1.0; (w * h) as usize],
        camera,
    };
    RenderedView {
        name: "top".into(),
        frame,
        visibility: None,
        path: None,
    }
}

fn bench(c: &mut Criterion) {
    let room = room();
    let set =
        RewardSet::from_ron(CONFIG, "bench", &Registry::with_builtins()).expect("bench config");
    let cfg = AssessConfig {
        support: None,
        ..AssessConfig::default()
    };
    let responses: Vec<String> = (0..BATCH as u64).map(response).collect();
    let prepared: Vec<Prepared> = responses
        .iter()
        .map(|r| Prepared::new(&room, r, &cfg))
        .collect();
    let views = [view()];
    let previous = [prepared[0].assessment.clone()];
    let contexts: Vec<_> = prepared
        .iter()
        .map(|p| {
            p.context(&room)
                .with_views(&views)
                .with_history(2, &previous)
        })
        .collect();
    assert!(
        contexts
            .iter()
            .all(|c| c.assessment.parsed && c.assessment.layout.poses.len() == OBJECTS)
    );

    let mut group = c.benchmark_group("rewards");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch64x30", |b| {
        b.iter(|| black_box(set.score_batch(black_box(&contexts))));
    });
    group.bench_function("assess_and_batch64x30", |b| {
        b.iter(|| {
            let prepared: Vec<Prepared> = responses
                .iter()
                .map(|r| Prepared::new(&room, r, &cfg))
                .collect();
            let contexts: Vec<_> = prepared
                .iter()
                .map(|p| {
                    p.context(&room)
                        .with_views(&views)
                        .with_history(2, &previous)
                })
                .collect();
            black_box(set.score_batch(&contexts))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
