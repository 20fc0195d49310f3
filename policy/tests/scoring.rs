//! Log-probs and entropy of response tokens: equal to the full-sequence log-softmax at
//! response positions, whatever the chunk size, micro-batch size or padding, and at the
//! sampling temperature.

mod common;

use common::{fixtures, load, prompt};
use metaspatial_policy::{
    EntropyMode, LoadOptions, Policy, SamplingParams, ScoreItem, ScoreOptions, Sequence, generate,
    score, score_no_grad,
};
use tch::Kind;

fn options(chunk_tokens: i64, temperature: f64, entropy: EntropyMode) -> ScoreOptions {
    ScoreOptions {
        chunk_tokens,
        temperature,
        entropy,
    }
}

/// The hub fixture with its base weights trainable.
fn trainable() -> Policy {
    Policy::load(
        &fixtures().join("hub"),
        &LoadOptions {
            train_base: true,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

fn with_response(prompt: &Sequence, response: &[i64]) -> Sequence {
    let mut s = prompt.clone();
    s.tokens.extend_from_slice(response);
    s
}

#[test]
fn log_probs_and_entropy_match_the_full_logits_at_response_positions() {
    let policy = load("hub");
    let text = prompt(&policy, false);
    let image = prompt(&policy, true);
    let sequences = [
        with_response(&text, &[17, 42, 99, 5]),
        with_response(&image, &[3, 250, 8]),
    ];
    let items: Vec<ScoreItem> = [
        (&sequences[0], text.tokens.len()),
        (&sequences[1], image.tokens.len()),
    ]
    .into_iter()
    .map(|(sequence, response_start)| ScoreItem {
        sequence,
        response_start,
    })
    .collect();
    let batched = tch::no_grad(|| {
        score(
            &policy.model,
            &items,
            &options(2, 1.0, EntropyMode::Measure),
        )
    })
    .unwrap();
    let batched_entropy = batched.entropy.as_ref().unwrap();
    assert_eq!(batched.mask.size(), [2, 4]);
    assert_eq!(
        Vec::<bool>::try_from(batched.mask.view([-1])).unwrap(),
        [true, true, true, true, true, true, true, false]
    );
    for (row, item) in items.iter().enumerate() {
        let logp = policy
            .sequence_logits(item.sequence)
            .unwrap()
            .log_softmax(-1, Kind::Float);
        for (j, t) in (item.response_start..item.sequence.tokens.len()).enumerate() {
            let step = logp.get(t as i64 - 1);
            let expected = step.double_value(&[item.sequence.tokens[t]]);
            let got = batched.logprobs.double_value(&[row as i64, j as i64]);
            assert!(
                (expected - got).abs() < 1e-4,
                "row {row} token {j}: {got} vs {expected}"
            );
            let entropy = -(step.exp() * &step).sum(Kind::Float).double_value(&[]);
            let got = batched_entropy.double_value(&[row as i64, j as i64]);
            assert!(
                (entropy - got).abs() < 1e-4,
                "row {row} entropy {j}: {got} vs {entropy}"
            );
        }
    }
    // One row per micro-batch and one token per chunk give the same numbers.
    let split = score_no_grad(
        &policy.model,
        &items,
        1,
        &options(1, 1.0, EntropyMode::Measure),
    )
    .unwrap();
    assert!(common::max_abs_diff(&split.logprobs, &batched.logprobs) < 1e-5);
    assert!(common::max_abs_diff(split.entropy.as_ref().unwrap(), batched_entropy) < 1e-5);
}

/// Two groups, interleaved, with responses of different lengths; the last image sample has its
/// own copy of the images, equal but not the same tensors.
fn two_groups(text: &Sequence, image: &Sequence) -> Vec<Sequence> {
    let mut copy = image.clone();
    for i in &mut copy.images {
        i.pixel_values = i.pixel_values.copy();
    }
    vec![
        with_response(image, &[3, 250, 8]),
        with_response(text, &[17, 42, 99, 5]),
        with_response(image, &[9]),
        with_response(text, &[17, 43]),
        with_response(&copy, &[100, 101, 102, 103, 104]),
    ]
}

fn items_of<'a>(
    sequences: &'a [Sequence],
    text: &Sequence,
    image: &Sequence,
) -> Vec<ScoreItem<'a>> {
    sequences
        .iter()
        .map(|sequence| ScoreItem {
            sequence,
            response_start: if sequence.images.is_empty() {
                text.tokens.len()
            } else {
                image.tokens.len()
            },
        })
        .collect()
}

#[test]
fn samples_that_share_a_prompt_score_as_when_scored_alone() {
    let policy = load("hub");
    let (text, image) = (prompt(&policy, false), prompt(&policy, true));
    let sequences = two_groups(&text, &image);
    let items = items_of(&sequences, &text, &image);
    let opts = options(3, 0.7, EntropyMode::Measure);
    let shared = score_no_grad(&policy.model, &items, items.len(), &opts).unwrap();
    assert_eq!(shared.mask.size(), [5, 5]);
    for (row, item) in items.iter().enumerate() {
        let alone = tch::no_grad(|| score(&policy.model, &[*item], &opts)).unwrap();
        let n = alone.mask.size()[1];
        let got = |t: &tch::Tensor| t.get(row as i64).narrow(0, 0, n).unsqueeze(0);
        assert!(
            common::max_abs_diff(&got(&shared.logprobs), &alone.logprobs) < 1e-4,
            "row {row}: {} vs {}",
            got(&shared.logprobs),
            alone.logprobs
        );
        assert!(
            common::max_abs_diff(
                &got(shared.entropy.as_ref().unwrap()),
                alone.entropy.as_ref().unwrap()
            ) < 1e-4,
            "row {row} entropy"
        );
        assert!(got(&shared.mask).equal(&alone.mask), "row {row} mask");
        let padding = shared.mask.get(row as i64).narrow(0, n, 5 - n);
        assert_eq!(padding.sum(Kind::Int64).int64_value(&[]), 0, "row {row}");
    }
}

#[test]
fn gradients_through_a_shared_prompt_match_scoring_each_sample_alone() {
    let policy = trainable();
    let (text, image) = (prompt(&policy, false), prompt(&policy, true));
    let sequences = two_groups(&text, &image);
    let items = items_of(&sequences, &text, &image);
    let opts = options(4, 0.7, EntropyMode::Train);
    let mut vars: Vec<(String, tch::Tensor)> = policy
        .var_store()
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    // A loss that weighs every token and entropy differently, so that a gradient reaching the
    // wrong row or position shows.
    let loss = |scores: &metaspatial_policy::Scores, rows: std::ops::Range<i64>| {
        let width = scores.logprobs.size()[1];
        let weights = tch::Tensor::arange(rows.end * 5, (Kind::Float, tch::Device::Cpu))
            .view([rows.end, 5])
            .narrow(0, rows.start, rows.end - rows.start)
            .narrow(1, 0, width)
            .sin();
        (&scores.logprobs * &weights + scores.entropy.as_ref().unwrap() * weights.cos())
            .sum(Kind::Float)
    };
    let gradients = || -> Vec<tch::Tensor> {
        vars.iter()
            .map(|(_, v)| {
                let mut g = v.grad();
                if !g.defined() {
                    return v.zeros_like();
                }
                let copy = g.copy();
                let _ = g.zero_();
                copy
            })
            .collect()
    };
    loss(&score(&policy.model, &items, &opts).unwrap(), 0..5).backward();
    let shared = gradients();
    for (row, item) in items.iter().enumerate() {
        let row = row as i64;
        loss(
            &score(&policy.model, &[*item], &opts).unwrap(),
            row..row + 1,
        )
        .backward();
    }
    let alone = gradients();
    let largest = alone
        .iter()
        .map(|g| g.abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(
        largest > 1e-3,
        "the loss must reach the parameters: {largest}"
    );
    for (((name, _), a), b) in vars.iter().zip(&alone).zip(&shared) {
        let delta = common::max_abs_diff(a, b);
        assert!(delta <= 1e-4 * largest, "{name}: {delta} against {largest}");
    }
    // The images are in the shared prompts only: the vision tower learns through their keys
    // and values.
    let visual = vars
        .iter()
        .zip(&shared)
        .filter(|((name, _), g)| {
            name.starts_with("visual.") && g.abs().max().double_value(&[]) > 0.0
        })
        .count();
    assert!(visual > 0, "no gradient reached the vision tower");
}

#[test]
fn sampled_tokens_score_at_the_sampling_temperature() {
    const T: f64 = 0.7;
    let policy = load("hub");
    let text = prompt(&policy, false);
    let params = SamplingParams {
        temperature: T,
        max_new_tokens: 6,
        seed: 11,
        suppress_tokens: policy.vision_tokens().unwrap(),
        ..SamplingParams::default()
    };
    let completions = generate(&policy.model, std::slice::from_ref(&text), 3, &params).unwrap();
    let sequences: Vec<Sequence> = completions
        .iter()
        .map(|c| with_response(&text, &c.tokens))
        .collect();
    let items: Vec<ScoreItem> = sequences
        .iter()
        .map(|sequence| ScoreItem {
            sequence,
            response_start: text.tokens.len(),
        })
        .collect();
    let tempered = score_no_grad(
        &policy.model,
        &items,
        2,
        &options(3, T, EntropyMode::Measure),
    )
    .unwrap();
    let entropy = tempered.entropy.as_ref().unwrap();
    let mut largest_shift: f64 = 0.0;
    for (row, item) in items.iter().enumerate() {
        let logits = policy.sequence_logits(item.sequence).unwrap();
        let at_t = (&logits / T).log_softmax(-1, Kind::Float);
        let at_1 = logits.log_softmax(-1, Kind::Float);
        for (j, t) in (item.response_start..item.sequence.tokens.len()).enumerate() {
            let token = item.sequence.tokens[t];
            let step = at_t.get(t as i64 - 1);
            let expected = step.double_value(&[token]);
            let got = tempered.logprobs.double_value(&[row as i64, j as i64]);
            assert!(
                (expected - got).abs() < 1e-5,
                "row {row} token {j}: {got} vs log_softmax(logits / {T}) = {expected}"
            );
            let expected = -(step.exp() * &step).sum(Kind::Float).double_value(&[]);
            let got = entropy.double_value(&[row as i64, j as i64]);
            assert!((expected - got).abs() < 1e-5, "row {row} entropy {j}");
            largest_shift =
                largest_shift.max((at_1.get(t as i64 - 1).double_value(&[token]) - got).abs());
        }
    }
    // The temperature must matter for these tokens, or the test above proves nothing.
    assert!(largest_shift > 1e-2, "{largest_shift}");
}

#[test]
fn entropy_joins_the_graph_only_when_trained() {
    let policy = trainable();
    let sequence = with_response(&prompt(&policy, false), &[17, 42, 99]);
    let item = ScoreItem {
        sequence: &sequence,
        response_start: sequence.tokens.len() - 3,
    };
    let scored = |entropy| score(&policy.model, &[item], &options(2, 0.7, entropy)).unwrap();
    let skipped = scored(EntropyMode::Skip);
    assert!(skipped.logprobs.requires_grad() && skipped.entropy.is_none());
    let measured = scored(EntropyMode::Measure);
    assert!(!measured.entropy.as_ref().unwrap().requires_grad());
    let trained = scored(EntropyMode::Train);
    let (measured, trained) = (measured.entropy.unwrap(), trained.entropy.unwrap());
    assert!(trained.requires_grad());
    assert!(common::max_abs_diff(&measured, &trained.detach()) < 1e-6);
}

#[test]
fn bad_response_start_is_an_error() {
    let policy = load("hub");
    let text = prompt(&policy, false);
    let err = score(
        &policy.model,
        &[ScoreItem {
            sequence: &text,
            response_start: 0,
        }],
        &ScoreOptions::log_likelihood(8),
    )
    .unwrap_err();
    assert!(err.to_string().contains("response start 0"), "{err}");
    let item = ScoreItem {
        sequence: &text,
        response_start: 1,
    };
    let err = score(&policy.model, &[item], &options(8, 0.0, EntropyMode::Skip)).unwrap_err();
    assert!(err.to_string().contains("temperature"), "{err}");
}
