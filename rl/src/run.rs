//! A whole run: rooms and model prepared, optional supervised warm-start, evaluation before,
//! GRPO steps with metrics, rollouts and checkpoints, evaluation after, and the comparison.
//!
//! Every random choice derives from the config's seed and the step number (data order, sampling
//! seeds, dropout), so a checkpoint's step is its whole random state and a resumed run on the
//! CPU reproduces the uninterrupted one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use metaspatial_env::data::dataset::{Dataset, GeneratorInfo, Manifest, ReferenceLayout, Split};
use metaspatial_env::data::generate::{GENERATOR_VERSION, GenConfig, generate};
use metaspatial_env::data::rng::Rng;
use metaspatial_env::data::solver::{SolverConfig, solve};
use metaspatial_env::{EpisodeConfig, Room};
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::tiny::TinyPreset;
use metaspatial_policy::{FinishReason, LoadOptions, Policy, SamplingParams, Weights};
use metaspatial_replay::record::{
    CollisionRecord, EvalReport, ImageRecord, MetricsLine, ObjectRecord, OutOfBoundsRecord,
    PoseRecord, RolloutRecord, RoomRecord, TurnRecord, Violations, step_name,
};
use metaspatial_rewards::RewardSet;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::{DataSource, Finetune, ModelSource, OptimiserConfig, RunConfig};
use crate::distributed;
use crate::eval::{self, PerRoom, RoomOutcome, TurnOutcome};
use crate::optim::AdamW;
use crate::rollout::{
    RenderThread, RolloutSettings, RolloutTimes, Scorer, Trajectory, Views, mix, rollout,
};
use crate::rundir::{RunDir, TrainerState, read_state};
use crate::sft;
use crate::update::{self, UpdateStats};

/// Set by Ctrl-C: the run checkpoints at the end of the current step and stops.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Non-finite updates in a row after which the run checkpoints and stops.
pub const MAX_BAD_STEPS: u32 = 3;

/// Evaluations of the policy before and after GRPO.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Before GRPO (after SFT when there is one).
    pub before: EvalReport,
    /// After the last step.
    pub after: EvalReport,
    /// Paired per-room difference of the valid-scene rate (after − before) and its SE.
    pub valid_difference: (f64, f64),
    /// Paired per-room difference of the mean total reward and its SE.
    pub reward_difference: (f64, f64),
}

/// Where and how a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory.
    pub out: PathBuf,
    /// Continue from the newest checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) after this step, as if killed there; for tests and tooling.
    pub stop_after: Option<u64>,
}

/// Everything the run holds while it trains.
pub(crate) struct Session {
    config: RunConfig,
    pub(crate) dir: RunDir,
    data: Dataset,
    rewards: RewardSet,
    renderer: RenderThread,
    views: Views,
    pub(crate) device: tch::Device,
    pub(crate) progress: MultiProgress,
}

/// The policy being trained, with what its updates need.
pub(crate) struct Learner {
    pub(crate) policy: Policy,
    reference: Option<Policy>,
    pub(crate) opt: AdamW,
}

impl Learner {
    /// Every tensor the ranks must hold alike: the policy's variables (adapters included) and
    /// the frozen reference's.
    pub(crate) fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> =
            self.policy.var_store().variables().into_iter().collect();
        let extra = |prefix: &str, store: &tch::nn::VarStore| {
            store
                .variables()
                .into_iter()
                .map(|(name, t)| (format!("{prefix}/{name}"), t))
                .collect::<Vec<_>>()
        };
        if let Some(store) = self.policy.lora_var_store() {
            out.extend(extra("adapters", store));
        }
        if let Some(reference) = &self.reference {
            out.extend(extra("reference", reference.var_store()));
        }
        out
    }
}

/// One GRPO step: its rooms, rollouts, advantages, update and logged scalars.
pub(crate) struct StepOutcome {
    /// The index of this rank's first room among the step's rooms.
    first_room: usize,
    rooms: Vec<Room>,
    trajectories: Vec<Trajectory>,
    advantages: update::Advantages,
    stats: UpdateStats,
    /// What `metrics.jsonl` logs for the step, time breakdown and tokens/s included.
    pub(crate) values: BTreeMap<String, f64>,
}

/// Runs the whole pipeline of `config`; returns the before/after comparison when GRPO ran to
/// its last step.
pub fn run(config: RunConfig, options: &RunOptions) -> anyhow::Result<Option<Comparison>> {
    let (ranks, root, _scratch) = distributed::open_run(&config, options)?;
    let session = ranks.agree("opening the run", Session::open(config, &root))?;
    let start_model = ranks.agree("preparing the model", session.prepare_model())?;
    ranks.ensure_same(
        "the starting model's tokenizer",
        &std::fs::read(start_model.join("tokenizer.json")).unwrap_or_default(),
    )?;
    let start_model = match &session.config.sft {
        Some(_) => session.supervised(&start_model, &session.dir.root().join("sft"))?,
        None => start_model,
    };
    session.grpo(&start_model, options)
}

/// Runs only the supervised warm-start of `config` into `out`; returns the trained model's
/// directory.
pub fn run_sft(config: RunConfig, out: &Path) -> anyhow::Result<PathBuf> {
    if config.sft.is_none() {
        bail!("the config has no `sft` section; add `sft: (steps: …)` to warm-start");
    }
    let session = Session::open(config, out)?;
    let start = session.prepare_model()?;
    session.supervised(&start, out)
}

