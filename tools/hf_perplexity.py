#!/usr/bin/env python3
"""Perplexity of a text under Hugging Face transformers' own Qwen3.5 code, on exactly the windows
that `fp4rt perplexity` scores.

    python tools/hf_perplexity.py --model DIR --file TEXT [--ctx N] [--stride S] [--threads N]
                                  [--fp4rt-ppl FILE] [--json OUT]

What it computes (docs/CLI.md "Perplexity and KL divergence", runtime/tools/perplexity.c)
----------------------------------------------------------------------------------------
* The file is read as UTF-8 and tokenized raw with the model's own tokenizer.json (Hugging Face
  `tokenizers`, no special tokens added), as fp4rt tokenizes it.
* Windows: ctx tokens (default 512) starting every stride tokens (default ctx), n_windows =
  (n_tokens - ctx) // stride + 1; tokens after the last full window are not scored.  In each
  window the tokens at window positions max(1, ctx - stride) .. ctx - 1 are scored, each from the
  logits of the position before it.  Every window is a fresh forward pass (no cache carried).
* The model is tools/reference_logits.py's: transformers' Qwen3_5ForCausalLM in float32 on the CPU
  (BF16 weights upcast, quantized ones dequantized, mtp.* skipped), eager attention, the
  pure-torch GDN fallbacks.
* NLL = logsumexp(logits) - logits[target] in float64; perplexity = exp(mean NLL); its error is
  ppl x sqrt((mean(NLL^2) - mean(NLL)^2) / (N - 1)), as fp4rt and llama.cpp print it.
* Output (stdout): the token count, the window plan and the FNV-1a 64 hash of the ids (as fp4rt
  hashes them), then "perplexity: P ± E over N tokens".
* --fp4rt-ppl FILE (repeatable): a file written by `fp4rt perplexity --save-logits FILE` on the
  same text, --ctx and --stride (any --top-k).  Its header must match (vocab, ctx, stride,
  positions, token count, token hash) and its scored ids this run's, else exit 1 naming what
  differs: then the tokens and windows are provably the same, and the script prints fp4rt's
  perplexity from the file's per-token log-probabilities, the relative difference of the two
  perplexities and the largest / mean per-token |log p| difference.
* --json OUT: the numbers above as JSON.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_logits  # noqa: E402  (sets USE_HUB_KERNELS=0 before transformers loads)

PPL_MAGIC = b"FP4RTPPL"
PPL_HEADER = struct.Struct("<8sIIIIIIQQQ")  # 56 bytes, runtime/tools/perplexity.h


def token_hash(ids):
    """FNV-1a 64 over the ids as u32 little-endian (fp4rt_ppl_token_hash)."""
    h = 0xCBF29CE484222325
    for v in ids:
        v &= 0xFFFFFFFF
        for b in range(4):
            h ^= (v >> (8 * b)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def plan(n_tokens, ctx, stride, max_ctx):
    """(n_windows, first scored window position), with fp4rt_ppl_plan's checks; exits on bad input."""
    if ctx < 2:
        sys.exit(f"hf_perplexity: --ctx {ctx}: a window needs at least 2 tokens")
    if max_ctx > 0 and ctx > max_ctx:
        sys.exit(f"hf_perplexity: --ctx {ctx} exceeds the model's context of {max_ctx} tokens")
    if not 1 <= stride <= ctx:
        sys.exit(f"hf_perplexity: --stride {stride}: expected 1 to --ctx ({ctx})")
    if n_tokens < ctx:
        sys.exit(f"hf_perplexity: text shorter than one window: {n_tokens} tokens, --ctx {ctx}")
    return (n_tokens - ctx) // stride + 1, max(ctx - stride, 1)


def summary(nll):
    """(perplexity, error) of a list of NLLs, as fp4rt_ppl_acc_ppl / fp4rt_ppl_acc_err."""
    n = len(nll)
    s, s2 = math.fsum(nll), math.fsum(x * x for x in nll)
    mean = s / n
    ppl = math.exp(mean)
    var = s2 / n - mean * mean
    err = ppl * math.sqrt(var / (n - 1)) if n > 1 and var > 0 else 0.0
    return ppl, err


