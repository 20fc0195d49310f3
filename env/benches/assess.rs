//! Speed of the environment's checks (targets: ≤ 100 µs to assess a 30-object answer without
//! settling; ≤ 5 ms to settle a 30-object scene).
use criterion::{Criterion, criterion_group, criterion_main};

fn benches(_c: &mut Criterion) {}

criterion_group!(group, benches);
criterion_main!(group);
