//! The reference solver on generated rooms of 10 and 30 objects.
//!
//! Before timing, prints per room size: the solve rate (valid layouts), the median time per
//! room, the median fraction of relations satisfied, and what the failures were (collisions,
//! objects out of bounds, unsupported objects) over [`ROOMS`] rooms. Then criterion times one
//! solve per size, cycling through a few of those rooms.
//! Target: ≥ 95 % valid at 30 objects, median well under a second per 30-object room.
//! Run: `cargo bench -p metaspatial-env --bench solve`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metaspatial_env::Room;
use metaspatial_env::data::generate::{GenConfig, generate};
use metaspatial_env::data::solver::{SolverConfig, solve};

/// Rooms per size for the printed figures.
const ROOMS: u64 = 50;
/// Rooms per size the criterion timing cycles through.
const TIMED_ROOMS: usize = 8;

fn rooms(objects: usize, count: u64) -> Vec<Room> {
    let cfg = GenConfig {
        seed: 2024,
        min_objects: objects,
        max_objects: objects,
    };
    (0..count).map(|i| generate(&cfg, i)).collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// `part / whole` for counts small enough to be exact in an `f64`.
fn fraction(part: usize, whole: usize) -> f64 {
    let exact = |n: usize| f64::from(u32::try_from(n).expect("a count below 2^32"));
    exact(part) / exact(whole)
}

/// Solves every room once and prints the figures criterion cannot give.
fn report(objects: usize, rooms: &[Room], solver: &SolverConfig) {
    let mut times = Vec::with_capacity(rooms.len());
    let mut fractions = Vec::with_capacity(rooms.len());
    let (mut valid, mut collisions, mut outside, mut unsupported, mut attempts) = (0, 0, 0, 0, 0);
    let mut sizes = Vec::with_capacity(rooms.len());
    for room in rooms {
        let start = Instant::now();
        let s = solve(room, solver);
        times.push(start.elapsed().as_secs_f64());
        let (ok, total) = s.relations();
        fractions.push(if total == 0 { 1.0 } else { fraction(ok, total) });
        valid += usize::from(s.valid);
        attempts += s.attempts;
        collisions += s.assessment.collisions.len();
        outside += s.assessment.out_of_bounds.len();
        unsupported += s.assessment.unsupported.len();
        sizes.push(room.objects.len());
        if !s.valid {
            eprintln!(
                "  {}: collisions {:?}, out of bounds {:?}, unsupported {:?}",
                room.id,
                s.assessment
                    .collisions
                    .iter()
                    .map(|c| format!("{}~{} {:.3}", c.a, c.b, c.depth))
                    .collect::<Vec<_>>(),
                s.assessment
                    .out_of_bounds
                    .iter()
                    .map(|o| o.id.as_str())
                    .collect::<Vec<_>>(),
                s.assessment
                    .unsupported
                    .iter()
                    .map(|u| u.id.as_str())
                    .collect::<Vec<_>>(),
            );
        }
    }
    let (lo, hi) = (
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
    );
    eprintln!(
        "solve {objects} objects ({lo}..={hi} generated), {} rooms: valid {valid} ({:.0} %), \
         median {:.1} ms/room, median relations satisfied {:.3}, attempts {attempts}, \
         failures: {collisions} collisions, {outside} out of bounds, {unsupported} unsupported",
        rooms.len(),
        100.0 * fraction(valid, rooms.len()),
        1e3 * median(&mut times),
        median(&mut fractions),
    );
}

fn benches(c: &mut Criterion) {
    let solver = SolverConfig::default();
    let mut group = c.benchmark_group("solve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for objects in [10, 30] {
        let all = rooms(objects, ROOMS);
        report(objects, &all, &solver);
        let timed = &all[..TIMED_ROOMS];
        let mut next = 0;
        group.bench_function(format!("{objects}_objects"), |b| {
            b.iter(|| {
                next = (next + 1) % timed.len();
                solve(black_box(&timed[next]), &solver)
            });
        });
    }
    group.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
