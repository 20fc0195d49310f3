//! `metaspatial-rl generate`: one response of a checkpoint to a room's first-turn prompt or to
//! a prompt file, with optional images.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use metaspatial_policy::{LoadOptions, Message, Policy, generate};
use tch::Tensor;

use crate::config::DeviceChoice;

/// Arguments of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Checkpoint directory in Hugging Face layout (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Room JSON (ours or a `MetaSpatial` / `IDesign` scene graph): the user message is the
    /// environment's first-turn prompt for it.
    #[arg(
        long,
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    room: Option<PathBuf>,
    /// Text file: the user message is its content.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Image to show the model, placed before the text (repeatable; in order).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Take the most likely token at every step instead of sampling with the checkpoint's
    /// generation settings.
    #[arg(long)]
    greedy: bool,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(i64).range(1..))]
    max_new_tokens: i64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print `{"text", "prompt_token_ids", "generated_token_ids"}` instead of the text.
    #[arg(long)]
    json: bool,
    /// Save the logits of the prompt positions, `(prompt tokens, vocab)` f32, under the key
    /// `logits` in this safetensors file.
    #[arg(long)]
    dump_logits: Option<PathBuf>,
    /// `auto` (the first GPU when there is one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// Runs `generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let policy = Policy::load(
        &args.model,
        &LoadOptions {
            device,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("loading {}", args.model.display()))?;
    let text = match (&args.room, &args.prompt_file) {
        (Some(room), _) => {
            let json = std::fs::read_to_string(room)
                .with_context(|| format!("reading {}", room.display()))?;
            let room = metaspatial_env::load_room(&json, &room.display().to_string())?;
            metaspatial_env::episode::task_prompt(&room)
        }
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => bail!("give --room or --prompt-file"),
    };
    let images = args
        .images
        .iter()
        .map(|path| policy.processor.load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let prompt = policy.prompt(&[Message::user(images.len(), text)], images)?;
    if let Some(path) = &args.dump_logits {
        let logits = policy.sequence_logits(&prompt)?;
        Tensor::write_safetensors(&[("logits", &logits)], path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut params = policy.generation.sampling();
    params.greedy |= args.greedy;
    params.max_new_tokens = args.max_new_tokens;
    params.seed = args.seed;
    params.stop_tokens = policy.stop_tokens()?;
    let completion = generate(&policy.model, std::slice::from_ref(&prompt), 1, &params)?
        .pop()
        .context("generation returned nothing")?;
    let response = policy.tokenizer.decode(&completion.tokens, true)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "text": response,
            "prompt_token_ids": prompt.tokens,
            "generated_token_ids": completion.tokens,
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{response}")?;
    }
    Ok(ExitCode::SUCCESS)
}