/// Loads a policy for training from a model directory.
fn load_policy(
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
fn trainable(policy: &Policy) -> Vec<(String, Tensor)> {
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
/// `logging.keep_checkpoints`.
fn save_checkpoint(
    dir: &RunDir,
    state: &TrainerState,
    config: &RunConfig,
    policy: &Policy,
    opt: &AdamW,
) -> anyhow::Result<PathBuf> {
    dir.write_checkpoint(state, config.logging.keep_checkpoints, |d| {
        save_weights(policy, d)?;
        opt.save(&d.join("optimizer.safetensors"))
    })
}

/// Loads a checkpoint's adapters into a policy built with the same `LoRA` config.
fn load_adapters(policy: &Policy, checkpoint: &Path) -> anyhow::Result<()> {
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

/// The progress-bar look every long stage shares.
pub(crate) fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

/// Rooms per generation call in evaluation; with several ranks each evaluates whole calls.
const EVAL_ROOMS_PER_CALL: usize = 32;

/// Plays one greedy (or low-temperature) episode per room and returns each room's outcome;
/// `first_call` is the index of the rooms' first generation call among the whole evaluation's,
/// which seeds its sampling.
pub fn evaluate(
    policy: &Policy,
    scorer: &Scorer<'_>,
    rooms: &[Room],
    first_call: usize,
    config: &RunConfig,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<RoomOutcome>> {
    let settings = RolloutSettings {
        group_size: 1,
        episode: EpisodeConfig {
            max_turns: config.eval.max_turns,
            ..config.episode()
        },
        sampling: SamplingParams {
            greedy: config.eval.temperature <= 0.0,
            temperature: config.eval.temperature.max(1e-6),
            top_p: config.generation.top_p,
            max_new_tokens: config.generation.max_new_tokens,
            stop_tokens: policy.stop_tokens()?,
            suppress_tokens: policy.vision_tokens()?,
            seed: mix(config.seed, 0xE7A1),
            ..SamplingParams::default()
        },
        rooms_per_call: EVAL_ROOMS_PER_CALL,
        first_chunk: first_call,
        save_images: None,
    };
    let (trajectories, _) = rollout(policy, scorer, rooms, &settings, progress)?;
    Ok(trajectories
        .into_iter()
        .map(|t| {
            let mut turns = t.turns.into_iter().map(|turn| TurnOutcome {
                assessment: turn.prepared.assessment,
                reward: turn.scored.total,
            });
            let first = turns.next().expect("every episode plays a turn");
            let last = turns.last().unwrap_or_else(|| first.clone());
            RoomOutcome { first, last }
        })
        .collect())
}

impl Session {
    pub(crate) fn open(config: RunConfig, root: &Path) -> anyhow::Result<Self> {
        let dir = RunDir::create_with_config(root, &config.to_ron()?)?;
        let device = distributed::current().device(config.model.device.device()?);
        let rewards = config.reward_set("the run config's rewards")?;
        let renderer = RenderThread::spawn()?;
        let views = Views {
            views: config.env.views.clone(),
            size: config.env.image_size,
        };
        let data = prepare_data(&config, root)?;
        tch::manual_seed(config.seed as i64);
        Ok(Self {
            config,
            dir,
            data,
            rewards,
            renderer,
            views,
            device,
            progress: MultiProgress::new(),
        })
    }

    fn scorer(&self) -> Scorer<'_> {
        Scorer {
            rewards: &self.rewards,
            renderer: &self.renderer,
            views: &self.views,
        }
    }

    fn split(&self, name: &str) -> anyhow::Result<(Split, &[Room])> {
        let split = Split::from_name(name)
            .with_context(|| format!("data: unknown split `{name}` (train, val or test)"))?;
        let rooms = self.data.split(split);
        if rooms.is_empty() {
            bail!("data: the {name} split has no rooms");
        }
        Ok((split, rooms))
    }

    fn eval_rooms(&self) -> anyhow::Result<&[Room]> {
        let (_, rooms) = self.split(&self.config.data.eval_split)?;
        let n = match self.config.eval.rooms {
            0 => rooms.len(),
            n => n.min(rooms.len()),
        };
        Ok(&rooms[..n])
    }

    /// The starting model directory: the configured checkpoint, or a preset built (once) in the
    /// run directory with a tokenizer trained on this run's rooms.
    pub(crate) fn prepare_model(&self) -> anyhow::Result<PathBuf> {
        if let ModelSource::Checkpoint(dir) = &self.config.model.source {
            return Ok(dir.clone());
        }
        let dir = self.model_init();
        if dir.join("config.json").exists() {
            return Ok(dir);
        }
        let (split, rooms) = self.split(&self.config.data.train_split)?;
        let layouts = self.data.layouts.get(&split).map_or(&[][..], Vec::as_slice);
        let corpus = tokenizer_corpus(rooms, layouts, &self.config.episode());
        let tmp = self.dir.root().join(".model-init.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let pixels = i64::from(self.config.env.image_size).pow(2);
        match &self.config.model.source {
            ModelSource::Tiny(settings) => settings
                .preset(self.config.env.image_size)
                .write_checkpoint(&tmp, &corpus, self.config.seed),
            _ => TinyPreset {
                max_pixels: pixels,
                ..TinyPreset::qwen2_5_vl_3b()
            }
            .write_files(&tmp, &corpus)
            .map(drop),
        }
        .context("building the model")?;
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("moving the model into {}", dir.display()))?;
        tracing::info!("built the model in {}", dir.display());
        Ok(dir)
    }

    fn model_init(&self) -> PathBuf {
        self.dir.root().join("model-init")
    }

    /// Where the parameters of the model in `dir` come from: a random preset's starting model
    /// has none on disk.
    fn weights_of(&self, dir: &Path) -> Weights {
        match self.config.model.source {
            ModelSource::RandomQwen2_5Vl3b if dir == self.model_init() => Weights::Random {
                seed: self.config.seed,
                std: TinyPreset::qwen2_5_vl_3b().init_std,
            },
            _ => Weights::Checkpoint,
        }
    }

    /// Supervised warm-start into `out` (resumed when it has checkpoints); returns the trained
    /// model's directory.
    fn supervised(&self, start: &Path, out: &Path) -> anyhow::Result<PathBuf> {
        let cfg = self.config.sft.clone().expect("checked by the caller");
        let dir = RunDir::create(out)?;
        let mut step = 0;
        let mut elapsed = 0.0;
        let mut model_dir = start.to_path_buf();
        if let Some((checkpoint, state)) = dir.latest_checkpoint()? {
            model_dir = checkpoint.join("model");
            step = state.step;
            elapsed = state.elapsed;
            if step >= cfg.steps {
                tracing::info!("supervised warm-start already done ({step} steps)");
                return Ok(model_dir);
            }
        }
        // Steps logged after the last checkpoint (or before the first) by a killed session are
        // redone.
        dir.truncate_metrics(step)?;
        let mut full = self.config.clone();
        // Supervised training always writes whole models, so GRPO can start from them.
        full.model.finetune = Finetune::Full;
        let policy = load_policy(&model_dir, &full, self.device, self.weights_of(&model_dir))?;
        let mut opt = AdamW::new(trainable(&policy));
        if step > 0 {
            opt.load(
                &model_dir
                    .parent()
                    .expect("in a checkpoint")
                    .join("optimizer.safetensors"),
            )?;
        }
        let (split, rooms) = self.split(&self.config.data.train_split)?;
        let layouts = self.data.layouts.get(&split).map_or(&[][..], Vec::as_slice);
        if layouts.is_empty() {
            bail!(
                "sft: the {} split has no reference layouts; run `metaspatial-rl data solve` on the dataset",
                split.name()
            );
        }
        let by_id: BTreeMap<&str, &ReferenceLayout> =
            layouts.iter().map(|l| (l.room.as_str(), l)).collect();
        let pairs: Vec<(&Room, &ReferenceLayout)> = rooms
            .iter()
            .filter_map(|r| by_id.get(r.id.as_str()).map(|l| (r, *l)))
            .collect();
        let build = Instant::now();
        let examples = sft::examples(
            &policy,
            &self.renderer,
            &self.views,
            &pairs,
            &self.config.episode(),
            cfg.repair_turns,
            self.config.seed,
        )?;
        if examples.is_empty() {
            bail!("sft: no room of the training split has a valid reference layout");
        }
        tracing::info!(
            "supervised warm-start: {} examples from {} rooms (built in {:.1} s)",
            examples.len(),
            pairs.len(),
            build.elapsed().as_secs_f64()
        );
        let bar = self.progress.add(ProgressBar::new(cfg.steps));
        bar.set_style(bar_style(
            "sft  [{bar:30}] {pos}/{len} steps  {msg}  {elapsed_precise} (eta {eta})",
        ));
        bar.set_position(step);
        let session_start = Instant::now();
        let mut order = EpochOrder::new(examples.len(), mix(self.config.seed, 0x5F7));
        while step < cfg.steps {
            step += 1;
            let t0 = Instant::now();
            let batch: Vec<&crate::update::Sample> = (0..cfg.batch_size as u64)
                .map(|k| &examples[order.at((step - 1) * cfg.batch_size as u64 + k)])
                .collect();
            let lr = cfg.optimiser.lr_at(step, cfg.steps);
            let stats = sft::step(&policy, &mut opt, &batch, &cfg.optimiser, lr)?;
            let seconds = t0.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.3}", stats.loss));
            bar.inc(1);
            dir.append_metrics(&MetricsLine {
                step,
                elapsed: elapsed + session_start.elapsed().as_secs_f64(),
                values: BTreeMap::from([
                    ("loss".to_owned(), stats.loss),
                    ("grad_norm".to_owned(), stats.grad_norm),
                    ("lr".to_owned(), lr),
                    ("tokens_per_s".to_owned(), stats.tokens as f64 / seconds),
                    ("time/train".to_owned(), seconds),
                ]),
            })?;
            let last = step == cfg.steps;
            if last
                || step % self.config.logging.checkpoint_every == 0
                || INTERRUPTED.load(Ordering::SeqCst)
            {
                let state = TrainerState {
                    step,
                    elapsed: elapsed + session_start.elapsed().as_secs_f64(),
                    seed: self.config.seed,
                    rooms_seen: step * cfg.batch_size as u64,
                    bad_steps_in_a_row: 0,
                    base_model: None,
                };
                save_checkpoint(&dir, &state, &self.config, &policy, &opt)?;
                if INTERRUPTED.load(Ordering::SeqCst) && !last {
                    bail!(
                        "interrupted: checkpoint written at supervised step {step}; rerun with --resume"
                    );
                }
            }
        }
        bar.finish_and_clear();
        Ok(dir.checkpoint_dir(cfg.steps).join("model"))
    }

    /// Whether GRPO evaluates after `step` (the last step's evaluation is the final one).
    fn evaluation_due(&self, step: u64) -> bool {
        let every = self.config.logging.eval_every;
        every > 0 && step > 0 && step.is_multiple_of(every) && step < self.config.algorithm.steps
    }

    fn evaluate_at(&self, policy: &Policy, step: u64) -> anyhow::Result<(EvalReport, PerRoom)> {
        let rooms = self.eval_rooms()?;
        let bar = self.progress.add(ProgressBar::new(0));
        bar.set_style(bar_style(
            "eval [{bar:30}] {pos}/{len} answers  {elapsed_precise}",
        ));
        let ranks = distributed::current();
        let (shard, first_call) = ranks.call_share(rooms.len(), EVAL_ROOMS_PER_CALL);
        let shard = &rooms[shard];
        let outcomes = if shard.is_empty() {
            Vec::new()
        } else {
            evaluate(
                policy,
                &self.scorer(),
                shard,
                first_call,
                &self.config,
                &bar,
            )?
        };
        let outcomes = ranks.gather_outcomes(outcomes)?;
        bar.finish_and_clear();
        let source = format!("{} split", self.config.data.eval_split);
        let report = eval::report(step, &source, rooms, &outcomes, self.config.eval.max_turns);
        self.dir.write_eval(&report)?;
        let per_room = PerRoom::from_outcomes(&outcomes);
        self.dir.write_per_room(step, &per_room)?;
        Ok((report, per_room))
    }

    /// The training rooms of 1-based `step`: the data cursor walks a fresh permutation of the
    /// split every epoch.
    fn rooms_of_step(&self, step: u64) -> anyhow::Result<Vec<Room>> {
        let (_, rooms) = self.split(&self.config.data.train_split)?;
        let per_step = self.config.algorithm.rooms_per_step as u64;
        let mut order = EpochOrder::new(rooms.len(), self.config.seed);
        let out = (0..per_step)
            .map(|k| rooms[order.at((step - 1) * per_step + k)].clone())
            .collect();
        Ok(out)
    }

    /// Loads the policy (from `start_model`, or the checkpoint `resume_from`), the frozen
    /// reference when the KL term needs one, and the optimiser.
    pub(crate) fn learner(
        &self,
        start_model: &Path,
        resume_from: Option<&Path>,
    ) -> anyhow::Result<Learner> {
        let config = &self.config;
        let lora = matches!(config.model.finetune, Finetune::Lora(_));
        let start = |dir: &Path| load_policy(dir, config, self.device, self.weights_of(dir));
        let policy = match resume_from {
            Some(dir) if !lora => start(&dir.join("model"))?,
            Some(dir) => {
                let p = start(start_model)?;
                load_adapters(&p, dir)?;
                p
            }
            None => start(start_model)?,
        };
        let reference = (config.algorithm.kl_coef != 0.0 && !lora)
            .then(|| {
                Policy::load(
                    start_model,
                    &LoadOptions {
                        device: if config.model.reference_on_cpu {
                            tch::Device::Cpu
                        } else {
                            self.device
                        },
                        kind: config.model.dtype.kind(),
                        weights: self.weights_of(start_model),
                        ..LoadOptions::default()
                    },
                )
            })
            .transpose()
            .context("loading the frozen reference model")?;
        let mut opt = AdamW::new(trainable(&policy));
        if let Some(dir) = resume_from {
            opt.load(&dir.join("optimizer.safetensors"))?;
        }
        tracing::info!(
            "policy: {} trainable parameters on {:?}",
            opt.numel(),
            self.device
        );
        Ok(Learner {
            policy,
            reference,
            opt,
        })
    }

    /// Plays 1-based `step`'s rooms G times and updates the policy on them.
    pub(crate) fn grpo_step(
        &self,
        learner: &mut Learner,
        step: u64,
        save_images: Option<(PathBuf, String)>,
        bar: &ProgressBar,
    ) -> anyhow::Result<StepOutcome> {
        let config = &self.config;
        let algorithm = &config.algorithm;
        let policy = &learner.policy;
        let step_start = Instant::now();
        tch::manual_seed(mix(config.seed, step) as i64);
        let ranks = distributed::current();
        let share = ranks.rollout_share(
            &self.rooms_of_step(step)?,
            config.distributed.rollout_chunks,
        );
        let rooms = share.rooms;
        let settings = RolloutSettings {
            group_size: algorithm.group_size,
            episode: config.episode(),
            sampling: SamplingParams {
                temperature: config.generation.temperature,
                top_p: config.generation.top_p,
                max_new_tokens: config.generation.max_new_tokens,
                stop_tokens: policy.stop_tokens()?,
                suppress_tokens: policy.vision_tokens()?,
                seed: mix(config.seed, step),
                ..SamplingParams::default()
            },
            rooms_per_call: share.rooms_per_call,
            first_chunk: share.first_chunk,
            save_images,
        };
        // With fewer rollout chunks than ranks some ranks play none (and still join the update).
        let (trajectories, times) = if rooms.is_empty() {
            (Vec::new(), RolloutTimes::default())
        } else {
            rollout(policy, &self.scorer(), &rooms, &settings, bar)?
        };
        let rollout_seconds = step_start.elapsed().as_secs_f64();
        let advantages = update::advantages(
            &trajectories,
            algorithm.group_size,
            algorithm,
            &policy.tokenizer,
        )?;
        let samples = update::samples(&trajectories, &advantages, algorithm.group_size, algorithm);
        let lr = config.optimiser.lr_at(step, algorithm.steps);
        let train_start = Instant::now();
        let mut stats = guard_oom(&config.optimiser, || {
            update::update(
                policy,
                learner.reference.as_ref(),
                &mut learner.opt,
                &samples,
                &update::UpdateSettings {
                    algorithm,
                    optimiser: &config.optimiser,
                    temperature: config.generation.temperature,
                    lr,
                },
            )
        })?;
        let train_seconds = train_start.elapsed().as_secs_f64();
        let step_seconds = step_start.elapsed().as_secs_f64();
        let columns = StepColumns::concat(
            ranks.gather(StepColumns::of(&trajectories, &advantages.zero_variance))?,
        );
        (stats.tokens, stats.sequences) = ranks.totals(stats.tokens, stats.sequences)?;
        let mut values = step_metrics(&columns, &stats);
        let tokens = times.prompt_tokens + times.response_tokens;
        values.extend([
            ("lr".to_owned(), lr),
            ("tokens_per_s".to_owned(), tokens as f64 / step_seconds),
            ("tokens/prompt".to_owned(), times.prompt_tokens as f64),
            ("tokens/response".to_owned(), times.response_tokens as f64),
            ("time/generate".to_owned(), times.generate),
            ("time/assess".to_owned(), times.assess),
            ("time/render".to_owned(), times.render),
            ("time/reward".to_owned(), times.reward),
            ("time/waiting".to_owned(), times.waiting),
            ("time/rollout".to_owned(), rollout_seconds),
            ("time/train".to_owned(), train_seconds),
            ("time/step".to_owned(), step_seconds),
        ]);
        ranks.reduce_step_values(&mut values)?;
        Ok(StepOutcome {
            first_room: share.first_room,
            rooms,
            trajectories,
            advantages,
            stats,
            values,
        })
    }

    fn grpo(&self, start_model: &Path, options: &RunOptions) -> anyhow::Result<Option<Comparison>> {
        let config = &self.config;
        let algorithm = &config.algorithm;
        let ranks = distributed::current();
        let resume_from = ranks.latest_checkpoint(&self.dir, &options.out)?;
        let (mut step, elapsed, mut bad_in_a_row) =
            resume_from.as_ref().map_or((0, 0.0, 0), |(_, s)| {
                (s.step, s.elapsed, s.bad_steps_in_a_row)
            });
        let lora = matches!(config.model.finetune, Finetune::Lora(_));
        let mut learner = ranks.agree(
            "loading the policy",
            self.learner(start_model, resume_from.as_ref().map(|(d, _)| d.as_path())),
        )?;
        ranks.broadcast_from_leader(learner.parameters())?;
        // Steps logged after the last checkpoint by a killed session are redone.
        self.dir.truncate_metrics(step)?;
        let before = if let Some((dir, _)) = &resume_from {
            tracing::info!("resumed from {} (step {step})", dir.display());
            // The evaluation that follows a checkpoint is lost when the run is killed during it.
            if self.evaluation_due(step)
                && ranks.any(ranks.is_leader() && !self.dir.has_eval(step))?
            {
                self.evaluate_at(&learner.policy, step)?;
            }
            None
        } else {
            tracing::info!("evaluating before GRPO");
            Some(self.evaluate_at(&learner.policy, 0)?)
        };
        let steps_bar = self.progress.add(ProgressBar::new(algorithm.steps));
        steps_bar.set_style(bar_style(
            "grpo [{bar:30}] {pos}/{len} steps  {msg}  {elapsed_precise} (eta {eta})",
        ));
        steps_bar.set_position(step);
        let rollout_bar = self.progress.add(ProgressBar::new(0));
        rollout_bar.set_style(bar_style("     [{bar:30}] {pos}/{len} answers"));
        let session_start = Instant::now();
        let checkpoint = |step: u64, bad: u32, learner: &Learner| -> anyhow::Result<PathBuf> {
            if !ranks.is_leader() {
                return Ok(self.dir.checkpoint_dir(step));
            }
            let state = TrainerState {
                step,
                elapsed: elapsed + session_start.elapsed().as_secs_f64(),
                seed: config.seed,
                rooms_seen: step * algorithm.rooms_per_step as u64,
                bad_steps_in_a_row: bad,
                base_model: lora.then(|| start_model.to_path_buf()),
            };
            save_checkpoint(&self.dir, &state, config, &learner.policy, &learner.opt)
        };
        while step < algorithm.steps {
            step += 1;
            let log_rollouts =
                config.logging.rollouts_every > 0 && step % config.logging.rollouts_every == 0;
            // Only rank 0 writes the run directory: the other ranks' rollouts are logged without
            // their renders.
            let save_images = (log_rollouts && config.logging.rollout_images && ranks.is_leader())
                .then(|| -> anyhow::Result<_> {
                    Ok((
                        self.dir.rollout_image_dir(step)?,
                        format!("rollouts/{}", step_name(step)),
                    ))
                })
                .transpose()?;
            let outcome = self.grpo_step(&mut learner, step, save_images, &rollout_bar)?;
            if outcome.stats.skipped > 0 {
                bad_in_a_row += 1;
            } else {
                bad_in_a_row = 0;
            }
            if log_rollouts {
                let mut records = rollout_records(
                    step,
                    &outcome.rooms,
                    &outcome.trajectories,
                    &outcome.advantages.values,
                );
                for r in &mut records {
                    r.group += outcome.first_room;
                }
                let records: Vec<RolloutRecord> = ranks.gather(records)?.concat();
                if ranks.is_leader() {
                    self.dir.write_rollouts(step, &records)?;
                }
            }
            let values = outcome.values;
            let mean_reward = values.get("reward/total/mean").copied().unwrap_or(0.0);
            self.dir.append_metrics(&MetricsLine {
                step,
                elapsed: elapsed + session_start.elapsed().as_secs_f64(),
                values,
            })?;
            steps_bar.set_message(format!("reward {mean_reward:.3}"));
            steps_bar.inc(1);
            if bad_in_a_row >= MAX_BAD_STEPS {
                let dir = checkpoint(step, bad_in_a_row, &learner)?;
                bail!(
                    "{MAX_BAD_STEPS} non-finite losses in a row at step {step}; checkpoint in {} — \
                     lower optimiser.lr or raise max_grad_norm",
                    dir.display()
                );
            }
            let interrupted = ranks.any(INTERRUPTED.load(Ordering::SeqCst))?;
            let stop_here = options.stop_after == Some(step);
            if step == algorithm.steps
                || step % config.logging.checkpoint_every == 0
                || interrupted
                || stop_here
            {
                checkpoint(step, bad_in_a_row, &learner)?;
            }
            if interrupted {
                bail!("interrupted: checkpoint written at step {step}; rerun with --resume");
            }
            if stop_here {
                return Ok(None);
            }
            if self.evaluation_due(step) {
                self.evaluate_at(&learner.policy, step)?;
            }
        }
        steps_bar.finish_and_clear();
        rollout_bar.finish_and_clear();
        tracing::info!("evaluating after GRPO");
        let (after, after_rooms) = self.evaluate_at(&learner.policy, step)?;
        if !ranks.is_leader() {
            return Ok(None);
        }
        let (before, before_rooms) = match before {
            Some(b) => b,
            None => self.dir.read_eval(0)?,
        };
        Ok(Some(Comparison {
            before,
            after,
            valid_difference: eval::paired_difference(&before_rooms.valid, &after_rooms.valid),
            reward_difference: eval::paired_difference(&before_rooms.reward, &after_rooms.reward),
        }))
    }
}

/// Runs the update, turning a CUDA out-of-memory panic into an error naming the setting to
/// lower.
fn guard_oom(
    optimiser: &OptimiserConfig,
    f: impl FnOnce() -> anyhow::Result<UpdateStats>,
) -> anyhow::Result<UpdateStats> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            if message.contains("out of memory") {
                bail!(
                    "the GPU ran out of memory in the update with optimiser.micro_batch = {}; \
                     lower it (gradients accumulate, results stay the same): {message}",
                    optimiser.micro_batch
                );
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// The data cursor: position p of the stream is item `order_e[p mod n]` of epoch e = p / n,
/// each epoch a fresh permutation drawn from (seed, e).
struct EpochOrder {
    n: usize,
    seed: u64,
    epoch: Option<u64>,
    order: Vec<usize>,
}

impl EpochOrder {
    fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            seed,
            epoch: None,
            order: Vec::new(),
        }
    }

    fn at(&mut self, position: u64) -> usize {
        let n = self.n as u64;
        let epoch = position / n;
        if self.epoch != Some(epoch) {
            self.order = (0..self.n).collect();
            Rng::new(mix(self.seed, epoch)).shuffle(&mut self.order);
            self.epoch = Some(epoch);
        }
        self.order[(position % n) as usize]
    }
}

/// What the step's metrics are computed from, per turn and per trajectory: the ranks gather
/// theirs, in rank order (the order of the step's rooms), before anything is averaged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StepColumns {
    /// Reward components (and `total`) of every turn, by name.
    columns: BTreeMap<String, Vec<f64>>,
    /// Response tokens of every turn.
    lengths: Vec<f64>,
    /// Turns cut at `max_new_tokens`.
    truncated: usize,
    /// Total reward of every trajectory's last turn.
    final_rewards: Vec<f64>,
    /// 1 where a trajectory's last layout is a valid scene.
    final_valid: Vec<f64>,
    /// Turns of every trajectory.
    turns: Vec<f64>,
    /// Whether each group's rewards were all equal.
    zero_variance: Vec<bool>,
}

