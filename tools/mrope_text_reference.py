"""The text side of a prompt with images, with transformers: logits of the tiny fixture's
text model given embedding rows at the image-pad positions and 3-D M-RoPE position_ids.

For tests/engine/test_mrope_logits.c (until the vision tower's own reference covers the
whole image path): for each case, the prompt's token ids (one run of PAD ids per image,
between VS / VE), the images' patch grids, pseudo-random embedding rows for the pads, the
position_ids of transformers' get_rope_index (tools/rope_index_reference.py) and the
logits of Qwen3_5ForCausalLM (tools/reference_logits.py's loader: float32, eager, pure-torch
GDN) run as inputs_embeds = embed_tokens(ids) with the pad rows replaced by the given
rows, position_ids = the (3, 1, L) positions, in one prefill.

Writes OUT_DIR/NAME.txt (merge, grids, tokens, delta) and OUT_DIR/NAME.bin: float32 LE,
the pad rows [n_pad, hidden] then the logits [L, vocab].
Usage: /work/venv-train/bin/python tools/mrope_text_reference.py [MODEL_DIR] [OUT_DIR]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["USE_HUB_KERNELS"] = "0"

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_logits as R  # noqa: E402
import rope_index_reference as RI  # noqa: E402

PAD, VS, VE = 7, 5, 6  # in the tiny vocabulary; the C test uses the same ids

# (name, merge, parts): ints are text ids, tuples ("img", t, h, w, merge) one image each
CASES = [
    ("mrope_one_image", 2, [11, 12, 13, 14, ("img", 1, 4, 6, 2), 20, 21, 22, 23, 24]),
    ("mrope_two_images", 2, [30, ("img", 1, 4, 4, 2), 31, 32, ("img", 1, 8, 4, 2), 33, 34, 35, 36]),
]


def build(parts):
    ids, grids = [], []
    for p in parts:
        if isinstance(p, tuple):
            _, t, h, w, m = p
            ids += [VS] + [PAD] * (t * (h // m) * (w // m)) + [VE]
            grids.append([t, h, w])
        else:
            ids.append(p)
    return ids, grids


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/tiny-bf16"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/vision"
    torch.manual_seed(0)
    model, M, info = R.load_model(model_dir, log=lambda *a: None)
    model.eval()
    RI.IMG = PAD
    emb = model.get_input_embeddings()
    for name, merge, parts in CASES:
        ids, grids = build(parts)
        pos, delta = RI.rope_index(ids, grids, merge)  # pads: RI.IMG = PAD above
        n_pad = sum(1 for i in ids if i == PAD)
        g = torch.Generator().manual_seed(1234)
        rows = (torch.randn(n_pad, emb.weight.shape[1], generator=g) * 0.05).float()
        with torch.no_grad():
            x = emb(torch.tensor([ids])).clone()
            mask = torch.tensor([ids]) == PAD
            x[mask] = rows
            pid = torch.tensor(pos, dtype=torch.long)[:, None, :]
            logits = model(inputs_embeds=x, position_ids=pid, use_cache=False).logits[0].float()
        with open(os.path.join(out_dir, name + ".txt"), "w") as f:
            f.write(f"# tools/mrope_text_reference.py on {model_dir}: PAD {PAD}\n")
            f.write(f"merge {merge}\n")
            f.write("grids " + " ".join([str(len(grids))] + [str(v) for gr in grids for v in gr]) + "\n")
            f.write("tokens " + " ".join([str(len(ids))] + [str(i) for i in ids]) + "\n")
            f.write(f"delta {delta}\n")
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            f.write(rows.numpy().astype("<f4").tobytes())
            f.write(logits.numpy().astype("<f4").tobytes())
        print(f"{name}: {len(ids)} tokens, {n_pad} pad rows, delta {delta}, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
