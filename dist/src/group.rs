//! A process group: the ranks of a job and the collectives between them.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use tch::Tensor;

use crate::store::{Store, millis};
use crate::{Error, ffi};

/// The collective library a group runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors, TCP between processes.
    Gloo,
    /// NCCL: CUDA tensors, one GPU per rank (only in builds with [`nccl_available`]).
    Nccl,
}

impl Backend {
    /// The name torch.distributed gives it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Gloo => "gloo",
            Self::Nccl => "nccl",
        }
    }
}

/// Whether this build compiled c10d's NCCL process group in.
#[must_use]
pub fn nccl_available() -> bool {
    // SAFETY: a constant query.
    unsafe { ffi::dist_has_nccl() != 0 }
}

/// How a reduction combines the ranks' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Elementwise sum.
    Sum,
    /// Elementwise mean over the ranks (a sum divided by the world size: Gloo has no mean).
    Avg,
    /// Elementwise maximum.
    Max,
    /// Elementwise minimum.
    Min,
}

impl ReduceOp {
    /// The shim's code of the reduction it asks c10d for.
    fn code(self) -> i32 {
        match self {
            Self::Sum | Self::Avg => 0,
            Self::Max => 1,
            Self::Min => 2,
        }
    }
}

/// Longest wait for the other ranks' reports after a collective failed.
const DIAGNOSIS_WINDOW: Duration = Duration::from_secs(10);

/// Store key under which a rank reports a failed collective.
fn failure_key(rank: usize) -> String {
    format!("failed/{rank}")
}

/// Store counter of the ranks done with a failure diagnosis.
const DIAGNOSED: &str = "failed/diagnosed";

/// This process's membership of a process group.
pub struct ProcessGroup {
    raw: *mut ffi::RawGroup,
    store: Store,
    rank: usize,
    world: usize,
    backend: Backend,
    timeout: Duration,
}

// SAFETY: a c10d backend may be used from any thread: it queues work under its own lock.
// (Ranks must still issue collectives in the same order, which callers keep by issuing them
// from one thread.)
unsafe impl Send for ProcessGroup {}
// SAFETY: as above; `&self` methods only enqueue work and wait for it.
unsafe impl Sync for ProcessGroup {}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: created by `dist_group_new`, freed once.
        unsafe { ffi::dist_group_free(self.raw) };
    }
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rank", &self.rank)
            .field("world", &self.world)
            .field("backend", &self.backend)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A tensor's pointer as the shim takes it (`at::Tensor*`).
fn raw(t: &Tensor) -> *mut c_void {
    t.as_ptr().cast_mut().cast()
}

/// In-place collectives write through the tensor's storage: it must be one dense block.
fn dense(collective: &str, t: &Tensor) -> Result<(), Error> {
    if t.is_contiguous() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{collective}: the tensor (shape {:?}) is not contiguous",
            t.size()
        )))
    }
}

impl ProcessGroup {
    /// Joins the group of `world` ranks that meet in `store`, as `rank`; every collective then
    /// fails after `timeout` rather than wait for a rank that is gone.
    pub fn new(
        store: &Store,
        rank: usize,
        world: usize,
        backend: Backend,
        timeout: Duration,
    ) -> Result<Self, Error> {
        if world == 0 || rank >= world {
            return Err(Error::Invalid(format!(
                "rank {rank} is outside a world of {world}"
            )));
        }
        if backend == Backend::Nccl && !nccl_available() {
            return Err(Error::Invalid(
                "this build has no NCCL: install the nvidia-cuda-cccl and nvidia-cuda-crt wheels \
                 matching torch into the virtualenv and rebuild"
                    .to_owned(),
            ));
        }
        let mut raw = std::ptr::null_mut();
        ffi::call(|err| {
            // SAFETY: the store handle is alive; `raw` receives a new group on success.
            unsafe {
                ffi::dist_group_new(
                    store.raw(),
                    rank as i32,
                    world as i32,
                    i32::from(backend == Backend::Nccl),
                    millis(timeout),
                    &raw mut raw,
                    err,
                )
            }
        })
        .map_err(|message| Error::Collective {
            collective: "creating the process group",
            rank,
            world,
            message,
            silent: Some(Vec::new()),
        })?;
        Ok(Self {
            raw,
            store: store.clone(),
            rank,
            world,
            backend,
            timeout,
        })
    }

    /// This process's rank.
    #[must_use]
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    #[must_use]
    pub fn world(&self) -> usize {
        self.world
    }

    /// The backend the group runs on.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The collective timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The store the group met in.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Turns a failed shim call into an error naming the collective, this rank and the ranks
    /// that did not report the failure too (those gone or hung).
    fn check(&self, collective: &'static str, result: Result<(), String>) -> Result<(), Error> {
        result.map_err(|message| Error::Collective {
            collective,
            rank: self.rank,
            world: self.world,
            message,
            silent: self.diagnose(),
        })
    }

