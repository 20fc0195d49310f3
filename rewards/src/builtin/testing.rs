//! Fixture scenes for the built-ins' tests.

use metaspatial_env::{AssessConfig, Room, load_room};

use crate::Prepared;

/// The 4 × 3 × 2.5 m bedroom of `tests/fixtures/bedroom.json`: bed (2 × 1.6 × 0.5) and
/// nightstand (0.5 × 0.4 × 0.5) on the south wall, nightstand right of the bed, wardrobe
/// (1 × 0.6 × 2) on the west wall facing east, painting (1 × 0.05 × 0.6) on the north wall
/// facing south.
pub fn bedroom() -> Room {
    load_room(
        include_str!("../../tests/fixtures/bedroom.json"),
        "bedroom.json",
    )
    .expect("fixture room")
}

/// An answer placing the bedroom's objects at these `(id, x, y, z, rotation)`.
pub fn answer(entries: &[(&str, f64, f64, f64, f64)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(id, x, y, z, r)| {
            format!(r#"{{"new_object_id": "{id}", "x": {x}, "y": {y}, "z": {z}, "rotation": {r}}}"#)
        })
        .collect();
    format!(
        "<think>plan</think>\n<answer>[{}]</answer>",
        items.join(", ")
    )
}

/// The tidy layout every relation of the bedroom is satisfied by.
pub fn tidy() -> String {
    answer(&[
        ("bed_1", 2.0, 0.8, 0.25, 0.0),
        ("nightstand_1", 3.25, 0.2, 0.25, 0.0),
        ("wardrobe_1", 0.3, 2.0, 1.0, 90.0),
        ("painting_1", 2.0, 2.975, 1.5, 180.0),
    ])
}

/// Parses and assesses a response with physics and free space.
pub fn prepare(room: &Room, response: &str) -> Prepared {
    Prepared::new(room, response, &AssessConfig::default())
}

/// Scores `response` in `room` with `reward`.
pub fn score(reward: &dyn crate::Reward, room: &Room, response: &str) -> crate::RewardOutcome {
    let p = prepare(room, response);
    reward.score(&p.context(room))
}

/// Asserts two floats agree to 1e-9.
#[track_caller]
pub fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}
