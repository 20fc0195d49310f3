//! The policy: Qwen2.5-VL on tch. Loads Hugging Face checkpoints unchanged, computes what
//! transformers computes, generates in groups with a KV cache, scores responses (log-probs and
//! entropy), trains `LoRA` adapters and exports back to the Hugging Face layout.
//!
//! This crate knows nothing about rooms: it takes chat messages, images and token ids.

pub mod checkpoint;
pub mod device;
pub mod error;
pub mod generation;
pub mod geometry;
pub mod image;
mod layers;
pub mod lora;
mod policy;
pub mod qwen2_5_vl;
pub mod scoring;
pub mod store;
pub mod tiny;
pub mod tokenizer;
pub mod workload;
pub mod world_model;

pub use error::{PolicyError, Result};
pub use generation::{Completion, FinishReason, SamplingParams, generate};
pub use policy::{GenerationConfig, LoadOptions, Policy, Weights};
pub use qwen2_5_vl::{ImageInput, KvCache, Sequence};
pub use scoring::{EntropyMode, ScoreItem, ScoreOptions, Scores, score, score_no_grad};
pub use tokenizer::{ChatTokenizer, Content, Message};
