//! Where this process sits in a job, read from the launcher's environment: torchrun's
//! (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`), SLURM's (`SLURM_PROCID`,
//! `SLURM_NTASKS`, `SLURM_LOCALID`), or none (one process).

use std::time::Duration;

use crate::Error;
use crate::group::{Backend, ProcessGroup};
use crate::store::Store;

/// The port torch.distributed uses when `MASTER_PORT` is not set.
pub const DEFAULT_PORT: u16 = 29500;

/// Which launcher started the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// torchrun (or any launcher setting torch.distributed's `env://` variables).
    Torchrun,
    /// SLURM's srun.
    Slurm,
}

/// The job as the launcher described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// One process, no launcher (or a launcher that started a single task).
    Single,
    /// One rank of a multi-process job.
    Ranks(RankEnv),
}

/// One rank's place in a multi-process job and where the ranks meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankEnv {
    /// Which launcher said so.
    pub launcher: Launcher,
    /// Global rank, 0 ≤ rank < world.
    pub rank: usize,
    /// Rank on this node (selects the GPU).
    pub local_rank: usize,
    /// Number of ranks.
    pub world: usize,
    /// Host of the store.
    pub master_addr: String,
    /// Port of the store.
    pub master_port: u16,
    /// Whether the launcher's agent already serves the store (torchrun), so every rank is a
    /// client; otherwise rank 0 serves it.
    pub agent_store: bool,
    /// Key prefix that keeps a restarted job's keys apart from the previous attempt's.
    pub prefix: String,
}

impl Launch {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::parse(|name| std::env::var(name).ok())
    }

    /// Reads the environment through `var` (a variable's value, or `None` when unset).
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |name: &str| -> Result<Option<usize>, Error> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        Error::Launch(format!("{name}={v:?} is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let port = || -> Result<u16, Error> {
            var("MASTER_PORT").map_or(Ok(DEFAULT_PORT), |v| {
                v.trim()
                    .parse::<u16>()
                    .map_err(|_| Error::Launch(format!("MASTER_PORT={v:?} is not a port number")))
            })
        };
        let (launcher, rank, world, local_rank) = if let (Some(rank), Some(world)) =
            (number("RANK")?, number("WORLD_SIZE")?)
        {
            let local = number("LOCAL_RANK")?.unwrap_or(rank);
            (Launcher::Torchrun, rank, world, local)
        } else if let (Some(rank), Some(world)) = (number("SLURM_PROCID")?, number("SLURM_NTASKS")?)
        {
            let local = number("SLURM_LOCALID")?.unwrap_or(0);
            (Launcher::Slurm, rank, world, local)
        } else {
            return Ok(Self::Single);
        };
        if world == 0 || rank >= world {
            return Err(Error::Launch(format!(
                "rank {rank} is outside a world of {world} ({launcher:?})"
            )));
        }
        if world == 1 {
            return Ok(Self::Single);
        }
        let master_addr = match launcher {
            Launcher::Torchrun => var("MASTER_ADDR").ok_or_else(|| {
                Error::Launch(
                    "RANK and WORLD_SIZE are set but MASTER_ADDR is not: where is the store?"
                        .to_owned(),
                )
            })?,
            Launcher::Slurm => var("MASTER_ADDR")
                .or_else(|| var("SLURM_LAUNCH_NODE_IPADDR"))
                .ok_or_else(|| {
                    Error::Launch(
                        "under SLURM set MASTER_ADDR to the node of task 0 (neither it nor \
                         SLURM_LAUNCH_NODE_IPADDR is set)"
                            .to_owned(),
                    )
                })?,
        };
        let agent_store = launcher == Launcher::Torchrun
            && var("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let restart = var("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|| "0".to_owned());
        Ok(Self::Ranks(RankEnv {
            launcher,
            rank,
            local_rank,
            world,
            master_addr: master_addr.trim().to_owned(),
            master_port: port()?,
            agent_store,
            prefix: format!("metaspatial/{}/", restart.trim()),
        }))
    }

    /// The number of ranks (1 for a single process).
    #[must_use]
    pub fn world(&self) -> usize {
        match self {
            Self::Single => 1,
            Self::Ranks(r) => r.world,
        }
    }
}

