//! Supervised warm-start on reference layouts: the model learns to answer the first-turn prompt
//! with the solver's layout and, with repair turns, to answer a second-turn prompt (a corrupted
//! layout, its render and its feedback) with the reference again.

use metaspatial_env::answer::{self, Precision};
use metaspatial_env::data::dataset::ReferenceLayout;
use metaspatial_env::data::rng::Rng;
use metaspatial_env::{Episode, EpisodeConfig, Layout, Observation, Room, StepResult};
use metaspatial_policy::tokenizer::IM_END;
use metaspatial_policy::{Policy, ScoreItem, ScoreOptions, score};
use tch::Kind;

use crate::config::OptimiserConfig;
use crate::optim::AdamW;
use crate::render_thread::{Drawing, RenderThread, Views};
use crate::rollout::chat_messages;
use crate::update::{SCORE_CHUNK_TOKENS, Sample};
use crate::world_model::{self, WorldModelStats, WorldTarget};

/// A layout as the answer the warm-start teaches, positions to the centimetre.
#[must_use]
pub fn answer_text(layout: &Layout) -> String {
    answer::write(
        layout,
        "Relations first, then no overlaps.",
        Precision::Rounded,
    )
}

/// The layout's poses in the order the prompt lists the room's objects (the solver places them
/// in its own order): the answer then walks the prompt's list, which a model learns far sooner
/// than the solver's ordering.
#[must_use]
pub fn in_room_order(room: &Room, mut layout: Layout) -> Layout {
    let rank = |id: &str| room.objects.iter().position(|o| o.id == id);
    layout.poses.sort_by_key(|p| rank(&p.id));
    layout
}

/// The reference layout with one object moved somewhere else in the room (a plausible
/// first-turn mistake to repair).
#[must_use]
pub fn corrupt(room: &Room, layout: &Layout, rng: &mut Rng) -> Layout {
    let mut out = layout.clone();
    if out.poses.is_empty() {
        return out;
    }
    let k = rng.below(out.poses.len());
    let pose = &mut out.poses[k];
    pose.position[0] = rng.range(0.0, room.size.length);
    pose.position[1] = rng.range(0.0, room.size.width);
    out
}

/// Supervised examples for the rooms whose reference layout is valid: the first-turn prompt
/// with its answer and, with `repair`, a second-turn repair. With `world_grid`, each example
/// carries the top view of its answer for the world-model objective.
#[allow(clippy::too_many_arguments)] // one call site; a settings struct would only rename these
pub fn examples(
    policy: &Policy,
    renderer: &RenderThread,
    views: &Views,
    references: &[(&Room, &ReferenceLayout)],
    episode: &EpisodeConfig,
    repair: bool,
    seed: u64,
    world_grid: Option<usize>,
) -> anyhow::Result<Vec<Sample>> {
    let pairs: Vec<(&Room, Layout)> = references
        .iter()
        .filter(|(_, l)| l.valid)
        .map(|&(r, l)| (r, in_room_order(r, l.layout())))
        .collect();
    let mut rng = Rng::new(seed);
    let corrupted: Vec<Layout> = pairs
        .iter()
        .map(|(room, layout)| corrupt(room, layout, &mut rng))
        .collect();
    // Each room's episode: the first prompt and, with repairs, the step on the corrupted
    // layout, whose assessment an annotated render paints.
    let episodes: Vec<(Observation, Option<StepResult>)> = pairs
        .iter()
        .zip(&corrupted)
        .map(|((room, _), c)| {
            let mut ep = Episode::new((*room).clone(), episode.clone());
            let first = ep.reset();
            (first, repair.then(|| ep.step(&answer_text(c))))
        })
        .collect();
    let mut targets: Vec<Drawing<'_>> = pairs.iter().map(|(r, _)| (*r, None, None)).collect();
    if repair {
        targets.extend(
            pairs
                .iter()
                .zip(&corrupted)
                .zip(&episodes)
                .map(|(((r, _), c), (_, step))| {
                    (*r, Some(c), step.as_ref().map(|s| &s.assessment))
                }),
        );
    }
    let frames = views.draw(renderer, &targets)?;
    let im_end = policy.tokenizer.token_id(IM_END)?;
    let processor = &policy.processor;
    let to_inputs = |k: usize| views.model_inputs(processor, &frames[k]);
    let mut out = Vec::new();
    for (i, ((room, layout), (first, step))) in pairs.iter().zip(&episodes).enumerate() {
        let target = answer_text(layout);
        let mut response = policy.tokenizer.encode(&target)?;
        response.push(im_end);
        let world = world_grid.and_then(|grid| world_model::target(room, layout, grid));
        let empty = to_inputs(i)?;
        let mut captions = views.captions(&frames[i]);
        let (messages, _) = chat_messages(first, views.per_scene(), &captions);
        out.push(sample(
            policy,
            &messages,
            empty.clone(),
            &response,
            world.clone(),
        )?);
        if let Some(step) = step {
            let mut images = empty;
            if step.assessment.parsed {
                images.extend(to_inputs(pairs.len() + i)?);
                captions.extend(views.captions(&frames[pairs.len() + i]));
            }
            let (messages, _) = chat_messages(&step.observation, views.per_scene(), &captions);
            out.push(sample(policy, &messages, images, &response, world)?);
        }
    }
    Ok(out)
}

