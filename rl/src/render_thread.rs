//! The render thread, which owns the wgpu device and draws what it is sent, and the views a run
//! draws with it (for the model, for rewards and for the saved rollouts).

use std::sync::mpsc;
use std::thread;

use anyhow::{Context, anyhow};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use metaspatial_env::feedback::{FeedbackView, marks};
use metaspatial_env::{Assessment, Layout, Room};
use metaspatial_policy::ImageInput;
use metaspatial_policy::geometry::geometry_input;
use metaspatial_policy::image::ImageProcessorConfig;
use metaspatial_render::coverage::{SceneVoxels, candidate_views};
use metaspatial_render::features::{Channel, pixel_features};
use metaspatial_render::{Camera, Frame, RenderError, RenderOptions, Renderer, Scene, View};
use rayon::prelude::*;

use crate::camera_text::{CameraText, captions, relative_pose};
use crate::config::{GeometryChannel, RunConfig, ViewChoice, ViewSelection};

/// The render thread: owns the wgpu device and draws what it is sent.
pub struct RenderThread {
    jobs: Option<Sender<RenderJob>>,
    handle: Option<thread::JoinHandle<()>>,
}

/// Scenes to draw with one set of options, and where to send the frames.
struct RenderJob {
    scenes: Vec<Scene>,
    options: RenderOptions,
    reply: Sender<Result<Vec<Frame>, RenderError>>,
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
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in receiver {
                    let _ = job
                        .reply
                        .send(renderer.render_batch(&job.scenes, &job.options));
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
    ) -> Receiver<Result<Vec<Frame>, RenderError>> {
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
    /// The views every scene is drawn in, in the order the model sees them.
    pub fixed: Vec<ViewChoice>,
    /// Views chosen per scene, shown after the fixed ones.
    pub selection: Option<ViewSelection>,
    /// Side of the square images, pixels.
    pub size: u32,
    /// The features given to the model's geometry channel with each image, or `None` without
    /// one.
    pub geometry: Option<Vec<GeometryChannel>>,
    /// Paint the objects of a drawn layout by their problems (`env.feedback_view`).
    pub annotate: bool,
    /// The text before each image (`env.camera_text`).
    pub camera_text: CameraText,
}

/// A scene to draw: a room, the layout placed in it (`None`: the empty room) and, for an
/// annotated render, the layout's assessment.
pub type Drawing<'a> = (&'a Room, Option<&'a Layout>, Option<&'a Assessment>);

/// Scenes drawn at once with view selection.
const SELECTION_PART: usize = 32;

/// One view of one scene, drawn.
#[derive(Debug, Clone)]
pub struct ViewFrame {
    /// The view's name (`top`, `perspective`, `orbit-a225-e30`).
    pub name: String,
    /// What it shows, and the camera that drew it.
    pub frame: Frame,
}

impl Views {
    /// The views of a run's environment, with the geometry its model takes.
    #[must_use]
    pub fn new(config: &RunConfig) -> Self {
        let env = &config.env;
        Self {
            fixed: env.views.clone(),
            selection: env.view_selection.clone(),
            size: env.image_size,
            geometry: config.model.geometry_channel().map(|g| g.channels),
            annotate: env.feedback_view == FeedbackView::Annotated,
            camera_text: env.camera_text,
        }
    }

    /// The text before each of one scene's frames in the prompt (none without camera text).
    #[must_use]
    pub fn captions(&self, frames: &[ViewFrame]) -> Vec<String> {
        let cameras: Vec<Camera> = frames.iter().map(|f| f.frame.camera).collect();
        captions(&cameras, self.camera_text)
    }

    /// Frames as model inputs, each with its geometry when the model takes it.
    pub(crate) fn model_inputs(
        &self,
        processor: &ImageProcessorConfig,
        frames: &[ViewFrame],
    ) -> anyhow::Result<Vec<ImageInput>> {
        frames
            .iter()
            .map(|f| {
                let input = processor
                    .preprocess(&image::DynamicImage::ImageRgba8(f.frame.color_image()))
                    .context("preprocessing a render for the model")?;
                let Some(channels) = &self.geometry else {
                    return Ok(input);
                };
                let map = geometry_map(f, &frames[0], channels);
                let per_pixel = channels.iter().map(|c| c.features()).sum();
                let rows = geometry_input(
                    processor,
                    &map,
                    f.frame.width as usize,
                    f.frame.height as usize,
                    per_pixel,
                )
                .with_context(|| format!("the geometry of the {} view", f.name))?;
                Ok(input.with_geometry(rows)?)
            })
            .collect()
    }

    /// Images per drawn scene.
    #[must_use]
    pub fn per_scene(&self) -> usize {
        self.fixed.len() + self.selection.as_ref().map_or(0, |s| s.k)
    }

    fn options(&self, view: View) -> RenderOptions {
        RenderOptions {
            width: self.size,
            height: self.size,
            view,
            labels: false,
        }
    }

