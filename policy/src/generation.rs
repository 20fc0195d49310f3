//! Batched generation with a KV cache: prompts are left-padded and prefilled once, the cache is
//! repeated for the G samples of each prompt, and every decode step samples on the device.
//!
//! A decode step is a fixed sequence of kernels with no host synchronisation: finished
//! sequences keep producing padding rather than leaving the batch, and whether all are done is
//! checked only every [`SYNC_EVERY`] steps.

use tch::{Device, Kind, Tensor};

use crate::error::{PolicyError, Result};
use crate::qwen2_5_vl::{ImageInput, Qwen2_5VlModel, Sequence};

/// Decode steps between checks (one host synchronisation) of whether every sequence stopped.
pub const SYNC_EVERY: i64 = 16;

/// How tokens are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Always take the most likely token (ignores the other sampling settings).
    pub greedy: bool,
    /// Logits are divided by this before sampling.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens (0 = all).
    pub top_k: i64,
    /// transformers' repetition penalty over prompt and generated tokens (1 = off).
    pub repetition_penalty: f64,
    /// Stop after this many new tokens.
    pub max_new_tokens: i64,
    /// A sequence ends at the first of these (the token is kept in its output).
    pub stop_tokens: Vec<i64>,
    /// Seed of the sampling generator.
    pub seed: u64,
    /// Tokens never sampled (their logits are set to −∞ first), e.g. the image placeholders,
    /// which would otherwise ask for images that do not exist when the answer is scored.
    pub suppress_tokens: Vec<i64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            greedy: false,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            max_new_tokens: 512,
            stop_tokens: Vec::new(),
            seed: 0,
            suppress_tokens: Vec::new(),
        }
    }
}

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// It produced a stop token.
    Stop,
    /// It reached `max_new_tokens`.
    Length,
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of its prompt.
    pub prompt: usize,
    /// Index of the sample within its group.
    pub sample: usize,
    /// New tokens, including the stop token when there is one.
    pub tokens: Vec<i64>,
    /// Why it stopped.
    pub finish: FinishReason,
}

