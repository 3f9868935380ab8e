#!/usr/bin/env bash
# Checks a checkpoint written by tools/train_reference.py against fp4rt:
#   tools/check_reference_model.sh MODEL_DIR [path/to/fp4rt]      (PYTHON=... picks the venv)
# 1. fp4rt inspect loads it (MTP tensors listed as skipped);
# 2. fp4rt tokenize == Hugging Face tokenizers on a corpus sentence, and == transformers'
#    AutoTokenizer on the Qwen3.6 chat rendering of a conversation (apply_chat_template);
# 3. fp4rt logits (prefill and --decode) vs tools/reference_logits.py on those tokens:
#    max |diff| must stay below TOL (default 2e-3) and the argmax must agree on every row;
# 4. fp4rt run generates 24 tokens (greedy) and prints them.
# Exits non-zero with a one-line reason on the first failure.
set -euo pipefail
M=${1:?usage: check_reference_model.sh MODEL_DIR [FP4RT]}
FP4RT=${2:-build/fp4rt}
PY=${PYTHON:-/work/venv-train/bin/python}
TOL=${TOL:-2e-3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$FP4RT" inspect "$M" > "$tmp/inspect.txt" || { echo "check: fp4rt inspect $M failed" >&2; exit 1; }
grep -q "mtp.fc.weight" "$tmp/inspect.txt" || { echo "check: $M has no mtp.fc.weight" >&2; exit 1; }
tail -4 "$tmp/inspect.txt"

TEXT="And the LORD spake unto Moses, saying, Speak unto the children of Israel."
"$FP4RT" tokenize --model "$M" "$TEXT" | tail -1 | tr -d '[] ' > "$tmp/ids_fp4rt.txt"
"$PY" - "$M" "$TEXT" "$tmp" <<'EOF'
import os, sys
os.environ["USE_HUB_KERNELS"] = "0"
from tokenizers import Tokenizer
from transformers import AutoTokenizer
m, text, tmp = sys.argv[1:4]
ids = Tokenizer.from_file(os.path.join(m, "tokenizer.json")).encode(text, add_special_tokens=False).ids
got = open(os.path.join(tmp, "ids_fp4rt.txt")).read().strip()
if got != ",".join(map(str, ids)):
    sys.exit(f"check: fp4rt tokenize {got} != tokenizers {ids}")
tok = AutoTokenizer.from_pretrained(m)
msgs = [{"role": "system", "content": "You are a scribe."},
        {"role": "user", "content": "Who made the heaven and the earth?"}]
chat = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
open(os.path.join(tmp, "chat.txt"), "w").write(chat)
cids = tok(chat, add_special_tokens=False)["input_ids"]
open(os.path.join(tmp, "chat_ids.txt"), "w").write(",".join(map(str, cids)))
open(os.path.join(tmp, "ids.txt"), "w").write(",".join(map(str, ids + cids)))
print(f"tokenizer: {len(ids)} + {len(cids)} chat ids agree with tokenizers / transformers")
EOF
"$FP4RT" tokenize --model "$M" "$(cat "$tmp/chat.txt")
" | tail -1 | tr -d '[] ' > "$tmp/chat_fp4rt.txt"
cmp -s <(cat "$tmp/chat_ids.txt") <(tr -d '\n' < "$tmp/chat_fp4rt.txt") ||
    { echo "check: fp4rt tokenize of the chat rendering differs from transformers" >&2; exit 1; }

"$PY" "$here/reference_logits.py" --model "$M" --tokens @"$tmp/ids.txt" --out "$tmp/ref.bin" --threads 1 \
    > "$tmp/ref.log" 2>&1 || { echo "check: reference_logits.py failed (see below)" >&2; tail -5 "$tmp/ref.log" >&2; exit 1; }
"$FP4RT" logits --model "$M" --tokens @"$tmp/ids.txt" --out "$tmp/fp4rt.bin" --threads 1 2>/dev/null
"$FP4RT" logits --model "$M" --tokens @"$tmp/ids.txt" --out "$tmp/fp4rt_dec.bin" --decode --threads 1 2>/dev/null
"$PY" - "$M" "$tmp" "$TOL" <<'EOF'
import json, os, sys
import numpy as np
m, tmp, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
v = json.load(open(os.path.join(m, "config.json")))["text_config"]["vocab_size"]
ref = np.fromfile(os.path.join(tmp, "ref.bin"), np.float32).reshape(-1, v)
for name in ("fp4rt", "fp4rt_dec"):
    got = np.fromfile(os.path.join(tmp, name + ".bin"), np.float32).reshape(-1, v)
    d = float(np.abs(got - ref).max())
    agree = int((got.argmax(1) == ref.argmax(1)).sum())
    print(f"logits {name}: {ref.shape[0]} rows, max|diff| {d:.2e} (max|ref| {float(np.abs(ref).max()):.2f}), "
          f"argmax agrees on {agree}/{ref.shape[0]}")
    if d > tol or agree != ref.shape[0]:
        sys.exit(f"check: {name} logits differ from transformers beyond {tol}")
EOF
"$FP4RT" run --model "$M" --prompt "And it came to pass" -n 24 --raw --greedy --threads 1 2>/dev/null
echo
echo "check: $M OK"
