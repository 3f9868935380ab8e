#!/usr/bin/env bash
# fp4rt serve with images (issue 18), on the synthetic tiny model (it has a vision
# tower): an OpenAI image_url part with a data: URL answers as `fp4rt run --image`
# does (same prompt tokens, same greedy text); the image's place among the text
# parts is kept; the same ids with another image (same size) are not served from
# the slot's state (a cold run's text); refused with a 400 naming the part: a
# remote http(s) URL, another scheme, bad base64, a non-image media type, an image
# in a system message, more than 16 images, an image that does not decode; a model
# without a vision tower refuses images (400).
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
cli_setup test_serve_images
img=tests/fixtures/images
"$bin" synth --config tiny --out "$tmp/tiny" --seed 7 >/dev/null # seed 7: turn 1 below answers "C", which renders back to the same ids
text_model=$serve_model
serve_model=$tmp/tiny
serve_start main --parallel 1 --ctx 512 --chunk 64
b64() { base64 -w0 "$1"; }
# chat body: one user message with parts PARTS (JSON), greedy, thinking off
chat() { printf '{"messages": [{"role": "user", "content": %s}], "max_tokens": 6, "temperature": 0, "chat_template_kwargs": {"enable_thinking": false}}' "$1"; }
part_img() { printf '{"type": "image_url", "image_url": {"url": "data:image/png;base64,%s"}}' "$(b64 "$1")"; }
part_txt() { printf '{"type": "text", "text": "%s"}' "$1"; }

# -- an image_url data: URL = fp4rt run --image (prompt tokens and greedy text)
code=$(http POST /v1/chat/completions "$(chat "[$(part_img $img/rgb.png), $(part_txt "What is this?")]")")
got=$(jget 'd["choices"][0]["message"]["content"]' <"$tmp/body")
np=$(jget 'd["usage"]["prompt_tokens"]' <"$tmp/body")
want=$("$bin" run --model "$serve_model" --device cpu --image $img/rgb.png --prompt "What is this?" --think off --greedy -n 6 \
    --hide-reasoning 2>"$tmp/run.err")
want_np=$(grep -o 'prompt [0-9]* tokens' "$tmp/run.err" | grep -o '[0-9]*')
check '[ "$code" = 200 ] && [ "$np" = "$want_np" ] && [ "$np" -gt 20 ] && [ "$got" = "$want" ]' \
    "image_url: $code, prompt $np tokens (run: $want_np), [$got] != run [$want]: $(head -c 300 "$tmp/body")"
# the text before the image: another prompt (the image's place is kept), same length
code=$(http POST /v1/chat/completions "$(chat "[$(part_txt "What is this?"), $(part_img $img/rgb.png)]")")
np2=$(jget 'd["usage"]["prompt_tokens"]' <"$tmp/body")
http POST /tokenize "{\"messages\": [{\"role\": \"user\", \"content\": [$(part_txt "Hi"), $(part_img $img/rgb.png)]}]}" >/dev/null
tok=$(jget 'd["tokens"]' <"$tmp/body")
check '[ "$code" = 200 ] && [ "$np2" = "$np" ] && python3 -c "import sys; t=$tok; sys.exit(not (t.count(510) == 1 and t.index(510) > t.index(508) and 508 in t))"' \
    "text then image: $code, $np2 tokens; tokenize: $tok"

# -- the same ids with another image of the same size are not served from the slot's
#    state: turn 1 with image A, then turn 2 of that conversation with image B in
#    turn 1 (the slot holds a prefix of its ids) = turn 2 cold
kw='"max_tokens": 1, "temperature": 0, "chat_template_kwargs": {"enable_thinking": false, "preserve_thinking": true}'
turn1() { printf '{"role": "user", "content": [%s, %s]}' "$(part_img "$1")" "$(part_txt "Describe.")"; }
code=$(http POST /v1/chat/completions "{\"messages\": [$(turn1 $img/tiny.png)], $kw}")
a1=$(jget 'json.dumps(d["choices"][0]["message"]["content"])' <"$tmp/body")
held=$(jget 'd["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"]' <"$tmp/body")
req2="{\"messages\": [$(turn1 $img/rgb.png), {\"role\": \"assistant\", \"content\": $a1, \"reasoning_content\": \"\"}, {\"role\": \"user\", \"content\": \"More.\"}], $kw}"
http POST /v1/chat/completions "$req2" >/dev/null
warm=$(jget 'd["choices"][0]["message"]["content"], d["usage"]["prompt_tokens"]' <"$tmp/body")
cached=$(jget 'd["usage"]["prompt_tokens_details"]["cached_tokens"]' <"$tmp/body")
http POST /v1/completions '{"prompt": "Unrelated", "max_tokens": 2}' >/dev/null
http POST /v1/chat/completions "$req2" >/dev/null
cold=$(jget 'd["choices"][0]["message"]["content"], d["usage"]["prompt_tokens"]' <"$tmp/body")
check '[ -n "$cold" ] && [ "$warm" = "$cold" ] && [ "$cached" -lt 8 ] && [ "${cold##* }" -gt "$held" ]' \
    "turn 2 with another image after turn 1 [$warm] (cached $cached of the $held held) != cold [$cold]"

# -- refusals: 400 naming the part
expect400() { # NEEDLE BODY
    local needle=$1 code msg
    code=$(http POST /v1/chat/completions "$2")
    msg=$(jget 'd["error"]["message"]' <"$tmp/body" 2>/dev/null)
    check '[ "$code" = 400 ] && [[ "$msg" == *"$needle"* ]]' "want 400 '$needle', got $code: $(head -c 300 "$tmp/body")"
}
expect400 "messages[0].content[1].image_url: remote URLs are not fetched" \
    "$(chat "[$(part_txt "Look:"), {\"type\": \"image_url\", \"image_url\": {\"url\": \"https://example.com/cat.png\"}}]")"
expect400 "messages[0].content[0].image_url: expected a data: URL" \
    "$(chat '[{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]')"
expect400 "the data: URL is not base64" "$(chat '[{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]')"
expect400 "the base64 data is malformed" "$(chat '[{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}]')"
expect400 "media type 'text/plain' is not an image" \
    "$(chat '[{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGVsbG8="}}]')"
expect400 "image 1 (in memory)" "$(chat '[{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8gd29ybGQ="}}]')"
expect400 "a system message cannot contain images" \
    "{\"messages\": [{\"role\": \"system\", \"content\": [$(part_img $img/tiny.png)]}, {\"role\": \"user\", \"content\": \"Hi\"}]}"
many=$(for i in $(seq 17); do printf '%s, ' "$(part_img $img/tiny.png)"; done)
expect400 "more than 16 images in one request" "$(chat "[$many $(part_txt "All of them?")]")"
# a literal <|image_pad|> in the text: one more slot than images
expect400 "2 <|image_pad|> slots but 1 image was given" "$(chat "[$(part_img $img/tiny.png), $(part_txt "<|image_pad|>")]")"
code=$(http GET /health)
check '[ "$code" = 200 ]' "the server survives: $code"
serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM: exit $stop_rc"

# -- a model without a vision tower: 400
serve_model=$text_model
serve_start text --ctx 256
expect400 "the model has no vision tower" "$(chat "[$(part_img $img/tiny.png), $(part_txt "Hi")]")"
serve_stop
cli_summary test_serve_images
