//! `PyTorch`'s distributed engine, c10d, for tch tensors: a `TCPStore`, Gloo (CPU) and NCCL (CUDA)
//! process groups with all-reduce, broadcast, all-gather, reduce-scatter and barrier, every one
//! bounded by a timeout and failing with an error that names the collective and the ranks — and
//! the launcher's environment (torchrun, SLURM) that says which rank this process is.
//!
//! tch does not wrap c10d; a small C++ shim (`src/shim.cpp`) compiled against the torch headers
//! does, catching every C++ exception at the boundary.

mod ffi;
mod group;
mod launch;
mod store;

pub use group::{Backend, ProcessGroup, ReduceOp, nccl_available};
pub use launch::{DEFAULT_PORT, Launch, Launcher, RankEnv};
pub use store::Store;

/// What can go wrong between ranks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A collective failed or timed out.
    #[error("{collective} failed on rank {rank} of {world}: {message}{}", silent_note(.silent.as_deref()))]
    Collective {
        /// The collective (or "creating the process group").
        collective: &'static str,
        /// This process's rank.
        rank: usize,
        /// The number of ranks.
        world: usize,
        /// c10d's message.
        message: String,
        /// The ranks that did not report the failure within the diagnosis window (dead or
        /// hung); `None` when the store was unreachable too.
        silent: Option<Vec<usize>>,
    },
    /// The store could not be served, reached or used.
    #[error("{operation} the store at {address}: {message}")]
    Store {
        /// What was being done.
        operation: String,
        /// `host:port`.
        address: String,
        /// c10d's message.
        message: String,
    },
    /// The launcher's environment does not describe a job.
    #[error("launcher environment: {0}")]
    Launch(String),
    /// A call the collectives cannot take (a rank outside the world, a shape that does not
    /// split).
    #[error("{0}")]
    Invalid(String),
}

/// What the diagnosis after a failed collective found, as the end of its message.
fn silent_note(silent: Option<&[usize]>) -> String {
    match silent {
        None => "; the store is unreachable too, so rank 0 (which serves it) or the launcher \
                 is gone"
            .to_owned(),
        Some([]) => String::new(),
        Some(s) => {
            let list: Vec<String> = s.iter().map(ToString::to_string).collect();
            format!(
                "; rank{} {} did not report the failure: dead or hung",
                if s.len() == 1 { "" } else { "s" },
                list.join(", ")
            )
        }
    }
}
