//! Space-aware view selection (Spatial-MLLM, 2025): of several views of one scene, the few that
//! together see the most of it.
//!
//! Every drawn pixel is mapped back to the room with its depth; the points are binned into cubic
//! voxels whose side is the shortest side of the points' bounding box divided by a number of
//! divisions (sides under a centimetre do not count: a cloud seen only from above is flat). A view covers the voxels its pixels fall in, and views are chosen greedily by the
//! number of voxels they add — greedy maximum coverage, within `1 − 1/e` of the best choice of
//! the same size.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use glam::{Vec2, Vec3};

use crate::{Frame, View};

/// Elevations the candidate orbit views alternate between, degrees below the horizon.
const CANDIDATE_ELEVATIONS: [f32; 2] = [30.0, 60.0];

/// Bounding-box sides shorter than this (m) are flat and do not set the voxel size; it is also
/// the voxel side of a cloud flat in every direction.
const FLAT: f32 = 0.01;

/// Which points a view is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// The objects' surfaces (pixels with an object index); the room's when no view shows an
    /// object (an empty room before the first answer).
    #[default]
    Objects,
    /// Everything drawn: floor, walls and objects.
    Room,
}

/// `n` orbit views around the room, the first from the south-west, then every `360/n` degrees
/// counter-clockwise, alternately at 30 and 60 degrees below the horizon.
#[must_use]
pub fn candidate_views(n: usize) -> Vec<View> {
    (0..n)
        .map(|i| View::Orbit {
            azimuth: (225.0 + 360.0 * i as f32 / n as f32) % 360.0,
            elevation: CANDIDATE_ELEVATIONS[i % 2],
            distance: 1.0,
        })
        .collect()
}

/// `k` of `n` candidates evenly spaced (the first, then every `n/k`-th), the view choice that
/// ignores the scene.
#[must_use]
pub fn evenly_spaced(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    (0..k).map(|i| i * n / k).collect()
}

/// A voxel: integer coordinates of a cube of the grid.
type Voxel = [i32; 3];

/// The voxels each view of one scene sees, and which object each voxel belongs to.
#[derive(Debug, Clone)]
pub struct SceneVoxels {
    /// The voxel side (m).
    pub size: f32,
    /// Whether the room's points stood in for the objects' (no view showed an object).
    pub fell_back_to_room: bool,
    /// Per view, the voxels it sees.
    pub views: Vec<HashSet<Voxel>>,
    /// Object index (`i + 1` for the room's `i`-th object, 0 for the room) of each voxel seen.
    owner: HashMap<Voxel, u32>,
}

/// The pixels of `frame` that count for `target`, as room points with their object index.
fn points(frame: &Frame, target: Target) -> Vec<(Vec3, u32)> {
    let unproject = frame.camera.unprojector(frame.width, frame.height);
    let width = frame.width as usize;
    frame
        .depth
        .iter()
        .zip(&frame.ids)
        .enumerate()
        .filter(|&(_, (d, &id))| d.is_finite() && (target == Target::Room || id > 0))
        .map(|(i, (&d, &id))| {
            let pixel = Vec2::new((i % width) as f32 + 0.5, (i / width) as f32 + 0.5);
            (unproject.point(pixel, d), id)
        })
        .collect()
}

