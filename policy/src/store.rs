//! The small f32 parameter stores of auxiliary modules (the geometry connector, the world-model
//! head): seeded initialisation that gives the same weights on any device, and their own
//! safetensors file beside the model or the adapters ([`OwnStore`]).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use crate::error::{PolicyError, Result};
use crate::workload::split_mix;

/// A module whose parameters live in their own f32 store, saved as one safetensors file.
pub trait OwnStore {
    /// The module's parameters.
    fn var_store(&self) -> &nn::VarStore;

    /// Overwrites the parameters with those of a file written by [`OwnStore::save`] (same
    /// sizes).
    fn load_weights(&self, path: &Path) -> Result<()> {
        copy_from(self.var_store(), &read_tensors(path)?, path)
    }

    /// Writes the parameters (f32, on the CPU) to `path`.
    fn save(&self, path: &Path) -> Result<()> {
        save(self.var_store(), path)
    }

    /// The parameters by name, sorted.
    fn variables(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.var_store().variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }
}

/// The shape of tensor `name` of a file's `tensors`, or an error naming the file and what a
/// `module` holds.
pub(crate) fn shape_of(
    tensors: &BTreeMap<String, Tensor>,
    name: &str,
    path: &Path,
    module: &str,
) -> Result<Vec<i64>> {
    tensors
        .get(name)
        .map(Tensor::size)
        .ok_or_else(|| PolicyError::Safetensors {
            path: path.to_path_buf(),
            message: format!("no tensor `{name}` ({module})"),
        })
}

/// Fills `weight` uniformly in ±1/√fan-in from `seed` (drawn on the CPU, then copied, so the
/// same seed gives the same weights on any device).
pub(crate) fn fill_uniform(weight: &Tensor, seed: u64) {
    let count = weight.numel();
    let bound = 1.0 / (weight.size()[1] as f64).sqrt();
    let mut state = seed;
    let values: Vec<f32> = (0..count)
        .map(|_| {
            // 53 random bits → [0, 1) → [-bound, bound).
            let unit = (split_mix(&mut state) >> 11) as f64 / (1_u64 << 53) as f64;
            ((2.0 * unit - 1.0) * bound) as f32
        })
        .collect();
    tch::no_grad(|| {
        weight
            .shallow_clone()
            .copy_(&Tensor::from_slice(&values).view(weight.size().as_slice()));
    });
}

/// The tensors of a safetensors file, by name.
pub(crate) fn read_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| PolicyError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .into_iter()
        .collect())
}

/// Overwrites every parameter of `vs` with the tensor of the same name and shape in `tensors`
/// (read from `path`, named in errors).
pub(crate) fn copy_from(
    vs: &nn::VarStore,
    tensors: &BTreeMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
    for (name, variable) in vs.variables() {
        let saved = tensors.get(&name).ok_or_else(|| PolicyError::Safetensors {
            path: path.to_path_buf(),
            message: format!("no tensor `{name}`"),
        })?;
        if saved.size() != variable.size() {
            return Err(PolicyError::ShapeMismatch {
                file: path.to_path_buf(),
                name,
                found: saved.size(),
                expected: variable.size(),
            });
        }
        tch::no_grad(|| {
            variable
                .shallow_clone()
                .f_copy_(&saved.to_kind(Kind::Float))
        })?;
    }
    Ok(())
}

fn save(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path).map_err(|e| PolicyError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
