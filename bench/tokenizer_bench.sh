#!/usr/bin/env bash
# Tokenizer encode throughput, fp4rt vs HF tokenizers (Rust, via Python), both
# single-threaded, on the same corpus in the same run.
#
#   bench/tokenizer_bench.sh [BUILD_DIR] [TOKENIZER_JSON] [MB]
#
# Corpus: the texts of ../shared/tokenizers/qwen3/golden.jsonl (code, licences,
# HTML, locale data in many scripts, edge cases) repeated to about MB megabytes
# (default 16), one text per line. HF runs plain `encode` per line
# (add_special_tokens=False; no encode_batch), TOKENIZERS_PARALLELISM=false,
# RAYON_NUM_THREADS=1. Python: $PYTHON, else /work/venv-ref/bin/python, else python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shared=${FP4RT_SHARED:-$root/../shared}
tok=${2:-$shared/tokenizers/qwen3/tokenizer.json}
mb=${3:-16}
py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x /work/venv-ref/bin/python ]; then py=/work/venv-ref/bin/python; else py=python3; fi
fi
bin=$build/bench/tokenizer_bench
[ -x "$bin" ] || { echo "tokenizer_bench.sh: $bin not built (cmake --build $build --target tokenizer_bench)" >&2; exit 1; }
corpus=$(mktemp /tmp/fp4rt-tokbench-XXXXXX.jsonl)
trap 'rm -f "$corpus"' EXIT
"$py" - "$shared/tokenizers/qwen3/golden.jsonl" "$corpus" "$mb" <<'PY'
import json, sys
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
target, size = float(sys.argv[3]) * 1e6, 0
with open(sys.argv[2], "w", encoding="utf-8") as f:
    while size < target:
        for t in texts:
            f.write(json.dumps(t) + "\n")
            size += len(t.encode())
PY
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "tokenizer: $tok"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%Y-%m-%d)"
c_line=$("$bin" "$tok" "$corpus" 3)
echo "$c_line"
hf_line=$("$py" - "$tok" "$corpus" <<'PY'
import json, sys, time
import tokenizers
from tokenizers import Tokenizer
t0 = time.perf_counter()
tok = Tokenizer.from_file(sys.argv[1])
load = time.perf_counter() - t0
texts = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
nbytes = sum(len(x.encode()) for x in texts)
best, ntok = 1e30, 0
for _ in range(3):
    s = time.perf_counter()
    ntok = 0
    for x in texts:
        ntok += len(tok.encode(x, add_special_tokens=False).ids)
    best = min(best, time.perf_counter() - s)
print(f"HF tokenizers {tokenizers.__version__}: load {load:.3f} s; {len(texts)} lines, "
      f"{nbytes/1e6:.2f} MB, {ntok} tokens; encode {best:.3f} s = {nbytes/1e6/best:.2f} MB/s "
      f"({ntok/best:.0f} tokens/s)")
PY
)
echo "$hf_line"
c=$(echo "$c_line" | sed -n 's/.* = \([0-9.]*\) MB\/s.*/\1/p')
h=$(echo "$hf_line" | sed -n 's/.* = \([0-9.]*\) MB\/s.*/\1/p')
awk -v c="$c" -v h="$h" 'BEGIN { printf "ratio fp4rt / HF tokenizers: %.2fx\n", c / h }'
