//! `judge`: a vision-language model grades the render.
//!
//! **What it does.** Sends a rendered view (`view` param; the first by default) and the room's
//! description (the user's preference) to any OpenAI-compatible chat-completions endpoint
//! (`base_url`, `model`, the API key read from the environment variable named by
//! `api_key_env`) with I-Design's five-criterion rubric, as used by MetaSpatial's judge:
//! realism and 3D geometric consistency; functionality and activity-based alignment; layout
//! and furniture; colour scheme and material choices; overall aesthetic and atmosphere. Each
//! is graded 1–10 (or `unknown`); the value is the mean grade / 10, each grade a component.
//!
//! Transport errors, time-outs (`timeout_s`), 429 and 5xx answers and replies without any
//! grade are retried `retries` times with exponential back-off from `backoff_s`; other HTTP
//! errors (a bad key, an unknown model) fail at once. A failure gives the configured fallback.
//! Grades are cached by a hash of the image, the description and the model, in memory and, with
//! `cache_dir`, on disk, so identical renders (common within a GRPO group) cost one request.
//! `concurrency` requests run at once within a batch.
//!
//! **Why.** Physics and relations say a layout is possible; only a look at it says it is a room
//! someone would want. This is MetaSpatial's GPT-4o term, for any model behind any compatible
//! server (vLLM, an inference provider, OpenAI).
//!
//! **Example.** The judge answers realism 8, functionality 7, layout 7, colour 9, atmosphere 8:
//! value (8 + 7 + 7 + 9 + 8) / 50 = 0.78.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{BuildError, Params, Reward, RewardContext, RewardOutcome};

/// The five criteria: reply key and description.
pub const CRITERIA: [(&str, &str); 5] = [
    (
        "realism_and_3d_geometric_consistency",
        "Realism and 3D geometric consistency",
    ),
    (
        "functionality_and_activity_based_alignment",
        "Functionality and activity-based alignment",
    ),
    ("layout_and_furniture", "Layout and furniture"),
    (
        "color_scheme_and_material_choices",
        "Colour scheme and material choices",
    ),
    (
        "overall_aesthetic_and_atmosphere",
        "Overall aesthetic and atmosphere",
    ),
];

/// Parameters of `judge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeParams {
    /// Endpoint base, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Name of the environment variable holding the API key; no key is sent without it.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The view to send; the first view when absent.
    #[serde(default)]
    pub view: Option<String>,
    /// Seconds allowed for one request.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First back-off in seconds, doubled after each retry.
    #[serde(default = "default_backoff")]
    pub backoff_s: f64,
    /// Requests in flight at once within a batch.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// `max_tokens` of the request.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Directory for the on-disk grade cache (relative to the config).
    #[serde(default)]
    pub cache_dir: Option<String>,
}

fn default_timeout() -> f64 {
    60.0
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> f64 {
    1.0
}
fn default_concurrency() -> usize {
    4
}
fn default_max_tokens() -> u32 {
    1024
}

/// The `judge` reward.
pub struct Judge {
    params: JudgeParams,
    api_key: Option<String>,
    cache_dir: Option<PathBuf>,
    agent: ureq::Agent,
    cache: Mutex<HashMap<String, RewardOutcome>>,
}

/// The name configs give this reward.
pub const NAME: &str = "judge";

pub(crate) fn factory(params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
    let p: JudgeParams = params.parse_required()?;
    let api_key = match &p.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            BuildError::Invalid(format!(
                "the environment variable `{var}` (api_key_env) is not set"
            ))
        })?),
        None => None,
    };
    let cache_dir = p.cache_dir.as_deref().map(|d| params.resolve(d));
    Ok(Box::new(Judge::new(p, api_key, cache_dir)?))
}

/// Why one attempt failed, and whether another may succeed.
struct Attempt {
    reason: String,
    retry: bool,
}

