//! Headless wgpu renderer for rooms and layouts.
//!
//! A [`Renderer`] owns the wgpu device (a GPU when there is one, Mesa's software Vulkan
//! otherwise) and draws [`Scene`]s — a room and a layout — as colour, per-pixel object index
//! and depth images ([`Frame`]), one scene or a batch of many per submission. Two views: a
//! perspective view from behind a room corner above head height, and a top-down plan.
//!
//! Conventions follow the project: metres, z up, heading clockwise from above with 0 facing
//! +y. Object index 0 is the room or background; `i + 1` is the room's `i`-th object.
//!
//! ```no_run
//! # fn demo(room: &metaspatial_env::Room, layout: &metaspatial_env::Layout)
//! #     -> Result<(), metaspatial_render::RenderError> {
//! use metaspatial_render::{RenderOptions, Renderer, Scene, View};
//! let mut renderer = Renderer::new()?;
//! let scene = Scene::new(room, layout)?;
//! let frame = renderer.render(&scene, &RenderOptions { view: View::Top, ..Default::default() })?;
//! frame.save_png(std::path::Path::new("top.png"))?;
//! # Ok(()) }
//! ```

mod camera;
pub mod coverage;
mod error;
pub mod features;
mod font;
mod frame;
pub mod headless;
mod mesh;
mod metrics;
pub mod probe;
mod renderer;
mod scene;

pub use camera::{Camera, Corner, Unprojector, View};
pub use error::RenderError;
pub use frame::Frame;
pub use mesh::{MeshData, Vertex};
pub use metrics::{FloorCell, FloorClearance, FreeFloor, ObjectVisibility};
pub use renderer::{RenderOptions, Renderer};
pub use scene::{Scene, SceneObject, WALL_THICKNESS};
