//! Data-parallel GRPO over the processes a launcher started (torchrun, srun): every rank plays
//! whole rollout chunks of each step (a room's group never straddles ranks, so advantages need
//! no communication), the gradients are summed in buckets in parameter-name order before the
//! optimiser step, metrics and evaluations are gathered, and rank 0 alone writes the run
//! directory. A single process never forms a group and every call here is free.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use metaspatial_dist::{Backend, Launch, ProcessGroup, ReduceOp, nccl_available};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tch::{Device, Kind, Tensor};

use metaspatial_env::Room;
use metaspatial_replay::record::RunLayout;

use crate::config::RunConfig;
use crate::run::RunOptions;
use crate::rundir::{RunDir, TrainerState, ensure_fresh};
use crate::update::PassStats;
use crate::world_model::WorldModelStats;

/// Elements per gradient bucket: 100 MB of f32, few enough calls, bounded extra memory.
const BUCKET_ELEMENTS: i64 = 25 << 20;

/// The file in the run directory that records the world size of a multi-process run.
const WORLD_FILE: &str = "world_size";

/// This process's place among the ranks of the run.
pub struct Ranks {
    group: Option<ProcessGroup>,
    local_rank: usize,
    /// Seconds spent in collectives since the last [`Ranks::take_comm_seconds`].
    comm_seconds: Mutex<f64>,
}

static JOINED: OnceLock<Ranks> = OnceLock::new();

static SINGLE: Ranks = Ranks {
    group: None,
    local_rank: 0,
    comm_seconds: Mutex::new(0.0),
};

/// The ranks this process has joined ([`join`]), or a single process.
pub fn current() -> &'static Ranks {
    JOINED.get().unwrap_or(&SINGLE)
}

/// Joins the ranks the launcher's environment describes (once per process; later calls return
/// the same group): NCCL when the run is on CUDA and this build has it, else Gloo.
pub fn join(config: &RunConfig) -> anyhow::Result<&'static Ranks> {
    if let Some(ranks) = JOINED.get() {
        return Ok(ranks);
    }
    let ranks = match Launch::from_env()? {
        Launch::Single => Ranks {
            group: None,
            local_rank: 0,
            comm_seconds: Mutex::new(0.0),
        },
        Launch::Ranks(env) => {
            let cuda = matches!(config.model.device.device()?, Device::Cuda(_));
            let backend = if cuda && nccl_available() {
                Backend::Nccl
            } else {
                Backend::Gloo
            };
            let timeout = Duration::from_secs(config.distributed.timeout_s);
            let group = env.connect(backend, timeout).with_context(|| {
                format!(
                    "rank {} of {} joining the others at {}:{} ({:?} launch)",
                    env.rank, env.world, env.master_addr, env.master_port, env.launcher
                )
            })?;
            tracing::info!(
                "rank {} of {} ({} backend, local rank {})",
                env.rank,
                env.world,
                backend.name(),
                env.local_rank
            );
            Ranks {
                group: Some(group),
                local_rank: env.local_rank,
                comm_seconds: Mutex::new(0.0),
            }
        }
    };
    Ok(JOINED.get_or_init(|| ranks))
}

