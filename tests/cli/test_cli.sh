#!/usr/bin/env bash
# End-to-end test of the fp4rt command: synth -> quantize -> inspect / plan /
# logits / run / bench, and the error contract (one line on stderr naming what
# and where, exit code 1; usage errors exit 2; nothing half-written).
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup cli
# FP4RT_TEST_SHORT=1 (the sanitizer pass, tests/CMakeLists.txt): every command and
# error path still runs and every check still runs, on less text and fewer
# tokens, and the two plain benches' checks read the --image benches' output
short=${FP4RT_TEST_SHORT:-0}

# expect_error CODE NEEDLE CMD...: exit code CODE, exactly one error line on stderr
# (informational lines such as the chosen device may precede it) containing NEEDLE
expect_error() {
    local code=$1 needle=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    local lines
    lines=$(grep -c -E 'error:|usage:' "$tmp/err")
    if [ "$rc" -eq "$code" ] && [ "$lines" -eq 1 ] && grep -E 'error:|usage:' "$tmp/err" | grep -q -- "$needle"; then
        ok
    else
        bad "'$*': rc=$rc (want $code), $lines stderr lines, want '$needle': $(head -c 300 "$tmp/err")"
    fi
}

# env: every knob with its type, default and value; a malformed value and an
# unknown FP4RT_* variable (a typo) are said, each warned about once by a command
FP4RT_VK_MAX_RANGE=abc FP4RT_VK_EXACTT=1 FP4RT_VK_LINEAR=mv $bin env >"$tmp/env" 2>&1
check "[ \$(grep -c '^FP4RT_' $tmp/env) -ge 15 ]" "env lists the knobs"
check "grep -q '^FP4RT_VK_LINEAR  *enum  *-  *mv\$' $tmp/env" "env shows a knob's value"
check "grep -q '^FP4RT_VK_MAX_RANGE .*abc  (malformed' $tmp/env" "env says a malformed value"
check "grep -q '^unknown FP4RT_\* variables (ignored): FP4RT_VK_EXACTT\$' $tmp/env" "env names an unknown variable"
FP4RT_VK_MAX_RANGE=abc FP4RT_VK_EXACTT=1 $bin devices >/dev/null 2>"$tmp/err"
check "[ \$(grep -c 'FP4RT_VK_MAX_RANGE=abc is not a valid size' $tmp/err) -eq 1 ]" "malformed knob warned once"
check "[ \$(grep -c 'unknown environment variable FP4RT_VK_EXACTT' $tmp/err) -eq 1 ]" "unknown knob warned once"
expect_error 2 "usage" $bin env extra

m=$tmp/tiny
check "$bin synth --config tiny --out $m --seed 4 >/dev/null" "synth tiny"
check "[ -f $m/config.json ] && [ -f $m/model.safetensors ]" "synth files"
check "$bin quantize --in $m --out $tmp/mixed --recipe nvidia-mixed >/dev/null" "quantize nvidia-mixed"
check "$bin quantize --in $m --out $tmp/w4a4 --recipe nvfp4-w4a4 --shard-mb 0.2 >/dev/null 2>&1 || $bin quantize --in $m --out $tmp/w4a4 --recipe nvfp4-w4a4 >/dev/null" "quantize nvfp4-w4a4"
check "[ -f $tmp/mixed/hf_quant_config.json ] && grep -q MIXED_PRECISION $tmp/mixed/hf_quant_config.json" "hf_quant_config"

