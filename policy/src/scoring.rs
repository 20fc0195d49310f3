//! Log-probabilities and entropies of given response tokens under the model.
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

/// Per response token: `(batch, longest response)`, zero beyond each response.
#[derive(Debug)]
pub struct Scores {
    /// `log p(token_t | tokens_<t)`.
    pub logprobs: Tensor,
    /// Entropy of the predictive distribution at each response position.
    pub entropy: Tensor,
    /// `(batch, longest response)` bool: real response tokens.
    pub mask: Tensor,
}

/// Scores a batch (one forward pass; gradients flow unless the caller is in `no_grad`).
pub fn score(model: &Qwen2_5VlModel, items: &[ScoreItem], chunk_tokens: i64) -> Result<Scores> {
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
    let chunk = chunk_tokens.max(1);
    let mut start = 0;
    while start < n {
        let size = chunk.min(n - start);
        let h = hidden.index_select(0, &gather.narrow(0, start, size));
        let logp = model.logits(&h).log_softmax(-1, Kind::Float);
        let target = targets.narrow(0, start, size).unsqueeze(1);
        logprob_chunks.push(logp.gather(1, &target, false).squeeze_dim(1));
        entropy_chunks.push(-(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float));
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
        entropy: place(entropy_chunks),
        mask: Tensor::from_slice(&mask).view([rows, longest]).to(device),
    })
}

/// Scores many items without gradients, `micro_batch` sequences per forward pass; the result
/// is as if scored in one batch.
pub fn score_no_grad(
    model: &Qwen2_5VlModel,
    items: &[ScoreItem],
    micro_batch: usize,
    chunk_tokens: i64,
) -> Result<Scores> {
    let longest = items
        .iter()
        .map(|i| i.sequence.tokens.len().saturating_sub(i.response_start))
        .max()
        .unwrap_or(0) as i64;
    tch::no_grad(|| {
        let mut parts = Vec::new();
        for batch in items.chunks(micro_batch.max(1)) {
            let s = score(model, batch, chunk_tokens)?;
            let pad = longest - s.mask.size()[1];
            let widen = |t: &Tensor| t.constant_pad_nd([0, pad]);
            parts.push((widen(&s.logprobs), widen(&s.entropy), widen(&s.mask)));
        }
        let cat = |f: fn(&(Tensor, Tensor, Tensor)) -> &Tensor| {
            Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0)
        };
        Ok(Scores {
            logprobs: cat(|p| &p.0),
            entropy: cat(|p| &p.1),
            mask: cat(|p| &p.2),
        })
    })
}
