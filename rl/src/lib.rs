//! GRPO post-training of vision-language models for 3D room layout, and the `metaspatial-rl`
//! command that drives it.

pub mod bench;
pub mod bench_policy;
pub mod cli;
pub mod config;
pub mod credit;
pub mod distributed;
pub mod eval;
#[cfg(test)]
mod fixtures;
pub mod grpo;
pub mod import;
pub mod optim;
pub mod rollout;
pub mod run;
pub mod rundir;
pub mod sft;
pub mod update;
