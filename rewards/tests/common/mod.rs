//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use metaspatial_env::{AssessConfig, Room, load_room};
use metaspatial_render::{Camera, Frame, View};
use metaspatial_rewards::{Prepared, RenderedView};

pub fn bedroom() -> Room {
    load_room(include_str!("../fixtures/bedroom.json"), "bedroom.json").unwrap()
}

pub const TIDY: &str = r#"<think>bed on the south wall, nightstand to its right</think>
<answer>[{"new_object_id": "bed_1", "x": 2.0, "y": 0.8, "z": 0.25, "rotation": 0},
{"new_object_id": "nightstand_1", "x": 3.25, "y": 0.2, "z": 0.25, "rotation": 0},
{"new_object_id": "wardrobe_1", "x": 0.3, "y": 2.0, "z": 1.0, "rotation": 90},
{"new_object_id": "painting_1", "x": 2.0, "y": 2.975, "z": 1.5, "rotation": 180}]</answer>"#;

pub fn prepare(room: &Room, response: &str) -> Prepared {
    Prepared::new(room, response, &AssessConfig::geometry_only())
}

/// A small synthetic view whose colour depends on `seed` (so its hash does).
pub fn view(seed: u8) -> RenderedView {
    let camera = Camera::new(View::Top, glam::Vec3::new(4.0, 3.0, 2.5), 1.0);
    let color = (0..64u8).map(|i| i.wrapping_mul(seed)).collect();
    let frame = Frame {
        width: 4,
        height: 4,
        color,
        ids: vec![0; 16],
        depth: vec![1.0; 16],
        camera,
    };
    RenderedView {
        name: "perspective".into(),
        frame,
        visibility: None,
        path: None,
    }
}

/// Asserts two floats agree to 1e-12.
#[track_caller]
pub fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}