/// A 64-bit FNV-1a digest: stable across builds and machines, unlike `std`'s hasher.
fn digest(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl Ranks {
    /// This process's rank (0 for a single process).
    #[must_use]
    pub fn rank(&self) -> usize {
        self.group.as_ref().map_or(0, ProcessGroup::rank)
    }

    /// The number of ranks.
    #[must_use]
    pub fn world(&self) -> usize {
        self.group.as_ref().map_or(1, ProcessGroup::world)
    }

    /// Whether this rank writes the run directory.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// The device this rank trains on: with several ranks on CUDA, the GPU of its local rank.
    #[must_use]
    pub fn device(&self, configured: Device) -> Device {
        match configured {
            Device::Cuda(_) if self.group.is_some() => Device::Cuda(self.local_rank),
            other => other,
        }
    }

    /// The seconds spent in collectives since the last call.
    pub fn take_comm_seconds(&self) -> f64 {
        std::mem::take(&mut *self.comm_seconds.lock().expect("never poisoned"))
    }

    /// Runs `f` on the group (when there is one), counting its time as communication.
    fn timed<T>(
        &self,
        f: impl FnOnce(&ProcessGroup) -> Result<T, metaspatial_dist::Error>,
    ) -> anyhow::Result<Option<T>> {
        let Some(group) = &self.group else {
            return Ok(None);
        };
        let start = Instant::now();
        let out = f(group);
        *self.comm_seconds.lock().expect("never poisoned") += start.elapsed().as_secs_f64();
        Ok(Some(out?))
    }

    /// A tensor the backend can take: Gloo works on CPU tensors.
    fn on_backend(&self, t: &Tensor) -> Tensor {
        match self.group.as_ref().map(ProcessGroup::backend) {
            Some(Backend::Gloo) if t.device() != Device::Cpu => t.to(Device::Cpu),
            _ => t.shallow_clone(),
        }
    }

    /// Reduces `t` in place across the ranks.
    pub fn all_reduce(&self, t: &mut Tensor, op: ReduceOp) -> anyhow::Result<()> {
        let mut buffer = self.on_backend(t).contiguous();
        if self.timed(|g| g.all_reduce(&mut buffer, op))?.is_some() {
            tch::no_grad(|| t.copy_(&buffer));
        }
        Ok(())
    }

    /// Whether `flag` holds on any rank.
    pub fn any(&self, flag: bool) -> anyhow::Result<bool> {
        let mut t = Tensor::from_slice(&[i64::from(flag)]);
        self.all_reduce(&mut t, ReduceOp::Max)?;
        Ok(t.int64_value(&[0]) != 0)
    }

    /// Every rank's bytes, in rank order.
    pub fn gather_bytes(&self, bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
        let Some(group) = &self.group else {
            return Ok(vec![bytes.to_vec()]);
        };
        let lengths = self
            .timed(|g| g.all_gather(&Tensor::from_slice(&[bytes.len() as i64])))?
            .expect("a group");
        let lengths: Vec<usize> = lengths
            .iter()
            .map(|t| t.int64_value(&[0]) as usize)
            .collect();
        let longest = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(longest, 0);
        let gathered = self
            .timed(|g| g.all_gather(&Tensor::from_slice(&padded)))?
            .expect("a group");
        debug_assert_eq!(gathered.len(), group.world());
        Ok(gathered
            .iter()
            .zip(lengths)
            .map(|(t, n)| {
                let all = Vec::<u8>::try_from(t).expect("u8 bytes");
                all[..n].to_vec()
            })
            .collect())
    }

    /// Every rank's `value`, in rank order (through JSON, floats round-tripped exactly).
    pub fn gather<T: Serialize + DeserializeOwned>(&self, value: T) -> anyhow::Result<Vec<T>> {
        if self.group.is_none() {
            return Ok(vec![value]);
        }
        let bytes = serde_json::to_vec(&value).context("encoding a value to gather")?;
        self.gather_bytes(&bytes)?
            .iter()
            .enumerate()
            .map(|(rank, b)| {
                serde_json::from_slice(b).with_context(|| format!("decoding rank {rank}'s value"))
            })
            .collect()
    }

    /// Fails on every rank when `what` (given as bytes) differs between ranks, naming those
    /// that differ from rank 0.
    pub fn ensure_same(&self, what: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let digests = self.gather(digest(bytes))?;
        let differ: Vec<String> = digests
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != digests[0])
            .map(|(r, _)| r.to_string())
            .collect();
        if !differ.is_empty() {
            bail!(
                "{what} differs between ranks: rank(s) {} differ from rank 0 — every rank must \
                 run the same binary on the same config and data",
                differ.join(", ")
            );
        }
        Ok(())
    }

    /// `result` when it is `Ok` on every rank; otherwise an error on every rank (the failing
    /// ranks keep their own), so no rank goes on to wait for one that stopped.
    pub fn agree<T>(&self, what: &str, result: anyhow::Result<T>) -> anyhow::Result<T> {
        let failed = self.gather(result.is_err())?;
        let failed: Vec<String> = failed
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(r, _)| r.to_string())
            .collect();
        match result {
            Err(e) => Err(e),
            Ok(_) if !failed.is_empty() => bail!(
                "{what} failed on rank(s) {} (their own logs say why)",
                failed.join(", ")
            ),
            Ok(v) => Ok(v),
        }
    }

    /// Copies rank 0's values of `named` (sorted by name here: a `VarStore` iterates a hash map,
    /// in an order that differs between processes) into every rank's tensors.
    pub fn broadcast_from_leader(&self, mut named: Vec<(String, Tensor)>) -> anyhow::Result<()> {
        if self.group.is_none() {
            return Ok(());
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, tensor) in &mut named {
            let mut buffer = self.on_backend(tensor).contiguous();
            self.timed(|g| g.broadcast(&mut buffer, 0))
                .with_context(|| format!("broadcasting the parameter {name} from rank 0"))?;
            tch::no_grad(|| tensor.copy_(&buffer));
        }
        Ok(())
    }

    /// The batch's response tokens and sequences summed over the ranks.
    pub fn totals(&self, tokens: usize, sequences: usize) -> anyhow::Result<(usize, usize)> {
        let mut t = Tensor::from_slice(&[tokens as i64, sequences as i64]);
        self.all_reduce(&mut t, ReduceOp::Sum)?;
        Ok((t.int64_value(&[0]) as usize, t.int64_value(&[1]) as usize))
    }

    /// Sums the gradients of `params` (sorted by name) over the ranks, in buckets, and combines
    /// the ranks' pass statistics (each weighted by its share of the whole batch, so they add
    /// up). `None` on every rank when any rank's pass was not finite: all skip the step.
    pub fn sync_gradients(
        &self,
        params: &[(String, Tensor)],
        pass: Option<PassStats>,
    ) -> anyhow::Result<Option<PassStats>> {
        if self.group.is_none() {
            return Ok(pass);
        }
        let p = pass.clone().unwrap_or_default();
        let world = p.world_model.unwrap_or_default();
        let answers = world.answers as f64;
        let mut sums = Tensor::from_slice(&[
            f64::from(u8::from(pass.is_some())),
            p.loss,
            p.policy_loss,
            p.kl,
            p.entropy,
            p.clip_fraction,
            world.loss * answers,
            world.occupancy_iou * answers,
            answers,
        ]);
        self.all_reduce(&mut sums, ReduceOp::Sum)?;
        let mut largest = Tensor::from_slice(&[p.max_log_ratio]);
        self.all_reduce(&mut largest, ReduceOp::Max)?;
        let sums = Vec::<f64>::try_from(&sums).expect("f64 sums");
        if sums[0] < self.world() as f64 {
            return Ok(None);
        }
        self.sum_gradients(params)?;
        Ok(Some(PassStats {
            loss: sums[1],
            policy_loss: sums[2],
            kl: sums[3],
            entropy: sums[4],
            clip_fraction: sums[5],
            max_log_ratio: largest.double_value(&[0]),
            // Every rank runs the same config, so the head trains on all or none.
            world_model: p.world_model.map(|_| {
                let mut all = WorldModelStats::default();
                all.add_sums(sums[6], sums[7], sums[8] as usize);
                all.means()
            }),
        }))
    }

    /// Sums the gradients over the ranks. A parameter without a gradient on some ranks (no
    /// sample of theirs reached it) gets zeros there; one with none anywhere keeps none, as a
    /// single process would.
    fn sum_gradients(&self, params: &[(String, Tensor)]) -> anyhow::Result<()> {
        let mut defined = Tensor::from_slice(
            &params
                .iter()
                .map(|(_, p)| i64::from(p.grad().defined()))
                .collect::<Vec<_>>(),
        );
        self.all_reduce(&mut defined, ReduceOp::Max)?;
        let defined = Vec::<i64>::try_from(&defined).expect("flags");
        let missing: Vec<&Tensor> = params
            .iter()
            .zip(&defined)
            .filter(|((_, p), d)| **d == 1 && !p.grad().defined())
            .map(|((_, p), _)| p)
            .collect();
        if !missing.is_empty() {
            // A zero-weighted backward pass is how a tensor gets a (zero) gradient in tch.
            let zero: Tensor = missing
                .iter()
                .map(|p| p.sum(Kind::Float) * 0.0)
                .fold(Tensor::from(0.0f32), |a, b| a + b);
            zero.backward();
        }
        let grads: Vec<Tensor> = params
            .iter()
            .zip(&defined)
            .filter(|(_, d)| **d == 1)
            .map(|((_, p), _)| p.grad())
            .collect();
        let mut start = 0;
        while start < grads.len() {
            let mut end = start;
            let mut elements = 0;
            while end < grads.len()
                && (end == start || elements + grads[end].numel() as i64 <= BUCKET_ELEMENTS)
            {
                elements += grads[end].numel() as i64;
                end += 1;
            }
            let bucket = &grads[start..end];
            let flat: Vec<Tensor> = bucket
                .iter()
                .map(|g| g.to_kind(Kind::Float).flatten(0, -1))
                .collect();
            let mut flat = Tensor::cat(&flat, 0);
            self.all_reduce(&mut flat, ReduceOp::Sum)?;
            let sizes: Vec<i64> = bucket.iter().map(|g| g.numel() as i64).collect();
            tch::no_grad(|| {
                for (g, part) in bucket.iter().zip(flat.split_with_sizes(&sizes, 0)) {
                    let mut g = g.shallow_clone();
                    g.copy_(&part.view_as(&g));
                }
            });
            start = end;
        }
        Ok(())
    }

    /// The root this rank's session works in: the run directory on rank 0, a private scratch
    /// directory (deleted when dropped) on the others, so that rank 0 alone writes the run.
    pub fn session_root(&self, out: &Path) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
        if self.is_leader() {
            return Ok((out.to_path_buf(), None));
        }
        let scratch = tempfile::Builder::new()
            .prefix(&format!("metaspatial-rank{}-", self.rank()))
            .tempdir()
            .context("creating the rank's scratch directory")?;
        Ok((scratch.path().to_path_buf(), Some(scratch)))
    }

    /// Records the world size in a fresh multi-process run directory (rank 0), or checks that a
    /// resumed run has the world size it was started with.
    pub fn check_world(&self, out: &Path, resume: bool) -> anyhow::Result<()> {
        let path = out.join(WORLD_FILE);
        if !resume {
            if self.is_leader() && self.world() > 1 {
                std::fs::create_dir_all(out)
                    .with_context(|| format!("creating the run directory {}", out.display()))?;
                std::fs::write(&path, format!("{}\n", self.world()))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            return Ok(());
        }
        let started = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<usize>().with_context(|| {
                format!("{}: {:?} is not a world size", path.display(), text.trim())
            })?,
            // Single-process runs leave no record (the caller has seen the run's config.ron).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if started != self.world() {
            bail!(
                "--resume: the run was started with {started} rank(s) and this launch has {}; \
                 resume with {started} (each step then plays and averages exactly what the \
                 uninterrupted run would), or start a new run from a checkpoint's model",
                self.world()
            );
        }
        Ok(())
    }
}

