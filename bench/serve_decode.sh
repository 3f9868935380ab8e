#!/usr/bin/env bash
# Streaming overhead of fp4rt serve (issue 17 target: server decode tokens/s
# within 5% of `fp4rt run`), measured in one run: rounds that alternate
# `fp4rt run` (decode tokens/s from its stats line) and a streamed
# /v1/completions of the same greedy prompt and token count (ignore_eos) on a
# server started here with tests/server/serve_lib.sh. The server's figure is
# the client's: tokens after the first / time from the first chunk to the
# last; the engine's own (/metrics) is shown beside it. Prints a row per round
# and the median of the per-round ratios (server / run): the machine being
# shared, rounds are short and alternate so that both see the same load.
# Usage: bench/serve_decode.sh [fp4rt binary] [model dir] [tokens] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fp4rt}
n=${3:-256}
rounds=${4:-5}
prompt="And it came to pass"
tmp=$(mktemp -d)
fail=0
. tests/server/serve_lib.sh
serve_model=${2:-models/qwen35-kjv-10m}
trap 'if [ -n "${spid:-}" ]; then kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
serve_start decode --parallel 1
echo "model $serve_model, greedy, prompt \"$prompt\", $n tokens, $rounds rounds; $(grep -o 'device .*' "$slog" | head -n 1)"
echo "| round | fp4rt run decode tok/s | serve, client-side tok/s | serve, engine tok/s | serve / run |"
echo "|---|---|---|---|---|"
ratios=()
for r in $(seq "$rounds"); do
    run=$("$bin" run --model "$serve_model" --raw --greedy --prompt "$prompt" -n "$n" 2>&1 >/dev/null |
        sed -n 's/.*decode \([0-9.]*\) tokens\/s.*/\1/p')
    read -r client engine < <(python3 - "$port" "$prompt" "$n" <<'PY'
import json, sys, time, urllib.request
port, prompt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"prompt": prompt, "max_tokens": n, "temperature": 0, "ignore_eos": True, "stream": True}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                             headers={"Content-Type": "application/json"})
times = []
with urllib.request.urlopen(req) as r:
    for line in r:
        if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["text"]:
            times.append(time.perf_counter())
m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
eng = [l.split()[1] for l in m.splitlines() if l.startswith("fp4rt_decode_tokens_per_second ")][0]
print(f"{(len(times) - 1) / (times[-1] - times[0]):.2f} {float(eng):.2f}")
PY
    )
    ratio=$(python3 -c "print(f'{$client / $run:.3f}')")
    echo "| $r | $run | $client | $engine | $ratio |"
    ratios+=("$ratio")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
echo "median serve / run: $(median "${ratios[@]}") (min $(printf '%s\n' "${ratios[@]}" | sort -g | head -n 1), max $(printf '%s\n' "${ratios[@]}" | sort -g | tail -n 1))"
