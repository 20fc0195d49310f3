//! `metaspatial-rl render`: draw a room, or a model's answer placed in it, to PNG.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use metaspatial_env::{AssessConfig, Layout, Room};
use metaspatial_render::{Corner, RenderOptions, Renderer, Scene, View};

/// Arguments of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Room: our room JSON or a scene graph in the `MetaSpatial` / `IDesign` format.
    #[arg(long)]
    room: PathBuf,
    /// Model response (`<think>…</think><answer>[…]</answer>`) whose layout to draw; without
    /// it, the empty room.
    #[arg(long)]
    response: Option<PathBuf>,
    /// Perspective from behind the south-west corner, or top-down plan.
    #[arg(long, value_enum, default_value_t = ViewArg::Perspective)]
    view: ViewArg,
    /// Image width and height in pixels (multiples of 28 suit Qwen2.5-VL).
    #[arg(long, default_value_t = 448, value_parser = clap::value_parser!(u32).range(1..=8192))]
    size: u32,
    /// Colour image to write (PNG).
    #[arg(long)]
    out: PathBuf,
    /// Also write the object-index buffer as a 16-bit greyscale PNG (0 = room, i + 1 = the
    /// room's i-th object).
    #[arg(long)]
    out_ids: Option<PathBuf>,
    /// Write each object's id over it.
    #[arg(long)]
    labels: bool,
}

/// The views offered on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ViewArg {
    /// From above head height behind the south-west corner.
    Perspective,
    /// Orthographic plan, north up.
    Top,
}

/// Runs `render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let room = load_room(&args.room)?;
    let layout = match &args.response {
        Some(path) => layout_of_response(&room, path)?,
        None => Layout::default(),
    };
    let scene = Scene::new(&room, &layout)?;
    let view = match args.view {
        ViewArg::Perspective => View::Perspective(Corner::SouthWest),
        ViewArg::Top => View::Top,
    };
    let options = RenderOptions {
        width: args.size,
        height: args.size,
        view,
        labels: args.labels,
    };
    let mut renderer = Renderer::new()?;
    let frame = renderer.render(&scene, &options)?;
    frame.save_png(&args.out)?;
    tracing::info!(
        "wrote {} ({} objects, {}×{}, on {})",
        args.out.display(),
        scene.objects.len(),
        frame.width,
        frame.height,
        renderer.adapter_info().name
    );
    if let Some(path) = &args.out_ids {
        frame.save_ids_png(path)?;
        tracing::info!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the room; asset paths are taken relative to the room file.
pub(super) fn load_room(path: &Path) -> anyhow::Result<Room> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut room = metaspatial_env::load_room(&text, &path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    for object in &mut room.objects {
        if let Some(asset) = &mut object.asset
            && Path::new(asset.as_str()).is_relative()
        {
            *asset = base.join(&*asset).display().to_string();
        }
    }
    Ok(room)
}

/// The layout a response describes, with headings resolved as scoring resolves them; unusable,
/// unknown and repeated entries are reported and left out.
pub(super) fn layout_of_response(room: &Room, path: &Path) -> anyhow::Result<Layout> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = metaspatial_env::answer::parse(&text)
        .with_context(|| format!("{}: no usable answer", path.display()))?;
    let assessment = metaspatial_env::assess_parsed(room, &parsed, &AssessConfig::geometry_only());
    for problem in &assessment.entry_errors {
        tracing::warn!("{}: {problem}", path.display());
    }
    for id in &assessment.unknown_objects {
        tracing::warn!(
            "{}: `{id}` is not an object of room `{}`; not drawn",
            path.display(),
            room.id
        );
    }
    for id in &assessment.duplicate_objects {
        tracing::warn!(
            "{}: `{id}` is placed more than once; drawing the first",
            path.display()
        );
    }
    Ok(assessment.layout)
}
