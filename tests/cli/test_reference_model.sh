#!/usr/bin/env bash
# The committed trained reference model (models/qwen35-kjv-10m) as ./build.sh main
# uses it (issue 15): quantized with NVIDIA's recipe it still writes English, and
# its perplexity on a held-out chapter (tests/fixtures/kjv-genesis-50.txt, Genesis
# 50: every 50th chapter was held out of training, tools/corpus.py) is far below
# a random model's (about the vocabulary size, 8,192) and close to BF16's.
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup cli-refmodel

ref=models/qwen35-kjv-10m
text=tests/fixtures/kjv-genesis-50.txt
q=$tmp/nv
check "$bin quantize --in $ref --out $q --recipe nvidia-mixed --scale mse >/dev/null 2>&1" "quantize nvidia-mixed"

# greedy continuation: words of the corpus, no synthetic ids
"$bin" run --model "$q" --raw --prompt "And it came to pass" -n 48 --greedy >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
check "[ $rc -eq 0 ]" "run exit $rc: $(tail -1 "$tmp/run.err")"
words=$(tr -c 'A-Za-z' '\n' <"$tmp/run.out" | grep -cxE 'the|and|of|unto|LORD|Israel|king|people|said|he|his|that')
check "[ ${words:-0} -ge 12 ]" "only ${words:-0} common corpus words in: $(head -c 200 "$tmp/run.out")"
check "! grep -q '<synth_' $tmp/run.out" "synthetic token names in the output"

# perplexity: BF16 and NVFP4 / FP8 on the same windows
ppl() { "$bin" perplexity --model "$1" --file "$text" --ctx 128 2>&1 | sed -n 's/^perplexity: \([0-9.]*\).*/\1/p'; }
p_bf16=$(ppl $ref)
p_nv=$(ppl "$q")
echo "held-out perplexity: bf16 $p_bf16, nvidia-mixed $p_nv"
check "awk -v p='$p_bf16' 'BEGIN { exit !(p > 1 && p < 60) }'" "bf16 perplexity '$p_bf16' not in (1, 60)"
check "awk -v a='$p_bf16' -v b='$p_nv' 'BEGIN { exit !(b > 1 && b < a * 1.10) }'" \
    "nvidia-mixed perplexity '$p_nv' not within 10% of bf16's '$p_bf16'"
cli_summary test_reference_model
