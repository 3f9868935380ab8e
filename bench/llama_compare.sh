#!/usr/bin/env bash
# fp4rt against llama.cpp on identical weights (issue 14 item 4).
#
#   bench/llama_compare.sh [--rounds N] [--formats "bf16 nvfp4-all nvidia-mixed"]
#                          [--threads N] [--pp N] [--tg N] [--modes "default exact"]
#
# Builds a recent llama.cpp from PyPI's llama-cpp-python source package (pinned
# below; its sdist carries llama.cpp and the converter convert_hf_to_gguf.py, which
# repacks ModelOpt NVFP4 and FP8 checkpoints), synthesizes the qwen3.5-0.8b shape
# with fp4rt (seed 1), quantizes it with fp4rt's recipes, converts each directory
# with llama.cpp's own converter, then times prefill (pp) and decode (tg) of both
# programs, interleaved: every round runs llama-bench and `fp4rt bench` once per
# format and fp4rt numerics mode (--modes: default, and exact = FP4RT_EXACT=1;
# docs/NUMERICS.md "Modes"). It prints one line per run and a table of medians
# with the ratios fp4rt / llama.cpp and fp4rt's decode as % of the bandwidth
# limit its bench measured, last.
#
# Needs network access to PyPI on the first run (the source package, and torch +
# transformers for the converter in a virtualenv under $WORK), a C/C++ toolchain
# and cmake. Everything lands under $WORK (default build/llama-peer, ~8 GB).
# Environment: FP4RT (default build/fp4rt), WORK, PY (a Python that already has
# torch with float8 and transformers >= 5: skips the virtualenv).
#
# The converter checks the tokenizer's pre-tokenizer by hashing its output; the
# synthesized checkpoints carry fp4rt's small synthetic BPE tokenizer (Qwen's split
# regex), which it does not know, so the converter runs with that check answering
# "qwen2" (the Qwen split). llama-bench times random tokens: the tokenizer does not
# enter the timings.
set -euo pipefail

LLAMA_CPP_PYTHON=0.3.36
ROUNDS=3 THREADS=2 PP=64 TG=16
FORMATS="bf16 nvfp4-all nvidia-mixed"
MODES="default exact"
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --formats) FORMATS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --pp) PP=$2; shift 2 ;;
    --tg) TG=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    *) echo "llama_compare.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
FP4RT=$(realpath "${FP4RT:-build/fp4rt}")
WORK=$(realpath -m "${WORK:-build/llama-peer}")
[ -x "$FP4RT" ] || { echo "llama_compare.sh: $FP4RT is not built" >&2; exit 1; }
mkdir -p "$WORK"
log() { echo "llama_compare: $*" >&2; }

