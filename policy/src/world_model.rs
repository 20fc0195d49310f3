//! The world-model head (MILO's imagined outcomes): from the policy's hidden state at the end
//! of an answer, predict the top-down occupancy and height map of the layout it wrote. Its loss
//! trains the policy's representation to carry the geometry of what it just wrote; the head
//! itself plays no part in generation.
//!
//! `RMSNorm → Linear(hidden, width) → GELU → Linear(width, 2·grid²)`: the first `grid²` outputs
//! are occupancy logits, the rest the height of each cell as a fraction of the room's height,
//! on its own f32 `VarStore` ([`OwnStore`], saved as [`WORLD_MODEL_FILE`] beside the model or
//! the adapters).

use std::path::Path;

use tch::{Device, Kind, Reduction, Tensor, nn};

use crate::error::{PolicyError, Result};
use crate::layers::{Linear, RmsNorm, Scope};
use crate::store::{self, OwnStore};

/// The head's file name in a model directory or a run checkpoint.
pub const WORLD_MODEL_FILE: &str = "world_model.safetensors";

/// Width of the head's hidden layer.
const WIDTH: i64 = 256;

/// The norm's epsilon, Qwen2's.
const NORM_EPS: f64 = 1e-6;

/// Predicts a `grid × grid` occupancy and height map from one hidden state.
pub struct WorldModelHead {
    grid: i64,
    vs: nn::VarStore,
    norm: RmsNorm,
    fc1: Linear,
    fc2: Linear,
}

impl std::fmt::Debug for WorldModelHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldModelHead")
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

/// What the head's loss measured on a batch.
#[derive(Debug)]
pub struct WorldModelLoss {
    /// `(rows,)`: each row's binary cross-entropy of the occupancy plus mean squared error of
    /// the heights, both averaged over the cells.
    pub per_row: Tensor,
    /// Each row's intersection over union of predicted (probability above ½) and true occupied
    /// cells (1 when both are empty).
    pub iou: Vec<f64>,
}

impl OwnStore for WorldModelHead {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
}

impl WorldModelHead {
    fn build(hidden: i64, grid: i64, device: Device) -> Result<Self> {
        if grid < 1 || hidden < 1 {
            return Err(PolicyError::Input(format!(
                "world-model head: grid ({grid}) and hidden size ({hidden}) must be positive"
            )));
        }
        let vs = nn::VarStore::new(device);
        let scope = Scope::new(vs.root(), None, true);
        let norm = RmsNorm::new(&scope, "norm", hidden, NORM_EPS);
        let fc1 = Linear::new(&scope, "fc1", hidden, WIDTH, true);
        let fc2 = Linear::new(&scope, "fc2", WIDTH, 2 * grid * grid, true);
        Ok(Self {
            grid,
            vs,
            norm,
            fc1,
            fc2,
        })
    }

    /// A fresh head for hidden states of width `hidden`: both layers' weights uniform in
    /// ±1/√fan-in drawn from `seed` (the same on any device), biases zero, norm weight one.
    pub fn new(hidden: i64, grid: i64, device: Device, seed: u64) -> Result<Self> {
        let head = Self::build(hidden, grid, device)?;
        let variables = head.vs.variables();
        store::fill_uniform(&variables["fc1.weight"], seed);
        store::fill_uniform(&variables["fc2.weight"], seed ^ 0x5EED_F0C2);
        Ok(head)
    }

