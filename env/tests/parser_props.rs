//! Model output is never a panic: random and adversarial responses go through the parser and
//! the whole assessment, and come back as reports.

use metaspatial_env::answer::{AnswerError, parse};
use metaspatial_env::{AssessConfig, Room, assess, load_room};
use proptest::prelude::*;

fn room() -> Room {
    load_room(include_str!("fixtures/case_001.json"), "case_001").unwrap()
}

fn wrap(body: &str) -> String {
    format!("<think>x</think><answer>{body}</answer>")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_string_parses_or_reports(s in any::<String>()) {
        let _ = parse(&s);
        let _ = parse(&wrap(&s));
    }

    #[test]
    fn json_like_noise_parses_or_reports(s in r#"[\[\]\{\}",:0-9a-z_\.eE\-+ \n]{0,200}"#) {
        let _ = parse(&wrap(&s));
        let _ = parse(&format!("<answer>{{{s}}}</answer>"));
    }

    #[test]
    fn any_numbers_are_accepted_or_reported(x in any::<f64>(), y in any::<f64>(), z in any::<f64>(), r in any::<f64>()) {
        let room = room();
        let body = format!(
            r#"[{{"new_object_id": "bed_1", "x": {x}, "y": {y}, "z": {z}, "rotation": {r}}}]"#
        );
        let a = assess(&room, &wrap(&body), &AssessConfig::geometry_only());
        // Every coordinate that made it into the layout is finite and bounded.
        for p in &a.layout.poses {
            prop_assert!(p.position.iter().all(|v| v.is_finite() && v.abs() <= 1000.0));
            prop_assert!(p.rotation.is_finite());
        }
    }
}

proptest! {
    // Each case settles the room under gravity: fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_layout_of_the_room_is_assessed(
        poses in proptest::collection::vec((0usize..9, -20.0f64..20.0, -20.0f64..20.0, -5.0f64..5.0, proptest::option::of(-720.0f64..720.0)), 0..12)
    ) {
        let room = room();
        let ids: Vec<String> = room.objects.iter().map(|o| o.id.clone()).chain(["ghost".to_owned(), "ceiling".to_owned()]).collect();
        let entries: Vec<String> = poses.iter().map(|(i, x, y, z, r)| {
            let id = &ids[*i % ids.len()];
            match r {
                Some(r) => format!(r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}, "z_angle": {r}}}"#),
                None => format!(r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}}}"#),
            }
        }).collect();
        let a = assess(&room, &wrap(&format!("[{}]", entries.join(","))), &AssessConfig::default());
        prop_assert!(a.parsed);
        for c in &a.collisions {
            prop_assert!(c.a < c.b && c.depth > 0.0 && c.volume >= 0.0);
        }
        for o in &a.out_of_bounds {
            prop_assert!((0.0..=1.0).contains(&o.fraction_outside));
        }
        if let Some(r) = a.metaspatial.collision_ratio {
            prop_assert!((0.0..=1.0).contains(&r));
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{\"a\":", "[{\"b\":["] {
        let body = open.repeat(100_000);
        assert!(matches!(
            parse(&wrap(&body)),
            Err(AnswerError::InvalidJson { .. })
        ));
    }
}

#[test]
fn a_megabyte_of_garbage_is_reported_quickly() {
    // Deterministic pseudo-random bytes mapped to printable ASCII and some multi-byte chars.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut garbage = String::with_capacity(1 << 20);
    while garbage.len() < 1 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let c = match state % 100 {
            0 => 'é',
            1 => '😀',
            2 => '\n',
            n => char::from(b' ' + (n as u8 % 94)),
        };
        garbage.push(c);
    }
    let _ = parse(&garbage);
    let _ = parse(&wrap(&garbage));
    let a = assess(&room(), &wrap(&garbage), &AssessConfig::default());
    assert!(!a.parsed || a.layout.poses.len() <= room().objects.len());
}

#[test]
fn adversarial_numbers_and_unicode_are_reported() {
    for body in [
        r#"[{"new_object_id": "bed_1", "x": NaN, "y": 1, "z": 1}]"#,
        r#"[{"new_object_id": "bed_1", "x": 1e400, "y": 1, "z": 1}]"#,
        r#"[{"new_object_id": "bed_1", "x": -Infinity, "y": 1, "z": 1}]"#,
    ] {
        assert!(
            matches!(parse(&wrap(body)), Err(AnswerError::InvalidJson { .. })),
            "{body}"
        );
    }
    let r = parse(&wrap(
        r#"[{"new_object_id": "bed_1", "x": 1e308, "y": -1e308, "z": 5e-324}]"#,
    ))
    .unwrap();
    assert!(r.entries.is_empty() && r.problems.len() == 1);
    let r = parse(&wrap(
        r#"[{"new_object_id": "床_1 🛏", "x": 1, "y": 1, "z": 1, "rotation": 1e300}]"#,
    ))
    .unwrap();
    assert_eq!(r.problems.len(), 1);
    let a = assess(
        &room(),
        &wrap(r#"[{"new_object_id": "床_1 🛏", "x": 1, "y": 1, "z": 1}]"#),
        &AssessConfig::default(),
    );
    assert_eq!(a.unknown_objects, ["床_1 🛏"]);
    // Tags split inside multi-byte characters and unclosed tags.
    for s in [
        "<answer>é",
        "é<answer>😀</answer",
        "<think>😀<answer>[</answer>",
        "</think><answer>",
    ] {
        assert!(parse(s).is_err(), "{s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The typed fast path and the general path agree on every entry they both read.
    #[test]
    fn fast_and_general_paths_agree(
        entries in proptest::collection::vec(
            ("[a-c]_[0-9]", -2e3f64..2e3, -5.0f64..5.0, 0.0f64..3.0, 0usize..6, -1e7f64..1e7),
            0..6,
        )
    ) {
        let items: Vec<String> = entries.iter().map(|(id, x, y, z, form, r)| {
            let heading = match form {
                0 => String::new(),
                1 => format!(r#", "rotation": {r}"#),
                2 => format!(r#", "z_angle": {r}"#),
                3 => format!(r#", "rotation": {{"z_angle": {r}}}"#),
                4 => r#", "rotation": null"#.to_owned(),
                _ => format!(r#", "rotation": {r}, "z_angle": 1"#),
            };
            format!(r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}{heading}}}"#)
        }).collect();
        let list = format!("[{}]", items.join(", "));
        // Appending a non-object element forces the general path for the same entries.
        let general = parse(&wrap(&format!("[{}{}0]", items.join(", "), if items.is_empty() { "" } else { ", " }))).unwrap();
        let either = parse(&wrap(&list)).unwrap();
        prop_assert_eq!(&either.entries, &general.entries);
        prop_assert_eq!(either.problems.len() + 1, general.problems.len());
    }
}

#[test]
fn a_megabyte_of_made_up_entries_is_assessed() {
    let entries: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"new_object_id": "thing_{i}", "x": 1, "y": 1, "z": 1}}"#))
        .collect();
    let a = assess(
        &room(),
        &wrap(&format!("[{}]", entries.join(","))),
        &AssessConfig::default(),
    );
    assert_eq!(a.unknown_objects.len(), 20_000);
    assert_eq!(a.missing_objects.len(), room().objects.len());
}
