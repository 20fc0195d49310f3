//! The server's index of a run directory: built once, then refreshed with only what changed.
//!
//! Metrics are held column by column so the overview of a long run is one cached buffer.
//! Rollout files are not read until a step is opened; then only the summary of each sample and
//! the byte range of its line are kept, and a full record is read back from disk on demand.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::record::{EvalReport, MetricsLine, RolloutRecord, RunLayout};
use crate::tail::{Line, Tail};

/// Parse errors kept per source, so a badly broken file cannot grow memory without bound.
const MAX_WARNINGS: usize = 50;

/// The step number of a `step-NNNNNN<suffix>` file name.
pub(crate) fn step_of(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Metrics as columns: row `i` is the `i`-th line of `metrics.jsonl`.
#[derive(Debug, Default)]
struct Metrics {
    step: Vec<u64>,
    elapsed: Vec<f64>,
    /// Every scalar name seen; `None` where a line lacks it.
    series: BTreeMap<String, Vec<Option<f64>>>,
}

impl Metrics {
    fn push(&mut self, line: MetricsLine) {
        let row = self.step.len();
        self.step.push(line.step);
        self.elapsed.push(line.elapsed);
        for (name, value) in line.values {
            self.series
                .entry(name)
                .or_insert_with(|| vec![None; row])
                .push(Some(value));
        }
        for column in self.series.values_mut() {
            if column.len() == row {
                column.push(None);
            }
        }
    }

    /// Rows from `from` on, borrowed for serialisation.
    fn view(&self, from: usize) -> MetricsView<'_> {
        let from = from.min(self.step.len());
        MetricsView {
            rows: self.step.len(),
            from,
            step: &self.step[from..],
            elapsed: &self.elapsed[from..],
            series: self
                .series
                .iter()
                .map(|(name, column)| (name.as_str(), &column[from..]))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct MetricsView<'a> {
    /// Rows in the whole table.
    rows: usize,
    /// Row index of the first row sent.
    from: usize,
    step: &'a [u64],
    elapsed: &'a [f64],
    series: BTreeMap<&'a str, &'a [Option<f64>]>,
}

/// The `step-N…` entries of a directory, re-listed only when the directory changed.
#[derive(Debug)]
struct StepDir {
    dir: PathBuf,
    suffix: &'static str,
    want_dirs: bool,
    /// Modification time of the directory at the last listing.
    listed_at: Option<SystemTime>,
    entries: BTreeMap<u64, PathBuf>,
}

impl StepDir {
    fn new(dir: PathBuf, suffix: &'static str, want_dirs: bool) -> Self {
        Self {
            dir,
            suffix,
            want_dirs,
            listed_at: None,
            entries: BTreeMap::new(),
        }
    }

    /// Lists the directory again if it may have changed; returns whether the entries changed.
    fn refresh(&mut self) -> Result<bool> {
        let modified = match std::fs::metadata(&self.dir) {
            Ok(meta) => meta.modified().ok(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let changed = !self.entries.is_empty();
                self.entries.clear();
                self.listed_at = None;
                return Ok(changed);
            }
            Err(error) => return Err(Error::io(&self.dir)(error)),
        };
        // A directory's mtime may be coarse (whole seconds on some file systems): an entry
        // added in the same tick as the last listing would go unseen, so recent times re-list.
        let settled = modified.is_some_and(|time| {
            SystemTime::now()
                .duration_since(time)
                .is_ok_and(|age| age > Duration::from_secs(2))
        });
        if settled && modified == self.listed_at {
            return Ok(false);
        }
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(Error::io(&self.dir))? {
            let entry = entry.map_err(Error::io(&self.dir))?;
            let name = entry.file_name();
            let Some(step) = name.to_str().and_then(|name| step_of(name, self.suffix)) else {
                continue;
            };
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir == self.want_dirs {
                entries.insert(step, entry.path());
            }
        }
        self.listed_at = modified;
        let changed = entries != self.entries;
        self.entries = entries;
        Ok(changed)
    }

    fn steps(&self) -> Vec<u64> {
        self.entries.keys().copied().collect()
    }
}

/// An evaluation file as last read: its size and time, to notice a rewrite.
#[derive(Debug)]
struct EvalFile {
    stamp: (u64, Option<SystemTime>),
    report: std::result::Result<EvalReport, String>,
}

/// What one turn of a sample shows in the step's table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TurnSummary {
    turn: usize,
    reward: f64,
    valid: bool,
    format_error: bool,
    finish: String,
    response_tokens: usize,
    collisions: usize,
    out_of_bounds: usize,
    unsupported: usize,
    unsatisfied: usize,
    missing: usize,
}

/// One sample of a step, as listed in the step's table, and where its line is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SampleSummary {
    group: usize,
    sample: usize,
    reward: f64,
    turns: Vec<TurnSummary>,
    /// 1-based line in the rollout file.
    line: usize,
    #[serde(skip)]
    offset: u64,
    #[serde(skip)]
    len: usize,
}

