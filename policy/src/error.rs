//! The error type of the policy crate: every variant names the file, tensor or field at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or saving a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error: in the message, not the error's source, so a chain prints it once.
        error: std::io::Error,
    },
    /// A JSON file did not parse or did not have the expected shape.
    #[error("{path}: {error}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (with line and column), in the message only, like `Io`'s.
        error: serde_json::Error,
    },
    /// A configuration value this implementation does not support.
    #[error("{path}: unsupported value for `{field}`: {value}")]
    Unsupported {
        /// The file holding the value.
        path: PathBuf,
        /// The field name, as in the file.
        field: String,
        /// The value and why it is refused.
        value: String,
    },
    /// A configuration that is internally inconsistent or missing a required part.
    #[error("{path}: {message}")]
    Config {
        /// The file (or directory) at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint lacks a tensor the model needs.
    #[error("checkpoint {dir}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The tensor name, as written in the checkpoint.
        name: String,
        /// The shape the model expects.
        expected: Vec<i64>,
    },
    /// A checkpoint tensor has the wrong shape.
    #[error("{file}: tensor `{name}` has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        /// The safetensors file holding the tensor.
        file: PathBuf,
        /// The tensor name, as written in the checkpoint.
        name: String,
        /// The shape in the file.
        found: Vec<i64>,
        /// The shape the model expects.
        expected: Vec<i64>,
    },
    /// A safetensors file could not be read or written.
    #[error("{path}: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The tokenizer failed to load, encode or decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to compile or render.
    #[error("chat template ({origin}): {message}")]
    Template {
        /// Where the template came from (file name).
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// An image could not be decoded or has unusable dimensions.
    #[error("image {what}: {message}")]
    Image {
        /// Which image (file name or index).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// Inputs to a model call were inconsistent (e.g. image tokens versus images).
    #[error("{0}")]
    Input(String),
    /// A libtorch operation failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result alias for this crate.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PolicyError {
    let path = path.into();
    move |error| PolicyError::Io { path, error }
}

/// Reads and parses a JSON file, naming the file in any error.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|error| PolicyError::Json {
        path: path.to_path_buf(),
        error,
    })
}
