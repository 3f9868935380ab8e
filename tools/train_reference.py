#!/usr/bin/env python3
"""Train a small reference model of the exact Qwen3.5/3.6 text architecture, with its MTP head.

    python tools/train_reference.py --selftest      # MTP wiring + checkpoint round trip, ~10 s
    python tools/train_reference.py --out DIR --chat-template FILE [--work DIR] [--seed 1234]
        [--steps N] [--batch 8] [--seq-len 256] [--lr 2e-3] [--mtp-weight 0.3] [--threads 2]
        [--max-train-tokens N] [--eval-every N] [--hidden 256] [--layers 8] [--vocab 8192]

Pipeline (each step a function below):
 1. Corpus: tools/corpus.py writes WORK/corpus/{train,heldout}.jsonl (KJV Bible chapters from the
    Debian package bible-kjv-text; every 50th chapter held out).
 2. Tokenizer: byte-level BPE trained with Hugging Face `tokenizers` on the TRAINING documents
    only: NFC normalizer, Qwen3.5's split regex then ByteLevel (no prefix space), ByteLevel
    decoder, no BOS.  Qwen3.5/3.6's added tokens follow the BPE ids in Qwen's order
    (<|endoftext|>, <|im_start|>, <|im_end|>, ... <think>, </think>); the embedding has
    --vocab rows (padded past the tokenizer's size as Qwen pads 248,077 -> 248,320).
    tokenizer_config.json carries the Qwen3.6 chat template given with --chat-template (its text
    is not in this repository; see tools/README.md).
 3. Model: transformers' own Qwen3_5ForCausalLM (trunk: 3 Gated DeltaNet : 1 gated attention,
    GQA, partial RoPE 0.25, zero-centred RMSNorms, gated RMSNorm in GDN, q/k norms) plus the MTP
    head of tools/ref_model.py (class MTPHead; math in docs/MODEL.md §3 "MTP head").  Embedding and lm_head
    are tied and shared by the MTP head.
 4. Training: L = CE(main logits_i, x_{i+1}) + mtp_weight * CE(mtp logits_i, x_{i+2}), jointly (the
    trunk's hidden states are not detached), AdamW, linear warm-up then cosine decay to 10 %,
    gradient clipping 1.0.  Data order is fixed by the seed: the training stream (documents
    joined with <|endoftext|>) is cut into windows of seq_len + 2 tokens, shuffled once per epoch
    with a torch.Generator seeded from --seed.  torch.use_deterministic_algorithms(True) and a
    fixed thread count: same seed, same threads, same package versions -> same weights.
 5. Output DIR: config.json (Qwen3_5ForConditionalGeneration with text_config, the keys of the
    official checkpoints), generation_config.json, tokenizer.json, tokenizer_config.json,
    model.safetensors (BF16; model.language_model.* and mtp.*), train_log.csv (per-step losses),
    eval_log.csv (held-out perplexity at every eval), train_summary.json (time, tokens/s, final
    held-out perplexity of the main head and of the MTP head, versions, corpus hashes).
    After saving, the file is read back and every tensor is loaded strictly into a fresh model +
    MTP head (names and shapes must match exactly).
"""

import argparse
import csv
import json
import math
import os
import platform
import sys
import time

os.environ["USE_HUB_KERNELS"] = "0"  # must precede any transformers import (pure-torch GDN)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as corpus_mod  # noqa: E402
from ref_model import (build_model, forward_logits, forward_losses, mtp_hidden,  # noqa: E402
                       save_checkpoint, text_config_dict, verify_saved)
from ref_tokenizer import encode_docs, read_chat_template, tokenizer_config, train_tokenizer  # noqa: E402


# --------------------------------------------------------------------------------------------
# Data, evaluation, schedule
# --------------------------------------------------------------------------------------------

def windows(stream, width):
    n = (stream.numel() - 1) // (width - 1)
    # consecutive windows overlap by one token so every position is a target exactly once
    return torch.stack([stream[i * (width - 1): i * (width - 1) + width] for i in range(n)])