/// The rooms of a step this rank plays.
pub struct RolloutShare {
    /// This rank's rooms (whole rollout chunks).
    pub rooms: Vec<Room>,
    /// Rooms per generation call, the same on every rank.
    pub rooms_per_call: usize,
    /// The index of this rank's first call among the step's.
    pub first_chunk: usize,
    /// The index of this rank's first room among the step's.
    pub first_room: usize,
}

impl Ranks {
    /// Splits a step's rooms into `chunks` generation calls (default: two, or the world size
    /// when larger) and takes this rank's contiguous run of them. The calls and their seeds do
    /// not depend on the world size, so ranks together sample what one process would.
    #[must_use]
    pub fn rollout_share(&self, rooms: &[Room], chunks: Option<usize>) -> RolloutShare {
        let chunks = chunks.unwrap_or(self.world().max(2)).max(1);
        let per_call = (rooms.len() / chunks).max(1);
        let (mine, first_chunk) = self.call_share(rooms.len(), per_call);
        RolloutShare {
            first_room: mine.start,
            rooms: rooms[mine].to_vec(),
            rooms_per_call: per_call,
            first_chunk,
        }
    }

    /// Cuts `n` items into calls of `per_call` and takes this rank's contiguous run of calls:
    /// its items and the index of its first call. Sampling seeds follow the call index, so the
    /// ranks together draw what one process drawing every call would.
    #[must_use]
    pub fn call_share(&self, n: usize, per_call: usize) -> (Range<usize>, usize) {
        calls_of(self.rank(), self.world(), n, per_call)
    }

