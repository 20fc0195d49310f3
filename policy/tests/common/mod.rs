//! Fixtures shared by the integration tests (written by `scripts/make_parity_fixtures.py`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use metaspatial_policy::{ImageInput, LoadOptions, Message, Policy, Sequence};
use tch::Tensor;

pub const TEXT_PROMPT: &str = "Lay out a small bedroom: a bed, a desk and a chair. Answer in JSON.";
pub const IMAGE_PROMPT: &str = "Here are three views. Where should the wardrobe go?";
pub const IMAGES: [&str; 3] = ["a.png", "b.png", "c.png"];

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn load(name: &str) -> Policy {
    Policy::load(&fixtures().join(name), &LoadOptions::default()).expect("fixture checkpoint loads")
}

pub fn reference(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixtures().join(format!("reference-{name}.safetensors")))
        .expect("reference file")
        .into_iter()
        .collect()
}

pub fn images(policy: &Policy) -> Vec<ImageInput> {
    IMAGES
        .iter()
        .map(|n| {
            policy
                .processor
                .load(&fixtures().join("images").join(n))
                .expect("image")
        })
        .collect()
}

/// The text-only or three-image prompt of the fixtures.
pub fn prompt(policy: &Policy, with_images: bool) -> Sequence {
    if with_images {
        let images = images(policy);
        policy
            .prompt(&[Message::user(images.len(), IMAGE_PROMPT)], images)
            .expect("prompt")
    } else {
        policy
            .prompt(&[Message::user(0, TEXT_PROMPT)], Vec::new())
            .expect("prompt")
    }
}

pub fn ids(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).expect("int64 tensor")
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}
