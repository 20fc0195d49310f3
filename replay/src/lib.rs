//! The run directory's record formats (written by the trainer, read by the viewer) and the
//! rollout replay viewer: a local web app over a run directory, live or finished, or the same
//! app exported as a static site.
//!
//! ```no_run
//! let server = metaspatial_replay::Server::start("runs/demo".as_ref(), "127.0.0.1", 8080)?;
//! println!("open {}", server.url());
//! server.wait();
//! # Ok::<(), metaspatial_replay::Error>(())
//! ```

mod assets;
mod error;
mod export;
mod files;
mod http;
mod index;
pub mod record;
mod server;
mod tail;

pub use error::{Error, Result};
pub use export::{ExportSummary, export};
pub use server::{Server, serve};