/// The room of a group, as shown above its samples.
#[derive(Debug, Clone, Serialize)]
struct GroupSummary {
    group: usize,
    room_id: String,
    description: String,
    size: [f64; 3],
    objects: usize,
}

impl SampleSummary {
    fn of(record: &RolloutRecord, line: &Line) -> Self {
        Self {
            group: record.group,
            sample: record.sample,
            reward: record.reward,
            turns: record
                .turns
                .iter()
                .map(|turn| TurnSummary {
                    turn: turn.turn,
                    reward: turn.reward,
                    valid: turn.valid,
                    format_error: turn.format_error.is_some(),
                    finish: turn.finish.clone(),
                    response_tokens: turn.response_tokens,
                    collisions: turn.violations.collisions.len(),
                    out_of_bounds: turn.violations.out_of_bounds.len(),
                    unsupported: turn.violations.unsupported.len(),
                    unsatisfied: turn.violations.unsatisfied_relations.len(),
                    missing: turn.violations.missing_objects.len(),
                })
                .collect(),
            line: line.number,
            offset: line.offset,
            len: line.text.len(),
        }
    }
}

/// The samples of one rollout file read so far.
#[derive(Debug)]
pub(crate) struct StepIndex {
    step: u64,
    tail: Tail,
    /// The file as warnings name it.
    name: String,
    samples: Vec<SampleSummary>,
    groups: BTreeMap<usize, GroupSummary>,
    warnings: Vec<String>,
}

impl StepIndex {
    /// An index of `path`, the rollout file of `step` in the run `root`, with nothing read yet.
    pub(crate) fn new(step: u64, path: &Path, root: &Path) -> Self {
        Self {
            step,
            tail: Tail::new(path),
            name: shown(root, path),
            samples: Vec::new(),
            groups: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads the lines appended since the last refresh, handing each parsed record to `each`.
    pub(crate) fn refresh(&mut self, mut each: impl FnMut(&Line, RolloutRecord)) -> Result<()> {
        let found = self.tail.read_new()?;
        if found.reset {
            self.samples.clear();
            self.groups.clear();
            self.warnings.clear();
        }
        for line in found.lines {
            match serde_json::from_slice::<RolloutRecord>(&line.text) {
                Ok(record) => {
                    self.groups
                        .entry(record.group)
                        .or_insert_with(|| GroupSummary {
                            group: record.group,
                            room_id: record.room.id.clone(),
                            description: record.room.description.clone(),
                            size: record.room.size,
                            objects: record.room.objects.len(),
                        });
                    self.samples.push(SampleSummary::of(&record, &line));
                    each(&line, record);
                }
                Err(error) => warn(
                    &mut self.warnings,
                    format!("{}:{}: {error}", self.name, line.number),
                ),
            }
        }
        Ok(())
    }

    /// Forgets what was read, so the next refresh reads the file from the top.
    fn restart(&mut self) {
        self.tail = Tail::new(self.tail.path());
        self.samples.clear();
        self.groups.clear();
        self.warnings.clear();
    }

    /// Lines that could not be read, each naming the file and line.
    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Samples read so far.
    pub(crate) fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// The step's table as JSON.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct View<'a> {
            step: u64,
            groups: Vec<&'a GroupSummary>,
            samples: &'a [SampleSummary],
            warnings: &'a [String],
        }
        serde_json::to_vec(&View {
            step: self.step,
            groups: self.groups.values().collect(),
            samples: &self.samples,
            warnings: &self.warnings,
        })
        .expect("plain data serialises")
    }

    /// The line of one sample, read back from the file and checked to still be that sample.
    fn read_sample(&self, group: usize, sample: usize) -> Result<Option<Vec<u8>>> {
        #[derive(serde::Deserialize)]
        struct Key {
            group: usize,
            sample: usize,
        }

        let Some(summary) = self
            .samples
            .iter()
            .find(|s| s.group == group && s.sample == sample)
        else {
            return Ok(None);
        };
        let path = self.tail.path();
        let mut file = File::open(path).map_err(Error::io(path))?;
        file.seek(SeekFrom::Start(summary.offset))
            .map_err(Error::io(path))?;
        let mut text = vec![0; summary.len];
        if file.read_exact(&mut text).is_err() {
            return Ok(None);
        }
        // The file may have been replaced since it was indexed; then the bytes there belong to
        // another line and the caller re-indexes.
        let same = serde_json::from_slice::<Key>(&text)
            .is_ok_and(|key| key.group == group && key.sample == sample);
        Ok(same.then_some(text))
    }
}

