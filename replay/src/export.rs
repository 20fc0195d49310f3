//! `--export`: the viewer as a static site that opens from disk.
//!
//! Browsers refuse `fetch` on `file://` pages, so the API answers are written as scripts that
//! hand their JSON to `window.__replayPut`, loaded with `<script>` tags instead.

use std::path::{Path, PathBuf};

use crate::assets::ASSETS;
use crate::error::{Error, Result};
use crate::files;
use crate::index::{RunIndex, StepIndex};
use crate::record::step_name;

/// Where the exported `index.html` loads the run's summary; the served page has no such tags.
const STATIC_MARKER: &str = "<!-- static data -->";

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rollout steps written.
    pub steps: usize,
    /// Sampled trajectories written.
    pub samples: usize,
    /// Images copied.
    pub images: usize,
    /// Records or images that could not be read, each naming its file.
    pub warnings: Vec<String>,
}

/// Writes the viewer of `run_dir` as a static site into `out` (new or empty).
pub fn export(run_dir: &Path, out: &Path) -> Result<ExportSummary> {
    let mut index = RunIndex::open(run_dir)?;
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Error::ExportNotEmpty(out.to_path_buf()));
    }
    let data = out.join("data");
    std::fs::create_dir_all(&data).map_err(Error::io(&data))?;
    for asset in ASSETS {
        let body = if asset.name == "index.html" {
            asset.body.replace(
                STATIC_MARKER,
                r#"<script src="data/overview.js"></script><script src="data/evals.js"></script>"#,
            )
        } else {
            asset.body.to_owned()
        };
        write(&out.join(asset.name), body.as_bytes())?;
    }
    let overview = index.overview();
    write_data(&data, "overview", "overview", &overview)?;
    write_data(&data, "evals", "evals", &index.evals_json())?;

    let mut summary = ExportSummary {
        steps: 0,
        samples: 0,
        images: 0,
        warnings: Vec::new(),
    };
    summary
        .warnings
        .extend(index.warnings().into_iter().map(str::to_owned));
    let root = index.root().to_path_buf();
    for step in index.rollout_steps() {
        let path = index
            .rollout_path(step)
            .expect("listed steps have a file")
            .to_path_buf();
        let mut step_index = StepIndex::new(step, &path, &root);
        let mut records: Vec<u8> = b"[".to_vec();
        let mut images: Vec<String> = Vec::new();
        step_index.refresh(|line, record| {
            if records.len() > 1 {
                records.push(b',');
            }
            records.extend_from_slice(&line.text);
            let paths = record.turns.into_iter().flat_map(|turn| turn.images);
            images.extend(paths.map(|image| image.path));
        })?;
        records.push(b']');
        let mut body = br#"{"summary":"#.to_vec();
        body.extend_from_slice(&step_index.to_json());
        body.extend_from_slice(br#","records":"#);
        body.extend_from_slice(&records);
        body.push(b'}');
        write_data(&data, &step_name(step), &format!("step/{step}"), &body)?;
        summary.steps += 1;
        summary.samples += step_index.sample_count();
        summary.warnings.extend_from_slice(step_index.warnings());
        for image in images {
            match copy_image(&root, &image, out) {
                Ok(()) => summary.images += 1,
                Err(message) => summary.warnings.push(message),
            }
        }
    }
    Ok(summary)
}

/// Writes `data/<file>.js`, which registers `json` under `key`.
fn write_data(dir: &Path, file: &str, key: &str, json: &[u8]) -> Result<()> {
    let mut script = format!("window.__replayPut({key:?}, ").into_bytes();
    script.extend_from_slice(json);
    script.extend_from_slice(b");\n");
    write(&dir.join(format!("{file}.js")), &script)
}

fn copy_image(root: &Path, relative: &str, out: &Path) -> std::result::Result<(), String> {
    let source = files::resolve(root, relative).map_err(|why| {
        let why = match why {
            files::Refused::Forbidden => "points outside",
            files::Refused::NotFound => "is missing",
        };
        format!("image {relative} {why} in the run directory")
    })?;
    let target: PathBuf = out.join("files").join(relative);
    if target.exists() {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::copy(&source, &target)
        .map(drop)
        .map_err(|e| format!("copying {} to {}: {e}", source.display(), target.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(Error::io(path))
}