    /// Makes a step's logged values the whole job's: times are the slowest rank's, token
    /// counts the sum, throughput over both, and the time spent communicating is added.
    pub fn reduce_step_values(&self, values: &mut BTreeMap<String, f64>) -> anyhow::Result<()> {
        if self.group.is_none() {
            return Ok(());
        }
        values.insert("time/communicate".to_owned(), self.take_comm_seconds());
        let reduce = |keys: Vec<String>, op: ReduceOp, values: &mut BTreeMap<String, f64>| {
            let mut t = Tensor::from_slice(&keys.iter().map(|k| values[k]).collect::<Vec<_>>());
            self.all_reduce(&mut t, op)?;
            for (k, v) in keys
                .iter()
                .zip(Vec::<f64>::try_from(&t).expect("f64 values"))
            {
                values.insert(k.clone(), v);
            }
            anyhow::Ok(())
        };
        let times: Vec<String> = values
            .keys()
            .filter(|k| k.starts_with("time/"))
            .cloned()
            .collect();
        let tokens: Vec<String> = values
            .keys()
            .filter(|k| k.starts_with("tokens/"))
            .cloned()
            .collect();
        reduce(times, ReduceOp::Max, values)?;
        reduce(tokens, ReduceOp::Sum, values)?;
        let all_tokens: f64 = values
            .iter()
            .filter(|(k, _)| k.starts_with("tokens/"))
            .map(|(_, v)| v)
            .sum();
        if let Some(seconds) = values.get("time/step").copied() {
            values.insert("tokens_per_s".to_owned(), all_tokens / seconds);
        }
        Ok(())
    }

