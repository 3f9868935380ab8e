#!/usr/bin/env bash
# fp4rt serve's forced tool calls with curl (tool_choice "required" and a named
# function) on the reference model, which knows nothing of tools: the reply is
# still one parsable call (a tool's name, arguments a JSON object), finish_reason
# tool_calls, non-streamed and streamed alike (the SSE deltas concatenate to
# the same call); max_tokens inside the forced text still closes the call;
# max_tokens spent on reasoning gives "length" and no call; an unknown function
# is a 400 naming it.
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
cli_setup test_serve_tools
serve_start tools --parallel 1 --ctx 1024

tools='[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}, {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]'
req() { # TOOL_CHOICE MAX_TOKENS TEMPERATURE THINKING [STREAM]
    echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}], \"tools\": $tools, \"tool_choice\": $1, \"max_tokens\": $2, \"temperature\": $3, \"seed\": 5, \"chat_template_kwargs\": {\"enable_thinking\": $4}, \"stream\": ${5:-false}}"
}
# the call of a non-streamed reply: "finish name args-as-compact-JSON" (args must parse as an object)
call='import json, sys; d = json.load(sys.stdin); c = d["choices"][0]; t = c["message"]["tool_calls"]; a = json.loads(t[0]["function"]["arguments"]); assert len(t) == 1 and isinstance(a, dict) and c["message"]["content"] is None; print(c["finish_reason"], t[0]["function"]["name"], json.dumps(a, sort_keys=True))'
# the same from the SSE stream in $tmp/body
scall() {
    python3 -c '
import json, sys
name = args = fin = ""
for line in open(sys.argv[1]):
    if not line.startswith("data: {"): continue
    c = json.loads(line[6:])["choices"][0]
    for t in c["delta"].get("tool_calls", []):
        name += t["function"].get("name", ""); args += t["function"].get("arguments", "")
    assert not c["delta"].get("content"), c
    fin = c["finish_reason"] or fin
print(fin, name, json.dumps(json.loads(args), sort_keys=True))' "$tmp/body"
}

# FP4RT_TEST_SHORT=1 (the sanitizer pass, tests/CMakeLists.txt): the sampled call
# gets 32 tokens, not 120, and only the greedy calls are repeated streamed
short=${FP4RT_TEST_SHORT:-0}
nlong=120
[ "$short" = 1 ] && nlong=32
for args in '"required" 64 0' "\"required\" $nlong 1.0" '"required" 5 0.8' \
    '{"type": "function", "function": {"name": "search"}} 64 0.9' \
    '{"type": "function", "function": {"name": "get_weather"}} 2 0'; do
    # shellcheck disable=SC2086
    set -- $args
    tc=${*:1:$#-2} n=${*:$#-1:1} temp=${*:$#:1}
    code=$(http POST /v1/chat/completions "$(req "$tc" "$n" "$temp" false)")
    v=$(python3 -c "$call" <"$tmp/body" 2>&1)
    want_name=$(python3 -c "import json,sys; t=json.loads(sys.argv[1]); print(t['function']['name'] if isinstance(t, dict) else '')" "$tc")
    read -r fin name _ <<<"$v"
    check '[ "$code" = 200 ] && [ "$fin" = tool_calls ] && { [ -n "$want_name" ] && [ "$name" = "$want_name" ] || [ -z "$want_name" ] && { [ "$name" = get_weather ] || [ "$name" = search ]; }; }' "tool_choice $tc, $n tokens: $code $v $(head -c 600 "$tmp/body")"
    check '[ "$(jget "d[\"usage\"][\"completion_tokens\"] <= $n" <"$tmp/body")" = True ]' "tool_choice $tc: more than $n tokens"
    [ "$short" = 1 ] && [ "$temp" != 0 ] && continue
    code=$(http POST /v1/chat/completions "$(req "$tc" "$n" "$temp" false true)")
    s=$(scall 2>&1)
    check '[ "$code" = 200 ] && [ "$s" = "$v" ]' "tool_choice $tc streamed: [$s] != [$v]"
done

# thinking on, max_tokens spent on the reasoning: no call, "length"
code=$(http POST /v1/chat/completions "$(req '"required"' 4 0 true)")
v=$(jget 'd["choices"][0]["finish_reason"], "tool_calls" in d["choices"][0]["message"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$v" = "length False" ]' "required, thinking, 4 tokens: $v"

# errors: the unknown function named, no tools
code=$(http POST /v1/chat/completions "$(req '{"type": "function", "function": {"name": "fly"}}' 8 0 false)")
v=$(jget 'd["error"]["param"], d["error"]["message"]' <"$tmp/body")
check '[ "$code" = 400 ] && [ "$v" = "tool_choice tool_choice names function '"'fly'"', which is not in '"'tools'"'" ]' "unknown function: $code $v"
code=$(http POST /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}')
check '[ "$code" = 400 ] && grep -q "tools" "$tmp/body"' "required without tools: $code $(cat "$tmp/body")"

serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM: exit $stop_rc"
cli_summary test_serve_tools