# inspect lists every tensor with its format and totals
$bin inspect "$tmp/mixed" >"$tmp/inspect" 2>&1
check "grep -q 'mlp.down_proj.weight_scale_2' $tmp/inspect" "inspect lists scales"
check "grep -q 'NVFP4-W4A16' $tmp/inspect && grep -q 'FP8' $tmp/inspect" "inspect formats"
check "grep -q 'totals per format' $tmp/inspect" "inspect totals"
check "grep -q 'vision tower: 33 tensors' $tmp/inspect" "inspect counts the vision tower"
# inspect --check: a clean checkpoint passes; an FP8 weight byte set to the NaN
# code 0x7f is found (tensor and element named, exit 1), though it loads
$bin inspect --check "$tmp/mixed" >"$tmp/icheck" 2>&1; rc=$?
check "[ $rc -eq 0 ] && grep -q 'check: [0-9]* tensors read, 0 with bad values' $tmp/icheck" "inspect --check clean: $(tail -n 1 "$tmp/icheck")"
mkdir -p "$tmp/nanw" && cp "$tmp/mixed"/*.json "$tmp/mixed/model.safetensors" "$tmp/nanw/"
st="$tmp/nanw/model.safetensors"
hl=$(od -An -t u8 -N8 "$st" | tr -d ' ')
qw=model.language_model.layers.3.self_attn.q_proj.weight
off=$(head -c $((8 + hl)) "$st" | tail -c "$hl" | grep -o "\"$qw\":{[^}]*}" | sed 's/.*data_offsets":\[\([0-9]*\),.*/\1/')
printf '\177' | dd of="$st" bs=1 seek=$((8 + hl + off + 5)) conv=notrunc status=none
$bin inspect --check "$tmp/nanw" >"$tmp/icheck2" 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q \"tensor $qw (F8_E4M3): element 5: NaN (F8_E4M3 0x7f); 1 bad value\" $tmp/icheck2" "inspect --check finds the NaN: $(head -n 1 "$tmp/icheck2")"
# generating with it stops with an error naming the step, not with NaN-sampled tokens
$bin run --model "$tmp/nanw" --tokens 1,2,3 -n 3 --greedy >/dev/null 2>"$tmp/nanrun"; rc=$?
check "[ $rc -eq 1 ] && grep -q 'step 0 (position 3): logits are NaN' $tmp/nanrun" "run on NaN weights fails: $(tail -n 1 "$tmp/nanrun")"

# plan from the checkpoint and from the config agree on the weight bytes
$bin plan --model "$tmp/mixed" --ctx 1024 >"$tmp/plan1"
$bin plan --config tiny --recipe nvidia-mixed --ctx 1024 >"$tmp/plan2"
w1=$(grep '^weights' "$tmp/plan1" | sed -E 's/.*\(([0-9]+) bytes.*/\1/')
w2=$(grep '^weights' "$tmp/plan2" | sed -E 's/.*\(([0-9]+) bytes.*/\1/')
check "[ -n '$w1' ] && [ '$w1' = '$w2' ]" "plan weights: checkpoint $w1 vs config $w2"
check "grep -q 'verify checkpoints .* per position' $tmp/plan2" "plan shows the verify (speculative decoding) checkpoint size"
# --fp4-activations is reported by plan, inspect and the run's device / stats lines
check "$bin plan --model $tmp/mixed --fp4-activations | grep -q 'fp4-activations: on: [1-9][0-9]* NVFP4-W4A16 linears run as W4A4'" "plan --fp4-activations"
check "$bin inspect $tmp/mixed --fp4-activations | grep -q 'NVFP4-W4A4' && ! $bin inspect $tmp/mixed | grep -q 'NVFP4-W4A4'" "inspect --fp4-activations"
check "$bin run --model $tmp/mixed --tokens 1,2,3 -n 2 --device cpu --fp4-activations 2>&1 >/dev/null | grep -q 'stop: .*fp4-activations: [1-9]'" "run --fp4-activations stats line"
# the 27B plan (no files): ~20 GB of text weights, 64 KiB of BF16 KV per token
$bin plan --config qwen3.6-27b --recipe nvidia-mixed --ctx 262144 >"$tmp/plan27"
check "grep -q 'kv cache.*16.00 GiB.*262144 tokens x 64.00 KiB, BF16, 16 layers' $tmp/plan27" "27B KV plan"
gb=$(grep '^weights' "$tmp/plan27" | sed -E 's/.*; ([0-9.]+) GB.*/\1/')
check "awk 'BEGIN{exit !($gb > 19.5 && $gb < 21.5)}'" "27B nvidia-mixed text weights ${gb} GB"
check "grep -q 'tensors: 1846' $tmp/plan27" "27B tensor count (851 + scales)"
check "grep -q '^vision tower .*(333 tensors, depth 27' $tmp/plan27" "27B vision tower in plan"

# logits: prefill and --decode agree; output size is n x vocab floats
toks=5,17,300,2,2,9,100,511,0,42
check "$bin logits --model $tmp/mixed --tokens $toks --out $tmp/l1.bin 2>/dev/null" "logits"
check "[ \$(stat -c %s $tmp/l1.bin) -eq $((10 * 512 * 4)) ]" "logits size"
check "$bin logits --model $tmp/mixed --tokens $toks --out $tmp/l2.bin --decode 2>/dev/null" "logits --decode"
check "cmp -s $tmp/l1.bin $tmp/l2.bin || true" "decode runs"

# perplexity: windows of --ctx over a text file; --save-logits then --kl-base of the
# same model gives KL 0 and top-1 100%, a quantized copy KL > 0; the error cases
for i in $(seq 1 $([ "$short" = 1 ] && echo 10 || echo 40)); do printf 'The sea was calm that morning, and the boats went out %d times past the harbour wall. ' "$i"; done >"$tmp/ppl.txt"
$bin perplexity --model $m --file $tmp/ppl.txt --ctx 64 --device cpu --threads 1 --save-logits $tmp/base.ppl \
    >"$tmp/ppl.out" 2>"$tmp/ppl.err"
