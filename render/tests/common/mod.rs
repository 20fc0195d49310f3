//! Fixtures and helpers shared by the renderer's integration tests.

use std::path::{Path, PathBuf};

use metaspatial_env::{Layout, Room};
use metaspatial_render::{RenderError, Renderer, Scene};

/// A renderer, or `None` (with a message) when the machine has no wgpu adapter at all.
pub fn renderer() -> Option<Renderer> {
    match Renderer::new() {
        Ok(renderer) => Some(renderer),
        Err(RenderError::NoAdapter(reason)) => {
            eprintln!("skipped: no wgpu adapter on this machine ({reason})");
            None
        }
        Err(error) => panic!("renderer: {error}"),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn bedroom() -> (Room, Layout) {
    let read = |name| std::fs::read_to_string(fixture(name)).expect("fixture");
    let room = serde_json::from_str(&read("bedroom.json")).expect("room fixture");
    let layout = serde_json::from_str(&read("bedroom-layout.json")).expect("layout fixture");
    (room, layout)
}

pub fn bedroom_scene() -> Scene {
    let (room, layout) = bedroom();
    Scene::new(&room, &layout).expect("fixture scene")
}