impl RankEnv {
    /// Meets the other ranks in the store (served by rank 0 unless the launcher's agent serves
    /// it) and forms the process group; fails after `timeout` when they do not all come.
    pub fn connect(&self, backend: Backend, timeout: Duration) -> Result<ProcessGroup, Error> {
        let serve = !self.agent_store && self.rank == 0;
        // The server listens on every interface; clients dial MASTER_ADDR.
        let host = if serve {
            "0.0.0.0"
        } else {
            self.master_addr.as_str()
        };
        let store = Store::tcp(
            host,
            self.master_port,
            serve,
            self.world,
            timeout,
            &self.prefix,
        )
        .map_err(|e| match e {
            Error::Store {
                operation, message, ..
            } => Error::Store {
                operation,
                address: format!("{}:{}", self.master_addr, self.master_port),
                message,
            },
            other => other,
        })?;
        ProcessGroup::new(&store, self.rank, self.world, backend, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Launch, Error> {
        Launch::parse(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn no_launcher_is_one_process() {
        assert_eq!(parse(&[]).unwrap(), Launch::Single);
        assert_eq!(parse(&[("MASTER_ADDR", "h")]).unwrap(), Launch::Single);
    }

    #[test]
    fn torchrun_workers_join_the_agents_store() {
        let launch = parse(&[
            ("RANK", "5"),
            ("LOCAL_RANK", "1"),
            ("WORLD_SIZE", "8"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap();
        assert_eq!(
            launch,
            Launch::Ranks(RankEnv {
                launcher: Launcher::Torchrun,
                rank: 5,
                local_rank: 1,
                world: 8,
                master_addr: "node0".to_owned(),
                master_port: 29400,
                agent_store: true,
                prefix: "metaspatial/2/".to_owned(),
            })
        );
        assert_eq!(launch.world(), 8);
    }

    #[test]
    fn env_variables_without_an_agent_make_rank_0_serve() {
        let Launch::Ranks(r) = parse(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "127.0.0.1"),
        ])
        .unwrap() else {
            panic!("two ranks")
        };
        assert!(!r.agent_store);
        assert_eq!((r.local_rank, r.master_port), (0, DEFAULT_PORT));
    }

    #[test]
    fn slurm_tasks_are_ranks() {
        let launch = parse(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_LAUNCH_NODE_IPADDR", "10.0.0.7"),
        ])
        .unwrap();
        let Launch::Ranks(r) = launch else {
            panic!("four ranks")
        };
        assert_eq!(r.launcher, Launcher::Slurm);
        assert_eq!((r.rank, r.local_rank, r.world), (3, 1, 4));
        assert_eq!(r.master_addr, "10.0.0.7");
        assert!(!r.agent_store);
        // MASTER_ADDR, when set, names the node of task 0 better than the launch node.
        let Launch::Ranks(r) = parse(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_LAUNCH_NODE_IPADDR", "10.0.0.7"),
            ("MASTER_ADDR", "node3"),
            ("MASTER_PORT", "12345"),
        ])
        .unwrap() else {
            panic!("two ranks")
        };
        assert_eq!((r.master_addr.as_str(), r.master_port), ("node3", 12345));
    }

    #[test]
    fn a_single_task_is_one_process() {
        let slurm = [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")];
        assert_eq!(parse(&slurm).unwrap(), Launch::Single);
    }

    #[test]
    fn malformed_values_are_named() {
        let err = parse(&[("RANK", "one"), ("WORLD_SIZE", "2")]).unwrap_err();
        assert!(err.to_string().contains("RANK=\"one\""), "{err}");
        let err = parse(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")]).unwrap_err();
        assert!(
            err.to_string().contains("rank 2 is outside a world of 2"),
            "{err}"
        );
        let err = parse(&[("RANK", "0"), ("WORLD_SIZE", "2")]).unwrap_err();
        assert!(err.to_string().contains("MASTER_ADDR"), "{err}");
        let err = parse(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "70000"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("MASTER_PORT=\"70000\""), "{err}");
        let err = parse(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")]).unwrap_err();
        assert!(err.to_string().contains("MASTER_ADDR"), "{err}");
    }
}
