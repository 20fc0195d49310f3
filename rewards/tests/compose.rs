//! Composition from RON: weights, fallbacks, errors that name the entry, parallel batches equal
//! to one-by-one scoring, and Rust rewards registered by name.

mod common;

use common::{TIDY, bedroom, close, prepare};
use metaspatial_rewards::{ConfigError, Registry, Reward, RewardContext, RewardOutcome, RewardSet};

const CONFIG: &str = r#"
// Every deterministic built-in that needs no physics, free-space grid or image.
(
    rewards: [
        (reward: "format", weight: 0.5),
        (reward: "object_set", weight: 1.0),
        (reward: "collision", weight: 1.0, params: (depth_scale: 0.2)),
        (reward: "bounds", weight: 0.5),
        (reward: "relations", name: "relations_hard", weight: 2.0, params: (soft: false)),
        (reward: "metaspatial", weight: 1.0),
        (reward: "facing_alignment", weight: 0.25),
        (reward: "improvement", weight: 1.0),
        (reward: "visibility", weight: 3.0, fallback: 0.1),
    ],
)
"#;

#[test]
fn total_is_the_weighted_sum_with_fallbacks() {
    let set = RewardSet::from_ron(CONFIG, "inline", &Registry::with_builtins()).unwrap();
    let room = bedroom();
    let p = prepare(&room, TIDY);
    let s = set.score(&p.context(&room));
    let names: Vec<_> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[4], "relations_hard");
    // Tidy: every value 1 except metaspatial (0.5: no collisions, no violations) and
    // improvement (0 on turn 1); visibility has no image and falls back to 0.1.
    let vis = s.component("visibility").unwrap();
    assert!(vis.failed.as_deref().unwrap().contains("no rendered image"));
    close(vis.value, 0.1);
    let expected = 0.5 + 1.0 + 1.0 + 0.5 + 2.0 + 0.5 + 0.25 + 0.0 + 3.0 * 0.1;
    assert!(
        (s.total - expected).abs() < 1e-12,
        "{} vs {expected}: {s:#?}",
        s.total
    );
}

#[test]
fn batches_match_one_by_one_scoring() {
    let set = RewardSet::from_ron(CONFIG, "inline", &Registry::with_builtins()).unwrap();
    let room = bedroom();
    let responses: Vec<String> = (0..16)
        .map(|i| {
            TIDY.replace(
                "\"x\": 2.0",
                &format!("\"x\": {}", 1.0 + f64::from(i) * 0.15),
            )
        })
        .collect();
    let prepared: Vec<_> = responses.iter().map(|r| prepare(&room, r)).collect();
    let contexts: Vec<_> = prepared.iter().map(|p| p.context(&room)).collect();
    let batch = set.score_batch(&contexts);
    for (ctx, b) in contexts.iter().zip(&batch) {
        assert_eq!(&set.score(ctx), b);
    }
    assert!(
        batch
            .iter()
            .any(|s| s.component("collision").unwrap().value < 1.0)
    );
}

#[test]
fn config_errors_name_the_entry() {
    let registry = Registry::with_builtins();
    let err = |text: &str| {
        RewardSet::from_ron(text, "r.ron", &registry)
            .unwrap_err()
            .to_string()
    };
    let e =
        err(r#"(rewards: [(reward: "format", weight: 1.0), (reward: "colision", weight: 1.0)])"#);
    assert!(
        e.starts_with("r.ron: reward 1 (`colision`): unknown reward `colision`; known: "),
        "{e}"
    );
    let e = err(r#"(rewards: [(reward: "format", weight: 1.0), (reward: "format", weight: 2.0)])"#);
    assert!(
        e.contains("reward 1 (`format`): component name `format` is used twice"),
        "{e}"
    );
    let e = err(r#"(rewards: [(reward: "relations", weight: 1.0, params: (sotf: true))])"#);
    assert!(
        e.contains("reward 0 (`relations`): params:") && e.contains("sotf"),
        "{e}"
    );
    let e = err(r#"(rewards: [(reward: "bounds", weight: 1.0, params: (strict: true))])"#);
    assert!(e.contains("reward 0 (`bounds`)"), "{e}");
    let e = err(r#"(rewards: [(reward: "plugin", weight: 1.0)])"#);
    assert!(e.contains("params are required"), "{e}");
    assert!(matches!(
        RewardSet::from_ron("(rewards: [", "r.ron", &registry),
        Err(ConfigError::Syntax { .. })
    ));
}

/// A reward defined outside the crate: longer think blocks score higher.
struct Deliberate;

impl Reward for Deliberate {
    fn name(&self) -> &'static str {
        "deliberate"
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let words = ctx
            .answer
            .ok()
            .and_then(|a| a.think.as_deref())
            .map_or(0, |t| t.split_whitespace().count());
        RewardOutcome::new((words as f64 / 10.0).min(1.0)).with("words", words as f64)
    }
}

#[test]
fn rust_rewards_register_by_name() {
    let mut registry = Registry::with_builtins();
    registry.register("deliberate", |_| Ok(Box::new(Deliberate)));
    let set = RewardSet::from_ron(
        r#"(rewards: [(reward: "deliberate", weight: 2.0)])"#,
        "inline",
        &registry,
    )
    .unwrap();
    let room = bedroom();
    let p = prepare(&room, TIDY);
    let s = set.score(&p.context(&room));
    assert!((s.total - 2.0 * 0.9).abs() < 1e-12, "{s:?}");
}
