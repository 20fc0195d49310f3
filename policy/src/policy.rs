//! A loaded checkpoint: the model with its `VarStore`s, tokenizer, chat template, image
//! processor and generation defaults, plus export back to the Hugging Face layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

use crate::checkpoint::{self, write_json};
use crate::error::{PolicyError, Result, io_error, read_json};
use crate::generation::SamplingParams;
use crate::geometry::{GEOMETRY_FILE, GeometryConfig, GeometryConnector};
use crate::image::ImageProcessorConfig;
use crate::lora::{LoraConfig, LoraState};
use crate::qwen2_5_vl::{Config, ImageInput, ModelStores, Qwen2_5VlModel, Sequence};
use crate::store::OwnStore;
use crate::tokenizer::{
    ChatTokenizer, IM_END, IMAGE_PAD, Message, VIDEO_PAD, VISION_END, VISION_START,
};
use crate::world_model::{WORLD_MODEL_FILE, WorldModelHead};

/// How to load a checkpoint.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the parameters live.
    pub device: Device,
    /// Base parameter dtype (adapters are always f32); `None` picks bf16 on CUDA and f32 on
    /// the CPU.
    pub kind: Option<Kind>,
    /// Attach fresh `LoRA` adapters (base frozen).
    pub lora: Option<LoraConfig>,
    /// Make the base parameters trainable (full fine-tuning).
    pub train_base: bool,
    /// Where the base parameters come from.
    pub weights: Weights,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            kind: None,
            lora: None,
            train_base: false,
            weights: Weights::Checkpoint,
        }
    }
}

/// Where a loaded model's base parameters come from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Weights {
    /// The directory's safetensors files.
    #[default]
    Checkpoint,
    /// Seeded random values ([`crate::tiny::fill_random`]), for a directory written by
    /// [`crate::tiny::RandomModel::write_files`]: a model's cost without its weights.
    Random {
        /// The generator's seed.
        seed: u64,
        /// Standard deviation of the matrices.
        std: f64,
    },
}

/// Sampling defaults and end tokens from `generation_config.json`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct GenerationConfig {
    /// End-of-sequence token(s).
    #[serde(default)]
    pub eos_token_id: Option<Value>,
    /// Padding token.
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    /// Whether the checkpoint samples by default.
    #[serde(default)]
    pub do_sample: Option<bool>,
    /// Default temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Default nucleus mass.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Default top-k.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// Default repetition penalty.
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
}

impl GenerationConfig {
    /// The end-of-sequence ids (an int or a list in the file).
    #[must_use]
    pub fn eos_ids(&self) -> Vec<i64> {
        match &self.eos_token_id {
            Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_i64).collect(),
            _ => Vec::new(),
        }
    }

    /// The checkpoint's sampling defaults with its stop tokens.
    #[must_use]
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            greedy: self.do_sample == Some(false),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: self.top_k.unwrap_or(0),
            repetition_penalty: self.repetition_penalty.unwrap_or(1.0),
            stop_tokens: self.eos_ids(),
            ..SamplingParams::default()
        }
    }
}

/// A checkpoint ready to generate, score, train and export.
pub struct Policy {
    /// The network.
    pub model: Qwen2_5VlModel,
    /// Tokenizer and chat template.
    pub tokenizer: ChatTokenizer,
    /// Image preprocessing.
    pub processor: ImageProcessorConfig,
    /// Defaults of `generation_config.json`.
    pub generation: GenerationConfig,
    /// The world-model head, when attached (training only: generation does not use it).
    pub world_model: Option<WorldModelHead>,
    vs: nn::VarStore,
    lora_vs: Option<nn::VarStore>,
    dir: PathBuf,
    /// The source checkpoint's non-weight files (name, bytes), read at load: export writes
    /// them from here, so it never depends on the source directory still existing (a run
    /// rotates away the checkpoint it resumed from).
    side_files: Vec<(String, Vec<u8>)>,
}

