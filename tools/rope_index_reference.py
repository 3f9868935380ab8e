"""M-RoPE positions of token sequences with images, as transformers computes them.

Writes tests/fixtures/vision/rope_index.txt for tests/engine/test_rope_index.c: for a few
layouts (text only, one image mid-prompt, two images of different grids, an odd grid with
H != W) the 3-D position_ids and mrope_position_deltas of transformers'
Qwen3_5Model.get_rope_index (models/qwen3_5/modeling_qwen3_5.py), called on the class with
a stand-in `self` that carries only what the method reads (the vision config's
spatial_merge_size and get_vision_position_ids). mm_token_type_ids marks the image pads (1),
as the Qwen3-VL processor does; <|vision_start|> / <|vision_end|> are text.

Format, one case per block:
  case NAME
  merge M
  grids N  t h w  t h w ...        (image_grid_thw rows, patches before merging)
  tokens L  id id ...              (IMG = the pad id below)
  pos_t / pos_h / pos_w  v v ...   (L values each)
  delta D                          (mrope_position_deltas)
Usage: /work/venv-train/bin/python tools/rope_index_reference.py [OUT]
"""
import sys
import types

import torch
from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5Model

IMG, VS, VE = 248056, 248053, 248054  # <|image_pad|>, <|vision_start|>, <|vision_end|>


def prompt(parts):
    """parts: ints (text ids), or ("img", t, h, w, merge)."""
    ids, grids = [], []
    for p in parts:
        if isinstance(p, tuple):
            _, t, h, w, m = p
            ids += [VS] + [IMG] * (t * (h // m) * (w // m)) + [VE]
            grids.append([t, h, w])
        else:
            ids.append(p)
    return ids, grids


def rope_index(ids, grids, merge):
    me = types.SimpleNamespace()
    me.config = types.SimpleNamespace(vision_config=types.SimpleNamespace(spatial_merge_size=merge))
    me.get_vision_position_ids = lambda *a, **k: Qwen3_5Model.get_vision_position_ids(me, *a, **k)
    input_ids = torch.tensor([ids])
    mm = (input_ids == IMG).int()
    thw = torch.tensor(grids) if grids else None
    pos, delta = Qwen3_5Model.get_rope_index(me, input_ids, mm_token_type_ids=mm, image_grid_thw=thw)
    return pos[:, 0, :].tolist(), int(delta[0, 0])


CASES = [
    ("text", 2, [10, 11, 12, 13, 14]),
    ("one_image", 2, [1, 2, 3, ("img", 1, 4, 6), 7, 8, 9]),
    ("two_images", 2, [5, ("img", 1, 4, 4), 6, 7, ("img", 1, 8, 2), 8]),
    ("tall_image_end", 2, [3, 4, ("img", 1, 6, 2)]),
    ("merge1", 1, [9, ("img", 1, 2, 3), 9, 9]),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/vision/rope_index.txt"
    lines = [f"# written by tools/rope_index_reference.py (transformers get_rope_index); IMG {IMG}"]
    for name, merge, parts in CASES:
        ids, grids = prompt([p if not isinstance(p, tuple) else p + (merge,) for p in parts])
        pos, delta = rope_index(ids, grids, merge)
        lines.append(f"case {name}")
        lines.append(f"merge {merge}")
        lines.append("grids " + " ".join([str(len(grids))] + [str(v) for g in grids for v in g]))
        lines.append("tokens " + " ".join([str(len(ids))] + [str(i) for i in ids]))
        for c, row in zip("thw", pos):
            lines.append(f"pos_{c} " + " ".join(str(v) for v in row))
        lines.append(f"delta {delta}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out} ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
