//! Multi-turn rollouts: the policy answers, the environment assesses, the renderer draws, the
//! rewards score, and the renders and feedback go back to the policy for the next turn.
//!
//! Three kinds of work overlap. Generation runs on the calling thread (it owns the tch model).
//! Scoring — parsing and physics on the rayon pool, rewards — runs on a scorer thread, and
//! drawing on a render thread that owns the wgpu device. The rooms of a step are cut into
//! chunks; while chunk c is scored and drawn, chunk c + 1 generates. Chunk c's trajectories
//! travel to the scorer and back by value, so no state is shared between the threads.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use anyhow::{Context, anyhow};
use crossbeam_channel::unbounded;
use indicatif::ProgressBar;
use metaspatial_env::{Assessment, Episode, EpisodeConfig, Observation, Room, StepResult};
use metaspatial_policy::image::ImageProcessorConfig;
use metaspatial_policy::{
    Completion, Content, FinishReason, ImageInput, Message, Policy, SamplingParams, Sequence,
    generate,
};
use metaspatial_render::Camera;
use metaspatial_rewards::{Prepared, RenderedView, RewardContext, RewardSet, Scored};
use rayon::prelude::*;

use crate::config::RunConfig;
use crate::render_thread::{Drawing, RenderThread, ViewFrame, Views};
use crate::seeds;

/// What scoring a turn needs besides the policy: the rewards, and the render thread with the
/// views it draws.
pub struct RenderAndRewards {
    /// The rewards.
    pub rewards: RewardSet,
    /// The render thread.
    pub renderer: RenderThread,
    /// What to draw.
    pub views: Views,
}

impl RenderAndRewards {
    /// The rewards and views of `config` with a started render thread; `origin` names the
    /// config in errors.
    pub fn from_config(config: &RunConfig, origin: &str) -> anyhow::Result<Self> {
        let rewards = config.reward_set(origin)?;
        let renderer = RenderThread::spawn()?;
        Ok(Self {
            rewards,
            renderer,
            views: Views::new(config),
        })
    }

    /// What evaluation draws with: as [`Self::from_config`], but showing `eval.views` when the
    /// config names them instead of `env.views`.
    pub fn for_evaluation(config: &RunConfig, origin: &str) -> anyhow::Result<Self> {
        match &config.eval.views {
            Some(views) => {
                let mut shown = config.clone();
                shown.env.views.clone_from(views);
                Self::from_config(&shown, origin)
            }
            None => Self::from_config(config, origin),
        }
    }
}

/// A render saved with a rollout: its view, the camera that drew it and where it lies.
#[derive(Debug, Clone)]
pub struct SavedImage {
    /// The view's name (`top`, `perspective`).
    pub view: String,
    /// The camera that drew it, to map its pixels to the room and back.
    pub camera: Camera,
    /// Path relative to the run directory.
    pub path: String,
}

/// One turn of a trajectory.
pub struct Turn {
    /// The prompt it answered (tokens and images).
    pub prompt: Sequence,
    /// The text of the last user message of the prompt.
    pub prompt_text: String,
    /// Generated tokens (with the stop token when there is one).
    pub response_tokens: Vec<i64>,
    /// Why generation stopped.
    pub finish: FinishReason,
    /// The response text, its parsed answer and the environment's assessment.
    pub prepared: Prepared,
    /// Reward components and total.
    pub scored: Scored,
    /// This turn's renders that were saved (none when the answer did not parse or images are
    /// not kept), one per view.
    pub images: Vec<SavedImage>,
}

/// One sampled episode of one room.
pub struct Trajectory {
    /// Index of the room in the rollout's room list.
    pub room: usize,
    /// Index of the sample in its group.
    pub sample: usize,
    /// The turns played.
    pub turns: Vec<Turn>,
}

impl Trajectory {
    /// Each turn's total reward.
    #[must_use]
    pub fn rewards(&self) -> Vec<f64> {
        self.turns.iter().map(|t| t.scored.total).collect()
    }
}

/// A trajectory being played: its turns so far and the episode's state.
struct Playing {
    trajectory: Trajectory,
    episode: Episode,
    /// The conversation the next turn answers.
    observation: Observation,
    /// Every image of that conversation, as model inputs.
    images: Vec<ImageInput>,
    /// The text before each of those images in the prompt (empty without camera text).
    captions: Vec<String>,
    /// The episode has ended (a valid layout, or the turn limit).
    done: bool,
}

