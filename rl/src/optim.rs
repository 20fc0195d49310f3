//! `AdamW` (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv:1711.05101)
//! over named parameters, with global-norm gradient clipping.
//!
//! Written here rather than taken from libtorch so that its state (moments and step count)
//! is plain named tensors: checkpoints save and restore it exactly, which resuming a run with
//! identical metrics needs.
//!
//! Mixed precision: the moments are f32, and a parameter stored in a narrower dtype (bf16
//! full fine-tuning) is stepped through an f32 master copy that the optimiser owns and saves.
//! Writing each f32 update straight into bf16 would round it away: bf16 keeps 8 significant
//! bits, so at |w| ≈ 0.02 the nearest neighbours are 1.2e-4 apart and a 1e-5 step vanishes.

use std::path::Path;

use anyhow::Context;
use tch::{Kind, Tensor};

use crate::config::OptimiserConfig;

/// Parameters stepped at the schedule's learning rate times `lr_scale`.
pub struct ParamGroup {
    /// The parameters, by name (unique across groups).
    pub params: Vec<(String, Tensor)>,
    /// The factor on the learning rate (weight decay scales with it, as in torch's groups).
    pub lr_scale: f64,
}

/// `AdamW` state for a fixed, ordered set of parameters.
pub struct AdamW {
    params: Vec<(String, Tensor)>,
    /// Each parameter's learning-rate factor (its group's).
    lr_scales: Vec<f64>,
    /// The f32 values stepped for each parameter whose own dtype is narrower; `None` for f32
    /// parameters, which are stepped in place.
    masters: Vec<Option<Tensor>>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    steps: i64,
}

impl AdamW {
    /// Fresh state for `params` (sorted by name, so the order never depends on a hash map).
    #[must_use]
    pub fn new(params: Vec<(String, Tensor)>) -> Self {
        Self::with_groups(vec![ParamGroup {
            params,
            lr_scale: 1.0,
        }])
    }

    /// Fresh state for the parameters of several groups, each at its own learning-rate factor.
    #[must_use]
    pub fn with_groups(groups: Vec<ParamGroup>) -> Self {
        let mut scaled: Vec<(String, Tensor, f64)> = groups
            .into_iter()
            .flat_map(|g| g.params.into_iter().map(move |(n, t)| (n, t, g.lr_scale)))
            .collect();
        scaled.sort_by(|a, b| a.0.cmp(&b.0));
        let lr_scales = scaled.iter().map(|p| p.2).collect();
        let params: Vec<(String, Tensor)> = scaled.into_iter().map(|(n, t, _)| (n, t)).collect();
        let zeros = |p: &Tensor| Tensor::zeros(p.size(), (Kind::Float, p.device()));
        let first = params.iter().map(|(_, p)| zeros(p)).collect();
        let second = params.iter().map(|(_, p)| zeros(p)).collect();
        let masters = params
            .iter()
            .map(|(_, p)| (p.kind() != Kind::Float).then(|| master_of(p)))
            .collect();
        Self {
            params,
            lr_scales,
            masters,
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

    /// Bytes held by the f32 master copies of narrower parameters (zero when every trainable
    /// parameter is f32 already, as `LoRA` adapters are).
    #[must_use]
    pub fn master_bytes(&self) -> i64 {
        self.masters
            .iter()
            .flatten()
            .map(|m| m.numel() as i64 * 4)
            .sum()
    }

    /// The parameters stepped, sorted by name.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
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
                let lr = lr * self.lr_scales[i];
                let value = self.masters[i].as_mut().unwrap_or(&mut *p);
                if config.weight_decay > 0.0 {
                    *value *= 1.0 - lr * config.weight_decay;
                }
                *value -= update * lr;
                if let Some(master) = &self.masters[i] {
                    p.copy_(master);
                }
            }
        });
    }

    /// Writes the moments, the master copies and the step count. The masters belong here
    /// rather than in the exported model, which keeps the compute dtype for users: a resume
    /// must continue from the f32 values, not from their bf16 rounding.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(3 * self.params.len() + 1);
        for (i, (name, _)) in self.params.iter().enumerate() {
            named.push((format!("exp_avg.{name}"), self.first[i].shallow_clone()));
            named.push((format!("exp_avg_sq.{name}"), self.second[i].shallow_clone()));
            if let Some(master) = &self.masters[i] {
                named.push((format!("master.{name}"), master.shallow_clone()));
            }
        }
        named.push(("step".to_owned(), Tensor::from_slice(&[self.steps])));
        Tensor::write_safetensors(&named, path)
            .with_context(|| format!("writing optimiser state {}", path.display()))
    }

    /// Restores what [`AdamW::save`] wrote; every parameter must be present with its shape, and
    /// a master copy for each narrower parameter (which then takes the master's rounding).
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
        for (i, (name, p)) in self.params.iter_mut().enumerate() {
            self.first[i] = get(&format!("exp_avg.{name}"), p)?;
            self.second[i] = get(&format!("exp_avg_sq.{name}"), p)?;
            if self.masters[i].is_some() {
                let master = get(&format!("master.{name}"), p).with_context(|| {
                    format!(
                        "`{name}` is {:?} and trains through an f32 master copy, which the \
                         checkpoint lacks",
                        p.kind()
                    )
                })?;
                tch::no_grad(|| p.copy_(&master));
                self.masters[i] = Some(master);
            }
        }
        self.steps = loaded
            .get("step")
            .with_context(|| format!("{}: no tensor `step`", path.display()))?
            .int64_value(&[0]);
        Ok(())
    }
}

