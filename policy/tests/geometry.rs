//! The geometry channel on the tiny model: a fresh connector changes nothing, a per-block map
//! reaches its own visual token, the connector trains under `LoRA` and full fine-tuning (the
//! `LoRA` reference keeps the starting connector), and export / load keeps its outputs.

use std::path::Path;

use image::{DynamicImage, RgbImage};
use metaspatial_policy::geometry::{
    GEOMETRY_FILE, GeometryConfig, GeometryConnector, geometry_input,
};
use metaspatial_policy::lora::LoraConfig;
use metaspatial_policy::store::OwnStore;
use metaspatial_policy::tiny::RandomModel;
use metaspatial_policy::{
    ImageInput, LoadOptions, Message, Policy, SamplingParams, ScoreItem, ScoreOptions, Sequence,
    generate, score,
};
use tch::{Kind, Tensor};

/// Image sizes: 112 × 56 pixels is a 4 × 8 patch grid, 2 × 4 visual tokens.
const W: usize = 112;
const H: usize = 56;

fn checkpoint(dir: &Path) {
    let corpus: Vec<String> = (0..30)
        .map(|i| format!("Put the desk_{i} near the window, {i}.5 m from the wall."))
        .collect();
    RandomModel {
        bpe_vocab: 300,
        ..RandomModel::default()
    }
    .write_checkpoint(dir, &corpus, 5)
    .unwrap();
}

fn load(dir: &Path, lora: bool, train_base: bool, kind: Kind) -> Policy {
    Policy::load(
        dir,
        &LoadOptions {
            kind: Some(kind),
            lora: lora.then(|| LoraConfig {
                rank: 2,
                dropout: 0.0,
                ..LoraConfig::default()
            }),
            train_base,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

/// A two-channel map: channel 0 one value per 28 px block (`value(row, column)`), channel 1 one.
fn block_map(value: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..H)
        .flat_map(|y| (0..W).flat_map(move |x| [y, x]))
        .collect::<Vec<_>>()
        .chunks(2)
        .flat_map(|p| [value(p[0] / 28, p[1] / 28), 1.0])
        .collect()
}

fn block_value(row: usize, col: usize) -> f32 {
    // In (0, 1), distinct per block: the hand-set connector below is monotonic there.
    (row * 4 + col + 1) as f32 / 10.0
}

/// An image with the geometry of `map`, and one of the same pixels without geometry.
fn images(policy: &Policy, map: &[f32]) -> (ImageInput, ImageInput) {
    let rgb = RgbImage::from_fn(W as u32, H as u32, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 4) as u8, ((x + y) % 256) as u8])
    });
    let plain = policy
        .processor
        .preprocess(&DynamicImage::ImageRgb8(rgb))
        .unwrap();
    assert_eq!(plain.grid_thw, [1, 4, 8], "the processor keeps 112 × 56");
    let rows = geometry_input(&policy.processor, map, W, H, 2).unwrap();
    (plain.clone().with_geometry(rows).unwrap(), plain)
}

fn sequence(policy: &Policy, images: Vec<ImageInput>) -> Sequence {
    let mut s = policy
        .prompt(
            &[Message::user(images.len(), "Where does the desk go?")],
            images,
        )
        .unwrap();
    let answer = policy.tokenizer.encode("near the window").unwrap();
    s.tokens.extend(answer);
    s
}

fn connector_variable(connector: &GeometryConnector, name: &str) -> Tensor {
    connector
        .variables()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
}

#[test]
fn a_fresh_connector_leaves_logits_and_bf16_tokens_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let map = block_map(block_value);
    let mut policy = load(dir.path(), false, false, Kind::Float);
    let (with, without) = images(&policy, &map);
    let s = sequence(&policy, vec![with.clone(), without.clone()]);
    let before = policy.sequence_logits(&s).unwrap();
    policy
        .attach_fresh_geometry(
            GeometryConfig {
                channels: 2,
                hidden: 16,
            },
            3,
        )
        .unwrap();
    assert!(policy.sequence_logits(&s).unwrap().equal(&before));

    let mut bf16 = load(dir.path(), false, false, Kind::BFloat16);
    let before = bf16.model.image_features(&[&with, &without]).unwrap();
    bf16.attach_fresh_geometry(
        GeometryConfig {
            channels: 2,
            hidden: 16,
        },
        3,
    )
    .unwrap();
    let after = bf16.model.image_features(&[&with, &without]).unwrap();
    assert_eq!(after.kind(), Kind::BFloat16);
    assert!(after.equal(&before));
}