rc=$?
check "[ $rc -eq 0 ] && grep -Eq '^perplexity: [0-9]+\.[0-9]{4} ± [0-9]+\.[0-9]{4} over [0-9]+ tokens\$' $tmp/ppl.out" \
    "perplexity prints the result: $(head -c 300 "$tmp/ppl.out") $(tail -n 1 "$tmp/ppl.err")"
check "grep -q '^speed: [0-9.]* tokens/s' $tmp/ppl.out" "perplexity prints tokens/s"
check "grep -Eq '^\[#{40}\] ([0-9]+)/\1 windows, ppl [0-9.]+\$' $tmp/ppl.err" "perplexity progress bar ends full"
npos=$(sed -n 's/^perplexity: .* over \([0-9]*\) tokens$/\1/p' "$tmp/ppl.out")
check "[ -n '$npos' ] && [ \$(stat -c %s $tmp/base.ppl) -eq \$((56 + $npos * (12 + 8 * 32))) ]" "--save-logits file size ($npos positions, top-32)"
check "[ \$(head -c 8 $tmp/base.ppl) = FP4RTPPL ]" "--save-logits magic"
$bin perplexity --model $m --file $tmp/ppl.txt --ctx 64 --device cpu --threads 2 --kl-base $tmp/base.ppl >"$tmp/kl0" 2>/dev/null
rc=$?
check "[ $rc -eq 0 ] && grep -Eq '^Maximum KLD: +0\$' $tmp/kl0 && grep -Eq '^Same top p: +100\.000 ' $tmp/kl0" \
    "--kl-base of the same model: KL 0, top-1 100% ($(grep -E 'Maximum KLD|Same top' "$tmp/kl0" | tr '\n' ' '))"
check "grep -q 'Mean PPL(base)' $tmp/kl0 && grep -q '^RMS     Δp: *0.000 %' $tmp/kl0" "--kl-base prints both perplexities and Δp"
check "$bin quantize --in $m --out $tmp/nvfp4 --recipe nvfp4-all >/dev/null 2>&1" "quantize nvfp4-all"
$bin perplexity --model $tmp/nvfp4 --file $tmp/ppl.txt --ctx 64 --device cpu --kl-base $tmp/base.ppl >"$tmp/kl1" 2>/dev/null
rc=$?
kl=$(sed -n 's/^Mean    KLD: *\([^ ]*\) .*/\1/p' "$tmp/kl1")
check "[ $rc -eq 0 ] && [ -n '$kl' ] && awk 'BEGIN{exit !($kl > 1e-6)}'" "--kl-base of the nvfp4-all copy: KL > 0 ($kl)"
$bin perplexity --model $m --file $tmp/ppl.txt --ctx 32 --stride 16 --device cpu >"$tmp/ppl2.out" 2>/dev/null
rc=$?
check "[ $rc -eq 0 ] && grep -q '^perplexity: .* over [0-9]* tokens' $tmp/ppl2.out" "perplexity --stride 16"
if $bin devices 2>/dev/null | grep -q '^vulkan:0'; then
    env ASAN_OPTIONS=detect_leaks=0 $bin perplexity --model $m --file $tmp/ppl.txt --ctx 64 --device vulkan:0 --kl-base $tmp/base.ppl >"$tmp/klvk" 2>&1
    rc=$?
    kl=$(sed -n 's/^Maximum KLD: *\([^ ]*\)$/\1/p' "$tmp/klvk")
    check "[ $rc -eq 0 ] && [ -n '$kl' ] && awk 'BEGIN{exit !($kl < 1e-4)}' && grep -q 'device vulkan:0' $tmp/klvk" \
        "perplexity --device vulkan:0 against the CPU's file: max KL $kl"