/// A detached f32 copy of `p` (a master must not share storage or autograd history with it).
fn master_of(p: &Tensor) -> Tensor {
    tch::no_grad(|| p.to_kind(Kind::Float).detach())
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
    fn a_group_steps_at_its_own_learning_rate() {
        let a = Tensor::from_slice(&[1.0_f32]).set_requires_grad(true);
        let b = Tensor::from_slice(&[1.0_f32]).set_requires_grad(true);
        let mut opt = AdamW::with_groups(vec![
            ParamGroup {
                params: vec![("b".to_owned(), b.shallow_clone())],
                lr_scale: 10.0,
            },
            ParamGroup {
                params: vec![("a".to_owned(), a.shallow_clone())],
                lr_scale: 1.0,
            },
        ]);
        assert_eq!(opt.params()[0].0, "a", "sorted by name across groups");
        (&a + &b).sum(Kind::Float).backward();
        let config = OptimiserConfig {
            weight_decay: 0.1,
            max_grad_norm: 0.0,
            ..OptimiserConfig::default()
        };
        opt.step(&config, 0.001, opt.grad_norm());
        // First step moves by lr · sign(g) (up to ε) after decay lr · wd.
        let moved = |p: &Tensor, lr: f64| (1.0 - p.double_value(&[0]) - lr * 0.1 - lr).abs();
        assert!(moved(&a, 0.001) < 1e-6, "{a}");
        assert!(moved(&b, 0.01) < 1e-6, "{b}");
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

    /// `steps` `AdamW` updates of `p` on `loss(p)` (weight decay 0.01, no clipping).
    fn train(opt: &mut AdamW, p: &Tensor, steps: usize, lr: f64, loss: impl Fn(&Tensor) -> Tensor) {
        let config = OptimiserConfig {
            weight_decay: 0.01,
            max_grad_norm: 0.0,
            ..OptimiserConfig::default()
        };
        for _ in 0..steps {
            opt.zero_grad();
            loss(p).backward();
            opt.step(&config, lr, opt.grad_norm());
        }
    }

    #[test]
    fn a_bf16_weight_moves_under_a_small_learning_rate() {
        // bf16 neighbours of 0.022 are 2^-13 ≈ 1.2e-4 apart: one 1e-5 step written straight into
        // the weight rounds back to 0.022 every time, so the weight never moves.
        let p = Tensor::from_slice(&[0.022_f32])
            .to_kind(Kind::BFloat16)
            .set_requires_grad(true);
        let start = p.double_value(&[0]);
        let mut opt = AdamW::new(vec![("w".to_owned(), p.shallow_clone())]);
        assert_eq!(opt.master_bytes(), 4);
        // Gradient 1: every Adam step is lr (up to ε), and weight decay adds only 2e-9.
        train(&mut opt, &p, 20, 1e-5, |p| p.sum(Kind::Float));
        let master = opt.masters[0].as_ref().unwrap().double_value(&[0]);
        assert!(
            (start - master - 20.0 * 1e-5).abs() < 1e-6,
            "the master moved from {start} to {master}"
        );
        let moved = p.double_value(&[0]);
        assert!(moved < start, "the bf16 weight stayed at {moved}");
        let rounded = opt.masters[0].as_ref().unwrap().to_kind(Kind::BFloat16);
        assert!(p.equal(&rounded), "the weight is the master's rounding");
    }

    #[test]
    fn a_bf16_resume_is_bitwise_exact() {
        let loss = |p: &Tensor| {
            let target = Tensor::from_slice(&[0.5_f32, -0.25, 1.0, 0.0]);
            (p.to_kind(Kind::Float) - target).square().sum(Kind::Float)
        };
        let init = Tensor::from_slice(&[0.022_f32, -0.3, 0.7, 0.01]).to_kind(Kind::BFloat16);
        let whole = init.copy().set_requires_grad(true);
        let mut whole_opt = AdamW::new(vec![("w".to_owned(), whole.shallow_clone())]);
        train(&mut whole_opt, &whole, 3, 1e-3, loss);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        whole_opt.save(&path).unwrap();
        // The resumed run starts from the bf16 weights a checkpoint's model holds.
        let resumed = whole.detach().copy().set_requires_grad(true);
        let mut resumed_opt = AdamW::new(vec![("w".to_owned(), resumed.shallow_clone())]);
        resumed_opt.load(&path).unwrap();
        train(&mut whole_opt, &whole, 4, 1e-3, loss);
        train(&mut resumed_opt, &resumed, 4, 1e-3, loss);
        assert!(resumed.equal(&whole), "{resumed} vs {whole}");
        assert_eq!(resumed_opt.steps, whole_opt.steps);
        for (a, b) in [
            (&resumed_opt.first[0], &whole_opt.first[0]),
            (&resumed_opt.second[0], &whole_opt.second[0]),
            (
                resumed_opt.masters[0].as_ref().unwrap(),
                whole_opt.masters[0].as_ref().unwrap(),
            ),
        ] {
            assert!(a.equal(b), "{a} vs {b}");
        }
    }

    #[test]
    fn a_bf16_checkpoint_without_master_copies_is_refused() {
        let p = Tensor::from_slice(&[0.5_f32]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".to_owned(), p.shallow_clone())]);
        train(&mut opt, &p, 1, 0.1, |p| p.square().sum(Kind::Float));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let narrow = p.detach().to_kind(Kind::BFloat16).set_requires_grad(true);
        let mut again = AdamW::new(vec![("w".to_owned(), narrow)]);
        let error = format!("{:#}", again.load(&path).unwrap_err());
        assert!(
            error.contains("master.w") && error.contains("master copy"),
            "{error}"
        );
    }
}
