#!/usr/bin/env bash
# The NVFP4-vs-FP8 quality table on the trained reference model (issue 15 item 4),
# as recorded in bench/RESULTS.md:
#
#   bench/quality_table.sh [BUILD_DIR] [OUT_PREFIX]      (defaults: build, bench/quality)
#
# 1. Text: tools/corpus.py builds the KJV corpus (needs the Debian packages
#    bible-kjv and bible-kjv-text); the held-out chapters (every 50th, 23 of them)
#    joined by one blank line are the evaluation text, the training chapters
#    Genesis 1-8 the calibration text (the quantizer reads its first 4,096 tokens).
# 2. BF16: `fp4rt perplexity --save-logits` over windows of CTX tokens (default 256).
# 3. Each variant: `fp4rt quantize` of MODEL, then `fp4rt perplexity --kl-base` on the
#    same text, CTX and windows. Variants: fp8 and nvidia-mixed and nvfp4-w4a4, each
#    scale, with and without --calib (their input_scales and the mse importance
#    weights come from it); nvfp4-all (W4A16: input_scale unused) with each scale,
#    and mse with --calib too (calibration only changes mse's channel weights).
# Output: OUT_PREFIX.csv, OUT_PREFIX.md (markdown table) and OUT_PREFIX.svg (the plot,
# tools/plot_quality.py). Everything runs on the CPU backend with THREADS threads
# (default 2) under nice; the model and CTX are MODEL / CTX in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-bench/quality}
bin=$build/fp4rt
model=${MODEL:-models/qwen35-kjv-10m}
ctx=${CTX:-256}
threads=${THREADS:-2}
[ -x "$bin" ] || { echo "quality_table: $bin not found (build first, or pass BUILD_DIR)" >&2; exit 1; }
[ -f "$model/config.json" ] || { echo "quality_table: $model/config.json not found" >&2; exit 1; }
tmp=$(mktemp -d /tmp/fp4rt-quality.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)

python3 tools/corpus.py --out "$tmp/corpus" >/dev/null
python3 - "$tmp" <<'EOF'
import json, os, sys
tmp = sys.argv[1]
def docs(name):
    with open(os.path.join(tmp, "corpus", name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
held, train = docs("heldout.jsonl"), docs("train.jsonl")
assert [d["title"] for d in train[:8]] == [f"Genesis {i}" for i in range(1, 9)], "unexpected corpus order"
with open(os.path.join(tmp, "heldout.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(d["text"] for d in held))
with open(os.path.join(tmp, "calib.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(d["text"] for d in train[:8]))
EOF

ppl() { # MODEL_DIR OUT_FILE [perplexity flags...]
    local dir=$1 file=$2
    shift 2
    nice "$bin" perplexity --model "$dir" --file "$tmp/heldout.txt" --ctx "$ctx" --device cpu \
        --threads "$threads" "$@" >"$file" 2>"$file.err" ||
        { echo "quality_table: perplexity of $dir failed: $(tail -n 1 "$file.err")" >&2; exit 1; }
}
st_bytes() { cat "$1"/*.safetensors | wc -c; }
# field FILE REGEX: the first number after the first line matching REGEX
field() { grep -m1 -E "$2" "$1" | sed -E "s/^[^:]*:[^0-9-]*([-0-9.e+]+).*/\1/"; }
field_err() { grep -m1 -E "$2" "$1" | sed -E "s/.*± *([-0-9.e+]+).*/\1/"; }

csv=$out.csv
echo "variant,recipe,scale,calib,ppl,ppl_err,kl_mean,kl_err,kl_p99,kl_median,top1_pct,top1_err,bytes,seconds" >"$csv"
s=$(date +%s)
ppl "$model" "$tmp/base.out" --save-logits "$tmp/base.ppl"
p=$(sed -nE 's/^perplexity: ([0-9.]+) ± ([0-9.]+) over ([0-9]+) tokens$/\1,\2/p' "$tmp/base.out")
ntok=$(sed -nE 's/^perplexity: .* over ([0-9]+) tokens$/\1/p' "$tmp/base.out")
echo "BF16,none,-,no,$p,0,0,0,0,100,0,$(st_bytes "$model"),$(($(date +%s) - s))" >>"$csv"
echo "BF16: ppl $p over $ntok tokens"

variant() { # LABEL RECIPE SCALE calib|nocalib
    local label=$1 recipe=$2 scale=$3 cal=$4 extra=()
    [ "$cal" = calib ] && extra=(--calib "$tmp/calib.txt")
    s=$(date +%s)
    nice "$bin" quantize --in "$model" --out "$tmp/q" --recipe "$recipe" --scale "$scale" \
        --threads "$threads" --force "${extra[@]}" >"$tmp/q.log" 2>&1 ||
        { echo "quality_table: quantize $label failed: $(tail -n 1 "$tmp/q.log")" >&2; exit 1; }
    ppl "$tmp/q" "$tmp/v.out" --kl-base "$tmp/base.ppl"
    local f=$tmp/v.out
    local row
    row="$label,$recipe,$scale,$([ "$cal" = calib ] && echo yes || echo no)"
    row+=",$(field "$f" '^Mean PPL\(Q\)'),$(field_err "$f" '^Mean PPL\(Q\)')"
    row+=",$(field "$f" '^Mean +KLD'),$(field_err "$f" '^Mean +KLD'),$(field "$f" '^99\.0% +KLD')"
    row+=",$(field "$f" '^Median +KLD'),$(field "$f" '^Same top p'),$(field_err "$f" '^Same top p')"
    row+=",$(st_bytes "$tmp/q"),$(($(date +%s) - s))"
    echo "$row" >>"$csv"
    echo "$row"
}
for cal in nocalib calib; do
    variant "FP8 W8A8" fp8 absmax $cal
done
for r in nvidia-mixed nvfp4-all nvfp4-w4a4; do
    for sc in absmax 4over6 mse; do
        variant "$r $sc" $r $sc nocalib
        if [ $r != nvfp4-all ] || [ $sc = mse ]; then variant "$r $sc" $r $sc calib; fi
    done
done
total=$(($(date +%s) - t0))

# The markdown table.
{
    echo "Held-out KJV text: $ntok tokens scored, windows of $ctx tokens; KL vs BF16 over the"
    echo "BF16 top-32 + rest; $(date -u +%F), $(uname -m), $(nproc) cores, $threads threads, ${total} s in all."
    echo
    echo "| variant | --calib | perplexity | mean KL vs BF16 | p99 KL | top-1 agreement | safetensors bytes |"
    echo "|---|---|---|---|---|---|---|"
    tail -n +2 "$csv" | while IFS=, read -r v r sc c p pe kl kle p99 med t te b sec; do
        if [ "$r" = none ]; then
            printf '| %s | - | %.3f ± %.3f | 0 | 0 | 100 %% | %s |\n' "$v" "$p" "$pe" "$b"
        else
            printf '| %s | %s | %.3f ± %.3f | %.3g ± %.2g | %.3g | %.2f ± %.2f %% | %s |\n' \
                "$v" "$c" "$p" "$pe" "$kl" "$kle" "$p99" "$t" "$te" "$b"
        fi
    done
} >"$out.md"
python3 tools/plot_quality.py "$csv" "$out.svg"
cat "$out.md"
echo "quality_table: wrote $csv, $out.md, $out.svg in $total s"