fn sample(
    policy: &Policy,
    messages: &[metaspatial_policy::Message],
    images: Vec<metaspatial_policy::ImageInput>,
    response: &[i64],
    world: Option<WorldTarget>,
) -> anyhow::Result<Sample> {
    let mut sequence = policy.prompt(messages, images)?;
    let response_start = sequence.tokens.len();
    sequence.tokens.extend_from_slice(response);
    Ok(Sample {
        sequence,
        response_start,
        advantage: 1.0,
        token_advantages: None,
        world,
    })
}

/// What one supervised step measured.
#[derive(Debug, Clone, Copy)]
pub struct SftStats {
    /// Mean negative log-likelihood per response token.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens processed (prompt and response).
    pub tokens: usize,
    /// The world-model head's loss and `IoU`, when the objective trains.
    pub world_model: Option<WorldModelStats>,
}

/// One optimiser step of token-mean cross-entropy on `batch`, plus `world_model_weight` times
/// the world-model head's mean loss over the batch's examples when given.
pub fn step(
    policy: &Policy,
    opt: &mut AdamW,
    batch: &[&Sample],
    optimiser: &OptimiserConfig,
    lr: f64,
    world_model_weight: Option<f64>,
) -> anyhow::Result<SftStats> {
    let head = world_model_weight.zip(policy.world_model.as_ref());
    let with_target = batch.iter().filter(|s| s.world.is_some()).count();
    let mut world_stats = WorldModelStats::default();
    let total: usize = batch
        .iter()
        .map(|s| s.sequence.tokens.len() - s.response_start)
        .sum();
    opt.zero_grad();
    let mut loss_sum = 0.0;
    for micro in batch.chunks(optimiser.micro_batch.max(1)) {
        let items: Vec<ScoreItem<'_>> = micro
            .iter()
            .map(|s| ScoreItem {
                sequence: &s.sequence,
                response_start: s.response_start,
            })
            .collect();
        let scores = score(
            &policy.model,
            &items,
            &ScoreOptions::log_likelihood(SCORE_CHUNK_TOKENS),
        )?;
        let mask = scores.mask.to_kind(Kind::Float);
        // Summed here and divided by the whole batch's token count: the token mean of the batch.
        let nll = -(scores.logprobs * &mask).sum(Kind::Float) / total.max(1) as f64;
        loss_sum += nll.double_value(&[]);
        let loss = match head {
            // The head's loss is the mean over the batch's examples that have a target.
            Some((weight, head)) => world_model::add_loss(
                nll,
                head,
                &scores.final_hidden,
                &micro.iter().map(|s| s.world.as_ref()).collect::<Vec<_>>(),
                weight / with_target.max(1) as f64,
                &mut world_stats,
            )?,
            None => nll,
        };
        loss.backward();
    }
    let grad_norm = opt.grad_norm();
    if grad_norm.is_finite() {
        opt.step(optimiser, lr, grad_norm);
    } else {
        tracing::warn!("non-finite gradient in a supervised step; the update is skipped");
    }
    opt.zero_grad();
    Ok(SftStats {
        loss: loss_sum,
        grad_norm,
        tokens: batch.iter().map(|s| s.sequence.tokens.len()).sum(),
        world_model: head.map(|_| world_stats.means()),
    })
}

#[cfg(test)]
mod tests {
    use metaspatial_env::{AssessConfig, Pose, assess};

    use super::*;

    fn room() -> Room {
        let text = r#"{"id": "r", "size": {"length": 4.0, "width": 3.0, "height": 2.5},
            "objects": [
              {"id": "bed_1", "category": "bed", "size": {"length": 1.6, "width": 2.0, "height": 0.5}, "on_floor": true},
              {"id": "desk_1", "category": "desk", "size": {"length": 1.0, "width": 0.5, "height": 0.75}, "on_floor": true}
            ]}"#;
        metaspatial_env::data::dataset::parse_room(text).unwrap()
    }

    #[test]
    #[allow(clippy::float_cmp)] // rounding to the centimetre gives these values exactly
    fn answers_list_objects_in_prompt_order_and_read_back_to_the_same_layout() {
        let room = room();
        let layout = Layout {
            poses: vec![
                Pose {
                    id: "desk_1".into(),
                    position: [3.0, 0.5, 0.375],
                    rotation: 0.0,
                },
                Pose {
                    id: "bed_1".into(),
                    position: [1.0004, 1.5, 0.25],
                    rotation: 90.0,
                },
            ],
        };
        let ordered = in_room_order(&room, layout);
        assert_eq!(ordered.poses[0].id, "bed_1");
        let text = answer_text(&ordered);
        assert!(text.find("bed_1") < text.find("desk_1"));
        let a = assess(&room, &text, &AssessConfig::default());
        assert!(a.parsed && a.strict_format, "{:?}", a.format_error);
        assert!(a.valid_scene, "{a:?}");
        assert_eq!(a.layout.poses[0].position, [1.0, 1.5, 0.25]);
    }

    #[test]
    fn a_corrupted_layout_moves_exactly_one_object_inside_the_room() {
        let room = room();
        let layout = Layout {
            poses: vec![
                Pose {
                    id: "bed_1".into(),
                    position: [1.0, 1.5, 0.25],
                    rotation: 90.0,
                },
                Pose {
                    id: "desk_1".into(),
                    position: [3.0, 0.5, 0.375],
                    rotation: 0.0,
                },
            ],
        };
        let moved = corrupt(&room, &layout, &mut Rng::new(1));
        let changed = moved
            .poses
            .iter()
            .zip(&layout.poses)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 1);
        assert!(
            moved
                .poses
                .iter()
                .all(|p| p.position[0] <= 4.0 && p.position[1] <= 3.0)
        );
    }
}
