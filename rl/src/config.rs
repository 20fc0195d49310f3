//! Run configuration: one RON file says which model, which rooms, which rewards and how to
//! train. Every field is documented in `configs/README.md`; every field but `model`, `data` and
//! `rewards` has a default, so a config names only what it changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use metaspatial_env::data::generate::GenConfig;
use metaspatial_env::feedback::FeedbackView;
use metaspatial_env::{EpisodeConfig, PromptStyle};
use metaspatial_policy::geometry::GeometryConfig;
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::tiny::RandomModel;
use metaspatial_render::coverage::Target;
use metaspatial_render::features::Channel;
use metaspatial_render::{Corner, View};
use metaspatial_rewards::RewardSpec;
use serde::{Deserialize, Serialize};

use crate::camera_text::CameraText;
use crate::grpo::{AdvantageMode, KlEstimator, LossAggregation, LossConfig};

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Master seed: data order, sampling, dropout and the tiny model's weights derive from it.
    #[serde(default)]
    pub seed: u64,
    /// The policy.
    pub model: ModelConfig,
    /// The rooms.
    pub data: DataConfig,
    /// Episodes.
    #[serde(default)]
    pub env: EnvConfig,
    /// Weighted rewards (the rewards crate's entries).
    pub rewards: Vec<RewardSpec>,
    /// GRPO.
    #[serde(default)]
    pub algorithm: AlgorithmConfig,
    /// `AdamW` and its schedule.
    #[serde(default)]
    pub optimiser: OptimiserConfig,
    /// Sampling during rollouts.
    #[serde(default)]
    pub generation: GenerationSettings,
    /// Supervised warm-start on reference layouts before GRPO (`None`: start from the model).
    #[serde(default)]
    pub sft: Option<SftConfig>,
    /// Held-out evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Logging and checkpoints.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Runs over several processes (torchrun, srun).
    #[serde(default)]
    pub distributed: DistributedConfig,
    /// The directory relative paths in this config are taken from (itself relative to the
    /// config file's directory, which it defaults to). [`RunConfig::from_file`] sets it, so the
    /// copy saved in the run directory still finds the same reward plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<PathBuf>,
}

/// Where the policy comes from and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A Hugging Face checkpoint directory, or the tiny preset built for this run.
    pub source: ModelSource,
    /// Parameter dtype.
    #[serde(default)]
    pub dtype: Dtype,
    /// Where the model runs.
    #[serde(default)]
    pub device: DeviceChoice,
    /// Full fine-tuning or `LoRA` adapters.
    #[serde(default)]
    pub finetune: Finetune,
    /// Full fine-tuning with a KL penalty: keep the frozen reference copy on the CPU, which
    /// frees the model's size in GPU memory at the cost of a slower reference pass.
    #[serde(default)]
    pub reference_on_cpu: bool,
    /// The geometry channel: per-patch 3D features of each image added to its visual tokens
    /// through a trained connector (`None`: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometryModelConfig>,
    /// MILO's learned camera embedding: each image's pose relative to the first image of its
    /// turn, through the connector, added to that image's visual tokens (`None`: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_embedding: Option<CameraEmbedding>,
}

/// The learned camera embedding: the [`GeometryChannel::RelativePose`] features (a 6D rotation
/// and a translation) through the geometry connector, whose last layer starts at zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEmbedding {
    /// Width of the connector's hidden layer when there is no geometry channel (with one, the
    /// channel's connector carries the pose too).
    #[serde(default = "default_camera_embedding_hidden")]
    pub hidden: i64,
}

fn default_camera_embedding_hidden() -> i64 {
    64
}

impl ModelConfig {
    /// The geometry connector's channels: `geometry`'s, with the relative pose added when the
    /// camera embedding is on (alone when `geometry` is off).
    #[must_use]
    pub fn geometry_channel(&self) -> Option<GeometryModelConfig> {
        let pose = GeometryChannel::RelativePose;
        match (&self.geometry, &self.camera_embedding) {
            (None, None) => None,
            (Some(g), None) => Some(g.clone()),
            (None, Some(e)) => Some(GeometryModelConfig {
                channels: vec![pose],
                hidden: e.hidden,
                lr_scale: default_geometry_lr_scale(),
            }),
            (Some(g), Some(_)) => {
                let mut g = g.clone();
                if !g.channels.contains(&pose) {
                    g.channels.push(pose);
                }
                Some(g)
            }
        }
    }
}

/// The geometry channel's features and connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryModelConfig {
    /// The per-patch features, in this order (each channel's features contiguous).
    pub channels: Vec<GeometryChannel>,
    /// Width of the connector's hidden layer.
    pub hidden: i64,
    /// The connector's learning rate is the optimiser's times this.
    #[serde(default = "default_geometry_lr_scale")]
    pub lr_scale: f64,
}

fn default_geometry_lr_scale() -> f64 {
    10.0
}

impl GeometryModelConfig {
    /// Features per patch: the channels' features summed.
    #[must_use]
    pub fn features(&self) -> usize {
        self.channels.iter().map(|c| c.features()).sum()
    }

