//! Errors of the renderer.

use std::path::PathBuf;

/// Everything that can go wrong while building or drawing a scene.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No wgpu adapter (GPU or software Vulkan) exists on this machine.
    #[error("no wgpu adapter found (install a Vulkan driver, e.g. Mesa's lavapipe): {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a wgpu device on {adapter}: {reason}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// Why creation failed.
        reason: String,
    },
    /// The device was lost and could not be recreated, or was lost again right after.
    #[error("the wgpu device was lost: {0}")]
    DeviceLost(String),
    /// wgpu reported an error while recording or submitting work.
    #[error("wgpu error: {0}")]
    Gpu(String),
    /// The room itself cannot be drawn.
    #[error("room `{room}`: {reason}")]
    Room {
        /// The room's id.
        room: String,
        /// What is wrong.
        reason: String,
    },
    /// One object of the room or layout cannot be drawn.
    #[error("room `{room}`, object `{object}`: {reason}")]
    Object {
        /// The room's id.
        room: String,
        /// The object's id.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// The requested image size or batch cannot be rendered.
    #[error("invalid render request: {0}")]
    Request(String),
    /// A GLB/glTF asset could not be read.
    #[error("asset {path}: {reason}")]
    Asset {
        /// The asset's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image could not be written.
    #[error("writing {path}: {source}")]
    Image {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
}
