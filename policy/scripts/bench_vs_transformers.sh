#!/usr/bin/env bash
# Generation and log-prob pass of metaspatial-rl, then of transformers, on the same weights and
# the same prompts, and one side-by-side table with the ratios (transformers' time over ours:
# above 1 means we are faster).
#
#   policy/scripts/bench_vs_transformers.sh CHECKPOINT [WORKLOAD OPTIONS]
#
# CHECKPOINT is any Qwen2.5-VL checkpoint in Hugging Face layout; a directory without one gets a
# checkpoint with Qwen2.5-VL-3B's sizes and random bf16 weights (about 7.5 GB, reused
# afterwards). `make_random_checkpoint.py` writes a small one for a CPU. The workload options
# are bench-policy's (--prompts, --group, --prompt-tokens, --image-side, --new-tokens,
# --repeats, --micro-batch, --device); the default is the reference workload (8 prompts × G = 8,
# 1,200-token prompts with a 448 × 448 image, 512 new tokens). For instance, on a CPU:
#
#   python policy/scripts/make_random_checkpoint.py /tmp/random-108m
#   policy/scripts/bench_vs_transformers.sh /tmp/random-108m --prompts 2 --group 4 \
#       --prompt-tokens 320 --image-side 112 --new-tokens 64 --repeats 3 --device cpu
#
# METASPATIAL_RL names the binary (default: metaspatial-rl on PATH), PYTHON the interpreter with
# torch and transformers (default: python3). The inputs and both reports are kept beside the
# checkpoint (CHECKPOINT.inputs.safetensors, CHECKPOINT.ours.json, CHECKPOINT.transformers.json).
set -euo pipefail
dir=${1:?usage: $0 CHECKPOINT [bench-policy workload options]}
dir=${dir%/}
shift
bin=${METASPATIAL_RL:-metaspatial-rl}
python=${PYTHON:-python3}

# The options bench_transformers.py shares with bench-policy (the others shape the saved inputs).
shared=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
    --group | --new-tokens | --repeats | --micro-batch | --device)
        ((i + 1 < ${#args[@]})) || { echo "$0: ${args[i]} needs a value" >&2; exit 2; }
        shared+=("${args[i]}" "${args[i + 1]}")
        i=$((i + 1))
        ;;
    --prompts | --prompt-tokens | --image-side) i=$((i + 1)) ;;
    *) echo "$0: unknown workload option ${args[i]}" >&2; exit 2 ;;
    esac
done

if [[ -f $dir/config.json ]]; then
    model=(--model "$dir")
else
    model=(--random-3b "$dir")
fi
inputs="$dir.inputs.safetensors"
"$bin" -q bench-policy "${model[@]}" "$@" --save-inputs "$inputs" --json >"$dir.ours.json"
"$python" "$(dirname "$0")/bench_transformers.py" --model "$dir" --inputs "$inputs" \
    "${shared[@]}" --json >"$dir.transformers.json"

"$python" - "$dir.ours.json" "$dir.transformers.json" <<'EOF'
import json
import sys
from statistics import median

ours, theirs = (json.load(open(path)) for path in sys.argv[1:3])
print(f"{ours['sequences']} sequences × ({ours['prompt_tokens']} prompt + {ours['new_tokens']} new tokens), "
      f"{ours['device']} {ours['dtype']}, medians of {len(ours['generate_s'])} runs")
print(f"{'pass':<16}{'ours':>22}{'transformers':>22}{'ratio':>9}")
for name, seconds, rate, unit in [("generation", "generate_s", "generated_tokens_per_s", "tok/s"),
                                  ("log-prob pass", "score_s", "scored_tokens_per_s", "tok/s")]:
    a, b = median(ours[seconds]), median(theirs[seconds])
    print(f"{name:<16}{f'{a:.3f} s, {ours[rate]:.0f} {unit}':>22}{f'{b:.3f} s, {theirs[rate]:.0f} {unit}':>22}"
          f"{b / a:>8.2f}×")
EOF
