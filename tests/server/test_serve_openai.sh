#!/usr/bin/env bash
# fp4rt serve with the official openai Python client (issue 17), in a virtualenv
# this script creates under the build directory (FP4RT_VENV, default
# $FP4RT_TMP/../serve-venv) with pip from PyPI. Mode "api": chat, streaming,
# reasoning, tools, completions, errors; mode "tools": tool_choice "required"
# and a named function; mode "load": FP4RT_LOAD_CLIENTS
# streaming clients (16) for FP4RT_LOAD_SECONDS (15). Exits 77 (skipped) when
# the client cannot be installed (no network, no python3-venv).
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
mode=${1:-api}
cli_setup "test_serve_openai_$mode"
serve_venv
key=k-$$
if [ "$mode" = load ]; then
    serve_start load --parallel 4 --queue 32 --api-key "$key" --ctx 256
    "$venv/bin/python" "$(dirname "$0")/serve_openai.py" load "$base" "$key" "$spid" \
        "${FP4RT_LOAD_CLIENTS:-16}" "${FP4RT_LOAD_SECONDS:-15}"
elif [ "$mode" = tools ]; then
    serve_start tools --parallel 1 --api-key "$key" --ctx 1024
    "$venv/bin/python" "$(dirname "$0")/serve_openai.py" tools "$base" "$key"
else
    serve_start api --parallel 2 --api-key "$key" --ctx 1024
    "$venv/bin/python" "$(dirname "$0")/serve_openai.py" api "$base" "$key"
fi
check '[ $? = 0 ]' "serve_openai.py $mode"
serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM: exit $stop_rc"
cli_summary "test_serve_openai_$mode"
