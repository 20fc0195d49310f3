//! What can go wrong when opening, serving or exporting a run directory.

use std::path::PathBuf;

/// An error of the replay viewer; every variant names the path or address involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run directory does not exist or is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The directory holds no `metrics.jsonl`, so it is not a run directory.
    #[error("{0} is not a run directory: it has no metrics.jsonl")]
    NotARun(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not listen on the address.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// `host:port` as asked for.
        addr: String,
        /// Why, as the socket layer said it.
        message: String,
    },
    /// The export directory exists and is not empty, so writing into it could mix two runs.
    #[error("{0} exists and is not empty; choose a new or empty directory for the export")]
    ExportNotEmpty(PathBuf),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result of the replay viewer's operations.
pub type Result<T> = std::result::Result<T, Error>;
