//! Rooms, answers and turns built by hand, shared by the unit tests.

use metaspatial_env::data::generate::{GenConfig, generate};
use metaspatial_env::{AssessConfig, ObjectSpec, Placement, Room, RoomSize, Size};
use metaspatial_policy::{FinishReason, Sequence};
use metaspatial_render::Camera;
use metaspatial_rewards::{ComponentScore, Prepared, Scored};

use crate::rollout::{SavedImage, Turn};

fn cube(id: &str, side: f64) -> ObjectSpec {
    ObjectSpec {
        id: id.to_owned(),
        category: id.to_owned(),
        size: Size {
            length: side,
            width: side,
            height: side,
        },
        on_floor: true,
        facing: None,
        placement: Placement::default(),
        rotation: Some(0.0),
        position: None,
        style: None,
        material: None,
        asset: None,
    }
}

/// Three cubes in a 4 × 3 m room, with no placement relations.
pub fn room() -> Room {
    Room {
        id: "credit".into(),
        description: "three cubes".into(),
        size: RoomSize {
            length: 4.0,
            width: 3.0,
            height: 2.5,
        },
        objects: vec![cube("a", 1.0), cube("b", 1.0), cube("c", 0.5)],
        openings: Vec::new(),
    }
}

/// Places c inside a (c is written last).
pub const COLLIDING: &str = r#"<think>place</think><answer>[{"new_object_id": "a", "x": 1.0, "y": 1.5, "z": 0.5}, {"new_object_id": "b", "x": 3.0, "y": 1.5, "z": 0.5}, {"new_object_id": "c", "x": 1.2, "y": 1.6, "z": 0.25}]</answer>"#;
/// Places the three cubes apart: a valid scene.
pub const CLEAN: &str = r#"<think>place</think><answer>[{"new_object_id": "a", "x": 0.6, "y": 0.6, "z": 0.5}, {"new_object_id": "b", "x": 3.0, "y": 1.5, "z": 0.5}, {"new_object_id": "c", "x": 1.5, "y": 2.5, "z": 0.25}]</answer>"#;

/// A generated room with two objects.
pub fn generated_room() -> Room {
    generate(
        &GenConfig {
            seed: 3,
            min_objects: 2,
            max_objects: 2,
        },
        0,
    )
}

/// A turn answering `response` in `room`, with a `format` component worth `total` at
/// weight 0.5, and one saved top view.
pub fn turn(room: &Room, response: &str, total: f64, finish: FinishReason) -> Turn {
    Turn {
        prompt: Sequence {
            tokens: vec![1, 2, 3],
            images: Vec::new(),
        },
        prompt_text: "lay out the room".to_owned(),
        response_tokens: vec![7; 5],
        finish,
        prepared: Prepared::new(room, response, &AssessConfig::default()),
        scored: Scored {
            total,
            components: vec![ComponentScore {
                name: "format".to_owned(),
                reward: "format".to_owned(),
                weight: 0.5,
                value: 2.0 * total,
                weighted: total,
                components: std::collections::BTreeMap::new(),
                note: None,
                failed: None,
            }],
        },
        images: vec![SavedImage {
            view: "top".to_owned(),
            camera: Camera::new(
                metaspatial_render::View::Top,
                glam::Vec3::new(4.0, 3.0, 2.5),
                1.0,
            ),
            path: "rollouts/step-000001/g0-s0-t1-top.png".to_owned(),
        }],
    }
}

/// An answer placing every object of `room` at its centre.
pub fn centred_answer(room: &Room) -> String {
    let entries: Vec<String> = room
        .objects
        .iter()
        .map(|o| {
            format!(
                r#"{{"new_object_id": "{}", "x": {}, "y": {}, "z": 0.0}}"#,
                o.id,
                room.size.length / 2.0,
                room.size.width / 2.0
            )
        })
        .collect();
    format!(
        "<think>all in the middle</think><answer>[{}]</answer>",
        entries.join(", ")
    )
}
