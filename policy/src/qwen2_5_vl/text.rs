//! The Qwen2 decoder of Qwen2.5-VL: grouped-query attention with multimodal rotary positions
//! (M-RoPE), `RMSNorm` and `SwiGLU`.
//!
//! Port of `Qwen2_5_VLTextModel` in transformers' `modeling_qwen2_5_vl.py`. Three forward paths
//! share the layers: [`TextModel::forward`] runs whole sequences (training log-probs),
//! [`TextModel::forward_cached`] runs new tokens against a [`KvCache`] (generation), and
//! [`TextModel::prefix_keys_values`] with [`TextModel::forward_after`] run a prompt once for the
//! samples that continue it, gradients included (log-probs of a group's samples).

use tch::{Device, Kind, Tensor};

use super::config::Config;
use crate::layers::{Linear, RmsNorm, Scope, rotate_half};

/// Keys and values of every decoder layer for a batch of sequences, in buffers allocated once
/// for the longest sequence the batch may reach.
///
/// All sequences share the slot index: prompts are left-padded to one length, and `valid`
/// marks which slots hold real tokens (padding is never attended to).
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: `(keys, values)`, each `(batch, kv_heads, capacity, head_dim)`.
    layers: Vec<(Tensor, Tensor)>,
    /// `(batch, capacity)`: whether a slot holds a real token.
    valid: Tensor,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// An empty cache for `batch` sequences of up to `capacity` tokens.
    #[must_use]
    pub fn new(config: &Config, batch: i64, capacity: i64, kind: Kind, device: Device) -> Self {
        let shape = [
            batch,
            config.num_key_value_heads(),
            capacity,
            config.head_dim(),
        ];
        let layers = (0..config.text_config.num_hidden_layers)
            .map(|_| {
                (
                    Tensor::zeros(shape, (kind, device)),
                    Tensor::zeros(shape, (kind, device)),
                )
            })
            .collect();
        Self {
            layers,
            valid: Tensor::zeros([batch, capacity], (Kind::Bool, device)),
            len: 0,
            capacity,
        }
    }

    /// Slots filled so far.
    #[must_use]
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether nothing has been written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots available in total.
    #[must_use]
    pub fn capacity(&self) -> i64 {
        self.capacity
    }

    /// Sequences in the batch.
    #[must_use]
    pub fn batch(&self) -> i64 {
        self.valid.size()[0]
    }

    /// Each sequence repeated `times` times in a row (`[a, b]` → `[a, a, b, b]` for 2): the
    /// group's samples continue from one prefilled prompt.
    #[must_use]
    pub fn repeat_interleave(&self, times: i64) -> Self {
        let rep = |t: &Tensor| t.repeat_interleave_self_int(times, 0, None);
        Self {
            layers: self.layers.iter().map(|(k, v)| (rep(k), rep(v))).collect(),
            valid: rep(&self.valid),
            len: self.len,
            capacity: self.capacity,
        }
    }

    /// Marks the next `valid.size(1)` slots with `valid` `(batch, new)` and reserves them.
    fn reserve(&mut self, valid: &Tensor) -> i64 {
        let new = valid.size()[1];
        assert!(
            self.len + new <= self.capacity,
            "KV cache overflow: {} + {new} > {}",
            self.len,
            self.capacity
        );
        self.valid.narrow(1, self.len, new).copy_(valid);
        let start = self.len;
        self.len += new;
        start
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    /// Keys and values `(batch, kv_heads, seq, head_dim)` of `x` `(batch, seq, hidden)`, the keys
    /// rotated.
    fn keys_values(&self, x: &Tensor, rope: &(Tensor, Tensor)) -> (Tensor, Tensor) {
        let k = self.heads(&self.k_proj.forward(x), self.num_kv_heads);
        let v = self.heads(&self.v_proj.forward(x), self.num_kv_heads);
        (rotate(&k, rope), v)
    }

    /// `(batch, seq, heads · head_dim)` → `(batch, heads, seq, head_dim)`.
    fn heads(&self, y: &Tensor, heads: i64) -> Tensor {
        let (b, t, _) = y.size3().expect("projections are (batch, seq, features)");
        y.view([b, t, heads, self.head_dim]).transpose(1, 2)
    }

    /// `x` `(batch, seq, hidden)`; `context` says which keys and values the new tokens' own
    /// follow; `mask` is `(batch, 1, seq, keys)` bool or `None` for plain causal attention.
    /// Returns the output and the new tokens' keys and values.
    fn forward(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: Option<&Tensor>,
        context: Context,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (b, t, _) = x
            .size3()
            .expect("decoder hidden states are (batch, seq, hidden)");
        let q = rotate(&self.heads(&self.q_proj.forward(x), self.num_heads), rope);
        let (k_new, v_new) = self.keys_values(x, rope);
        let (k, v) = match context {
            Context::Own => (k_new.shallow_clone(), v_new.shallow_clone()),
            Context::Cache(slot) => {
                slot.keys.narrow(2, slot.start, t).copy_(&k_new);
                slot.values.narrow(2, slot.start, t).copy_(&v_new);
                (
                    slot.keys.narrow(2, 0, slot.start + t),
                    slot.values.narrow(2, 0, slot.start + t),
                )
            }
            Context::Prefix(keys, values) => (
                Tensor::cat(&[keys, &k_new], 2),
                Tensor::cat(&[values, &v_new], 2),
            ),
        };
        let groups = self.num_heads / self.num_kv_heads;
        let o = if t == 1 && groups > 1 {
            // One new token per sequence (a decode step): the query heads sharing a key/value
            // head become that head's queries, so attention reads the cache as it is rather
            // than a copy with every key/value head repeated (the bulk of a step's memory
            // traffic at long contexts). The mask `(batch, 1, 1, keys)` broadcasts over them.
            let q = q.reshape([b, self.num_kv_heads, groups, self.head_dim]);
            attend(&q, &k, &v, mask, false).reshape([b, self.num_heads, 1, self.head_dim])
        } else if groups > 1 {
            attend(
                &q,
                &repeat_kv(&k, groups),
                &repeat_kv(&v, groups),
                mask,
                mask.is_none() && t > 1,
            )
        } else {
            attend(&q, &k, &v, mask, mask.is_none() && t > 1)
        };
        let out =
            self.o_proj.forward(
                &o.transpose(1, 2)
                    .reshape([b, t, self.num_heads * self.head_dim]),
            );
        (out, (k_new, v_new))
    }
}

