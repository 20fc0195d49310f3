//! Reward plugins in any language: an external process speaking JSON lines.
//!
//! The host starts the process once (`command`, run in the config's directory) and reuses it.
//! For every response it writes one request line to the plugin's stdin and reads one response
//! line from its stdout:
//!
//! ```text
//! → {"id": 7, "reward": "tidy", "params": {…}, "turn": 1, "room": {…}, "response": "…",
//!    "answer": {…} | null, "format_error": {…} | null, "assessment": {…},
//!    "images": [{"name": "perspective", "path": "/…/perspective.png", "width": 448, "height": 448}]}
//! ← {"id": 7, "value": 0.8, "components": {"symmetry": 0.6}, "note": "optional"}
//! ← {"id": 7, "error": "why no value"}
//! ```
//!
//! `room`, `answer`, `format_error` and `assessment` are the JSON forms of the environment's
//! `Room`, `ParsedAnswer`, `AnswerError` and `Assessment`. Anything the plugin writes to stderr
//! is logged. A call fails — the component gets its configured fallback and the reason is
//! logged — when the plugin does not answer within `timeout_s`, exits, prints a line that is not
//! a response to this request, or answers with `error` or a non-finite value. After a failure
//! the process is killed and a fresh one is started on the next call; a plugin that fails
//! before ever answering is restarted only after a back-off (`restart_backoff_s`, doubling up
//! to a minute), so a plugin that cannot start does not cost a process per response.
//!
//! `processes` (1 by default) starts that many copies, used concurrently within a batch.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::absolute_dir;
use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// Longest wait between restarts of a plugin that keeps failing before it answers.
const MAX_BACKOFF: Duration = Duration::from_mins(1);

/// Parameters of `plugin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginParams {
    /// Program and arguments, e.g. `["python3", "tidy.py"]`; run in the config's directory.
    pub command: Vec<String>,
    /// Seconds to wait for each answer.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Copies of the process to run concurrently.
    #[serde(default = "one")]
    pub processes: usize,
    /// First wait, in seconds, before restarting a plugin that failed before answering.
    #[serde(default = "default_backoff")]
    pub restart_backoff_s: f64,
    /// Send paths of the rendered views (views without a saved file are written to a
    /// temporary directory first).
    #[serde(default = "yes")]
    pub send_images: bool,
    /// Extra environment variables for the process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The plugin's own settings, passed in every request as `params`.
    #[serde(default)]
    pub config: Option<ron::Value>,
}

fn default_timeout() -> f64 {
    10.0
}
fn one() -> usize {
    1
}
fn default_backoff() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// One request line.
#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    reward: &'a str,
    params: &'a serde_json::Value,
    turn: usize,
    room: &'a metaspatial_env::Room,
    response: &'a str,
    answer: Option<&'a metaspatial_env::answer::ParsedAnswer>,
    format_error: Option<&'a metaspatial_env::answer::AnswerError>,
    assessment: &'a metaspatial_env::Assessment,
    images: Vec<ImageRef>,
}

/// A rendered view as the plugin sees it.
#[derive(Serialize)]
struct ImageRef {
    name: String,
    path: PathBuf,
    width: u32,
    height: u32,
}

