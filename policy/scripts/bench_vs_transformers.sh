#!/usr/bin/env bash
# Generation and log-prob throughput of metaspatial-rl, then of transformers, on the same weights
# and the same prompts: the reference workload (8 prompts × G = 8, 1,200-token prompts with one
# 448 × 448 image, 512 new tokens) on a checkpoint with Qwen2.5-VL-3B's sizes and random bf16
# weights, written to DIR on the first run (about 7.5 GB) and reused afterwards.
#
#   policy/scripts/bench_vs_transformers.sh DIR
#
# METASPATIAL_RL names the binary (default: metaspatial-rl on PATH), PYTHON the interpreter with
# torch and transformers (default: python3).
set -euo pipefail
dir=${1:?usage: $0 DIR}
bin=${METASPATIAL_RL:-metaspatial-rl}
python=${PYTHON:-python3}
inputs="$dir.inputs.safetensors"
"$bin" bench-policy --random-3b "$dir" --save-inputs "$inputs"
echo
"$python" "$(dirname "$0")/bench_transformers.py" --model "$dir" --inputs "$inputs"
