"""Writes a small Qwen2.5-VL checkpoint with random weights, made by transformers, for timing us
against transformers on a CPU (``bench_vs_transformers.sh``).

The default sizes are those of the CPU comparison in the README: a 512-wide, 8-layer decoder
(8 query and 2 key/value heads, feed-forward 1,536) with the real 151,936-row vocabulary (tied
head) and a 4-block vision tower of width 256, about 108 M parameters in all. The cost per
token is a real Qwen2.5-VL's at these sizes; the tokenizer is the parity fixtures' small BPE
with Qwen's special tokens, which is all the benchmark's prompts need.

    python policy/scripts/make_random_checkpoint.py DIR [--hidden 512] [--layers 8] ...

Needs ``torch``, ``transformers``, ``tokenizers``, ``pillow`` and ``numpy``. Deterministic for
a given ``--seed``.
"""

import argparse
import sys
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_parity_fixtures import QWEN_SPECIAL_TOKENS, build_tokenizer, hf_tokenizer  # noqa: E402

# Qwen2.5-VL's image processor limits (what bench-policy's 448 × 448 images need at most).
MIN_PIXELS = 56 * 56
MAX_PIXELS = 12_845_056


def config(args: argparse.Namespace, ids: dict[str, int]) -> Qwen2_5_VLConfig:
    head_dim = args.hidden // args.heads
    # The released models' [16, 24, 24] split of head_dim / 2 = 64, scaled to this head size.
    t = head_dim // 2 // 4
    hw = (head_dim // 2 - t) // 2
    section = [t, hw, head_dim // 2 - t - hw]
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=args.vocab,
            hidden_size=args.hidden,
            intermediate_size=args.intermediate,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.kv_heads,
            rms_norm_eps=1e-6,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": section},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=args.vision_depth,
            hidden_size=args.vision_hidden,
            intermediate_size=args.vision_hidden * 4,
            num_heads=args.vision_hidden // 64,
            out_hidden_size=args.hidden,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            # Full attention in the last block, windows elsewhere, as the released models.
            fullatt_block_indexes=[args.vision_depth - 1],
            tokens_per_second=2,
            hidden_act="silu",
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="checkpoint directory to write")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--vision-depth", type=int, default=4)
    parser.add_argument("--vision-hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.hidden % args.heads or args.vision_hidden % 64:
        parser.error("--hidden must be a multiple of --heads, --vision-hidden of 64")

    tok = build_tokenizer()
    ids = {t: tok.token_to_id(t) for t in QWEN_SPECIAL_TOKENS}
    if args.vocab < tok.get_vocab_size():
        parser.error(f"--vocab {args.vocab} is below the tokenizer's {tok.get_vocab_size()} tokens")
    torch.manual_seed(args.seed)
    model = Qwen2_5_VLForConditionalGeneration(config(args, ids)).eval()
    model.save_pretrained(args.out)
    hf_tokenizer(tok).save_pretrained(args.out)
    Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS).save_pretrained(args.out)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {parameters / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