#[test]
fn the_same_seed_gives_the_same_connector() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let policy = load(dir.path(), false, false, Kind::Float);
    let config = GeometryConfig {
        channels: 5,
        hidden: 8,
    };
    let make = |seed| {
        GeometryConnector::new(config, policy.model.config(), tch::Device::Cpu, seed).unwrap()
    };
    let (a, b, c) = (make(1), make(1), make(2));
    let fc1 = |x: &GeometryConnector| connector_variable(x, "fc1.weight");
    assert!(fc1(&a).equal(&fc1(&b)));
    assert!(!fc1(&a).equal(&fc1(&c)));
    assert_eq!(fc1(&a).size(), [8, 4 * 5]);
    assert!(fc1(&a).abs().max().double_value(&[]) <= 1.0 / 20_f64.sqrt());
    let fc2 = connector_variable(&a, "fc2.weight");
    assert!(
        fc2.equal(&fc2.zeros_like()),
        "the last layer starts at zero"
    );
}

#[test]
fn each_28_pixel_block_lands_on_its_own_visual_token() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let mut policy = load(dir.path(), false, false, Kind::Float);
    let (with, without) = images(&policy, &block_map(block_value));
    let before = policy.model.image_features(&[&with, &without]).unwrap();
    // Hidden unit 0 reads the first patch's channel 0; output dimension 3 is hidden unit 0.
    let connector = GeometryConnector::new(
        GeometryConfig {
            channels: 2,
            hidden: 4,
        },
        policy.model.config(),
        tch::Device::Cpu,
        0,
    )
    .unwrap();
    tch::no_grad(|| {
        let mut fc1 = connector_variable(&connector, "fc1.weight");
        let _ = fc1.zero_();
        let _ = fc1.get(0).get(0).fill_(1.0);
        let _ = connector_variable(&connector, "fc2.weight")
            .get(3)
            .get(0)
            .fill_(1.0);
    });
    policy.model.attach_geometry(connector).unwrap();
    let after = policy.model.image_features(&[&with, &without]).unwrap();
    let delta = &after - &before;
    let hidden = policy.model.config().text_config.hidden_size;
    assert_eq!(delta.size(), [16, hidden]);
    // The second image has no geometry: untouched.
    assert!(after.narrow(0, 8, 8).equal(&before.narrow(0, 8, 8)));
    // Token k of the first image is block (k / 4, k % 4). Its merged vector is four patches of
    // (v, 1): RMS-normalised, v becomes v / √((v² + 1) / 2), then GELU.
    let gelu = |x: f64| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2));
    for k in 0..8_usize {
        let v = f64::from(block_value(k / 4, k % 4));
        let expect = gelu(v / f64::midpoint(v * v, 1.0).sqrt());
        let got = delta.double_value(&[k as i64, 3]);
        assert!((got - expect).abs() < 1e-5, "token {k}: {got} vs {expect}");
        let rest = delta.get(k as i64).abs().sum(Kind::Float).double_value(&[]) - got.abs();
        assert!(
            rest.abs() < 1e-6,
            "token {k}: other dimensions moved by {rest}"
        );
    }
}

/// The error function (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

/// One SGD step on the connector (only) of `policy` on the log-likelihood of `s`'s last 3
/// tokens; returns the last layer's gradient norm.
fn train_connector(policy: &Policy, s: &Sequence) -> f64 {
    let item = ScoreItem {
        sequence: s,
        response_start: s.tokens.len() - 3,
    };
    let scores = score(&policy.model, &[item], &ScoreOptions::log_likelihood(64)).unwrap();
    (scores.logprobs * scores.mask.to_kind(Kind::Float))
        .sum(Kind::Float)
        .backward();
    let connector = policy.model.geometry().unwrap();
    let grad = connector_variable(connector, "fc2.weight").grad();
    let norm = grad.norm().double_value(&[]);
    tch::no_grad(|| {
        for (_, mut p) in connector.variables() {
            let g = p.grad();
            if g.defined() {
                p -= g * 10.0;
            }
        }
    });
    norm
}

