#!/usr/bin/env bash
# The quantizer's recipes on the trained reference model (models/qwen35-kjv-10m),
# through the fp4rt command: `quantize --recipe fp8` writes ModelOpt's FP8 layout and
# the model runs, with a perplexity within 1 % of BF16's and a small KL against it on
# held-out text (tests/cli/kjv_genesis50.txt: KJV Genesis 50, a chapter the model
# never trained on); the NVFP4 recipes default to --scale mse (bench/RESULTS.md,
# "NVFP4 vs FP8 on the trained model") and --scale absmax still gives ModelOpt's scales.
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup quality
m=models/qwen35-kjv-10m
text=tests/cli/kjv_genesis50.txt
run_ppl() { # MODEL OUT [flags...]
    local dir=$1 o=$2
    shift 2
    $bin perplexity --model "$dir" --file $text --ctx 128 --device cpu --threads 2 "$@" >"$o" 2>/dev/null
}
num() { grep -m1 -E "$2" "$1" | sed -E 's/^[^:]*:[^0-9-]*([-0-9.e+]+).*/\1/'; }

run_ppl $m "$tmp/base.out" --save-logits "$tmp/base.ppl"
rc=$?
check "[ $rc -eq 0 ] && grep -q '^perplexity: ' $tmp/base.out" "BF16 perplexity: $(head -c 200 "$tmp/base.out")"
pb=$(sed -nE 's/^perplexity: ([0-9.]+) .*/\1/p' "$tmp/base.out")
# the trained model predicts held-out English far better than chance (vocabulary 8,192)
check "awk 'BEGIN { exit !(\"$pb\" + 0 > 5 && \"$pb\" + 0 < 80) }'" "BF16 perplexity $pb out of (5, 80)"

$bin quantize --in $m --out "$tmp/fp8" --recipe fp8 --threads 2 >"$tmp/q.out" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '(fp8): .* 0 NVFP4, 50 FP8' $tmp/q.out" "quantize --recipe fp8: $(head -n 1 "$tmp/q.out")"
check "grep -q '\"quant_algo\":[[:space:]]*\"FP8\"' $tmp/fp8/hf_quant_config.json" "hf_quant_config quant_algo FP8"
check "! grep -q group_size $tmp/fp8/hf_quant_config.json" "FP8 config has no group_size"
check "grep -q '\"num_bits\":[[:space:]]*8' $tmp/fp8/config.json" "config.json quantization_config has 8-bit groups"
$bin inspect "$tmp/fp8" >"$tmp/inspect" 2>&1
check "grep -q 'mlp.down_proj.weight_scale' $tmp/inspect && ! grep -q 'NVFP4' $tmp/inspect" "inspect: FP8 only"

run_ppl "$tmp/fp8" "$tmp/fp8.out" --kl-base "$tmp/base.ppl"
rc=$?
pq=$(num "$tmp/fp8.out" '^Mean PPL\(Q\)')
kl=$(num "$tmp/fp8.out" '^Mean +KLD')
top=$(num "$tmp/fp8.out" '^Same top p')
check "[ $rc -eq 0 ] && [ -n \"$pq\" ] && [ -n \"$kl\" ] && [ -n \"$top\" ]" "fp8 perplexity --kl-base: $(head -c 300 "$tmp/fp8.out")"
check "awk 'BEGIN { r = \"$pq\" / \"$pb\"; exit !(r > 0.99 && r < 1.01) }'" "fp8 perplexity $pq not within 1 % of BF16's $pb"
check "awk 'BEGIN { exit !(\"$kl\" + 0 > 0 && \"$kl\" + 0 < 0.01) }'" "fp8 mean KL $kl not in (0, 0.01)"
check "awk 'BEGIN { exit !(\"$top\" + 0 >= 95) }'" "fp8 top-1 agreement $top % < 95 %"
$bin run --model "$tmp/fp8" --raw --prompt "And it came to pass" -n 8 --greedy --threads 2 >"$tmp/run.out" 2>/dev/null
rc=$?
check "[ $rc -eq 0 ] && grep -q '[a-z]' $tmp/run.out" "fp8 run: $(head -c 200 "$tmp/run.out")"
check "grep -q '^no NVFP4 weights' $tmp/q.out" "fp8 summary: no scale strategy: $(sed -n 2p "$tmp/q.out")"

# --scale defaults to mse for the NVFP4 recipes: the same bytes as an explicit
# --scale mse, not those of --scale absmax (which stays ModelOpt's choice)
for s in default mse absmax; do
    flag=""
    [ $s = default ] || flag="--scale $s"
    $bin quantize --in $m --out "$tmp/nv-$s" --recipe nvidia-mixed $flag --threads 2 >"$tmp/nv-$s.out" 2>&1
    rc=$?
    check "[ $rc -eq 0 ]" "quantize nvidia-mixed $flag: $(tail -n 1 "$tmp/nv-$s.out")"
done
check "grep -q '^scale mse ' $tmp/nv-default.out" "default scale is mse: $(sed -n 2p "$tmp/nv-default.out")"
check "cmp -s $tmp/nv-default/model.safetensors $tmp/nv-mse/model.safetensors" "default output == --scale mse output"
check "! cmp -s $tmp/nv-default/model.safetensors $tmp/nv-absmax/model.safetensors" "default output != --scale absmax output"
check "grep -q '^scale absmax ' $tmp/nv-absmax.out" "--scale absmax honoured: $(sed -n 2p "$tmp/nv-absmax.out")"
cli_summary test_quality_cli
