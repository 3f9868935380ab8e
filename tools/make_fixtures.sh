#!/usr/bin/env bash
# Regenerate tests/fixtures/: tiny checkpoints written by fp4rt itself plus reference logits from
# Hugging Face transformers (tools/reference_logits.py), and the logits of the committed trained
# model (models/qwen35-kjv-10m) on a fixed held-out English text.
#
#   tools/make_fixtures.sh [--only tiny|trained] [FP4RT_BINARY]        (default: build/fp4rt)
#
# --only tiny: the tiny fixtures alone; --only trained: the trained-model fixture alone (needs no
# fp4rt binary; the README's tiny part is kept as it is).  Default: both.
# Environment: PYTHON (default /work/venv-ref/bin/python or /work/venv-train/bin/python if present,
# else python3) must have torch, transformers (with models.qwen3_5), safetensors, numpy and
# tokenizers.  The trained part reads the Bible with tools/corpus.py (Debian bible-kjv,
# bible-kjv-text).
#
# Produces, under tests/fixtures/:
#   tiny-bf16/  tiny-mixed/  tiny-w4a4/     checkpoints (fp4rt synth / fp4rt quantize output, verbatim)
#   tokens.txt                              the token ids, comma-separated, one line
#   <name>.logits.bin                       teacher-forced prefill logits, float32 LE [n_tokens, 512]
#   <name>.decode.logits.bin                same tokens fed one at a time through the cache (recurrent GDN)
#   <name>.logits.json                      metadata: versions, sha256, argmax / top-5 per row, decode diff
#   tiny-mixed.kvfp8.logits.bin             tiny-mixed prefill with the FP8 KV cache emulated (--kv-fp8)
#   qwen35-kjv-10m.text.txt                 the first TRAINED_TOKENS tokens of held-out chapter
#                                           TRAINED_CHAPTER, as text (UTF-8, no trailing newline added)
#   qwen35-kjv-10m.tokens.txt               their ids (the model's own tokenizer), comma-separated
#   qwen35-kjv-10m.logits.bin / .logits.json  transformers' teacher-forced logits of models/qwen35-kjv-10m
#   README.md                               how they were made
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ONLY=all
if [ "${1:-}" = "--only" ]; then
    case "${2:-}" in
        tiny | trained) ONLY="$2" ;;
        *) echo "make_fixtures: --only expects tiny or trained, got '${2:-}'" >&2; exit 2 ;;
    esac
    shift 2