/// Generates `group_size` continuations of each prompt; completions come prompt-major
/// (prompt 0's samples first).
pub fn generate(
    model: &Qwen2_5VlModel,
    prompts: &[Sequence],
    group_size: usize,
    params: &SamplingParams,
) -> Result<Vec<Completion>> {
    if prompts.is_empty() || group_size == 0 || params.max_new_tokens < 1 {
        return Ok(Vec::new());
    }
    if let Some(i) = prompts.iter().position(|p| p.tokens.is_empty()) {
        return Err(PolicyError::Input(format!("prompt {i} is empty")));
    }
    if !params.greedy && params.temperature <= 0.0 {
        return Err(PolicyError::Input(format!(
            "temperature must be positive, got {}",
            params.temperature
        )));
    }
    let device = model.device();
    let vocab = model.config().text_config.vocab_size;
    let pad = params.stop_tokens.first().copied().unwrap_or(0);
    let batch = LeftPadded::new(model, prompts, pad)?;
    let g = group_size as i64;
    let rows = batch.rows * g;

    tch::no_grad(|| {
        let images: Vec<&ImageInput> = prompts.iter().flat_map(|p| &p.images).collect();
        let embeds = model.embed(&batch.tokens, &images)?;
        let mut cache = model.new_cache(batch.rows, batch.len + params.max_new_tokens);
        let hidden = model.forward_cached(&embeds, &batch.positions, &batch.valid, &mut cache);
        let mut logits = model.logits(&hidden.select(1, -1)).to_kind(Kind::Float);
        let mut next_position = batch.next_positions.shallow_clone();
        let mut seen = ((params.repetition_penalty - 1.0).abs() > f64::EPSILON).then(|| {
            Tensor::zeros([batch.rows, vocab], (Kind::Bool, device)).scatter_value(
                1,
                &batch.tokens,
                1,
            )
        });
        if g > 1 {
            cache = cache.repeat_interleave(g);
            logits = logits.repeat_interleave_self_int(g, 0, None);
            next_position = next_position.repeat_interleave_self_int(g, 0, None);
            seen = seen.map(|s| s.repeat_interleave_self_int(g, 0, None));
        }
        let stop = Tensor::from_slice(&params.stop_tokens).to(device);
        let suppress = (!params.suppress_tokens.is_empty())
            .then(|| Tensor::from_slice(&params.suppress_tokens).to(device));
        // Every uniform draw of the whole generation, made here from the seed and uploaded once:
        // sampling does not depend on libtorch's global generator (shared by every thread).
        let uniforms = uniforms(params.seed, params.max_new_tokens * rows)
            .view([params.max_new_tokens, rows])
            .to(device);
        let out = Tensor::full([rows, params.max_new_tokens], pad, (Kind::Int64, device));
        let mut finished = Tensor::zeros([rows], (Kind::Bool, device));
        let step_valid = Tensor::ones([rows, 1], (Kind::Bool, device));
        let mut steps = 0;
        for step in 0..params.max_new_tokens {
            let token = sample(
                &logits,
                seen.as_ref(),
                suppress.as_ref(),
                params,
                &uniforms.get(step),
            )
            .masked_fill(&finished, pad);
            out.select(1, step).copy_(&token);
            steps = step + 1;
            if !params.stop_tokens.is_empty() {
                finished = finished.logical_or(&Tensor::isin(&token, &stop, false, false));
            }
            if let Some(s) = &mut seen {
                *s = s.scatter_value(1, &token.unsqueeze(1), 1);
            }
            if step + 1 == params.max_new_tokens
                || ((step + 1) % SYNC_EVERY == 0 && finished.all().int64_value(&[]) == 1)
            {
                break;
            }
            let embeds = model.embed(&token.unsqueeze(1), &[])?;
            let positions = next_position.view([1, rows, 1]).expand([3, rows, 1], false);
            let hidden = model.forward_cached(&embeds, &positions, &step_valid, &mut cache);
            logits = model.logits(&hidden.select(1, 0)).to_kind(Kind::Float);
            next_position += 1;
        }
        let out = Vec::<Vec<i64>>::try_from(out.narrow(1, 0, steps).to_device(Device::Cpu))?;
        Ok(out
            .into_iter()
            .enumerate()
            .map(|(row, tokens)| {
                let cut = tokens.iter().position(|t| params.stop_tokens.contains(t));
                let (tokens, finish) = match cut {
                    Some(i) => (tokens[..=i].to_vec(), FinishReason::Stop),
                    None => (tokens, FinishReason::Length),
                };
                Completion {
                    prompt: row / group_size,
                    sample: row % group_size,
                    tokens,
                    finish,
                }
            })
            .collect())
    })
}

