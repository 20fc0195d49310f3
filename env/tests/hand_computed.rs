//! Cases worked out by hand: touching and rotated boxes, an object through a wall, support and
//! stability, relations, headings, MetaSpatial's ratios on a tiny room, and episodes.

// Hand-computed values are exact; comparing them exactly is the test.
#![allow(clippy::float_cmp)]

use metaspatial_env::episode::{Content, Role};
use metaspatial_env::feedback::{ANNOTATION_KEY, FeedbackView};
use metaspatial_env::heading::HeadingSource;
use metaspatial_env::{
    AssessConfig, Episode, EpisodeConfig, ImageRequest, LayoutElement, ObjectPreposition,
    ObjectRelation, ObjectSpec, Placement, Room, RoomPreposition, RoomRelation, RoomSize, Size,
    assess,
};

fn object(id: &str, size: [f64; 3], on_floor: bool) -> ObjectSpec {
    ObjectSpec {
        id: id.to_owned(),
        category: id.to_owned(),
        size: Size {
            length: size[0],
            width: size[1],
            height: size[2],
        },
        on_floor,
        facing: None,
        placement: Placement::default(),
        rotation: Some(0.0),
        position: None,
        style: None,
        material: None,
        asset: None,
    }
}

fn room(objects: Vec<ObjectSpec>) -> Room {
    Room {
        id: "test".into(),
        description: "a test room".into(),
        size: RoomSize {
            length: 4.0,
            width: 3.0,
            height: 2.5,
        },
        objects,
        openings: Vec::new(),
    }
}

/// A response placing `(id, x, y, z, optional heading)`.
fn response(poses: &[(&str, f64, f64, f64, Option<f64>)]) -> String {
    let entries: Vec<String> = poses
        .iter()
        .map(|(id, x, y, z, r)| match r {
            Some(r) => format!(
                r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}, "rotation": {r}}}"#
            ),
            None => format!(r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}}}"#),
        })
        .collect();
    format!(
        "<think>placing</think>\n<answer>[{}]</answer>",
        entries.join(", ")
    )
}

fn cubes() -> Room {
    room(vec![
        object("a", [1.0, 1.0, 1.0], true),
        object("b", [1.0, 1.0, 1.0], true),
    ])
}

#[test]
fn touching_boxes_do_not_collide() {
    let a = assess(
        &cubes(),
        &response(&[("a", 0.5, 0.5, 0.5, None), ("b", 1.5, 0.5, 0.5, None)]),
        &AssessConfig::geometry_only(),
    );
    assert!(a.collisions.is_empty(), "{:?}", a.collisions);
    assert!(a.valid_scene);
}