/// One response line; extra keys are allowed.
#[derive(Deserialize)]
struct Response {
    id: u64,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    components: BTreeMap<String, f64>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A running plugin process.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<std::io::Result<String>>,
    answered: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One process slot: the process, if running, and its restart state.
struct Worker {
    running: Option<Running>,
    next_id: u64,
    down_until: Option<Instant>,
    backoff: Duration,
}

impl Worker {
    /// Keeps the process down for the current back-off, and doubles it for next time.
    fn back_off(&mut self) {
        self.down_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// The `plugin` reward: an external process.
pub struct Plugin {
    label: String,
    params: PluginParams,
    program_dir: PathBuf,
    request_params: serde_json::Value,
    workers: Vec<Mutex<Worker>>,
    next: AtomicUsize,
    image_dir: OnceLock<Result<tempfile::TempDir, String>>,
}

/// The name configs give this reward.
pub const NAME: &str = "plugin";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    let p: PluginParams = params.parse_required()?;
    Ok(Box::new(Plugin::new(params.label(), p, params.base_dir())?))
}

impl Plugin {
    /// A plugin host for the component `label`, running `params.command` in `dir` (relative to
    /// the current directory). Nothing is started until the first call.
    pub fn new(label: &str, params: PluginParams, dir: &Path) -> Result<Self, BuildError> {
        // The working directory and a program named by a relative path must agree.
        let dir = absolute_dir(dir).map_err(|e| {
            BuildError::Invalid(format!(
                "cannot resolve the directory {}: {e}",
                dir.display()
            ))
        })?;
        if params.command.is_empty() {
            return Err("`command` is empty".into());
        }
        if !(params.timeout_s.is_finite() && params.timeout_s > 0.0) {
            return Err("`timeout_s` must be a positive number of seconds".into());
        }
        if !(params.restart_backoff_s.is_finite() && params.restart_backoff_s >= 0.0) {
            return Err("`restart_backoff_s` must be a non-negative number of seconds".into());
        }
        if params.processes == 0 {
            return Err("`processes` must be at least 1".into());
        }
        let request_params = match &params.config {
            Some(v) => serde_json::to_value(v).map_err(|e| {
                BuildError::Invalid(format!("`config` cannot be sent as JSON: {e}"))
            })?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let backoff = Duration::from_secs_f64(params.restart_backoff_s);
        let workers = (0..params.processes)
            .map(|_| {
                Mutex::new(Worker {
                    running: None,
                    next_id: 1,
                    down_until: None,
                    backoff,
                })
            })
            .collect();
        Ok(Self {
            label: label.to_owned(),
            params,
            program_dir: dir,
            request_params,
            workers,
            next: AtomicUsize::new(0),
            image_dir: OnceLock::new(),
        })
    }

    fn spawn(&self) -> Result<Running, String> {
        let program = &self.params.command[0];
        // A program named with a path is relative to the config; a bare name is looked up on PATH.
        let program = if program.contains('/') {
            self.program_dir.join(program)
        } else {
            PathBuf::from(program)
        };
        let mut child = Command::new(&program)
            .args(&self.params.command[1..])
            .current_dir(&self.program_dir)
            .envs(&self.params.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", program.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let label = self.label.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::info!(plugin = %label, "{line}");
            }
        });
        tracing::debug!(plugin = %self.label, pid = child.id(), "started");
        Ok(Running {
            child,
            stdin,
            lines,
            answered: false,
        })
    }

    /// Sends one request line and reads its answer, starting the process if needed.
    fn call(
        &self,
        worker: &mut Worker,
        make_line: impl FnOnce(u64) -> Result<String, String>,
    ) -> Result<Response, String> {
        if worker.running.is_none() {
            if let Some(until) = worker.down_until {
                let now = Instant::now();
                if now < until {
                    return Err(format!(
                        "not restarted yet after failing to start ({:.1} s left)",
                        (until - now).as_secs_f64()
                    ));
                }
            }
            match self.spawn() {
                Ok(r) => worker.running = Some(r),
                Err(e) => {
                    worker.back_off();
                    return Err(e);
                }
            }
        }
        let id = worker.next_id;
        worker.next_id += 1;
        let line = make_line(id)?;
        let timeout = Duration::from_secs_f64(self.params.timeout_s);
        let running = worker.running.as_mut().expect("started above");
        let result = exchange(running, &line, id, timeout);
        if result.is_ok() {
            running.answered = true;
            worker.down_until = None;
            worker.backoff = Duration::from_secs_f64(self.params.restart_backoff_s);
        }
        result
    }