    /// The connector's sizes.
    #[must_use]
    pub fn connector(&self) -> GeometryConfig {
        GeometryConfig {
            channels: self.features(),
            hidden: self.hidden,
        }
    }
}

/// One kind of per-patch geometry feature, measured over the patch's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeometryChannel {
    /// The room point (x, y, z) each pixel shows, metres, averaged over the patch with the
    /// background as zero.
    Points,
    /// Each pixel's distance along the view axis, metres, averaged likewise.
    Depth,
    /// The fraction of the patch's pixels that show a surface.
    Valid,
    /// The fractions of the patch's pixels that show floor, wall and an object.
    Kind,
    /// The image's camera pose relative to the first image of its turn (MILO's relative pose
    /// encoding): the rotation's first two columns and the translation in that camera's frame,
    /// the same for every patch; the identity for the first image.
    RelativePose,
}

/// Features of [`GeometryChannel::RelativePose`]: a 6D rotation and a translation.
pub const POSE_FEATURES: usize = 9;

impl GeometryChannel {
    /// The renderer's per-pixel feature, or `None` for a feature of the whole image.
    #[must_use]
    pub fn channel(self) -> Option<Channel> {
        match self {
            Self::Points => Some(Channel::Points),
            Self::Depth => Some(Channel::Depth),
            Self::Valid => Some(Channel::Valid),
            Self::Kind => Some(Channel::Kind),
            Self::RelativePose => None,
        }
    }

    /// The number of features it gives.
    #[must_use]
    pub fn features(self) -> usize {
        self.channel().map_or(POSE_FEATURES, Channel::width)
    }
}

/// The starting weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelSource {
    /// A checkpoint directory (relative paths are taken from the config file's directory).
    Checkpoint(PathBuf),
    /// A tiny Qwen2.5-VL whose tokenizer is trained on the run's training rooms and reference
    /// answers, with seeded random weights.
    Tiny(#[serde(default)] TinySettings),
    /// Qwen2.5-VL-3B's architecture and sizes with seeded random weights made in memory and a
    /// tokenizer trained on the run's rooms: the real model's cost without its weights, for
    /// `metaspatial-rl bench`. It learns, but from nothing.
    RandomQwen2_5Vl3b,
}

/// The tiny preset's sizes (the defaults are the preset's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TinySettings {
    /// Learned BPE vocabulary.
    pub bpe_vocab: usize,
    /// Decoder width.
    pub hidden_size: i64,
    /// Decoder feed-forward width.
    pub intermediate_size: i64,
    /// Decoder layers.
    pub layers: i64,
    /// Query heads.
    pub heads: i64,
    /// Key/value heads.
    pub kv_heads: i64,
}

impl Default for TinySettings {
    fn default() -> Self {
        let p = RandomModel::default();
        Self {
            bpe_vocab: p.bpe_vocab,
            hidden_size: p.hidden_size,
            intermediate_size: p.intermediate_size,
            layers: p.num_hidden_layers,
            heads: p.num_attention_heads,
            kv_heads: p.num_key_value_heads,
        }
    }
}

impl TinySettings {
    /// The preset, with images at most `image_size`² pixels.
    #[must_use]
    pub fn preset(&self, image_size: u32) -> RandomModel {
        RandomModel {
            bpe_vocab: self.bpe_vocab,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            num_key_value_heads: self.kv_heads,
            max_pixels: i64::from(image_size) * i64::from(image_size),
            ..RandomModel::default()
        }
    }
}

/// Parameter dtype.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dtype {
    /// bf16 on CUDA, f32 on the CPU.
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
    /// float16.
    F16,
}

impl Dtype {
    /// The libtorch kind, `None` for automatic.
    #[must_use]
    pub fn kind(self) -> Option<tch::Kind> {
        match self {
            Self::Auto => None,
            Self::F32 => Some(tch::Kind::Float),
            Self::Bf16 => Some(tch::Kind::BFloat16),
            Self::F16 => Some(tch::Kind::Half),
        }
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// The first CUDA device when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// This CUDA device.
    Cuda(usize),
}

/// The command line's spelling: `auto`, `cpu`, `cuda` (device 0) or `cuda:N`.
impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| "expected auto, cpu, cuda or cuda:N".to_owned()),
        }
    }
}

impl DeviceChoice {
    /// The libtorch device; an error when CUDA is asked for but absent.
    pub fn device(self) -> anyhow::Result<tch::Device> {
        match self {
            Self::Auto => Ok(tch::Device::cuda_if_available()),
            Self::Cpu => Ok(tch::Device::Cpu),
            Self::Cuda(i) => {
                let n = tch::Cuda::device_count();
                if (i as i64) < n {
                    Ok(tch::Device::Cuda(i))
                } else {
                    bail!(
                        "the device asked for is Cuda({i}) but {n} CUDA devices are visible \
                         (`metaspatial-rl doctor` shows why)"
                    )
                }
            }
        }
    }
}