#[test]
fn overlapping_boxes_report_depth_and_volume() {
    // 2 cm overlap along x over a 1 × 1 face: depth 0.02, volume 0.02 m³.
    let a = assess(
        &cubes(),
        &response(&[("a", 0.5, 0.5, 0.5, None), ("b", 1.48, 0.5, 0.5, None)]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(a.collisions.len(), 1);
    let c = &a.collisions[0];
    assert_eq!((c.a.as_str(), c.b.as_str()), ("a", "b"));
    assert!(
        (c.depth - 0.02).abs() < 1e-12 && (c.volume - 0.02).abs() < 1e-12,
        "{c:?}"
    );
    assert!(!a.valid_scene);
    // 3 mm is below the default 5 mm threshold: not a collision.
    let a = assess(
        &cubes(),
        &response(&[("a", 0.5, 0.5, 0.5, None), ("b", 1.497, 0.5, 0.5, None)]),
        &AssessConfig::geometry_only(),
    );
    assert!(a.collisions.is_empty());
}

#[test]
fn boxes_at_45_degrees_collide_by_the_diamond_tip() {
    // b is a unit cube turned 45°: its corner reaches sqrt(2)/2 ≈ 0.7071 towards a. With centres
    // 1.1 apart the tip enters a by 0.5 + 0.7071 - 1.1 = 0.1071; the overlap is a triangle of
    // area 0.1071², times the 1 m height.
    let a = assess(
        &cubes(),
        &response(&[("a", 0.5, 1.5, 0.5, None), ("b", 1.6, 1.5, 0.5, Some(45.0))]),
        &AssessConfig::geometry_only(),
    );
    let t = 0.5 + std::f64::consts::FRAC_1_SQRT_2 - 1.1;
    assert_eq!(a.collisions.len(), 1);
    assert!((a.collisions[0].depth - t).abs() < 1e-12);
    assert!((a.collisions[0].volume - t * t).abs() < 1e-12);
    // Rotated by 45°, b is outside MetaSpatial's definition; their axis-aligned box would not
    // overlap a (1.6 - 0.5 = 1.1 > 1.0), ours does.
    assert!(!a.metaspatial.within_definition);
}

#[test]
fn an_object_through_the_east_wall_is_out_of_bounds() {
    let r = room(vec![object("bookshelf_1", [1.0, 0.4, 2.0], true)]);
    let a = assess(
        &r,
        &response(&[("bookshelf_1", 4.2, 1.0, 1.0, None)]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(a.out_of_bounds.len(), 1);
    let o = &a.out_of_bounds[0];
    assert!((o.fraction_outside - 0.7).abs() < 1e-12, "{o:?}");
    assert_eq!(o.boundary, "east_wall");
    assert!((o.distance - 0.7).abs() < 1e-12);
    let lines = metaspatial_env::feedback::feedback(
        &a,
        &metaspatial_env::feedback::FeedbackConfig::default(),
    );
    assert_eq!(lines, ["bookshelf_1 is 0.70 m past the east wall"]);
}

fn painting() -> ObjectSpec {
    let mut p = object("painting_1", [0.9, 0.04, 0.7], false);
    p.placement.room.push(RoomRelation {
        element: LayoutElement::SouthWall,
        preposition: RoomPreposition::On,
    });
    p
}

#[test]
fn a_stack_on_a_table_is_supported() {
    let r = room(vec![
        object("table_1", [1.0, 1.0, 0.5], true),
        object("box_1", [0.4, 0.4, 0.4], false),
    ]);
    let a = assess(
        &r,
        &response(&[
            ("table_1", 2.0, 1.5, 0.25, None),
            ("box_1", 2.0, 1.5, 0.7, None),
        ]),
        &AssessConfig::default(),
    );
    assert!(a.unsupported.is_empty(), "{:?}", a.support);
    let support = a.support.unwrap();
    assert!(
        support.iter().all(|s| s.drop.abs() < 0.01 && s.tilt < 1.0),
        "{support:?}"
    );
}

#[test]
fn a_bed_on_a_thin_rug_is_stable() {
    // A 2 cm rug under the middle of a bed is some twenty times lighter than the bed. At mass
    // volume the bed sank 1.6 cm into the rug while settling, 2.0 cm in all with the rug
    // pressed into the floor: past `max_drop`, a fall.
    let r = room(vec![
        object("rug_1", [1.6, 1.2, 0.02], true),
        object("bed_1", [2.0, 1.6, 0.5], true),
    ]);
    let a = assess(
        &r,
        &response(&[
            ("rug_1", 2.0, 1.5, 0.01, None),
            ("bed_1", 2.0, 1.5, 0.27, None),
        ]),
        &AssessConfig::default(),
    );
    assert!(a.collisions.is_empty(), "{:?}", a.collisions);
    assert!(a.unsupported.is_empty(), "{:?}", a.support);
    let support = a.support.unwrap();
    assert!(
        support.iter().all(|s| s.drop.abs() < 0.01 && s.tilt < 1.0),
        "{support:?}"
    );
}

#[test]
fn a_painting_away_from_its_wall_floats_and_falls() {
    let r = room(vec![painting()]);
    let a = assess(
        &r,
        &response(&[("painting_1", 2.0, 1.0, 1.5, None)]),
        &AssessConfig::default(),
    );
    assert_eq!(a.unsupported.len(), 1, "{:?}", a.support);
    let u = &a.unsupported[0];
    assert!(u.floats && (u.gap - 1.15).abs() < 1e-12, "{u:?}");
    assert!(u.drop > 0.5, "{u:?}");
    let lines = metaspatial_env::feedback::feedback(
        &a,
        &metaspatial_env::feedback::FeedbackConfig::default(),
    );
    assert!(
        lines.contains(&"painting_1 floats 1.15 m above what is below it".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"painting_1 should be against the south wall".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn a_painting_on_its_wall_is_held() {
    let r = room(vec![painting()]);
    let a = assess(
        &r,
        &response(&[("painting_1", 2.0, 0.02, 1.5, None)]),
        &AssessConfig::default(),
    );
    assert!(a.unsupported.is_empty(), "{:?}", a.support);
    assert!(a.support.unwrap()[0].held);
    assert!(a.relations.iter().all(|r| r.satisfied), "{:?}", a.relations);
}

#[test]
fn settling_is_deterministic() {
    let r = room(vec![
        object("table_1", [1.0, 1.0, 0.5], true),
        object("box_1", [0.4, 0.4, 0.4], false),
        painting(),
    ]);
    let text = response(&[
        ("table_1", 2.0, 1.5, 0.3, Some(10.0)),
        ("box_1", 2.3, 1.6, 0.9, Some(30.0)),
        ("painting_1", 1.0, 1.0, 2.0, None),
    ]);
    let first = assess(&r, &text, &AssessConfig::default());
    let second = assess(&r, &text, &AssessConfig::default());
    assert_eq!(first.support, second.support);
}

#[test]
fn side_relations_are_measured_in_the_reference_frame() {
    // desk_1 faces east (90°): its front is +x, its left is +y.
    let mut chair = object("chair_1", [0.5, 0.5, 0.9], true);
    chair.placement.objects.push(ObjectRelation {
        target: "desk_1".into(),
        preposition: ObjectPreposition::InFront,
        adjacent: true,
    });
    let mut lamp = object("lamp_1", [0.3, 0.3, 1.5], true);
    lamp.placement.objects.push(ObjectRelation {
        target: "desk_1".into(),
        preposition: ObjectPreposition::LeftOf,
        adjacent: false,
    });
    let r = room(vec![object("desk_1", [1.2, 0.6, 0.75], true), chair, lamp]);
    // desk at (1.0, 1.5), so its front face is x = 1.3; chair 0.1 m beyond it (gap 0.1 > 5 cm);
    // lamp at y = 1.5 + 0.6 + 0.15 + 0.1 (clear of the desk's left side, y = 2.1).
    let text = response(&[
        ("desk_1", 1.0, 1.5, 0.375, Some(90.0)),
        ("chair_1", 1.3 + 0.1 + 0.25, 1.5, 0.45, None),
        ("lamp_1", 1.0, 2.1 + 0.15 + 0.1, 0.75, None),
    ]);
    let a = assess(&r, &text, &AssessConfig::geometry_only());
    let chair = a.relations.iter().find(|r| r.subject == "chair_1").unwrap();
    assert!(!chair.satisfied);
    assert!((chair.error.unwrap() - 0.05).abs() < 1e-9, "{chair:?}");
    let lamp = a.relations.iter().find(|r| r.subject == "lamp_1").unwrap();
    assert!(
        lamp.satisfied && (lamp.error.unwrap() + 0.12).abs() < 1e-9,
        "{lamp:?}"
    );
}

#[test]
fn heading_precedence_is_answer_then_scene_graph_then_facing() {
    let mut a = object("a", [0.5, 0.5, 0.5], true);
    a.rotation = Some(180.0);
    let mut b = object("b", [0.5, 0.5, 0.5], true);
    b.rotation = None;
    b.facing = Some("west_wall".into());
    let mut c = object("c", [0.5, 0.5, 0.5], true);
    c.rotation = None;
    c.facing = Some("b".into());
    let r = room(vec![a, b, c]);
    let text = response(&[
        ("a", 1.0, 1.0, 0.25, Some(45.0)),
        ("b", 2.0, 1.0, 0.25, None),
        ("c", 2.0, 2.0, 0.25, None),
    ]);
    let out = assess(&r, &text, &AssessConfig::geometry_only());
    let headings: Vec<f64> = out.layout.poses.iter().map(|p| p.rotation).collect();
    assert_eq!(headings, [45.0, 270.0, 180.0]);
    assert_eq!(
        out.heading_sources,
        [
            HeadingSource::Answer,
            HeadingSource::FacingWall,
            HeadingSource::FacingTarget
        ]
    );
    // Without the answer's heading, the scene graph's wins.
    let out = assess(
        &r,
        &response(&[("a", 1.0, 1.0, 0.25, None)]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(out.layout.poses[0].rotation, 180.0);
    // b and c have no rotation.z_angle: MetaSpatial's code would raise.
    let out = assess(&r, &text, &AssessConfig::geometry_only());
    assert_eq!(out.metaspatial.collision_ratio, None);
    assert!(out.metaspatial.extended_collision_ratio.is_some());
}

#[test]
fn missing_unknown_and_duplicated_ids_are_reported() {
    let text = response(&[
        ("a", 0.5, 0.5, 0.5, None),
        ("a", 2.5, 0.5, 0.5, None),
        ("zebra_1", 1.0, 1.0, 1.0, None),
    ]);
    let out = assess(&cubes(), &text, &AssessConfig::geometry_only());
    assert_eq!(out.missing_objects, ["b"]);
    assert_eq!(out.unknown_objects, ["zebra_1"]);
    assert_eq!(out.duplicate_objects, ["a"]);
    // The first placement of `a` is kept.
    assert_eq!(out.layout.poses[0].position, [0.5, 0.5, 0.5]);
    assert!(!out.valid_scene);
    assert_eq!(out.metaspatial.collision_ratio, None);
}

#[test]
fn metaspatial_ratios_by_hand_on_a_tiny_room() {
    // Two objects plus the six layout elements: C(8, 2) = 28 pairs.
    // a: 1 × 0.5 × 1 against the south wall, flush (y = 0.25 exactly), on the floor.
    // b: same size, overlapping a by 0.5 m along x: one colliding pair. Neither sinks into the
    // floor nor crosses a wall (touching is not colliding), so the ratio is 1/28.
    let mut a = object("a", [1.0, 0.5, 1.0], true);
    a.placement.room.push(RoomRelation {
        element: LayoutElement::SouthWall,
        preposition: RoomPreposition::On,
    });
    let mut b = a.clone();
    b.id = "b".into();
    let r = room(vec![a, b]);
    let out = assess(
        &r,
        &response(&[("a", 1.0, 0.25, 0.5, None), ("b", 1.5, 0.25, 0.5, None)]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(out.metaspatial.collision_ratio, Some(1.0 / 28.0));
    // Both are flush with the south wall: their allowed y is exactly 0.25. No violation.
    assert_eq!(out.metaspatial.constraint_violation_ratio, Some(0.0));
    assert!(out.metaspatial.within_definition);
    // A hair off the wall is a violation under their exact-equality rule (ours tolerates 5 cm).
    let out = assess(
        &r,
        &response(&[
            ("a", 1.0, 0.250_000_1, 0.5, None),
            ("b", 3.0, 0.25, 0.5, None),
        ]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(out.metaspatial.constraint_violation_ratio, Some(0.5));
    assert_eq!(out.metaspatial.collision_ratio, Some(0.0));
    assert!(out.relations.iter().all(|r| r.satisfied));
    // Sunk 2 mm into the floor: a collides with the floor element (more than their 1 mm).
    let out = assess(
        &r,
        &response(&[("a", 1.0, 0.25, 0.498, None), ("b", 3.0, 0.25, 0.5, None)]),
        &AssessConfig::geometry_only(),
    );
    assert_eq!(out.metaspatial.collision_ratio, Some(1.0 / 28.0));
}

#[test]
fn episodes_show_the_empty_room_then_the_layout_and_feedback() {
    let config = EpisodeConfig {
        max_turns: 2,
        assess: AssessConfig::geometry_only(),
        ..EpisodeConfig::default()
    };
    let mut episode = Episode::new(cubes(), config.clone());
    let first = episode.reset();
    assert_eq!(first.turn, 1);
    assert_eq!(first.images, [ImageRequest::EmptyRoom]);
    let Content::Text(prompt) = &first.messages[0].content[1] else {
        panic!("no prompt text")
    };
    assert!(
        prompt.contains("Room Dimensions: 4 × 3 × 2.5")
            && prompt.contains("\"new_object_id\": \"a\"")
    );
    assert!(prompt.contains("a test room") && prompt.contains("<answer>"));

    let step = episode.step(&response(&[
        ("a", 0.5, 0.5, 0.5, None),
        ("b", 1.2, 0.5, 0.5, None),
    ]));
    assert!(!step.done && !step.truncated);
    let obs = &step.observation;
    assert_eq!(obs.turn, 2);
    assert_eq!(obs.images.len(), 2);
    assert!(matches!(obs.images[1], ImageRequest::Layout(_)));
    assert_eq!(obs.messages.len(), 3);
    assert_eq!(obs.messages[1].role, Role::Assistant);
    let Content::Text(feedback) = obs.messages[2].content.last().unwrap() else {
        panic!("no feedback")
    };
    assert!(feedback.contains("- a overlaps b by 0.30 m"), "{feedback}");
    assert!(!feedback.contains(ANNOTATION_KEY));

    // With an annotated render the feedback says what its colours mean.
    let mut annotated = Episode::new(
        cubes(),
        EpisodeConfig {
            feedback_view: FeedbackView::Annotated,
            ..config.clone()
        },
    );
    annotated.reset();
    let overlap = annotated.step(&response(&[
        ("a", 0.5, 0.5, 0.5, None),
        ("b", 1.2, 0.5, 0.5, None),
    ]));
    let Content::Text(key) = overlap.observation.messages[2].content.last().unwrap() else {
        panic!("no feedback")
    };
    assert!(
        key.contains(ANNOTATION_KEY) && key.contains("- a overlaps b"),
        "{key}"
    );

    let step = episode.step("no answer at all");
    assert!(step.truncated && !step.done);
    assert!(!step.assessment.parsed);

    let mut episode = Episode::new(
        cubes(),
        EpisodeConfig {
            assess: AssessConfig::geometry_only(),
            ..EpisodeConfig::default()
        },
    );
    episode.reset();
    let step = episode.step(&response(&[
        ("a", 0.5, 0.5, 0.5, None),
        ("b", 2.5, 0.5, 0.5, None),
    ]));
    assert!(step.done && !step.truncated);
}

#[test]
fn the_json_assessment_has_the_documented_fields() {
    let a = assess(
        &cubes(),
        &response(&[("a", 0.5, 0.5, 0.5, None), ("b", 1.4, 0.5, 0.5, None)]),
        &AssessConfig::default(),
    );
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "parsed",
        "format_error",
        "missing_objects",
        "unknown_objects",
        "duplicate_objects",
        "collisions",
        "out_of_bounds",
        "unsupported",
        "relations",
        "free_space",
        "metaspatial",
        "valid_scene",
    ] {
        assert!(v.get(key).is_some(), "no `{key}` in {v}");
    }
    assert_eq!(v["collisions"][0]["a"], "a");
    assert_eq!(v["collisions"][0]["b"], "b");
    assert!(v["metaspatial"].get("collision_ratio").is_some());
    assert!(v["metaspatial"].get("constraint_violation_ratio").is_some());
    let free = &v["free_space"]["largest_region_fraction"];
    assert!(free.as_f64().is_some_and(|f| f > 0.9), "{v}");
    // It reads back.
    let back: metaspatial_env::Assessment = serde_json::from_value(v).unwrap();
    assert_eq!(back, a);
}

#[test]
fn a_wall_of_furniture_splits_the_free_floor_in_two() {
    // A 3 m long, 0.2 m deep divider turned 90° fills the room's width at x = 2: the two halves
    // are equal, so the largest walkable region is half the free floor, and so is what the door
    // in the west wall reaches.
    let mut r = room(vec![object("divider_1", [3.0, 0.2, 2.0], true)]);
    r.openings.push(metaspatial_env::Opening {
        kind: metaspatial_env::OpeningKind::Door,
        wall: LayoutElement::WestWall,
        offset: 1.5,
        width: 0.9,
        height: 2.0,
        sill: 0.0,
    });
    let a = assess(
        &r,
        &response(&[("divider_1", 2.0, 1.5, 1.0, Some(90.0))]),
        &AssessConfig::default(),
    );
    let f = a.free_space.unwrap();
    assert!((f.free_fraction - 0.95).abs() < 1e-9, "{f:?}");
    assert!((f.largest_region_fraction - 0.5).abs() < 1e-9, "{f:?}");
    assert!(
        (f.door_reachable_fraction.unwrap() - 0.5).abs() < 1e-9,
        "{f:?}"
    );
}

#[test]
fn the_compact_prompt_states_the_room_each_object_and_its_relations() {
    let mut room = cubes();
    room.objects[1].facing = Some("a".to_owned());
    let config = EpisodeConfig {
        prompt: metaspatial_env::PromptStyle::Compact,
        ..EpisodeConfig::default()
    };
    let first = Episode::new(room.clone(), config).reset();
    let Content::Text(prompt) = &first.messages[0].content[1] else {
        panic!("the first message is the image, then the text");
    };
    assert_eq!(*prompt, metaspatial_env::episode::compact_prompt(&room));
    let s = room.size;
    assert!(prompt.starts_with(&format!("Room {} x {} x {} m", s.length, s.width, s.height)));
    assert!(prompt.contains("\nObjects: [\"a\", \"b\"]\n"), "{prompt}");
    assert!(
        prompt.contains("\na: 1 x 1 x 1, on the floor\n"),
        "{prompt}"
    );
    assert!(
        prompt.contains("\nb: 1 x 1 x 1, on the floor, facing a\n"),
        "{prompt}"
    );
    assert!(prompt.len() * 3 < metaspatial_env::episode::task_prompt(&room).len());
}