fi
printf 'hi' >"$tmp/short.txt"
: >"$tmp/empty.txt"
expect_error 1 "nosuch.txt" "$bin" perplexity --model $m --file $tmp/nosuch.txt
expect_error 1 "empty" "$bin" perplexity --model $m --file $tmp/empty.txt
expect_error 1 "shorter than one window" "$bin" perplexity --model $m --file $tmp/short.txt --ctx 64
expect_error 1 "ctx 0" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 0
expect_error 1 "exceeds the model's context of 4096" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 5000
expect_error 1 "stride 0" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 64 --stride 0
expect_error 1 "stride 65" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 64 --stride 65
expect_error 1 "top-k 0" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 64 --top-k 0
expect_error 1 "nodir/x.ppl: cannot write" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 64 --save-logits $tmp/nodir/x.ppl
expect_error 1 "base.ppl: made with ctx 64, this run has ctx 32" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 32 --kl-base $tmp/base.ppl
sed 's/calm/rough/' "$tmp/ppl.txt" >"$tmp/ppl3.txt"
expect_error 1 "base.ppl: made" "$bin" perplexity --model $m --file $tmp/ppl3.txt --ctx 64 --kl-base $tmp/base.ppl
expect_error 1 "magic" "$bin" perplexity --model $m --file $tmp/ppl.txt --ctx 64 --kl-base $tmp/ppl.txt
expect_error 2 "usage" "$bin" perplexity --model $m
# run: greedy ids, deterministic
r1=$($bin run --model "$tmp/mixed" --tokens $toks -n 8 2>/dev/null)
r2=$($bin run --model "$tmp/mixed" --tokens $toks -n 8 --threads 1 2>/dev/null)
check "[ -n '$r1' ] && [ '$r1' = '$r2' ]" "run deterministic across thread counts ('$r1' vs '$r2')"
check "echo '$r1' | grep -Eq '^[0-9]+(,[0-9]+){7}$'" "run prints 8 ids"
bimg=() # short: this bench also times the image, for the bench --image check below
[ "$short" = 1 ] && bimg=(--image tests/fixtures/images/rgb.png)
$bin bench --model "$tmp/mixed" --prompt 16 --gen 4 "${bimg[@]}" >"$tmp/bench" 2>&1
check "grep -q 'decode reaches' $tmp/bench && grep -q 'tokens/s' $tmp/bench" "bench output"
# where the time goes: the CPU's arithmetic peak (the default mode: FMA), and per-op shares of prefill and decode that add up to 100%
check "grep -Eq '^arithmetic peak +[0-9]+\.[0-9] GFLOP/s \(FP32 fused multiply-add' $tmp/bench && ! grep -Eq '^arithmetic peak +0\.0 ' $tmp/bench && grep -Eq '^prefill linears .*[0-9.]+% of the peak' $tmp/bench" \
    "bench arithmetic peak: $(grep -E 'peak' "$tmp/bench")"
for phase in prefill decode; do
    shares=$(sed -n "s/^$phase ops //p" "$tmp/bench")
    sum=$(grep -Eo '[0-9.]+%' <<<"$shares" | tr -d % | awk '{s += $1} END {printf "%.1f", s}')
    check "grep -q 'linear [0-9.]*%' <<<'$shares' && awk 'BEGIN {exit !($sum >= 99 && $sum <= 101)}'" \
        "bench $phase ops shares sum to $sum: $shares"
done
# bench --image: the vision encoder's time per image (the quantized copy keeps the tower BF16)
if [ "$short" = 1 ]; then cp "$tmp/bench" "$tmp/vbench"; else
    $bin bench --model "$tmp/mixed" --prompt 8 --gen 2 --device cpu --image tests/fixtures/images/rgb.png >"$tmp/vbench" 2>&1
fi
check "grep -Eq '^vision encoder +[0-9.]+ ms per image' $tmp/vbench" "bench --image: $(tail -n 1 "$tmp/vbench")"
$bin bench --synthetic tiny --device cpu --prompt 8 --gen 2 --image tests/fixtures/images/rgb.png >"$tmp/vsbench" 2>&1
vsrc=$?
check "grep -Eq '^vision encoder +[0-9.]+ ms per image' $tmp/vsbench" "bench --synthetic --image: $(tail -n 1 "$tmp/vsbench")"
check "$bin synth --config tiny --format causal-lm --out $tmp/causal >/dev/null && [ ! -f $tmp/causal/preprocessor_config.json ]" \
    "synth causal-lm: text only"
expect_error 1 "no vision tower" "$bin" bench --model "$tmp/causal" --prompt 4 --gen 1 --device cpu --image tests/fixtures/images/rgb.png
# bench --synthetic: preset shapes, recipe formats, weights generated by the backend
if [ "$short" = 1 ]; then # the --synthetic --image bench above, checked as the plain one
    cp "$tmp/vsbench" "$tmp/sbench"
    rc=$vsrc
else
    $bin bench --synthetic tiny --device cpu --prompt 8 --gen 2 >"$tmp/sbench" 2>&1
    rc=$?
fi
check "[ $rc -eq 0 ] && grep -q '^model  *synthetic tiny, nvidia-mixed' $tmp/sbench && grep -q 'decode reaches' $tmp/sbench" \
    "bench --synthetic tiny on cpu: $(tail -n 2 "$tmp/sbench")"
