#!/usr/bin/env bash
# Streaming overhead of fp4rt serve (issue 17 target: server decode tokens/s
# within 5% of `fp4rt run`), measured in one run: alternating rounds of
# `fp4rt run` (its stats line) and a streamed /v1/completions of the same
# greedy prompt and length on a server started here (decode tokens/s as the
# client sees them: tokens after the first / time from the first chunk to the
# last; and the engine's own figure from /metrics).
# The machine being shared, compare the medians and bests of many short alternating rounds.
# Usage: bench/serve_decode.sh [fp4rt binary] [model dir] [tokens] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fp4rt}
model=${2:-models/qwen35-kjv-10m}
n=${3:-256}
rounds=${4:-3}
prompt="And it came to pass"
log=$(mktemp)
"$bin" serve --model "$model" --port 0 --parallel 1 2>"$log" &
spid=$!
trap 'kill -TERM $spid 2>/dev/null; wait $spid 2>/dev/null; rm -f "$log"' EXIT
port=""
for _ in $(seq 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | sed 's/.*://') && [ -n "$port" ] && break
    sleep 0.1
done
echo "model $model, greedy, prompt \"$prompt\", $n tokens; $(grep -o 'device .*' "$log" | head -n 1)"
echo "| round | fp4rt run decode tok/s | serve, client-side tok/s | serve, engine tok/s | client / run |"
echo "|---|---|---|---|---|"
runs=() clients=() engines=()
for r in $(seq "$rounds"); do
    run=$("$bin" run --model "$model" --raw --greedy --prompt "$prompt" -n "$n" 2>&1 >/dev/null |
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
print(f"{(len(times) - 1) / (times[-1] - times[0]):.1f} {float(eng):.1f}")
PY
    )
    echo "| $r | $run | $client | $engine | $(python3 -c "print(f'{$client / $run * 100:.1f}%')") |"
    runs+=("$run") clients+=("$client") engines+=("$engine")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
mr=$(median "${runs[@]}") mc=$(median "${clients[@]}") me=$(median "${engines[@]}")
echo "| median | $mr | $mc | $me | $(python3 -c "print(f'{$mc / $mr * 100:.1f}%')") |"
best() { printf '%s\n' "$@" | sort -g | tail -n 1; }
br=$(best "${runs[@]}") bc=$(best "${clients[@]}") be=$(best "${engines[@]}")
echo "| best | $br | $bc | $be | $(python3 -c "print(f'{$bc / $br * 100:.1f}%')") |"
