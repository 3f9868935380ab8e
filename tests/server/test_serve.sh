#!/usr/bin/env bash
# fp4rt serve with curl (issue 17): every endpoint, the API key, greedy output
# identical to `fp4rt run`, a conversation whose second turn reuses the slot's
# tokens (cached_tokens) and matches a cold run, streaming (SSE, [DONE], usage),
# stop strings, errors in OpenAI's shape, body / JSON-depth / context limits, a
# full queue (503 + Retry-After), a client that disconnects (its slot is freed
# within moments), a slow client timed out, /metrics, SIGTERM / SIGINT (exit 0).
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
cli_setup test_serve
key=sekrit-123

# -- usage: --model required, ranges checked, --help
"$bin" serve >/dev/null 2>"$tmp/err"
rc=$?
check '[ "$rc" = 2 ] && grep -q "serve: --model DIR is required" "$tmp/err"' "no --model: rc $rc"
"$bin" serve --model "$serve_model" --port 70000 >/dev/null 2>"$tmp/err"
rc=$?
check '[ "$rc" = 2 ] && grep -q -- "--port" "$tmp/err"' "--port 70000: rc $rc"
"$bin" serve --help >"$tmp/out" 2>&1
rc=$?
check '[ "$rc" = 0 ] && grep -q -- "--api-key KEY" "$tmp/out"' "--help: rc $rc"

serve_start main --parallel 2 --queue 4 --api-key "$key" --max-body 65536 --ctx 512 --chunk 32 --timeout 2

# -- the port taken: one error line naming it, exit 1
"$bin" serve --model "$serve_model" --port "$port" >"$tmp/out" 2>"$tmp/err"
rc=$?
check '[ "$rc" = 1 ] && grep -q "^fp4rt: error: --port $port: cannot listen on 127.0.0.1" "$tmp/err"' "port in use: rc $rc $(cat "$tmp/err")"

