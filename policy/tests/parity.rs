//! Parity with transformers: token ids, pixel values, logits (≤ 1e-4) and greedy tokens of the
//! fixture checkpoints, in both checkpoint layouts, tied and untied heads, with window attention
//! and several images of different sizes. `METASPATIAL_TEST_DEVICE=cuda` runs them on a GPU.

mod common;

use common::{ids, load, load_as, max_abs_diff, prompt, reference};
use metaspatial_policy::image::PassOrder;
use metaspatial_policy::{SamplingParams, generate};

const TOLERANCE: f64 = 1e-4;

fn check_prompt_and_logits(name: &str) {
    let policy = load(name);
    let refs = reference(name);
    for (kind, with_images) in [("text", false), ("image", true)] {
        let sequence = prompt(&policy, with_images);
        assert_eq!(
            sequence.tokens,
            ids(&refs[&format!("{kind}.prompt_ids")]),
            "{name}/{kind}: prompt token ids"
        );
        let logits = policy.sequence_logits(&sequence).unwrap();
        let delta = max_abs_diff(&logits, &refs[&format!("{kind}.logits")]);
        assert!(
            delta <= TOLERANCE,
            "{name}/{kind}: max |Δlogit| = {delta:e}"
        );
        if with_images {
            let grids: Vec<i64> = sequence.images.iter().flat_map(|i| i.grid_thw).collect();
            assert_eq!(
                grids,
                ids(&refs["image.grid_thw"].view([-1])),
                "{name}: image grids"
            );
        }
    }
}

#[test]
fn hub_layout_untied_head_matches_transformers_logits() {
    check_prompt_and_logits("hub");
}

#[test]
fn transformers5_layout_tied_head_matches_transformers_logits() {
    check_prompt_and_logits("v5");
}

#[test]
fn greedy_generation_matches_transformers_batched_and_grouped() {
    for name in ["hub", "v5"] {
        let policy = load(name);
        let refs = reference(name);
        let prompts = [prompt(&policy, false), prompt(&policy, true)];
        let expected = [ids(&refs["text.greedy"]), ids(&refs["image.greedy"])];
        let params = SamplingParams {
            greedy: true,
            max_new_tokens: expected[0].len() as i64,
            stop_tokens: policy.stop_tokens().unwrap(),
            ..SamplingParams::default()
        };
        // Both prompts in one left-padded batch, each prefilled once and sampled twice.
        let completions = generate(&policy.model, &prompts, 2, &params).unwrap();
        assert_eq!(completions.len(), 4);
        for c in &completions {
            assert_eq!(
                c.tokens, expected[c.prompt],
                "{name}: prompt {} sample {}",
                c.prompt, c.sample
            );
        }
    }
}

#[test]
fn image_preprocessing_matches_the_pil_processor_of_both_pillow_orders() {
    let mut processor = load("hub").processor;
    let refs = reference("images");
    for order in [PassOrder::Pillow12, PassOrder::Pillow13] {
        processor.pass_order = order;
        let name = match order {
            PassOrder::Pillow12 => "pillow12",
            PassOrder::Pillow13 => "pillow13",
        };
        // a.png (100 × 60 → 112 × 56) is resized columns first by Pillow 13; b.png has alpha.
        for stem in ["a", "b", "c"] {
            let path = common::fixtures()
                .join("images")
                .join(format!("{stem}.png"));
            let image = processor.load(&path).unwrap();
            assert_eq!(
                image.grid_thw.to_vec(),
                ids(&refs[&format!("{stem}.grid_thw")].view([-1])),
                "{stem}: grid"
            );
            let expected = &refs[&format!("{stem}.{name}.pixel_values")];
            let delta = max_abs_diff(&image.pixel_values, expected);
            assert!(delta <= 1e-5, "{stem} ({name}): max |Δpixel| = {delta:e}");
        }
    }
}

#[test]
fn bf16_parameters_stay_close_to_f32() {
    let f32_policy = load("hub");
    let bf16 = load_as("hub", tch::Kind::BFloat16);
    let sequence = prompt(&bf16, true);
    let a = f32_policy.sequence_logits(&sequence).unwrap();
    let b = bf16.sequence_logits(&sequence).unwrap();
    assert_eq!(bf16.model.kind(), tch::Kind::BFloat16);
    // bf16 keeps 8 bits of mantissa: logits of a few units agree to a few hundredths.
    let delta = max_abs_diff(&a, &b);
    assert!(delta < 0.25 && delta > 0.0, "{delta}");
}