/// What is trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Finetune {
    /// Every parameter of the decoder and vision tower; the reference policy is a frozen copy.
    #[default]
    Full,
    /// `LoRA` adapters on the decoder; the reference policy is the base with adapters off.
    Lora(#[serde(default)] LoraConfig),
}

/// The rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A dataset directory, or rooms generated for this run.
    pub source: DataSource,
    /// Rooms trained on.
    #[serde(default = "default_train_split")]
    pub train_split: String,
    /// Rooms evaluated on.
    #[serde(default = "default_eval_split")]
    pub eval_split: String,
}

fn default_train_split() -> String {
    "train".to_owned()
}

fn default_eval_split() -> String {
    "test".to_owned()
}

/// Where rooms come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// A dataset directory (`metaspatial-rl data gen` / `data import`), relative to the config.
    Dir(PathBuf),
    /// Procedural rooms generated (and solved, for SFT) into the run directory.
    Generate(GenerateSettings),
}

/// Procedural generation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSettings {
    /// Rooms in all (80 % train, 10 % val, 10 % test).
    pub rooms: u64,
    /// Generator seed.
    #[serde(default)]
    pub seed: u64,
    /// Fewest objects per room.
    pub min_objects: usize,
    /// Most objects per room.
    pub max_objects: usize,
}

impl GenerateSettings {
    /// The generator's settings.
    #[must_use]
    pub fn generator(&self) -> GenConfig {
        GenConfig {
            seed: self.seed,
            min_objects: self.min_objects,
            max_objects: self.max_objects,
        }
    }
}

/// Episodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvConfig {
    /// Turns per episode.
    pub max_turns: usize,
    /// End an episode as soon as its layout is valid.
    pub stop_when_valid: bool,
    /// The views rendered for the model (and saved with rollouts), always the same ones.
    pub views: Vec<ViewChoice>,
    /// Views chosen per scene for what they see (after `views`), or `None`.
    pub view_selection: Option<ViewSelection>,
    /// Side of the square renders, pixels (multiples of 28 suit Qwen2.5-VL).
    pub image_size: u32,
    /// The first-turn prompt: `MetaSpatial`'s task text, or the compact one.
    pub prompt: PromptStyle,
    /// The render fed back between turns: as it is, or with the objects that have problems
    /// painted by problem.
    pub feedback_view: FeedbackView,
    /// Each image's camera pose as text before it in the prompt: none, in room coordinates, or
    /// relative to the first image of its turn.
    pub camera_text: CameraText,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            max_turns: 2,
            stop_when_valid: true,
            views: vec![ViewChoice::Top],
            view_selection: None,
            image_size: 224,
            prompt: PromptStyle::MetaSpatial,
            feedback_view: FeedbackView::Plain,
            camera_text: CameraText::None,
        }
    }
}

/// A rendered view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ViewChoice {
    /// Perspective from behind the south-west corner.
    Perspective,
    /// Perspective from any direction, framed as the corner view is.
    Orbit {
        /// Degrees counter-clockwise from east (+x) of the eye seen from the room's centre.
        azimuth: f32,
        /// Degrees below the horizon of the line of sight, in `(0, 90]`.
        elevation: f32,
        /// A multiple of the distance at which the room just fills the frame.
        distance: f32,
    },
    /// Orthographic plan, north up.
    Top,
}

impl ViewChoice {
    /// The renderer's view.
    #[must_use]
    pub fn view(self) -> View {
        match self {
            Self::Perspective => View::Perspective(Corner::SouthWest),
            Self::Orbit {
                azimuth,
                elevation,
                distance,
            } => View::Orbit {
                azimuth,
                elevation,
                distance,
            },
            Self::Top => View::Top,
        }
    }
}

/// Space-aware view selection (Spatial-MLLM): of `candidates` orbit views around the room, the
/// `k` that together see the most voxels of the scene, chosen greedily for every scene the
/// model is shown (the empty room of the first turn and each answer's layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewSelection {
    /// Orbit views to choose from, every `360 / candidates` degrees, alternately 30 and 60
    /// degrees below the horizon.
    pub candidates: usize,
    /// Views chosen.
    pub k: usize,
    /// The voxel side is the shortest side of the points' bounding box over this.
    pub voxel_divisions: u32,
    /// What the views should see.
    pub target: SelectionTarget,
}

impl Default for ViewSelection {
    fn default() -> Self {
        Self {
            candidates: 16,
            k: 2,
            voxel_divisions: 20,
            target: SelectionTarget::Objects,
        }
    }
}

/// The points view selection covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectionTarget {
    /// The objects' surfaces (the room's while no object is placed).
    Objects,
    /// Everything drawn: floor, walls and objects.
    Room,
}

impl SelectionTarget {
    /// The renderer's target.
    #[must_use]
    pub fn target(self) -> Target {
        match self {
            Self::Objects => Target::Objects,
            Self::Room => Target::Room,
        }
    }
}

