//! Fixtures shared by the integration tests (written by `scripts/make_parity_fixtures.py`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use metaspatial_policy::{ImageInput, LoadOptions, Message, Policy, Sequence};
use tch::{Device, Kind, Tensor};

/// Names the device the fixture checkpoints are loaded on: `cpu` (the default), `cuda` or
/// `cuda:N`, so that the same parity checks run on a GPU.
pub const DEVICE_VAR: &str = "METASPATIAL_TEST_DEVICE";

pub const TEXT_PROMPT: &str = "Lay out a small bedroom: a bed, a desk and a chair. Answer in JSON.";
pub const IMAGE_PROMPT: &str = "Here are three views. Where should the wardrobe go?";
pub const IMAGES: [&str; 3] = ["a.png", "b.png", "c.png"];

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The device `METASPATIAL_TEST_DEVICE` names.
pub fn device() -> Device {
    let Ok(value) = std::env::var(DEVICE_VAR) else {
        return Device::Cpu;
    };
    let device = match value.trim() {
        "" | "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map_or_else(
                || panic!("{DEVICE_VAR}={value:?}: expected cpu, cuda or cuda:N"),
                Device::Cuda,
            ),
    };
    if let Device::Cuda(index) = device {
        let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
        assert!(
            index < count,
            "{DEVICE_VAR}={value:?}: libtorch sees {count} CUDA device(s)"
        );
    }
    device
}

/// A fixture checkpoint with `kind` parameters (f32 by default, on a GPU too) on [`device`].
pub fn load_as(name: &str, kind: Kind) -> Policy {
    let options = LoadOptions {
        device: device(),
        kind: Some(kind),
        ..LoadOptions::default()
    };
    Policy::load(&fixtures().join(name), &options).expect("fixture checkpoint loads")
}

/// A fixture checkpoint in f32 on [`device`].
pub fn load(name: &str) -> Policy {
    load_as(name, Kind::Float)
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
    let [a, b] = [a, b].map(|t| t.to_device(Device::Cpu).to_kind(Kind::Double));
    (a - b).abs().max().double_value(&[])
}
