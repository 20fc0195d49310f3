//! `tokenizer.json` through the `tokenizers` crate, and the checkpoint's Jinja chat template
//! rendered with minijinja exactly as transformers renders it (`trim_blocks`, `lstrip_blocks`).

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{PolicyError, Result, read_json};

/// Qwen's special tokens that the prompt format relies on.
pub const IM_START: &str = "<|im_start|>";
/// End of a chat turn; also the end-of-sequence token of the instruct models.
pub const IM_END: &str = "<|im_end|>";
/// End of text (base-model end-of-sequence, also used as padding).
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Opens an image.
pub const VISION_START: &str = "<|vision_start|>";
/// Closes an image.
pub const VISION_END: &str = "<|vision_end|>";
/// Stands for one merged image patch.
pub const IMAGE_PAD: &str = "<|image_pad|>";
/// Stands for one merged video patch.
pub const VIDEO_PAD: &str = "<|video_pad|>";
/// Every special token of Qwen2.5-VL's vocabulary, in id order (151643…).
pub const QWEN_SPECIAL_TOKENS: [&str; 22] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
];

/// One part of a message: an image (its tokens are expanded later) or text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    /// An image, placed where it appears in the content list.
    Image,
    /// Text.
    Text {
        /// The text.
        text: String,
    },
}

/// One chat message as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Images and text, in order.
    pub content: Vec<Content>,
}

impl Message {
    /// A user message: `images` images, then the text (Qwen's `[image…, text]` order).
    #[must_use]
    pub fn user(images: usize, text: impl Into<String>) -> Self {
        let mut content = vec![Content::Image; images];
        content.push(Content::Text { text: text.into() });
        Self {
            role: "user".to_owned(),
            content,
        }
    }

    /// A message holding only text.
    #[must_use]
    pub fn text(role: &str, text: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: vec![Content::Text { text: text.into() }],
        }
    }
}

/// The tokenizer and chat template of a checkpoint.
pub struct ChatTokenizer {
    tokenizer: tokenizers::Tokenizer,
    template: String,
    template_origin: String,
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for ChatTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokenizer")
            .field("template_origin", &self.template_origin)
            .finish_non_exhaustive()
    }
}

impl ChatTokenizer {
    /// Loads `tokenizer.json` and the chat template from a checkpoint directory. The template is
    /// looked up where transformers looks: `chat_template.jinja`, `chat_template.json`,
    /// `processor_config.json`, then `tokenizer_config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| PolicyError::Tokenizer(format!("{}: {e}", tokenizer_path.display())))?;
        let (template, origin) = find_template(dir)?;
        Self::new(tokenizer, template, origin)
    }

    /// From a tokenizer and a template source; `origin` names the template in errors.
    pub fn new(tokenizer: tokenizers::Tokenizer, template: String, origin: String) -> Result<Self> {
        let mut env = minijinja::Environment::new();
        // transformers compiles chat templates with these two settings.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        env.add_template_owned("chat", template.clone())
            .map_err(|e| PolicyError::Template {
                origin: origin.clone(),
                message: format!("{e:#}"),
            })?;
        let this = Self {
            tokenizer,
            template,
            template_origin: origin,
            env,
        };
        for token in [IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD] {
            this.token_id(token)?;
        }
        Ok(this)
    }

    /// The template source.
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The underlying tokenizer.
    #[must_use]
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// The id of a token that must exist (special tokens).
    pub fn token_id(&self, token: &str) -> Result<i64> {
        self.tokenizer
            .token_to_id(token)
            .map(i64::from)
            .ok_or_else(|| PolicyError::Tokenizer(format!("the vocabulary has no token {token:?}")))
    }

    /// Renders the chat template (with the assistant header when `add_generation_prompt`).
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self.env.get_template("chat").expect("added in new");
        let context = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            add_vision_id => false,
            bos_token => END_OF_TEXT,
            eos_token => IM_END,
        };
        template.render(context).map_err(|e| PolicyError::Template {
            origin: self.template_origin.clone(),
            message: format!("{e:#}"),
        })
    }

    /// Token ids of `text` (special tokens in the text are recognised; none are added).
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| PolicyError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[i64], skip_special_tokens: bool) -> Result<String> {
        let ids: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
        self.tokenizer
            .decode(&ids, skip_special_tokens)
            .map_err(|e| PolicyError::Tokenizer(e.to_string()))
    }
}

fn find_template(dir: &Path) -> Result<(String, String)> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        let text = std::fs::read_to_string(&jinja).map_err(crate::error::io_error(&jinja))?;
        return Ok((text, "chat_template.jinja".to_owned()));
    }
    for file in [
        "chat_template.json",
        "processor_config.json",
        "tokenizer_config.json",
    ] {
        let path = dir.join(file);
        if !path.exists() {
            continue;
        }
        let value: Value = read_json(&path)?;
        match value.get("chat_template") {
            Some(Value::String(text)) => return Ok((text.clone(), file.to_owned())),
            // A list of named templates: take `default`, as transformers does.
            Some(Value::Array(list)) => {
                let default = list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str);
                if let Some(text) = default {
                    return Ok((text.to_owned(), file.to_owned()));
                }
            }
            _ => {}
        }
    }
    Err(PolicyError::Config {
        path: dir.to_path_buf(),
        message:
            "no chat template (chat_template.jinja, chat_template.json, processor_config.json or \
                  tokenizer_config.json)"
                .to_owned(),
    })
}