/// How a rollout samples.
#[derive(Debug, Clone)]
pub struct RolloutSettings {
    /// Trajectories per room.
    pub group_size: usize,
    /// Episode settings (turns, stop when valid, assessment, feedback).
    pub episode: EpisodeConfig,
    /// Sampling; `seed` is the base of every call's seed.
    pub sampling: SamplingParams,
    /// Rooms generated per call (the unit of overlap with scoring).
    pub rooms_per_call: usize,
    /// The index of the first call among the step's (another rank plays the earlier ones);
    /// each call's sampling seed derives from it.
    pub first_chunk: usize,
    /// Save the renders of every turn here (`dir`, and the prefix recorded in rollouts).
    pub save_images: Option<(PathBuf, String)>,
}

/// Seconds spent per phase. Assessment, rendering and rewards run beside generation, so their
/// sum can exceed the rollout's wall time; `waiting` is the part that was not hidden.
#[derive(Debug, Clone, Copy, Default)]
pub struct RolloutTimes {
    /// Generation (prefill and decode) on the tch device.
    pub generate: f64,
    /// Parsing, physics and relations.
    pub assess: f64,
    /// Drawing on the render thread (and preprocessing the images for the model).
    pub render: f64,
    /// Rewards.
    pub reward: f64,
    /// Generation stalled waiting for scoring.
    pub waiting: f64,
    /// Prompt tokens processed.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub response_tokens: usize,
}

/// A chunk's trajectories on their way to the scorer thread, with their new responses.
struct ScoreJob {
    chunk: Vec<Playing>,
    responses: Vec<Response>,
}

/// A tokenised prompt and the text of its last user message.
#[derive(Clone)]
struct Prompt {
    sequence: Sequence,
    text: String,
}

/// A response generated for one trajectory of a chunk, before it is scored.
struct Response {
    /// Index of the trajectory in its chunk.
    trajectory: usize,
    prompt: Prompt,
    tokens: Vec<i64>,
    text: String,
    finish: FinishReason,
}

/// A response the environment has stepped on.
struct Stepped {
    response: Response,
    /// The response, its parsed answer and assessment, for the rewards.
    prepared: Prepared,
    /// The conversation after this turn's feedback.
    next: Observation,
    /// The episode ends with this turn.
    ends: bool,
}

/// A stepped response's renders (none when its answer did not parse).
struct Drawn {
    frames: Vec<ViewFrame>,
    /// The renders saved with the rollout.
    saved: Vec<SavedImage>,
    /// The renders as model inputs for the next turn.
    inputs: Vec<ImageInput>,
    /// Their captions in the next prompt.
    captions: Vec<String>,
}

/// A chunk back from the scorer thread, each response a new turn, with the seconds each phase
/// took.
struct ScoredChunk {
    chunk: Vec<Playing>,
    assess: f64,
    render: f64,
    reward: f64,
}

