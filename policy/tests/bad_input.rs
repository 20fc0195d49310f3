//! Bad checkpoints and inputs give errors naming the tensor, shapes, field or file.

mod common;

use std::path::Path;

use common::{fixtures, load};
use metaspatial_policy::{LoadOptions, Policy, PolicyError, Sequence};
use tch::Tensor;

fn copy_checkpoint(name: &str, to: &Path) {
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

fn rewrite_weights(dir: &Path, edit: impl Fn(&mut Vec<(String, Tensor)>)) {
    let file = dir.join("model.safetensors");
    let mut tensors = Tensor::read_safetensors(&file).unwrap();
    edit(&mut tensors);
    Tensor::write_safetensors(&tensors, &file).unwrap();
}

#[test]
fn a_missing_tensor_is_named_with_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    copy_checkpoint("v5", dir.path());
    rewrite_weights(dir.path(), |t| {
        t.retain(|(n, _)| n != "model.language_model.layers.1.mlp.up_proj.weight");
    });
    let err = Policy::load(dir.path(), &LoadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, PolicyError::MissingTensor { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("model.layers.1.mlp.up_proj.weight") && text.contains("[64, 32]"),
        "{text}"
    );
}

#[test]
fn a_shape_mismatch_names_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    copy_checkpoint("v5", dir.path());
    rewrite_weights(dir.path(), |t| {
        for (name, tensor) in t.iter_mut() {
            if name == "model.visual.merger.mlp.2.weight" {
                *tensor = Tensor::zeros([32, 63], (tch::Kind::Float, tch::Device::Cpu));
            }
        }
    });
    let text = Policy::load(dir.path(), &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("model.visual.merger.mlp.2.weight")
            && text.contains("[32, 63]")
            && text.contains("[32, 64]"),
        "{text}"
    );
}

#[test]
fn unsupported_config_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    copy_checkpoint("hub", dir.path());
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["use_sliding_window"] = serde_json::Value::Bool(true);
    std::fs::write(&path, config.to_string()).unwrap();
    let text = Policy::load(dir.path(), &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("use_sliding_window") && text.contains("config.json"),
        "{text}"
    );
}

#[test]
fn image_tokens_without_images_are_an_error_not_a_panic() {
    let policy = load("hub");
    let pad = policy.model.config().image_token_id;
    let sequence = Sequence {
        tokens: vec![1, pad, pad, pad, pad, 2],
        images: Vec::new(),
    };
    let err = policy.sequence_logits(&sequence).unwrap_err().to_string();
    assert!(err.contains("no image"), "{err}");
}