    /// After a failed collective: reports it in the store and waits (a bounded time) for the
    /// other ranks' reports. Ranks still alive fail the same collective and report; the ones
    /// that stay silent are dead or hung. `None` when the store itself is gone (its server, rank
    /// 0 or the launcher's agent, died).
    fn diagnose(&self) -> Option<Vec<usize>> {
        let deadline = Instant::now() + self.timeout.min(DIAGNOSIS_WINDOW);
        self.store.set(&failure_key(self.rank), b"").ok()?;
        let silent = loop {
            let mut silent = Vec::new();
            for r in (0..self.world).filter(|&r| r != self.rank) {
                if !self.store.check(&failure_key(r)).ok()? {
                    silent.push(r);
                }
            }
            if silent.is_empty() || Instant::now() >= deadline {
                break silent;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let done = self.store.add(DIAGNOSED, 1).ok()?;
        // Rank 0 may serve the store: it stays until every rank that reported has read it.
        let reported = (self.world - silent.len()) as i64;
        let mut done = done;
        while self.rank == 0 && done < reported && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            done = self.store.add(DIAGNOSED, 0).ok()?;
        }
        Some(silent)
    }

    /// Reduces `tensor` in place across the ranks; every rank ends with the result.
    pub fn all_reduce(&self, tensor: &mut Tensor, op: ReduceOp) -> Result<(), Error> {
        dense("all_reduce", tensor)?;
        let ptr = raw(tensor);
        self.check(
            "all_reduce",
            ffi::call(|err| {
                // SAFETY: the group and the tensor are alive for the call.
                unsafe { ffi::dist_all_reduce(self.raw, ptr, op.code(), err) }
            }),
        )?;
        if op == ReduceOp::Avg {
            let _ = tensor.g_div_scalar_(self.world as f64);
        }
        Ok(())
    }

    /// Copies rank `root`'s `tensor` into every rank's `tensor`.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<(), Error> {
        if root >= self.world {
            return Err(Error::Invalid(format!(
                "broadcast from rank {root} in a world of {}",
                self.world
            )));
        }
        dense("broadcast", tensor)?;
        let ptr = raw(tensor);
        self.check(
            "broadcast",
            ffi::call(|err| {
                // SAFETY: the group and the tensor are alive for the call.
                unsafe { ffi::dist_broadcast(self.raw, ptr, root as i32, err) }
            }),
        )
    }

    /// Every rank's `tensor` (all of one shape and kind), in rank order.
    pub fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>, Error> {
        let input = tensor.contiguous();
        let outputs: Vec<Tensor> = (0..self.world).map(|_| input.empty_like()).collect();
        let ptrs: Vec<*mut c_void> = outputs.iter().map(raw).collect();
        self.check(
            "all_gather",
            ffi::call(|err| {
                // SAFETY: the group, input and outputs are alive for the call.
                unsafe {
                    ffi::dist_all_gather(
                        self.raw,
                        raw(&input),
                        ptrs.as_ptr(),
                        self.world as i32,
                        err,
                    )
                }
            }),
        )?;
        Ok(outputs)
    }

    /// Reduces `input` (its first dimension a multiple of the world size) across the ranks
    /// and returns this rank's slice of the result along that dimension.
    pub fn reduce_scatter(&self, input: &Tensor, op: ReduceOp) -> Result<Tensor, Error> {
        let rows = input.size().first().copied().unwrap_or(0);
        if rows % self.world as i64 != 0 || input.dim() == 0 {
            return Err(Error::Invalid(format!(
                "reduce_scatter: the first dimension ({rows}) is not a multiple of the world \
                 size {}",
                self.world
            )));
        }
        let parts: Vec<Tensor> = input
            .chunk(self.world as i64, 0)
            .iter()
            .map(Tensor::contiguous)
            .collect();
        let mut output = parts[self.rank].empty_like();
        let ptrs: Vec<*mut c_void> = parts.iter().map(raw).collect();
        self.check(
            "reduce_scatter",
            ffi::call(|err| {
                // SAFETY: the group, inputs and output are alive for the call.
                unsafe {
                    ffi::dist_reduce_scatter(
                        self.raw,
                        raw(&output),
                        ptrs.as_ptr(),
                        self.world as i32,
                        op.code(),
                        err,
                    )
                }
            }),
        )?;
        if op == ReduceOp::Avg {
            let _ = output.g_div_scalar_(self.world as f64);
        }
        Ok(output)
    }

    /// Waits until every rank has reached the barrier.
    pub fn barrier(&self) -> Result<(), Error> {
        self.check(
            "barrier",
            ffi::call(|err| {
                // SAFETY: the group is alive for the call.
                unsafe { ffi::dist_barrier(self.raw, err) }
            }),
        )
    }
}