impl StepColumns {
    fn of(trajectories: &[Trajectory], zero_variance: &[bool]) -> Self {
        let mut out = Self {
            zero_variance: zero_variance.to_vec(),
            ..Self::default()
        };
        for t in trajectories {
            for turn in &t.turns {
                out.columns
                    .entry("total".to_owned())
                    .or_default()
                    .push(turn.scored.total);
                for c in &turn.scored.components {
                    out.columns.entry(c.name.clone()).or_default().push(c.value);
                }
                out.lengths.push(turn.response_tokens.len() as f64);
                out.truncated += usize::from(turn.finish == FinishReason::Length);
            }
            if let Some(last) = t.turns.last() {
                out.final_rewards.push(last.scored.total);
                out.final_valid
                    .push(f64::from(u8::from(last.prepared.assessment.valid_scene)));
            }
            out.turns.push(t.turns.len() as f64);
        }
        out
    }

    /// The ranks' columns end to end.
    fn concat(parts: Vec<Self>) -> Self {
        let mut out = Self::default();
        for part in parts {
            for (name, values) in part.columns {
                out.columns.entry(name).or_default().extend(values);
            }
            out.lengths.extend(part.lengths);
            out.truncated += part.truncated;
            out.final_rewards.extend(part.final_rewards);
            out.final_valid.extend(part.final_valid);
            out.turns.extend(part.turns);
            out.zero_variance.extend(part.zero_variance);
        }
        out
    }
}