    /// Draws one layout (or the empty room) of each room in every view: `frames[room][view]`,
    /// the fixed views first, then the selected ones.
    pub fn draw(
        &self,
        renderer: &RenderThread,
        rooms: &[Drawing<'_>],
    ) -> anyhow::Result<Vec<Vec<ViewFrame>>> {
        // With selection every scene is drawn in all the candidate views before its few are
        // kept: a part at a time bounds the frames held at once (SFT draws thousands).
        let part = if self.selection.is_some() {
            SELECTION_PART
        } else {
            rooms.len().max(1)
        };
        let mut drawn = Vec::with_capacity(rooms.len());
        for rooms in rooms.chunks(part) {
            drawn.extend(self.draw_part(renderer, rooms)?);
        }
        Ok(drawn)
    }

    fn draw_part(
        &self,
        renderer: &RenderThread,
        rooms: &[Drawing<'_>],
    ) -> anyhow::Result<Vec<Vec<ViewFrame>>> {
        let scenes: Vec<Scene> = rooms
            .iter()
            .map(|(room, layout, assessment)| {
                let mut scene = match layout {
                    Some(l) => Scene::new(room, l)?,
                    None => Scene::empty(room)?,
                };
                if let (true, Some(a)) = (self.annotate, assessment) {
                    for (id, mark) in marks(a) {
                        scene.paint(&id, mark.color());
                    }
                }
                Ok(scene)
            })
            .collect::<Result<_, RenderError>>()
            .context("building a scene to draw")?;
        let fixed: Vec<View> = self.fixed.iter().map(|v| v.view()).collect();
        let candidates = self
            .selection
            .as_ref()
            .map_or_else(Vec::new, |s| candidate_views(s.candidates));
        // Every view goes to the render thread before the first answer is awaited.
        let pending: Vec<_> = fixed
            .iter()
            .chain(&candidates)
            .map(|&v| renderer.submit(scenes.clone(), self.options(v)))
            .collect();
        let mut per_view = Vec::with_capacity(pending.len());
        for p in pending {
            per_view.push(
                p.recv()
                    .map_err(|_| anyhow!("the render thread stopped"))?
                    .context("rendering")?
                    .into_iter(),
            );
        }
        let views: Vec<View> = fixed.into_iter().chain(candidates).collect();
        let mut drawn: Vec<Vec<ViewFrame>> = (0..rooms.len())
            .map(|_| {
                views
                    .iter()
                    .zip(&mut per_view)
                    .map(|(view, frames)| ViewFrame {
                        name: view.name(),
                        frame: frames.next().expect("a frame per scene"),
                    })
                    .collect()
            })
            .collect();
        if let Some(selection) = &self.selection {
            let first = self.fixed.len();
            drawn.par_iter_mut().for_each(|frames| {
                let candidates = frames.split_off(first);
                let chosen = select(&candidates, selection);
                let mut candidates: Vec<Option<ViewFrame>> =
                    candidates.into_iter().map(Some).collect();
                frames.extend(chosen.into_iter().filter_map(|i| candidates[i].take()));
            });
        }
        Ok(drawn)
    }
}

/// The per-pixel features of `frame` in `channels`' order, row-major `(height, width, Σ)`:
/// the renderer's, and the pose relative to `first` (the turn's first image) at every pixel.
fn geometry_map(frame: &ViewFrame, first: &ViewFrame, channels: &[GeometryChannel]) -> Vec<f32> {
    let drawn: Vec<Channel> = channels.iter().filter_map(|c| c.channel()).collect();
    let per_drawn: usize = drawn.iter().map(|c| c.width()).sum();
    let pixels = pixel_features(&frame.frame, &drawn);
    let pose = relative_pose(&frame.frame.camera, &first.frame.camera);
    let count = frame.frame.depth.len();
    let per_pixel: usize = channels.iter().map(|c| c.features()).sum();
    let mut map = Vec::with_capacity(count * per_pixel);
    for p in 0..count {
        let mut at = p * per_drawn;
        for c in channels {
            match c.channel() {
                Some(ch) => {
                    map.extend_from_slice(&pixels[at..at + ch.width()]);
                    at += ch.width();
                }
                None => map.extend_from_slice(&pose),
            }
        }
    }
    map
}

/// The `k` candidates that see the most of the scene (greedy maximum coverage); when fewer
/// than `k` add anything, the lowest-index others fill up, so that every scene shows the
/// model the same number of images.
fn select(candidates: &[ViewFrame], selection: &ViewSelection) -> Vec<usize> {
    let frames: Vec<&Frame> = candidates.iter().map(|c| &c.frame).collect();
    let voxels = SceneVoxels::new(
        &frames,
        selection.target.target(),
        selection.voxel_divisions,
    );
    let mut chosen = voxels.greedy(0..candidates.len(), selection.k);
    for i in 0..candidates.len() {
        if chosen.len() >= selection.k {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use metaspatial_render::coverage::SceneVoxels;

    use super::*;
    use crate::config::SelectionTarget;
    use crate::fixtures::{CLEAN, room};

    #[test]
    fn selected_views_follow_the_fixed_ones_and_are_the_greedy_choice() {
        let renderer = RenderThread::spawn().expect("a renderer");
        let selection = ViewSelection {
            candidates: 6,
            k: 2,
            voxel_divisions: 10,
            target: SelectionTarget::Objects,
        };
        let views = Views {
            fixed: vec![ViewChoice::Top],
            selection: Some(selection.clone()),
            size: 56,
            geometry: None,
            annotate: false,
            camera_text: CameraText::None,
        };
        let room = room();
        let layout =
            metaspatial_env::assess(&room, CLEAN, &metaspatial_env::AssessConfig::default()).layout;
        let drawn = views
            .draw(
                &renderer,
                &[(&room, None, None), (&room, Some(&layout), None)],
            )
            .unwrap();
        let all = Views {
            fixed: candidate_views(6)
                .into_iter()
                .map(|v| match v {
                    View::Orbit {
                        azimuth,
                        elevation,
                        distance,
                    } => ViewChoice::Orbit {
                        azimuth,
                        elevation,
                        distance,
                    },
                    _ => unreachable!("candidates are orbit views"),
                })
                .collect(),
            selection: None,
            size: 56,
            geometry: None,
            annotate: false,
            camera_text: CameraText::None,
        }
        .draw(
            &renderer,
            &[(&room, None, None), (&room, Some(&layout), None)],
        )
        .unwrap();
        for (frames, candidates) in drawn.iter().zip(&all) {
            assert_eq!(frames.len(), views.per_scene());
            assert_eq!(frames[0].name, "top");
            let voxels = SceneVoxels::new(
                &candidates.iter().map(|c| &c.frame).collect::<Vec<_>>(),
                selection.target.target(),
                selection.voxel_divisions,
            );
            let expected: Vec<&str> = voxels
                .greedy(0..candidates.len(), 2)
                .iter()
                .map(|&i| candidates[i].name.as_str())
                .collect();
            let got: Vec<&str> = frames[1..].iter().map(|f| f.name.as_str()).collect();
            assert_eq!(got, expected);
        }
        // The empty room falls back to the room's points; with objects placed the views follow
        // the objects, so the two scenes need not agree.
        assert!(drawn[1][1].name.starts_with("orbit-a"));
    }

    #[test]
    fn an_annotated_render_paints_colliding_objects_red() {
        use crate::fixtures::COLLIDING;
        use metaspatial_env::feedback::Mark;
        let renderer = RenderThread::spawn().expect("a renderer");
        let room = room();
        let a =
            metaspatial_env::assess(&room, COLLIDING, &metaspatial_env::AssessConfig::default());
        let drawing = [(&room, Some(&a.layout), Some(&a))];
        let views = |annotate| Views {
            fixed: vec![ViewChoice::Top],
            selection: None,
            size: 112,
            geometry: None,
            annotate,
            camera_text: CameraText::None,
        };
        assert!(Mark::Collision.color()[0] > 4.0 * Mark::Collision.color()[1]);
        let reddish = |frames: &[ViewFrame]| {
            frames[0]
                .frame
                .color
                .chunks(4)
                .filter(|p| p[0] > 100 && p[0] / 2 > p[1] && p[0] / 2 > p[2])
                .count()
        };
        let plain = views(false).draw(&renderer, &drawing).unwrap();
        let annotated = views(true).draw(&renderer, &drawing).unwrap();
        // a and c collide: both are painted; the plain render has no such red.
        assert!(
            reddish(&annotated[0]) > 20 * reddish(&plain[0]).max(1),
            "{} vs {}",
            reddish(&annotated[0]),
            reddish(&plain[0])
        );
    }

    #[test]
    fn geometry_maps_interleave_pixel_features_and_the_pose_in_channel_order() {
        let frame = |view| ViewFrame {
            name: "v".to_owned(),
            frame: Frame {
                width: 2,
                height: 1,
                color: vec![0; 8],
                ids: vec![1, 0],
                depth: vec![2.5, f32::INFINITY],
                camera: Camera::new(view, glam::Vec3::new(4.0, 3.0, 2.5), 2.0),
            },
        };
        let (first, second) = (
            frame(View::Top),
            frame(View::Perspective(metaspatial_render::Corner::SouthWest)),
        );
        let channels = [
            GeometryChannel::Valid,
            GeometryChannel::RelativePose,
            GeometryChannel::Depth,
        ];
        let map = geometry_map(&first, &first, &channels);
        assert_eq!(map.len(), 2 * 11);
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(
            close(&map[..11], &[&[1.0][..], &identity, &[2.5]].concat()),
            "{map:?}"
        );
        assert!(
            close(&map[11..], &[&[0.0][..], &identity, &[0.0]].concat()),
            "{map:?}"
        );
        let moved = geometry_map(&second, &first, &channels);
        let pose = relative_pose(&second.frame.camera, &first.frame.camera);
        assert!(close(&moved[1..10], &pose) && close(&moved[12..21], &pose));
        assert!(!close(&pose, &identity));
    }
}