/// `x` `(batch, heads, seq, head_dim)` rotated by `rope` `(batch, seq, head_dim)`.
fn rotate(x: &Tensor, rope: &(Tensor, Tensor)) -> Tensor {
    let (cos, sin) = (rope.0.unsqueeze(1), rope.1.unsqueeze(1));
    x * cos + rotate_half(x) * sin
}

/// What the new tokens of an attention layer attend to besides themselves.
enum Context<'a> {
    /// Nothing: whole sequences.
    Own,
    /// The cache slots before theirs (their own keys and values are written in place).
    Cache(CacheSlot<'a>),
    /// Keys and values `(batch, kv_heads, prefix, head_dim)` of a prefix computed in the same
    /// graph: nothing is written in place, so gradients reach the prefix.
    Prefix(&'a Tensor, &'a Tensor),
}

/// Scaled dot-product attention of `q` `(batch, heads, queries, d)` over `k`, `v`
/// `(batch, heads, keys, d)`, with a bool `mask` broadcastable to `(batch, heads, queries, keys)`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, causal: bool) -> Tensor {
    Tensor::scaled_dot_product_attention(q, k, v, mask, 0.0, causal, None, false)
}

struct CacheSlot<'a> {
    keys: &'a Tensor,
    values: &'a Tensor,
    start: i64,
}

/// `(batch, kv_heads, seq, d)` → `(batch, kv_heads · groups, seq, d)`, each kv head repeated.
fn repeat_kv(x: &Tensor, groups: i64) -> Tensor {
    let (b, h, s, d) = x.size4().expect("(batch, heads, seq, head_dim)");
    x.unsqueeze(2)
        .expand([b, h, groups, s, d], false)
        .reshape([b, h * groups, s, d])
}

