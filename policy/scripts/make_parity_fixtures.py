"""Builds the parity fixtures of the policy crate from transformers (the ground truth).

Two tiny random Qwen2.5-VL checkpoints are written under ``policy/tests/fixtures/``:

- ``hub/``: the layout of checkpoints published on the Hub (flat ``config.json`` with
  ``rope_scaling.mrope_section``, weight names ``model.layers.*`` / ``visual.*``, two shards and
  ``model.safetensors.index.json``, ``preprocessor_config.json``, ``chat_template.json``), with an
  untied output head;
- ``v5/``: what transformers 5 ``save_pretrained`` writes (nested ``text_config`` /
  ``vision_config``, ``model.language_model.*`` / ``model.visual.*``, ``processor_config.json``,
  ``chat_template.jinja``), with the head tied to the embeddings.

Both use window attention with full-attention blocks. Three images of different sizes (one with
an alpha channel) go in ``images/``. For each checkpoint, ``reference-<name>.safetensors`` holds
the prompt token ids, full-sequence logits and greedy generations that transformers computes for a
text-only prompt and a prompt with all three images, and ``reference-images.safetensors`` holds
the image processor's outputs. The Rust tests compare against these (max |Δlogit| ≤ 1e-4, same
greedy tokens, same token ids, same pixel values).

Run from the repository root (needs ``torch``, ``transformers``, ``tokenizers``, ``pillow``,
``safetensors``, ``numpy``; CPU is enough):

    .venv/bin/python policy/scripts/make_parity_fixtures.py

Any Pillow works. Pillow 13 changed the order of the two resampling passes for some size pairs
(vertical first when the height shrinks by more than twice as many pixels as the width), which
moves a few resized pixels by a level or two; our resize reproduces both orders. The script makes
the references of both orders itself, as two one-axis resizes (exactly what Pillow's two passes
compute), checks that the installed Pillow's own resize equals the one for its version, and feeds
the model images resized in Pillow 13's order, so the fixtures do not depend on the Pillow
installed.

The script is deterministic. ``--check-export DIR LOGITS`` instead loads an exported checkpoint
with transformers and compares its logits for the stored image prompt with ``LOGITS`` (a
safetensors file with key ``logits``, as written by ``metaspatial-rl generate --dump-logits``).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)
from transformers.image_transforms import convert_to_rgb
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
    smart_resize,
)

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]

# The chat template of the Qwen2.5-VL instruct checkpoints.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Place the bed against the north wall and the desk by the east window.",
    '<think>The sofa faces the television.</think><answer>[{"new_object_id": "sofa_1", '
    '"x": 2.5, "y": 1.2, "z": 0.45, "rotation": 180}]</answer>',
    "The room is 4.0 m long, 3.5 m wide and 2.8 m high. Objects: bed, desk, chair, lamp.",
    "Keep every object inside the room, on the floor or on a support, without collisions.",
]

TEXT_PROMPT = "Lay out a small bedroom: a bed, a desk and a chair. Answer in JSON."
IMAGE_PROMPT = "Here are three views. Where should the wardrobe go?"
GREEDY_TOKENS = 12
MIN_PIXELS = 56 * 56
MAX_PIXELS = 28 * 28 * 24


def build_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_special_tokens(QWEN_SPECIAL_TOKENS)
    return tok


def build_images() -> list[Path]:
    rng = np.random.default_rng(7)
    out = FIXTURES / "images"
    out.mkdir(parents=True, exist_ok=True)
    specs = [("a.png", (60, 100), "RGB"), ("b.png", (45, 75), "RGBA"), ("c.png", (56, 56), "RGB")]
    paths = []
    for name, (h, w), mode in specs:
        channels = 4 if mode == "RGBA" else 3
        # Smooth gradients plus noise: resampling then has something to do.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 / w), (yy * 255 / h), ((xx + yy) * 127 / (w + h))], -1)
        noise = rng.integers(0, 60, size=(h, w, 3))
        rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
        if channels == 4:
            alpha = rng.integers(0, 256, size=(h, w, 1)).astype(np.uint8)
            rgb = np.concatenate([rgb, alpha], -1)
        path = out / name
        Image.fromarray(rgb, mode).save(path)
        paths.append(path)
    return paths


def build_config(vocab_size: int, tok: Tokenizer, tied: bool) -> Qwen2_5_VLConfig:
    ids = {t: tok.token_to_id(t) for t in QWEN_SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rms_norm_eps=1e-6,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [1, 1, 2]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            tie_word_embeddings=tied,
        ),
        vision_config=dict(
            depth=4,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            out_hidden_size=32,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1, 3],
            tokens_per_second=2,
            hidden_act="silu",
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tied,
    )


def random_model(config: Qwen2_5_VLConfig, seed: int) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    # Wide random weights so that logits are well separated and greedy decoding has no near-ties.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "norm1" in name or "norm2" in name or "ln_q" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    return model


def hf_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def vertical_first(order: str, w: int, h: int, W: int, H: int) -> bool:
    """Whether Pillow of this order resamples columns before rows for (w, h) → (W, H)."""
    return order == "pillow13" and H < h and h - H > 2 * (w - W)


def resized(image: Image.Image, order: str) -> Image.Image:
    """The processor's RGB conversion and resize, the two passes in ``order`` made explicit."""
    rgb = convert_to_rgb(image, return_numpy=False)
    w, h = rgb.size
    H, W = smart_resize(h, w, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    first = (w, H) if vertical_first(order, w, h, W, H) else (W, h)
    return rgb.resize(first, Image.BICUBIC).resize((W, H), Image.BICUBIC)


def installed_order() -> str:
    import PIL

    return "pillow13" if int(PIL.__version__.split(".")[0]) >= 13 else "pillow12"


def prompt_inputs(fast, processor, text: str, images: list[Image.Image]):
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}]
    rendered = fast.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pad = "<|image_pad|>"
    grids = None
    pixel_values = None
    if images:
        images = [resized(image, "pillow13") for image in images]
        out = processor(images=images, return_tensors="pt")
        pixel_values, grids = out["pixel_values"], out["image_grid_thw"]
        parts = rendered.split(pad)
        expanded = parts[0]
        for grid, part in zip(grids.tolist(), parts[1:]):
            expanded += pad * (grid[0] * grid[1] * grid[2] // 4) + part
        rendered_for_ids = expanded
    else:
        rendered_for_ids = rendered
    ids = torch.tensor([fast(rendered_for_ids, add_special_tokens=False)["input_ids"]])
    return rendered, ids, pixel_values, grids


def run_model(model, ids, pixel_values, grids, image_token_id):
    kwargs = {}
    if pixel_values is not None:
        kwargs = dict(
            pixel_values=pixel_values,
            image_grid_thw=grids,
            mm_token_type_ids=(ids == image_token_id).int(),
        )
    with torch.no_grad():
        logits = model(input_ids=ids, **kwargs).logits[0]
        generated = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=GREEDY_TOKENS,
            output_scores=True,
            return_dict_in_generate=True,
            **kwargs,
        )
    new = generated.sequences[0, ids.shape[1]:]
    assert len(new) == GREEDY_TOKENS, "greedy path hit the end token early; change the seed"
    # The smallest gap between the best and second-best logit along the greedy path: parity of
    # greedy tokens is only meaningful when it is far above the 1e-4 logit tolerance.
    gaps = [float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in generated.scores]
    return logits, new, min(gaps)


