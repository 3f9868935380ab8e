#!/usr/bin/env bash
# NVFP4 quantizer benchmarks (issue 6), as recorded in bench/RESULTS.md:
#   1. weight error vs absmax per distribution + kernel throughput (quant_bench);
#   2. `fp4rt quantize` throughput per strategy on the qwen3.5-0.8b synth;
#   3. model-level KL / perplexity on synthesized models per strategy.
# Usage: bench/quant_bench.sh BUILD_DIR [EVAL_TEXT]   (EVAL_TEXT: default README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
text=${2:-README.md}
bin=$build/fp4rt
tmp=$(mktemp -d /tmp/fp4rt-qbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "== 1. quant_bench (2^20-element tensors) =="
"$build/bench/quant_bench"

echo "== 2. fp4rt quantize throughput, qwen3.5-0.8b synth, nvfp4-all =="
src=models/qwen3.5-0.8b-synth-bf16
[ -f "$src/config.json" ] || "$bin" synth --config qwen3.5-0.8b --out "$src" --seed 1
for s in absmax 4over6 mse; do
    "$bin" quantize --in "$src" --out "$tmp/q08" --recipe nvfp4-all --scale "$s" --force | sed -n 2,3p
done
rm -rf "$tmp/q08"

echo "== 3. model-level KL (calibration and eval text: $text) =="
head -c 6000 "$text" > "$tmp/calib.txt"
tail -c 6000 "$text" > "$tmp/eval.txt"
kl() { # model-dir recipe strategy [--calib]
    local extra=""
    [ "${4:-}" = calib ] && extra="--calib $tmp/calib.txt"
    "$bin" quantize --in "$1" --out "$tmp/q" --recipe "$2" --scale "$3" $extra --eval "$tmp/eval.txt" \
        --eval-tokens "${EVAL_TOKENS:-1024}" --force | grep '^eval:' | sed "s/^/$2 $3 ${4:-nocalib}: /"
}
for seed in 1 2 3; do
    "$bin" synth --config tiny --out "$tmp/tiny$seed" --seed "$seed" --force >/dev/null
    echo "-- tiny, seed $seed"
    for r in nvfp4-all nvfp4-w4a4; do
        for s in absmax 4over6 mse; do kl "$tmp/tiny$seed" $r $s; kl "$tmp/tiny$seed" $r $s calib; done
    done
done
if [ "${SKIP_08B:-0}" != 1 ]; then
    echo "-- qwen3.5-0.8b geometry, 4 layers, seed 1 (EVAL_TOKENS=${EVAL_TOKENS:-1024})"
    "$bin" synth --config qwen3.5-0.8b --layers 4 --out "$tmp/b08" --seed 1 --force >/dev/null
    for s in absmax 4over6 mse; do kl "$tmp/b08" nvfp4-all $s calib; done
fi
