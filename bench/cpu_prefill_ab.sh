#!/usr/bin/env bash
# CPU prefill, per-row linears (FP4RT_CPU_LINEAR=rows) against the tiled ones
# (the default: AVX-512 where the CPU has it) and the tiled ones capped at AVX2
# (FP4RT_CPU_ISA=avx2), on the qwen3.5-0.8b shape: BF16 (a synthesized
# checkpoint), nvfp4-all and nvidia-mixed (synthetic weights). Rounds interleave
# the paths (the order rotates every round) so a loaded machine hits them
# alike; prints every run and the median prefill tokens/s per recipe and path.
# Usage: bench/cpu_prefill_ab.sh [fp4rt binary] [BF16 checkpoint dir] [rounds] [prompt tokens]
#   The BF16 checkpoint is made with `fp4rt synth --config qwen3.5-0.8b --seed 1`
#   when the directory does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fp4rt}
bf16=${2:-models/qwen3.5-0.8b-synth-bf16}
rounds=${3:-3}
prompt=${4:-64}
[ -f "$bf16/config.json" ] || "$bin" synth --config qwen3.5-0.8b --out "$bf16" --seed 1
declare -A runs
for ((r = 1; r <= rounds; r++)); do
    case $((r % 3)) in
    1) modes="rows tiled tiled-avx2" ;;
    2) modes="tiled tiled-avx2 rows" ;;
    0) modes="tiled-avx2 rows tiled" ;;
    esac
    for recipe in bf16 nvfp4-all nvidia-mixed; do
        if [ "$recipe" = bf16 ]; then src=(--model "$bf16"); else src=(--synthetic qwen3.5-0.8b --recipe "$recipe"); fi
        for mode in $modes; do
            lin=${mode%-avx2} isa=
            [ "$mode" = tiled-avx2 ] && isa=avx2
            tps=$(FP4RT_CPU_LINEAR=$lin FP4RT_CPU_ISA=$isa "$bin" bench "${src[@]}" --prompt "$prompt" --gen 1 --threads 2 2>/dev/null |
                awk '/^prefill/ {print $(NF-1)}')
            echo "round $r $recipe $mode: $tps prefill tokens/s"
            runs[$recipe.$mode]="${runs[$recipe.$mode]:-} $tps"
        done
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "| weights | rows tok/s | tiled tok/s | speed-up | tiled AVX2 tok/s | speed-up |"
echo "|---|---|---|---|---|---|"
for recipe in bf16 nvfp4-all nvidia-mixed; do
    a=$(echo "${runs[$recipe.rows]}" | median) b=$(echo "${runs[$recipe.tiled]}" | median)
    c=$(echo "${runs[$recipe.tiled-avx2]}" | median)
    echo "| $recipe | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", b / a}') | $c |" \
        "$(awk -v a="$a" -v c="$c" 'BEGIN {printf "%.2fx", c / a}') |"
done
