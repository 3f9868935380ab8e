#!/usr/bin/env bash
# Issue 12, what a first-time user hits on the command line: usage errors name
# the argument (exit 2, one error line, then a hint to --help), --help prints
# on stdout (exit 0), numeric ranges, --stop "", --ctx above the model's
# maximum warned, output paths checked before the work, write errors on
# stdout, and the output directories of synth / quantize (--force, "DIR/",
# ".", --out = --in, foreign files; interrupted runs: test_interrupt.sh).
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup cli-usage

# expect_error CODE NEEDLE CMD...: exit code CODE, exactly one error line on
# stderr containing NEEDLE; usage errors (2) end with the --help hint
expect_error() {
    local code=$1 needle=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    local lines
    lines=$(grep -c -E 'error:|usage:' "$tmp/err")
    if [ "$rc" -eq "$code" ] && [ "$lines" -eq 1 ] && grep -E 'error:' "$tmp/err" | grep -qF -- "$needle" &&
        { [ "$code" -ne 2 ] || grep -q -- "--help' lists the options" "$tmp/err"; }; then
        ok
    else
        bad "'$*': rc=$rc (want $code), $lines error lines, want '$needle': $(head -c 300 "$tmp/err")"
    fi
}

m=$tmp/tiny
check "$bin synth --config tiny --out $m --seed 4 >/dev/null" "synth tiny"
q=$tmp/q
check "$bin quantize --in $m --out $q --recipe nvidia-mixed >/dev/null" "quantize"

# --- usage errors name the argument -----------------------------------------------
expect_error 2 "fp4rt: error: --stop: empty string" "$bin" run --model "$q" --prompt hi -n 5 --stop ""
expect_error 2 "--model: empty string" "$bin" run --model "" --prompt hi
expect_error 2 "run: unknown option '--bogus'" "$bin" run --model "$q" --prompt hi --bogus
expect_error 2 "--think: 'maybe' is not on or off" "$bin" run --model "$q" --prompt hi --think maybe
expect_error 2 "--think: 'maybe' is not on or off" "$bin" chat --model "$q" --think maybe
expect_error 2 "give --prompt or --tokens, not both" "$bin" run --model "$q" --prompt hi --tokens 1
expect_error 2 "run: --model DIR is required" "$bin" run --prompt hi
expect_error 2 "--prompt: '0' is not an integer in [1," "$bin" bench --model "$q" --prompt 0 --gen 0
expect_error 2 "--gen: '0' is not an integer in [1," "$bin" bench --model "$q" --gen 0
expect_error 2 "--threads: '100000' is not an integer in [0, 1024]" "$bin" run --model "$q" --prompt hi --threads 100000
expect_error 2 "--threads: '100000'" "$bin" quantize --in "$m" --out "$tmp/qq" --recipe nvidia-mixed --threads 100000
expect_error 2 "--min-p: '3' is not a number in [0, 1]" "$bin" run --model "$q" --prompt hi --min-p 3
expect_error 2 "--repeat-penalty: '0' is not a number > 0" "$bin" run --model "$q" --prompt hi --repeat-penalty 0
expect_error 2 "--top-p: '0' is not a number in (0, 1]" "$bin" run --model "$q" --prompt hi --top-p 0
expect_error 2 "--top-p: '1.5'" "$bin" chat --model "$q" --top-p 1.5
expect_error 2 "--temp: '-1' is not a number >= 0" "$bin" run --model "$q" --prompt hi --temp -1
expect_error 2 "--top-k: '-3'" "$bin" run --model "$q" --prompt hi --top-k -3
expect_error 2 "-n: '-1'" "$bin" run --model "$q" --prompt hi -n -1
expect_error 2 "--ctx: '0'" "$bin" run --model "$q" --prompt hi --ctx 0
expect_error 2 "--ctx: '99999999999'" "$bin" run --model "$q" --prompt hi --ctx 99999999999
expect_error 2 "--presence-penalty: 'nan'" "$bin" run --model "$q" --prompt hi --presence-penalty nan
expect_error 2 "--max-nmse: '-1'" "$bin" verify --model "$q" --max-nmse -1
expect_error 2 "--layers: '5000'" "$bin" synth --config tiny --out "$tmp/s" --layers 5000
expect_error 2 "--temp needs a value" "$bin" run --model "$q" --prompt hi --temp
expect_error 2 "devices: unknown option '--x'" "$bin" devices --x
expect_error 2 "inspect: unexpected argument 'b'" "$bin" inspect a b
expect_error 1 "is a directory" "$bin" run --model "$q" --tokens "@$q"
# --help: each subcommand and the top level print on stdout and exit 0
for c in run chat tokenize logits bench verify devices plan inspect quantize synth; do
    "$bin" $c --help >"$tmp/help" 2>"$tmp/help.err"
    rc=$?
    check "[ $rc -eq 0 ] && grep -q '^usage: fp4rt $c' $tmp/help && [ ! -s $tmp/help.err ]" "$c --help: rc=$rc $(head -c 200 "$tmp/help.err")"