/// `path` relative to the run directory, as warnings name it: the page may be shared, the
/// machine's directory layout need not be.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn warn(warnings: &mut Vec<String>, message: String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(message);
    }
}

/// Everything the viewer knows about a run directory.
#[derive(Debug)]
pub(crate) struct RunIndex {
    root: PathBuf,
    name: String,
    config: Option<String>,
    metrics_tail: Tail,
    metrics: Metrics,
    metrics_warnings: Vec<String>,
    rollouts: StepDir,
    evals_dir: StepDir,
    evals: BTreeMap<u64, EvalFile>,
    checkpoints: StepDir,
    steps: HashMap<u64, StepIndex>,
    /// Bumped whenever a refresh finds something new.
    version: u64,
    overview: Option<(u64, Arc<[u8]>)>,
}

impl RunIndex {
    /// Opens a run directory and reads what it holds so far.
    pub(crate) fn open(run_dir: &Path) -> Result<Self> {
        if !run_dir.is_dir() {
            return Err(Error::NotADirectory(run_dir.to_path_buf()));
        }
        let root = run_dir.canonicalize().map_err(Error::io(run_dir))?;
        let layout = RunLayout::new(&root);
        let metrics_path = layout.metrics();
        if !metrics_path.is_file() {
            return Err(Error::NotARun(run_dir.to_path_buf()));
        }
        let name = root.file_name().map_or_else(
            || root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut index = Self {
            name,
            config: None,
            metrics_tail: Tail::new(&metrics_path),
            metrics: Metrics::default(),
            metrics_warnings: Vec::new(),
            rollouts: StepDir::new(layout.rollouts(), ".jsonl", false),
            evals_dir: StepDir::new(layout.evals(), ".json", false),
            evals: BTreeMap::new(),
            checkpoints: StepDir::new(layout.checkpoints(), "", true),
            steps: HashMap::new(),
            version: 0,
            overview: None,
            root,
        };
        index.refresh()?;
        Ok(index)
    }

    /// The canonical run directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Reads whatever was written since the last refresh.
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let mut changed = false;
        let found = self.metrics_tail.read_new()?;
        if found.reset {
            self.metrics = Metrics::default();
            self.metrics_warnings.clear();
            changed = true;
        }
        for line in found.lines {
            changed = true;
            match serde_json::from_slice::<MetricsLine>(&line.text) {
                Ok(metrics) => self.metrics.push(metrics),
                Err(error) => warn(
                    &mut self.metrics_warnings,
                    format!("metrics.jsonl:{}: {error}", line.number),
                ),
            }
        }
        changed |= self.rollouts.refresh()?;
        changed |= self.checkpoints.refresh()?;
        changed |= self.refresh_evals()?;
        let config = std::fs::read_to_string(RunLayout::new(&self.root).config()).ok();
        if config != self.config {
            self.config = config;
            changed = true;
        }
        if changed {
            self.version += 1;
        }
        Ok(())
    }

    fn refresh_evals(&mut self) -> Result<bool> {
        let mut changed = self.evals_dir.refresh()?;
        let listed = &self.evals_dir.entries;
        let before = self.evals.len();
        self.evals.retain(|step, _| listed.contains_key(step));
        changed |= self.evals.len() != before;
        for (&step, path) in listed {
            let meta = match std::fs::metadata(path) {
                Ok(meta) => meta,
                // Replaced between listing and reading: the next refresh sees the new one.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(Error::io(path)(error)),
            };
            let stamp = (meta.len(), meta.modified().ok());
            if self.evals.get(&step).is_some_and(|e| e.stamp == stamp) {
                continue;
            }
            let text = std::fs::read(path).map_err(Error::io(path))?;
            let report = serde_json::from_slice::<EvalReport>(&text)
                .map_err(|error| format!("{}: {error}", shown(&self.root, path)));
            self.evals.insert(step, EvalFile { stamp, report });
            changed = true;
        }
        Ok(changed)
    }

    /// Every problem met while reading, each naming its file and line.
    pub(crate) fn warnings(&self) -> Vec<&str> {
        let evals = self.evals.values().filter_map(|e| e.report.as_ref().err());
        self.metrics_warnings
            .iter()
            .chain(evals)
            .map(String::as_str)
            .collect()
    }