/// GRPO settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmConfig {
    /// Optimiser steps.
    pub steps: u64,
    /// Rooms per step.
    pub rooms_per_step: usize,
    /// Trajectories sampled per room (G).
    pub group_size: usize,
    /// How rewards become advantages.
    pub advantage: AdvantageMode,
    /// Divide by the group's standard deviation (off = Dr. GRPO).
    pub scale_by_std: bool,
    /// How token losses are averaged.
    pub aggregation: LossAggregation,
    /// Lower clip range (`ε_low`).
    pub clip_low: f64,
    /// Upper clip range (`ε_high`).
    pub clip_high: f64,
    /// Dual clip `c` (> 1) for negative advantages; `None` = off (verl's `clip_ratio_c` = 3).
    pub clip_dual: Option<f64>,
    /// KL penalty coefficient in the loss (0 skips the reference pass).
    pub kl_coef: f64,
    /// KL estimator.
    pub kl_estimator: KlEstimator,
    /// Optimiser updates per batch of rollouts (epochs with the importance ratio).
    pub updates_per_batch: usize,
    /// Entropy bonus coefficient.
    pub entropy_coef: f64,
    /// Leave out groups whose rewards are all equal (no signal).
    pub drop_zero_variance_groups: bool,
    /// Leave turns whose response was cut at `max_new_tokens` out of the update (they still
    /// take part in their group's advantages).
    pub mask_truncated: bool,
    /// The world-model auxiliary objective (MILO's imagined outcomes); `None` = off.
    pub world_model: Option<WorldModelConfig>,
}

/// The world-model auxiliary objective: a head on the policy's hidden state at the end of each
/// answer predicts the top view (occupancy and height per cell) of the layout the answer wrote;
/// its loss, times `weight`, joins the supervised and the GRPO loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldModelConfig {
    /// Cells per side of the predicted maps, over the room's floor.
    pub grid: usize,
    /// Weight of the head's loss beside the supervised or policy loss.
    pub weight: f64,
    /// Whether the supervised warm-start trains it.
    pub in_sft: bool,
    /// Whether the GRPO updates train it.
    pub in_grpo: bool,
}

impl Default for WorldModelConfig {
    fn default() -> Self {
        Self {
            grid: 16,
            weight: 0.1,
            in_sft: true,
            in_grpo: true,
        }
    }
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            rooms_per_step: 8,
            group_size: 8,
            advantage: AdvantageMode::Outcome,
            scale_by_std: true,
            aggregation: LossAggregation::TokenMean,
            clip_low: 0.2,
            clip_high: 0.28,
            clip_dual: None,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            updates_per_batch: 1,
            entropy_coef: 0.0,
            drop_zero_variance_groups: true,
            mask_truncated: true,
            world_model: None,
        }
    }
}

impl AlgorithmConfig {
    /// The loss settings.
    #[must_use]
    pub fn loss(&self) -> LossConfig {
        LossConfig {
            clip_low: self.clip_low,
            clip_high: self.clip_high,
            clip_dual: self.clip_dual,
            kl_coef: self.kl_coef,
            kl_estimator: self.kl_estimator,
            entropy_coef: self.entropy_coef,
            aggregation: self.aggregation,
        }
    }
}

/// `AdamW` and its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimiserConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam's β1 and β2.
    pub betas: (f64, f64),
    /// Adam's ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Steps of linear warm-up from 0.
    pub warmup_steps: u64,
    /// After warm-up.
    pub schedule: Schedule,
    /// Clip the gradient's global norm to this (0 = off).
    pub max_grad_norm: f64,
    /// Sequences per forward/backward pass; gradients accumulate over the batch.
    pub micro_batch: usize,
}

impl Default for OptimiserConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
            warmup_steps: 0,
            schedule: Schedule::Constant,
            max_grad_norm: 1.0,
            micro_batch: 8,
        }
    }
}

/// Learning-rate shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// The peak rate throughout.
    Constant,
    /// Half a cosine from the peak down to `min_ratio` × peak at the last step.
    Cosine {
        /// Final rate as a fraction of the peak.
        min_ratio: f64,
    },
}

impl OptimiserConfig {
    /// The learning rate of 1-based `step` out of `total`.
    #[must_use]
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step <= self.warmup_steps && self.warmup_steps > 0 {
            return self.lr * step as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine { min_ratio } => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).clamp(0.0, 1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.lr * (min_ratio + (1.0 - min_ratio) * cosine)
            }
        }
    }
}

/// Sampling during rollouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationSettings {
    /// Softmax temperature.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Longest response, tokens.
    pub max_new_tokens: i64,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            max_new_tokens: 1024,
        }
    }
}

/// Supervised warm-start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// Optimiser steps.
    pub steps: u64,
    /// Examples per step.
    pub batch_size: usize,
    /// The optimiser (its own learning rate and schedule).
    pub optimiser: OptimiserConfig,
    /// Also teach the second turn: a corrupted first answer, its feedback, then the reference.
    pub repair_turns: bool,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            steps: 200,
            batch_size: 16,
            optimiser: OptimiserConfig {
                lr: 1e-4,
                ..OptimiserConfig::default()
            },
            repair_turns: true,
        }
    }
}