impl Judge {
    /// A judge with this key and on-disk cache directory.
    pub fn new(
        params: JudgeParams,
        api_key: Option<String>,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, BuildError> {
        if !(params.timeout_s.is_finite() && params.timeout_s > 0.0) {
            return Err("`timeout_s` must be a positive number of seconds".into());
        }
        if !(params.backoff_s.is_finite() && params.backoff_s >= 0.0) {
            return Err("`backoff_s` must be a non-negative number of seconds".into());
        }
        if params.concurrency == 0 {
            return Err("`concurrency` must be at least 1".into());
        }
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                BuildError::Invalid(format!(
                    "cannot create the cache directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(params.timeout_s)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            params,
            api_key,
            cache_dir,
            agent,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The rubric prompt for a room description.
    #[must_use]
    pub fn prompt(description: &str) -> String {
        let criteria: Vec<String> = CRITERIA.iter().map(|(_, d)| format!("- {d}")).collect();
        let keys: Vec<String> = CRITERIA
            .iter()
            .map(|(k, _)| {
                format!("  \"{k}\": {{\"grade\": <1-10 or \"unknown\">, \"comment\": \"…\"}}")
            })
            .collect();
        format!(
            "Give a grade from 1 to 10, or \"unknown\", to the following room render based on how well it \
             corresponds to the user preference (in triple backquotes) in these aspects:\n{}\n\
             User preference:\n```{description}```\n\
             Return the results as JSON in exactly this form:\n```json\n{{\n{}\n}}\n```",
            criteria.join("\n"),
            keys.join(",\n"),
        )
    }

    fn attempt(&self, body: &str) -> Result<RewardOutcome, Attempt> {
        let url = format!(
            "{}/chat/completions",
            self.params.base_url.trim_end_matches('/')
        );
        let mut request = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(body).map_err(|e| Attempt {
            reason: format!("request to {url} failed: {e}"),
            retry: true,
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| Attempt {
            reason: format!("reading the reply failed: {e}"),
            retry: true,
        })?;
        if status != 200 {
            let shown: String = text.chars().take(200).collect();
            return Err(Attempt {
                reason: format!("HTTP {status}: {shown}"),
                retry: status == 429 || status >= 500,
            });
        }
        parse_reply(&text).map_err(|reason| Attempt {
            reason,
            retry: true,
        })
    }
}

/// Reads the grades out of a chat-completions reply body.
fn parse_reply(body: &str) -> Result<RewardOutcome, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the reply is not JSON: {e}"))?;
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("the reply has no choices[0].message.content")?;
    let grades = grades_of(content)?;
    let mut out = RewardOutcome::default();
    let mut sum = 0.0;
    for (key, grade) in &grades {
        sum += grade;
        out.components.insert((*key).to_owned(), *grade);
    }
    out.value = sum / grades.len() as f64 / 10.0;
    Ok(out)
}

/// The grades in the judge's text: the JSON object in it (fenced or bare), each criterion's
/// `grade` (or a bare number) from 1 to 10; `unknown` grades are left out.
fn grades_of(content: &str) -> Result<Vec<(&'static str, f64)>, String> {
    let start = content
        .find('{')
        .ok_or("no JSON object in the judge's answer")?;
    let end = content
        .rfind('}')
        .filter(|&e| e > start)
        .ok_or("no JSON object in the judge's answer")?;
    let v: Value = serde_json::from_str(&content[start..=end])
        .map_err(|e| format!("the judge's JSON is invalid: {e}"))?;
    let mut grades = Vec::new();
    for (key, _) in CRITERIA {
        let g = match &v[key] {
            Value::Object(o) => o.get("grade").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let grade = match g {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if let Some(x) = grade {
            if !(1.0..=10.0).contains(&x) {
                return Err(format!("grade {x} for `{key}` is outside 1–10"));
            }
            grades.push((key, x));
        }
    }
    if grades.is_empty() {
        Err("the judge's answer grades none of the five criteria".into())
    } else {
        Ok(grades)
    }
}

impl Reward for Judge {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, ctx: &RewardContext<'_>) -> RewardOutcome {
        let Some(view) = ctx.view(self.params.view.as_deref()) else {
            return RewardOutcome::failed("no rendered image to judge in the context");
        };
        let frame = &view.frame;
        let prompt = Self::prompt(&ctx.room.description);
        let mut h = Sha256::new();
        let (width, height) = (frame.width.to_le_bytes(), frame.height.to_le_bytes());
        let parts: [&[u8]; 5] = [
            self.params.model.as_bytes(),
            prompt.as_bytes(),
            &width,
            &height,
            &frame.color,
        ];
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let key = crate::plugin::hex(&h.finalize());
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return hit.clone();
        }
        let disk = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}.json")));
        if let Some(hit) = disk
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<RewardOutcome>(&t).ok())
        {
            self.remember(&key, &hit);
            return hit;
        }
        let mut png = Vec::new();
        if let Err(e) = frame
            .color_image()
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        {
            return RewardOutcome::failed(format!("cannot encode the render: {e}"));
        }
        let url = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        let body = json!({
            "model": self.params.model,
            "max_tokens": self.params.max_tokens,
            "temperature": 0.0,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": url}},
            ]}],
        })
        .to_string();
        let mut backoff = Duration::from_secs_f64(self.params.backoff_s);
        let mut attempt = 0;
        loop {
            match self.attempt(&body) {
                Ok(outcome) => {
                    self.remember(&key, &outcome);
                    if let Some(p) = &disk {
                        // The cache only saves requests; failing to write it is not worth a failure.
                        if let Err(e) =
                            std::fs::write(p, serde_json::to_string(&outcome).unwrap_or_default())
                        {
                            tracing::warn!("judge cache {}: {e}", p.display());
                        }
                    }
                    return outcome;
                }
                Err(a) if a.retry && attempt < self.params.retries => {
                    tracing::debug!(
                        "judge attempt {} failed, retrying: {}",
                        attempt + 1,
                        a.reason
                    );
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                }
                Err(a) => {
                    return RewardOutcome::failed(format!(
                        "after {} attempt(s): {}",
                        attempt + 1,
                        a.reason
                    ));
                }
            }
        }
    }

    fn io_concurrency(&self) -> Option<usize> {
        Some(self.params.concurrency)
    }
}

impl Judge {
    fn remember(&self, key: &str, outcome: &RewardOutcome) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_owned(), outcome.clone());
    }
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("base_url", &self.params.base_url)
            .field("model", &self.params.model)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_from_fenced_json_with_unknowns() {
        let text = "Here you go:\n```json\n{\"realism_and_3d_geometric_consistency\": {\"grade\": 8}, \
                    \"functionality_and_activity_based_alignment\": {\"grade\": \"unknown\"}, \
                    \"layout_and_furniture\": 6, \"color_scheme_and_material_choices\": {\"grade\": \"9\"}}\n```";
        let g = grades_of(text).unwrap();
        assert_eq!(g.len(), 3);
        assert!(grades_of("no json here").is_err());
        assert!(grades_of("{\"layout_and_furniture\": 11}").is_err());
    }
}
