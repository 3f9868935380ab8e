# Shared by the fp4rt serve test scripts (sourced after tests/cli/cli_lib.sh's
# cli_setup): servers on a free loopback port, JSON reading, HTTP calls.
#   serve_start NAME ARGS...  starts `fp4rt serve --port 0 ARGS` with its stderr in
#                             $tmp/NAME.log; sets $port and $spid (fails the
#                             script when it does not listen within 60 s)
#   serve_stop                SIGTERM, waits; $stop_rc is the exit status
#   serve_cleanup_on_exit     an EXIT trap that stops a running server and removes
#                             $tmp (for scripts without cli_setup, e.g. bench/)
#   jget EXPR                 python expression over d (the JSON on stdin)
#   http METHOD PATH [BODY]   curl with $auth; body to $tmp/body, prints the status
#   serve_venv                $venv: a virtualenv with openai and selenium from PyPI
#                             (FP4RT_VENV, default $FP4RT_TMP/../serve-venv), made
#                             once under a lock (tests may run in parallel); exits
#                             77 (skipped) when it cannot be made (offline)
serve_model=${FP4RT_SERVE_MODEL:-models/qwen35-kjv-10m}
auth=()
serve_start() {
    local name=$1
    shift
    slog=$tmp/$name.log
    "$bin" serve --model "$serve_model" --port 0 "$@" 2>"$slog" &
    spid=$!
    port=""
    for _ in $(seq 600); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$slog" 2>/dev/null | sed 's/.*://' || true)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "FAIL: the server did not start:" >&2
        cat "$slog" >&2
        exit 1
    fi
    base=http://127.0.0.1:$port
}
serve_stop() {
    kill -TERM "$spid"
    wait "$spid"
    stop_rc=$?
    if [ "$fail" -gt 0 ]; then # the server's side of the failures
        echo "--- $slog (last lines)" >&2
        tail -n 30 "$slog" >&2
    fi
}
serve_cleanup_on_exit() {
    trap 'if [ -n "${spid:-}" ]; then kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
}
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
http() {
    local method=$1 path=$2
    shift 2
    if [ $# -gt 0 ]; then
        curl -s -o "$tmp/body" -w '%{http_code}' -X "$method" "${auth[@]}" -H 'Content-Type: application/json' \
            --data-binary "$1" "$base$path"
    else
        curl -s -o "$tmp/body" -w '%{http_code}' -X "$method" "${auth[@]}" "$base$path"
    fi
}
serve_venv() {
    venv=${FP4RT_VENV:-${FP4RT_TMP:-/tmp}/../serve-venv}
    mkdir -p "$(dirname "$venv")"
    (
        flock 9
        "$venv/bin/python" -c 'import openai, selenium' 2>/dev/null && exit 0
        python3 -m venv "$venv" && "$venv/bin/pip" install -q openai selenium
    ) 9>"$venv.lock" >"$tmp/pip.log" 2>&1 || {
        echo "SKIP: cannot install openai and selenium into $venv: $(tail -n 1 "$tmp/pip.log")"
        exit 77
    }
}