// Field names are the checkpoint's module names.
#[allow(clippy::struct_field_names)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    /// The layer's output and the keys and values of its input.
    fn forward(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: Option<&Tensor>,
        context: Context,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (attn, kv) =
            self.self_attn
                .forward(&self.input_layernorm.forward(x), rope, mask, context);
        let x = x + attn;
        let h = self.post_attention_layernorm.forward(&x);
        let mlp = &self.mlp;
        let out = &x
            + mlp
                .down_proj
                .forward(&(mlp.gate_proj.forward(&h).silu() * mlp.up_proj.forward(&h)));
        (out, kv)
    }
}

/// The decoder: `embed_tokens`, the layers and the final `norm`.
pub(crate) struct TextModel {
    pub(crate) embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    inv_freq: Tensor,
    mrope_section: Vec<i64>,
}

impl TextModel {
    pub(crate) fn new(scope: &Scope, config: &Config) -> Self {
        let c = &config.text_config;
        let (hidden, heads, kv_heads, head_dim) = (
            c.hidden_size,
            c.num_attention_heads,
            config.num_key_value_heads(),
            config.head_dim(),
        );
        let embed_tokens = scope
            .pp("embed_tokens")
            .param("weight", &[c.vocab_size, hidden], false);
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let s = scope.pp("layers").pp(&i.to_string());
                let a = s.pp("self_attn");
                let m = s.pp("mlp");
                DecoderLayer {
                    self_attn: Attention {
                        q_proj: Linear::new(&a, "q_proj", hidden, heads * head_dim, true),
                        k_proj: Linear::new(&a, "k_proj", hidden, kv_heads * head_dim, true),
                        v_proj: Linear::new(&a, "v_proj", hidden, kv_heads * head_dim, true),
                        o_proj: Linear::new(&a, "o_proj", heads * head_dim, hidden, false),
                        num_heads: heads,
                        num_kv_heads: kv_heads,
                        head_dim,
                    },
                    mlp: Mlp {
                        gate_proj: Linear::new(&m, "gate_proj", hidden, c.intermediate_size, false),
                        up_proj: Linear::new(&m, "up_proj", hidden, c.intermediate_size, false),
                        down_proj: Linear::new(&m, "down_proj", c.intermediate_size, hidden, false),
                    },
                    input_layernorm: RmsNorm::new(&s, "input_layernorm", hidden, c.rms_norm_eps),
                    post_attention_layernorm: RmsNorm::new(
                        &s,
                        "post_attention_layernorm",
                        hidden,
                        c.rms_norm_eps,
                    ),
                }
            })
            .collect();
        let norm = RmsNorm::new(scope, "norm", hidden, c.rms_norm_eps);
        let device = embed_tokens.device();
        let exponents =
            Tensor::arange_start_step(0, head_dim, 2, (Kind::Float, device)) / head_dim as f64;
        let inv_freq = Tensor::pow_scalar(config.rope_theta, &exponents).reciprocal();
        Self {
            embed_tokens,
            layers,
            norm,
            inv_freq,
            mrope_section: config.mrope_section.clone(),
        }
    }

    /// Rotary `(cos, sin)` `(batch, seq, head_dim)` for positions `(3, batch, seq)`: the
    /// temporal, height and width positions each drive their `mrope_section` of frequencies.
    fn rotary(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        // (3, batch, seq, head_dim / 2)
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * &self.inv_freq;
        let mut start = 0;
        let parts: Vec<Tensor> = self
            .mrope_section
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let part = freqs.get(i as i64 % 3).narrow(-1, start, len);
                start += len;
                part
            })
            .collect();
        let half = Tensor::cat(&parts, -1);
        let emb = Tensor::cat(&[&half, &half], -1);
        (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
    }

    /// Whole sequences: `embeds` `(batch, seq, hidden)`, `positions` `(3, batch, seq)`,
    /// `key_valid` `(batch, seq)` bool or `None` when nothing is padded. Returns the normed
    /// hidden states `(batch, seq, hidden)`.
    pub(crate) fn forward(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        key_valid: Option<&Tensor>,
    ) -> Tensor {
        let rope = self.rotary(positions, embeds.kind());
        let mask = key_valid.map(|valid| causal_mask(valid, 0));
        let mut x = embeds.shallow_clone();
        for layer in &self.layers {
            x = layer.forward(&x, &rope, mask.as_ref(), Context::Own).0;
        }
        self.norm.forward(&x)
    }

    /// Every layer's keys and values `(batch, kv_heads, seq, head_dim)` of whole prefixes
    /// (arguments as [`Self::forward`]), in the autograd graph. The prefixes' own outputs are
    /// not computed: the last layer stops at its keys and values.
    pub(crate) fn prefix_keys_values(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        key_valid: Option<&Tensor>,
    ) -> Vec<(Tensor, Tensor)> {
        let rope = self.rotary(positions, embeds.kind());
        let mask = key_valid.map(|valid| causal_mask(valid, 0));
        let mut x = embeds.shallow_clone();
        let mut out = Vec::with_capacity(self.layers.len());
        let (last, rest) = self
            .layers
            .split_last()
            .expect("a decoder has at least one layer");
        for layer in rest {
            let (next, kv) = layer.forward(&x, &rope, mask.as_ref(), Context::Own);
            out.push(kv);
            x = next;
        }
        out.push(
            last.self_attn
                .keys_values(&last.input_layernorm.forward(&x), &rope),
        );
        out
    }

    /// New tokens after prefixes, in the autograd graph: `embeds` `(batch, new, hidden)`,
    /// `positions` `(3, batch, new)`, `prefix` from [`Self::prefix_keys_values`] with a row per
    /// prefix, `owners` `(batch,)` int64: each sequence's prefix row, `keys_valid`
    /// `(batch, prefix + new)` bool. Returns the normed hidden states `(batch, new, hidden)`.
    pub(crate) fn forward_after(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        prefix: &[(Tensor, Tensor)],
        owners: &Tensor,
        keys_valid: &Tensor,
    ) -> Tensor {
        let rope = self.rotary(positions, embeds.kind());
        let prefix_len = keys_valid.size()[1] - embeds.size()[1];
        let mask = causal_mask(keys_valid, prefix_len);
        let mut x = embeds.shallow_clone();
        for (layer, (keys, values)) in self.layers.iter().zip(prefix) {
            // Each sequence's copy of its prefix's keys and values: the gradients of a group's
            // samples add up in the prefix's through the selection.
            let (keys, values) = (keys.index_select(0, owners), values.index_select(0, owners));
            x = layer
                .forward(&x, &rope, Some(&mask), Context::Prefix(&keys, &values))
                .0;
        }
        self.norm.forward(&x)
    }

    /// New tokens against the cache: `embeds` `(batch, new, hidden)`, `positions`
    /// `(3, batch, new)`, `valid` `(batch, new)` bool (false for left padding). Appends their
    /// keys and values and returns the normed hidden states `(batch, new, hidden)`.
    pub(crate) fn forward_cached(
        &self,
        embeds: &Tensor,
        positions: &Tensor,
        valid: &Tensor,
        cache: &mut KvCache,
    ) -> Tensor {
        let rope = self.rotary(positions, embeds.kind());
        let start = cache.reserve(valid);
        let keys_valid = cache.valid.narrow(1, 0, cache.len);
        let mask = causal_mask(&keys_valid, start);
        let mut x = embeds.shallow_clone();
        for (layer, (keys, values)) in self.layers.iter().zip(&cache.layers) {
            x = layer
                .forward(
                    &x,
                    &rope,
                    Some(&mask),
                    Context::Cache(CacheSlot {
                        keys,
                        values,
                        start,
                    }),
                )
                .0;
        }
        self.norm.forward(&x)
    }
}

/// `(batch, 1, queries, keys)` bool: query `i` (at slot `offset + i`) sees valid keys up to its
/// own slot, and always itself, so that padded queries never produce NaN rows.
fn causal_mask(keys_valid: &Tensor, offset: i64) -> Tensor {
    let (b, keys) = keys_valid.size2().expect("(batch, keys)");
    let queries = keys - offset;
    let device = keys_valid.device();
    let q = Tensor::arange_start(offset, keys, (Kind::Int64, device)).unsqueeze(1);
    let k = Tensor::arange(keys, (Kind::Int64, device)).unsqueeze(0);
    let causal = k.le_tensor(&q);
    let own = k.eq_tensor(&q);
    let mask = causal
        .unsqueeze(0)
        .logical_and(&keys_valid.unsqueeze(1))
        .logical_or(&own.unsqueeze(0));
    mask.view([b, 1, queries, keys])
}