@torch.no_grad()
def evaluate(model, mtp, cfg, held, seq_len, batch):
    """Held-out perplexity of the main head and of the MTP head over all non-overlapping windows."""
    model.eval(); mtp.eval()
    w = windows(held, seq_len + 2)
    tot_main = tot_mtp = 0.0
    count = 0
    for i in range(0, w.shape[0], batch):
        c = w[i:i + batch]
        lm, lt = forward_losses(model, mtp, cfg, c)
        n = c.shape[0] * seq_len
        tot_main += lm.item() * n; tot_mtp += lt.item() * n; count += n
    model.train(); mtp.train()
    return math.exp(tot_main / count), math.exp(tot_mtp / count), count


def lr_at(step, steps, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

# --------------------------------------------------------------------------------------------
# Self-test (no corpus, no chat template; ~10 s)
# --------------------------------------------------------------------------------------------

TINY = ["--hidden", "64", "--intermediate", "128", "--heads", "2", "--kv-heads", "1", "--head-dim", "32",
        "--gdn-k-heads", "1", "--gdn-v-heads", "2", "--gdn-head-dim", "32", "--layers", "4", "--vocab", "96"]


def selftest():
    """Checks the MTP wiring and the checkpoint round trip on a tiny random model; exits 1 on failure."""
    import tempfile

    fails, passes = [], []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
        (passes if ok else fails).append(name)

    torch.manual_seed(7)
    torch.use_deterministic_algorithms(True)
    a = parse_args(["--out", "unused"] + TINY)
    tcfg = text_config_dict(a, [91, 90])
    cfg, model, mtp, _ = build_model(tcfg)
    for p in mtp.parameters():  # break the zero-init symmetry of the norms: every weight matters
        p.data.add_(0.05 * torch.randn_like(p))
    # the final norm's (1 + w) is the only thing that tells norm(h) from h after pre_fc_norm_hidden
    model.model.norm.weight.data.add_(0.5 * torch.randn_like(model.model.norm.weight))
    check("every embedding row trains (no padding_idx)", model.model.embed_tokens.padding_idx is None
          and "pad_token_id" not in tcfg)
    check("lm_head tied to embed_tokens", model.lm_head.weight is model.model.embed_tokens.weight)
    model.eval(); mtp.eval()
    x = torch.randint(0, 90, (2, 25))
    with torch.no_grad():
        main, extra = forward_logits(model, mtp, cfg, x)
        # main logits at i see x_<=i; MTP logits at i see x_<=i+1 and nothing later
        y = x.clone(); y[:, 12] = (y[:, 12] + 1) % 90
        main2, extra2 = forward_logits(model, mtp, cfg, y)
        d = lambda u, v: (u - v).abs().max().item()
        check("main causal", d(main[:, :12], main2[:, :12]) == 0.0 and d(main[:, 12:], main2[:, 12:]) > 1e-4)
        check("MTP causal (sees x_{i+1})", d(extra[:, :11], extra2[:, :11]) == 0.0 and d(extra[:, 11], extra2[:, 11]) > 1e-4,
              f"(|d| at i=11: {d(extra[:, 11], extra2[:, 11]):.2e})")
        h = model.model(input_ids=x[:, :-1]).last_hidden_state
        m1 = mtp_hidden(model, mtp, cfg, h, x[:, 1:], 1)
        m0 = mtp_hidden(model, mtp, cfg, h, x[:, 1:], 0)
        m9 = mtp_hidden(model, mtp, cfg, h, x[:, 1:], 9)
        check("MTP RoPE offset invariance", max(d(m1, m0), d(m1, m9)) < 1e-4, f"(|d| {max(d(m1, m0), d(m1, m9)):.2e})")
        seen = []
        hook = model.model.norm.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        forward_logits(model, mtp, cfg, x)
        hook.remove()
        lm_w = model.lm_head.weight
        from_normed = d(F.linear(mtp_hidden(model, mtp, cfg, h, x[:, 1:]), lm_w), extra)
        from_raw = d(F.linear(mtp_hidden(model, mtp, cfg, seen[0], x[:, 1:]), lm_w), extra)
        check("MTP is fed the final-normed trunk state", from_normed < 1e-5 and from_raw > 1e-3,
              f"(|d| normed {from_normed:.1e}, pre-norm {from_raw:.1e})")
        w = mtp.fc.weight.data.clone()
        mtp.fc.weight.data[:, :a.hidden] = 0  # embedding half first: zero it -> x_{i+1} no longer matters
        m_a = mtp_hidden(model, mtp, cfg, h, x[:, 1:])
        m_b = mtp_hidden(model, mtp, cfg, h, (x[:, 1:] + 3) % 90)
        mtp.fc.weight.data.copy_(w)
        check("fc input order [embedding ; hidden]", d(m_a, m_b) == 0.0)
    # training: both losses fall on a periodic stream (gradients reach the MTP head)
    model.train(); mtp.train()
    params = list(model.parameters()) + list(mtp.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    seq = torch.arange(10).repeat(40)[:34].unsqueeze(0).repeat(2, 1)
    first = None
    for _ in range(40):
        lm, lt = forward_losses(model, mtp, cfg, seq)
        first = first or (lm.item(), lt.item())
        opt.zero_grad(); (lm + 0.3 * lt).backward(); opt.step()
    check("joint training lowers both losses", lm.item() < 0.5 * first[0] and lt.item() < 0.5 * first[1],
          f"(main {first[0]:.2f} -> {lm.item():.2f}, MTP {first[1]:.2f} -> {lt.item():.2f})")
    from tokenizers import Tokenizer, models as tmodels
    with tempfile.TemporaryDirectory() as td:
        tensors = save_checkpoint(td, model, mtp, tcfg, Tokenizer(tmodels.BPE()), {}, [91, 90], 90)
        n, _ = verify_saved(td, tcfg)
        names = set(tensors)
        check("checkpoint names", n == len(tensors) and "mtp.fc.weight" in names
              and "mtp.layers.0.self_attn.q_norm.weight" in names and "mtp.pre_fc_norm_embedding.weight" in names
              and "model.language_model.layers.3.self_attn.q_proj.weight" in names
              and "lm_head.weight" not in names and all(v.dtype == torch.bfloat16 for v in tensors.values()))
    print(f"{len(passes)} passed, {len(fails)} failed")
    return 1 if fails else 0


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="checkpoint directory to write")
    ap.add_argument("--work", default=None, help="corpus / scratch directory (default OUT.work)")
    ap.add_argument("--chat-template", default=os.environ.get("FP4RT_CHAT_TEMPLATE"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--mtp-weight", type=float, default=0.3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-train-tokens", type=int, default=0, help="use only the first N training tokens (smoke runs)")
    ap.add_argument("--max-heldout-tokens", type=int, default=0, help="evaluate on the first N held-out tokens only")
    ap.add_argument("--vocab", type=int, default=8192, help="embedding rows (tokenizer size is 6 less)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--gdn-k-heads", type=int, default=2)
    ap.add_argument("--gdn-v-heads", type=int, default=4)
    ap.add_argument("--gdn-head-dim", type=int, default=64)
    a = ap.parse_args(argv)
    for name in ("steps", "batch", "seq_len", "threads", "eval_every", "log_every"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    return a


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args == ["--selftest"]:
        sys.exit(selftest())
    a = parse_args(args)
    t_start = time.time()
    chat_template = read_chat_template(a.chat_template)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(a.threads)
    work = a.work or a.out.rstrip("/") + ".work"

    corp = corpus_mod.build(os.path.join(work, "corpus"))
    train_docs = corpus_mod.read_jsonl(os.path.join(work, "corpus", "train.jsonl"))
    held_docs = corpus_mod.read_jsonl(os.path.join(work, "corpus", "heldout.jsonl"))
    tok, ids = train_tokenizer(train_docs, a.vocab)
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    train = encode_docs(tok, train_docs, eot)
    held = encode_docs(tok, held_docs, eot)
    if a.max_train_tokens:
        train = train[:a.max_train_tokens]
    if a.max_heldout_tokens:
        held = held[:a.max_heldout_tokens]
    print(f"corpus: {corp['train_docs']} train / {corp['heldout_docs']} held-out chapters; "
          f"tokenizer {tok.get_vocab_size()} ids; {train.numel()} train / {held.numel()} held-out tokens "
          f"({corp['train_chars'] / max(1, train.numel()):.2f} chars/token)", flush=True)

    tcfg = text_config_dict(a, [im_end, eot])
    cfg, model, mtp, _ = build_model(tcfg)
    params = list(model.parameters()) + list(mtp.parameters())
    n_params = sum(p.numel() for p in params)
    print(f"model: {n_params / 1e6:.2f} M parameters ({2 * n_params / 2**20:.1f} MiB BF16), "
          f"trunk {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M, "
          f"MTP {sum(p.numel() for p in mtp.parameters()) / 1e6:.2f} M", flush=True)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    data = windows(train, a.seq_len + 2)
    if data.shape[0] < a.batch:
        sys.exit(f"train_reference: only {data.shape[0]} training windows for --batch {a.batch}")
    gen = torch.Generator().manual_seed(a.seed)
    order, pos, epoch = torch.randperm(data.shape[0], generator=gen), 0, 0
    os.makedirs(a.out, exist_ok=True)
    flog = open(os.path.join(a.out, "train_log.csv"), "w", newline="")
    elog = open(os.path.join(a.out, "eval_log.csv"), "w", newline="")
    tw, ew = csv.writer(flog), csv.writer(elog)
    tw.writerow(["step", "epoch", "tokens", "lr", "loss", "loss_main", "loss_mtp", "elapsed_s"])
    ew.writerow(["step", "tokens", "heldout_ppl_main", "heldout_ppl_mtp", "elapsed_s"])
    t_train = time.time()
    tokens = 0
    for step in range(a.steps):
        if pos + a.batch > order.numel():
            order, pos, epoch = torch.randperm(data.shape[0], generator=gen), 0, epoch + 1
        chunk = data[order[pos:pos + a.batch]]
        pos += a.batch
        lr = lr_at(step, a.steps, a.warmup, a.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        lm, lt = forward_losses(model, mtp, cfg, chunk)
        loss = lm + a.mtp_weight * lt
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += a.batch * a.seq_len
        el = time.time() - t_train
        tw.writerow([step + 1, epoch, tokens, f"{lr:.3e}", f"{loss.item():.4f}", f"{lm.item():.4f}",
                     f"{lt.item():.4f}", f"{el:.1f}"])
        if (step + 1) % a.log_every == 0 or step == 0:
            flog.flush()
            print(f"step {step + 1}/{a.steps} epoch {epoch} loss {loss.item():.3f} main {lm.item():.3f} "
                  f"mtp {lt.item():.3f} lr {lr:.2e} {tokens / el:.0f} tok/s", flush=True)
        if (step + 1) % a.eval_every == 0 and step + 1 < a.steps:
            pm, pt, _ = evaluate(model, mtp, cfg, held, a.seq_len, a.batch)
            ew.writerow([step + 1, tokens, f"{pm:.3f}", f"{pt:.3f}", f"{time.time() - t_train:.1f}"])
            elog.flush()
            print(f"eval step {step + 1}: held-out ppl main {pm:.2f} mtp {pt:.2f}", flush=True)
    train_s = time.time() - t_train
    pm, pt, n_eval = evaluate(model, mtp, cfg, held, a.seq_len, a.batch)
    ew.writerow([a.steps, tokens, f"{pm:.3f}", f"{pt:.3f}", f"{time.time() - t_train:.1f}"])
    flog.close(); elog.close()
    print(f"final held-out perplexity: main {pm:.2f}, MTP (x_(i+2)) {pt:.2f} over {n_eval} tokens", flush=True)

    tensors = save_checkpoint(a.out, model, mtp, tcfg, tok, tokenizer_config(tok, chat_template),
                              [im_end, eot], eot)
    n_t, n_el = verify_saved(a.out, tcfg)
    import safetensors
    import tokenizers
    import transformers
    summary = {
        "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
        "args": vars(a), "corpus": corp, "tokenizer_size": tok.get_vocab_size(),
        "train_tokens_available": train.numel(), "heldout_tokens": held.numel(),
        "parameters": n_params, "tensors": n_t, "tensor_elements": n_el,
        "steps": a.steps, "epochs_seen": epoch + pos / order.numel(), "tokens_trained": tokens,
        "train_seconds": round(train_s, 1), "tokens_per_second": round(tokens / train_s, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "heldout_ppl_main": round(pm, 4), "heldout_ppl_mtp": round(pt, 4), "heldout_eval_tokens": n_eval,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "safetensors": safetensors.__version__},
    }
    with open(os.path.join(a.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: {len(tensors)} tensors, {n_params / 1e6:.2f} M parameters; "
          f"{tokens} tokens in {train_s:.0f} s ({tokens / train_s:.0f} tok/s)")


if __name__ == "__main__":
    main()
