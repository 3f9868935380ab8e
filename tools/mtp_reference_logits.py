#!/usr/bin/env python3
"""Reference MTP-head logits of a checkpoint with an MTP head (mtp.*), teacher-forced, float32.

    /work/venv-train/bin/python tools/mtp_reference_logits.py --model models/qwen35-kjv-10m \
        --tokens tests/fixtures/kjv-mtp.tokens.txt --out tests/fixtures/kjv-mtp.logits.bin

Contract: reads the token ids x_0 .. x_{T-1} (comma-separated, one line), runs the trunk
(transformers' Qwen3_5 classes via tools/ref_model.py, weights upcast to float32) to get the
final-normed hidden states h_i, then the MTP head of tools/ref_model.py (vLLM's
Qwen3_5MultiTokenPredictor) on the pairs (h_i, x_{i+1}), i = 0 .. T-2, at RoPE positions i, and
writes the shared lm_head's logits, float32 little-endian row-major [T-1, vocab], no header: row
i predicts x_{i+2}. With --text FILE --n N it first writes the first N token ids of FILE (the
model's tokenizer.json) to --tokens. With --chain-out FILE --chain K it also writes the logits of K
greedy drafts chained as vLLM chains a single MTP layer, float32 [K, vocab]: the trunk has
evaluated x_0 .. x_{T-2}; draft 1 comes from (h_{T-2}, x_{T-1}) at position T-2, draft k > 1 from
the head's own mtp.norm output of draft k-1 and draft k-1's argmax at position T-3+k, the head
attending causally over all its earlier pairs.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from ref_model import build_model, mtp_hidden  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--text")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--chain-out")
    ap.add_argument("--chain", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.text:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
        ids = tok.encode(open(a.text, encoding="utf-8").read(), add_special_tokens=False).ids[: a.n]
        if len(ids) < a.n:
            sys.exit(f"mtp_reference_logits: {a.text} has only {len(ids)} tokens")
        with open(a.tokens, "w") as f:
            f.write(",".join(map(str, ids)) + "\n")
    ids = [int(t) for t in open(a.tokens).read().strip().split(",")]
    cfg_json = json.load(open(os.path.join(a.model, "config.json")))
    tcfg = cfg_json.get("text_config", cfg_json)
    cfg, model, mtp, _ = build_model(tcfg)
    from safetensors.torch import load_file
    raw = load_file(os.path.join(a.model, "model.safetensors"))
    model.model.load_state_dict({k[len("model.language_model."):]: v.float() for k, v in raw.items()
                                 if k.startswith("model.language_model.")}, strict=True)
    mtp.load_state_dict({k[len("mtp."):]: v.float() for k, v in raw.items() if k.startswith("mtp.")}, strict=True)
    model.float().eval()
    mtp.float().eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        h = model.model(input_ids=x).last_hidden_state  # after the trunk's final norm
        m = mtp_hidden(model, mtp, cfg, h[:, :-1], x[:, 1:], 0)
        lg = F.linear(m, model.model.embed_tokens.weight)[0].float().contiguous()
    lg.numpy().astype("<f4").tofile(a.out)
    if a.chain_out:
        with torch.no_grad():
            hid, nxt, rows = h[:, :-1], x[:, 1:], []
            for _ in range(a.chain):
                m = mtp_hidden(model, mtp, cfg, hid, nxt, 0)
                row = F.linear(m[:, -1], model.model.embed_tokens.weight)[0].float()
                rows.append(row)
                hid = torch.cat([hid, m[:, -1:]], dim=1)
                nxt = torch.cat([nxt, row.argmax().view(1, 1)], dim=1)
            torch.stack(rows).contiguous().numpy().astype("<f4").tofile(a.chain_out)
        print(f"mtp_reference_logits: {a.chain} chained drafts -> {a.chain_out}")
    print(f"mtp_reference_logits: {len(ids)} tokens -> {tuple(lg.shape)} logits in {a.out}")


if __name__ == "__main__":
    main()
