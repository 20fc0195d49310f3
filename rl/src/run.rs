//! A whole run: rooms and model prepared, optional supervised warm-start, evaluation before,
//! GRPO steps with metrics, rollouts and checkpoints, evaluation after, and the comparison.
//!
//! One GRPO step reads top to bottom in `Session::grpo_step`: the step's rooms, the rollouts
//! (`rollout`), the advantages and update (`update`) and the step's metrics
//! (`metrics`). What the loops around it share — metrics lines, checkpoints, Ctrl-C —
//! is `ledger`; every random stream comes from `seeds`, so a checkpoint's step
//! is its whole random state and a resumed run on the CPU reproduces the uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar};
use metaspatial_env::data::dataset::{Dataset, ReferenceLayout, Split};
use metaspatial_env::data::procedural;
use metaspatial_env::data::rng::Rng;
use metaspatial_env::data::solver::SolverConfig;
use metaspatial_env::{EpisodeConfig, Room};
use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::{LoadOptions, Policy, SamplingParams, Weights};
use metaspatial_replay::record::{EvalReport, RolloutRecord, RunLayout};
use tch::Tensor;

use crate::checkpoint::{
    geometry_params, load_adapters, load_policy, param_groups, world_model_params,
};
use crate::config::{DataSource, Finetune, ModelSource, RunConfig};
use crate::distributed;
use crate::eval::{self, Comparison, EVAL_ROOMS_PER_CALL, PerRoom, evaluate};
use crate::ledger::{Ledger, LedgerSettings};
use crate::metrics::{StepColumns, step_metrics};
use crate::optim::AdamW;
use crate::progress::bar_style;
use crate::records::rollout_records;
use crate::rollout::{RenderAndRewards, RolloutSettings, RolloutTimes, Trajectory, rollout};
use crate::rundir::RunDir;
use crate::seeds::{self, EpochOrder};
use crate::sft;
use crate::update::{self, UpdateStats, guard_oom};