# bench names the numerics mode: the default, or exact (FP4RT_EXACT=1, --exact): the two compare
check "grep -q '^numerics  *default (FMA linears)\$' $tmp/sbench" "bench: numerics line: $(grep numerics "$tmp/sbench")"
FP4RT_EXACT=1 $bin bench --synthetic tiny --device cpu --prompt 8 --gen 2 >"$tmp/sbenchx" 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '^numerics  *exact\$' $tmp/sbenchx" "FP4RT_EXACT=1 bench: $(grep numerics "$tmp/sbenchx")"
expect_error 1 "unknown config 'nope'" "$bin" bench --synthetic nope --device cpu
expect_error 1 "unknown recipe 'bad'" "$bin" bench --synthetic tiny --recipe bad --device cpu
expect_error 2 "give one of --model and --synthetic" "$bin" bench --synthetic tiny --model "$tmp/mixed"
# the 27B (~19 GiB) does not fit a machine of under 32 GiB: a clean one-line error
# before anything is allocated (on a bigger machine it would run: not tested there)
if [ "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" -lt $((32 * 1024 * 1024)) ]; then
    expect_error 1 "out of memory" "$bin" bench --synthetic qwen3.6-27b --device cpu --prompt 4 --gen 2
fi

# text: run with a prompt streams text and ends with the stats line
$bin run --model "$tmp/mixed" --prompt "Tell me about the sea." -n 12 --seed 5 >"$tmp/run.out" 2>"$tmp/run.err"
check "grep -q 'fp4rt: prompt [0-9]* tokens, prefill .* tokens/s; generated 12 tokens, decode .* tokens/s; stop: max tokens; device cpu' $tmp/run.err" "run --prompt stats line: $(tail -n 1 "$tmp/run.err")"
check "[ -s $tmp/run.out ]" "run --prompt printed text"
$bin run --model "$tmp/mixed" --prompt "Tell me about the sea." -n 12 --seed 5 >"$tmp/run2.out" 2>/dev/null
# invalid UTF-8 in a prompt (chat and raw) is replaced by U+FFFD with a warning, not refused
$bin run --model "$tmp/mixed" --prompt $'\xff' -n 2 --greedy >/dev/null 2>"$tmp/utf8.err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'warning: chat: invalid UTF-8' $tmp/utf8.err" "run --prompt \\xff: $(tail -n 1 "$tmp/utf8.err")"
$bin run --model "$tmp/mixed" --raw --prompt $'a\xff' -n 2 --greedy >/dev/null 2>"$tmp/utf8r.err"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'warning: tokenize: the text has invalid UTF-8' $tmp/utf8r.err" "run --raw --prompt a\\xff: $(tail -n 1 "$tmp/utf8r.err")"
check "cmp -s $tmp/run.out $tmp/run2.out" "same seed, same text"
# tokenize: JSON ids, --jsonl round trip through --decode
check "[ \"\$($bin tokenize --model $tmp/mixed 'hello world')\" != '' ]" "tokenize"
ids=$($bin tokenize --model "$tmp/mixed" "<|im_start|>user")
check "echo '$ids' | grep -Eq '^\[[0-9]+(, [0-9]+)*\]$'" "tokenize prints a JSON array ($ids)"
printf '"one"\n"two three"\n' | $bin tokenize --model "$tmp/mixed" --jsonl >"$tmp/tok.jsonl"
check "[ \$(grep -c '^\[' $tmp/tok.jsonl) -eq 2 ]" "tokenize --jsonl: one array per line"
# chat on standard input: two turns, /think, /reset, /quit
printf 'hello\n/think off\nand again\n/reset\nonce more\n/quit\n' |
    $bin chat --model "$tmp/mixed" -n 6 --seed 1 >"$tmp/chat.out" 2>"$tmp/chat.err"
rc=$? # (a $(...) in check's message would reset $? before check reads it)
check "[ $rc -eq 0 ] && [ \$(grep -c 'generated' $tmp/chat.err) -eq 3 ]" "chat: three answers ($(tr '\n' ' ' <"$tmp/chat.err" | head -c 300))"
check "grep -q 'history cleared' $tmp/chat.err && grep -q 'thinking off' $tmp/chat.err" "chat commands"

