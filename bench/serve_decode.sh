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
# Beside the wall-clock figures, CPU time per decoded token (user + system),
# which another process's load disturbs far less: `fp4rt run`'s process
# (minus a 1-token run's, for loading and prefill) and the server process's
# over the request (every thread: the slot, the pool, the HTTP connection;
# minus a 1-token request's, for the prefill).
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
serve_cleanup_on_exit
serve_start decode --parallel 1
echo "model $serve_model, greedy, prompt \"$prompt\", $n tokens, $rounds rounds; $(grep -o 'device .*' "$slog" | head -n 1)"
# CPU seconds (user + system) of a command, its stderr in $tmp/err
cpu_of() { /usr/bin/time -f "cpu %U %S" "$@" 2>"$tmp/err" >/dev/null; awk '/^cpu /{print $2 + $3}' "$tmp/err"; }
srv_cpu() { awk '{print ($14 + $15) / 100}' "/proc/$spid/stat"; } # clock ticks: 100 per second on Linux
base_cpu=$(for _ in 1 2 3; do cpu_of "$bin" run --model "$serve_model" --raw --greedy --prompt "$prompt" -n 1; done | sort -g | sed -n 2p)
one_req() { # the server's CPU seconds for a 1-token request of the prompt
    local a b
    a=$(srv_cpu)
    curl -s "$base/v1/completions" -d "{\"prompt\": \"$prompt\", \"max_tokens\": 1, \"temperature\": 0}" >/dev/null
    b=$(srv_cpu)
    python3 -c "print($b - $a)"
}
srv_base=$(for _ in 1 2 3; do one_req; done | sort -g | sed -n 2p)
echo "| round | fp4rt run decode tok/s | serve, client-side tok/s | serve, engine tok/s | serve / run | run CPU ms/token | serve CPU ms/token | CPU serve / run |"
echo "|---|---|---|---|---|---|---|---|"
ratios=() cpu_ratios=()
for r in $(seq "$rounds"); do
    run_cpu=$(cpu_of "$bin" run --model "$serve_model" --raw --greedy --prompt "$prompt" -n "$n")
    run=$(sed -n 's/.*decode \([0-9.]*\) tokens\/s.*/\1/p' "$tmp/err")
    c0=$(srv_cpu)
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
    c1=$(srv_cpu)
    read -r ratio rc sc cr < <(python3 -c "
rc = ($run_cpu - $base_cpu) / ($n - 1) * 1e3
sc = ($c1 - $c0 - $srv_base) / ($n - 1) * 1e3
print(f'{$client / $run:.3f} {rc:.3f} {sc:.3f} {sc / rc if rc > 0 else 0:.3f}')")
    echo "| $r | $run | $client | $engine | $ratio | $rc | $sc | $cr |"
    ratios+=("$ratio") cpu_ratios+=("$cr")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
range() { echo "min $(printf '%s\n' "$@" | sort -g | head -n 1), max $(printf '%s\n' "$@" | sort -g | tail -n 1)"; }
echo "median serve / run, decode tok/s: $(median "${ratios[@]}") ($(range "${ratios[@]}"))"
echo "median serve / run, CPU per token: $(median "${cpu_ratios[@]}") ($(range "${cpu_ratios[@]}")); load average $(cut -d' ' -f1-3 /proc/loadavg)"
