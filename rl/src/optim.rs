//! `AdamW` (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv:1711.05101)
//! over named parameters, with global-norm gradient clipping.
//!
//! Written here rather than taken from libtorch so that its state (moments and step count)
//! is plain named tensors: checkpoints save and restore it exactly, which resuming a run with
//! identical metrics needs.

use std::path::Path;

use anyhow::Context;
use tch::{Kind, Tensor};

use crate::config::OptimiserConfig;

/// `AdamW` state for a fixed, ordered set of parameters.
pub struct AdamW {
    params: Vec<(String, Tensor)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    steps: i64,
}

impl AdamW {
    /// Fresh state for `params` (sorted by name, so the order never depends on a hash map).
    #[must_use]
    pub fn new(mut params: Vec<(String, Tensor)>) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |p: &Tensor| Tensor::zeros(p.size(), (Kind::Float, p.device()));
        let first = params.iter().map(|(_, p)| zeros(p)).collect();
        let second = params.iter().map(|(_, p)| zeros(p)).collect();
        Self {
            params,
            first,
            second,
            steps: 0,
        }
    }

    /// Number of trainable scalars.
    #[must_use]
    pub fn numel(&self) -> i64 {
        self.params.iter().map(|(_, p)| p.numel() as i64).sum()
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The gradients' global L2 norm (before clipping); `NaN` or `inf` when a gradient is.
    #[must_use]
    pub fn grad_norm(&self) -> f64 {
        tch::no_grad(|| {
            let squares: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad())
                .filter(Tensor::defined)
                .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
                .collect();
            if squares.is_empty() {
                return 0.0;
            }
            Tensor::stack(&squares, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[])
        })
    }

    /// One update at learning rate `lr`, the gradient scaled so its global norm is at most
    /// `config.max_grad_norm` (given the norm already measured).
    pub fn step(&mut self, config: &OptimiserConfig, lr: f64, grad_norm: f64) {
        self.steps += 1;
        let (b1, b2) = config.betas;
        let clip = if config.max_grad_norm > 0.0 && grad_norm > config.max_grad_norm {
            config.max_grad_norm / (grad_norm + 1e-6)
        } else {
            1.0
        };
        let correction1 = 1.0 - b1.powi(self.steps as i32);
        let correction2 = 1.0 - b2.powi(self.steps as i32);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let g = grad.to_kind(Kind::Float) * clip;
                let m = &mut self.first[i];
                let v = &mut self.second[i];
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let update = (&*m / correction1) / ((&*v / correction2).sqrt() + config.eps);
                let mut value = p.to_kind(Kind::Float);
                if config.weight_decay > 0.0 {
                    value *= 1.0 - lr * config.weight_decay;
                }
                value -= update * lr;
                p.copy_(&value.to_kind(p.kind()));
            }
        });
    }

    /// Writes the moments and step count.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.params.len() + 1);
        for (i, (name, _)) in self.params.iter().enumerate() {
            named.push((format!("exp_avg.{name}"), self.first[i].shallow_clone()));
            named.push((format!("exp_avg_sq.{name}"), self.second[i].shallow_clone()));
        }
        named.push(("step".to_owned(), Tensor::from_slice(&[self.steps])));
        Tensor::write_safetensors(&named, path)
            .with_context(|| format!("writing optimiser state {}", path.display()))
    }

    /// Restores what [`AdamW::save`] wrote; every parameter must be present with its shape.
    pub fn load(&mut self, path: &Path) -> anyhow::Result<()> {
        let loaded: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .with_context(|| format!("reading optimiser state {}", path.display()))?
            .into_iter()
            .collect();
        let get = |key: &str, like: &Tensor| -> anyhow::Result<Tensor> {
            let t = loaded
                .get(key)
                .with_context(|| format!("{}: no tensor `{key}`", path.display()))?;
            anyhow::ensure!(
                t.size() == like.size(),
                "{}: `{key}` has shape {:?}, the model needs {:?}",
                path.display(),
                t.size(),
                like.size()
            );
            Ok(t.to_device(like.device()).to_kind(Kind::Float))
        };
        for (i, (name, p)) in self.params.iter().enumerate() {
            self.first[i] = get(&format!("exp_avg.{name}"), p)?;
            self.second[i] = get(&format!("exp_avg_sq.{name}"), p)?;
        }
        self.steps = loaded
            .get("step")
            .with_context(|| format!("{}: no tensor `step`", path.display()))?
            .int64_value(&[0]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_matches_the_adamw_formula() {
        let p = Tensor::from_slice(&[1.0_f32, -2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".to_owned(), p.shallow_clone())]);
        let loss = (&p * Tensor::from_slice(&[3.0_f32, 4.0])).sum(Kind::Float);
        loss.backward();
        let config = OptimiserConfig {
            weight_decay: 0.1,
            max_grad_norm: 0.0,
            ..OptimiserConfig::default()
        };
        let norm = opt.grad_norm();
        assert!((norm - 5.0).abs() < 1e-6);
        opt.step(&config, 0.01, norm);
        // First step: m̂ = g, v̂ = g², so the update is lr · sign(g) (up to ε), after decay.
        let got = Vec::<f32>::try_from(&p).unwrap();
        let expect = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) - 0.01];
        for (g, e) in got.iter().zip(expect) {
            assert!((f64::from(*g) - e).abs() < 1e-6, "{got:?} vs {expect:?}");
        }
    }

    #[test]
    fn state_round_trips_through_a_file() {
        let p = Tensor::from_slice(&[0.5_f32, 0.25]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".to_owned(), p.shallow_clone())]);
        (&p * &p).sum(Kind::Float).backward();
        opt.step(&OptimiserConfig::default(), 0.1, opt.grad_norm());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut again = AdamW::new(vec![("w".to_owned(), p.shallow_clone())]);
        again.load(&path).unwrap();
        assert_eq!(again.steps, 1);
        assert!(again.first[0].equal(&opt.first[0]));
        assert!(again.second[0].equal(&opt.second[0]));
    }
}
