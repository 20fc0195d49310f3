//! Log-probabilities and entropies of given response tokens under the model.
//!
//! The logits are divided by [`ScoreOptions::temperature`] before the log-softmax: an RL update
//! must score tokens under the distribution they were sampled from, and sampling divides by the
//! temperature too.
//!
//! Only the hidden states that predict response tokens are gathered, and the output head plus
//! log-softmax run over them in chunks of `chunk_tokens` rows, so full-vocabulary logits for a
//! whole batch never exist at once. Under `no_grad` (old-policy and reference passes) the peak is
//! one chunk; with gradients each chunk's log-softmax is kept for the backward pass, so the
//! training caller bounds memory with its micro-batch size.

use tch::{Kind, Tensor};

use crate::error::{PolicyError, Result};
use crate::qwen2_5_vl::{ImageInput, Qwen2_5VlModel, Sequence};

/// A sequence to score: prompt and response tokens together, and where the response starts.
#[derive(Debug, Clone, Copy)]
pub struct ScoreItem<'a> {
    /// Prompt + response tokens and the prompt's images.
    pub sequence: &'a Sequence,
    /// Index of the first response token in `sequence.tokens` (≥ 1).
    pub response_start: usize,
}

/// Whether and how entropies are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyMode {
    /// Not computed.
    Skip,
    /// Computed without gradient: a metric, with no chunk × vocabulary tensor kept for backward.
    Measure,
    /// Computed in the autograd graph (an entropy bonus in the loss).
    Train,
}

/// How a scoring pass computes its outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    /// Rows of the output head evaluated at once (bounds the logits' memory).
    pub chunk_tokens: i64,
    /// Logits are divided by this before the log-softmax (1 = the model's own distribution).
    pub temperature: f64,
    /// Whether entropies are computed, and in the graph or not.
    pub entropy: EntropyMode,
}

impl ScoreOptions {
    /// The model's own log-likelihood (temperature 1), without entropies.
    #[must_use]
    pub fn log_likelihood(chunk_tokens: i64) -> Self {
        Self {
            chunk_tokens,
            temperature: 1.0,
            entropy: EntropyMode::Skip,
        }
    }
}

/// Per response token: `(batch, longest response)`, zero beyond each response.
#[derive(Debug)]
pub struct Scores {
    /// `log p(token_t | tokens_<t)` under the tempered distribution.
    pub logprobs: Tensor,
    /// Entropy of the tempered predictive distribution at each response position (`None` when
    /// skipped).
    pub entropy: Option<Tensor>,
    /// `(batch, longest response)` bool: real response tokens.
    pub mask: Tensor,
}

