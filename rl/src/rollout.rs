//! Multi-turn rollouts: the policy answers, the environment assesses, the renderer draws, the
//! rewards score, and the renders and feedback go back to the policy for the next turn.
//!
//! Three kinds of work overlap. Generation runs on the calling thread (it owns the tch model).
//! Scoring — parsing and physics on the rayon pool, rewards — runs on a scorer thread, and
//! drawing on a render thread that owns the wgpu device. The rooms of a step are cut into
//! chunks; while chunk c is scored and drawn, chunk c + 1 generates. Chunk c's trajectories
//! travel to the scorer and back by value, so no state is shared between the threads.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, anyhow};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use indicatif::ProgressBar;
use metaspatial_env::{Assessment, Episode, EpisodeConfig, Layout, Observation, Room};
use metaspatial_policy::image::ImageProcessorConfig;
use metaspatial_policy::{
    Completion, Content, FinishReason, ImageInput, Message, Policy, SamplingParams, Sequence,
    generate,
};
use metaspatial_render::{Corner, Frame, RenderOptions, Renderer, Scene, View};
use metaspatial_rewards::{Prepared, RenderedView, RewardContext, RewardSet, Scored};
use rayon::prelude::*;

use crate::config::ViewChoice;

/// The render thread: owns the wgpu device and draws what it is sent.
pub struct RenderThread {
    jobs: Option<Sender<RenderJob>>,
    handle: Option<thread::JoinHandle<()>>,
}

struct RenderJob {
    scenes: Vec<Scene>,
    options: RenderOptions,
    reply: Sender<Result<Vec<Frame>, String>>,
}

