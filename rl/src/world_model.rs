//! The world-model objective's targets and loss: the top view of the layout an answer wrote, as
//! a `grid × grid` occupancy and height map over the room's floor, predicted by the policy's
//! [`WorldModelHead`] from its hidden state at the end of the answer.

use metaspatial_env::{Layout, Room};
use metaspatial_policy::world_model::WorldModelHead;
use metaspatial_render::{Scene, SceneObject};
use tch::{Kind, Tensor};

/// What the head should predict for one answer: per cell of a `grid × grid` map over the floor,
/// row by row from the south-west corner (x east along a row, y north across rows).
#[derive(Debug, Clone, PartialEq)]
pub struct WorldTarget {
    /// 1 where an object covers the cell's centre seen from above, else 0.
    pub occupancy: Vec<f32>,
    /// The highest top over the cell's centre as a fraction of the room's height (0 where
    /// empty; clamped to 1).
    pub height: Vec<f32>,
}

/// The orthographic top view of `layout` in `room` sampled at the centres of a `grid × grid`
/// map, from the scene the renderer draws; `None` when the layout cannot be drawn (an unknown
/// or repeated id, a non-finite value).
#[must_use]
pub fn target(room: &Room, layout: &Layout, grid: usize) -> Option<WorldTarget> {
    let scene = Scene::new(room, layout).ok()?;
    let cells = grid * grid;
    let mut occupancy = vec![0.0; cells];
    let mut height = vec![0.0; cells];
    for row in 0..grid {
        for col in 0..grid {
            let x = (col as f32 + 0.5) / grid as f32 * scene.size.x;
            let y = (row as f32 + 0.5) / grid as f32 * scene.size.y;
            let top = scene
                .objects
                .iter()
                .filter(|o| o.footprint_contains(x, y))
                .map(SceneObject::top)
                .fold(None, |best: Option<f32>, t| {
                    Some(best.map_or(t, |b| b.max(t)))
                });
            if let Some(top) = top {
                occupancy[row * grid + col] = 1.0;
                height[row * grid + col] = (top / scene.size.z).clamp(0.0, 1.0);
            }
        }
    }
    Some(WorldTarget { occupancy, height })
}

/// The head's loss and occupancy `IoU`, averaged over the answers that had a target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorldModelStats {
    /// Mean loss per answer (occupancy cross-entropy plus height squared error).
    pub loss: f64,
    /// Mean intersection over union of predicted and true occupied cells.
    pub occupancy_iou: f64,
    /// Answers with a target.
    pub answers: usize,
}

impl WorldModelStats {
    /// Adds a micro-batch's sums (`loss` and `iou` summed over its `answers`).
    pub fn add_sums(&mut self, loss: f64, iou: f64, answers: usize) {
        self.loss += loss;
        self.occupancy_iou += iou;
        self.answers += answers;
    }

    /// The sums turned into means.
    #[must_use]
    pub fn means(self) -> Self {
        let n = self.answers.max(1) as f64;
        Self {
            loss: self.loss / n,
            occupancy_iou: self.occupancy_iou / n,
            answers: self.answers,
        }
    }

    /// The values logged, `aux/world_model_loss` and `aux/occupancy_iou`; none when no answer
    /// had a target (nothing parsed), rather than a made-up zero.
    #[must_use]
    pub fn logged(&self) -> Vec<(String, f64)> {
        if self.answers == 0 {
            return Vec::new();
        }
        vec![
            ("aux/world_model_loss".to_owned(), self.loss),
            ("aux/occupancy_iou".to_owned(), self.occupancy_iou),
        ]
    }
}

/// `loss` plus `scale` times the head's loss summed over the rows of `final_hidden`
/// `(rows, hidden)` that have a target (`targets`, one per row), with those rows' sums of loss
/// and `IoU` added to `stats`; `loss` itself when no row has a target.
pub fn add_loss(
    loss: Tensor,
    head: &WorldModelHead,
    final_hidden: &Tensor,
    targets: &[Option<&WorldTarget>],
    scale: f64,
    stats: &mut WorldModelStats,
) -> anyhow::Result<Tensor> {
    let rows: Vec<i64> = (0..targets.len() as i64)
        .filter(|&r| targets[r as usize].is_some())
        .collect();
    if rows.is_empty() {
        return Ok(loss);
    }
    let present: Vec<&WorldTarget> = targets.iter().flatten().copied().collect();
    let cells = head.grid() * head.grid();
    let stack = |values: Vec<f32>| Tensor::from_slice(&values).view([present.len() as i64, cells]);
    let occupancy = stack(present.iter().flat_map(|t| t.occupancy.clone()).collect());
    let height = stack(present.iter().flat_map(|t| t.height.clone()).collect());
    let index = Tensor::from_slice(&rows).to(final_hidden.device());
    let out = head.loss(&final_hidden.index_select(0, &index), &occupancy, &height)?;
    let sum = out.per_row.sum(Kind::Float);
    stats.add_sums(sum.double_value(&[]), out.iou.iter().sum(), present.len());
    Ok(loss + sum * scale)
}

#[cfg(test)]
mod tests {
    use metaspatial_env::Pose;

    use super::*;
    use crate::fixtures::generated_room;

    #[test]
    fn the_target_marks_the_cells_under_an_object_with_its_top() {
        let room = generated_room();
        let object = &room.objects[0];
        let layout = Layout {
            poses: vec![Pose {
                id: object.id.clone(),
                position: [
                    0.5 * object.size.length,
                    0.5 * object.size.width,
                    0.5 * object.size.height,
                ],
                rotation: 0.0,
            }],
        };
        let grid = 8;
        let t = target(&room, &layout, grid).unwrap();
        // The object sits in the south-west corner: the first cell is covered, the last not.
        assert!((t.occupancy[0] - 1.0).abs() < 1e-6);
        assert!(t.occupancy[grid * grid - 1].abs() < 1e-6);
        let expected = (object.size.height / room.size.height) as f32;
        assert!(
            (t.height[0] - expected).abs() < 1e-5,
            "{} vs {expected}",
            t.height[0]
        );
        let covered = f64::from(t.occupancy.iter().sum::<f32>()) / (grid * grid) as f64;
        let area = object.size.length * object.size.width / (room.size.length * room.size.width);
        assert!((covered - area).abs() < 0.2, "{covered} vs {area}");
        assert!(
            t.occupancy
                .iter()
                .zip(&t.height)
                .all(|(o, h)| (*o == 0.0) == (*h == 0.0))
        );
    }

    #[test]
    fn an_undrawable_layout_has_no_target() {
        let room = generated_room();
        let layout = Layout {
            poses: vec![Pose {
                id: "no_such_object".into(),
                position: [1.0, 1.0, 0.5],
                rotation: 0.0,
            }],
        };
        assert!(target(&room, &layout, 4).is_none());
    }
}