/// Held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Rooms evaluated (the first ones of the eval split; 0 = all).
    pub rooms: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Turns per episode during evaluation.
    pub max_turns: usize,
    /// The views evaluation shows the model instead of `env.views` (cameras held out from
    /// training, say); `None` = the training views.
    pub views: Option<Vec<ViewChoice>>,
    /// The changes an earlier measurement of this config found; the run's summary says whether
    /// its own fall inside them.
    pub expect: Option<ExpectedChanges>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            rooms: 0,
            temperature: 0.0,
            max_turns: 1,
            views: None,
            expect: None,
        }
    }
}

/// The range of before/after changes measured for a config (over several seeds, say), which a
/// new run of it is judged against: floating point differs across CPUs, so the same seed on
/// another machine gives another run, and the range says what to expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedChanges {
    /// Where the range comes from, printed with the verdict.
    pub source: String,
    /// Lowest and highest paired change of the valid-scene rate.
    pub valid_scene: (f64, f64),
    /// Lowest and highest paired change of the mean total reward.
    pub mean_reward: (f64, f64),
}

/// Logging and checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are deleted).
    pub keep_checkpoints: usize,
    /// Evaluate every this many steps (0 = only before and after training).
    pub eval_every: u64,
    /// Save rollouts every this many steps (0 = never).
    pub rollouts_every: u64,
    /// Save the renders with the rollouts.
    pub rollout_images: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 50,
            keep_checkpoints: 2,
            eval_every: 0,
            rollouts_every: 1,
            rollout_images: true,
        }
    }
}

/// Runs over several processes (torchrun, srun); a single process uses `rollout_chunks` only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    /// Seconds a collective waits for the other ranks before the run stops with an error
    /// naming the ranks that did not answer.
    pub timeout_s: u64,
    /// Generation calls a step's rooms are split into (whole groups each), the unit the ranks
    /// share; `None`: two, or the world size when that is larger. Runs with the same value
    /// sample the same rollouts whatever their world size.
    pub rollout_chunks: Option<usize>,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            timeout_s: 600,
            rollout_chunks: None,
        }
    }
}