def read_fp4rt_ppl(path, vocab, ctx, stride, n_scored, n_tokens, thash):
    """Targets and target log-probs of an fp4rt --save-logits file whose header matches."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < PPL_HEADER.size:
        sys.exit(f"hf_perplexity: {path}: shorter than the {PPL_HEADER.size}-byte header")
    magic, version, fvocab, k, fctx, fstride, _res, npos, ntok, fhash = PPL_HEADER.unpack_from(data)
    if magic != PPL_MAGIC or version != 1:
        sys.exit(f"hf_perplexity: {path}: not an fp4rt perplexity file (magic {magic!r}, version {version})")
    want = {"vocab": (fvocab, vocab), "ctx": (fctx, ctx), "stride": (fstride, stride),
            "positions": (npos, n_scored), "token count": (ntok, n_tokens), "token hash": (fhash, thash)}
    for name, (got, exp) in want.items():
        if got != exp:
            sys.exit(f"hf_perplexity: {path}: {name} {got} where this run has {exp} (another text, "
                     f"tokenizer, --ctx or --stride)")
    rec = 12 + 8 * k
    if len(data) != PPL_HEADER.size + npos * rec:
        sys.exit(f"hf_perplexity: {path}: {len(data)} bytes, expected {PPL_HEADER.size + npos * rec}")
    body = np.frombuffer(data, dtype=np.uint8, offset=PPL_HEADER.size).reshape(npos, rec)
    targets = body[:, 0:4].copy().view("<i4")[:, 0]
    logp = body[:, 4:8].copy().view("<f4")[:, 0]
    return targets, logp.astype(np.float64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True,
                    help="checkpoint directory (config.json, tokenizer.json, *.safetensors)")
    ap.add_argument("--file", required=True, help="the text (UTF-8)")
    ap.add_argument("--ctx", type=int, default=512, help="window length in tokens (default 512)")
    ap.add_argument("--stride", type=int, default=0, help="window start every S tokens (default --ctx)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--fp4rt-ppl", action="append", default=[],
                    help="compare with `fp4rt perplexity --save-logits` of the same text (repeatable)")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args(argv)
    stride = a.stride or a.ctx
    if a.threads > 0:
        torch.set_num_threads(a.threads)

    import transformers
    from tokenizers import Tokenizer

    tok_path = os.path.join(a.model, "tokenizer.json")
    if not os.path.isfile(tok_path):
        sys.exit(f"hf_perplexity: {tok_path} missing")
    try:
        with open(a.file, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"hf_perplexity: {a.file}: {e}")
    if not text:
        sys.exit(f"hf_perplexity: {a.file}: the text file is empty")
    ids = Tokenizer.from_file(tok_path).encode(text, add_special_tokens=False).ids

    model, _, info = reference_logits.load_model(a.model, log=lambda *x: None)
    cfg = info["config"]
    vocab = cfg.vocab_size
    n_windows, first = plan(len(ids), a.ctx, stride, cfg.max_position_embeddings)
    n_scored = n_windows * (a.ctx - first)
    thash = token_hash(ids)
    print(f"hf_perplexity: {len(ids)} tokens (hash {thash:016x}), {n_windows} windows of {a.ctx} "
          f"(stride {stride}), {n_scored} tokens scored; transformers float32, eager attention, "
          f"threads {torch.get_num_threads()}", flush=True)

    t0 = time.time()
    nll = np.empty(n_scored, dtype=np.float64)
    targets = np.empty(n_scored, dtype=np.int64)
    j = 0
    with torch.no_grad():
        for w in range(n_windows):
            win = ids[w * stride: w * stride + a.ctx]
            logits = model(input_ids=torch.tensor([win]), use_cache=False).logits[0]
            if not torch.isfinite(logits).all():
                sys.exit(f"hf_perplexity: window {w}: non-finite logits")
            rows = logits[first - 1: a.ctx - 1].to(torch.float64)
            tgt = torch.tensor(win[first:], dtype=torch.long)
            lp = torch.logsumexp(rows, dim=-1) - rows.gather(1, tgt[:, None])[:, 0]
            nll[j: j + len(tgt)] = lp.numpy()
            targets[j: j + len(tgt)] = tgt.numpy()
            j += len(tgt)
            print(f"\r{w + 1}/{n_windows} windows, ppl {math.exp(nll[:j].mean()):.2f}", end="",
                  file=sys.stderr, flush=True)
    print(file=sys.stderr)
    ppl, err = summary(nll.tolist())
    secs = time.time() - t0
    print(f"perplexity: {ppl:.4f} ± {err:.4f} over {n_scored} tokens")
    print(f"time: {secs:.1f} s ({n_windows * a.ctx / secs:.1f} tokens/s evaluated)")
    out = {"model": a.model, "file": a.file, "ctx": a.ctx, "stride": stride, "n_tokens": len(ids),
           "token_hash": f"{thash:016x}", "n_windows": n_windows, "n_scored": n_scored,
           "perplexity": ppl, "error": err, "seconds": round(secs, 1),
           "transformers": transformers.__version__, "torch": torch.__version__}

    out["fp4rt"] = []
    for path in a.fp4rt_ppl:
        ftgt, flp = read_fp4rt_ppl(path, vocab, a.ctx, stride, n_scored, len(ids), thash)
        if not np.array_equal(ftgt.astype(np.int64), targets):
            sys.exit(f"hf_perplexity: {path}: the scored tokens differ from this run's")
        fppl, ferr = summary((-flp).tolist())
        d = np.abs(-flp - nll)
        rel = abs(fppl - ppl) / ppl
        print(f"fp4rt ({path}): perplexity {fppl:.4f} ± {ferr:.4f}; relative difference "
              f"{rel:.2e}; per-token |log p| difference max {d.max():.2e}, mean {d.mean():.2e}")
        out["fp4rt"].append({"file": path, "perplexity": fppl, "error": ferr, "relative_difference": rel,
                             "max_abs_logp_diff": float(d.max()), "mean_abs_logp_diff": float(d.mean())})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