# -- the API key: 401 in OpenAI's shape without it or with a wrong one; / and /health are open
code=$(http GET /v1/models)
v=$(jget 'd["error"]["type"], d["error"]["code"]' <"$tmp/body")
check '[ "$code" = 401 ] && [ "$v" = "authentication_error invalid_api_key" ]' "no key: $code $v"
auth=(-H "Authorization: Bearer wrong")
code=$(http GET /v1/models)
check '[ "$code" = 401 ]' "wrong key: $code"
auth=()
code=$(http GET /health)
v1=$(jget 'd["status"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v1" = ok ]' "health: $code"
code=$(http GET /)
check '[ "$code" = 200 ] && grep -q "<title>" "$tmp/body"' "chat page: $code"
auth=(-H "Authorization: Bearer $key")

# -- /v1/models
code=$(http GET /v1/models)
v2=$(jget 'd["data"][0]["id"], d["data"][0]["max_model_len"], d["data"][0]["numerics"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v2" = "qwen35-kjv-10m 512 default" ]' "models: $code $(cat "$tmp/body")"
check 'grep -q "numerics default (FMA linears); listening on" "$slog"' "serve says its numerics mode: $(grep listening "$slog")"

# -- greedy completion = fp4rt run --raw --greedy
prompt="And it came to pass"
want=$("$bin" run --model "$serve_model" --raw --greedy --prompt "$prompt" -n 16 2>/dev/null)
code=$(http POST /v1/completions "{\"prompt\": \"$prompt\", \"max_tokens\": 16, \"temperature\": 0}")
got=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$got" = "$want" ] && [ -n "$got" ]' "completion [$got] != run [$want]"
check '[ "$(jget "d[\"object\"], d[\"choices\"][0][\"finish_reason\"], d[\"usage\"][\"completion_tokens\"]" <"$tmp/body")" = "text_completion length 16" ]' "completion shape: $(cat "$tmp/body")"
n_prompt=$(jget 'd["usage"]["prompt_tokens"]' <"$tmp/body")
# the prompt as ids gives the same text
ids=$(http POST /tokenize "{\"prompt\": \"$prompt\"}" >/dev/null; jget 'd["tokens"]' <"$tmp/body")
code=$(http POST /v1/completions "{\"prompt\": $ids, \"max_tokens\": 16, \"temperature\": 0}")
v3=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v3" = "$want" ]' "completion from ids: $(cat "$tmp/body")"
code=$(http POST /detokenize "{\"tokens\": $ids}")
v4=$(jget 'd["prompt"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v4" = "$prompt" ]' "detokenize: $(cat "$tmp/body")"

# -- a prompt of several prefill chunks (the slot evaluates them one call each) = fp4rt run
long_prompt=$(for i in $(seq 8); do printf 'And the LORD spake unto Moses, saying, '; done)
want_long=$("$bin" run --model "$serve_model" --raw --greedy --prompt "$long_prompt" -n 8 --ctx 512 --chunk 32 2>/dev/null)
code=$(http POST /v1/completions "{\"prompt\": \"$long_prompt\", \"max_tokens\": 8, \"temperature\": 0}")
v=$(jget 'd["choices"][0]["text"], d["usage"]["prompt_tokens"] > 64' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v" = "$want_long True" ]' "long prompt [$v] != run [$want_long]"

# -- a continuation reuses the slot (cached_tokens) and equals a cold run
http POST /v1/completions "{\"prompt\": \"$prompt\", \"max_tokens\": 8, \"temperature\": 0}" >/dev/null
t1=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
held=$(jget 'd["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"]' <"$tmp/body")
p2=$(printf '%s%s, and' "$prompt" "$t1")
body=$(python3 -c 'import json,sys; print(json.dumps({"prompt": sys.argv[1], "max_tokens": 8, "temperature": 0}))' "$p2")
code=$(http POST /v1/completions "$body")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$cached" = "$held" ]' "turn 2: cached_tokens $cached, the slot held $held"
cold=$("$bin" run --model "$serve_model" --raw --greedy --prompt "$p2" -n 8 2>/dev/null)
v5=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
check '[ "$v5" = "$cold" ]' "turn 2 differs from a cold run [$cold]: $(cat "$tmp/body")"

# -- chat: a two-turn conversation (thinking off, preserve_thinking: the template
#    renders turn 1 as it was generated, so turn 2 evaluates only its new tokens)
kw='"temperature": 0, "max_tokens": 12, "chat_template_kwargs": {"enable_thinking": false, "preserve_thinking": true}'
code=$(http POST /v1/chat/completions "{\"messages\": [{\"role\": \"user\", \"content\": \"Who begat Enoch?\"}], $kw}")
check '[ "$code" = 200 ] && [ "$(jget "d[\"object\"], d[\"choices\"][0][\"message\"][\"role\"], d[\"choices\"][0][\"message\"][\"reasoning_content\"]" <"$tmp/body")" = "chat.completion assistant None" ]' "chat: $(cat "$tmp/body")"
a1=$(jget 'json.dumps(d["choices"][0]["message"]["content"])' <"$tmp/body")
held=$(jget 'd["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"]' <"$tmp/body")
msgs2="[{\"role\": \"user\", \"content\": \"Who begat Enoch?\"}, {\"role\": \"assistant\", \"content\": $a1, \"reasoning_content\": \"\"}, {\"role\": \"user\", \"content\": \"And then?\"}]"
code=$(http POST /v1/chat/completions "{\"messages\": $msgs2, $kw}")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$cached" = "$held" ]' "chat turn 2: cached_tokens $cached, the slot held $held"
warm=$(jget 'd["choices"][0]["message"]["content"]' <"$tmp/body")
# the same turn 2 cold: its rendered prompt through /v1/completions after another prompt took the slot
http POST /tokenize "{\"messages\": $msgs2, \"chat_template_kwargs\": {\"enable_thinking\": false, \"preserve_thinking\": true}}" >/dev/null
ids2=$(jget 'd["tokens"]' <"$tmp/body")
http POST /v1/completions '{"prompt": "Unrelated", "max_tokens": 2}' >/dev/null
http POST /v1/completions '{"prompt": "Unrelated too", "max_tokens": 2}' >/dev/null
code=$(http POST /v1/completions "{\"prompt\": $ids2, \"max_tokens\": 12, \"temperature\": 0}")
v6=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
v7=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
check '[ "$v6" = 0 ] && [ "$v7" = "$warm" ]' "chat turn 2 warm [$warm] != cold: $(cat "$tmp/body")"

# -- thinking on: reasoning_content
code=$(http POST /v1/chat/completions '{"messages": [{"role": "user", "content": "Who begat Enoch?"}], "max_tokens": 6, "temperature": 0}')
check '[ "$code" = 200 ] && [ -n "$(jget "d[\"choices\"][0][\"message\"][\"reasoning_content\"] or \"\"" <"$tmp/body")" ]' "thinking on: no reasoning_content: $(cat "$tmp/body")"

# -- streaming: role chunk, deltas, finish_reason, usage chunk, [DONE]; the text = the non-streamed one
req='{"messages": [{"role": "user", "content": "Who begat Enoch?"}], "max_tokens": 10, "temperature": 0, "chat_template_kwargs": {"enable_thinking": false}'
http POST /v1/chat/completions "$req}" >/dev/null
plain=$(jget 'd["choices"][0]["message"]["content"]' <"$tmp/body")
curl -sN "${auth[@]}" "$base/v1/chat/completions" -d "$req, \"stream\": true, \"stream_options\": {\"include_usage\": true}}" >"$tmp/sse"
check '[ "$(tail -n 2 "$tmp/sse" | head -n 1)" = "data: [DONE]" ]' "stream does not end with [DONE]: $(tail -c 300 "$tmp/sse")"
summary=$(grep '^data: {' "$tmp/sse" | sed 's/^data: //' | python3 -c '
import json, sys
ch = [json.loads(l) for l in sys.stdin]
text = "".join(c["choices"][0]["delta"].get("content") or "" for c in ch if c["choices"])
fin = [c["choices"][0]["finish_reason"] for c in ch if c["choices"] and c["choices"][0]["finish_reason"]]
print(json.dumps([ch[0]["choices"][0]["delta"].get("role"), ch[0]["object"], fin, ch[-1]["choices"], ch[-1]["usage"]["completion_tokens"], text]))')
check '[ "$summary" = "$(python3 -c "import json,sys; print(json.dumps([\"assistant\", \"chat.completion.chunk\", [\"length\"], [], 10, sys.argv[1]]))" "$plain")" ]' "stream summary $summary (plain [$plain])"
curl -sN "${auth[@]}" "$base/v1/completions" -d "{\"prompt\": \"$prompt\", \"max_tokens\": 16, \"temperature\": 0, \"stream\": true}" >"$tmp/sse2"
stext=$(grep '^data: {' "$tmp/sse2" | sed 's/^data: //' | python3 -c 'import json,sys; print("".join(json.loads(l)["choices"][0]["text"] for l in sys.stdin))')
check '[ "$stext" = "$want" ] && grep -q "^data: \[DONE\]" "$tmp/sse2"' "streamed completion [$stext] != [$want]"

# -- stop strings: the text ends before the first stop string, finish_reason stop
stop_word=$(echo "$want" | awk '{print $3}')
code=$(http POST /v1/completions "{\"prompt\": \"$prompt\", \"max_tokens\": 16, \"temperature\": 0, \"stop\": [\"$stop_word\"]}")
check '[ "$code" = 200 ] && [ "$(jget "d[\"choices\"][0][\"finish_reason\"]" <"$tmp/body")" = stop ] && [ "$(jget "d[\"choices\"][0][\"text\"]" <"$tmp/body")" = "${want%%"$stop_word"*}" ]' "stop [$stop_word]: $(cat "$tmp/body")"

# -- sampling fields are accepted; a seed repeats its tokens
sreq='{"prompt": "In the beginning", "max_tokens": 12, "temperature": 0.9, "top_p": 0.95, "top_k": 40, "min_p": 0.02, "presence_penalty": 0.5, "frequency_penalty": 0.3, "repetition_penalty": 1.1, "seed": 42}'
http POST /v1/completions "$sreq" >/dev/null
s1=$(jget 'd["choices"][0]["text"]' <"$tmp/body")
code=$(http POST /v1/completions "$sreq")
check '[ "$code" = 200 ] && [ -n "$s1" ] && [ "$(jget "d[\"choices\"][0][\"text\"]" <"$tmp/body")" = "$s1" ]' "seeded sampling not repeatable: [$s1] $(cat "$tmp/body")"

# -- errors: status, type, param
err() { # STATUS PARAM METHOD PATH [BODY]
    local want_code=$1 want_param=$2
    shift 2
    local c
    c=$(http "$@")
    check '[ "$c" = "$want_code" ] && [ "$(jget "d[\"error\"][\"param\"] or \"\", bool(d[\"error\"][\"message\"]), \"type\" in d[\"error\"], \"code\" in d[\"error\"]" <"$tmp/body")" = "$want_param True True True" ]' "$* -> $c $(cat "$tmp/body")"
}
err 400 n POST /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "n": 2}'
err 400 "" POST /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}'
err 400 "" POST /v1/chat/completions "$(python3 -c 'print("{\"a\":" + "[" * 100 + "]" * 100 + "}")')"
err 400 temperature POST /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}'
err 400 messages POST /v1/chat/completions '{"messages": "hello"}'
err 400 messages POST /v1/chat/completions '{"messages": [{"role": "tool", "content": "x"}]}'
err 400 prompt POST /v1/completions "{\"prompt\": \"$(python3 -c 'print("and " * 600)')\"}"
err 413 "" POST /v1/completions "{\"prompt\": \"$(head -c 70000 /dev/zero | tr '\0' a)\"}"
err 404 "" GET /v1/nothing
err 405 "" GET /v1/chat/completions
err 400 tokens POST /detokenize '{"tokens": [1, -2]}'
# a chunked body over the limit (no Content-Length)
head -c 70000 /dev/zero | tr '\0' a >"$tmp/big"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "${auth[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big" "$base/v1/completions")
check '[ "$code" = 413 ]' "chunked oversized body: $code"

# -- a slow client (headers, then silence) is disconnected after --timeout 2
t0=$(date +%s.%N)
closed=$(python3 - "$port" "$key" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + sys.argv[2].encode() +
          b"\r\nContent-Length: 100\r\n\r\n{")
s.settimeout(10)
try:
    print("closed" if s.recv(100) == b"" else "data")
except Exception as e:
    print("error", e)
PY
)
dt=$(python3 -c "import time; print(int(time.time() - $t0))")
check '[ "$closed" = closed ] && [ "$dt" -le 5 ]' "slow client: $closed after ${dt}s"

