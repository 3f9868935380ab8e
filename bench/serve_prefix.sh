#!/usr/bin/env bash
# Second-turn time-to-first-token of fp4rt serve (issue 17 target: with a
# 2,000-token conversation and a short follow-up, >= 95% of the prompt cached):
# turn 1 (about 2,000 tokens), turn 2 on the same slot (reuses what it holds),
# turn 2 again after another prompt took the slot (cold). Twice: thinking off
# with preserve_thinking (the template renders turn 1 as it was generated:
# turn 2 extends what the slot holds), and thinking on (the template drops turn
# 1's reasoning: turn 2 resumes from the slot's state snapshot at turn 1's last
# "<|im_start|>", rounded down to a multiple of 64).
# Usage: bench/serve_prefix.sh [fp4rt binary] [model dir]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fp4rt}
tmp=$(mktemp -d)
fail=0
. tests/server/serve_lib.sh
serve_model=${2:-models/qwen35-kjv-10m}
serve_cleanup_on_exit
serve_start prefix --ctx 4096
python3 - "$port" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"

def chat(msgs, n=20, think=False):
    kw = {"enable_thinking": True} if think else {"enable_thinking": False, "preserve_thinking": True}
    body = {"messages": msgs, "max_tokens": n, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "chat_template_kwargs": kw}
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0, ttft, text, reasoning, usage = time.perf_counter(), None, "", "", None
    with urllib.request.urlopen(req) as r:
        for line in r:
            if not line.startswith(b"data: {"):
                continue
            d = json.loads(line[6:])
            usage = d.get("usage") or usage
            delta = d["choices"][0]["delta"] if d["choices"] else {}
            if delta.get("content") or delta.get("reasoning_content"):
                ttft = ttft or time.perf_counter() - t0
                text += delta.get("content") or ""
                reasoning += delta.get("reasoning_content") or ""
    return ttft, text, reasoning, usage

m1 = [{"role": "user", "content": " ".join(
    ["And the LORD spake unto Moses, saying, Speak unto the children of Israel."] * 125)}]
for think in (False, True):
    t1, a1, r1, u1 = chat(m1, think=think)
    m2 = m1 + [{"role": "assistant", "content": a1, "reasoning_content": r1},
               {"role": "user", "content": " ".join(["Who begat Enoch, and who begat Methuselah?"] * 5)}]
    t2, a2, r2, u2 = chat(m2, think=think)
    chat([{"role": "user", "content": "unrelated"}], 2)
    t3, a3, r3, u3 = chat(m2, think=think)
    c2 = u2["prompt_tokens_details"]["cached_tokens"]
    print("thinking on (turn 2 from a state snapshot)" if think else "thinking off, preserve_thinking")
    print("| turn | prompt tokens | cached | evaluated | first token |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {u1['prompt_tokens']} | 0 | {u1['prompt_tokens']} | {t1 * 1000:.0f} ms |")
    print(f"| 2, same slot | {u2['prompt_tokens']} | {c2} ({100 * c2 / u2['prompt_tokens']:.1f}%) | "
          f"{u2['prompt_tokens'] - c2} | {t2 * 1000:.0f} ms |")
    print(f"| 2, cold | {u3['prompt_tokens']} | {u3['prompt_tokens_details']['cached_tokens']} | "
          f"{u3['prompt_tokens']} | {t3 * 1000:.0f} ms |")
    print(f"turn 2's answer, warm and cold: {'identical' if (a2, r2) == (a3, r3) else 'DIFFERENT'}")
PY