impl RunConfig {
    /// Reads and checks a config file; relative paths inside it become relative to its
    /// directory.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the run config {}", path.display()))?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        // Absolute, so that the copy saved in the run directory resolves to the same places.
        let dir = metaspatial_rewards::config_dir(path)
            .with_context(|| format!("resolving the directory of {}", path.display()))?;
        let base = match &config.base_dir {
            Some(b) => std::path::absolute(dir.join(b))
                .with_context(|| format!("{}: base_dir {}", path.display(), b.display()))?,
            None => dir,
        };
        config.base_dir = Some(base.clone());
        if let ModelSource::Checkpoint(dir) = &mut config.model.source {
            *dir = base.join(&*dir);
        }
        if let DataSource::Dir(dir) = &mut config.data.source {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let config: Self = metaspatial_rewards::ron_options()
            .from_str(text)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    fn check(&self) -> anyhow::Result<()> {
        let a = &self.algorithm;
        if a.group_size < 2 {
            bail!("algorithm.group_size must be at least 2 (advantages compare samples of a room)");
        }
        if a.rooms_per_step == 0 || a.updates_per_batch == 0 {
            bail!("algorithm.rooms_per_step and algorithm.updates_per_batch must be at least 1");
        }
        if self.distributed.timeout_s == 0 || self.distributed.rollout_chunks == Some(0) {
            bail!("distributed.timeout_s and distributed.rollout_chunks must be at least 1");
        }
        if !(0.0..1.0).contains(&a.clip_low) || a.clip_high < 0.0 {
            bail!("algorithm.clip_low must be in [0, 1) and clip_high non-negative");
        }
        if let Some(c) = a.clip_dual
            && !(c > 1.0 && c.is_finite())
        {
            bail!("algorithm.clip_dual must be greater than 1 (verl uses 3), got {c}");
        }
        if let AdvantageMode::Discounted { gamma } = a.advantage
            && !(gamma > 0.0 && gamma <= 1.0)
        {
            bail!("algorithm.advantage: gamma must be in (0, 1], got {gamma}");
        }
        if let AdvantageMode::Object { strength } = a.advantage
            && !(0.0..=1.0).contains(&strength)
        {
            bail!("algorithm.advantage: Object strength must be in [0, 1], got {strength}");
        }
        if let LossAggregation::SeqMeanTokenSum { divisor } = a.aggregation
            && divisor <= 0.0
        {
            bail!("algorithm.aggregation: the divisor must be positive, got {divisor}");
        }
        if let Some(w) = &a.world_model
            && !(w.grid >= 1 && w.weight.is_finite() && w.weight >= 0.0)
        {
            bail!(
                "algorithm.world_model: grid must be at least 1 and weight a non-negative number, \
                 got grid {} and weight {}",
                w.grid,
                w.weight
            );
        }
        for (what, o) in std::iter::once(("optimiser", &self.optimiser))
            .chain(self.sft.as_ref().map(|s| ("sft.optimiser", &s.optimiser)))
        {
            if o.micro_batch == 0 {
                bail!("{what}.micro_batch must be at least 1");
            }
            if !(o.lr.is_finite() && o.lr >= 0.0) {
                bail!("{what}.lr must be a non-negative number, got {}", o.lr);
            }
        }
        if self.env.max_turns == 0 || self.eval.max_turns == 0 {
            bail!("env.max_turns and eval.max_turns must be at least 1");
        }
        if self.eval.views.as_ref().is_some_and(Vec::is_empty) {
            bail!("eval.views: give at least one view, or None for the training views");
        }
        if let Some(e) = &self.eval.expect {
            for (what, (low, high)) in [
                ("valid_scene", e.valid_scene),
                ("mean_reward", e.mean_reward),
            ] {
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    bail!(
                        "eval.expect.{what}: give (lowest, highest), finite and in order, got ({low}, {high})"
                    );
                }
            }
        }
        if self.env.views.is_empty() && self.env.view_selection.is_none() {
            bail!(
                "env.views must name at least one view (Top, Perspective or Orbit(..)), or env.view_selection choose some"
            );
        }
        for view in &self.env.views {
            if let ViewChoice::Orbit {
                azimuth,
                elevation,
                distance,
            } = *view
                && !(azimuth.is_finite()
                    && elevation > 0.0
                    && elevation <= 90.0
                    && distance > 0.0
                    && distance.is_finite())
            {
                bail!(
                    "env.views: Orbit(azimuth: {azimuth}, elevation: {elevation}, distance: {distance}) needs a finite azimuth, an elevation in (0, 90] and a positive distance"
                );
            }
        }
        if let Some(v) = &self.env.view_selection
            && (v.k == 0 || v.k > v.candidates || v.voxel_divisions == 0)
        {
            bail!(
                "env.view_selection: k must be between 1 and candidates ({}) and voxel_divisions at least 1, got k {} and voxel_divisions {}",
                v.candidates,
                v.k,
                v.voxel_divisions
            );
        }
        if self.env.image_size < 28 {
            bail!(
                "env.image_size must be at least 28 pixels, got {}",
                self.env.image_size
            );
        }
        let g = &self.generation;
        if g.temperature <= 0.0 || !(g.top_p > 0.0 && g.top_p <= 1.0) || g.max_new_tokens < 1 {
            bail!("generation: temperature must be positive, top_p in (0, 1], max_new_tokens ≥ 1");
        }
        if self.rewards.is_empty() {
            bail!("rewards: name at least one reward");
        }
        if self.model.reference_on_cpu && matches!(self.model.finetune, Finetune::Lora(_)) {
            bail!(
                "model.reference_on_cpu applies to Full fine-tuning: with LoRA the reference is \
                 the base model itself, adapters switched off"
            );
        }
        if let Some(g) = &self.model.geometry_channel() {
            let mut seen = g.channels.clone();
            seen.sort_by_key(|c| *c as u8);
            seen.dedup();
            if g.channels.is_empty() || seen.len() != g.channels.len() {
                bail!(
                    "model.geometry.channels must name each channel at most once and at least \
                     one (Points, Depth, Valid, Kind), got {:?}",
                    g.channels
                );
            }
            if g.hidden < 1 || !(g.lr_scale.is_finite() && g.lr_scale > 0.0) {
                bail!(
                    "model.geometry (or camera_embedding): hidden must be at least 1 and lr_scale positive, got {} and {}",
                    g.hidden,
                    g.lr_scale
                );
            }
        }
        if let DataSource::Generate(s) = &self.data.source
            && (!s.generator().objects_in_range() || s.rooms < 10)
        {
            bail!(
                "data.source: Generate needs 1 ≤ min_objects ≤ max_objects and at least 10 rooms"
            );
        }
        Ok(())
    }

    /// The weighted reward set of `rewards` (built-ins and plugins); `origin` names the config
    /// in errors. Relative paths in reward parameters are taken from `base_dir`, or from the
    /// current directory for a config that was not read from a file.
    pub fn reward_set(&self, origin: &str) -> anyhow::Result<metaspatial_rewards::RewardSet> {
        Ok(metaspatial_rewards::RewardSet::from_config(
            &metaspatial_rewards::RewardsConfig {
                rewards: self.rewards.clone(),
            },
            origin,
            self.base_dir.as_deref().unwrap_or(Path::new("")),
            &metaspatial_rewards::Registry::with_builtins(),
        )?)
    }

    /// Episode settings for training rollouts.
    #[must_use]
    pub fn episode(&self) -> EpisodeConfig {
        EpisodeConfig {
            max_turns: self.env.max_turns,
            stop_when_valid: self.env.stop_when_valid,
            prompt: self.env.prompt,
            feedback_view: self.env.feedback_view,
            ..EpisodeConfig::default()
        }
    }

