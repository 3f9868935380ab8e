#!/usr/bin/env python3
"""Render the chat-template goldens in tests/fixtures/chat/ with transformers.

Every tests/fixtures/chat/NN-name.json holds one conversation:

    {"messages": [...], "tools": [...] | null, "add_generation_prompt": bool,
     "enable_thinking": bool | null, "preserve_thinking": bool | null,
     "continue_final_message": bool (optional, default false)}

Messages are OpenAI-style dicts. A tool call's "arguments" may be a JSON *string*
(as the OpenAI API returns it, and as fp4rt_tool_call.arguments_json takes it) or an
object; strings are decoded with json.loads before rendering, because the template
iterates the arguments as a mapping. Keys that are null are passed as None (transformers
drops them). The kwargs enable_thinking / preserve_thinking are passed only when not null.

The output NN-name.txt is exactly what
    tokenizer.apply_chat_template(messages, tools=..., tokenize=False, ...)
returns, written as UTF-8 bytes with no newline translation.

The template is the Qwen3.6 chat_template.jinja; it is NOT in the repository. Give it with
--template FILE or the FP4RT_CHAT_TEMPLATE environment variable. Its provenance and
SHA-256 are recorded in tests/fixtures/chat/README.md; a different file is refused unless
--any-template is given.

Usage:
    /work/venv-ref/bin/python tools/make_chat_golden.py --template FILE [--check] [NAME...]
    /work/venv-ref/bin/python tools/make_chat_golden.py --template FILE --fuzz N --out DIR [--seed S]

--fuzz writes N random conversations (tricky whitespace, think tags, tool calls with every
JSON type) and their renderings to DIR, for a differential run of the C code:
    FP4RT_CHAT_FIXTURES=DIR build/tests/test_chat
A case the template refuses (e.g. no user query) gets NAME.err instead of NAME.txt, and
test_chat then expects an INVALID_ARGUMENT error.
"""

import argparse
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "chat")
# Any tokenizer works for tokenize=False rendering; this one is in the shared data.
TOKENIZER = os.environ.get("FP4RT_TOKENIZER_JSON", os.path.join(
    os.path.dirname(ROOT), "shared", "tokenizers", "qwen3", "tokenizer.json"))

# SHA-256 of the template text (trailing newlines removed) the committed goldens were
# rendered with (see tests/fixtures/chat/README.md).
TEMPLATE_SHA256 = "e84f32a23fdda27689f868aa4a1a5621f41133e51a48d7f3efcbea2839574259"


def load_template(path, any_template):
    with open(path, "rb") as f:
        raw = f.read()
    # Hash without trailing newlines: copies of the file differ only in having one or not.
    digest = hashlib.sha256(raw.rstrip(b"\n")).hexdigest()
    if digest != TEMPLATE_SHA256 and not any_template:
        sys.exit(f"{path}: sha256 {digest} is not the recorded template {TEMPLATE_SHA256}; "
                 "pass --any-template to render with it anyway")
    return raw.decode("utf-8"), digest


