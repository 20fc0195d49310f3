//! How fast the viewer opens a long run: a synthetic run of 10,000 steps (about thirty metrics
//! each) with a rollout file of 64 samples for every step.
//!
//! `open + overview` indexes the run from nothing and answers `/api/overview` (what the first
//! page load costs); `overview (indexed)` is the same request on a running server; `step of 64`
//! opens one step's table. The 10,000 rollout files are hard links to one file: the overview
//! only lists them, and this keeps the fixture a few megabytes.

#[path = "../tests/common/mod.rs"]
#[allow(missing_docs, clippy::pedantic)]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use metaspatial_replay::Server;

const STEPS: u64 = 10_000;

fn synthetic_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    common::synthetic::write_metrics(run, STEPS);
    common::synthetic::write_rollouts(run, &[1], 16, 4);
    let first = run.join("rollouts/step-000001.jsonl");
    for step in 2..=STEPS {
        std::fs::hard_link(&first, run.join(format!("rollouts/step-{step:06}.jsonl"))).unwrap();
    }
    dir
}

fn overview(c: &mut Criterion) {
    let dir = synthetic_run();
    let run = dir.path();
    let mut group = c.benchmark_group("replay");
    group.sample_size(20);
    group.bench_function("open + overview (10,000 steps)", |b| {
        b.iter(|| {
            let server = Server::start(run, "127.0.0.1", 0).unwrap();
            let reply = common::get(server.addr(), "/api/overview");
            assert_eq!(reply.status, 200);
            reply.body.len()
        });
    });
    let server = Server::start(run, "127.0.0.1", 0).unwrap();
    group.bench_function("overview (indexed, 10,000 steps)", |b| {
        b.iter(|| common::get(server.addr(), "/api/overview").body.len());
    });
    group.bench_function("step of 64 samples (cold)", |b| {
        let mut step = 1;
        b.iter(|| {
            // A step not opened before, so its file is read and summarised.
            step = step % STEPS + 1;
            common::get(server.addr(), &format!("/api/step/{step}"))
                .body
                .len()
        });
    });
    group.finish();
}

criterion_group!(benches, overview);
criterion_main!(benches);
