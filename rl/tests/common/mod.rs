//! What the integration tests that drive whole runs share.

use std::path::Path;

use metaspatial_rl::config::{DataSource, ModelSource, RunConfig};

/// `configs/demo.ron` with `rooms` generated rooms and a 300-token vocabulary, the start of every
/// run shrunk to seconds; each test then sets the steps it needs.
pub fn shrunk_demo(rooms: u64) -> RunConfig {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo.ron");
    let mut config = RunConfig::from_file(&demo).unwrap();
    if let DataSource::Generate(g) = &mut config.data.source {
        g.rooms = rooms;
    }
    if let ModelSource::Tiny(t) = &mut config.model.source {
        t.bpe_vocab = 300;
    }
    config
}
