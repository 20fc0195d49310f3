//! A procedural dataset in one call: rooms generated from a seed, each split chosen by its
//! index, and with a solver each room's reference layout. `metaspatial-rl data gen` and a run
//! that generates its own rooms both build theirs here.

use rayon::prelude::*;

use super::dataset::{Dataset, GeneratorInfo, Manifest, ReferenceLayout, Split};
use super::generate::{GENERATOR_VERSION, GenConfig, generate};
use super::solver::{SolverConfig, solve};

impl GenConfig {
    /// Whether the object counts make sense: `1 ≤ min_objects ≤ max_objects`.
    #[must_use]
    pub fn objects_in_range(&self) -> bool {
        self.min_objects >= 1 && self.min_objects <= self.max_objects
    }
}

/// The first `rooms` rooms of `cfg`, made in parallel, with their reference layouts when a
/// solver is given; `made` is called once per room finished (for progress bars).
#[must_use]
pub fn build(
    rooms: u64,
    cfg: &GenConfig,
    solver: Option<&SolverConfig>,
    made: impl Fn() + Sync,
) -> Dataset {
    let rooms: Vec<_> = (0..rooms)
        .into_par_iter()
        .map(|i| {
            let room = generate(cfg, i);
            let layout = solver.map(|s| ReferenceLayout::from_solution(&room, &solve(&room, s)));
            made();
            (room, layout)
        })
        .collect();
    let mut data = Dataset::new(Manifest::new(
        "procedural",
        Some(GeneratorInfo {
            version: GENERATOR_VERSION.to_owned(),
            seed: cfg.seed,
            min_objects: cfg.min_objects,
            max_objects: cfg.max_objects,
        }),
    ));
    for (i, (room, layout)) in rooms.into_iter().enumerate() {
        let split = Split::for_index(i as u64);
        data.rooms.entry(split).or_default().push(room);
        if let Some(layout) = layout {
            data.layouts.entry(split).or_default().push(layout);
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_go_to_their_index_split_and_solved_ones_carry_layouts() {
        let cfg = GenConfig {
            seed: 5,
            min_objects: 1,
            max_objects: 2,
        };
        let count = std::sync::atomic::AtomicUsize::new(0);
        let data = build(20, &cfg, Some(&SolverConfig::default()), || {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 20);
        for split in Split::ALL {
            let rooms = data.split(split);
            let layouts = data.layouts.get(&split).map_or(&[][..], Vec::as_slice);
            assert_eq!(rooms.len(), layouts.len());
            for (room, layout) in rooms.iter().zip(layouts) {
                assert_eq!(room.id, layout.room);
            }
        }
        let total: usize = Split::ALL.iter().map(|&s| data.split(s).len()).sum();
        assert_eq!(total, 20);
        let unsolved = build(20, &cfg, None, || ());
        assert!(unsolved.layouts.is_empty());
        assert_eq!(unsolved.rooms, data.rooms);
        assert!(
            !GenConfig {
                min_objects: 0,
                ..cfg
            }
            .objects_in_range()
        );
        assert!(
            !GenConfig {
                min_objects: 3,
                ..cfg
            }
            .objects_in_range()
        );
        assert!(cfg.objects_in_range());
    }
}
