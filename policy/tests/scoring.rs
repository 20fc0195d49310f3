//! Log-probs and entropy of response tokens: equal to the full-sequence log-softmax at
//! response positions, whatever the chunk size, micro-batch size or padding.

mod common;

use common::{load, prompt};
use metaspatial_policy::{ScoreItem, Sequence, score, score_no_grad};
use tch::Kind;

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
    let batched = tch::no_grad(|| score(&policy.model, &items, 2)).unwrap();
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
            let got = batched.entropy.double_value(&[row as i64, j as i64]);
            assert!(
                (entropy - got).abs() < 1e-4,
                "row {row} entropy {j}: {got} vs {entropy}"
            );
        }
    }
    // One row per micro-batch and one token per chunk give the same numbers.
    let split = score_no_grad(&policy.model, &items, 1, 1).unwrap();
    assert!(common::max_abs_diff(&split.logprobs, &batched.logprobs) < 1e-5);
    assert!(common::max_abs_diff(&split.entropy, &batched.entropy) < 1e-5);
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
        8,
    )
    .unwrap_err();
    assert!(err.to_string().contains("response start 0"), "{err}");
}