done
# every command that runs a session takes --exact (the exact numerics mode)
for c in run chat logits bench perplexity verify serve; do
    check "$bin $c --help 2>&1 | grep -q -- '--exact'" "$c --help names --exact"
done
check "$bin --help | grep -q '^usage: fp4rt <command>'" "fp4rt --help"
# --ctx above the model's maximum (4096 for tiny) is said, not silently capped
"$bin" run --model "$q" --tokens 1,2 -n 2 --ctx 100000 >/dev/null 2>"$tmp/ctx.err"
rc=$? # (read before check: a $(...) in its message resets $?)
check "[ $rc -eq 0 ] && grep -q 'warning: --ctx 100000 is above the model.s maximum context 4096; using 4096' $tmp/ctx.err" \
    "--ctx above the maximum: $(cat "$tmp/ctx.err")"

# --- write errors on stdout ------------------------------------------------------
if [ -w /dev/full ]; then
    for args in "run --model $q --prompt hi -n 4" "run --model $q --tokens 1,2 -n 2" "tokenize --model $q hello" \
        "inspect $q" "plan --model $q" "devices" "synth --config tiny --out $tmp/sfull"; do
        # shellcheck disable=SC2086
        $bin $args >/dev/full 2>"$tmp/full.err"
        rc=$?
        check "[ $rc -eq 1 ] && grep -q 'fp4rt: error: writing output: No space left on device' $tmp/full.err" \
            "$args > /dev/full: rc=$rc $(tail -n 1 "$tmp/full.err")"
    done
fi

# --- output paths are checked before the work ---------------------------------------
expect_error 1 "--out $tmp/nodir/x.bin: directory $tmp/nodir: No such file or directory" \
    "$bin" logits --model "$q" --tokens 1 --out "$tmp/nodir/x.bin"
expect_error 1 "--out $q: Is a directory" "$bin" logits --model "$q" --tokens 1 --out "$q"
expect_error 1 "--out $tmp/nodir/q: directory $tmp/nodir: No such file or directory" \
    "$bin" quantize --in "$m" --out "$tmp/nodir/q" --recipe nvidia-mixed
expect_error 1 "--report $tmp/nodir/r.json: directory $tmp/nodir: No such file or directory" \
    "$bin" quantize --in "$m" --out "$tmp/q2" --recipe nvidia-mixed --report "$tmp/nodir/r.json"
check "[ ! -e $tmp/q2 ] && ! ls -d $tmp/q2.tmp-* 2>/dev/null" "no output after a refused --report"
expect_error 1 "--out $tmp/nodir/s: directory $tmp/nodir" "$bin" synth --config tiny --out "$tmp/nodir/s"
touch "$tmp/afile"
expect_error 1 "--out $tmp/afile/s: $tmp/afile: Not a directory" "$bin" synth --config tiny --out "$tmp/afile/s"

# --- output directories: --force, "DIR/", ".", --out = --in, foreign files ---------
expect_error 1 "$q: already exists (--force replaces it)" "$bin" quantize --in "$m" --out "$q" --recipe nvidia-mixed
s=$tmp/s
check "$bin synth --config tiny --out $s/ >/dev/null && [ -f $s/model.safetensors ]" "synth --out DIR/"
check "$bin synth --config tiny --out $s/ --force --seed 2 >/dev/null && [ -f $s/model.safetensors ]" "synth --out DIR/ --force"
check "! compgen -G '$tmp/s.*' >/dev/null && ! ls -A $s | grep -q '^\.'" "DIR/ --force leaves no .old / .tmp: $(ls -a "$tmp" "$s" | tr '\n' ' ')"
mkdir -p "$tmp/here"
(cd "$tmp/here" && "$bin" synth --config tiny --out . >/dev/null 2>&1)
rc=$? # (read before check: a $(...) in its message resets $?)
check "[ $rc -ne 0 ]" "synth --out . without --force refuses"
(cd "$tmp/here" && "$bin" synth --config tiny --out . --force >/dev/null && "$bin" synth --config tiny --out . --force --seed 3 >/dev/null)
rc=$? # (read before check: a $(...) in its message resets $?)
check "[ $rc -eq 0 ] && [ -f $tmp/here/model.safetensors ] && ! ls -d $tmp/here.* 2>/dev/null" "synth --out . --force (twice)"
expect_error 1 "is the input directory" "$bin" quantize --in "$q" --out "$q" --recipe nvidia-mixed --force
expect_error 1 "is the input directory" "$bin" quantize --in "$q" --out "$tmp/./q/" --recipe nvidia-mixed --force
echo notes >"$s/notes.txt"
expect_error 1 "$s: holds files fp4rt would not write (notes.txt)" "$bin" synth --config tiny --out "$s" --force
check "[ -f $s/notes.txt ] && [ -f $s/model.safetensors ]" "a refused --force keeps the directory"
expect_error 1 "$tmp/afile: exists and is not a directory" "$bin" synth --config tiny --out "$tmp/afile" --force

cli_summary "cli usage"