def to_template_messages(messages):
    """Decodes tool-call arguments given as JSON strings; leaves everything else alone."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                c = json.loads(json.dumps(c))
                fn = c.get("function", c)
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = json.loads(fn["arguments"])
                calls.append(c)
            m["tool_calls"] = calls
        out.append(m)
    return out


def render(tok, case):
    kwargs = {"tokenize": False, "add_generation_prompt": bool(case.get("add_generation_prompt"))}
    if case.get("tools") is not None:
        kwargs["tools"] = case["tools"]
    for key in ("enable_thinking", "preserve_thinking"):
        if case.get(key) is not None:
            kwargs[key] = case[key]
    if case.get("continue_final_message"):
        kwargs["continue_final_message"] = True
    return tok.apply_chat_template(to_template_messages(case["messages"]), **kwargs)


def fuzz_cases(n, seed):
    """Random conversations that the template accepts most of the time."""
    import random
    rnd = random.Random(seed)
    bits = ["", " ", "\n", "\t", "\u00a0", "\u3000", "\u2028", "\x1c", "\u200b", "x", "héllo", "🙂", "<think>",
            "</think>", "\n\n", "<tool_response>", "</tool_response>", "a b", "{\"k\": 1}", "\\", "\"", "\r\n"]

    def text(k=6):
        return "".join(rnd.choice(bits) for _ in range(rnd.randint(0, k)))

    def jvalue(depth=0):
        r = rnd.randint(0, 12 if depth < 2 else 8)
        if r == 0: return None
        if r == 1: return rnd.choice([True, False])
        if r == 2: return rnd.randint(-10**20, 10**20)
        if r == 3: return rnd.choice([0.1, -0.0, 1e16, 1e15, 1e-5, 1e-4, 2.5e300, 123456.789, 1/3, 5e-324])
        if r == 4: return rnd.uniform(-1e6, 1e6) * 10 ** rnd.randint(-30, 30)
        if r <= 8: return text(4)
        if r <= 10: return [jvalue(depth + 1) for _ in range(rnd.randint(0, 3))]
        return {text(2) or "k": jvalue(depth + 1) for _ in range(rnd.randint(0, 3))}

    def args_text():
        obj = {rnd.choice(["a", "b", "path", "n", "ü"]) + str(rnd.randint(0, 3)): jvalue() for _ in range(rnd.randint(0, 4))}
        s = json.dumps(obj, ensure_ascii=rnd.random() < 0.5)
        return s.replace("1e+16", "1E16") if rnd.random() < 0.5 else s

    tools_pool = [{"type": "function", "function": {"name": "t%d" % i, "description": text(3),
                                                    "parameters": {"type": "object", "properties": {"x": jvalue()}}}}
                  for i in range(3)]
    for i in range(n):
        msgs = []
        if rnd.random() < 0.5:
            msgs.append({"role": "system", "content": text()})
        for _ in range(rnd.randint(1, 7)):
            role = rnd.choice(["user", "user", "assistant", "assistant", "tool"])
            if role == "tool" and not msgs:
                role = "user"
            m = {"role": role, "content": text() if rnd.random() < 0.9 else None}
            if role == "assistant":
                if rnd.random() < 0.4:
                    m["reasoning_content"] = text()
                if rnd.random() < 0.4:
                    m["tool_calls"] = [{"type": "function", "function": {"name": "t%d" % rnd.randint(0, 2),
                                                                         "arguments": args_text()}}
                                       for _ in range(rnd.randint(1, 3))]
            msgs.append(m)
        case = {"messages": msgs, "tools": rnd.choice([None, [], tools_pool[:rnd.randint(1, 3)]]),
                "add_generation_prompt": rnd.random() < 0.5, "enable_thinking": rnd.choice([None, True, False]),
                "preserve_thinking": rnd.choice([None, True, False])}
        if not case["add_generation_prompt"] and rnd.random() < 0.2 and msgs[-1].get("content") is not None:
            case["continue_final_message"] = True
        yield "fuzz-%05d" % i, case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", default=os.environ.get("FP4RT_CHAT_TEMPLATE"),
                    help="path of the Qwen3.6 chat_template.jinja (or FP4RT_CHAT_TEMPLATE)")
    ap.add_argument("--any-template", action="store_true", help="accept a template with another hash")
    ap.add_argument("--check", action="store_true", help="compare with the committed .txt, write nothing")
    ap.add_argument("--fuzz", type=int, default=0, help="write N random cases to --out instead")
    ap.add_argument("--out", help="output directory for --fuzz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("names", nargs="*", help="fixture names (default: all)")
    args = ap.parse_args()
    if not args.template:
        sys.exit("no template: pass --template FILE or set FP4RT_CHAT_TEMPLATE (see tests/fixtures/chat/README.md)")

    from transformers import PreTrainedTokenizerFast
    import transformers

    template, digest = load_template(args.template, args.any_template)
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER)
    tok.chat_template = template

    if args.fuzz:
        if not args.out:
            sys.exit("--fuzz needs --out DIR")
        os.makedirs(args.out, exist_ok=True)
        written = 0
        for name, case in fuzz_cases(args.fuzz, args.seed):
            with open(os.path.join(args.out, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(case, f, ensure_ascii=False)
            try:
                out, data = name + ".txt", render(tok, case).encode("utf-8")
                written += 1
            except Exception as e:  # the template refused it: the C code must refuse it too
                out, data = name + ".err", (str(e) + "\n").encode("utf-8")
            with open(os.path.join(args.out, out), "wb") as f:
                f.write(data)
        print(f"{args.fuzz} random cases written to {args.out} ({args.fuzz - written} refused, in .err files)")
        return 0

    paths = sorted(glob.glob(os.path.join(FIXTURES, "*.json")))
    if args.names:
        paths = [p for p in paths if os.path.basename(p)[:-5] in args.names]
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            case = json.load(f)
        text = render(tok, case).encode("utf-8")
        out = path[:-5] + ".txt"
        if args.check:
            with open(out, "rb") as f:
                same = f.read() == text
            bad += not same
            print(("ok   " if same else "DIFF ") + os.path.basename(out))
        else:
            with open(out, "wb") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(out, ROOT)} ({len(text)} bytes)")
    print(f"{len(paths)} fixtures, transformers {transformers.__version__}, template sha256 {digest}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
