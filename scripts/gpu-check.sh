#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, everything we measure there, in under 10
# minutes, written to one JSON file and one table, against the targets of the speed work:
#
#   1. doctor         `metaspatial-rl doctor` (CUDA, wgpu adapters, a headless frame)
#   2. parity-f32     the policy parity fixtures on CUDA in f32 (needs cargo and LIBTORCH)
#      parity-bf16    bf16 against f32 on CUDA
#   3. bench-policy   generation and log-prob pass on the random 3B, ours and transformers'
#   4. bench-lora     `bench configs/bench_qwen2_5_vl_3b.ron` with LoRA
#      bench-full     the same with --finetune full
#   5. render         the renderer's batched frames/s (criterion, batch 64; needs cargo)
#   6. bench-nccl     `bench` with LoRA on every GPU, one rank each, over NCCL (torchrun; skipped
#                     with fewer than two GPUs or a build without NCCL)
#
#   scripts/gpu-check.sh [BINARY]
#
# BINARY (or METASPATIAL_RL) is the release binary, default target/release/metaspatial-rl.
# GPU_CHECK_OUT is where the figures go (default gpu-check/): gpu-check.json, gpu-check.txt
# and each step's log. PYTHON is an interpreter with torch and transformers (default python3);
# NVIDIA_SMI the program that lists GPUs (default nvidia-smi). Each step has its own timeout
# and the whole check a deadline; a step that fails or runs out of time stops the check with
# its name. Without an NVIDIA GPU the check only verifies its inputs and exits 0.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${METASPATIAL_RL:-$root/target/release/metaspatial-rl}}
python=${PYTHON:-python3}
nvidia_smi=${NVIDIA_SMI:-nvidia-smi}
out=${GPU_CHECK_OUT:-$PWD/gpu-check}
deadline=$((SECONDS + 570))

fail() {
    echo "gpu-check: FAILED at step '$1': $2" >&2
    exit 1
}

# Inputs: the binary runs, the files the steps read are here.
[[ -f $bin && -x $bin ]] ||
    fail inputs "no executable binary at $bin (give its path as the first argument or in METASPATIAL_RL)"
version=$(timeout 30 "$bin" --version 2>&1) || fail inputs "$bin does not run: $version"
for file in configs/bench_qwen2_5_vl_3b.ron policy/scripts/bench_transformers.py \
    policy/tests/parity.rs render/benches/render.rs; do
    [[ -f $root/$file ]] || fail inputs "$root/$file is missing"
done

if ! gpus=$("$nvidia_smi" -L 2>/dev/null) || ! grep -q '^GPU ' <<<"$gpus"; then
    echo "gpu-check: inputs OK ($version at $bin; configs and scripts present)"
    echo "gpu-check: no NVIDIA GPU on this machine ($nvidia_smi lists none): nothing to measure"
    exit 0
fi
echo "gpu-check: $version on $(head -n 1 <<<"$gpus")"
command -v "$python" >/dev/null || fail inputs "no Python interpreter '$python' (set PYTHON)"
mkdir -p "$out"
echo "{\"binary\": \"$version\", \"gpu\": \"$(head -n 1 <<<"$gpus")\"}" >"$out/machine.json"

# Runs one step with its own time limit, cut to what is left of the deadline.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - SECONDS))
    ((left > 10)) || fail "$name" "the 10-minute deadline has passed before it could start"
    ((limit < left)) || limit=$left
    echo "gpu-check: $name (at most ${limit} s)"
    local status=0
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>"$out/$name.err" || status=$?
    if ((status == 124 || status == 137)); then
        fail "$name" "no result after ${limit} s (log: $out/$name.log, $out/$name.err)"
    elif ((status != 0)); then
        tail -n 20 "$out/$name.err" >&2
        fail "$name" "exit status $status (log: $out/$name.log, $out/$name.err)"
    fi
}

# Runs cargo in the repository, or records the step as skipped when there is no cargo.
cargo_step() {
    local name=$1 limit=$2
    shift 2
    if ! command -v cargo >/dev/null; then
        echo "skipped: no cargo on this machine" >"$out/$name.skipped"
        echo "gpu-check: $name skipped (no cargo)"
        return
    fi
    step "$name" "$limit" bash -c 'cd "$0" && exec "$@"' "$root" "$@"
}

step doctor 60 "$bin" doctor
cargo_step parity-f32 240 env METASPATIAL_TEST_DEVICE=cuda \
    cargo test --release -p metaspatial-policy --test parity -- --skip bf16
cargo_step parity-bf16 60 env METASPATIAL_TEST_DEVICE=cuda \
    cargo test --release -p metaspatial-policy --test parity bf16
model=$out/random-3b
step bench-policy-ours 150 "$bin" -q bench-policy --random-3b "$model" --repeats 1 --json \
    --save-inputs "$out/inputs.safetensors"
step bench-policy-transformers 150 "$python" "$root/policy/scripts/bench_transformers.py" \
    --model "$model" --inputs "$out/inputs.safetensors" --repeats 1 --json
step bench-lora 90 "$bin" -q bench "$root/configs/bench_qwen2_5_vl_3b.ron" --steps 2 \
    --finetune lora