# -- a client that disconnects mid-stream frees its slot within moments
curl -sN "${auth[@]}" "$base/v1/completions" -d '{"prompt": "And", "max_tokens": 100000, "ignore_eos": true, "stream": true}' >"$tmp/cut" &
cpid=$!
sleep 0.5
kill "$cpid"
wait "$cpid" 2>/dev/null
running=1
for _ in $(seq 20); do
    running=$(curl -s "${auth[@]}" "$base/metrics" | awk '/^fp4rt_requests_running /{print $2}')
    [ "$running" = 0 ] && break
    sleep 0.05
done
check '[ "$running" = 0 ] && [ -s "$tmp/cut" ]' "the disconnected stream still runs ($running)"

# -- /metrics
curl -s "${auth[@]}" "$base/metrics" >"$tmp/metrics"
mval() { awk -v k="$1" '$1 == k {print $2}' "$tmp/metrics"; }
check '[ "$(mval "fp4rt_requests_total{status=\"401\"}")" -ge 2 ] && [ "$(mval fp4rt_prefix_cache_hits_total)" -ge 2 ] && [ "$(mval fp4rt_prompt_tokens_cached_total)" -gt 0 ] && [ "$(mval fp4rt_slots)" = 2 ]' "metrics: $(head -c 2000 "$tmp/metrics")"
check 'grep -q "^# TYPE fp4rt_decode_tokens_per_second gauge" "$tmp/metrics" && awk "/^fp4rt_decode_tokens_per_second /{exit !(\$2 > 0)}" "$tmp/metrics"' "metrics: decode tok/s"