    /// The checkpoint to resume from: rank 0's newest in the run directory, which the other
    /// ranks read from `out` too (a file system every rank sees) — checked to be the same.
    pub fn latest_checkpoint(
        &self,
        dir: &RunDir,
        out: &Path,
    ) -> anyhow::Result<Option<(PathBuf, TrainerState)>> {
        let found = if self.is_leader() {
            dir.latest_checkpoint()
        } else if RunLayout::new(out).checkpoints().is_dir() {
            RunDir::create(out).and_then(|d| d.latest_checkpoint())
        } else {
            Ok(None)
        };
        let found = self.agree("finding the checkpoint to resume from", found)?;
        let steps = self.gather(found.as_ref().map(|(_, s)| s.step))?;
        if let Some(r) = steps.iter().position(|s| *s != steps[0]) {
            bail!(
                "rank {r} finds the newest checkpoint at step {:?} in {} and rank 0 at step {:?}: \
                 --resume with several ranks needs the run directory on a file system every rank \
                 sees",
                steps[r],
                out.display(),
                steps[0]
            );
        }
        Ok(found)
    }
}

/// Joins the ranks and checks the run directory (fresh, or resumable with this world size) and
/// that every rank has the same config; returns the ranks and this rank's session root (with
/// the scratch directory to keep alive on ranks other than 0).
pub fn open_run(
    config: &RunConfig,
    options: &RunOptions,
) -> anyhow::Result<(&'static Ranks, PathBuf, Option<tempfile::TempDir>)> {
    let ranks = join(config)?;
    let checked = if options.resume {
        if RunLayout::new(&options.out).config().exists() {
            ranks.check_world(&options.out, true)
        } else {
            Err(anyhow::anyhow!(
                "--resume: {} holds no run (no config.ron)",
                options.out.display()
            ))
        }
    } else if ranks.is_leader() {
        ensure_fresh(&options.out).and_then(|()| ranks.check_world(&options.out, false))
    } else {
        Ok(())
    };
    ranks.agree("checking the run directory", checked)?;
    ranks.ensure_same("the run config", config.to_ron()?.as_bytes())?;
    let (root, scratch) = ranks.session_root(&options.out)?;
    Ok((ranks, root, scratch))
}

/// Rank `rank`'s contiguous part of `n` items split as evenly as whole items allow.
fn portion(rank: usize, world: usize, n: usize) -> Range<usize> {
    n * rank / world..n * (rank + 1) / world
}

/// Rank `rank`'s items of `n` cut into calls of `per_call`, and the index of its first call.
fn calls_of(rank: usize, world: usize, n: usize, per_call: usize) -> (Range<usize>, usize) {
    let per_call = per_call.max(1);
    let mine = portion(rank, world, n.div_ceil(per_call));
    (
        (mine.start * per_call).min(n)..(mine.end * per_call).min(n),
        mine.start,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_process_shares_nothing() {
        let ranks = current();
        assert_eq!((ranks.rank(), ranks.world()), (0, 1));
        assert_eq!(ranks.call_share(70, 32), (0..70, 0));
        assert_eq!(ranks.gather(7u8).unwrap(), [7]);
        assert!(ranks.any(true).unwrap());
        assert_eq!(ranks.totals(3, 2).unwrap(), (3, 2));
        assert_eq!(ranks.device(Device::Cuda(3)), Device::Cuda(3));
    }

    #[test]
    fn calls_are_shared_whole_and_in_order() {
        assert_eq!(calls_of(0, 2, 70, 32), (0..32, 0));
        assert_eq!(calls_of(1, 2, 70, 32), (32..70, 1));
        assert_eq!(calls_of(1, 3, 70, 32), (32..64, 1));
        assert_eq!(calls_of(2, 3, 70, 32), (64..70, 2));
        // More ranks than calls: a rank may get none.
        assert_eq!(calls_of(0, 3, 40, 32), (0..0, 0));
        assert_eq!(calls_of(1, 3, 40, 32), (0..32, 0));
        assert_eq!(calls_of(2, 3, 40, 32), (32..40, 1));
    }

    #[test]
    fn the_digest_is_fnv1a() {
        assert_eq!(digest(b""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
    }
}