def to_hub_layout(src: Path, dst: Path, tok_dir: Path, config: Qwen2_5_VLConfig) -> None:
    """Rewrites a transformers 5 checkpoint in the layout of the Hub releases."""
    dst.mkdir(parents=True, exist_ok=True)
    tensors = load_file(src / "model.safetensors")
    renamed = {}
    for name, t in tensors.items():
        if name.startswith("model.language_model."):
            name = "model." + name[len("model.language_model."):]
        elif name.startswith("model.visual."):
            name = "visual." + name[len("model.visual."):]
        renamed[name] = t.contiguous()
    names = sorted(renamed)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: renamed[k] for k in keys}, dst / file, metadata={"format": "pt"})
        weight_map.update({k: file for k in keys})
    total = sum(t.numel() * t.element_size() for t in renamed.values())
    (dst / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    text = config.text_config
    vision = config.vision_config
    flat = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0,
        "bos_token_id": text.bos_token_id,
        "eos_token_id": text.eos_token_id,
        "vision_start_token_id": config.vision_start_token_id,
        "vision_end_token_id": config.vision_end_token_id,
        "image_token_id": config.image_token_id,
        "video_token_id": config.video_token_id,
        "hidden_act": "silu",
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "max_position_embeddings": text.max_position_embeddings,
        "max_window_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_hidden_layers": text.num_hidden_layers,
        "num_key_value_heads": text.num_key_value_heads,
        "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": text.rope_parameters["rope_theta"],
        "sliding_window": 4096,
        "use_sliding_window": False,
        "tie_word_embeddings": config.tie_word_embeddings,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": text.vocab_size,
        "rope_scaling": {"type": "mrope", "mrope_section": text.rope_parameters["mrope_section"]},
        "vision_config": {
            "depth": vision.depth,
            "hidden_act": vision.hidden_act,
            "hidden_size": vision.hidden_size,
            "intermediate_size": vision.intermediate_size,
            "num_heads": vision.num_heads,
            "in_chans": 3,
            "out_hidden_size": vision.out_hidden_size,
            "patch_size": vision.patch_size,
            "spatial_merge_size": vision.spatial_merge_size,
            "spatial_patch_size": vision.patch_size,
            "window_size": vision.window_size,
            "fullatt_block_indexes": list(vision.fullatt_block_indexes),
            "tokens_per_second": vision.tokens_per_second,
            "temporal_patch_size": vision.temporal_patch_size,
        },
    }
    (dst / "config.json").write_text(json.dumps(flat, indent=2))
    (dst / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2))
    (dst / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "patch_size": 14, "temporal_patch_size": 2,
        "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    }, indent=2))
    for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]:
        if (tok_dir / name).exists():
            shutil.copy(tok_dir / name, dst / name)


