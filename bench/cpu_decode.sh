#!/usr/bin/env bash
# CPU benchmark of the issue's target: a synthetic Qwen3.5-0.8B-shaped checkpoint
# quantized with NVIDIA's mixed recipe, prefill and decode tokens/s and the
# share of the memory-bandwidth limit reached (measured in the same run).
# Usage: bench/cpu_decode.sh [fp4rt binary] [extra bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fp4rt}
shift || true
bf16=models/qwen3.5-0.8b-synth-bf16 model=models/qwen3.5-0.8b-synth-nvfp4
mkdir -p models
[ -f "$bf16/config.json" ] || "$bin" synth --config qwen3.5-0.8b --out "$bf16" --seed 1
[ -f "$model/config.json" ] || "$bin" quantize --in "$bf16" --out "$model" --recipe nvidia-mixed
"$bin" bench --model "$model" --prompt 128 --gen 32 "$@"
