//! Checkpoints of the policy: loading a model for training or evaluation, and writing the
//! weights (or adapters) and optimiser state a run resumes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::{LoadOptions, Policy, Weights};
use tch::Tensor;

use crate::config::{Finetune, RunConfig};
use crate::optim::AdamW;
use crate::rundir::{RunDir, TrainerState, read_state};

/// Loads a policy for training from a model directory.
pub(crate) fn load_policy(
    dir: &Path,
    config: &RunConfig,
    device: tch::Device,
    weights: Weights,
) -> anyhow::Result<Policy> {
    let (lora, train_base) = match &config.model.finetune {
        Finetune::Full => (None, true),
        Finetune::Lora(l) => (Some(l.clone()), false),
    };
    Policy::load(
        dir,
        &LoadOptions {
            device,
            kind: config.model.dtype.kind(),
            lora,
            train_base,
            weights,
        },
    )
    .with_context(|| format!("loading the model {}", dir.display()))
}

/// The trainable parameters by name.
pub(crate) fn trainable(policy: &Policy) -> Vec<(String, Tensor)> {
    let store = policy.lora_var_store().unwrap_or(policy.var_store());
    store
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect()
}

/// Writes the policy's weights into a checkpoint directory: the full model (`model/`, Hugging
/// Face layout) or the adapters (`adapters.safetensors`).
fn save_weights(policy: &Policy, dir: &Path) -> anyhow::Result<()> {
    if let Some(store) = policy.lora_var_store() {
        let mut named: Vec<(String, Tensor)> = store.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let path = dir.join("adapters.safetensors");
        Tensor::write_safetensors(&named, &path)
            .with_context(|| format!("writing {}", path.display()))?;
    } else {
        policy
            .export(
                &dir.join("model"),
                policy.model.kind(),
                metaspatial_policy::checkpoint::DEFAULT_SHARD_BYTES,
            )
            .context("writing the model")?;
    }
    Ok(())
}

/// Writes a checkpoint (weights or adapters, optimiser, `state`) into `dir`, keeping the newest
/// `keep`.
pub(crate) fn save_checkpoint(
    dir: &RunDir,
    state: &TrainerState,
    keep: usize,
    policy: &Policy,
    opt: &AdamW,
) -> anyhow::Result<PathBuf> {
    dir.write_checkpoint(state, keep, |d| {
        save_weights(policy, d)?;
        opt.save(&d.join("optimizer.safetensors"))
    })
}

/// Loads a checkpoint's adapters into a policy built with the same `LoRA` config.
pub(crate) fn load_adapters(policy: &Policy, checkpoint: &Path) -> anyhow::Result<()> {
    let path = checkpoint.join("adapters.safetensors");
    let store = policy
        .lora_var_store()
        .context("the checkpoint holds adapters but the config trains the full model")?;
    let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect();
    tch::no_grad(|| {
        for (name, mut var) in store.variables() {
            let value = saved
                .get(&name)
                .with_context(|| format!("{}: no adapter `{name}`", path.display()))?;
            var.copy_(&value.to_kind(var.kind()));
        }
        Ok(())
    })
}

/// Opens a run checkpoint (`model/` or adapters on `base_model`) or a model directory for
/// evaluation.
pub fn load_for_eval(
    checkpoint: &Path,
    device: tch::Device,
    lora: Option<&LoraConfig>,
) -> anyhow::Result<Policy> {
    let options = |lora: Option<LoraConfig>| LoadOptions {
        device,
        lora,
        ..LoadOptions::default()
    };
    if checkpoint.join("config.json").exists() {
        return Ok(Policy::load(checkpoint, &options(None))?);
    }
    if checkpoint.join("model").join("config.json").exists() {
        return Ok(Policy::load(&checkpoint.join("model"), &options(None))?);
    }
    let state = read_state(checkpoint)?;
    let base = state.base_model.with_context(|| {
        format!(
            "{}: neither a model directory nor a run checkpoint",
            checkpoint.display()
        )
    })?;
    let policy = Policy::load(&base, &options(Some(lora.cloned().unwrap_or_default())))?;
    load_adapters(&policy, checkpoint)?;
    Ok(policy)
}