    /// Reads a head saved by [`Self::save`] (its sizes from the file's shapes).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let tensors = store::read_tensors(path)?;
        let shape = |name: &str| {
            store::shape_of(&tensors, name, path, "a world-model head has fc1 and fc2")
        };
        let (fc1, fc2) = (shape("fc1.weight")?, shape("fc2.weight")?);
        let cells = fc2.first().copied().unwrap_or(0) / 2;
        let grid = (cells as f64).sqrt().round() as i64;
        if fc1.len() != 2 || fc2.len() != 2 || grid * grid * 2 != fc2[0] {
            return Err(PolicyError::Safetensors {
                path: path.to_path_buf(),
                message: format!(
                    "`fc1.weight` {fc1:?} and `fc2.weight` {fc2:?}: expected (width, hidden) and \
                     (2 · grid², width)"
                ),
            });
        }
        let head = Self::build(fc1[1], grid, device)?;
        store::copy_from(&head.vs, &tensors, path)?;
        Ok(head)
    }

    /// Cells per side of the predicted maps.
    #[must_use]
    pub fn grid(&self) -> i64 {
        self.grid
    }

    /// Occupancy logits and heights, each `(rows, grid²)` f32, of hidden states `(rows, hidden)`.
    pub fn forward(&self, hidden: &Tensor) -> (Tensor, Tensor) {
        let x = hidden.to_device(self.vs.device()).to_kind(Kind::Float);
        let out = self
            .fc2
            .forward(&self.fc1.forward(&self.norm.forward(&x)).gelu("none"));
        let cells = self.grid * self.grid;
        (out.narrow(1, 0, cells), out.narrow(1, cells, cells))
    }

    /// The loss against target maps `occupancy` (0 or 1) and `height`, each `(rows, grid²)`.
    pub fn loss(
        &self,
        hidden: &Tensor,
        occupancy: &Tensor,
        height: &Tensor,
    ) -> Result<WorldModelLoss> {
        let rows = hidden.size()[0];
        let cells = self.grid * self.grid;
        for (name, t) in [("occupancy", occupancy), ("height", height)] {
            if t.size() != [rows, cells] {
                return Err(PolicyError::Input(format!(
                    "world-model {name} target of shape {:?}: expected ({rows}, {cells})",
                    t.size()
                )));
            }
        }
        let device = self.vs.device();
        let (occupancy, height) = (occupancy.to(device), height.to(device));
        let (logits, predicted) = self.forward(hidden);
        let bce = logits
            .binary_cross_entropy_with_logits::<Tensor>(&occupancy, None, None, Reduction::None)
            .mean_dim(1, false, Kind::Float);
        let mse = (predicted - &height)
            .square()
            .mean_dim(1, false, Kind::Float);
        let iou = tch::no_grad(|| {
            let p = logits.gt(0.0);
            let t = occupancy.gt(0.5);
            let inter = p.logical_and(&t).sum_dim_intlist(1, false, Kind::Float);
            let union = p.logical_or(&t).sum_dim_intlist(1, false, Kind::Float);
            let ratio = inter / union.clamp_min(1.0);
            // Both empty: a perfect prediction.
            ratio.where_self(&union.gt(0.0), &Tensor::ones_like(&union))
        });
        Ok(WorldModelLoss {
            per_row: bce + mse,
            iou: Vec::<f64>::try_from(iou.to_kind(Kind::Double).to_device(Device::Cpu))
                .expect("a vector of rows"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_overfits_one_batch() {
        let (rows, hidden, grid) = (4_i64, 32_i64, 4_i64);
        let head = WorldModelHead::new(hidden, grid, Device::Cpu, 7).unwrap();
        let x = Tensor::randn([rows, hidden], (Kind::Float, Device::Cpu));
        let occupancy = Tensor::from_slice(
            &(0..rows * grid * grid)
                .map(|i| f32::from((i * 7 % 5) < 2))
                .collect::<Vec<_>>(),
        )
        .view([rows, grid * grid]);
        let height = &occupancy * 0.4;
        let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &head.vs, 1e-2).unwrap();
        let first = head.loss(&x, &occupancy, &height).unwrap();
        let start = first.per_row.mean(Kind::Float).double_value(&[]);
        for _ in 0..300 {
            let loss = head
                .loss(&x, &occupancy, &height)
                .unwrap()
                .per_row
                .mean(Kind::Float);
            opt.backward_step(&loss);
        }
        let last = head.loss(&x, &occupancy, &height).unwrap();
        let end = last.per_row.mean(Kind::Float).double_value(&[]);
        assert!(end < 0.05 * start, "loss {start} → {end}");
        assert!(
            last.iou.iter().all(|&v| (v - 1.0).abs() < 1e-9),
            "{:?}",
            last.iou
        );
    }

    #[test]
    fn a_saved_head_loads_back_with_its_sizes_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WORLD_MODEL_FILE);
        let head = WorldModelHead::new(24, 5, Device::Cpu, 3).unwrap();
        head.save(&path).unwrap();
        let back = WorldModelHead::load(&path, Device::Cpu).unwrap();
        assert_eq!(back.grid(), 5);
        let x = Tensor::randn([2, 24], (Kind::Float, Device::Cpu));
        let (a, b) = (head.forward(&x), back.forward(&x));
        assert!(a.0.equal(&b.0) && a.1.equal(&b.1));
        let other = WorldModelHead::new(24, 6, Device::Cpu, 3).unwrap();
        let error = other.load_weights(&path).unwrap_err().to_string();
        assert!(error.contains("fc2"), "{error}");
    }

    #[test]
    fn targets_of_the_wrong_shape_are_refused() {
        let head = WorldModelHead::new(8, 2, Device::Cpu, 1).unwrap();
        let x = Tensor::zeros([3, 8], (Kind::Float, Device::Cpu));
        let bad = Tensor::zeros([3, 5], (Kind::Float, Device::Cpu));
        let error = head.loss(&x, &bad, &bad).unwrap_err().to_string();
        assert!(error.contains("(3, 4)"), "{error}");
    }
}
