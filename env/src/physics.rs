//! Support and stability: settle the scene under gravity with Rapier.
//!
//! Objects mounted on a wall (`on <wall>`, not on the floor) whose footprint touches that wall
//! within [`SupportConfig::mount_distance`], and objects `on ceiling` whose top touches it, are
//! held in place. Everything else is a dynamic box and must come to rest on the floor or on
//! another object. Pairs that already penetrate (reported as collisions) do not push each other
//! apart, so that one overlap does not fling the rest of the room around.
//!
//! Rapier is built with `enhanced-determinism` and stepped on one thread with a step cap, so the
//! same scene settles the same way on every run.

use std::collections::HashSet;

use rapier3d::prelude::*;
use serde::{Deserialize, Serialize};

use crate::geometry::{penetration, penetration_2d};
use crate::room::{LayoutElement, RoomPreposition};
use crate::scene::{Placed, Scene};

/// Settling parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SupportConfig {
    /// At most this many 1/60 s steps.
    pub max_steps: usize,
    /// A gap under an object larger than this, with nothing below, is floating (metres).
    pub float_gap: f64,
    /// A settled object that dropped more than this is unsupported (metres).
    pub max_drop: f64,
    /// A settled object that tilted more than this is unsupported (degrees).
    pub max_tilt: f64,
    /// A mounted object is held when within this distance of its wall or ceiling (metres).
    pub mount_distance: f64,
    /// Pairs already penetrating deeper than this are not allowed to push each other (metres).
    pub ignore_overlap_depth: f64,
    /// Least mass of a simulated object, in units of one cubic metre at density 1 (a box's mass
    /// is otherwise its volume). A 2 cm rug would weigh a fortieth of the bed on it, and at such
    /// mass ratios the contact solver lets the bed sink through the rug, which then reads as a
    /// fall.
    #[serde(default = "default_min_mass")]
    pub min_mass: f64,
}