    /// The run summary with every metric, as JSON; built once per version.
    pub(crate) fn overview(&mut self) -> Arc<[u8]> {
        if let Some((version, bytes)) = &self.overview
            && *version == self.version
        {
            return Arc::clone(bytes);
        }
        let bytes: Arc<[u8]> = self.summary_json(0, true).into();
        self.overview = Some((self.version, Arc::clone(&bytes)));
        bytes
    }

    /// What changed for a client that has seen `version` and the first `rows` metric rows.
    pub(crate) fn poll(&self, version: u64, rows: usize) -> Vec<u8> {
        if version == self.version {
            return format!("{{\"version\":{},\"unchanged\":true}}", self.version).into_bytes();
        }
        self.summary_json(rows, false)
    }

    fn summary_json(&self, from: usize, with_config: bool) -> Vec<u8> {
        #[derive(Serialize)]
        struct Summary<'a> {
            run: &'a str,
            version: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            config: Option<&'a str>,
            metrics: MetricsView<'a>,
            rollout_steps: Vec<u64>,
            eval_steps: Vec<u64>,
            checkpoints: Vec<u64>,
            warnings: Vec<&'a str>,
        }
        serde_json::to_vec(&Summary {
            run: &self.name,
            version: self.version,
            config: if with_config {
                self.config.as_deref()
            } else {
                None
            },
            metrics: self.metrics.view(from),
            rollout_steps: self.rollouts.steps(),
            eval_steps: self.evals.keys().copied().collect(),
            checkpoints: self.checkpoints.steps(),
            warnings: self.warnings(),
        })
        .expect("plain data serialises")
    }

    /// Every evaluation report that could be read, by step.
    pub(crate) fn evals_json(&self) -> Vec<u8> {
        let reports: Vec<&EvalReport> = self
            .evals
            .values()
            .filter_map(|e| e.report.as_ref().ok())
            .collect();
        serde_json::to_vec(&reports).expect("plain data serialises")
    }

    /// The steps that have a rollout file.
    pub(crate) fn rollout_steps(&self) -> Vec<u64> {
        self.rollouts.steps()
    }

    /// The rollout file of `step`, as listed.
    pub(crate) fn rollout_path(&self, step: u64) -> Option<&Path> {
        self.rollouts.entries.get(&step).map(PathBuf::as_path)
    }

    /// The table of `step`, reading what was appended to its file since last asked.
    pub(crate) fn step_json(&mut self, step: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.step_index(step)?.map(|index| index.to_json()))
    }

    fn step_index(&mut self, step: u64) -> Result<Option<&mut StepIndex>> {
        let Some(path) = self.rollouts.entries.get(&step) else {
            return Ok(None);
        };
        let index = self
            .steps
            .entry(step)
            .or_insert_with(|| StepIndex::new(step, path, &self.root));
        index.refresh(|_, _| {})?;
        Ok(Some(index))
    }

    /// The full record of one sample, as the JSON line the trainer wrote.
    pub(crate) fn rollout(
        &mut self,
        step: u64,
        group: usize,
        sample: usize,
    ) -> Result<Option<Vec<u8>>> {
        let Some(index) = self.step_index(step)? else {
            return Ok(None);
        };
        if let Some(text) = index.read_sample(group, sample)? {
            return Ok(Some(text));
        }
        // Rewritten since indexed: index the file afresh once.
        index.restart();
        index.refresh(|_, _| {})?;
        index.read_sample(group, sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_parse_only_when_well_formed() {
        assert_eq!(step_of("step-000042.jsonl", ".jsonl"), Some(42));
        assert_eq!(step_of("step-7", ""), Some(7));
        assert_eq!(step_of("step-000042.jsonl.tmp", ".jsonl"), None);
        assert_eq!(step_of("step-.jsonl", ".jsonl"), None);
        assert_eq!(step_of("step-4x.json", ".json"), None);
        assert_eq!(step_of("latest", ""), None);
    }

    #[test]
    fn metrics_columns_fill_gaps_with_none() {
        let mut metrics = Metrics::default();
        let line = |step, pairs: &[(&str, f64)]| MetricsLine {
            step,
            elapsed: step as f64,
            values: pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
        };
        metrics.push(line(1, &[("loss", 1.0)]));
        metrics.push(line(2, &[("kl", 0.5)]));
        metrics.push(line(3, &[("loss", 0.25), ("kl", 0.1)]));
        assert_eq!(metrics.series["loss"], [Some(1.0), None, Some(0.25)]);
        assert_eq!(metrics.series["kl"], [None, Some(0.5), Some(0.1)]);
        let view = metrics.view(2);
        assert_eq!((view.rows, view.from, view.step), (3, 2, &[3][..]));
    }
}