    /// The config as RON, as it is saved in the run directory.
    pub fn to_ron(&self) -> anyhow::Result<String> {
        Ok(ron::ser::to_string_pretty(
            self,
            ron::ser::PrettyConfig::default(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"(
        model: (source: Tiny(())),
        data: (source: Generate((rooms: 20, min_objects: 2, max_objects: 3))),
        rewards: [(reward: "format", weight: 1.0)],
    )"#;

    #[test]
    fn every_shipped_config_reads_and_validates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut dirs = vec![root];
        let mut read = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "ron") {
                    RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{e:#}"));
                    read += 1;
                }
            }
        }
        assert!(read >= 6, "{read} configs");
    }

    #[test]
    fn the_geometry_channel_counts_its_features_and_refuses_repeats() {
        assert_eq!(
            RunConfig::parse(MINIMAL, "minimal").unwrap().model.geometry,
            None
        );
        let with = |channels: &str| {
            MINIMAL.replace(
                "Tiny(())",
                &format!("Tiny(()), geometry: (channels: {channels}, hidden: 32)"),
            )
        };
        let config = RunConfig::parse(&with("[Points, Depth, Valid, Kind]"), "g.ron").unwrap();
        let geometry = config.model.geometry.as_ref().unwrap();
        assert_eq!(geometry.features(), 8);
        assert!((geometry.lr_scale - 10.0).abs() < f64::EPSILON);
        assert_eq!(geometry.connector().hidden, 32);
        let again = RunConfig::parse(&config.to_ron().unwrap(), "saved").unwrap();
        assert_eq!(again, config);
        for bad in ["[Depth, Depth]", "[]"] {
            let error = RunConfig::parse(&with(bad), "g.ron").unwrap_err();
            assert!(
                format!("{error:#}").contains("model.geometry.channels"),
                "{bad}: {error:#}"
            );
        }
    }

    #[test]
    fn the_camera_embedding_is_the_relative_pose_through_the_connector() {
        let with = |model: &str| MINIMAL.replace("Tiny(())", &format!("Tiny(()), {model}"));
        let alone = RunConfig::parse(&with("camera_embedding: ()"), "c.ron").unwrap();
        let channel = alone.model.geometry_channel().unwrap();
        assert_eq!(channel.channels, [GeometryChannel::RelativePose]);
        assert_eq!(channel.hidden, 64);
        let both = RunConfig::parse(
            &with("geometry: (channels: [Points], hidden: 32), camera_embedding: (hidden: 8)"),
            "c.ron",
        )
        .unwrap();
        let channel = both.model.geometry_channel().unwrap();
        assert_eq!(
            channel.channels,
            [GeometryChannel::Points, GeometryChannel::RelativePose]
        );
        assert_eq!(channel.hidden, 32);
        let again = RunConfig::parse(&both.to_ron().unwrap(), "saved").unwrap();
        assert_eq!(again, both);
        let bad = RunConfig::parse(&with("camera_embedding: (hidden: 0)"), "c.ron").unwrap_err();
        assert!(format!("{bad:#}").contains("camera_embedding"), "{bad:#}");
    }

