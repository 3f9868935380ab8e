"""fp4rt serve driven by the official openai client (issue 17).

    serve_openai.py api  BASE_URL KEY   chat (plain, streamed, reasoning), tools,
                                        completions, models, errors
    serve_openai.py tools BASE_URL KEY  tool_choice "required" and a named function:
                                        a parsable call from a model that knows
                                        nothing of tools, streamed or not; errors
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

import openai
from serve_client import check, finish, metric, post


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
    expect(openai.BadRequestError, 400, "tool_choice", messages=msgs, tool_choice="required")  # no tools
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
    running = metric(base, "fp4rt_requests_running", key)
    check(running == "0", f"still running after the load: {running}")


TOOLS2 = TOOLS + [{"type": "function", "function": {
    "name": "search_scripture", "description": "Find verses",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


def call_of(r):
    """The one tool call of a reply, its arguments parsed (a dict)."""
    ch = r.choices[0]
    calls = ch.message.tool_calls or []
    check(ch.finish_reason == "tool_calls" and len(calls) == 1, f"not one tool call: {r}")
    if not calls:
        return None, None
    args = None
    try:
        args = json.loads(calls[0].function.arguments)
    except ValueError:
        pass
    check(isinstance(args, dict), f"arguments are not a JSON object: {calls[0].function.arguments!r}")
    check(calls[0].id.startswith("call_") and calls[0].type == "function", f"call shape: {calls[0]}")
    return calls[0].function.name, args


def streamed_call(c, **kw):
    """The streamed deltas of a one-call reply, concatenated: (name, arguments text, finish_reason)."""
    name, args, finish_reason = "", "", None
    for k in c.chat.completions.create(model="m", stream=True, **kw):
        if not k.choices:
            continue
        d = k.choices[0].delta
        for t in d.tool_calls or []:
            check(t.index == 0, f"a second call streamed: {t}")
            name += (t.function.name or "") if t.function else ""
            args += (t.function.arguments or "") if t.function else ""
        check(not d.content, f"content beside a forced call: {d.content!r}")
        finish_reason = k.choices[0].finish_reason or finish_reason
    return name, args, finish_reason


def tools(base, key):
    """The reference model knows nothing of tools: the calls are the server's doing."""
    c = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    msgs = [{"role": "user", "content": "What is the weather in Paris for two days?"}]
    names = {t["function"]["name"] for t in TOOLS2}
    # required, greedy and sampled: a call of one of the tools, arguments a JSON object
    for i, (temp, n) in enumerate([(0, 48), (1.0, 48), (1.0, 96), (0.7, 7), (1.0, 3)]):
        kw = dict(messages=msgs, tools=TOOLS2, tool_choice="required", max_tokens=n, temperature=temp, seed=i,
                  extra_body=NO_THINK)
        r = c.chat.completions.create(model="m", **kw)
        name, args = call_of(r)
        check(name in names, f"required: name {name!r} not in the tools")
        check(r.usage.completion_tokens <= n, f"required: {r.usage.completion_tokens} tokens > max_tokens {n}")
        # streamed: the deltas concatenate to the same call
        sn, sa, sf = streamed_call(c, **kw)
        check((sn, sf) == (name, "tool_calls") and json.loads(sa) == args,
              f"required stream: {sn} {sa} {sf} != {name} {args}")
    # a named function: that one, whatever the model would rather say
    for fn in ("get_weather", "search_scripture"):
        kw = dict(messages=msgs, tools=TOOLS2, tool_choice={"type": "function", "function": {"name": fn}},
                  max_tokens=40, temperature=0.9, seed=7, extra_body=NO_THINK)
        name, args = call_of(c.chat.completions.create(model="m", **kw))
        check(name == fn, f"named {fn}: got {name}")
        sn, sa, sf = streamed_call(c, **kw)
        check((sn, sf) == (fn, "tool_calls") and json.loads(sa) == args, f"named stream: {sn} {sa} {sf}")
    # thinking on: the reasoning first, then the call; max_tokens spent on reasoning: "length", no call
    r = c.chat.completions.create(model="m", messages=msgs, tools=TOOLS2, tool_choice="required", max_tokens=4,
                                  temperature=0)
    check(r.choices[0].finish_reason == "length" and not r.choices[0].message.tool_calls,
          f"thinking, 4 tokens: {r}")
    r = c.chat.completions.create(model="m", messages=msgs, tools=TOOLS2, tool_choice="required", max_tokens=120,
                                  temperature=0.8, seed=1)
    if r.choices[0].finish_reason != "length":  # the reasoning ended within the budget
        name, _ = call_of(r)
        check(name in names, f"thinking: {r}")
    # "auto" and "none" as before: no forced call from this model
    for tc in ("auto", "none"):
        r = c.chat.completions.create(model="m", messages=msgs, tools=TOOLS2, tool_choice=tc, max_tokens=8,
                                      temperature=0, extra_body=NO_THINK)
        check(r.choices[0].finish_reason == "length" and not r.choices[0].message.tool_calls, f"{tc}: {r}")
    # errors: an unknown function (400 naming it), no tools, a malformed choice
    for kw, what in [(dict(tools=TOOLS2, tool_choice={"type": "function", "function": {"name": "fly_to_moon"}}),
                      "fly_to_moon"),
                     (dict(tool_choice={"type": "function", "function": {"name": "get_weather"}}), "tools"),
                     (dict(tools=TOOLS2, tool_choice="sometimes"), "required")]:
        try:
            c.chat.completions.create(model="m", messages=msgs, max_tokens=4, extra_body=NO_THINK, **kw)
            check(False, f"no error for {kw}")
        except openai.BadRequestError as e:
            err = e.body if isinstance(e.body, dict) else {}
            check(e.status_code == 400 and err.get("param") == "tool_choice" and what in err.get("message", ""),
                  f"{kw}: {e.status_code} {e.body}")


if __name__ == "__main__":
    mode, base, key = sys.argv[1:4]
    if mode == "api":
        api(base, key)
    elif mode == "tools":
        tools(base, key)
    else:
        load(base, key, int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
    finish(f"serve_openai {mode}")
