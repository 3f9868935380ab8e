#!/usr/bin/env python3
"""Training corpus for tools/train_reference.py: the King James Bible as plain English prose.

    python tools/corpus.py --out DIR [--bible PATH] [--heldout-every 50]

Source: the Debian package `bible-kjv-text` (section main; the KJV text of 1611, whose copyright
has expired -- Debian's copyright file: "The copyright for the King James Version text of the
Bible is expired"), read through the `bible` program of the package `bible-kjv` (GPL-2+; only its
output is used).  Install: `apt-get install -y bible-kjv bible-kjv-text`.

Contract
--------
* Documents are chapters (1,189 of them, Genesis 1 .. Revelation 22), in canonical order.  A
  document's text is its heading line ("Genesis 1"), a blank line, then one verse per line with
  the verse number removed, ending in a newline.  Nothing else is altered (no case folding, no
  punctuation changes).
* Split: chapter k (0-based) is held out when k % heldout_every == heldout_every - 1 (every 50th
  chapter by default, about 2 %, spread over the whole book); all others are training documents.
* Output: DIR/train.jsonl and DIR/heldout.jsonl, one {"title": ..., "text": ...} object per line,
  plus DIR/corpus.json (package versions, counts, SHA-256 of both files), and DIR/heldout.txt: the
  held-out documents' texts concatenated in order with nothing between them (UTF-8), the file
  that `fp4rt perplexity --file` and tools/hf_perplexity.py are measured on.  The result is a pure
  function of the installed package version: same package, same bytes.
* Any deviation from the expected layout of `bible`'s output (a line that is neither a chapter
  heading, a verse, a blank line nor inside a chapter) is a hard error naming the line.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

HEADING = re.compile(r"^((?:[1-3] )?[A-Za-z][A-Za-z ]*?) (\d+)$")
VERSE = re.compile(r"^ +(\d+) (.*)$")
FULL_RANGE = "gen1:1-rev22:21"


def package_version(name):
    """Installed version of a Debian package, or None when dpkg-query does not know it."""
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def read_bible(bible="bible"):
    """Raw text of the whole KJV as printed by `bible -l1000` (no line wrapping)."""
    try:
        r = subprocess.run([bible, "-l1000", FULL_RANGE], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        sys.exit(f"corpus: '{bible}' not found; install it with: apt-get install -y bible-kjv bible-kjv-text")
    if r.returncode != 0 or not r.stdout:
        sys.exit(f"corpus: '{bible} -l1000 {FULL_RANGE}' failed (exit {r.returncode}): {r.stderr.strip()}")
    return r.stdout


def parse_chapters(raw):
    """List of (title, [verse texts]) in order.  Verse numbers must run 1, 2, 3, ... per chapter."""
    chapters = []
    for lineno, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        m = VERSE.match(line)
        if m:
            if not chapters:
                sys.exit(f"corpus: line {lineno}: verse before any chapter heading: {line[:60]!r}")
            want = len(chapters[-1][1]) + 1
            if int(m.group(1)) != want:
                sys.exit(f"corpus: line {lineno}: verse {m.group(1)} where {want} was expected in "
                         f"{chapters[-1][0]}")
            chapters[-1][1].append(m.group(2).strip())
            continue
        m = HEADING.match(line)
        if m:
            chapters.append((line.strip(), []))
            continue
        sys.exit(f"corpus: line {lineno}: neither a chapter heading nor a verse: {line[:60]!r}")
    for title, verses in chapters:
        if not verses:
            sys.exit(f"corpus: chapter '{title}' has no verses")
    return chapters


def chapter_text(title, verses):
    return title + "\n\n" + "\n".join(verses) + "\n"


def split_documents(chapters, heldout_every):
    """(train, heldout) lists of {"title", "text"} dicts; see the module contract."""
    train, heldout = [], []
    for k, (title, verses) in enumerate(chapters):
        doc = {"title": title, "text": chapter_text(title, verses)}
        (heldout if k % heldout_every == heldout_every - 1 else train).append(doc)
    return train, heldout


def write_jsonl(path, docs):
    data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def write_text(path, docs):
    data = "".join(d["text"] for d in docs).encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build(out_dir, bible="bible", heldout_every=50):
    """Write the corpus files into out_dir and return the corpus.json summary."""
    if heldout_every < 2:
        sys.exit(f"corpus: --heldout-every must be at least 2 (got {heldout_every})")
    chapters = parse_chapters(read_bible(bible))
    if len(chapters) != 1189:
        sys.exit(f"corpus: expected 1189 chapters from '{bible}', got {len(chapters)}")
    train, heldout = split_documents(chapters, heldout_every)
    os.makedirs(out_dir, exist_ok=True)
    summary = {
        "source": "King James Version (1611), public domain; Debian packages bible-kjv-text "
                  "(text) and bible-kjv (reader program)",
        "bible-kjv-text": package_version("bible-kjv-text"),
        "bible-kjv": package_version("bible-kjv"),
        "heldout_every": heldout_every,
        "chapters": len(chapters),
        "train_docs": len(train),
        "heldout_docs": len(heldout),
        "train_chars": sum(len(d["text"]) for d in train),
        "heldout_chars": sum(len(d["text"]) for d in heldout),
        "train_sha256": write_jsonl(os.path.join(out_dir, "train.jsonl"), train),
        "heldout_sha256": write_jsonl(os.path.join(out_dir, "heldout.jsonl"), heldout),
        "heldout_txt_sha256": write_text(os.path.join(out_dir, "heldout.txt"), heldout),
    }
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--bible", default="bible", help="the bible-kjv reader program")
    ap.add_argument("--heldout-every", type=int, default=50, help="every N-th chapter is held out")
    a = ap.parse_args(argv)
    print(json.dumps(build(a.out, a.bible, a.heldout_every), indent=1))


if __name__ == "__main__":
    main()