fi
FP4RT="${1:-$ROOT/build/fp4rt}"
case "$FP4RT" in /*) ;; *) FP4RT="$PWD/$FP4RT" ;; esac
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    for p in /work/venv-ref/bin/python /work/venv-train/bin/python; do
        if [ -x "$p" ]; then PYTHON="$p"; break; fi
    done
fi
FIX="$ROOT/tests/fixtures"
SEED=1
# the trained-model fixture: the model, the held-out chapter and how many of its tokens
TRAINED=qwen35-kjv-10m
TRAINED_MODEL="$ROOT/models/$TRAINED"
TRAINED_CHAPTER="Genesis 50"
TRAINED_TOKENS=64

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fp4rt-fixtures.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

make_tiny() {
run_fp4rt() {  # run fp4rt, detect the "not implemented yet" stubs
    local out rc=0
    out="$("$FP4RT" "$@" 2>&1)" || rc=$?
    printf '%s\n' "$out"
    if printf '%s' "$out" | grep -q "not implemented yet"; then
        echo "make_fixtures: 'fp4rt $1' is not implemented yet in $FP4RT" >&2
        exit 3
    fi
    [ "$rc" -eq 0 ] || { echo "make_fixtures: 'fp4rt $*' failed (rc $rc)" >&2; exit "$rc"; }
}

echo "== fp4rt checkpoints"
run_fp4rt synth --config tiny --out "$WORK/tiny-bf16" --seed "$SEED"
run_fp4rt quantize --in "$WORK/tiny-bf16" --out "$WORK/tiny-mixed" --recipe nvidia-mixed --scale absmax
run_fp4rt quantize --in "$WORK/tiny-bf16" --out "$WORK/tiny-w4a4" --recipe nvfp4-w4a4 --scale absmax

echo "== tokens"
# 80 ids from a 31-bit LCG (glibc constants, seed 12345, bits 16..30 mod 512), then ids 8..23 of
# that list repeated once: 96 ids, i.e. two GDN chunks (chunk 64) and a repeated span.
toks=()
x=12345
for _ in $(seq 0 79); do
    x=$(( (1103515245 * x + 12345) % 2147483648 ))
    toks+=( $(( (x >> 16) % 512 )) )
done
for i in $(seq 8 23); do toks+=( "${toks[$i]}" ); done
TOKENS="$(IFS=,; echo "${toks[*]}")"
echo "${#toks[@]} tokens: $TOKENS"

echo "== reference logits"
for name in tiny-bf16 tiny-mixed tiny-w4a4; do
    echo "-- $name"
    "$PYTHON" "$ROOT/tools/reference_logits.py" --model "$WORK/$name" --tokens "$TOKENS" \
        --out "$WORK/$name.logits.bin" --decode --decode-out "$WORK/$name.decode.logits.bin" \
        --dump-json --threads 1 2>&1 | grep -v '^\[transformers\]' | tee "$WORK/$name.log"
done
# the mixed model again with the FP8 KV cache emulated (fp4rt --kv fp8)
"$PYTHON" "$ROOT/tools/reference_logits.py" --model "$WORK/tiny-mixed" --tokens "$TOKENS" \
    --out "$WORK/tiny-mixed.kvfp8.logits.bin" --kv-fp8 --threads 1 2>&1 | grep -v '^\[transformers\]'

echo "== install into $FIX"
mkdir -p "$FIX"
for name in tiny-bf16 tiny-mixed tiny-w4a4; do
    rm -rf "${FIX:?}/$name"
    cp -r "$WORK/$name" "$FIX/$name"
    cp "$WORK/$name.logits.bin" "$WORK/$name.decode.logits.bin" "$FIX/"
    # metadata: make paths repository-relative
    "$PYTHON" - "$WORK/$name.logits.json" "$FIX/$name.logits.json" "$name" <<'EOF'
import json, sys
src, dst, name = sys.argv[1:]
m = json.load(open(src))
m["model"] = f"tests/fixtures/{name}"
m["out"] = f"tests/fixtures/{name}.logits.bin"
json.dump(m, open(dst, "w"), indent=1)
EOF
done
cp "$WORK/tiny-mixed.kvfp8.logits.bin" "$FIX/"
printf '%s\n' "$TOKENS" > "$FIX/tokens.txt"

echo "== README"
VERS="$("$PYTHON" - <<'EOF'
import importlib.metadata as md, platform
for p in ("torch", "transformers", "safetensors", "numpy", "huggingface_hub", "tokenizers"):
    try:
        print(f"{p}=={md.version(p)}")
    except md.PackageNotFoundError:
        pass
print(f"python {platform.python_version()}")
EOF
)"
FPV="$("$FP4RT" --version 2>/dev/null | head -1 || true)"
[ -n "$FPV" ] || FPV="$("$FP4RT" 2>&1 | head -1 || true)"
GITREV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
GITSTATUS="$(git -C "$ROOT" status --porcelain --untracked-files=no -- . ':!tests/fixtures' 2>/dev/null || true)"
GITDIRTY=""
[ -z "$GITSTATUS" ] || GITDIRTY=" + uncommitted changes"
summ() {  # one line per model from its log
    grep -E "^(quantization|decode vs prefill)" "$WORK/$1.log" | sed 's/^/    /'
}
(cd "$FIX" && sha256sum tokens.txt ./tiny-*.bin tiny-*/* > "$WORK/SHA256SUMS")

cat > "$WORK/README.tiny.md" <<EOF
# Test fixtures (generated — do not edit by hand)

