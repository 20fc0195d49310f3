//! Checkpoints of the policy: loading a model for training or evaluation, and writing the
//! weights (or adapters) and optimiser state a run resumes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use metaspatial_policy::geometry::{GEOMETRY_FILE, GeometryConnector};
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::store::OwnStore;
use metaspatial_policy::world_model::{WORLD_MODEL_FILE, WorldModelHead};
use metaspatial_policy::{LoadOptions, Policy, Weights};
use tch::Tensor;

use crate::config::{Finetune, RunConfig};
use crate::optim::{AdamW, ParamGroup};
use crate::rundir::{RunDir, TrainerState, read_state};
use crate::seeds;

/// The prefix of the geometry connector's parameters among the optimiser's (and the ranks').
const GEOMETRY_PREFIX: &str = "geometry.";

/// The geometry connector's parameters under the names the optimiser and the ranks use.
pub(crate) fn geometry_params(connector: &GeometryConnector) -> Vec<(String, Tensor)> {
    connector
        .variables()
        .into_iter()
        .map(|(name, t)| (format!("{GEOMETRY_PREFIX}{name}"), t))
        .collect()
}

/// The prefix of the world-model head's parameters among the optimiser's (and the ranks').
const WORLD_MODEL_PREFIX: &str = "world_model.";

/// The world-model head's parameters under the names the optimiser and the ranks use.
pub(crate) fn world_model_params(head: &WorldModelHead) -> Vec<(String, Tensor)> {
    head.variables()
        .into_iter()
        .map(|(name, t)| (format!("{WORLD_MODEL_PREFIX}{name}"), t))
        .collect()
}

/// Loads a policy for training from a model directory, with the configured geometry
/// connector and world-model head: the directory's own when it has one (its sizes must match
/// the config), else a fresh one drawn from the run's seed.
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
    let mut policy = Policy::load(
        dir,
        &LoadOptions {
            device,
            kind: config.model.dtype.kind(),
            lora,
            train_base,
            weights,
        },
    )
    .with_context(|| format!("loading the model {}", dir.display()))?;
    if let Some(world) = &config.algorithm.world_model {
        let grid = world.grid as i64;
        match policy.world_model.as_ref().map(WorldModelHead::grid) {
            Some(found) if found != grid => bail!(
                "{}: the model's world-model head predicts {found} × {found} maps, \
                 algorithm.world_model.grid asks for {grid}",
                dir.join(WORLD_MODEL_FILE).display()
            ),
            Some(_) => {}
            None => policy.attach_fresh_world_model(grid, seeds::world_model_init(config.seed))?,
        }
    }
    let Some(geometry) = &config.model.geometry_channel() else {
        return Ok(policy);
    };
    let wanted = geometry.connector();
    match policy.model.geometry().map(GeometryConnector::config) {
        Some(found) if found != wanted => bail!(
            "{}: the model's geometry connector has {} channels and hidden width {}, \
             model.geometry asks for {} and {}",
            dir.join(GEOMETRY_FILE).display(),
            found.channels,
            found.hidden,
            wanted.channels,
            wanted.hidden
        ),
        Some(_) => {}
        None => policy.attach_fresh_geometry(wanted, seeds::geometry_init(config.seed))?,
    }
    Ok(policy)
}

/// The optimiser's parameter groups: the trainable model parameters (adapters, or the whole
/// model) at the learning rate, the geometry connector's, named `geometry.*`, at
/// `model.geometry.lr_scale` times it, and the world-model head's, named `world_model.*`, at
/// the learning rate.
pub(crate) fn param_groups(policy: &Policy, config: &RunConfig) -> Vec<ParamGroup> {
    let store = policy.lora_var_store().unwrap_or(policy.var_store());
    let model = store
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    let mut groups = vec![ParamGroup {
        params: model,
        lr_scale: 1.0,
    }];
    if let (Some(geometry), Some(connector)) =
        (config.model.geometry_channel(), policy.model.geometry())
    {
        groups.push(ParamGroup {
            params: geometry_params(connector),
            lr_scale: geometry.lr_scale,
        });
    }
    if let (Some(_), Some(head)) = (&config.algorithm.world_model, &policy.world_model) {
        groups.push(ParamGroup {
            params: world_model_params(head),
            lr_scale: 1.0,
        });
    }
    groups
}

