//! GRPO post-training of vision-language models for 3D room layout, and the `metaspatial-rl`
//! command that drives it.

pub mod cli;
pub mod grpo;
pub mod import;