/// Plays `group_size` episodes of every room and returns the trajectories room-major
/// (room 0's samples first).
pub fn rollout(
    policy: &Policy,
    scoring: &RenderAndRewards,
    rooms: &[Room],
    settings: &RolloutSettings,
    progress: &ProgressBar,
) -> anyhow::Result<(Vec<Trajectory>, RolloutTimes)> {
    let mut times = RolloutTimes::default();
    let empties = {
        let start = Instant::now();
        let targets: Vec<Drawing<'_>> = rooms.iter().map(|r| (r, None, None)).collect();
        let frames = scoring.views.draw(&scoring.renderer, &targets)?;
        let images = frames
            .iter()
            .map(|views| {
                Ok((
                    scoring.views.model_inputs(&policy.processor, views)?,
                    scoring.views.captions(views),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.render += start.elapsed().as_secs_f64();
        images
    };
    let per_call = settings.rooms_per_call.max(1);
    let empties = &empties;
    let mut chunks: Vec<Option<Vec<Playing>>> = rooms
        .chunks(per_call)
        .enumerate()
        .map(|(c, chunk)| {
            Some(
                chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(i, room)| {
                        let index = c * per_call + i;
                        (0..settings.group_size).map(move |sample| {
                            let mut episode = Episode::new(room.clone(), settings.episode.clone());
                            let observation = episode.reset();
                            Playing {
                                trajectory: Trajectory {
                                    room: index,
                                    sample,
                                    turns: Vec::new(),
                                },
                                episode,
                                observation,
                                images: empties[index].0.clone(),
                                captions: empties[index].1.clone(),
                                done: false,
                            }
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    progress.set_length((rooms.len() * settings.group_size * settings.episode.max_turns) as u64);
    progress.set_position(0);

    let processor = policy.processor.clone();
    thread::scope(|scope| -> anyhow::Result<()> {
        let (job_tx, job_rx) = unbounded::<ScoreJob>();
        let (done_tx, done_rx) = unbounded::<anyhow::Result<ScoredChunk>>();
        let worker = scope.spawn(move || {
            for job in job_rx {
                let result = score_job(job, scoring, &processor, settings);
                let failed = result.is_err();
                let _ = done_tx.send(result);
                if failed {
                    break;
                }
            }
        });
        let receive = |chunks: &mut Vec<Option<Vec<Playing>>>,
                       times: &mut RolloutTimes,
                       index: usize|
         -> anyhow::Result<()> {
            let start = Instant::now();
            let done = done_rx
                .recv()
                .map_err(|_| anyhow!("the scorer thread stopped"))??;
            times.waiting += start.elapsed().as_secs_f64();
            times.assess += done.assess;
            times.render += done.render;
            times.reward += done.reward;
            chunks[index] = Some(done.chunk);
            Ok(())
        };
        let n_chunks = chunks.len();
        // Chunks at the scorer, oldest first (it answers in order).
        let mut in_flight: VecDeque<usize> = VecDeque::new();
        for turn in 1..=settings.episode.max_turns {
            for c in 0..n_chunks {
                while chunks[c].is_none() {
                    let index = in_flight.pop_front().expect("a chunk in flight");
                    receive(&mut chunks, &mut times, index)?;
                }
                let chunk = chunks[c].take().expect("present");
                let start = Instant::now();
                let responses = generate_turn(
                    policy,
                    &chunk,
                    turn,
                    c,
                    settings,
                    scoring.views.per_scene(),
                    &mut times,
                )?;
                times.generate += start.elapsed().as_secs_f64();
                progress.inc(responses.len() as u64);
                job_tx
                    .send(ScoreJob { chunk, responses })
                    .map_err(|_| anyhow!("the scorer thread stopped"))?;
                in_flight.push_back(c);
            }
        }
        drop(job_tx);
        while let Some(index) = in_flight.pop_front() {
            receive(&mut chunks, &mut times, index)?;
        }
        worker
            .join()
            .map_err(|_| anyhow!("the scorer thread panicked"))?;
        Ok(())
    })?;
    let trajectories = chunks
        .into_iter()
        .flatten()
        .flatten()
        .map(|p| p.trajectory)
        .collect();
    Ok((trajectories, times))
}

/// Generates turn `turn` for the chunk's trajectories still playing.
fn generate_turn(
    policy: &Policy,
    chunk: &[Playing],
    turn: usize,
    chunk_index: usize,
    settings: &RolloutSettings,
    per_request: usize,
    times: &mut RolloutTimes,
) -> anyhow::Result<Vec<Response>> {
    let active: Vec<usize> = (0..chunk.len()).filter(|&i| !chunk[i].done).collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = settings.sampling.clone();
    params.seed = seeds::generation_call(
        settings.sampling.seed,
        turn,
        settings.first_chunk + chunk_index,
    );
    // On the first turn every sample of a room sees the same prompt: prefill it once and let
    // the group share its cache; later turns differ per trajectory.
    let (prompts, owners, group) = if turn == 1 {
        let mut prompts = Vec::new();
        let mut owners = Vec::new();
        for &i in active.iter().filter(|&&i| chunk[i].trajectory.sample == 0) {
            prompts.push(prompt_of(policy, &chunk[i], per_request)?);
            owners.push(i);
        }
        (prompts, owners, settings.group_size)
    } else {
        let prompts = active
            .iter()
            .map(|&i| prompt_of(policy, &chunk[i], per_request))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (prompts, active.clone(), 1)
    };
    let completions: Vec<Completion> = generate(
        &policy.model,
        &prompts
            .iter()
            .map(|p| p.sequence.clone())
            .collect::<Vec<_>>(),
        group,
        &params,
    )
    .context("generating responses")?;
    let mut out = Vec::with_capacity(completions.len());
    for c in completions {
        let owner = owners[c.prompt];
        let trajectory = if group == 1 {
            owner
        } else {
            // The group's trajectories sit next to each other, sample 0 first.
            owner + c.sample
        };
        let prompt = &prompts[c.prompt];
        times.prompt_tokens += prompt.sequence.tokens.len();
        times.response_tokens += c.tokens.len();
        let text = policy
            .tokenizer
            .decode(&c.tokens, true)
            .context("decoding a response")?;
        out.push(Response {
            trajectory,
            prompt: prompt.clone(),
            tokens: c.tokens,
            text,
            finish: c.finish,
        });
    }
    Ok(out)
}

/// The trajectory's current observation as a tokenised prompt.
fn prompt_of(policy: &Policy, p: &Playing, per_request: usize) -> anyhow::Result<Prompt> {
    let (messages, text) = chat_messages(&p.observation, per_request, &p.captions);
    let sequence = policy
        .prompt(&messages, p.images.clone())
        .with_context(|| {
            format!(
                "building the turn-{} prompt of room {}",
                p.observation.turn,
                p.episode.room().id
            )
        })?;
    Ok(Prompt { sequence, text })
}

/// The environment's conversation as chat messages; each image request becomes `per_request`
/// images (one per view), each after its caption when `captions` has one (the text of every
/// image of the conversation in order, or empty). Also returns the text of the last user
/// message.
#[must_use]
pub fn chat_messages(
    observation: &Observation,
    per_request: usize,
    captions: &[String],
) -> (Vec<Message>, String) {
    let mut last = String::new();
    let messages = observation
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                metaspatial_env::episode::Role::User => "user",
                metaspatial_env::episode::Role::Assistant => "assistant",
            };
            let mut content = Vec::new();
            let mut text = String::new();
            for c in &m.content {
                match c {
                    metaspatial_env::episode::Content::Text(t) => {
                        text.push_str(t);
                        content.push(Content::Text { text: t.clone() });
                    }
                    metaspatial_env::episode::Content::Image(request) => {
                        for image in request * per_request..(request + 1) * per_request {
                            if let Some(caption) = captions.get(image) {
                                text.push_str(caption);
                                content.push(Content::Text {
                                    text: caption.clone(),
                                });
                            }
                            content.push(Content::Image);
                        }
                    }
                }
            }
            if role == "user" {
                last = text;
            }
            Message {
                role: role.to_owned(),
                content,
            }
        })
        .collect();
    (messages, last)
}

/// Assesses, draws and scores one chunk's new responses, and advances their episodes.
fn score_job(
    job: ScoreJob,
    scoring: &RenderAndRewards,
    processor: &ImageProcessorConfig,
    settings: &RolloutSettings,
) -> anyhow::Result<ScoredChunk> {
    let ScoreJob {
        mut chunk,
        responses,
    } = job;
    let start = Instant::now();
    let stepped = step_all(&mut chunk, responses);
    let assess = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let drawn = draw(&chunk, &stepped, scoring, processor, settings)?;
    let render = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let scores = score(&chunk, &stepped, &drawn, scoring);
    let reward = start.elapsed().as_secs_f64();

    for ((s, scored), drawn) in stepped.into_iter().zip(scores).zip(drawn) {
        let p = &mut chunk[s.response.trajectory];
        p.done = s.ends;
        p.observation = s.next;
        p.images.extend(drawn.inputs);
        p.captions.extend(drawn.captions);
        p.trajectory.turns.push(Turn {
            prompt: s.response.prompt.sequence,
            prompt_text: s.response.prompt.text,
            response_tokens: s.response.tokens,
            finish: s.response.finish,
            prepared: s.prepared,
            scored,
            images: drawn.saved,
        });
    }
    Ok(ScoredChunk {
        chunk,
        assess,
        render,
        reward,
    })
}

/// Steps each response's episode (parsing, physics and relations) on the rayon pool.
fn step_all(chunk: &mut [Playing], responses: Vec<Response>) -> Vec<Stepped> {
    let work: Vec<(Response, Episode)> = responses
        .into_iter()
        .map(|r| {
            let episode = chunk[r.trajectory].episode.clone();
            (r, episode)
        })
        .collect();
    work.into_par_iter()
        .map(|(response, mut episode)| {
            let StepResult {
                answer,
                assessment,
                observation,
                done,
                truncated,
            } = episode.step(&response.text);
            let prepared = Prepared {
                response: response.text.clone(),
                answer,
                assessment,
            };
            let stepped = Stepped {
                response,
                prepared,
                next: observation,
                ends: done || truncated,
            };
            (stepped, episode)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(stepped, episode)| {
            chunk[stepped.response.trajectory].episode = episode;
            stepped
        })
        .collect()
}

/// Draws every parsed answer in each view, saves the renders when the settings ask for it, and
/// turns them into model inputs.
fn draw(
    chunk: &[Playing],
    stepped: &[Stepped],
    scoring: &RenderAndRewards,
    processor: &ImageProcessorConfig,
    settings: &RolloutSettings,
) -> anyhow::Result<Vec<Drawn>> {
    let parsed: Vec<usize> = (0..stepped.len())
        .filter(|&k| stepped[k].prepared.assessment.parsed)
        .collect();
    let targets: Vec<Drawing<'_>> = parsed
        .iter()
        .map(|&k| {
            let a = &stepped[k].prepared.assessment;
            (
                chunk[stepped[k].response.trajectory].episode.room(),
                Some(&a.layout),
                Some(a),
            )
        })
        .collect();
    let mut frames: Vec<Vec<ViewFrame>> = vec![Vec::new(); stepped.len()];
    for (&k, f) in parsed
        .iter()
        .zip(scoring.views.draw(&scoring.renderer, &targets)?)
    {
        frames[k] = f;
    }
    stepped
        .iter()
        .zip(frames)
        .map(|(s, frames)| -> anyhow::Result<Drawn> {
            let saved: Vec<SavedImage> = match &settings.save_images {
                Some((dir, prefix)) => {
                    let t = &chunk[s.response.trajectory].trajectory;
                    let turn = t.turns.len() + 1;
                    frames
                        .iter()
                        .map(|view| -> anyhow::Result<SavedImage> {
                            let name =
                                format!("g{}-s{}-t{turn}-{}.png", t.room, t.sample, view.name);
                            let path = dir.join(&name);
                            view.frame
                                .save_png(&path)
                                .with_context(|| format!("saving {}", path.display()))?;
                            Ok(SavedImage {
                                view: view.name.clone(),
                                camera: view.frame.camera,
                                path: format!("{prefix}/{name}"),
                            })
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                None => Vec::new(),
            };
            let inputs = scoring.views.model_inputs(processor, &frames)?;
            Ok(Drawn {
                captions: scoring.views.captions(&frames),
                frames,
                saved,
                inputs,
            })
        })
        .collect()
}

/// Scores each stepped response with its renders and its trajectory's earlier assessments.
fn score(
    chunk: &[Playing],
    stepped: &[Stepped],
    drawn: &[Drawn],
    scoring: &RenderAndRewards,
) -> Vec<Scored> {
    let views: Vec<Vec<RenderedView>> = drawn
        .iter()
        .map(|d| {
            d.frames
                .iter()
                .map(|v| RenderedView {
                    name: v.name.clone(),
                    frame: v.frame.clone(),
                    visibility: None,
                    path: None,
                })
                .collect()
        })
        .collect();
    let history: Vec<Vec<Assessment>> = stepped
        .iter()
        .map(|s| {
            chunk[s.response.trajectory]
                .trajectory
                .turns
                .iter()
                .map(|t| t.prepared.assessment.clone())
                .collect()
        })
        .collect();
    let contexts: Vec<RewardContext<'_>> = stepped
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let p = &chunk[s.response.trajectory];
            s.prepared
                .context(p.episode.room())
                .with_views(&views[k])
                .with_history(p.trajectory.turns.len() + 1, &history[k])
        })
        .collect();
    scoring.rewards.score_batch(&contexts)
}