impl RenderThread {
    /// Starts the thread and its renderer (an error names what is missing, e.g. Vulkan).
    pub fn spawn() -> anyhow::Result<Self> {
        let (jobs, receiver) = unbounded::<RenderJob>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("render".to_owned())
            .spawn(move || {
                let mut renderer = match Renderer::new() {
                    Ok(r) => {
                        let _ = ready_tx.send(Ok(()));
                        r
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for job in receiver {
                    let result = renderer
                        .render_batch(&job.scenes, &job.options)
                        .map_err(|e| e.to_string());
                    let _ = job.reply.send(result);
                }
            })
            .context("starting the render thread")?;
        ready_rx
            .recv()
            .context("the render thread stopped while starting")?
            .map_err(|e| {
                anyhow!("starting the renderer: {e} (`metaspatial-rl doctor` checks wgpu)")
            })?;
        Ok(Self {
            jobs: Some(jobs),
            handle: Some(handle),
        })
    }

    /// Draws `scenes` with `options`, answering on the returned channel.
    fn submit(
        &self,
        scenes: Vec<Scene>,
        options: RenderOptions,
    ) -> Receiver<Result<Vec<Frame>, String>> {
        let (reply, receiver) = bounded(1);
        let job = RenderJob {
            scenes,
            options,
            reply,
        };
        // The thread lives as long as `self`; a send can only fail after it panicked, and
        // then the receiver reports the disconnection.
        let _ = self.jobs.as_ref().expect("open until drop").send(job);
        receiver
    }
}

impl Drop for RenderThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The views shown to the model and saved with rollouts.
#[derive(Debug, Clone)]
pub struct Views {
    /// Which views, in the order the model sees them.
    pub views: Vec<ViewChoice>,
    /// Side of the square images, pixels.
    pub size: u32,
}

impl Views {
    fn options(&self, view: ViewChoice) -> RenderOptions {
        RenderOptions {
            width: self.size,
            height: self.size,
            view: match view {
                ViewChoice::Perspective => View::Perspective(Corner::SouthWest),
                ViewChoice::Top => View::Top,
            },
            labels: false,
        }
    }

    /// Draws one layout (or the empty room) of each room in every view: `frames[room][view]`.
    pub fn draw(
        &self,
        renderer: &RenderThread,
        rooms: &[(&Room, Option<&Layout>)],
    ) -> anyhow::Result<Vec<Vec<Frame>>> {
        let scenes: Vec<Scene> = rooms
            .iter()
            .map(|(room, layout)| match layout {
                Some(l) => Scene::new(room, l),
                None => Scene::empty(room),
            })
            .collect::<Result<_, _>>()
            .context("building a scene to draw")?;
        let pending: Vec<_> = self
            .views
            .iter()
            .map(|&v| renderer.submit(scenes.clone(), self.options(v)))
            .collect();
        let mut per_view = Vec::with_capacity(pending.len());
        for p in pending {
            per_view.push(
                p.recv()
                    .map_err(|_| anyhow!("the render thread stopped"))?
                    .map_err(|e| anyhow!("rendering: {e}"))?,
            );
        }
        Ok((0..rooms.len())
            .map(|i| per_view.iter().map(|frames| frames[i].clone()).collect())
            .collect())
    }
}

/// One turn of a trajectory.
pub struct Turn {
    /// The prompt it answered (tokens and images).
    pub prompt: Sequence,
    /// The text of the last user message of the prompt.
    pub prompt_text: String,
    /// Generated tokens (with the stop token when there is one).
    pub response_tokens: Vec<i64>,
    /// The response text.
    pub response: String,
    /// Why generation stopped.
    pub finish: FinishReason,
    /// The parsed answer and the environment's assessment.
    pub prepared: Prepared,
    /// Reward components and total.
    pub scored: Scored,
    /// Renders of this turn's layout, one per view (empty when the answer did not parse).
    pub frames: Vec<Frame>,
    /// Where those renders were saved, relative to the run directory.
    pub image_paths: Vec<String>,
}

/// One sampled episode of one room.
pub struct Trajectory {
    /// Index of the room in the rollout's room list.
    pub room: usize,
    /// Index of the sample in its group.
    pub sample: usize,
    /// The turns played.
    pub turns: Vec<Turn>,
    episode: Episode,
    observation: Observation,
    images: Vec<ImageInput>,
    done: bool,
}

impl Trajectory {
    /// Each turn's total reward.
    #[must_use]
    pub fn rewards(&self) -> Vec<f64> {
        self.turns.iter().map(|t| t.scored.total).collect()
    }
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

/// What rollouts need besides the policy.
pub struct Scorer<'a> {
    /// The rewards.
    pub rewards: &'a RewardSet,
    /// The render thread.
    pub renderer: &'a RenderThread,
    /// What to draw.
    pub views: &'a Views,
}

struct Job {
    chunk: Vec<Trajectory>,
    responses: Vec<(usize, Turn0)>,
}

/// A generated response before scoring.
struct Turn0 {
    prompt: Sequence,
    prompt_text: String,
    tokens: Vec<i64>,
    text: String,
    finish: FinishReason,
}

struct Done {
    chunk: Vec<Trajectory>,
    assess: f64,
    render: f64,
    reward: f64,
}

/// Plays `group_size` episodes of every room and returns the trajectories room-major
/// (room 0's samples first).
pub fn rollout(
    policy: &Policy,
    scorer: &Scorer<'_>,
    rooms: &[Room],
    settings: &RolloutSettings,
    progress: &ProgressBar,
) -> anyhow::Result<(Vec<Trajectory>, RolloutTimes)> {
    let mut times = RolloutTimes::default();
    let empties = {
        let start = Instant::now();
        let targets: Vec<(&Room, Option<&Layout>)> = rooms.iter().map(|r| (r, None)).collect();
        let frames = scorer.views.draw(scorer.renderer, &targets)?;
        let images = frames
            .iter()
            .map(|views| to_inputs(&policy.processor, views))
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.render += start.elapsed().as_secs_f64();
        images
    };
    let per_call = settings.rooms_per_call.max(1);
    let empties = &empties;
    let mut chunks: Vec<Option<Vec<Trajectory>>> = rooms
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
                            Trajectory {
                                room: index,
                                sample,
                                turns: Vec::new(),
                                episode,
                                observation,
                                images: empties[index].clone(),
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
        let (job_tx, job_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<anyhow::Result<Done>>();
        let worker = scope.spawn(move || {
            for job in job_rx {
                let result = score_job(job, scorer, &processor, settings);
                let failed = result.is_err();
                let _ = done_tx.send(result);
                if failed {
                    break;
                }
            }
        });
        let mut in_flight = 0;
        let receive = |chunks: &mut Vec<Option<Vec<Trajectory>>>,
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
        let mut sent_order: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        for turn in 1..=settings.episode.max_turns {
            for c in 0..n_chunks {
                while chunks[c].is_none() {
                    let index = sent_order.pop_front().expect("a chunk in flight");
                    receive(&mut chunks, &mut times, index)?;
                    in_flight -= 1;
                }
                let chunk = chunks[c].take().expect("present");
                let start = Instant::now();
                let responses = generate_turn(
                    policy,
                    &chunk,
                    turn,
                    c,
                    settings,
                    scorer.views.views.len(),
                    &mut times,
                )?;
                times.generate += start.elapsed().as_secs_f64();
                progress.inc(responses.len() as u64);
                job_tx
                    .send(Job { chunk, responses })
                    .map_err(|_| anyhow!("the scorer thread stopped"))?;
                sent_order.push_back(c);
                in_flight += 1;
            }
        }
        drop(job_tx);
        while in_flight > 0 {
            let index = sent_order.pop_front().expect("a chunk in flight");
            receive(&mut chunks, &mut times, index)?;
            in_flight -= 1;
        }
        worker
            .join()
            .map_err(|_| anyhow!("the scorer thread panicked"))?;
        Ok(())
    })?;
    let trajectories = chunks.into_iter().flatten().flatten().collect();
    Ok((trajectories, times))
}

/// Generates turn `turn` for the chunk's trajectories still playing.
fn generate_turn(
    policy: &Policy,
    chunk: &[Trajectory],
    turn: usize,
    chunk_index: usize,
    settings: &RolloutSettings,
    per_request: usize,
    times: &mut RolloutTimes,
) -> anyhow::Result<Vec<(usize, Turn0)>> {
    let active: Vec<usize> = (0..chunk.len()).filter(|&i| !chunk[i].done).collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = settings.sampling.clone();
    params.seed = mix(
        settings.sampling.seed,
        (turn as u64) << 32 | (settings.first_chunk + chunk_index) as u64,
    );
    // On the first turn every sample of a room sees the same prompt: prefill it once and let
    // the group share its cache; later turns differ per trajectory.
    let (prompts, owners, group) = if turn == 1 {
        let mut prompts = Vec::new();
        let mut owners = Vec::new();
        for &i in active.iter().filter(|&&i| chunk[i].sample == 0) {
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
        &prompts.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        group,
        &params,
    )
    .context("generating responses")?;
    let mut out = Vec::with_capacity(completions.len());
    for c in completions {
        let owner = owners[c.prompt];
        let index = if group == 1 {
            owner
        } else {
            // The group's trajectories sit next to each other, sample 0 first.
            owner + c.sample
        };
        let (prompt, prompt_text) = &prompts[c.prompt];
        times.prompt_tokens += prompt.tokens.len();
        times.response_tokens += c.tokens.len();
        let text = policy
            .tokenizer
            .decode(&c.tokens, true)
            .context("decoding a response")?;
        out.push((
            index,
            Turn0 {
                prompt: prompt.clone(),
                prompt_text: prompt_text.clone(),
                tokens: c.tokens,
                text,
                finish: c.finish,
            },
        ));
    }
    Ok(out)
}

/// The trajectory's current observation as a tokenised prompt, and its last user text.
fn prompt_of(
    policy: &Policy,
    t: &Trajectory,
    per_request: usize,
) -> anyhow::Result<(Sequence, String)> {
    let (messages, last_text) = chat_messages(&t.observation, per_request);
    let sequence = policy
        .prompt(&messages, t.images.clone())
        .with_context(|| {
            format!(
                "building the turn-{} prompt of room {}",
                t.observation.turn,
                t.episode.room().id
            )
        })?;
    Ok((sequence, last_text))
}

/// The environment's conversation as chat messages; each image request becomes `per_request`
/// images (one per view). Also returns the text of the last user message.
#[must_use]
pub fn chat_messages(observation: &Observation, per_request: usize) -> (Vec<Message>, String) {
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
                    metaspatial_env::episode::Content::Image(_) => {
                        content.extend(std::iter::repeat_n(Content::Image, per_request));
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

/// Frames as model inputs.
fn to_inputs(
    processor: &ImageProcessorConfig,
    frames: &[Frame],
) -> anyhow::Result<Vec<ImageInput>> {
    frames
        .iter()
        .map(|f| {
            processor
                .preprocess(&image::DynamicImage::ImageRgba8(f.color_image()))
                .context("preprocessing a render for the model")
        })
        .collect()
}

/// Assesses, draws and scores one chunk's new responses, and advances their episodes.
fn score_job(
    job: Job,
    scorer: &Scorer<'_>,
    processor: &ImageProcessorConfig,
    settings: &RolloutSettings,
) -> anyhow::Result<Done> {
    let Job {
        mut chunk,
        responses,
    } = job;
    let start = Instant::now();
    // Physics and relations for every response, on the rayon pool.
    let stepped: Vec<(usize, Turn0, metaspatial_env::StepResult, Prepared)> = {
        let mut work: Vec<(usize, Turn0, Episode)> = responses
            .into_iter()
            .map(|(i, r)| {
                let episode = chunk[i].episode.clone();
                (i, r, episode)
            })
            .collect();
        work.par_iter_mut()
            .map(|(i, r, episode)| {
                let result = episode.step(&r.text);
                let prepared = Prepared {
                    response: r.text.clone(),
                    answer: metaspatial_env::answer::parse(&r.text),
                    assessment: result.assessment.clone(),
                };
                (*i, result, prepared)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .zip(work)
            .map(|((i, result, prepared), (_, r, episode))| {
                chunk[i].episode = episode;
                (i, r, result, prepared)
            })
            .collect()
    };
    let assess = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let parsed: Vec<usize> = (0..stepped.len())
        .filter(|&k| stepped[k].3.assessment.parsed)
        .collect();
    let targets: Vec<(&Room, Option<&Layout>)> = parsed
        .iter()
        .map(|&k| {
            let (i, _, _, p) = &stepped[k];
            (chunk[*i].episode.room(), Some(&p.assessment.layout))
        })
        .collect();
    let drawn = scorer.views.draw(scorer.renderer, &targets)?;
    let mut frames: Vec<Vec<Frame>> = vec![Vec::new(); stepped.len()];
    for (&k, f) in parsed.iter().zip(drawn) {
        frames[k] = f;
    }
    let mut image_paths: Vec<Vec<String>> = vec![Vec::new(); stepped.len()];
    if let Some((dir, prefix)) = &settings.save_images {
        for (k, views) in frames.iter().enumerate() {
            let (i, _, _, _) = &stepped[k];
            let t = &chunk[*i];
            for (frame, view) in views.iter().zip(&scorer.views.views) {
                let name = format!(
                    "g{}-s{}-t{}-{}.png",
                    t.room,
                    t.sample,
                    t.turns.len() + 1,
                    view.name()
                );
                let path = dir.join(&name);
                frame
                    .save_png(&path)
                    .with_context(|| format!("saving {}", path.display()))?;
                image_paths[k].push(format!("{prefix}/{name}"));
            }
        }
    }
    let inputs: Vec<Vec<ImageInput>> = frames
        .iter()
        .map(|f| to_inputs(processor, f))
        .collect::<anyhow::Result<_>>()?;
    let render = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let views: Vec<Vec<RenderedView>> = frames
        .iter()
        .map(|fs| {
            fs.iter()
                .zip(&scorer.views.views)
                .map(|(f, v)| RenderedView {
                    name: v.name().to_owned(),
                    frame: f.clone(),
                    visibility: None,
                    path: None,
                })
                .collect()
        })
        .collect();
    let history: Vec<Vec<Assessment>> = stepped
        .iter()
        .map(|(i, ..)| {
            chunk[*i]
                .turns
                .iter()
                .map(|t| t.prepared.assessment.clone())
                .collect()
        })
        .collect();
    let contexts: Vec<RewardContext<'_>> = stepped
        .iter()
        .enumerate()
        .map(|(k, (i, _, _, p))| {
            let t = &chunk[*i];
            p.context(t.episode.room())
                .with_views(&views[k])
                .with_history(t.turns.len() + 1, &history[k])
        })
        .collect();
    let scores = scorer.rewards.score_batch(&contexts);
    drop(contexts);
    let reward = start.elapsed().as_secs_f64();

    for (((((i, r, result, prepared), scored), frames), paths), inputs) in stepped
        .into_iter()
        .zip(scores)
        .zip(frames)
        .zip(image_paths)
        .zip(inputs)
    {
        let t = &mut chunk[i];
        t.done = result.done || result.truncated;
        t.observation = result.observation;
        t.images.extend(inputs);
        t.turns.push(Turn {
            prompt: r.prompt,
            prompt_text: r.prompt_text,
            response_tokens: r.tokens,
            response: r.text,
            finish: r.finish,
            prepared,
            scored,
            frames,
            image_paths: paths,
        });
    }
    Ok(Done {
        chunk,
        assess,
        render,
        reward,
    })
}

/// Mixes a seed with a stream number (`SplitMix64` finaliser), so that nearby streams are
/// unrelated.
#[must_use]
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