def make_checkpoint(name, tok, fast, processor, images, tied, seed):
    vocab = tok.get_vocab_size()
    config = build_config(vocab, tok, tied)
    model = random_model(config, seed)
    staging = FIXTURES / f"_{name}_staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    fast.save_pretrained(staging)
    out = FIXTURES / name
    shutil.rmtree(out, ignore_errors=True)
    if name == "v5":
        staging.rename(out)
        # transformers 5.0-5.2 wrote the new weight names; later versions write the Hub names
        # back. The fixture keeps the new names so that loading them stays tested.
        weights = load_file(out / "model.safetensors")
        renamed = {}
        for key, t in weights.items():
            if key.startswith("model.") and not key.startswith("model.language_model."):
                key = "model.language_model." + key[len("model."):]
            elif key.startswith("visual."):
                key = "model.visual." + key[len("visual."):]
            renamed[key] = t.contiguous()
        save_file(renamed, out / "model.safetensors", metadata={"format": "pt"})
        (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
        config_path = out / "tokenizer_config.json"
        tk = json.loads(config_path.read_text())
        tk.pop("chat_template", None)
        config_path.write_text(json.dumps(tk, indent=2))
        (out / "processor_config.json").write_text(json.dumps({
            "image_processor": {
                "image_processor_type": "Qwen2VLImageProcessor",
                "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
                "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            },
            "processor_class": "Qwen2_5_VLProcessor",
        }, indent=2))
    else:
        to_hub_layout(staging, out, staging, config)
        shutil.rmtree(staging)
    # Reload from disk so the references come from exactly the committed files.
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(out, dtype=torch.float32).eval()
    reference = {}
    for kind, text, imgs in [("text", TEXT_PROMPT, []), ("image", IMAGE_PROMPT, images)]:
        rendered, ids, pixel_values, grids = prompt_inputs(fast, processor, text, imgs)
        logits, greedy, gap = run_model(model, ids, pixel_values, grids, config.image_token_id)
        print(f"{name}/{kind}: {ids.shape[1]} prompt tokens, greedy {greedy.tolist()}, min top-2 gap {gap:.4f}")
        assert gap > 1e-3, "greedy path has a near-tie; change the seed"
        reference[f"{kind}.prompt_ids"] = ids[0].to(torch.int64)
        reference[f"{kind}.logits"] = logits.to(torch.float32).contiguous()
        reference[f"{kind}.greedy"] = greedy.to(torch.int64)
        if grids is not None:
            reference[f"{kind}.grid_thw"] = grids.to(torch.int64)
    save_file(reference, FIXTURES / f"reference-{name}.safetensors")


def check_export(export_dir: Path, logits_file: Path) -> None:
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(export_dir, dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
    fast = hf_tokenizer(tok)
    processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    images = [Image.open(FIXTURES / "images" / n) for n in ["a.png", "b.png", "c.png"]]
    _, ids, pixel_values, grids = prompt_inputs(fast, processor, IMAGE_PROMPT, images)
    kwargs = dict(pixel_values=pixel_values, image_grid_thw=grids,
                  mm_token_type_ids=(ids == model.config.image_token_id).int())
    with torch.no_grad():
        logits = model(input_ids=ids, **kwargs).logits[0]
    ours = load_file(logits_file)["logits"]
    delta = (logits - ours).abs().max().item()
    print(f"export loaded by transformers; max |Δlogit| vs ours = {delta:.2e}")
    sys.exit(0 if delta <= 1e-4 else 1)


def image_references(paths: list[Path], processor) -> dict[str, torch.Tensor]:
    """Pixel values of both pass orders; fails if the installed Pillow disagrees with its own."""
    pixels = {}
    installed = installed_order()
    for p in paths:
        image = Image.open(p)
        direct = processor(images=[image], return_tensors="pt")
        for order in ["pillow12", "pillow13"]:
            out = processor(images=[resized(image, order)], return_tensors="pt")
            if order == installed:
                assert torch.equal(out["pixel_values"], direct["pixel_values"]), (
                    f"{p.name}: Pillow's resize is not the {order} pass order"
                )
            pixels[f"{p.stem}.{order}.pixel_values"] = out["pixel_values"].to(torch.float32).contiguous()
        pixels[f"{p.stem}.grid_thw"] = direct["image_grid_thw"].to(torch.int64)
        same = torch.equal(pixels[f"{p.stem}.pillow12.pixel_values"], pixels[f"{p.stem}.pillow13.pixel_values"])
        print(f"{p.name}: {image.size} → the two orders {'agree' if same else 'differ'}")
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-export", nargs=2, metavar=("DIR", "LOGITS"), type=Path)
    args = parser.parse_args()
    if args.check_export:
        check_export(*args.check_export)
        return
    torch.use_deterministic_algorithms(True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    fast = hf_tokenizer(tok)
    paths = build_images()
    images = [Image.open(p) for p in paths]
    processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    save_file(image_references(paths, processor), FIXTURES / "reference-images.safetensors")
    make_checkpoint("hub", tok, fast, processor, images, tied=False, seed=1)
    make_checkpoint("v5", tok, fast, processor, images, tied=True, seed=3)
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
