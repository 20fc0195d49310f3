//! GRPO post-training of vision-language models for 3D room layout, and the `metaspatial-rl`
//! command that drives it.

pub mod bench;
pub mod bench_policy;
pub mod camera_text;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod credit;
pub mod distributed;
pub mod eval;
#[cfg(test)]
mod fixtures;
pub mod grpo;
pub mod import;
mod ledger;
pub mod metrics;
pub mod optim;
mod progress;
pub mod records;
pub mod render_thread;
pub mod rollout;
pub mod run;
pub mod rundir;
pub mod seeds;
pub mod sft;
pub mod update;
pub mod world_model;