    /// Kills the worker's process after a failure and decides when it may start again.
    fn fail(worker: &mut Worker, reason: String) -> String {
        let Some(mut running) = worker.running.take() else {
            return reason;
        };
        // A plugin that closed its stdout is usually exiting: give it a moment, for its status.
        let mut status = None;
        for _ in 0..20 {
            status = running.child.try_wait().ok().flatten();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !running.answered {
            worker.back_off();
        }
        drop(running);
        match status {
            Some(s) => format!("{reason} (the plugin exited: {s})"),
            None => reason,
        }
    }

    fn images(&self, ctx: &RewardContext<'_>) -> Result<Vec<ImageRef>, String> {
        if !self.params.send_images {
            return Ok(Vec::new());
        }
        ctx.views
            .iter()
            .map(|v| {
                let path = match &v.path {
                    Some(p) => p.clone(),
                    None => self.write_image(&v.frame)?,
                };
                Ok(ImageRef {
                    name: v.name.clone(),
                    path,
                    width: v.frame.width,
                    height: v.frame.height,
                })
            })
            .collect()
    }

    /// Writes a view that has no file to the plugin's temporary directory, named by its hash.
    fn write_image(&self, frame: &metaspatial_render::Frame) -> Result<PathBuf, String> {
        let dir = self
            .image_dir
            .get_or_init(|| {
                tempfile::Builder::new()
                    .prefix("metaspatial-plugin-")
                    .tempdir()
                    .map_err(|e| format!("cannot create a directory for images: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let mut h = Sha256::new();
        h.update(frame.width.to_le_bytes());
        h.update(frame.height.to_le_bytes());
        h.update(&frame.color);
        let name = hex(&h.finalize()[..12]);
        let path = dir.path().join(format!("{name}.png"));
        if !path.exists() {
            frame.save_png(&path).map_err(|e| e.to_string())?;
        }
        Ok(path)
    }
}

/// Writes the request and waits for the answer with this id.
fn exchange(
    running: &mut Running,
    line: &str,
    id: u64,
    timeout: Duration,
) -> Result<Response, String> {
    running
        .stdin
        .write_all(line.as_bytes())
        .and_then(|()| running.stdin.write_all(b"\n"))
        .and_then(|()| running.stdin.flush())
        .map_err(|e| format!("cannot write the request: {e}"))?;
    let reply = match running.lines.recv_timeout(timeout) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(format!("cannot read the answer: {e}")),
        Err(RecvTimeoutError::Timeout) => {
            return Err(format!("no answer within {} s", timeout.as_secs_f64()));
        }
        Err(RecvTimeoutError::Disconnected) => return Err("stdout closed before an answer".into()),
    };
    let response: Response = serde_json::from_str(&reply).map_err(|e| {
        let shown: String = reply.chars().take(120).collect();
        format!("not a response line ({e}): {shown:?}")
    })?;
    if response.id != id {
        return Err(format!(
            "answer for request {} while waiting for {id}",
            response.id
        ));
    }
    Ok(response)
}

impl Reward for Plugin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let images = match self.images(ctx) {
            Ok(i) => i,
            Err(e) => return RewardOutcome::failed(e),
        };
        // Take a free process if there is one; otherwise wait for one in turn.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.workers.len();
        let mut guard = (0..n)
            .find_map(|k| self.workers[(start + k) % n].try_lock().ok())
            .unwrap_or_else(|| {
                self.workers[start % n]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            });
        let worker = &mut *guard;
        let make_line = |id| {
            serde_json::to_string(&Request {
                id,
                reward: &self.label,
                params: &self.request_params,
                turn: ctx.turn,
                room: ctx.room,
                response: ctx.response,
                answer: ctx.answer.ok(),
                format_error: ctx.answer.err(),
                assessment: ctx.assessment,
                images,
            })
            .map_err(|e| format!("cannot encode the request: {e}"))
        };
        match self.call(worker, make_line) {
            Ok(Response { error: Some(e), .. }) => {
                RewardOutcome::failed(format!("the plugin reports: {e}"))
            }
            Ok(Response {
                value: Some(value),
                components,
                note,
                ..
            }) if value.is_finite() => RewardOutcome {
                value,
                components,
                note,
                failure: None,
            },
            Ok(Response { value, .. }) => RewardOutcome::failed(format!(
                "the plugin answered without a finite value ({value:?})"
            )),
            Err(reason) => RewardOutcome::failed(Self::fail(worker, reason)),
        }
    }

    fn io_concurrency(&self) -> Option<usize> {
        Some(self.workers.len())
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("label", &self.label)
            .field("command", &self.params.command)
            .finish_non_exhaustive()
    }
}

/// Lower-case hexadecimal of bytes (hash names).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