impl SceneVoxels {
    /// Voxelises what each frame (views of one scene) sees of `target`.
    #[must_use]
    pub fn new(frames: &[&Frame], target: Target, divisions: u32) -> Self {
        let mut per_view: Vec<Vec<(Vec3, u32)>> =
            frames.iter().map(|f| points(f, target)).collect();
        let fell_back_to_room = target == Target::Objects && per_view.iter().all(Vec::is_empty);
        if fell_back_to_room {
            per_view = frames.iter().map(|f| points(f, Target::Room)).collect();
        }
        let (low, high) = per_view.iter().flatten().fold(
            (Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY)),
            |(lo, hi), (p, _)| (lo.min(*p), hi.max(*p)),
        );
        let shortest = (high - low)
            .to_array()
            .into_iter()
            .filter(|&side| side >= FLAT)
            .fold(f32::INFINITY, f32::min);
        // Enlarged a hair, so that the farthest point falls inside the last of the `divisions`
        // voxels rather than starting one more.
        let size = if shortest.is_finite() {
            shortest / divisions.max(1) as f32 * (1.0 + 1e-4)
        } else {
            FLAT
        };
        let mut owner = HashMap::new();
        let views = per_view
            .iter()
            .map(|points| {
                points
                    .iter()
                    .map(|(p, id)| {
                        let v = ((*p - low) / size).floor().as_ivec3().to_array();
                        // A voxel on a boundary belongs to the object before the room.
                        let o = owner.entry(v).or_insert(*id);
                        if *o == 0 {
                            *o = *id;
                        }
                        v
                    })
                    .collect()
            })
            .collect();
        Self {
            size,
            fell_back_to_room,
            views,
            owner,
        }
    }

    /// Voxels seen by any of the views.
    #[must_use]
    pub fn total(&self) -> usize {
        self.owner.len()
    }

    /// The fraction of all voxels seen by the views `chosen`.
    #[must_use]
    pub fn coverage(&self, chosen: &[usize]) -> f64 {
        let seen = self.union(chosen);
        if self.total() == 0 {
            0.0
        } else {
            seen.len() as f64 / self.total() as f64
        }
    }

    /// Of the objects that any view sees, the fraction of which the views `chosen` see at least
    /// half the voxels.
    #[must_use]
    pub fn objects_half_visible(&self, chosen: &[usize]) -> f64 {
        let mut all: HashMap<u32, (usize, usize)> = HashMap::new();
        for &id in self.owner.values().filter(|&&id| id > 0) {
            all.entry(id).or_default().0 += 1;
        }
        for v in self.union(chosen) {
            if let Some(&id) = self.owner.get(&v).filter(|&&id| id > 0) {
                all.entry(id).or_default().1 += 1;
            }
        }
        if all.is_empty() {
            return 0.0;
        }
        let half = all.values().filter(|(n, seen)| 2 * seen >= *n).count();
        half as f64 / all.len() as f64
    }

    fn union(&self, chosen: &[usize]) -> HashSet<Voxel> {
        chosen
            .iter()
            .flat_map(|&i| self.views[i].iter().copied())
            .collect()
    }

    /// Greedy maximum coverage among the views `among`: up to `k`, each the one adding the most
    /// new voxels (ties to the lowest index), stopping early when no view adds any.
    #[must_use]
    pub fn greedy(&self, among: Range<usize>, k: usize) -> Vec<usize> {
        let mut covered: HashSet<Voxel> = HashSet::new();
        let mut chosen = Vec::new();
        while chosen.len() < k {
            let best = among
                .clone()
                .filter(|i| !chosen.contains(i))
                .map(|i| (self.views[i].difference(&covered).count(), i))
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match best {
                Some((gain, i)) if gain > 0 => {
                    covered.extend(self.views[i].iter().copied());
                    chosen.push(i);
                }
                _ => break,
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Views over a universe of `n` voxels on a line, each a random subset.
    fn random_instance(seed: u64, views: usize, n: i32) -> SceneVoxels {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let mut owner = HashMap::new();
        let sets = (0..views)
            .map(|_| {
                let density = 1 + next() % 4;
                (0..n)
                    .filter(|_| next() % 8 < density)
                    .map(|x| {
                        owner.insert([x, 0, 0], 1);
                        [x, 0, 0]
                    })
                    .collect()
            })
            .collect();
        SceneVoxels {
            size: 1.0,
            fell_back_to_room: false,
            views: sets,
            owner,
        }
    }

    /// The largest union of `k` views, by trying every choice.
    fn brute_force(s: &SceneVoxels, k: usize) -> usize {
        let n = s.views.len();
        (0u32..1 << n)
            .filter(|m| m.count_ones() as usize == k.min(n))
            .map(|m| {
                let chosen: Vec<usize> = (0..n).filter(|i| m & (1 << i) != 0).collect();
                s.union(&chosen).len()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn greedy_is_within_one_minus_one_over_e_of_the_best_choice() {
        let bound = 1.0 - (-1.0f64).exp();
        for seed in 0..200 {
            let views = 2 + (seed as usize % 11);
            let s = random_instance(seed, views, 40);
            for k in 1..=4 {
                let greedy = s.union(&s.greedy(0..views, k)).len();
                let best = brute_force(&s, k);
                assert!(
                    greedy as f64 >= bound * best as f64,
                    "seed {seed}, {views} views, k {k}: greedy {greedy} vs best {best}"
                );
                assert!(greedy <= best);
            }
        }
    }

    #[test]
    fn greedy_breaks_ties_to_the_lowest_index_and_stops_when_nothing_is_gained() {
        let set = |xs: &[i32]| xs.iter().map(|&x| [x, 0, 0]).collect::<HashSet<Voxel>>();
        let s = SceneVoxels {
            size: 1.0,
            fell_back_to_room: false,
            views: vec![set(&[0, 1]), set(&[2, 3]), set(&[0, 1]), set(&[1])],
            owner: (0..4).map(|x| ([x, 0, 0], 1)).collect(),
        };
        assert_eq!(s.greedy(0..4, 4), [0, 1]);
        assert_eq!(s.greedy(2..4, 4), [2]);
        assert!((s.coverage(&[0, 1]) - 1.0).abs() < 1e-12);
        assert!((s.coverage(&[3]) - 0.25).abs() < 1e-12);
        assert_eq!(evenly_spaced(16, 3), [0, 5, 10]);
        assert_eq!(candidate_views(4).len(), 4);
    }
}
