//! Layers shared by the vision tower and the decoder: a `LoRA`-capable `Linear`, our `RmsNorm`,
//! and the `Scope` that builds them with parameter names equal to checkpoint keys.

use std::sync::Arc;

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::lora::LoraState;

/// Where parameters go while a model is built: the base `VarStore` path (names = checkpoint
/// keys) and, when adapters are requested, the matching path in the adapter `VarStore`.
#[derive(Clone)]
pub(crate) struct Scope<'a> {
    base: nn::Path<'a>,
    lora: Option<(nn::Path<'a>, Arc<LoraState>)>,
    trainable: bool,
}

impl<'a> Scope<'a> {
    /// A root scope. `trainable` marks base weights as trainable (full fine-tuning).
    pub(crate) fn new(
        base: nn::Path<'a>,
        lora: Option<(nn::Path<'a>, Arc<LoraState>)>,
        trainable: bool,
    ) -> Self {
        Self {
            base,
            lora,
            trainable,
        }
    }

    /// The scope one name segment down.
    pub(crate) fn pp(&self, segment: &str) -> Self {
        Self {
            base: &self.base / segment,
            lora: self
                .lora
                .as_ref()
                .map(|(path, state)| (path / segment, Arc::clone(state))),
            trainable: self.trainable,
        }
    }

    /// This scope with adapters dropped (used for the vision tower unless it is adapted).
    pub(crate) fn without_lora(&self) -> Self {
        Self {
            base: self.base.clone(),
            lora: None,
            trainable: self.trainable,
        }
    }

    /// A base parameter, zeros or ones until the checkpoint overwrites it, in the store's
    /// dtype (tch's `zeros_no_train` would make it f32 whatever the store's dtype).
    pub(crate) fn param(&self, name: &str, dims: &[i64], ones: bool) -> Tensor {
        let value = if ones { 1.0 } else { 0.0 };
        self.base
            .var(name, dims, Init::Const(value))
            .set_requires_grad(self.trainable)
    }
}

/// `y = x Wᵀ + b`, plus `scale · B A dropout(x)` when an adapter is attached and switched on.
#[derive(Debug)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    adapter: Option<Adapter>,
}

#[derive(Debug)]
struct Adapter {
    a: Tensor,
    b: Tensor,
    state: Arc<LoraState>,
}

impl Linear {
    /// A linear layer named `name` under `scope` (`<name>.weight`, `<name>.bias`).
    pub(crate) fn new(scope: &Scope, name: &str, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let s = scope.pp(name);
        let weight = s.param("weight", &[out_dim, in_dim], false);
        let bias = bias.then(|| s.param("bias", &[out_dim], false));
        let adapter = s
            .lora
            .as_ref()
            .filter(|(_, state)| state.config.targets(name))
            .map(|(path, state)| {
                let rank = state.config.rank;
                // PEFT's default: A ~ Kaiming-uniform(a = √5), B = 0, so training starts at the base.
                let bound = 1.0 / (in_dim as f64).sqrt();
                let a = (path / "lora_A").var(
                    "weight",
                    &[rank, in_dim],
                    Init::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                );
                let b = (path / "lora_B").var("weight", &[out_dim, rank], Init::Const(0.0));
                Adapter {
                    a,
                    b,
                    state: Arc::clone(state),
                }
            });
        Self {
            weight,
            bias,
            adapter,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.linear(&self.weight, self.bias.as_ref());
        match &self.adapter {
            Some(adapter) if adapter.state.enabled() => {
                let p = adapter.state.config.dropout;
                let x = if adapter.state.training() && p > 0.0 {
                    x.dropout(p, true)
                } else {
                    x.shallow_clone()
                };
                // The adapters stay f32 (their updates would round away in bf16) and meet the
                // activations in the compute dtype; the cast is part of the graph, so the
                // gradients reach the f32 values.
                let kind = x.kind();
                y + x
                    .linear::<Tensor>(&adapter.a.to_kind(kind), None)
                    .linear::<Tensor>(&adapter.b.to_kind(kind), None)
                    * adapter.state.config.scale()
            }
            _ => y,
        }
    }
}

/// Root-mean-square layer norm, computed in f32 like transformers' `Qwen2RMSNorm`.
#[derive(Debug)]
pub(crate) struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// `<name>.weight` under `scope`.
    pub(crate) fn new(scope: &Scope, name: &str, dim: i64, eps: f64) -> Self {
        Self {
            weight: scope.pp(name).param("weight", &[dim], true),
            eps,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let xf = x.to_kind(Kind::Float);
        let variance = xf.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = (xf * (variance + self.eps).rsqrt()).to_kind(kind);
        &self.weight * normed
    }
}

/// `x` with its two halves swapped and the new first half negated (rotary embedding helper).
pub(crate) fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[x2.neg(), x1], -1)
}
