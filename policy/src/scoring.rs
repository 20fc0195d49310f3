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
use crate::generation::LeftPadded;
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
    /// `(batch, hidden)`: the final hidden state that predicts each item's last token, having
    /// read the whole prompt and all of the response before it (the end of the answer when the
    /// response ends with its end-of-turn token). Auxiliary heads read it.
    pub final_hidden: Tensor,
}

/// Scores a batch (gradients flow unless the caller is in `no_grad`).
///
/// Samples of a group share their prompt: when items share one (same tokens before their last
/// prompt token, same images), each distinct prompt runs once, its keys and values are
/// selected for each item that continues it, and only each item's last prompt token and
/// response run against them. Gradients flow back through the selection into the prompt's
/// computation. Whether a batch takes this path depends only on its items, so a batch scored
/// with and without gradients runs the same arithmetic.
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
    for (r, item) in items.iter().enumerate() {
        let n = item.sequence.tokens.len();
        if item.response_start == 0 || item.response_start > n {
            return Err(PolicyError::Input(format!(
                "item {r}: response start {} outside 1..={n}",
                item.response_start
            )));
        }
    }
    let (hidden, picks) = match shared_prompts(model, items) {
        Some((prompts, owners)) => shared_prompt_hidden(model, items, &prompts, &owners)?,
        None => whole_sequence_hidden(model, items)?,
    };
    Ok(head_scores(model, &hidden, &picks, options))
}

/// Which hidden states predict which response tokens, and where their scores go.
struct Picks {
    /// Row of the flattened hidden states that predicts each response token.
    gather: Vec<i64>,
    /// The response tokens.
    targets: Vec<i64>,
    /// Where each token's score goes in the flattened `(rows, longest)` output.
    slots: Vec<i64>,
    /// `(rows · longest)`: real response tokens.
    mask: Vec<bool>,
    /// Per item, the hidden row that predicts its last token.
    last: Vec<i64>,
    rows: i64,
    longest: i64,
}

impl Picks {
    fn new(items: &[ScoreItem]) -> Self {
        let rows = items.len() as i64;
        let longest = items
            .iter()
            .map(|i| i.sequence.tokens.len() - i.response_start)
            .max()
            .unwrap_or(0) as i64;
        Self {
            gather: Vec::new(),
            targets: Vec::new(),
            slots: Vec::new(),
            mask: vec![false; (rows * longest) as usize],
            last: vec![0; items.len()],
            rows,
            longest,
        }
    }

    /// Item `row`'s response token `index` is `token`, predicted by hidden state `hidden_row`.
    fn push(&mut self, row: usize, index: usize, token: i64, hidden_row: usize) {
        let slot = row * self.longest as usize + index;
        self.gather.push(hidden_row as i64);
        self.targets.push(token);
        self.slots.push(slot as i64);
        self.mask[slot] = true;
        self.last[row] = hidden_row as i64;
    }
}

/// Every item's whole sequence in one right-padded batch: hidden states `(rows · len, hidden)`.
fn whole_sequence_hidden(model: &Qwen2_5VlModel, items: &[ScoreItem]) -> Result<(Tensor, Picks)> {
    let device = model.device();
    let rows = items.len() as i64;
    let len = items
        .iter()
        .map(|i| i.sequence.tokens.len())
        .max()
        .unwrap_or(0) as i64;
    let mut tokens = vec![0_i64; (rows * len) as usize];
    let mut valid = vec![false; (rows * len) as usize];
    let mut positions = vec![0_i64; (3 * rows * len) as usize];
    let mut picks = Picks::new(items);
    for (r, item) in items.iter().enumerate() {
        let seq = &item.sequence.tokens;
        let n = seq.len();
        let base = r * len as usize;
        tokens[base..base + n].copy_from_slice(seq);
        valid[base..base + n].fill(true);
        let (flat, _) = model.rope_index(item.sequence)?;
        for axis in 0..3 {
            let dst = axis * (rows * len) as usize + base;
            positions[dst..dst + n].copy_from_slice(&flat[axis * n..(axis + 1) * n]);
        }
        picks.last[r] = (base + item.response_start - 1) as i64;
        for (t, &token) in seq.iter().enumerate().skip(item.response_start) {
            picks.push(r, t - item.response_start, token, base + t - 1);
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
    Ok((hidden.view([rows * len, -1]), picks))
}

/// The prompts that items share, each to run once for all of them: every token before an
/// item's last prompt token, with the images, and each item's prompt index. `None` when no two
/// items share one, or when a response or a last prompt token is an image placeholder (the
/// images belong to the prompt).
fn shared_prompts(
    model: &Qwen2_5VlModel,
    items: &[ScoreItem],
) -> Option<(Vec<Sequence>, Vec<i64>)> {
    let config = model.config();
    let placeholders = [config.image_token_id, config.video_token_id];
    let mut prompts: Vec<Sequence> = Vec::new();
    let mut owners = Vec::with_capacity(items.len());
    for item in items {
        let (start, tokens) = (item.response_start, &item.sequence.tokens);
        if start < 2 || tokens[start - 1..].iter().any(|t| placeholders.contains(t)) {
            return None;
        }
        let prompt = &tokens[..start - 1];
        let images = &item.sequence.images;
        let owner = prompts
            .iter()
            .position(|p| p.tokens == prompt && same_images(&p.images, images))
            .unwrap_or_else(|| {
                prompts.push(Sequence {
                    tokens: prompt.to_vec(),
                    images: images.clone(),
                });
                prompts.len() - 1
            });
        owners.push(owner as i64);
    }
    (prompts.len() < items.len()).then_some((prompts, owners))
}

fn same_images(a: &[ImageInput], b: &[ImageInput]) -> bool {
    let same = |x: &Tensor, y: &Tensor| x.data_ptr() == y.data_ptr() || x.equal(y);
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.grid_thw == y.grid_thw
                && same(&x.pixel_values, &y.pixel_values)
                && match (&x.geometry, &y.geometry) {
                    (None, None) => true,
                    (Some(gx), Some(gy)) => gx.size() == gy.size() && same(gx, gy),
                    _ => false,
                }
        })
}