/// Set by Ctrl-C: the run checkpoints at the end of the current step and stops.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Non-finite updates in a row after which the run checkpoints and stops.
pub const MAX_BAD_STEPS: u32 = 3;

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
    scoring: RenderAndRewards,
    /// What evaluation draws with, when `eval.views` differ from the training views.
    eval_scoring: Option<RenderAndRewards>,
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
        if let Some(connector) = self.policy.model.geometry() {
            out.extend(geometry_params(connector));
        }
        if let Some(head) = &self.policy.world_model {
            out.extend(world_model_params(head));
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
    let tokenizer_path = start_model.join("tokenizer.json");
    let tokenizer = ranks.agree(
        "reading the starting model's tokenizer",
        std::fs::read(&tokenizer_path)
            .with_context(|| format!("reading the tokenizer {}", tokenizer_path.display())),
    )?;
    ranks.ensure_same("the starting model's tokenizer", &tokenizer)?;
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

impl Session {
    pub(crate) fn open(config: RunConfig, root: &Path) -> anyhow::Result<Self> {
        let dir = RunDir::create_with_config(root, &config.to_ron()?)?;
        let device = distributed::current().device(config.model.device.device()?);
        let origin = "the run config's rewards";
        let scoring = RenderAndRewards::from_config(&config, origin)?;
        let eval_scoring = config
            .eval
            .views
            .is_some()
            .then(|| RenderAndRewards::for_evaluation(&config, origin))
            .transpose()?;
        let data = prepare_data(&config, root)?;
        tch::manual_seed(config.seed as i64);
        Ok(Self {
            config,
            dir,
            data,
            scoring,
            eval_scoring,
            device,
            progress: MultiProgress::new(),
        })
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
            _ => RandomModel {
                max_pixels: pixels,
                ..RandomModel::qwen2_5_vl_3b()
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
                std: RandomModel::qwen2_5_vl_3b().init_std,
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
        let mut opt = AdamW::with_groups(param_groups(&policy, &full));
        if step > 0 {
            opt.load(
                &model_dir
                    .parent()
                    .expect("in a checkpoint")
                    .join("optimizer.safetensors"),
            )?;
        }
        let mut learner = Learner {
            policy,
            reference: None,
            opt,
        };
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
        let sft_world = self.config.algorithm.world_model.filter(|w| w.in_sft);
        let build = Instant::now();
        let examples = sft::examples(
            &learner.policy,
            &self.scoring.renderer,
            &self.scoring.views,
            &pairs,
            &self.config.episode(),
            cfg.repair_turns,
            self.config.seed,
            sft_world.map(|w| w.grid),
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
        let ledger = Ledger::start(
            &dir,
            LedgerSettings {
                stage: "supervised step",
                seed: self.config.seed,
                per_step: cfg.batch_size as u64,
                steps: cfg.steps,
                checkpoint_every: self.config.logging.checkpoint_every,
                keep_checkpoints: self.config.logging.keep_checkpoints,
                across_ranks: false,
            },
            elapsed,
        );
        let mut order = EpochOrder::new(examples.len(), seeds::sft_order(self.config.seed));
        while step < cfg.steps {
            step += 1;
            let t0 = Instant::now();
            let batch: Vec<&update::Sample> = (0..cfg.batch_size as u64)
                .map(|k| &examples[order.at((step - 1) * cfg.batch_size as u64 + k)])
                .collect();
            let lr = cfg.optimiser.lr_at(step, cfg.steps);
            let stats = sft::step(
                &learner.policy,
                &mut learner.opt,
                &batch,
                &cfg.optimiser,
                lr,
                sft_world.map(|w| w.weight),
            )?;
            let seconds = t0.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.3}", stats.loss));
            bar.inc(1);
            let mut values = BTreeMap::from([
                ("loss".to_owned(), stats.loss),
                ("grad_norm".to_owned(), stats.grad_norm),
                ("lr".to_owned(), lr),
                ("tokens_per_s".to_owned(), stats.tokens as f64 / seconds),
                ("time/train".to_owned(), seconds),
            ]);
            if let Some(world) = &stats.world_model {
                values.extend(world.logged());
            }
            ledger.log(step, values)?;
            ledger.end_step(step, false, || ledger.checkpoint(step, 0, None, &learner))?;
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
            let scoring = self.eval_scoring.as_ref().unwrap_or(&self.scoring);
            evaluate(policy, scoring, shard, first_call, &self.config, &bar)?
        };
        let outcomes = ranks.gather(outcomes)?.concat();
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
                let mut p = start(start_model)?;
                load_adapters(&mut p, dir)?;
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
        let mut opt = AdamW::with_groups(param_groups(&policy, config));
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
        tch::manual_seed(seeds::step(config.seed, step) as i64);
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
                seed: seeds::step(config.seed, step),
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
            rollout(policy, &self.scoring, &rooms, &settings, bar)?
        };
        let rollout_seconds = step_start.elapsed().as_secs_f64();
        let advantages = update::advantages(
            &trajectories,
            algorithm.group_size,
            algorithm,
            &policy.tokenizer,
        )?;
        let samples = update::samples(
            &trajectories,
            &rooms,
            &advantages,
            algorithm.group_size,
            algorithm,
        );
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
                    world_model_weight: algorithm
                        .world_model
                        .filter(|w| w.in_grpo)
                        .map(|w| w.weight),
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
        let ledger = Ledger::start(
            &self.dir,
            LedgerSettings {
                stage: "step",
                seed: config.seed,
                per_step: algorithm.rooms_per_step as u64,
                steps: algorithm.steps,
                checkpoint_every: config.logging.checkpoint_every,
                keep_checkpoints: config.logging.keep_checkpoints,
                across_ranks: true,
            },
            elapsed,
        );
        let base_model = lora.then_some(start_model);
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
                        RunLayout::rollout_images_relative(step),
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
            ledger.log(step, values)?;
            steps_bar.set_message(format!("reward {mean_reward:.3}"));
            steps_bar.inc(1);
            let checkpoint = || ledger.checkpoint(step, bad_in_a_row, base_model, &learner);
            if bad_in_a_row >= MAX_BAD_STEPS {
                let dir = checkpoint()?;
                bail!(
                    "{MAX_BAD_STEPS} non-finite losses in a row at step {step}; checkpoint in {} — \
                     lower optimiser.lr or raise max_grad_norm",
                    dir.display()
                );
            }
            let stop_here = options.stop_after == Some(step);
            ledger.end_step(step, stop_here, checkpoint)?;
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
            expected: self.config.eval.expect.clone(),
        }))
    }
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
    let bar = ProgressBar::new(settings.rooms);
    bar.set_style(bar_style(
        "data [{bar:30}] {pos}/{len} rooms generated and solved",
    ));
    let mut data = procedural::build(
        settings.rooms,
        &settings.generator(),
        Some(&SolverConfig::default()),
        || {
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
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