/// Per-step scalars of the rollouts and the update.
fn step_metrics(c: &StepColumns, stats: &UpdateStats) -> BTreeMap<String, f64> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let std = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
    };
    let mut out = BTreeMap::new();
    for (name, values) in &c.columns {
        out.insert(format!("reward/{name}/mean"), mean(values));
        out.insert(format!("reward/{name}/std"), std(values));
    }
    out.insert("final_turn_reward".to_owned(), mean(&c.final_rewards));
    out.insert("valid_scene/final".to_owned(), mean(&c.final_valid));
    out.insert("turns/mean".to_owned(), mean(&c.turns));
    out.insert("response_length".to_owned(), mean(&c.lengths));
    out.insert(
        "truncated_fraction".to_owned(),
        c.truncated as f64 / c.lengths.len().max(1) as f64,
    );
    out.insert(
        "zero_variance_groups".to_owned(),
        c.zero_variance.iter().filter(|z| **z).count() as f64 / c.zero_variance.len().max(1) as f64,
    );
    out.insert("loss".to_owned(), stats.last.loss);
    out.insert("policy_loss".to_owned(), stats.last.policy_loss);
    out.insert("kl".to_owned(), stats.last.kl);
    out.insert("entropy".to_owned(), stats.last.entropy);
    out.insert("clip_fraction".to_owned(), stats.last.clip_fraction);
    out.insert("max_log_ratio".to_owned(), stats.last.max_log_ratio);
    out.insert("grad_norm".to_owned(), stats.grad_norm);
    out.insert("trained_sequences".to_owned(), stats.sequences as f64);
    out.insert("trained_tokens".to_owned(), stats.tokens as f64);
    out.insert("skipped_updates".to_owned(), stats.skipped as f64);
    out
}