serve_stop
check '[ "$stop_rc" = 0 ] && grep -q "stopped" "$slog"' "SIGTERM: exit $stop_rc"

# -- a full queue: 503 with Retry-After; SIGINT with a stream in flight exits 0 within the grace
serve_start queue --parallel 1 --queue 1 --shutdown-grace 1
long='{"prompt": "And", "max_tokens": 100000, "ignore_eos": true, "stream": true}'
curl -sN "$base/v1/completions" -d "$long" >"$tmp/long1" &
c1=$!
sleep 0.3
curl -sN "$base/v1/completions" -d "$long" >"$tmp/long2" &
c2=$!
sleep 0.3
code=$(curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$base/v1/completions" -d '{"prompt": "x"}')
check '[ "$code" = 503 ] && grep -qi "^Retry-After: 1" "$tmp/headers" && [ "$(jget "d[\"error\"][\"type\"]" <"$tmp/body")" = server_error ]' "queue full: $code $(cat "$tmp/body")"
t0=$(date +%s)
kill -INT "$spid"
wait "$spid"
rc=$?
dt=$(($(date +%s) - t0))
wait "$c1" "$c2" 2>/dev/null
check '[ "$rc" = 0 ] && [ "$dt" -le 4 ]' "SIGINT with streams in flight: exit $rc after ${dt}s"
check 'tail -n 2 "$tmp/long1" | grep -q "^data: \[DONE\]"' "the running stream did not end with [DONE]: $(tail -c 200 "$tmp/long1")"
check 'grep -q "shutting down" "$tmp/long2"' "the queued stream was not told: $(tail -c 200 "$tmp/long2")"

cli_summary test_serve