/// Next tokens `(batch,)` from float logits `(batch, vocab)`, on the logits' device, applying
/// transformers' processors in its order: repetition penalty (over tokens marked in `seen`),
/// temperature, top-k, top-p; then inverse-CDF sampling with one uniform in [0, 1) per row.
/// `suppress` holds `params.suppress_tokens` on the logits' device (uploaded once, not per step:
/// an upload waits for the device to finish its queue).
fn sample(
    logits: &Tensor,
    seen: Option<&Tensor>,
    suppress: Option<&Tensor>,
    params: &SamplingParams,
    uniform: &Tensor,
) -> Tensor {
    let mut scores = logits.shallow_clone();
    if let Some(ids) = suppress {
        scores = scores.index_fill(1, ids, f64::NEG_INFINITY);
    }
    if let Some(seen) = seen {
        let p = params.repetition_penalty;
        let penalised = (&scores * p).where_self(&scores.lt(0.0), &(&scores / p));
        scores = penalised.where_self(seen, &scores);
    }
    if params.greedy {
        return scores.argmax(-1, false);
    }
    scores /= params.temperature;
    let vocab = scores.size()[1];
    if params.top_k > 0 && params.top_k < vocab {
        let (top, _) = scores.topk(params.top_k, -1, true, true);
        let kth = top.narrow(-1, params.top_k - 1, 1);
        scores = scores.masked_fill(&scores.lt_tensor(&kth), f64::NEG_INFINITY);
    }
    if params.top_p < 1.0 {
        let (sorted, order) = scores.sort(-1, true);
        let probs = sorted.softmax(-1, Kind::Float);
        // Drop a token when the tokens ranked above it already reach top_p (the first stays).
        let before = probs.cumsum(-1, Kind::Float) - &probs;
        let sorted = sorted.masked_fill(&before.gt(params.top_p), f64::NEG_INFINITY);
        scores = scores.scatter(-1, &order, &sorted);
    }
    let cdf = scores.softmax(-1, Kind::Float).cumsum(-1, Kind::Float);
    // Scale by the total so rounding in the sum can never leave `u` past the last bucket.
    let u = (uniform.to_kind(Kind::Float) * cdf.select(1, vocab - 1)).unsqueeze(1);
    u.searchsorted(&cdf, false, true, "right", None::<Tensor>)
        .squeeze_dim(1)
        .clamp_max(vocab - 1)
}

/// `n` uniforms in [0, 1) from `SplitMix64` seeded with `seed` (f32, on the CPU).
fn uniforms(seed: u64, n: i64) -> Tensor {
    let mut state = seed;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // 24 random bits: every value is exact in f32 and below 1.
            (z >> 40) as f32 / (1_u32 << 24) as f32
        })
        .collect();
    Tensor::from_slice(&values)
}

/// Prompts left-padded to one length, with their multimodal positions.
pub(crate) struct LeftPadded {
    pub(crate) rows: i64,
    pub(crate) len: i64,
    /// `(rows, len)` token ids.
    pub(crate) tokens: Tensor,
    /// `(rows, len)` bool: real tokens.
    pub(crate) valid: Tensor,
    /// `(3, rows, len)`.
    pub(crate) positions: Tensor,
    /// `(rows,)`: the position of each prompt's first new token.
    pub(crate) next_positions: Tensor,
    /// Whether any prompt is shorter than the longest.
    pub(crate) padded: bool,
}

impl LeftPadded {
    pub(crate) fn new(model: &Qwen2_5VlModel, prompts: &[Sequence], pad: i64) -> Result<Self> {
        let rows = prompts.len();
        let len = prompts.iter().map(|p| p.tokens.len()).max().unwrap_or(0);
        let mut tokens = vec![pad; rows * len];
        let mut valid = vec![false; rows * len];
        let mut positions = vec![0_i64; 3 * rows * len];
        let mut next = Vec::with_capacity(rows);
        for (r, prompt) in prompts.iter().enumerate() {
            let (flat, next_position) = model.rope_index(prompt)?;
            let n = prompt.tokens.len();
            let offset = len - n;
            tokens[r * len + offset..(r + 1) * len].copy_from_slice(&prompt.tokens);
            valid[r * len + offset..(r + 1) * len].fill(true);
            for axis in 0..3 {
                let dst = axis * rows * len + r * len + offset;
                positions[dst..dst + n].copy_from_slice(&flat[axis * n..(axis + 1) * n]);
            }
            next.push(next_position);
        }
        let device = model.device();
        let (r, l) = (rows as i64, len as i64);
        Ok(Self {
            rows: r,
            len: l,
            tokens: Tensor::from_slice(&tokens).view([r, l]).to(device),
            valid: Tensor::from_slice(&valid).view([r, l]).to(device),
            positions: Tensor::from_slice(&positions).view([3, r, l]).to(device),
            next_positions: Tensor::from_slice(&next).to(device),
            padded: valid.iter().any(|v| !v),
        })
    }
}