/// The step's trajectories as replay records.
fn rollout_records(
    step: u64,
    rooms: &[Room],
    trajectories: &[Trajectory],
    advantages: &[Vec<f64>],
) -> Vec<RolloutRecord> {
    trajectories
        .iter()
        .zip(advantages)
        .map(|(t, adv)| {
            let room = &rooms[t.room];
            RolloutRecord {
                step,
                group: t.room,
                sample: t.sample,
                room: RoomRecord {
                    id: room.id.clone(),
                    size: [room.size.length, room.size.width, room.size.height],
                    description: room.description.clone(),
                    objects: room
                        .objects
                        .iter()
                        .map(|o| ObjectRecord {
                            id: o.id.clone(),
                            category: o.category.clone(),
                            size: [o.size.length, o.size.width, o.size.height],
                        })
                        .collect(),
                },
                reward: t.turns.last().map_or(0.0, |x| x.scored.total),
                turns: t
                    .turns
                    .iter()
                    .zip(adv)
                    .enumerate()
                    .map(|(i, (turn, a))| turn_record(i + 1, turn, *a))
                    .collect(),
            }
        })
        .collect()
}

fn turn_record(turn: usize, t: &crate::rollout::Turn, advantage: f64) -> TurnRecord {
    let a = &t.prepared.assessment;
    let (reasoning, answer) = split_response(&t.response);
    TurnRecord {
        turn,
        prompt: t.prompt_text.clone(),
        response: t.response.clone(),
        reasoning,
        answer,
        format_error: a.format_error.clone(),
        prompt_tokens: t.prompt.tokens.len(),
        response_tokens: t.response_tokens.len(),
        finish: match t.finish {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
        .to_owned(),
        reward: t.scored.total,
        advantage,
        components: t
            .scored
            .components
            .iter()
            .map(|c| (c.name.clone(), c.weighted))
            .collect(),
        valid: a.valid_scene,
        poses: a
            .layout
            .poses
            .iter()
            .map(|p| PoseRecord {
                id: p.id.clone(),
                position: p.position,
                rotation: p.rotation,
            })
            .collect(),
        violations: Violations {
            collisions: a
                .collisions
                .iter()
                .map(|c| CollisionRecord {
                    a: c.a.clone(),
                    b: c.b.clone(),
                    depth: c.depth,
                })
                .collect(),
            out_of_bounds: a
                .out_of_bounds
                .iter()
                .map(|o| OutOfBoundsRecord {
                    id: o.id.clone(),
                    fraction: o.fraction_outside,
                    boundary: o.boundary.clone(),
                })
                .collect(),
            unsupported: a.unsupported.iter().map(|u| u.id.clone()).collect(),
            unsatisfied_relations: a
                .relations
                .iter()
                .filter(|r| !r.satisfied)
                .map(|r| format!("{} {} {}", r.subject, r.relation, r.object))
                .collect(),
            missing_objects: a.missing_objects.clone(),
        },
        images: t
            .image_paths
            .iter()
            .map(|path| ImageRecord {
                view: view_of(path),
                path: path.clone(),
            })
            .collect(),
    }
}

/// The view name in a saved image's file name (`…-top.png`).
fn view_of(path: &str) -> String {
    path.rsplit('-')
        .next()
        .and_then(|s| s.strip_suffix(".png"))
        .unwrap_or_default()
        .to_owned()
}

/// The `<think>` and `<answer>` parts of a response, when present.
fn split_response(response: &str) -> (Option<String>, Option<String>) {
    let between = |open: &str, close: &str| {
        let start = response.find(open)? + open.len();
        let end = response[start..]
            .find(close)
            .map_or(response.len(), |e| start + e);
        Some(response[start..end].trim().to_owned())
    };
    (
        between("<think>", "</think>"),
        between("<answer>", "</answer>"),
    )
}

/// Rooms prepared for the run: the configured dataset, or rooms generated and solved (once)
/// in the run directory.
fn prepare_data(config: &RunConfig, root: &Path) -> anyhow::Result<Dataset> {
    let settings = match &config.data.source {
        DataSource::Dir(dir) => {
            return Dataset::open(dir)
                .with_context(|| format!("opening the dataset {}", dir.display()));
        }
        DataSource::Generate(s) => s,
    };
    let dir = root.join("data");
    if dir.join("manifest.json").exists() {
        return Dataset::open(&dir).with_context(|| format!("opening {}", dir.display()));
    }
    let cfg = GenConfig {
        seed: settings.seed,
        min_objects: settings.min_objects,
        max_objects: settings.max_objects,
    };
    let bar = ProgressBar::new(settings.rooms);
    bar.set_style(bar_style(
        "data [{bar:30}] {pos}/{len} rooms generated and solved",
    ));
    let solver = SolverConfig::default();
    let made: Vec<(Room, ReferenceLayout)> = (0..settings.rooms)
        .into_par_iter()
        .map(|i| {
            let room = generate(&cfg, i);
            let layout = ReferenceLayout::from_solution(&room, &solve(&room, &solver));
            bar.inc(1);
            (room, layout)
        })
        .collect();
    bar.finish_and_clear();
    let mut data = Dataset::new(Manifest::new(
        "procedural",
        Some(GeneratorInfo {
            version: GENERATOR_VERSION.to_owned(),
            seed: settings.seed,
            min_objects: settings.min_objects,
            max_objects: settings.max_objects,
        }),
    ));
    for (i, (room, layout)) in made.into_iter().enumerate() {
        let split = Split::for_index(i as u64);
        data.rooms.entry(split).or_default().push(room);
        data.layouts.entry(split).or_default().push(layout);
    }
    let tmp = root.join(".data.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    data.write(&tmp)?;
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("moving the dataset into {}", dir.display()))?;
    tracing::info!("generated {} rooms into {}", settings.rooms, dir.display());
    Ok(data)
}

/// Text the tiny model's tokenizer learns from: prompts, reference answers and feedback of the
/// training rooms.
fn tokenizer_corpus(
    rooms: &[Room],
    layouts: &[ReferenceLayout],
    episode: &EpisodeConfig,
) -> Vec<String> {
    let mut corpus = Vec::new();
    let mut rng = Rng::new(0x70C);
    for (room, layout) in rooms.iter().zip(layouts).take(400) {
        corpus.push(episode.prompt.prompt(room));
        let reference = layout.layout();
        corpus.push(sft::answer_text(&reference));
        let mut play = metaspatial_env::Episode::new(room.clone(), episode.clone());
        play.reset();
        let step = play.step(&sft::answer_text(&sft::corrupt(room, &reference, &mut rng)));
        if let Some(metaspatial_env::Message { content, .. }) = step.observation.messages.last() {
            for c in content {
                if let metaspatial_env::episode::Content::Text(t) = c {
                    corpus.push(t.clone());
                }
            }
        }
    }
    corpus
}

/// Formats the before/after comparison.
#[must_use]
pub fn format_comparison(c: &Comparison, run_dir: &Path) -> String {
    let mut out = eval::format_table(&[("before GRPO", &c.before), ("after GRPO", &c.after)]);
    let verdict = |(d, se): (f64, f64)| {
        let z = if se > 0.0 {
            d / se
        } else if d == 0.0 {
            0.0
        } else {
            f64::INFINITY * d.signum()
        };
        format!(
            "{d:+.3} ± {se:.3} (paired SE; {z:.1} SE{})",
            if z > 2.0 { ", improved" } else { "" }
        )
    };
    let _ = write!(
        out,
        "\nvalid-scene rate change: {}\nmean total reward change: {}\n\nbrowse the rollouts: metaspatial-rl replay {}\n",
        verdict(c.valid_difference),
        verdict(c.reward_difference),
        run_dir.display()
    );
    out
}