impl Policy {
    /// Loads a checkpoint directory (either Hugging Face layout).
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config = Config::from_file(&dir.join("config.json"))?;
        let tokenizer = ChatTokenizer::from_dir(dir)?;
        let processor = ImageProcessorConfig::from_dir(dir)?;
        let generation_path = dir.join("generation_config.json");
        let generation = if generation_path.exists() {
            read_json(&generation_path)?
        } else {
            GenerationConfig::default()
        };
        let kind = options.kind.unwrap_or(if options.device.is_cuda() {
            Kind::BFloat16
        } else {
            Kind::Float
        });
        let mut vs = nn::VarStore::new(options.device);
        // Parameters are made in their final dtype: building in f32 and casting afterwards
        // would hold twice a bf16 model's memory while loading.
        vs.set_kind(kind);
        // Adapters live in f32 whatever the model's dtype, as PEFT keeps them: they are what
        // trains, and a bf16 adapter would lose every update smaller than its rounding step.
        let lora_vs = options
            .lora
            .as_ref()
            .map(|_| nn::VarStore::new(options.device));
        let state = options.lora.clone().map(LoraState::new);
        let mut model = {
            let stores = ModelStores {
                base: &vs,
                lora: lora_vs.as_ref().zip(state.clone()),
                train_base: options.train_base,
            };
            Qwen2_5VlModel::new(&config, &stores)
        };
        match options.weights {
            Weights::Checkpoint => checkpoint::load_weights(&vs, dir)?,
            Weights::Random { seed, std } => crate::tiny::fill_random(&vs, seed, std),
        }
        let geometry = dir.join(GEOMETRY_FILE);
        if geometry.exists() {
            let connector = GeometryConnector::load(&geometry, &config, options.device)?;
            model.attach_geometry(connector)?;
        }
        let head = dir.join(WORLD_MODEL_FILE);
        let world_model = head
            .exists()
            .then(|| WorldModelHead::load(&head, options.device))
            .transpose()?;
        let side_files = read_side_files(dir)?;
        Ok(Self {
            model,
            tokenizer,
            processor,
            generation,
            world_model,
            vs,
            lora_vs,
            dir: dir.to_path_buf(),
            side_files,
        })
    }

    /// Attaches a fresh geometry connector drawn from `seed` (its last layer zero, so the
    /// policy computes what it computed before). A checkpoint directory holding
    /// [`GEOMETRY_FILE`] gets its saved connector at load instead.
    pub fn attach_fresh_geometry(&mut self, config: GeometryConfig, seed: u64) -> Result<()> {
        let connector =
            GeometryConnector::new(config, self.model.config(), self.model.device(), seed)?;
        self.model.attach_geometry(connector)
    }

    /// Attaches a fresh world-model head predicting `grid × grid` maps, drawn from `seed`. A
    /// checkpoint directory holding [`WORLD_MODEL_FILE`] gets its saved head at load instead.
    pub fn attach_fresh_world_model(&mut self, grid: i64, seed: u64) -> Result<()> {
        let hidden = self.model.config().text_config.hidden_size;
        self.world_model = Some(WorldModelHead::new(
            hidden,
            grid,
            self.model.device(),
            seed,
        )?);
        Ok(())
    }

    /// The checkpoint directory this policy was loaded from (export does not read it again).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Base parameters (names = checkpoint keys).
    #[must_use]
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Adapter parameters (f32 whatever the model's dtype), when `LoRA` is on.
    #[must_use]
    pub fn lora_var_store(&self) -> Option<&nn::VarStore> {
        self.lora_vs.as_ref()
    }

    /// The adapter switch, when `LoRA` is on.
    #[must_use]
    pub fn lora(&self) -> Option<&Arc<LoraState>> {
        self.model.lora()
    }

    /// Stop tokens: the generation config's end ids, else `<|im_end|>`.
    pub fn stop_tokens(&self) -> Result<Vec<i64>> {
        let ids = self.generation.eos_ids();
        if ids.is_empty() {
            Ok(vec![self.tokenizer.token_id(IM_END)?])
        } else {
            Ok(ids)
        }
    }

    /// The image and vision placeholder tokens: a response must never contain them.
    pub fn vision_tokens(&self) -> Result<Vec<i64>> {
        [VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]
            .iter()
            .map(|t| self.tokenizer.token_id(t))
            .collect()
    }

    /// A generation prompt: the chat template applied to `messages` (with the assistant
    /// header), tokenised, each image's `<|image_pad|>` expanded to its feature count.
    pub fn prompt(&self, messages: &[Message], images: Vec<ImageInput>) -> Result<Sequence> {
        let text = self.tokenizer.render(messages, true)?;
        self.sequence_from_text(&text, images)
    }

    /// Tokenises rendered chat text, expanding image placeholders for `images` in order.
    pub fn sequence_from_text(&self, text: &str, images: Vec<ImageInput>) -> Result<Sequence> {
        let pad = self.tokenizer.token_id(IMAGE_PAD)?;
        let ids = self.tokenizer.encode(text)?;
        let placeholders = ids.iter().filter(|&&t| t == pad).count();
        if placeholders != images.len() {
            return Err(PolicyError::Input(format!(
                "the prompt has {placeholders} image placeholders but {} images were given",
                images.len()
            )));
        }
        let merge = self.model.config().vision_config.spatial_merge_size;
        let mut tokens = Vec::with_capacity(ids.len());
        let mut next_image = images.iter();
        for id in ids {
            if id == pad {
                let [t, h, w] = next_image.next().expect("counted above").grid_thw;
                tokens.extend(std::iter::repeat_n(
                    pad,
                    (t * h * w / (merge * merge)) as usize,
                ));
            } else {
                tokens.push(id);
            }
        }
        Ok(Sequence { tokens, images })
    }

    /// Logits `(len, vocab)` f32 of every position of one sequence (full-sequence path).
    pub fn sequence_logits(&self, sequence: &Sequence) -> Result<Tensor> {
        tch::no_grad(|| {
            let device = self.model.device();
            let n = sequence.tokens.len() as i64;
            let tokens = Tensor::from_slice(&sequence.tokens).view([1, n]).to(device);
            let (flat, _) = self.model.rope_index(sequence)?;
            let positions = Tensor::from_slice(&flat).view([3, 1, n]).to(device);
            let images: Vec<&ImageInput> = sequence.images.iter().collect();
            let embeds = self.model.embed(&tokens, &images)?;
            let hidden = self.model.forward_hidden(&embeds, &positions, None);
            Ok(self
                .model
                .logits(&hidden)
                .squeeze_dim(0)
                .to_kind(Kind::Float))
        })
    }

    /// Writes a Hugging Face checkpoint to `out`: weights under Hub names (adapters merged in
    /// when `LoRA` is on) in `kind`, sharded at `shard_bytes`, plus every non-weight file of the
    /// source checkpoint (config, tokenizer, templates, processor and generation configs) and
    /// the geometry connector and the world-model head, when attached, as [`GEOMETRY_FILE`] and
    /// [`WORLD_MODEL_FILE`] (f32).
    pub fn export(&self, out: &Path, kind: Kind, shard_bytes: usize) -> Result<()> {
        std::fs::create_dir_all(out).map_err(io_error(out))?;
        let mut tensors: BTreeMap<String, Tensor> = self.vs.variables().into_iter().collect();
        if let (Some(lvs), Some(state)) = (&self.lora_vs, self.lora()) {
            let adapters = lvs.variables();
            let scale = state.config.scale();
            for (name, a) in &adapters {
                let Some(module) = name.strip_suffix(".lora_A.weight") else {
                    continue;
                };
                let b = &adapters[&format!("{module}.lora_B.weight")];
                let base = tensors
                    .get_mut(&format!("{module}.weight"))
                    .expect("adapters sit on base layers");
                let delta = b.to_kind(Kind::Float).matmul(&a.to_kind(Kind::Float)) * scale;
                *base = tch::no_grad(|| base.to_kind(Kind::Float) + delta);
            }
        }
        checkpoint::save_weights(out, &tensors, kind, shard_bytes)?;
        let dtype = match kind {
            Kind::BFloat16 => "bfloat16",
            Kind::Half => "float16",
            _ => "float32",
        };
        write_json(
            &out.join("config.json"),
            &self.model.config().with_dtype(dtype),
        )?;
        for (name, bytes) in &self.side_files {
            let path = out.join(name);
            std::fs::write(&path, bytes).map_err(io_error(&path))?;
        }
        if let Some(connector) = self.model.geometry() {
            connector.save(&out.join(GEOMETRY_FILE))?;
        }
        if let Some(head) = &self.world_model {
            head.save(&out.join(WORLD_MODEL_FILE))?;
        }
        Ok(())
    }
}

/// Whether a checkpoint file holds weights: ours (safetensors and their index) are rewritten on
/// export, and weights in another format would be stale beside them (and can weigh gigabytes).
fn is_weight_file(name: &str) -> bool {
    const WEIGHT_EXTENSIONS: [&str; 9] = [
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".h5",
        ".msgpack",
        ".gguf",
        ".onnx",
    ];
    let stem = name.strip_suffix(".index.json").unwrap_or(name);
    WEIGHT_EXTENSIONS.iter().any(|ext| stem.ends_with(ext))
}

/// The non-weight files of a checkpoint directory other than `config.json` (which export
/// regenerates from the parsed config): tokenizer, chat template, processor and generation
/// configs, sorted by name.
fn read_side_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_file() && name != "config.json" && !is_weight_file(name) {
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            files.push((name.to_owned(), bytes));
        }
    }
    files.sort();
    Ok(files)
}