# verify: the exact CPU is the reference; the CPU's default numerics mode is one more
# row, within NMSE 1e-6 of it (docs/NUMERICS.md "Modes"); --exact and FP4RT_EXACT=1
# leave that row out (every device, the CPU included, runs exact)
# Under ASan, commands that start lavapipe run with the environment the Vulkan
# ctest tests get (tests/CMakeLists.txt): leak detection off (lavapipe's JIT
# code leaks a little) and the default fast unwinder (the slow unwinder that
# build.sh asks for can deadlock in libgcc's unwinder against lavapipe threads).
vk="env ASAN_OPTIONS=detect_leaks=0"
$vk $bin verify --model "$tmp/mixed" --tokens $toks -n 6 >"$tmp/verify" 2>"$tmp/verify.err"
rc=$?
check "[ $rc -eq 0 ]" "verify exits 0 when every row agrees: $(tail -n 2 "$tmp/verify.err")"
check "grep -Eq '^cpu +cpu +0 +0 +0 +6/6 .* reference\$' $tmp/verify" "verify: the CPU reference row"
check "grep -q 'cpu (default mode) vs exact: 1e-06' $tmp/verify && grep -Eq '^cpu +cpu \(default mode\) +[0-9.e+-]+ +[0-9.e+-]+ +[0-9.e+-]+ +[56]/6 .* ok( \(near-tie flips only\))?\$' $tmp/verify" \
    "verify: the CPU's default-mode row ($(grep -E 'default mode' "$tmp/verify"))"
check "awk '/^cpu +cpu \(default mode\)/ { n++; if (\$5 > 1e-6 || \$6 > 1e-6) exit 1 } END { exit n != 1 }' $tmp/verify" \
    "verify: the default mode's prefill and decode NMSE <= 1e-6"
$vk $bin verify --model "$tmp/mixed" --tokens $toks -n 2 --exact >"$tmp/verifye" 2>/dev/null
rc=$?
FP4RT_EXACT=1 $vk $bin verify --model "$tmp/mixed" --tokens $toks -n 2 >"$tmp/verifyx" 2>/dev/null
rc2=$?
check "[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && grep -q '^cpu .*reference\$' $tmp/verifye && ! grep -q 'default mode' $tmp/verifye $tmp/verifyx" \
    "verify --exact / FP4RT_EXACT=1: no default-mode row"

# Vulkan (when a device exists: lavapipe in CI): run --exact streams the same greedy
# text as the CPU, and verify prints one row per device, all agreeing.
if $bin devices 2>/dev/null | grep -q '^vulkan:0'; then
    $bin run --model "$tmp/mixed" --prompt "Tell me about the sea." -n 12 --greedy --exact >"$tmp/run.cpu" 2>/dev/null
    $vk $bin run --model "$tmp/mixed" --prompt "Tell me about the sea." -n 12 --greedy --exact --device vulkan:0 \
        >"$tmp/run.vk" 2>"$tmp/run.vk.err"
    check "[ -s $tmp/run.cpu ] && cmp -s $tmp/run.cpu $tmp/run.vk" "run --exact --device vulkan:0 streams the CPU's greedy text"
    check "grep -q 'device vulkan:0' $tmp/run.vk.err" "run --device vulkan:0 says which device"
    nvk=$($bin devices | grep -c '^vulkan:')
    check "[ \$(grep -Ec '^vulkan +vulkan:[0-9]+ .* 6/6 .* ok\$' $tmp/verify) -eq $nvk ]" "verify: one agreeing row per Vulkan device ($(cat "$tmp/verify"))"
    # every NMSE printed is within the contract's decode ceiling here
    check "awk '/^vulkan/ { if (\$3 > 1e-6 || \$4 > 1e-6) exit 1 }' $tmp/verify" "verify: NMSE values"
    $vk $bin verify --model "$tmp/w4a4" --prompt "hello there" -n 4 >"$tmp/verify2" 2>/dev/null
    rc=$?
    check "[ $rc -eq 0 ] && grep -q 'prompt [0-9]* tokens, 4 greedy steps' $tmp/verify2" "verify --prompt on W4A4"
    $vk $bin bench --synthetic tiny --device vulkan:0 --prompt 8 --gen 2 >"$tmp/sbench.vk" 2>&1
    rc=$?
    check "[ $rc -eq 0 ] && grep -q '^model  *synthetic tiny' $tmp/sbench.vk && grep -q '^device  *vulkan:0' $tmp/sbench.vk" \
        "bench --synthetic tiny on vulkan:0: $(tail -n 2 "$tmp/sbench.vk")"
else
    echo "cli: no Vulkan device: run/verify on Vulkan not tested"
fi
expect_error 2 "verify runs every device" "$bin" verify --model "$tmp/mixed" --device cpu

