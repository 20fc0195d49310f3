//! Rendering throughput: 448 × 448, 30 objects, colour + ids + depth including readback, at
//! batch 1 and batch 64. Criterion reports frames per second as "elements/s".
//!
//! `cargo bench -p metaspatial-render --bench render`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaspatial_env::{Layout, ObjectSpec, Placement, Pose, Room, RoomSize, Size};
use metaspatial_render::{RenderError, RenderOptions, Renderer, Scene};

const CATEGORIES: [&str; 10] = [
    "bed", "sofa", "table", "chair", "desk", "wardrobe", "shelf", "lamp", "plant", "cabinet",
];

/// A 7 m × 6 m room with 30 objects on a grid; `shift` varies the layout between scenes.
fn scene(shift: usize) -> Scene {
    let mut objects = Vec::new();
    let mut poses = Vec::new();
    for i in 0..30 {
        let id = format!("{}_{i}", CATEGORIES[i % CATEGORIES.len()]);
        let size = [
            0.5 + 0.1 * (i % 5) as f64,
            0.4 + 0.1 * (i % 3) as f64,
            0.4 + 0.15 * (i % 7) as f64,
        ];
        objects.push(ObjectSpec {
            id: id.clone(),
            category: CATEGORIES[i % CATEGORIES.len()].into(),
            size: Size {
                length: size[0],
                width: size[1],
                height: size[2],
            },
            on_floor: true,
            facing: None,
            placement: Placement::default(),
            rotation: None,
            position: None,
            style: None,
            material: None,
            asset: None,
        });
        let (col, row) = (i % 6, i / 6);
        poses.push(Pose {
            id,
            position: [
                0.7 + 1.1 * col as f64 + 0.01 * shift as f64,
                0.7 + 1.15 * row as f64,
                size[2] / 2.0,
            ],
            rotation: (90 * ((i + shift) % 4)) as f64,
        });
    }
    let room = Room {
        id: format!("bench_{shift}"),
        description: String::new(),
        size: RoomSize {
            length: 7.0,
            width: 6.0,
            height: 2.8,
        },
        objects,
        openings: Vec::new(),
    };
    Scene::new(&room, &Layout { poses }).expect("bench scene")
}

fn bench(c: &mut Criterion) {
    let mut renderer = match Renderer::new() {
        Ok(r) => r,
        Err(RenderError::NoAdapter(reason)) => {
            eprintln!("skipped: no wgpu adapter ({reason})");
            return;
        }
        Err(e) => panic!("renderer: {e}"),
    };
    eprintln!("adapter: {}", renderer.adapter_info().name);
    let options = RenderOptions::default();
    let mut group = c.benchmark_group("render_448_30_objects");
    group.sample_size(10);
    for batch in [1_usize, 64] {
        let scenes: Vec<Scene> = (0..batch).map(scene).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter(|| black_box(renderer.render_batch(&scenes, &options).expect("render")));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