step bench-full 120 "$bin" -q bench "$root/configs/bench_qwen2_5_vl_3b.ron" --steps 2 \
    --finetune full
cargo_step render 120 cargo bench -p metaspatial-render --bench render -- --noplot batch_64
gpu_count=$(grep -c '^GPU ' <<<"$gpus")
if ((gpu_count < 2)); then
    echo "skipped: $gpu_count GPU (data parallelism over NCCL needs two)" >"$out/bench-nccl.skipped"
elif ! grep -q '^c10d  *gloo, nccl' "$out/doctor.log"; then
    echo "skipped: this build has no NCCL (see doctor)" >"$out/bench-nccl.skipped"
else
    step bench-nccl 150 "$python" -m torch.distributed.run --standalone --no-python \
        --nproc-per-node "$gpu_count" "$bin" -q bench "$root/configs/bench_qwen2_5_vl_3b.ron" \
        --steps 2 --finetune lora
fi

step report 30 "$python" - "$out" <<'EOF'
"""Collects the steps' figures into gpu-check.json and a table against the targets."""
import json
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
figures = json.loads((out / "machine.json").read_text())
figures["skipped"] = {p.stem: p.read_text().strip() for p in out.glob("*.skipped")}
ours = json.loads((out / "bench-policy-ours.log").read_text())
theirs = json.loads((out / "bench-policy-transformers.log").read_text())
figures["bench_policy"] = {"ours": ours, "transformers": theirs}


def bench_rows(name):
    """Median column of `bench`'s table, keyed by row label."""
    rows = {}
    for line in (out / f"{name}.log").read_text().splitlines():
        match = re.match(r"^(.*?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)$", line)
        if match:
            rows[match.group(1).strip()] = float(match.group(2))
        memory = re.match(r"^peak memory: ([\d.]+) GiB", line)
        if memory:
            rows["peak memory (GiB)"] = float(memory.group(1))
    return rows


for name in ("bench-lora", "bench-full", "bench-nccl"):
    if (out / f"{name}.log").exists():
        figures[name] = bench_rows(name)
render = out / "render.log"
if render.exists():
    # criterion: "thrpt:  [low median high unit]" after the batch_64 line.
    match = re.search(r"batch_64.*?thrpt:\s*\[\S+ \S+ (\S+) (\S*)elem/s", render.read_text(), re.S)
    scale = {"": 1, "K": 1e3, "M": 1e6}
    figures["render_frames_per_s"] = float(match.group(1)) * scale[match.group(2)] if match else None
(out / "gpu-check.json").write_text(json.dumps(figures, indent=2) + "\n")


def step_share(rows):
    step = rows.get("step (s)") or float("nan")
    return 100 * rows.get("scoring not hidden by generation (s)", float("nan")) / step


tps = "tokens/s (prompt + response, whole step)"
lines = [
    ("generation tok/s", ours["generated_tokens_per_s"], ">= 3500 (5x transformers' 706 on an H100)",
     ours["generated_tokens_per_s"] >= 3500),
    ("generation vs transformers", ours["generated_tokens_per_s"] / theirs["generated_tokens_per_s"], ">= 5x",
     ours["generated_tokens_per_s"] >= 5 * theirs["generated_tokens_per_s"]),
    ("log-prob pass vs transformers", ours["scored_tokens_per_s"] / theirs["scored_tokens_per_s"], "> 1x",
     ours["scored_tokens_per_s"] > theirs["scored_tokens_per_s"]),
]
gib = 2**30
lines.append(("bench-policy peak memory GiB", (ours.get("peak_memory_bytes") or float("nan")) / gib,
              f"transformers: {(theirs.get('peak_reserved_bytes') or float('nan')) / gib:.2f} GiB reserved",
              None))
for name in ("bench-lora", "bench-full"):
    rows = figures[name]
    lines.append((f"{name} peak memory GiB", rows.get("peak memory (GiB)", float("nan")), "-", None))
    lines.append((f"{name} tok/s", rows.get(tps, float("nan")), "> 1800 (EasyR1 per GPU)", rows.get(tps, 0) > 1800))
    lines.append((f"{name} scoring not hidden %", step_share(rows), "< 5 %", step_share(rows) < 5))
if "bench-nccl" in figures:
    rows = figures["bench-nccl"]
    lines.append(("bench-nccl tok/s, all GPUs", rows.get(tps, float("nan")), "-", None))
    lines.append(("bench-nccl communication %", rows.get("communication, share of step (%)", float("nan")),
                  "-", None))
frames = figures.get("render_frames_per_s")
lines.append(("render frames/s (batch 64)", frames if frames is not None else float("nan"), ">= 2000",
              frames is not None and frames >= 2000))
table = [f"{'figure':<36}{'value':>12}  {'target':<44}met"]
table += [f"{name:<36}{value:>12.2f}  {target:<44}{'-' if met is None else 'yes' if met else 'NO'}" for name, value, target, met in lines]
table += [f"{name:<36}{'skipped':>12}  {why}" for name, why in figures["skipped"].items()]
(out / "gpu-check.txt").write_text("\n".join(table) + "\n")
print("\n".join(table))
EOF
cat "$out/report.log"
echo "gpu-check: figures in $out/gpu-check.json and $out/gpu-check.txt"
