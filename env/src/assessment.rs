//! One assessment of a response: everything `metaspatial-rl score --json` prints.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::answer::{self, AnswerError, ParsedAnswer};
use crate::bounds::{DEFAULT_MAX_FRACTION_OUTSIDE, OutOfBounds, out_of_bounds};
use crate::collision::{Collision, DEFAULT_MIN_DEPTH, collisions};
use crate::free_space::{FreeSpace, FreeSpaceConfig, free_space};
use crate::heading::{self, HeadingSource};
use crate::layout::{Layout, Pose};
use crate::metaspatial::{MetaSpatialRatios, ratios};
use crate::physics::{SupportConfig, SupportReport, settle};
use crate::relations::{RelationResult, RelationTolerances, evaluate};
use crate::room::Room;
use crate::scene::Scene;

/// What to check and with which thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessConfig {
    /// Penetration above which two objects collide, metres.
    pub collision_depth: f64,
    /// Fraction of volume outside the room above which an object is out of bounds.
    pub max_fraction_outside: f64,
    /// Relation tolerances.
    pub relations: RelationTolerances,
    /// Settle under gravity with these parameters; `None` skips physics.
    pub support: Option<SupportConfig>,
    /// Measure free floor space with these parameters; `None` skips it.
    pub free_space: Option<FreeSpaceConfig>,
}

impl Default for AssessConfig {
    fn default() -> Self {
        Self {
            collision_depth: DEFAULT_MIN_DEPTH,
            max_fraction_outside: DEFAULT_MAX_FRACTION_OUTSIDE,
            relations: RelationTolerances::default(),
            support: Some(SupportConfig::default()),
            free_space: Some(FreeSpaceConfig::default()),
        }
    }
}

impl AssessConfig {
    /// Only the cheap geometric checks: no physics, no free-space grid.
    #[must_use]
    pub fn geometry_only() -> Self {
        Self {
            support: None,
            free_space: None,
            ..Self::default()
        }
    }
}

/// An object that did not stay where it was put.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsupported {
    /// The object.
    pub id: String,
    /// How far it fell while settling, metres.
    pub drop: f64,
    /// How far it tipped, degrees.
    pub tilt: f64,
    /// The gap below it before settling, metres.
    pub gap: f64,
    /// Whether it floats with nothing below.
    pub floats: bool,
}

/// Everything known about one response to one room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// A list of entries was read from `<answer>`.
    pub parsed: bool,
    /// Why not, when it was not.
    pub format_error: Option<String>,
    /// The response has MetaSpatial's strict `<think>…</think><answer>…</answer>` shape.
    pub strict_format: bool,
    /// Entries of the list that could not be used.
    pub entry_errors: Vec<String>,
    /// Room objects the answer does not place, in room order.
    pub missing_objects: Vec<String>,
    /// Ids in the answer that the room does not have, in answer order.
    pub unknown_objects: Vec<String>,
    /// Ids placed more than once (the first placement is used), in answer order.
    pub duplicate_objects: Vec<String>,
    /// The layout read from the answer, in room order.
    pub layout: Layout,
    /// Where each pose's heading came from, parallel to `layout.poses`.
    pub heading_sources: Vec<HeadingSource>,
    /// Colliding pairs.
    pub collisions: Vec<Collision>,
    /// Objects outside the room.
    pub out_of_bounds: Vec<OutOfBounds>,
    /// Objects that float, fall or tip; empty when physics was skipped.
    pub unsupported: Vec<Unsupported>,
    /// Per-object settling results; `None` when physics was skipped.
    pub support: Option<Vec<SupportReport>>,
    /// Every placement relation and `facing`, evaluated.
    pub relations: Vec<RelationResult>,
    /// Free floor space; `None` when skipped.
    pub free_space: Option<FreeSpace>,
    /// MetaSpatial's collision and constraint-violation ratios.
    pub metaspatial: MetaSpatialRatios,
    /// Parsed, every object placed exactly once with no unusable or unknown entries, no
    /// collisions and nothing out of bounds.
    pub valid_scene: bool,
}

impl Assessment {
    /// Number of relations that hold, and their total.
    #[must_use]
    pub fn relations_satisfied(&self) -> (usize, usize) {
        (
            self.relations.iter().filter(|r| r.satisfied).count(),
            self.relations.len(),
        )
    }

