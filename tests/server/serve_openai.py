"""fp4rt serve driven by the official openai client (issue 17).

    serve_openai.py api  BASE_URL KEY   chat (plain, streamed, reasoning), tools,
                                        completions, models, errors
    serve_openai.py load BASE_URL KEY PID CLIENTS SECONDS
                                        CLIENTS streaming clients for SECONDS: every
                                        request completes; the server's memory
                                        (PID's RSS) returns near its baseline
Prints "NAME: N passed, N failed"; exit 1 on any failure.
"""
import json
import sys
import threading
import time
import urllib.request

import openai

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def post(base, key, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


NO_THINK = {"chat_template_kwargs": {"enable_thinking": False}}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}]


def api(base, key):
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    models = c.models.list()
    check([m.id for m in models.data] == ["qwen35-kjv-10m"], f"models: {models}")
    msgs = [{"role": "system", "content": "You are a scribe."}, {"role": "user", "content": "Who begat Enoch?"}]

    # plain chat, greedy
    r = c.chat.completions.create(model="qwen35-kjv-10m", messages=msgs, max_tokens=12, temperature=0,
                                  extra_body=NO_THINK)
    ch = r.choices[0]
    check(r.object == "chat.completion" and ch.message.role == "assistant" and ch.message.content,
          f"chat: {r}")
    check(ch.finish_reason == "length" and r.usage.completion_tokens == 12, f"chat usage: {r.usage}")
    check(r.usage.total_tokens == r.usage.prompt_tokens + 12 and
          r.usage.prompt_tokens_details.cached_tokens >= 0, f"chat usage: {r.usage}")
    plain = ch.message.content

    # streamed: the same text, usage last, reasoning none
    chunks = list(c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True}, extra_body=NO_THINK))
    text = "".join(k.choices[0].delta.content or "" for k in chunks if k.choices)
    check(text == plain, f"stream [{text}] != [{plain}]")
    check(chunks[0].choices[0].delta.role == "assistant", "stream: first delta has no role")
    check([k.choices[0].finish_reason for k in chunks if k.choices and k.choices[0].finish_reason] == ["length"],
          "stream: finish_reason")
    check(chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12, f"stream usage: {chunks[-1]}")

    # thinking on: reasoning_content in the message and in the deltas
    r = c.chat.completions.create(model="m", messages=msgs, max_tokens=8, temperature=0)
    check((r.choices[0].message.model_extra or {}).get("reasoning_content"), f"no reasoning_content: {r}")
    chunks = list(c.chat.completions.create(model="m", messages=msgs, max_tokens=8, temperature=0, stream=True))
    rs = "".join((k.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for k in chunks if k.choices)
    check(rs == r.choices[0].message.model_extra["reasoning_content"], f"streamed reasoning [{rs}]")

    # stop strings and sampling fields through the client
    words = plain.split()
    if len(words) > 2:
        r = c.chat.completions.create(model="m", messages=msgs, max_tokens=12, temperature=0, stop=[words[2]],
                                      extra_body=NO_THINK)
        check(r.choices[0].finish_reason == "stop" and words[2] not in r.choices[0].message.content,
              f"stop {words[2]}: {r}")
    r = c.chat.completions.create(model="m", messages=msgs, max_tokens=6, temperature=0.8, top_p=0.9, seed=3,
                                  presence_penalty=0.2, frequency_penalty=0.1,
                                  extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.05, **NO_THINK})
    check(r.usage.completion_tokens == 6, f"sampling: {r}")

    # tools: a conversation with a call and its result renders as Qwen3.6's XML; the
    # answer has OpenAI's shape (this small model does not call tools itself)
    hist = msgs + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": json.dumps({"city": "Paris", "days": 2})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r = c.chat.completions.create(model="m", messages=hist, tools=TOOLS, tool_choice="auto", max_tokens=8,
                                  temperature=0, extra_body=NO_THINK)
    check(r.choices[0].finish_reason in ("stop", "length", "tool_calls"), f"tools: {r}")
    check(r.choices[0].finish_reason != "tool_calls" or r.choices[0].message.tool_calls, f"tools: {r}")
    toks = post(base, key, "/tokenize", {"messages": hist, "tools": TOOLS, **NO_THINK})["tokens"]
    text = post(base, key, "/detokenize", {"tokens": toks})["prompt"]
    check("<tools>" in text and "get_weather" in text, "tools not rendered")
    check("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n"
          "</parameter>\n</function>\n</tool_call>" in text, f"tool call not rendered: {text}")
    check("<tool_response>\nsunny\n</tool_response>" in text, "tool response not rendered")
    chunks = list(c.chat.completions.create(model="m", messages=hist, tools=TOOLS, max_tokens=6, temperature=0,
                                            stream=True, extra_body=NO_THINK))
    check(chunks and chunks[-1].choices[0].finish_reason in ("stop", "length"), "tools stream")

    # completions
    r = c.completions.create(model="m", prompt="And it came to pass", max_tokens=10, temperature=0)
    check(r.object == "text_completion" and r.choices[0].text and r.usage.completion_tokens == 10, f"completion {r}")
    s = "".join(k.choices[0].text for k in c.completions.create(model="m", prompt="And it came to pass",
                                                                 max_tokens=10, temperature=0, stream=True))
    check(s == r.choices[0].text, f"streamed completion [{s}] != [{r.choices[0].text}]")

    # errors: status and OpenAI's shape
    def expect(exc, status, param, **kw):
        try:
            c.chat.completions.create(model="m", **kw)
            check(False, f"no error for {kw}")
        except exc as e:
            err = e.body if isinstance(e.body, dict) else {}
            check(e.status_code == status and err.get("param") == param and err.get("message"),
                  f"{kw}: {e.status_code} {e.body}")
    expect(openai.BadRequestError, 400, "n", messages=msgs, n=2)
    expect(openai.BadRequestError, 400, "temperature", messages=msgs, temperature=5)
    expect(openai.BadRequestError, 400, "tool_choice", messages=msgs, tools=TOOLS, tool_choice="required")
    expect(openai.BadRequestError, 400, "messages", messages=[])
    expect(openai.BadRequestError, 400, "messages", messages=[{"role": "user", "content": "and " * 3000}])
    bad = openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        check(False, "wrong key accepted")
    except openai.AuthenticationError as e:
        check(e.status_code == 401 and e.body.get("code") == "invalid_api_key", f"401: {e.body}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load(base, key, pid, clients, seconds):
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
    msgs = [{"role": "user", "content": "Who begat Enoch?"}]

    def one(i):
        n = 0
        for k in c.chat.completions.create(model="m", messages=msgs, max_tokens=24, temperature=0.7, seed=i,
                                            stream=True, extra_body=NO_THINK):
            if k.choices and k.choices[0].finish_reason:
                n += 1
        return n == 1  # one finish_reason: the stream ended properly

    for i in range(2):  # warm-up: the baseline after the sessions exist
        one(i)
    base_rss = rss_kib(pid)
    results, errors = [], []
    stop_at = time.time() + seconds

    def client(i):
        j = 0
        while time.time() < stop_at:
            try:
                results.append(bool(one(i * 1000 + j)))
            except Exception as e:  # noqa: BLE001 (any failure is a failed request)
                errors.append(repr(e))
            j += 1

    ts = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    time.sleep(0.5)
    end_rss = rss_kib(pid)
    print(f"load: {len(results)} requests from {clients} clients in {seconds} s, {len(errors)} errors; "
          f"RSS {base_rss} KiB -> {end_rss} KiB")
    check(len(results) >= clients and all(results) and not errors, f"load: {errors[:3]}")
    # connection threads' stacks and malloc arenas may stay; leaks would grow with the requests
    check(end_rss <= base_rss + 64 * 1024, f"RSS grew from {base_rss} to {end_rss} KiB")
    metrics = urllib.request.urlopen(urllib.request.Request(
        base + "/metrics", headers={"Authorization": "Bearer " + key})).read().decode()
    running = [l for l in metrics.splitlines() if l.startswith("fp4rt_requests_running ")]
    check(running == ["fp4rt_requests_running 0"], f"still running after the load: {running}")


if __name__ == "__main__":
    mode, base, key = sys.argv[1:4]
    if mode == "api":
        api(base, key)
    else:
        load(base, key, int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
    print(f"serve_openai {mode}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