    #[test]
    fn a_minimal_config_fills_every_default_and_round_trips() {
        let config = RunConfig::parse(MINIMAL, "minimal").unwrap();
        assert_eq!(config.algorithm, AlgorithmConfig::default());
        assert_eq!(config.model.finetune, Finetune::Full);
        let again = RunConfig::parse(&config.to_ron().unwrap(), "saved").unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn every_shipped_config_parses_and_passes_its_checks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "ron") {
                // `from_file` runs the same checks as `run`.
                RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 3, "{seen} configs in {}", dir.display());
    }

    #[test]
    fn an_expected_range_must_be_in_order() {
        let expect = |valid: &str| {
            MINIMAL.replace(
                "rewards:",
                &format!(
                    "eval: (expect: Some((source: \"three seeds\", valid_scene: {valid}, mean_reward: (0.0, 0.1)))), rewards:"
                ),
            )
        };
        let config = RunConfig::parse(&expect("(0.05, 0.1)"), "ok.ron").unwrap();
        assert_eq!(config.eval.expect.unwrap().valid_scene, (0.05, 0.1));
        let e = RunConfig::parse(&expect("(0.2, 0.1)"), "reversed.ron")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reversed.ron") && e.contains("eval.expect.valid_scene"),
            "{e}"
        );
    }

    #[test]
    fn devices_are_spelled_as_on_the_command_line() {
        let parse = |s: &str| s.parse::<DeviceChoice>();
        assert_eq!(parse("auto"), Ok(DeviceChoice::Auto));
        assert_eq!(parse("cpu"), Ok(DeviceChoice::Cpu));
        assert_eq!(parse("cuda"), Ok(DeviceChoice::Cuda(0)));
        assert_eq!(parse("cuda:3"), Ok(DeviceChoice::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "Cpu"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace("rewards:", "algorithm: (group_size: 1), rewards:");
        let e = RunConfig::parse(&bad, "bad.ron").unwrap_err().to_string();
        assert!(e.contains("bad.ron") && e.contains("group_size"), "{e}");
        let typo = MINIMAL.replace("rewards:", "algoritm: (), rewards:");
        let e = RunConfig::parse(&typo, "typo.ron").unwrap_err().to_string();
        assert!(e.contains("typo.ron") && e.contains("algoritm"), "{e}");
        let dual = |c: &str| {
            MINIMAL.replace(
                "rewards:",
                &format!("algorithm: (clip_dual: {c}), rewards:"),
            )
        };
        let e = RunConfig::parse(&dual("1.0"), "dual.ron")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dual.ron") && e.contains("clip_dual") && e.contains("got 1"),
            "{e}"
        );
        let parsed = RunConfig::parse(&dual("3.0"), "dual.ron").unwrap();
        assert_eq!(parsed.algorithm.loss().clip_dual, Some(3.0));
        let cpu_reference = MINIMAL.replace("Tiny(())", "Tiny(()), reference_on_cpu: true");
        assert!(
            RunConfig::parse(&cpu_reference, "full.ron")
                .unwrap()
                .model
                .reference_on_cpu
        );
        let lora = "Lora((rank: 4, alpha: 8.0, dropout: 0.0, target_modules: [\"q_proj\"], \
                    adapt_vision: false))";
        let with_lora = cpu_reference.replace("Tiny(())", &format!("Tiny(()), finetune: {lora}"));
        let e = RunConfig::parse(&with_lora, "lora.ron")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lora.ron") && e.contains("reference_on_cpu"),
            "{e}"
        );
    }

    /// Regression: rewards were handed "." as their directory, so a plugin named relative to
    /// its run config was looked for in the shell's directory.
    #[test]
    fn relative_paths_are_taken_from_the_config_directory_even_in_the_saved_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let configs = tmp.path().join("configs");
        std::fs::create_dir_all(configs.join("plugins")).unwrap();
        std::fs::write(
            configs.join("plugins/echo.py"),
            "import json, sys\nfor line in sys.stdin:\n    req = json.loads(line)\n    \
             print(json.dumps({'id': req['id'], 'value': req['params']['value']}), flush=True)\n",
        )
        .unwrap();
        let text = r#"(
            model: (source: Checkpoint("models/base")),
            data: (source: Dir("rooms")),
            rewards: [(reward: "plugin", name: "echo", weight: 1.0,
                       params: (command: ["python3", "plugins/echo.py"], config: {"value": 0.7}))],
        )"#;
        let path = configs.join("run.ron");
        std::fs::write(&path, text).unwrap();
        let config = RunConfig::from_file(&path).unwrap();
        assert_eq!(config.base_dir.as_deref(), Some(configs.as_path()));
        assert_eq!(
            config.model.source,
            ModelSource::Checkpoint(configs.join("models/base"))
        );
        assert_eq!(config.data.source, DataSource::Dir(configs.join("rooms")));
        let room = metaspatial_env::load_room(
            r#"{"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5}, "objects": [
                {"id": "a", "category": "chair", "on_floor": true,
                 "size": {"length": 0.5, "width": 0.5, "height": 0.9}}]}"#,
            "room",
        )
        .unwrap();
        let prepared = metaspatial_rewards::Prepared::new(
            &room,
            "<answer>[]</answer>",
            &metaspatial_env::AssessConfig::geometry_only(),
        );
        let echo = |config: &RunConfig| {
            let set = config.reward_set("run.ron").unwrap();
            set.score(&prepared.context(&room)).components.remove(0)
        };
        let scored = echo(&config);
        assert_eq!(scored.failed, None);
        assert!((scored.value - 0.7).abs() < 1e-12);
        // The run directory's copy, read back from elsewhere (`--resume`, `eval`).
        let run = tmp.path().join("runs/a");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("config.ron"), config.to_ron().unwrap()).unwrap();
        let saved = RunConfig::from_file(&run.join("config.ron")).unwrap();
        assert_eq!(saved, config);
        assert_eq!(echo(&saved).failed, None);
        // An explicit `base_dir` is itself taken from the config's directory.
        std::fs::write(&path, text.replace("data:", "base_dir: \"shared\", data:")).unwrap();
        let moved = RunConfig::from_file(&path).unwrap();
        assert_eq!(
            moved.data.source,
            DataSource::Dir(configs.join("shared/rooms"))
        );
    }

    #[test]
    fn the_schedule_warms_up_then_decays() {
        let o = OptimiserConfig {
            lr: 1.0,
            warmup_steps: 2,
            schedule: Schedule::Cosine { min_ratio: 0.1 },
            ..OptimiserConfig::default()
        };
        assert!((o.lr_at(1, 12) - 0.5).abs() < 1e-12);
        assert!((o.lr_at(2, 12) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(7, 12) - 0.55).abs() < 1e-12);
        assert!((o.lr_at(12, 12) - 0.1).abs() < 1e-12);
    }
}
