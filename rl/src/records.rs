//! A step's rollouts as replay records (`rollouts/step-NNNNNN.json`): rooms, turns, rewards,
//! advantages, violations and the saved renders, in the shape the viewer reads.

use metaspatial_env::Room;
use metaspatial_env::answer::Sections;
use metaspatial_policy::FinishReason;
use metaspatial_render::Camera;
use metaspatial_replay::record::{
    CameraRecord, CollisionRecord, ImageRecord, ObjectRecord, OutOfBoundsRecord, PoseRecord,
    RelationRecord, RolloutRecord, RoomRecord, TurnRecord, Violations,
};

use crate::rollout::{Trajectory, Turn};

/// The step's trajectories as replay records.
pub(crate) fn rollout_records(
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

/// One turn (1-based `turn`) as a replay record.
fn turn_record(turn: usize, t: &Turn, advantage: f64) -> TurnRecord {
    let a = &t.prepared.assessment;
    let sections = Sections::of(&t.prepared.response);
    TurnRecord {
        turn,
        prompt: t.prompt_text.clone(),
        response: t.prepared.response.clone(),
        reasoning: sections.think,
        answer: sections.answer,
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
                .map(|r| RelationRecord {
                    subject: r.subject.clone(),
                    relation: r.relation.clone(),
                    object: r.object.clone(),
                })
                .collect(),
            missing_objects: a.missing_objects.clone(),
        },
        images: t
            .images
            .iter()
            .map(|image| ImageRecord {
                view: image.view.clone(),
                path: image.path.clone(),
                floor: image.camera.floor_bounds().map(|b| b.map(f64::from)),
                camera: Some(camera_record(&image.camera)),
            })
            .collect(),
    }
}

/// The camera as the replay records keep it.
#[must_use]
pub fn camera_record(camera: &Camera) -> CameraRecord {
    CameraRecord {
        eye: camera.eye.to_array().map(f64::from),
        view: camera.view.to_cols_array().map(f64::from),
        view_proj: camera.view_proj.to_cols_array().map(f64::from),
        near: f64::from(camera.near),
        far: f64::from(camera.far),
        orthographic: camera.orthographic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{centred_answer, generated_room, turn};

    #[test]
    fn a_trajectory_becomes_a_record_with_its_turns_in_order() {
        let room = generated_room();
        let answer = centred_answer(&room);
        let trajectory = Trajectory {
            room: 0,
            sample: 3,
            turns: vec![
                turn(&room, "<think>hmm", 0.1, FinishReason::Length),
                turn(&room, &answer, 0.7, FinishReason::Stop),
            ],
        };
        let records = rollout_records(
            4,
            std::slice::from_ref(&room),
            &[trajectory],
            &[vec![-0.5, 0.5]],
        );
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.step, r.group, r.sample), (4, 0, 3));
        assert_eq!(r.room.id, room.id);
        assert_eq!(r.room.objects.len(), room.objects.len());
        assert!((r.reward - 0.7).abs() < 1e-12, "the last turn's reward");
        let [first, second] = &r.turns[..] else {
            panic!("two turns, got {}", r.turns.len());
        };
        assert_eq!((first.turn, second.turn), (1, 2));
        assert_eq!((first.advantage, second.advantage), (-0.5, 0.5));
        // An unclosed section runs to the end; a missing one is absent.
        assert_eq!(first.reasoning.as_deref(), Some("hmm"));
        assert_eq!(first.answer, None);
        assert_eq!(first.finish, "length");
        assert!(first.format_error.is_some());
        assert!(first.poses.is_empty());
        assert_eq!(second.reasoning.as_deref(), Some("all in the middle"));
        assert!(second.answer.as_deref().is_some_and(|a| a.starts_with('[')));
        assert_eq!(second.finish, "stop");
        assert_eq!(second.poses.len(), room.objects.len());
        // Two objects in one spot collide, so the scene is not valid.
        assert_eq!(second.violations.collisions.len(), 1);
        assert!(!second.valid);
        assert_eq!(second.components.get("format"), Some(&0.7));
        assert_eq!((second.prompt_tokens, second.response_tokens), (3, 5));
        assert_eq!(second.images.len(), 1);
        assert_eq!(second.images[0].view, "top");
        assert_eq!(
            second.images[0].path,
            "rollouts/step-000001/g0-s0-t1-top.png"
        );
        // The fixture's top view of a 4 m × 3 m room: the floor it shows contains the room.
        let [x0, y0, x1, y1] = second.images[0].floor.expect("a top view keeps its floor");
        assert!(x0 < 0.0 && y0 < 0.0 && x1 > 4.0 && y1 > 3.0);
        // The camera is kept whole: its matrices map the room centre where the camera does.
        let camera = second.images[0].camera.as_ref().expect("a camera");
        let view_proj = glam::DMat4::from_cols_array(&camera.view_proj);
        let centre = view_proj * glam::DVec4::new(2.0, 1.5, 0.0, 1.0);
        assert!(centre.x.abs() < 1e-6 && centre.y.abs() < 1e-6, "{centre}");
        assert!(camera.orthographic && camera.eye[2] > 2.5);
    }
}
