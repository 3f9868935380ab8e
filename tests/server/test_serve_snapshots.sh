#!/usr/bin/env bash
# fp4rt serve's prefix reuse through state snapshots (issue 17 item 4): with
# thinking on, Qwen3.6's template drops turn 1's reasoning when it renders turn
# 2, so turn 2 does not extend what the slot holds; the slot resumes from its
# snapshot at turn 1's last "<|im_start|>" (rounded down to a multiple of 64)
# instead of starting cold: cached_tokens says so, /metrics counts the hit, and
# the reply is bit-identical to a cold run of the same prompt. A prompt that
# shares only a long prefix with an earlier one resumes from a snapshot taken
# every --snapshot-every tokens. --snapshot-mb bounds the memory.
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
cli_setup test_serve_snapshots

serve_start snap --parallel 1 --ctx 1024 --chunk 64 --snapshot-every 128

# a system prompt long enough for snapshots (the trained model's own text)
sys_text=$(head -c 1400 tests/fixtures/kjv-genesis-50.txt | tr '\n"' '  ')
kw='"temperature": 0, "max_tokens": 24, "chat_template_kwargs": {"enable_thinking": true}'
m1="[{\"role\": \"system\", \"content\": \"$sys_text\"}, {\"role\": \"user\", \"content\": \"Who wept?\"}]"
code=$(http POST /v1/chat/completions "{\"messages\": $m1, $kw}")
check '[ "$code" = 200 ]' "turn 1: $code $(head -c 300 "$tmp/body")"
p1=$(jget 'd["usage"]["prompt_tokens"]' <"$tmp/body")
a1=$(jget 'json.dumps(d["choices"][0]["message"]["content"] or "")' <"$tmp/body")
r1=$(jget 'json.dumps(d["choices"][0]["message"].get("reasoning_content") or "")' <"$tmp/body")
m2="[{\"role\": \"system\", \"content\": \"$sys_text\"}, {\"role\": \"user\", \"content\": \"Who wept?\"}, {\"role\": \"assistant\", \"content\": $a1, \"reasoning_content\": $r1}, {\"role\": \"user\", \"content\": \"And then?\"}]"
code=$(http POST /v1/chat/completions "{\"messages\": $m2, $kw}")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "${cached:-0}" -gt 0 ] && [ $((cached % 64)) = 0 ] && [ "$cached" -le "$p1" ] && [ $((p1 - cached)) -lt 64 ]' \
    "turn 2: cached_tokens ${cached:-?} of turn 1's $p1 prompt tokens (a multiple of 64 within 64 of it)"
echo "turn 1: $p1 prompt tokens; turn 2 resumed at ${cached:-?} ($(jget 'd["usage"]["prompt_tokens"]' <"$tmp/body") prompt tokens)"
warm=$(jget 'json.dumps(d["choices"][0]["message"])' <"$tmp/body")
# the same turn cold: after an unrelated prompt took the slot (and dropped its snapshots)
http POST /tokenize "{\"messages\": $m2, \"chat_template_kwargs\": {\"enable_thinking\": true}}" >/dev/null
ids2=$(jget 'd["tokens"]' <"$tmp/body")
http POST /v1/completions '{"prompt": "Unrelated", "max_tokens": 2}' >/dev/null
code=$(http POST /v1/chat/completions "{\"messages\": $m2, $kw}")
v=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
cold=$(jget 'json.dumps(d["choices"][0]["message"])' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v" = 0 ] && [ "$warm" = "$cold" ]' "turn 2 warm $warm != cold $cold (cached $v)"

# a prompt sharing a long prefix: resumes from a snapshot every 128 tokens
long=$(python3 -c 'import json; print(json.dumps(list(range(100, 400))))')
code=$(http POST /v1/completions "{\"prompt\": $long, \"max_tokens\": 4, \"temperature\": 0}")
check '[ "$code" = 200 ]' "long prompt: $code"
other=$(python3 -c 'import json; print(json.dumps(list(range(100, 370)) + [5, 6, 7, 8]))')
code=$(http POST /v1/completions "{\"prompt\": $other, \"max_tokens\": 4, \"temperature\": 0}")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$cached" = 256 ]' "shared prefix of 270 tokens: cached_tokens ${cached:-?}, expected 256"
wtext=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
http POST /v1/completions '{"prompt": "Unrelated", "max_tokens": 2}' >/dev/null
http POST /v1/completions "{\"prompt\": $other, \"max_tokens\": 4, \"temperature\": 0}" >/dev/null
ctext=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
check '[ "$wtext" = "$ctext" ]' "shared prefix: warm [$wtext] != cold [$ctext]"

code=$(http GET /metrics)
hits=$(sed -n 's/^fp4rt_state_snapshot_hits_total \([0-9]*\)/\1/p' "$tmp/body")
snaps=$(sed -n 's/^fp4rt_state_snapshots_total \([0-9]*\)/\1/p' "$tmp/body")
check '[ "${hits:-0}" -ge 2 ] && [ "${snaps:-0}" -ge 3 ]' "metrics: ${snaps:-?} snapshots, ${hits:-?} hits"
serve_stop
check '[ "$stop_rc" = 0 ]' "exit status $stop_rc"

# without snapshots (--snapshot-mb 0) turn 2 starts cold: the reuse above came from them
serve_start off --parallel 1 --ctx 1024 --chunk 64 --snapshot-mb 0
http POST /v1/chat/completions "{\"messages\": $m1, $kw}" >/dev/null
code=$(http POST /v1/chat/completions "{\"messages\": $m2, $kw}")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
v=$(jget 'json.dumps(d["choices"][0]["message"])' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$cached" = 0 ] && [ "$v" = "$warm" ]' "--snapshot-mb 0: cached ${cached:-?}, reply $v"
serve_stop
cli_summary test_serve_snapshots
