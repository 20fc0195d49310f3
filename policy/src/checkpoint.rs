//! Hugging Face checkpoint directories: finding the files, loading (sharded) safetensors into a
//! `VarStore` by name, and writing weights back in the Hub layout.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::{Kind, Tensor, nn};

use crate::error::{PolicyError, Result, io_error, read_json};

/// Bytes per safetensors shard when exporting (transformers' default is 5 GB).
pub const DEFAULT_SHARD_BYTES: usize = 4 << 30;

/// Maps a checkpoint tensor name to our parameter name: transformers 5 writes
/// `model.language_model.*` and `model.visual.*`, the Hub files `model.*` and `visual.*`.
#[must_use]
pub fn canonical_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("model.language_model.") {
        format!("model.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.visual.") {
        format!("visual.{rest}")
    } else {
        name.to_owned()
    }
}

/// The safetensors files of a checkpoint: the shards named by `model.safetensors.index.json`,
/// or the single `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let value: Value = read_json(&index)?;
        let map = value
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| PolicyError::Config {
                path: index.clone(),
                message: "no `weight_map` object".to_owned(),
            })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| PolicyError::Config {
                path: index.clone(),
                message: format!("`weight_map.{tensor}` is not a file name"),
            })?;
            let path = dir.join(file);
            if !files.contains(&path) {
                files.push(path);
            }
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(PolicyError::Config {
        path: dir.to_path_buf(),
        message: "no model.safetensors.index.json and no model.safetensors".to_owned(),
    })
}

/// Copies every checkpoint tensor into the `VarStore` variable of the same (canonical) name,
/// converting dtype. Errors on a missing tensor or a shape mismatch, naming both shapes. A
/// checkpoint `lm_head.weight` is skipped when the head is tied; other unknown tensors are
/// reported in the log and ignored, as transformers does.
pub fn load_weights(vs: &nn::VarStore, dir: &Path) -> Result<()> {
    let variables = vs.variables();
    let mut loaded: HashSet<String> = HashSet::new();
    for file in weight_files(dir)? {
        let tensors = Tensor::read_safetensors(&file).map_err(|e| PolicyError::Safetensors {
            path: file.clone(),
            message: e.to_string(),
        })?;
        for (name, tensor) in tensors {
            let key = canonical_name(&name);
            let Some(variable) = variables.get(&key) else {
                if key != "lm_head.weight" {
                    tracing::warn!(tensor = %name, file = %file.display(), "checkpoint tensor not used by the model");
                }
                continue;
            };
            if tensor.size() != variable.size() {
                return Err(PolicyError::ShapeMismatch {
                    file: file.clone(),
                    name,
                    found: tensor.size(),
                    expected: variable.size(),
                });
            }
            tch::no_grad(|| variable.shallow_clone().f_copy_(&tensor))?;
            loaded.insert(key);
        }
    }
    let mut missing: Vec<(&String, &Tensor)> = variables
        .iter()
        .filter(|(n, _)| !loaded.contains(*n))
        .collect();
    missing.sort_by_key(|(n, _)| n.as_str());
    if let Some((name, variable)) = missing.first() {
        return Err(PolicyError::MissingTensor {
            dir: dir.to_path_buf(),
            name: (*name).clone(),
            expected: variable.size(),
        });
    }
    Ok(())
}

/// Writes named tensors as safetensors in `dir`: one `model.safetensors` when they fit in
/// `shard_bytes`, otherwise `model-0000i-of-0000n.safetensors` shards and the index file.
/// Tensors are written contiguous, on the CPU, in `kind`.
pub fn save_weights(
    dir: &Path,
    tensors: &BTreeMap<String, Tensor>,
    kind: Kind,
    shard_bytes: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut shards: Vec<Vec<(String, Tensor)>> = vec![Vec::new()];
    let mut shard_size = 0;
    let mut total = 0;
    for (name, tensor) in tensors {
        let tensor = tensor
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(kind)
            .contiguous();
        let bytes = tensor.numel() * kind.elt_size_in_bytes();
        if shard_size > 0 && shard_size + bytes > shard_bytes {
            shards.push(Vec::new());
            shard_size = 0;
        }
        shard_size += bytes;
        total += bytes;
        shards
            .last_mut()
            .expect("at least one shard")
            .push((name.clone(), tensor));
    }
    let write = |path: &Path, shard: &[(String, Tensor)]| {
        let tmp = path.with_extension("safetensors.tmp");
        Tensor::write_safetensors(shard, &tmp).map_err(|e| PolicyError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        std::fs::rename(&tmp, path).map_err(io_error(path))
    };
    if shards.len() == 1 {
        return write(&dir.join("model.safetensors"), &shards[0]);
    }
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        write(&dir.join(&file), shard)?;
        for (name, _) in shard {
            weight_map.insert(name.clone(), Value::String(file.clone()));
        }
    }
    let index =
        serde_json::json!({ "metadata": { "total_size": total }, "weight_map": weight_map });
    write_json(&dir.join("model.safetensors.index.json"), &index)
}

/// Writes pretty JSON atomically (temporary file + rename).
pub(crate) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}