fn default_min_mass() -> f64 {
    1.0
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            max_steps: 240,
            float_gap: 0.01,
            max_drop: 0.02,
            max_tilt: 5.0,
            mount_distance: 0.05,
            ignore_overlap_depth: 0.005,
            min_mass: default_min_mass(),
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupportReport {
    /// The object.
    pub id: String,
    /// Held by its wall or ceiling (not simulated).
    pub held: bool,
    /// Gap between its bottom and whatever is below it (floor or an object top), metres,
    /// before settling; negative when sunk into it.
    pub gap: f64,
    /// Whether it floats: gap above `float_gap` with nothing holding it.
    pub floats: bool,
    /// How far its centre fell while settling, metres.
    pub drop: f64,
    /// How far its up axis tilted while settling, degrees.
    pub tilt: f64,
    /// Floats, fell or tipped beyond the limits.
    pub unsupported: bool,
}

/// Whether the object is mounted on a wall or the ceiling and touching it.
fn is_held(p: &Placed<'_>, scene: &Scene<'_>, cfg: &SupportConfig) -> bool {
    let room = scene.room.size;
    let [x0, x1, y0, y1] = p.bounds.aabb_2d();
    p.spec.placement.room.iter().any(|r| {
        if r.preposition != RoomPreposition::On {
            return false;
        }
        let distance = match r.element {
            LayoutElement::Ceiling => room.height - p.bounds.top(),
            _ if p.spec.on_floor => return false,
            LayoutElement::SouthWall => y0,
            LayoutElement::NorthWall => room.width - y1,
            LayoutElement::WestWall => x0,
            LayoutElement::EastWall => room.length - x1,
            LayoutElement::Middle => return false,
        };
        distance.abs() <= cfg.mount_distance
    })
}

/// Gap between the object's bottom and the highest surface below it.
fn gap_below(i: usize, scene: &Scene<'_>, slack: f64) -> f64 {
    let p = &scene.placed[i].bounds;
    let surface = scene
        .placed
        .iter()
        .enumerate()
        .filter(|&(j, q)| {
            j != i && penetration_2d(p, &q.bounds) > 0.0 && q.bounds.top() <= p.bottom() + slack
        })
        .map(|(_, q)| q.bounds.top())
        .fold(0.0, f64::max);
    p.bottom() - surface
}

/// Settles the scene and reports every placed object, in room order.
#[must_use]
pub fn settle(scene: &Scene<'_>, cfg: &SupportConfig) -> Vec<SupportReport> {
    let room = scene.room.size;
    let held: Vec<bool> = scene
        .placed
        .iter()
        .map(|p| is_held(p, scene, cfg))
        .collect();

    let mut world = PhysicsWorld::new();
    world.gravity = Vector::new(0.0, 0.0, -9.81);
    let margin = 5.0;
    let floor = world.insert_body(RigidBodyBuilder::fixed().translation(Vector::new(
        room.length as f32 / 2.0,
        room.width as f32 / 2.0,
        -0.5,
    )));
    world.insert_collider(
        ColliderBuilder::cuboid(
            room.length as f32 / 2.0 + margin,
            room.width as f32 / 2.0 + margin,
            0.5,
        ),
        Some(floor),
    );
    let mut bodies = Vec::with_capacity(scene.placed.len());
    let mut colliders = Vec::with_capacity(scene.placed.len());
    for (p, &is_held) in scene.placed.iter().zip(&held) {
        let [x, y, z] = p.bounds.center;
        let builder = if is_held {
            RigidBodyBuilder::fixed()
        } else {
            RigidBodyBuilder::dynamic()
        };
        let body = world.insert_body(
            builder
                .translation(Vector::new(x as f32, y as f32, z as f32))
                // Our headings turn clockwise seen from above; Rapier's angles counter-clockwise.
                .rotation(Vector::new(
                    0.0,
                    0.0,
                    -(p.pose.rotation.to_radians() as f32),
                )),
        );
        // Degenerate boxes (a zero side) still need volume to be simulated.
        let half = p.bounds.half.map(|h| (h as f32).max(0.002));
        let volume = 8.0 * half[0] * half[1] * half[2];
        let collider = world.insert_collider(
            ColliderBuilder::cuboid(half[0], half[1], half[2])
                .mass(volume.max(cfg.min_mass as f32))
                .friction(0.8)
                .restitution(0.0)
                .active_hooks(ActiveHooks::FILTER_CONTACT_PAIRS),
            Some(body),
        );
        bodies.push(body);
        colliders.push(collider);
    }
    let mut ignored = HashSet::new();
    for i in 0..scene.placed.len() {
        for j in i + 1..scene.placed.len() {
            if penetration(&scene.placed[i].bounds, &scene.placed[j].bounds)
                > cfg.ignore_overlap_depth
            {
                ignored.insert((colliders[i], colliders[j]));
                ignored.insert((colliders[j], colliders[i]));
            }
        }
    }
    let hooks = IgnorePairs(ignored);
    for _ in 0..cfg.max_steps {
        world.step_with_events(&hooks, &());
        if bodies
            .iter()
            .zip(&held)
            .all(|(&b, &h)| h || world.bodies[b].is_sleeping())
        {
            break;
        }
    }

    scene
        .placed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let body = &world.bodies[bodies[i]];
            let drop = p.bounds.center[2] - f64::from(body.translation().z);
            let up = *body.rotation() * Vector::Z;
            let tilt = f64::from(up.z.clamp(-1.0, 1.0)).acos().to_degrees();
            let gap = gap_below(i, scene, cfg.float_gap);
            let floats = !held[i] && gap > cfg.float_gap;
            SupportReport {
                id: p.spec.id.clone(),
                held: held[i],
                gap,
                floats,
                drop,
                tilt,
                unsupported: !held[i] && (floats || drop > cfg.max_drop || tilt > cfg.max_tilt),
            }
        })
        .collect()
}

/// Disables contact response between listed collider pairs.
struct IgnorePairs(HashSet<(ColliderHandle, ColliderHandle)>);

impl PhysicsHooks for IgnorePairs {
    fn filter_contact_pair(&self, context: &PairFilterContext) -> Option<SolverFlags> {
        if self.0.contains(&(context.collider1, context.collider2)) {
            None
        } else {
            Some(SolverFlags::COMPUTE_RIGID_IMPULSES)
        }
    }
}
