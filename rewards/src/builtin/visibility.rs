//! `visibility`: can the camera see the objects?
//!
//! **What it does.** Counts each placed object's pixels in the object-id buffer of a rendered
//! view (`view` param: a view name; the first view by default). When the caller measured how
//! many pixels each object covers when drawn alone (`RenderedView::visibility`), an object
//! scores visible / covered; otherwise min(1, visible / `min_pixels`) (50 by default). The value
//! is the mean over placed objects. Components: `visible` (objects with at least one pixel),
//! `hidden` (none), `mean`. Fails (fallback used) when the context has no such view. The
//! rendering itself is the caller's: this reward reads buffers only.
//!
//! **Why.** The judge and the next turn both look at the render; an object hidden behind a
//! wardrobe is an object the model never gets feedback on. It also catches objects placed
//! outside the room or inside others.
//!
//! **Example.** A 4 × 4 id buffer showing the bed (index 1) on 6 pixels, the nightstand (2) on
//! 1, nothing of the wardrobe (3) and the painting (4) on 2, with `min_pixels: 2`:
//! (1 + 0.5 + 0 + 1) / 4 = 0.625; visible 3, hidden 1.

use serde::Deserialize;

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Parameters of `visibility`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisibilityParams {
    /// The view to read; the first view when absent.
    pub view: Option<String>,
    /// Pixels at which an object counts as fully visible when covered pixels are unknown.
    pub min_pixels: u32,
}

impl Default for VisibilityParams {
    fn default() -> Self {
        Self {
            view: None,
            min_pixels: 50,
        }
    }
}

/// The `visibility` reward.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    /// Its parameters.
    pub params: VisibilityParams,
}

/// The name configs give this reward.
pub const NAME: &str = "visibility";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    super::from_params(params, |p: VisibilityParams| {
        if p.min_pixels == 0 {
            Err("min_pixels must be at least 1".into())
        } else {
            Ok(Visibility { params: p })
        }
    })
}

impl Reward for Visibility {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        if let Some(o) = super::no_layout(ctx) {
            return o;
        }
        let Some(view) = ctx.view(self.params.view.as_deref()) else {
            let which = self
                .params
                .view
                .as_deref()
                .map_or_else(|| "any view".to_owned(), |v| format!("the view `{v}`"));
            return RewardOutcome::failed(format!("no rendered image: the context lacks {which}"));
        };
        let counts = view.frame.pixel_counts(ctx.room.objects.len() as u32);
        let (mut sum, mut visible, mut hidden) = (0.0, 0usize, 0usize);
        let poses = &ctx.assessment.layout.poses;
        for pose in poses {
            let Some(i) = ctx.room.object_index(&pose.id) else {
                continue;
            };
            let pixels = counts[i + 1];
            let covered = view
                .visibility
                .as_ref()
                .and_then(|v| v.iter().find(|o| o.index as usize == i + 1))
                .map(|o| o.covered_pixels);
            sum += match covered {
                Some(0) => 0.0,
                Some(c) => (f64::from(pixels) / f64::from(c)).min(1.0),
                None => (f64::from(pixels) / f64::from(self.params.min_pixels)).min(1.0),
            };
            if pixels > 0 {
                visible += 1;
            } else {
                hidden += 1;
            }
        }
        let mean = sum / poses.len() as f64;
        RewardOutcome::new(mean)
            .with("visible", visible as f64)
            .with("hidden", hidden as f64)
            .with("mean", mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenderedView;
    use crate::builtin::testing::{bedroom, close, prepare, tidy};
    use metaspatial_render::{Camera, Frame, ObjectVisibility, View};

    fn view(ids: Vec<u32>, visibility: Option<Vec<ObjectVisibility>>) -> RenderedView {
        let camera = Camera::new(View::Top, glam::Vec3::new(4.0, 3.0, 2.5), 1.0);
        let frame = Frame {
            width: 4,
            height: 4,
            color: vec![0; 64],
            depth: vec![1.0; 16],
            ids,
            camera,
        };
        RenderedView {
            name: "top".into(),
            frame,
            visibility,
            path: None,
        }
    }

    const IDS: [u32; 16] = [1, 1, 1, 0, 1, 1, 1, 0, 2, 0, 4, 4, 0, 0, 0, 0];

    #[test]
    fn pixel_counts_against_min_pixels_by_hand() {
        let room = bedroom();
        let p = prepare(&room, &tidy());
        let views = [view(IDS.to_vec(), None)];
        let reward = Visibility {
            params: VisibilityParams {
                view: Some("top".into()),
                min_pixels: 2,
            },
        };
        let r = reward.score(&p.context(&room).with_views(&views));
        close(r.value, 0.625);
        close(r.components["visible"], 3.0);
        close(r.components["hidden"], 1.0);
    }

    #[test]
    fn covered_pixels_give_fractions() {
        let room = bedroom();
        let p = prepare(&room, &tidy());
        let vis = (1..=4)
            .map(|i| ObjectVisibility {
                index: i,
                id: room.objects[i as usize - 1].id.clone(),
                visible_pixels: 0,
                covered_pixels: 8,
            })
            .collect();
        let views = [view(IDS.to_vec(), Some(vis))];
        let r = Visibility::default().score(&p.context(&room).with_views(&views));
        // 6/8, 1/8, 0/8, 2/8.
        close(r.value, (6.0 + 1.0 + 0.0 + 2.0) / 8.0 / 4.0);
    }

    #[test]
    fn no_view_is_a_failure() {
        let room = bedroom();
        let p = prepare(&room, &tidy());
        assert!(
            Visibility::default()
                .score(&p.context(&room))
                .failure
                .is_some()
        );
    }
}
