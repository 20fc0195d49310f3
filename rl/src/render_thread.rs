//! The render thread, which owns the wgpu device and draws what it is sent, and the views a run
//! draws with it (for the model, for rewards and for the saved rollouts).

use std::sync::mpsc;
use std::thread;

use anyhow::{Context, anyhow};
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use metaspatial_env::{Layout, Room};
use metaspatial_policy::ImageInput;
use metaspatial_policy::image::ImageProcessorConfig;
use metaspatial_render::{Corner, Frame, RenderError, RenderOptions, Renderer, Scene, View};

use crate::config::ViewChoice;

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
                    .context("rendering")?,
            );
        }
        Ok((0..rooms.len())
            .map(|i| per_view.iter().map(|frames| frames[i].clone()).collect())
            .collect())
    }
}

/// Frames as model inputs.
pub(crate) fn model_inputs(
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