#[test]
fn the_connector_trains_under_lora_and_full_fine_tuning() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let map = block_map(block_value);
    for (lora, train_base) in [(true, false), (false, true)] {
        let mut policy = load(dir.path(), lora, train_base, Kind::Float);
        let (with, _) = images(&policy, &map);
        let s = sequence(&policy, vec![with]);
        let base = policy.sequence_logits(&s).unwrap();
        policy
            .attach_fresh_geometry(
                GeometryConfig {
                    channels: 2,
                    hidden: 8,
                },
                7,
            )
            .unwrap();
        let norm = train_connector(&policy, &s);
        assert!(
            norm > 0.0,
            "lora {lora}: no gradient reached the last layer"
        );
        let fc2 = connector_variable(policy.model.geometry().unwrap(), "fc2.weight");
        assert!(fc2.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        let trained = policy.sequence_logits(&s).unwrap();
        assert!(
            !trained.equal(&base),
            "lora {lora}: the step changed nothing"
        );
        if let Some(state) = policy.lora() {
            // The reference policy (adapters off) keeps the connector training started from.
            state.set_enabled(false);
            let reference = policy.sequence_logits(&s).unwrap();
            state.set_enabled(true);
            assert!(
                reference.equal(&base),
                "the reference moved with the connector"
            );
        }
    }
}

#[test]
fn export_and_load_keep_the_connector_and_every_path_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let mut policy = load(dir.path(), false, true, Kind::Float);
    policy
        .attach_fresh_geometry(
            GeometryConfig {
                channels: 2,
                hidden: 8,
            },
            7,
        )
        .unwrap();
    let (with, without) = images(&policy, &block_map(block_value));
    let s = sequence(&policy, vec![with.clone()]);
    train_connector(&policy, &s);
    let trained = policy.sequence_logits(&s).unwrap();

    let out = tempfile::tempdir().unwrap();
    policy.export(out.path(), Kind::Float, 1 << 30).unwrap();
    assert!(out.path().join(GEOMETRY_FILE).exists());
    let loaded = load(out.path(), false, false, Kind::Float);
    assert_eq!(
        loaded.model.geometry().unwrap().config(),
        GeometryConfig {
            channels: 2,
            hidden: 8
        }
    );
    assert!(loaded.sequence_logits(&s).unwrap().equal(&trained));

    // Generation's prefill sees the geometry: its greedy first token is the full pass's.
    let prompt = Sequence {
        tokens: s.tokens[..s.tokens.len() - 3].to_vec(),
        images: vec![with.clone()],
    };
    let last = loaded
        .sequence_logits(&prompt)
        .unwrap()
        .get(-1)
        .argmax(0, false);
    let params = SamplingParams {
        greedy: true,
        max_new_tokens: 1,
        ..SamplingParams::default()
    };
    let first = generate(&loaded.model, std::slice::from_ref(&prompt), 1, &params).unwrap();
    assert_eq!(first[0].tokens, [last.int64_value(&[])]);

    // Scoring: the same tokens with and without geometry are different prompts, each scored
    // as it is alone.
    let plain = Sequence {
        tokens: s.tokens.clone(),
        images: vec![without],
    };
    let item = |sequence| ScoreItem {
        sequence,
        response_start: s.tokens.len() - 3,
    };
    let options = ScoreOptions::log_likelihood(64);
    let both = tch::no_grad(|| score(&loaded.model, &[item(&s), item(&plain)], &options)).unwrap();
    for (row, seq) in [(0, &s), (1, &plain)] {
        let alone = tch::no_grad(|| score(&loaded.model, &[item(seq)], &options)).unwrap();
        let delta = (both.logprobs.get(row) - alone.logprobs.get(0))
            .abs()
            .max()
            .double_value(&[]);
        assert!(delta < 1e-5, "row {row}: {delta}");
    }
    assert!(!both.logprobs.get(0).equal(&both.logprobs.get(1)));
}