# ---- llama.cpp: source from PyPI's sdist, llama-bench built natively ----
SRC=$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp
if [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    log "downloading llama-cpp-python $LLAMA_CPP_PYTHON (source)"
    python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$WORK"
    tar -xzf "$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$WORK"
fi
BENCH=$WORK/llama-build/bin/llama-bench
if [ ! -x "$BENCH" ]; then
    log "building llama-bench (a few minutes)"
    cmake -S "$SRC" -B "$WORK/llama-build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >"$WORK/llama-cmake.log"
    cmake --build "$WORK/llama-build" -j"$(nproc)" --target llama-bench >"$WORK/llama-build.log"
fi

# ---- Python for the converter ----
if [ -z "${PY:-}" ]; then
    if [ ! -x "$WORK/venv/bin/python" ]; then
        log "making a virtualenv for the converter (torch, transformers)"
        python3 -m venv "$WORK/venv"
        "$WORK/venv/bin/pip" install --quiet torch transformers numpy sentencepiece safetensors protobuf pyyaml tqdm
    fi
    PY=$WORK/venv/bin/python
fi

# ---- the weights: fp4rt's synthetic qwen3.5-0.8b, seed 1, and its recipes ----
[ -f "$WORK/bf16/config.json" ] || "$FP4RT" synth --config qwen3.5-0.8b --seed 1 --out "$WORK/bf16" --force >&2
for f in $FORMATS; do
    [ "$f" = bf16 ] || [ -f "$WORK/$f/config.json" ] ||
        "$FP4RT" quantize --in "$WORK/bf16" --out "$WORK/$f" --recipe "$f" --threads "$THREADS" --force >&2
    if [ ! -f "$WORK/$f.gguf" ]; then
        log "converting $f with llama.cpp's converter"
        outtype=auto
        [ "$f" = bf16 ] && outtype=bf16
        PYTHONPATH="$SRC/gguf-py:$SRC" "$PY" - "$SRC" "$WORK/$f" "$WORK/$f.gguf.part" "$outtype" >"$WORK/convert-$f.log" 2>&1 <<'EOF' ||
import runpy, sys
src, model, out, outtype = sys.argv[1:5]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"  # see the header
sys.argv = ["convert_hf_to_gguf.py", model, "--outfile", out, "--outtype", outtype]
runpy.run_path(src + "/convert_hf_to_gguf.py", run_name="__main__")
EOF
            { log "converting $f failed: $(tail -1 "$WORK/convert-$f.log")"; exit 1; }
        mv "$WORK/$f.gguf.part" "$WORK/$f.gguf"
    fi
done

# ---- timing, interleaved ----
RAW=$WORK/runs.$$.tsv # per run: several may share $WORK
: >"$RAW"
for r in $(seq 1 "$ROUNDS"); do
    for f in $FORMATS; do
        line=$("$BENCH" -m "$WORK/$f.gguf" -p "$PP" -n "$TG" -t "$THREADS" -r 1 -o csv 2>/dev/null |
            "$PY" -c '
import csv, sys
pp = tg = 0.0
for row in csv.DictReader(sys.stdin):
    if int(row["n_prompt"]) > 0: pp = float(row["avg_ts"])
    if int(row["n_gen"]) > 0: tg = float(row["avg_ts"])
print(pp, tg)')
        printf 'llama.cpp\t%s\t%s\t%s\t0\n' "$f" "$r" "${line// /$'\t'}" | tee -a "$RAW" >&2
        dir=$WORK/$f
        for mode in $MODES; do
            case "$mode" in
            default) exact=0 prog=fp4rt ;;
            exact) exact=1 prog=fp4rt-exact ;;
            *) log "unknown mode '$mode' (default, exact)"; exit 2 ;;
            esac
            out=$(FP4RT_EXACT=$exact "$FP4RT" bench --model "$dir" --device cpu --threads "$THREADS" --prompt "$PP" \
                --gen "$TG" 2>/dev/null)
            pp=$(sed -n 's/^prefill .*: \([0-9.]*\) tokens\/s.*/\1/p' <<<"$out")
            tg=$(sed -n 's/^decode .*: \([0-9.]*\) tokens\/s mean.*/\1/p' <<<"$out")
            bw=$(sed -n 's/^decode reaches *\([0-9.]*\)% .*/\1/p' <<<"$out")
            [ -n "$pp" ] && [ -n "$tg" ] || { log "fp4rt bench printed no figures for $f"; exit 1; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$prog" "$f" "$r" "$pp" "$tg" "${bw:-0}" | tee -a "$RAW" >&2
        done
    done
done

"$PY" - "$RAW" "$ROUNDS" "$THREADS" "$PP" "$TG" "$LLAMA_CPP_PYTHON" <<'EOF'
import statistics, sys
raw, rounds, threads, pp, tg, ver = sys.argv[1:7]
runs = {}
for line in open(raw):
    prog, fmt, _, p, t, bw = line.split("\t")
    runs.setdefault((prog, fmt), []).append((float(p), float(t), float(bw)))
print(f"\nqwen3.5-0.8b synth (seed 1), CPU, {threads} threads, pp{pp} / tg{tg}, median of {rounds} interleaved rounds;"
      f" llama.cpp from llama-cpp-python {ver}")
print("| weights | fp4rt mode | prefill ratio | decode ratio | fp4rt prefill / decode (tok/s) |"
      " llama.cpp prefill / decode (tok/s) | fp4rt decode, % of bandwidth limit |")
print("|---|---|---|---|---|---|---|")
for fmt in dict.fromkeys(f for _, f in runs):
    ll = runs.get(("llama.cpp", fmt))
    for prog, mode in (("fp4rt", "default"), ("fp4rt-exact", "exact")):
        f4 = runs.get((prog, fmt))
        if not f4 or not ll: continue
        fp, ft = statistics.median(x[0] for x in f4), statistics.median(x[1] for x in f4)
        fb = statistics.median(x[2] for x in f4)
        lp, lt = statistics.median(x[0] for x in ll), statistics.median(x[1] for x in ll)
        print(f"| {fmt} | {mode} | {fp / lp:.2f} | {ft / lt:.2f} | {fp:.1f} / {ft:.1f} | {lp:.1f} / {lt:.1f} | {fb:.1f} |")
EOF
