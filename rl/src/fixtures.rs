//! Rooms and answers shared by the unit tests.

use metaspatial_env::{ObjectSpec, Placement, Room, RoomSize, Size};

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