/// Scores a batch (one forward pass; gradients flow unless the caller is in `no_grad`).
pub fn score(
    model: &Qwen2_5VlModel,
    items: &[ScoreItem],
    options: &ScoreOptions,
) -> Result<Scores> {
    let temperature = options.temperature;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(PolicyError::Input(format!(
            "scoring temperature must be a positive number, got {temperature}"
        )));
    }
    let device = model.device();
    let rows = items.len() as i64;
    let len = items
        .iter()
        .map(|i| i.sequence.tokens.len())
        .max()
        .unwrap_or(0) as i64;
    let longest = items
        .iter()
        .map(|i| i.sequence.tokens.len().saturating_sub(i.response_start))
        .max()
        .unwrap_or(0) as i64;
    let mut tokens = vec![0_i64; (rows * len) as usize];
    let mut valid = vec![false; (rows * len) as usize];
    let mut positions = vec![0_i64; (3 * rows * len) as usize];
    let mut gather = Vec::new();
    let mut targets = Vec::new();
    let mut slots = Vec::new();
    let mut mask = vec![false; (rows * longest) as usize];
    for (r, item) in items.iter().enumerate() {
        let seq = &item.sequence.tokens;
        let n = seq.len();
        if item.response_start == 0 || item.response_start > n {
            return Err(PolicyError::Input(format!(
                "item {r}: response start {} outside 1..={n}",
                item.response_start
            )));
        }
        let base = r * len as usize;
        tokens[base..base + n].copy_from_slice(seq);
        valid[base..base + n].fill(true);
        let (flat, _) = model.rope_index(item.sequence)?;
        for axis in 0..3 {
            let dst = axis * (rows * len) as usize + base;
            positions[dst..dst + n].copy_from_slice(&flat[axis * n..(axis + 1) * n]);
        }
        for (t, &token) in seq.iter().enumerate().skip(item.response_start) {
            gather.push((base + t - 1) as i64);
            targets.push(token);
            let slot = r * longest as usize + (t - item.response_start);
            slots.push(slot as i64);
            mask[slot] = true;
        }
    }
    let padded = valid.iter().any(|v| !v);
    let to = |v: &[i64], shape: &[i64]| Tensor::from_slice(v).view(shape).to(device);
    let tokens_t = to(&tokens, &[rows, len]);
    let valid_t = Tensor::from_slice(&valid).view([rows, len]).to(device);
    let positions_t = to(&positions, &[3, rows, len]);
    let images: Vec<&ImageInput> = items.iter().flat_map(|i| &i.sequence.images).collect();
    let embeds = model.embed(&tokens_t, &images)?;
    let hidden = model.forward_hidden(&embeds, &positions_t, padded.then_some(&valid_t));
    let hidden = hidden.view([rows * len, -1]);
    let n = gather.len() as i64;
    let gather = Tensor::from_slice(&gather).to(device);
    let targets = Tensor::from_slice(&targets).to(device);
    let mut logprob_chunks = Vec::new();
    let mut entropy_chunks = Vec::new();
    let chunk = options.chunk_tokens.max(1);
    let entropy_of = |logp: &Tensor| -(logp.exp() * logp).sum_dim_intlist(-1, false, Kind::Float);
    let mut start = 0;
    while start < n {
        let size = chunk.min(n - start);
        let h = hidden.index_select(0, &gather.narrow(0, start, size));
        let logits = model.logits(&h);
        // Exact equality: at temperature 1 the model's logits go to the log-softmax untouched
        // (which upcasts them itself); otherwise they are divided in f32, not in bf16.
        #[allow(clippy::float_cmp)]
        let logits = if temperature == 1.0 {
            logits
        } else {
            logits.to_kind(Kind::Float) / temperature
        };
        let logp = logits.log_softmax(-1, Kind::Float);
        let target = targets.narrow(0, start, size).unsqueeze(1);
        logprob_chunks.push(logp.gather(1, &target, false).squeeze_dim(1));
        match options.entropy {
            EntropyMode::Skip => {}
            EntropyMode::Measure => entropy_chunks.push(tch::no_grad(|| entropy_of(&logp))),
            EntropyMode::Train => entropy_chunks.push(entropy_of(&logp)),
        }
        start += size;
    }
    let slots = Tensor::from_slice(&slots).to(device);
    let place = |chunks: Vec<Tensor>| {
        let zeros = Tensor::zeros([rows * longest], (Kind::Float, device));
        if chunks.is_empty() {
            return zeros.view([rows, longest]);
        }
        zeros
            .index_add(0, &slots, &Tensor::cat(&chunks, 0))
            .view([rows, longest])
    };
    Ok(Scores {
        logprobs: place(logprob_chunks),
        entropy: (options.entropy != EntropyMode::Skip).then(|| place(entropy_chunks)),
        mask: Tensor::from_slice(&mask).view([rows, longest]).to(device),
    })
}

/// Scores many items without gradients, `micro_batch` sequences per forward pass; the result
/// is as if scored in one batch.
pub fn score_no_grad(
    model: &Qwen2_5VlModel,
    items: &[ScoreItem],
    micro_batch: usize,
    options: &ScoreOptions,
) -> Result<Scores> {
    let longest = items
        .iter()
        .map(|i| i.sequence.tokens.len().saturating_sub(i.response_start))
        .max()
        .unwrap_or(0) as i64;
    tch::no_grad(|| {
        let mut parts = Vec::new();
        for batch in items.chunks(micro_batch.max(1)) {
            let s = score(model, batch, options)?;
            let pad = longest - s.mask.size()[1];
            let widen = |t: &Tensor| t.constant_pad_nd([0, pad]);
            parts.push((
                widen(&s.logprobs),
                s.entropy.as_ref().map(widen),
                widen(&s.mask),
            ));
        }
        let cat = |tensors: Vec<&Tensor>| Tensor::cat(&tensors, 0);
        Ok(Scores {
            logprobs: cat(parts.iter().map(|p| &p.0).collect()),
            entropy: parts
                .iter()
                .map(|p| p.1.as_ref())
                .collect::<Option<Vec<_>>>()
                .map(cat),
            mask: cat(parts.iter().map(|p| &p.2).collect()),
        })
    })
}