/// Writes the policy's weights into a checkpoint directory: the full model (`model/`, Hugging
/// Face layout, its geometry connector and world-model head inside) or the adapters
/// (`adapters.safetensors`, and the connector and head beside them).
fn save_weights(policy: &Policy, dir: &Path) -> anyhow::Result<()> {
    if let Some(store) = policy.lora_var_store() {
        let mut named: Vec<(String, Tensor)> = store.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let path = dir.join("adapters.safetensors");
        Tensor::write_safetensors(&named, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        if let Some(connector) = policy.model.geometry() {
            connector.save(&dir.join(GEOMETRY_FILE))?;
        }
        if let Some(head) = &policy.world_model {
            head.save(&dir.join(WORLD_MODEL_FILE))?;
        }
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

/// Loads a checkpoint's adapters into a policy built with the same `LoRA` config, and the
/// geometry connector and world-model head saved beside them: into the policy's own (whose
/// starting values stay the reference's), or attached when the policy has none.
pub(crate) fn load_adapters(policy: &mut Policy, checkpoint: &Path) -> anyhow::Result<()> {
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
        anyhow::Ok(())
    })?;
    let geometry = checkpoint.join(GEOMETRY_FILE);
    match policy.model.geometry() {
        Some(connector) => connector.load_weights(&geometry).with_context(|| {
            format!(
                "the model has a geometry connector; reading the checkpoint's {}",
                geometry.display()
            )
        })?,
        None if geometry.exists() => {
            let connector =
                GeometryConnector::load(&geometry, policy.model.config(), policy.model.device())?;
            policy.model.attach_geometry(connector)?;
        }
        None => {}
    }
    let head = checkpoint.join(WORLD_MODEL_FILE);
    match &policy.world_model {
        Some(own) => own.load_weights(&head).with_context(|| {
            format!(
                "the model has a world-model head; reading the checkpoint's {}",
                head.display()
            )
        })?,
        None if head.exists() => {
            policy.world_model = Some(WorldModelHead::load(&head, policy.model.device())?);
        }
        None => {}
    }
    Ok(())
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
    let mut policy = Policy::load(&base, &options(Some(lora.cloned().unwrap_or_default())))?;
    load_adapters(&mut policy, checkpoint)?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, RgbImage};
    use metaspatial_policy::geometry::geometry_input;
    use metaspatial_policy::tiny::RandomModel;
    use metaspatial_policy::{Message, ScoreItem, ScoreOptions, Sequence, score};
    use tch::Kind;

    use super::*;
    use crate::config::OptimiserConfig;

    fn config(model: &Path, finetune: &str, hidden: i64) -> RunConfig {
        RunConfig::parse(
            &format!(
                r#"(
                    model: (source: Checkpoint({model:?}), finetune: {finetune},
                        geometry: (channels: [Points, Depth, Valid], hidden: {hidden})),
                    data: (source: Generate((rooms: 20, min_objects: 2, max_objects: 3))),
                    rewards: [(reward: "format", weight: 1.0)],
                )"#
            ),
            "geometry.ron",
        )
        .unwrap()
    }

    /// A prompt with one 56 × 56 image whose five geometry features vary per pixel, and a
    /// three-token answer.
    fn sequence(policy: &Policy) -> Sequence {
        let rgb = RgbImage::from_fn(56, 56, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 9]));
        let image = policy
            .processor
            .preprocess(&DynamicImage::ImageRgb8(rgb))
            .unwrap();
        let map: Vec<f32> = (0..56 * 56 * 5)
            .map(|i| ((i % 97) as f32 / 50.0).sin())
            .collect();
        let geometry = geometry_input(&policy.processor, &map, 56, 56, 5).unwrap();
        let image = image.with_geometry(geometry).unwrap();
        let mut s = policy
            .prompt(&[Message::user(1, "where")], vec![image])
            .unwrap();
        s.tokens
            .extend(policy.tokenizer.encode("near the wall").unwrap());
        s
    }

    fn connector_values(policy: &Policy) -> Vec<(String, Tensor)> {
        let connector = policy.model.geometry().expect("a geometry connector");
        connector
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect()
    }

    fn same_values(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.equal(&y.1))
    }

    #[test]
    fn the_geometry_connector_trains_in_its_group_and_is_saved_and_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let start = tmp.path().join("start");
        RandomModel {
            bpe_vocab: 300,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 1,
            ..RandomModel::default()
        }
        .write_checkpoint(&start, &["near the wall, where".to_owned()], 3)
        .unwrap();
        for finetune in [
            "Lora((rank: 2, alpha: 4.0, dropout: 0.0, target_modules: [\"q_proj\", \"v_proj\"]))",
            "Full",
        ] {
            let config = config(&start, finetune, 8);
            let load =
                |dir: &Path| load_policy(dir, &config, tch::Device::Cpu, Weights::Checkpoint);
            let policy = load(&start).unwrap();
            let fresh = connector_values(&policy);
            assert!(same_values(
                &fresh,
                &connector_values(&load(&start).unwrap())
            ));
            let s = sequence(&policy);
            let base = policy.sequence_logits(&s).unwrap();

            let mut opt = AdamW::with_groups(param_groups(&policy, &config));
            let names: Vec<&str> = opt.params().iter().map(|(n, _)| n.as_str()).collect();
            assert!(
                names.contains(&"geometry.fc2.weight"),
                "{finetune}: {names:?}"
            );
            let item = ScoreItem {
                sequence: &s,
                response_start: s.tokens.len() - 3,
            };
            let scores = score(&policy.model, &[item], &ScoreOptions::log_likelihood(64)).unwrap();
            (scores.logprobs * scores.mask.to_kind(Kind::Float))
                .sum(Kind::Float)
                .neg()
                .backward();
            let optimiser = OptimiserConfig {
                weight_decay: 0.0,
                max_grad_norm: 0.0,
                ..OptimiserConfig::default()
            };
            opt.step(&optimiser, 1e-3, opt.grad_norm());
            // Adam's first step moves each parameter by lr (up to ε): ten times that for the
            // connector's group.
            let trained = connector_values(&policy);
            let fc2 = &trained.iter().find(|(n, _)| n == "fc2.weight").unwrap().1;
            let moved = fc2.abs().max().double_value(&[]);
            assert!(
                (moved - 1e-2).abs() < 1e-4,
                "{finetune}: fc2 moved by {moved}"
            );
            let logits = policy.sequence_logits(&s).unwrap();
            assert!(!logits.equal(&base));

            let checkpoint = tmp.path().join(format!("checkpoint-{}", &finetune[..4]));
            std::fs::create_dir_all(&checkpoint).unwrap();
            save_weights(&policy, &checkpoint).unwrap();
            opt.save(&checkpoint.join("optimizer.safetensors")).unwrap();
            let restored = if policy.lora().is_some() {
                assert!(checkpoint.join(GEOMETRY_FILE).exists());
                let mut restored = load(&start).unwrap();
                load_adapters(&mut restored, &checkpoint).unwrap();
                // The reference (adapters off) keeps the connector training started from.
                let lora = restored.lora().unwrap();
                lora.set_enabled(false);
                assert!(restored.sequence_logits(&s).unwrap().equal(&base));
                lora.set_enabled(true);
                restored
            } else {
                assert!(checkpoint.join("model").join(GEOMETRY_FILE).exists());
                let error = load_policy(
                    &checkpoint.join("model"),
                    &self::config(&start, finetune, 16),
                    tch::Device::Cpu,
                    Weights::Checkpoint,
                )
                .err()
                .unwrap()
                .to_string();
                assert!(
                    error.contains(GEOMETRY_FILE) && error.contains("model.geometry"),
                    "{error}"
                );
                load(&checkpoint.join("model")).unwrap()
            };
            assert!(same_values(&connector_values(&restored), &trained));
            assert!(restored.sequence_logits(&s).unwrap().equal(&logits));
            let mut again = AdamW::with_groups(param_groups(&restored, &config));
            again
                .load(&checkpoint.join("optimizer.safetensors"))
                .unwrap();
        }
    }
}