# errors
expect_error 1 "context" "$bin" run --model "$tmp/mixed" --prompt "a long prompt that does not fit" --ctx 8 -n 2
expect_error 1 "empty" "$bin" run --model "$tmp/mixed" --prompt "" -n 2
cp -r "$tmp/mixed" "$tmp/notok" && rm "$tmp/notok/tokenizer.json"
expect_error 1 "no tokenizer.json" "$bin" run --model "$tmp/notok" --prompt "x"
cp -r "$tmp/mixed" "$tmp/badtok" && echo '{"model": {"type": "Unigram"' >"$tmp/badtok/tokenizer.json"
expect_error 1 "tokenizer.json" "$bin" run --model "$tmp/badtok" --prompt "x"
# images (issue 18): run --image answers through the tiny model's vision tower; two
# images take more tokens; every bad input is one line naming the file
im=tests/fixtures/images
$bin run --model "$m" --image $im/rgb.png --prompt "What is this?" --greedy -n 3 >/dev/null 2>"$tmp/img1"; rc=$?
n1=$(sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p' "$tmp/img1")
$bin run --model "$m" --image $im/rgb.png --image $im/gray.png --prompt "And these?" --greedy -n 3 >/dev/null 2>"$tmp/img2"; rc2=$?
n2=$(sed -n 's/.*prompt \([0-9]*\) tokens.*/\1/p' "$tmp/img2")
check "[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ -n '$n1' ] && [ -n '$n2' ] && [ '$n1' -gt 40 ] && [ '$n2' -gt \$(( $n1 + 40 )) ]" \
    "run --image: rc $rc / $rc2, prompt $n1 / $n2 tokens: $(tail -n 1 "$tmp/img1")"
expect_error 1 "$tmp/none.png: cannot open" "$bin" run --model "$m" --image "$tmp/none.png" --prompt "x" -n 1
expect_error 1 "$im: is a directory" "$bin" run --model "$m" --image "$im" --prompt "x" -n 1
expect_error 1 "$im/README.md: not a PNG, JPEG, BMP or GIF file" "$bin" run --model "$m" --image "$im/README.md" --prompt "x" -n 1
expect_error 1 "$im/rgb.png: its " "$bin" run --model "$m" --image "$im/rgb.png" --prompt "x" -n 1 --ctx 40
expect_error 1 "2 <|image_pad|> slots but 1 image was given" "$bin" run --model "$m" --raw --image "$im/rgb.png" \
    --prompt "<|image_pad|> and <|image_pad|>" -n 1
expect_error 1 "$im/gray.png: no <|image_pad|> left for it in the prompt (2 images, 1 <|image_pad|> slot)" "$bin" run \
    --model "$m" --raw --image "$im/rgb.png" --image "$im/gray.png" --prompt "<|vision_start|><|image_pad|><|vision_end|>" -n 1
expect_error 1 "$im/rgb.png: the model has no vision tower" "$bin" run --model models/qwen35-kjv-10m --image "$im/rgb.png" \
    --prompt "x" -n 1
expect_error 2 "--image needs --prompt" "$bin" run --model "$m" --image "$im/rgb.png" --tokens 1,2
expect_error 1 "nonexistent/config.json: cannot open" "$bin" logits --model "$tmp/nonexistent" --tokens 1 --out "$tmp/x.bin"
expect_error 1 "outside the vocabulary" "$bin" logits --model "$tmp/mixed" --tokens 1,512 --out "$tmp/x.bin"
check "[ ! -e $tmp/x.bin ]" "no logits file after a failure"
expect_error 1 "not a token id" "$bin" run --model "$tmp/mixed" --tokens 1,x
expect_error 2 "logits: --tokens is required" "$bin" logits --model "$tmp/mixed"
expect_error 1 "exists" "$bin" quantize --in "$m" --out "$tmp/mixed" --recipe nvidia-mixed
expect_error 2 "recipe" "$bin" quantize --in "$m" --out "$tmp/q2" --recipe bogus
check "[ ! -e $tmp/q2 ]" "no output dir after a refused quantize"
expect_error 1 "tiny" "$bin" plan --config nosuchmodel
expect_error 1 "not available" "$bin" run --model "$tmp/mixed" --tokens 1 --device vulkan:99
# truncated weights file
cp -r "$tmp/mixed" "$tmp/trunc"
f=$(ls "$tmp"/trunc/*.safetensors | head -n 1)
truncate -s $(($(stat -c %s "$f") / 2)) "$f"
expect_error 1 "safetensors" "$bin" logits --model "$tmp/trunc" --tokens 1 --out "$tmp/x.bin"
# corrupt header length
cp -r "$tmp/mixed" "$tmp/hdr"
f=$(ls "$tmp"/hdr/*.safetensors | head -n 1)
printf '\xff\xff\xff\xff\xff\xff\x00\x00' | dd of="$f" conv=notrunc status=none
expect_error 1 "header" "$bin" inspect "$tmp/hdr"
# broken config.json
cp -r "$tmp/mixed" "$tmp/cfg"
echo '{"architectures": ["Qwen3_5ForCausalLM"], ' >"$tmp/cfg/config.json"
expect_error 1 "config.json" "$bin" plan --model "$tmp/cfg"

# --spec mtp[:K]: speculative decoding with the trained model's MTP head gives
# the greedy ids of plain decoding, and says its acceptance on the stats line
kjv="$(dirname "$0")/../../models/qwen35-kjv-10m"
kp=3763,220,18,18,587,1733,419,258,2100,82,268,258,493,268,432,11
sn=60 sg=40 # greedy tokens of the --spec runs, of bench --spec
[ "$short" = 1 ] && sn=20 sg=12
$bin run --model "$kjv" --device cpu --tokens $kp -n $sn --greedy >"$tmp/plain.ids" 2>"$tmp/plain.err"
$bin run --model "$kjv" --device cpu --tokens $kp -n $sn --greedy --spec mtp:2 >"$tmp/spec.ids" 2>"$tmp/spec.err"
check "[ -s $tmp/plain.ids ] && cmp -s $tmp/plain.ids $tmp/spec.ids" "run --spec mtp:2: the ids of plain greedy decoding"
check "grep -q 'MTP K=2: [0-9]* verify steps, [0-9]* of [0-9]* drafts accepted' $tmp/spec.err" "run --spec: stats line: $(grep -o 'MTP K=.*position[ 0-9%]*' "$tmp/spec.err")"
$bin run --model "$kjv" --device cpu --tokens $kp -n 20 --spec mtp --seed 3 --temp 0.8 >"$tmp/specs.ids" 2>"$tmp/specs.err"
check "grep -q 'MTP K=3:' $tmp/specs.err && [ \$(tr ',' '\\n' <$tmp/specs.ids | grep -c .) -eq 20 ]" "run --spec mtp (default K) sampling: 20 ids"
# a draft vocabulary (FP4RT_MTP_DRAFT_VOCAB): the same ids (drafts accepted with
# ids 0 .. 1023; with id 0 alone none is)
FP4RT_MTP_DRAFT_VOCAB=1024 $bin run --model "$kjv" --device cpu --tokens $kp -n $sn --greedy --spec mtp:2 >"$tmp/specv.ids" 2>"$tmp/specv.err"
check "cmp -s $tmp/plain.ids $tmp/specv.ids && grep -q 'MTP K=2: [0-9]* verify steps, [1-9][0-9]* of' $tmp/specv.err" "run --spec mtp:2, draft vocabulary 1024: the ids of plain greedy decoding: $(grep -o 'MTP K=.*accepted' "$tmp/specv.err")"
FP4RT_MTP_DRAFT_VOCAB=1 $bin run --model "$kjv" --device cpu --tokens $kp -n $sn --greedy --spec mtp:2 >"$tmp/spec1.ids" 2>"$tmp/spec1.err"
check "cmp -s $tmp/plain.ids $tmp/spec1.ids && grep -q 'MTP K=2: [0-9]* verify steps, 0 of [0-9]* drafts accepted' $tmp/spec1.err" "run --spec mtp:2, draft vocabulary 1: the same ids, no draft accepted: $(grep -o 'MTP K=.*accepted' "$tmp/spec1.err")"
FP4RT_MTP_DRAFT_VOCAB=512 $bin run --model "$kjv" --device cpu --tokens $kp -n 20 --spec mtp --seed 3 --temp 0.8 >"$tmp/specsv.ids" 2>"$tmp/specsv.err"
check "grep -q 'MTP K=3:' $tmp/specsv.err && [ \$(tr ',' '\\n' <$tmp/specsv.ids | grep -c .) -eq 20 ]" "run --spec mtp sampling, draft vocabulary 512: 20 ids"
expect_error 2 "--spec" "$bin" run --model "$kjv" --tokens $kp --spec eagle
expect_error 2 "--spec mtp:K" "$bin" run --model "$kjv" --tokens $kp --spec mtp:9
$bin bench --model "$kjv" --device cpu --tokens $kp --gen $sg --spec 2 >"$tmp/bspec" 2>&1
check "grep -q 'generate MTP K=2 $sg tokens.*outputs identical' $tmp/bspec && grep -q 'verify of 3 rows' $tmp/bspec" "bench --spec 2: $(grep 'generate MTP' "$tmp/bspec")"

cli_summary "cli"