    /// The objects in at least one collision, each once, sorted.
    #[must_use]
    pub fn colliding_objects(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .collisions
            .iter()
            .flat_map(|c| [c.a.as_str(), c.b.as_str()])
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Parses a response and assesses the layout it describes.
#[must_use]
pub fn assess(room: &Room, response: &str, cfg: &AssessConfig) -> Assessment {
    assess_answer(room, &answer::parse(response), cfg)
}

/// Assesses what [`answer::parse`] read from a response: the layout, or an unparsed answer
/// that places nothing.
#[must_use]
pub fn assess_answer(
    room: &Room,
    answer: &Result<ParsedAnswer, AnswerError>,
    cfg: &AssessConfig,
) -> Assessment {
    match answer {
        Ok(parsed) => assess_parsed(room, parsed, cfg),
        Err(e) => {
            let empty = Layout::default();
            let mut a = assess_layout(room, &empty, &[], cfg);
            a.parsed = false;
            a.format_error = Some(e.to_string());
            a
        }
    }
}

/// Assesses a parsed answer.
#[must_use]
pub fn assess_parsed(room: &Room, parsed: &ParsedAnswer, cfg: &AssessConfig) -> Assessment {
    // Sets, not list scans: a long answer of made-up ids must not take quadratic time.
    let mut seen = HashSet::new();
    let mut reported = HashSet::new();
    let mut duplicate_objects = Vec::new();
    let mut unknown_objects = Vec::new();
    let mut first = Vec::new();
    for e in &parsed.entries {
        if room.object(&e.id).is_none() {
            if reported.insert(e.id.as_str()) {
                unknown_objects.push(e.id.clone());
            }
        } else if !seen.insert(e.id.as_str()) {
            if reported.insert(e.id.as_str()) {
                duplicate_objects.push(e.id.clone());
            }
        } else {
            first.push(e);
        }
    }
    let centre_of = |id: &str| first.iter().find(|e| e.id == id).map(|e| e.position);
    let mut poses = Vec::new();
    let mut sources = Vec::new();
    for spec in &room.objects {
        if let Some(e) = first.iter().find(|e| e.id == spec.id) {
            let (rotation, source) =
                heading::resolve(spec, e.rotation, e.position, room.size, centre_of);
            poses.push(Pose {
                id: spec.id.clone(),
                position: e.position,
                rotation,
            });
            sources.push(source);
        }
    }
    let layout = Layout { poses };
    let mut a = assess_layout(room, &layout, &sources, cfg);
    a.strict_format = parsed.strict_format;
    a.entry_errors = parsed.problems.iter().map(ToString::to_string).collect();
    a.unknown_objects = unknown_objects;
    a.duplicate_objects = duplicate_objects;
    a.valid_scene = a.valid_scene
        && a.entry_errors.is_empty()
        && a.unknown_objects.is_empty()
        && a.duplicate_objects.is_empty();
    if !(a.unknown_objects.is_empty()
        && a.duplicate_objects.is_empty()
        && a.entry_errors.is_empty())
    {
        a.metaspatial = MetaSpatialRatios::undefined(
            "the answer has unknown, duplicated or unusable entries: MetaSpatial's reward stops before its ratios",
        );
    }
    a
}

/// Assesses a layout directly; `sources` gives each pose's heading source (see
/// [`Scene::new`]). Poses whose id the room lacks are ignored.
#[must_use]
pub fn assess_layout(
    room: &Room,
    layout: &Layout,
    sources: &[HeadingSource],
    cfg: &AssessConfig,
) -> Assessment {
    let scene = Scene::new(room, layout, sources);
    let missing_objects: Vec<String> = room
        .objects
        .iter()
        .filter(|o| scene.get(&o.id).is_none())
        .map(|o| o.id.clone())
        .collect();
    let collisions = collisions(&scene, cfg.collision_depth);
    let out_of_bounds = out_of_bounds(&scene, cfg.max_fraction_outside);
    let relations = evaluate(&scene, &cfg.relations);
    let metaspatial = if missing_objects.is_empty() {
        ratios(&scene)
    } else {
        MetaSpatialRatios::undefined(
            "not every object is placed: MetaSpatial's reward stops before its ratios",
        )
    };
    let support = cfg.support.map(|s| settle(&scene, &s));
    let unsupported = support
        .iter()
        .flatten()
        .filter(|r| r.unsupported)
        .map(|r| Unsupported {
            id: r.id.clone(),
            drop: r.drop,
            tilt: r.tilt,
            gap: r.gap,
            floats: r.floats,
        })
        .collect();
    let free_space = cfg.free_space.map(|f| free_space(&scene, &f));
    let valid_scene =
        missing_objects.is_empty() && collisions.is_empty() && out_of_bounds.is_empty();
    let heading_sources = scene.placed.iter().map(|p| p.heading_source).collect();
    // Report the layout in room order, one pose per placed object.
    let layout = Layout {
        poses: scene.placed.iter().map(|p| p.pose.clone()).collect(),
    };
    Assessment {
        parsed: true,
        format_error: None,
        strict_format: false,
        entry_errors: Vec::new(),
        missing_objects,
        unknown_objects: Vec::new(),
        duplicate_objects: Vec::new(),
        layout,
        heading_sources,
        collisions,
        out_of_bounds,
        unsupported,
        support,
        relations,
        free_space,
        metaspatial,
        valid_scene,
    }
}