/// Hidden states `(rows · (longest + 1), hidden)` of each item's last prompt token and response,
/// run after its prompt in `prompts` (from [`shared_prompts`]), each prompt run once.
fn shared_prompt_hidden(
    model: &Qwen2_5VlModel,
    items: &[ScoreItem],
    prompts: &[Sequence],
    owners: &[i64],
) -> Result<(Tensor, Picks)> {
    let device = model.device();
    let mut picks = Picks::new(items);
    let rows = picks.rows;
    // Each item's last prompt token, then its response: the tokens whose hidden states predict
    // the response.
    let len = picks.longest + 1;
    let prompt = LeftPadded::new(model, prompts, 0)?;
    let images: Vec<&ImageInput> = prompts.iter().flat_map(|p| &p.images).collect();
    let embeds = model.embed(&prompt.tokens, &images)?;
    let prefix = model.prefix_keys_values(
        &embeds,
        &prompt.positions,
        prompt.padded.then_some(&prompt.valid),
    );
    let width = len as usize;
    let mut tokens = vec![0_i64; items.len() * width];
    let mut valid = vec![false; items.len() * width];
    for (r, item) in items.iter().enumerate() {
        let tail = &item.sequence.tokens[item.response_start - 1..];
        tokens[r * width..r * width + tail.len()].copy_from_slice(tail);
        valid[r * width..r * width + tail.len()].fill(true);
        picks.last[r] = (r * width) as i64;
        for (j, &token) in tail[1..].iter().enumerate() {
            picks.push(r, j, token, r * width + j);
        }
    }
    let owners = Tensor::from_slice(owners).to(device);
    let tokens = Tensor::from_slice(&tokens).view([rows, len]).to(device);
    let valid = Tensor::from_slice(&valid).view([rows, len]).to(device);
    let keys_valid = Tensor::cat(&[&prompt.valid.index_select(0, &owners), &valid], 1);
    // Text after a prompt counts up on all three axes from the prompt's next position.
    let positions = (prompt.next_positions.index_select(0, &owners).unsqueeze(1)
        + Tensor::arange(len, (Kind::Int64, device)).unsqueeze(0))
    .unsqueeze(0)
    .expand([3, rows, len], false);
    let embeds = model.embed(&tokens, &[])?;
    let hidden = model.forward_after(&embeds, &positions, &prefix, &owners, &keys_valid);
    Ok((hidden.reshape([rows * len, -1]), picks))
}

/// The output head, log-softmax and gather over the picked rows of `hidden` `(n, hidden)`, in
/// chunks of `options.chunk_tokens` rows.
fn head_scores(
    model: &Qwen2_5VlModel,
    hidden: &Tensor,
    picks: &Picks,
    options: &ScoreOptions,
) -> Scores {
    let device = model.device();
    let temperature = options.temperature;
    let (rows, longest) = (picks.rows, picks.longest);
    let n = picks.gather.len() as i64;
    let gather = Tensor::from_slice(&picks.gather).to(device);
    let targets = Tensor::from_slice(&picks.targets).to(device);
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
    let slots = Tensor::from_slice(&picks.slots).to(device);
    let place = |chunks: Vec<Tensor>| {
        let zeros = Tensor::zeros([rows * longest], (Kind::Float, device));
        if chunks.is_empty() {
            return zeros.view([rows, longest]);
        }
        zeros
            .index_add(0, &slots, &Tensor::cat(&chunks, 0))
            .view([rows, longest])
    };
    Scores {
        logprobs: place(logprob_chunks),
        entropy: (options.entropy != EntropyMode::Skip).then(|| place(entropy_chunks)),
        mask: Tensor::from_slice(&picks.mask)
            .view([rows, longest])
            .to(device),
        final_hidden: hidden.index_select(0, &Tensor::from_slice(&picks.last).to(device)),
    }
}

/// Scores many items without gradients, `micro_batch` sequences per forward pass (each as
/// [`score`] runs it, so a training pass over the same micro-batches computes the same values);
/// the result is as if scored in one batch.
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
                s.final_hidden,
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
            final_hidden: cat(parts.iter().map(|p| &p.3).collect()),
        })
    })
}
