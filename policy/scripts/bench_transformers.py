"""Times transformers on the workload of ``metaspatial-rl bench-policy``: the same checkpoint, the
same prompts (``--save-inputs``), G samples per prompt, every sample ``--new-tokens`` long.

It prints what ``bench-policy`` prints: ``generate`` time and generated tokens/s, a log-prob pass
over every prompt + response (micro-batches of ``--micro-batch`` sequences, log-softmax at the
response positions) and peak memory (torch's allocator: the peak allocated and the peak
reserved; ``bench-policy`` reports the device's memory in use, which also holds the CUDA context).

    metaspatial-rl bench-policy --random-3b ckpt --save-inputs inputs.safetensors
    python policy/scripts/bench_transformers.py --model ckpt --inputs inputs.safetensors

``policy/scripts/bench_vs_transformers.sh`` runs both. Needs ``torch``, ``transformers`` and
``safetensors``; bf16 and SDPA attention on a GPU, f32 on the CPU.
"""

import argparse
import json
import statistics
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (Hugging Face layout)")
    parser.add_argument("--inputs", required=True, help="prompts saved by bench-policy --save-inputs")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt (G)")
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=8, help="sequences per log-prob forward pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        args.model, dtype=dtype, attn_implementation="sdpa"
    ).to(device).eval()
    inputs = load_file(args.inputs)
    ids = inputs["input_ids"].to(device)
    prompts, prompt_len = ids.shape
    pixels = inputs["pixel_values"].to(device, dtype)
    grids = inputs["image_grid_thw"].to(device)
    image_token = model.config.image_token_id

    def gen_kwargs(new_tokens: int) -> dict:
        return dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            mm_token_type_ids=(ids == image_token).int(),
            pixel_values=pixels,
            image_grid_thw=grids,
            do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
            num_return_sequences=args.group,
            max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        )

    torch.manual_seed(0)
    with torch.no_grad():
        model.generate(**gen_kwargs(min(8, args.new_tokens)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    generate_s = []
    with torch.no_grad():
        for _ in range(args.repeats):
            sync(device)
            started = time.perf_counter()
            out = model.generate(**gen_kwargs(args.new_tokens))
            sync(device)
            generate_s.append(time.perf_counter() - started)
    responses = out[:, prompt_len:]
    generated = responses.numel()

    # Log-probs of each response under the model, micro-batch by micro-batch; the image rows of
    # a prompt are the same for each of its samples.
    rows_per_image = pixels.shape[0] // prompts
    score_s = []
    with torch.no_grad():
        for _ in range(args.repeats):
            sync(device)
            started = time.perf_counter()
            total = torch.zeros((), device=device)
            for start in range(0, out.shape[0], args.micro_batch):
                batch = out[start:start + args.micro_batch]
                owners = [(start + i) // args.group for i in range(batch.shape[0])]
                batch_pixels = torch.cat([pixels[p * rows_per_image:(p + 1) * rows_per_image] for p in owners])
                logits = model(
                    input_ids=batch,
                    mm_token_type_ids=(batch == image_token).int(),
                    pixel_values=batch_pixels,
                    image_grid_thw=grids[owners],
                    logits_to_keep=responses.shape[1] + 1,
                ).logits[:, :-1]
                logprobs = logits.float().log_softmax(-1).gather(-1, batch[:, prompt_len:, None])
                total += logprobs.sum()
            total.item()
            score_s.append(time.perf_counter() - started)
    scored = out.numel()

    report = {
        "device": str(device),
        "dtype": "bf16" if dtype == torch.bfloat16 else "f32",
        "sequences": out.shape[0],
        "prompt_tokens": prompt_len,
        "new_tokens": args.new_tokens,
        "generate_s": generate_s,
        "generated_tokens_per_s": generated / statistics.median(generate_s),
        "score_s": score_s,
        "scored_tokens_per_s": scored / statistics.median(score_s),
    }
    if device.type == "cuda":
        report["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
        report["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"transformers: {report['sequences']} sequences × ({prompt_len} prompt + {args.new_tokens} new tokens), "
          f"{device} {report['dtype']}, {args.repeats} repetitions")
    for name, values in [("generate", generate_s), ("log-prob pass", score_s)]:
        print(f"{name:<28} {statistics.median(values):>9.3f} s   ({min(values):.3f} – {max(values):.3f})")
    print(f"{'generated tokens/s':<28} {report['generated_tokens_per_s']:>9.0f}")
    print(f"{'scored tokens/s':<28} {report['scored_tokens_per_s']:>9.0f}")
    if device.type == "cuda":
        gib = 1 << 30
        print(f"{'peak memory':<28} {report['peak_allocated_bytes'] / gib:>9.2f} GiB allocated, "
              f"{report['peak_reserved_bytes'] / gib:.2f} GiB reserved (torch's allocator)")


if __name__ == "__main__":
    main()