Regenerate with \`tools/make_fixtures.sh [path/to/fp4rt]\` (see tools/README.md); the trained-model
fixture alone with \`tools/make_fixtures.sh --only trained\` (last section).

Made on $(date -u +%Y-%m-%d) with:

* fp4rt: \`$FPV\` (binary $FP4RT, repository $GITREV$GITDIRTY)
* \`fp4rt synth --config tiny --out tiny-bf16 --seed $SEED\`
* \`fp4rt quantize --in tiny-bf16 --out tiny-mixed --recipe nvidia-mixed --scale absmax\`
* \`fp4rt quantize --in tiny-bf16 --out tiny-w4a4 --recipe nvfp4-w4a4 --scale absmax\`
* reference logits: \`tools/reference_logits.py --model <ckpt> --tokens <tokens.txt> --out <name>.logits.bin
  --decode --decode-out <name>.decode.logits.bin --dump-json --threads 1\`, i.e. Hugging Face
  transformers' own \`Qwen3_5ForCausalLM\` in float32 on the CPU, eager attention, pure-torch GDN
  fallbacks (no flash-linear-attention / causal-conv1d), quantized weights dequantized to float32,
  FP8 / NVFP4-W4A4 activations quantize-dequantized at every quantized linear (semantics:
  tools/README.md).
* Python packages:
\`\`\`
$VERS
\`\`\`

## Files

| file | content |
|---|---|
| \`tiny-bf16/\`, \`tiny-mixed/\`, \`tiny-w4a4/\` | checkpoints exactly as fp4rt wrote them |
| \`tokens.txt\` | ${#toks[@]} token ids (< 512), comma-separated, one line |
| \`<name>.logits.bin\` | teacher-forced prefill logits (chunked GDN inside transformers), float32 little-endian, row-major [${#toks[@]}, 512], no header |
| \`<name>.decode.logits.bin\` | the same tokens fed one at a time through transformers' cache (recurrent GDN + conv update), same layout |
| \`<name>.logits.json\` | versions, token ids, sha256 of the .bin, per-row argmax / top-5 / logsumexp, decode-vs-prefill diff |
| \`tiny-mixed.kvfp8.logits.bin\` | tiny-mixed prefill with the FP8 KV cache emulated (\`--kv-fp8\`: K and V through E4M3 with k_scale / v_scale = 1), for \`fp4rt --kv fp8\` |

## Decode vs prefill inside transformers (the natural tolerance)

$(for n in tiny-bf16 tiny-mixed tiny-w4a4; do echo "* $n:"; summ "$n"; done)

With activation quantization (FP8 in tiny-mixed, NVFP4 in tiny-w4a4), a float32 rounding
difference anywhere upstream (chunked vs recurrent GDN, another summation order) can flip one
element onto the neighbouring FP8 / FP4 grid point; that flip then propagates through the GDN state
and attention.  So a runtime cannot be expected to match those two fixtures to float32 rounding;
compare them with a tolerance of the size of the decode-vs-prefill spread above (and top-1
agreement), while tiny-bf16 should match to ~1e-4.

## sha256

\`\`\`
$(cat "$WORK/SHA256SUMS")
\`\`\`
EOF
}

# The trained-model fixture: text, ids and logits installed into $FIX; README part in
# $WORK/README.trained.md (it starts with the line $MARK, where --only trained cuts the old README).
make_trained() {
if [ ! -f "$TRAINED_MODEL/model.safetensors" ]; then
    echo "make_fixtures: $TRAINED_MODEL/model.safetensors missing" >&2
    exit 2
fi
echo "== $TRAINED: held-out text"
"$PYTHON" "$ROOT/tools/corpus.py" --out "$WORK/corpus" > /dev/null
# The first TRAINED_TOKENS ids of the chapter; the text is their decoding and must encode back to
# exactly these ids (test_trained_fixture tokenizes it with fp4rt and compares).
"$PYTHON" - "$WORK/corpus/heldout.jsonl" "$TRAINED_MODEL/tokenizer.json" "$TRAINED_CHAPTER" \
    "$TRAINED_TOKENS" "$WORK/$TRAINED.text.txt" "$WORK/$TRAINED.tokens.txt" <<'PY'
import json, sys
from tokenizers import Tokenizer
src, tok_path, chapter, n, text_out, ids_out = sys.argv[1:]
n = int(n)
docs = [json.loads(l) for l in open(src, encoding="utf-8") if l.strip()]
doc = [d for d in docs if d["title"] == chapter]
if len(doc) != 1:
    sys.exit(f"make_fixtures: held-out chapter {chapter!r} not found in {src}")
tok = Tokenizer.from_file(tok_path)
ids = tok.encode(doc[0]["text"], add_special_tokens=False).ids
if len(ids) < n:
    sys.exit(f"make_fixtures: {chapter} has {len(ids)} tokens, fewer than {n}")
ids = ids[:n]
text = tok.decode(ids, skip_special_tokens=False)
if tok.encode(text, add_special_tokens=False).ids != ids:
    sys.exit(f"make_fixtures: the first {n} tokens of {chapter} do not round-trip through their text")
open(text_out, "w", encoding="utf-8", newline="").write(text)
open(ids_out, "w").write(",".join(map(str, ids)) + "\n")
print(f"{chapter}: {n} tokens, {len(text)} characters: {text[:60]!r}...")
PY
echo "== $TRAINED: reference logits"
"$PYTHON" "$ROOT/tools/reference_logits.py" --model "$TRAINED_MODEL" --tokens @"$WORK/$TRAINED.tokens.txt" \
    --out "$WORK/$TRAINED.logits.bin" --decode --dump-json --threads 1 2>&1 | grep -v '^\[transformers\]' \
    | tee "$WORK/$TRAINED.log"
echo "== install the $TRAINED fixture into $FIX"
mkdir -p "$FIX"
cp "$WORK/$TRAINED.text.txt" "$WORK/$TRAINED.tokens.txt" "$WORK/$TRAINED.logits.bin" "$FIX/"
# metadata with repository-relative paths; prints the perplexity of ids 1..n-1 under the logits
local ppl model_sha
ppl="$("$PYTHON" - "$WORK/$TRAINED.logits.json" "$FIX/$TRAINED.logits.json" "$TRAINED" \
    "$WORK/$TRAINED.logits.bin" <<'PY'
import json, sys
import numpy as np
src, dst, name, binp = sys.argv[1:]
m = json.load(open(src))
m["model"] = f"models/{name}"
m["out"] = f"tests/fixtures/{name}.logits.bin"
json.dump(m, open(dst, "w"), indent=1)
x = np.fromfile(binp, dtype="<f4").reshape(m["n_tokens"], m["vocab"]).astype(np.float64)
mx = x.max(axis=1)
lse = mx + np.log(np.exp(x - mx[:, None]).sum(axis=1))
ids = m["tokens"]
nll = [lse[t - 1] - x[t - 1, ids[t]] for t in range(1, len(ids))]
print(f"{np.exp(np.mean(nll)):.6f} over {len(nll)} tokens")
PY
)"
model_sha="$(sha256sum "$TRAINED_MODEL/model.safetensors" | cut -d' ' -f1)"
(cd "$FIX" && sha256sum "$TRAINED.text.txt" "$TRAINED.tokens.txt" "$TRAINED.logits.bin") \
    > "$WORK/SHA256SUMS.trained"
cat > "$WORK/README.trained.md" <<MD
$MARK

Made on $(date -u +%Y-%m-%d) with \`tools/make_fixtures.sh --only trained\` (also part of the full
run): Hugging Face transformers' logits of the committed trained model \`models/$TRAINED\`
(BF16 weights upcast to float32, the \`mtp.*\` tensors skipped; \`model.safetensors\` sha256
\`$model_sha\`)
on a fixed English text, by the same \`reference_logits.py\` as above
(\`--decode --dump-json --threads 1\`; Python packages as above). The text is the first
$TRAINED_TOKENS tokens of the held-out chapter "$TRAINED_CHAPTER" (\`tools/corpus.py\`: not in the
training set), tokenized by the model's own \`tokenizer.json\` (\`tokenizers\`, no special
tokens) and cut where it round-trips (decoding the ids and encoding the text gives the same ids).

| file | content |
|---|---|
| \`$TRAINED.text.txt\` | the text, UTF-8, no newline added at the end |
| \`$TRAINED.tokens.txt\` | its $TRAINED_TOKENS token ids (< 8192), comma-separated, one line |
| \`$TRAINED.logits.bin\` | teacher-forced prefill logits, float32 little-endian, row-major [$TRAINED_TOKENS, 8192], no header |
| \`$TRAINED.logits.json\` | as \`<name>.logits.json\` above (the decode logits are not stored, only their diff) |

Inside transformers (the natural tolerance):
$(grep -E "^decode vs prefill" "$WORK/$TRAINED.log" | sed 's/^/* /')

Perplexity of ids 1..$((TRAINED_TOKENS - 1)) under these logits: $ppl. Checked by
\`test_trained_fixture\` (CPU), \`test_trained_fixture_vulkan\` and \`test_perplexity_model\`
(tests/README.md).

\`\`\`
$(cat "$WORK/SHA256SUMS.trained")
\`\`\`
MD
}

MARK="## The trained model: $TRAINED"
[ "$ONLY" = trained ] || make_tiny
[ "$ONLY" = tiny ] || make_trained

echo "== README"
if [ "$ONLY" = trained ]; then
    # keep the tiny part of the README as it is
    [ -f "$FIX/README.md" ] || { echo "make_fixtures: --only trained: $FIX/README.md missing" >&2; exit 2; }
    awk -v m="$MARK" '$0 == m { exit } { print }' "$FIX/README.md" > "$WORK/README.tiny.md"
elif [ "$ONLY" = tiny ] && [ -f "$FIX/README.md" ]; then
    # keep the trained part of the README as it is
    awk -v m="$MARK" '$0 == m { p = 1 } p { print }' "$FIX/README.md" > "$WORK/README.trained.md"
fi
{
    # the tiny part without its trailing blank lines, a blank line, the trained part
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$WORK/README.tiny.md"
    if [ -s "$WORK/README.trained.md" ]; then
        echo
        cat "$WORK/README.trained.md"
    fi
} > "$FIX/README.md"
du -sh "$FIX"
echo "make_fixtures: done"
