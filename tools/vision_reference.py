#!/usr/bin/env python3
"""Reference data for fp4rt's vision tower (runtime/engine/vision.c,
runtime/model/program_vision.c; docs/MODEL.md "Vision encoder"): transformers'
Qwen3_5ForConditionalGeneration visual model, on the CPU in float32, run on the
processor's pixel values of committed test images.

    fp4rt synth --config tiny --out /tmp/tiny-vision
    /work/venv-train/bin/python tools/vision_reference.py /tmp/tiny-vision \\
        [--out tests/fixtures/vision]

The checkpoint is fp4rt's synthetic "tiny" (seed 0, vision depth 2, hidden 64,
2 heads, 8 x 8 position table): `fp4rt synth` writes the same bytes on every
machine, so the C test synthesizes it again and compares with these files.

What it writes into --out (float32 little-endian; shapes in vision.txt, one line
per case "name grid_t grid_h grid_w patch_dim hidden n_tokens out_hidden"):
  * <name>.pv: the pixel values [grid_t * grid_h * grid_w, patch_dim] (the
    processor, Qwen2VLImageProcessorPil, with cfg_<name>.json);
  * <name>.embed0: patch_embed + interpolated pos_embed [n_patches, hidden], the
    encoder's input to its first block (for debugging);
  * <name>.vision: the merger's output [n_tokens, out_hidden] (the embeddings the
    <|image_pad|> tokens take).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import Qwen3_5ForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.vision_utils import get_vision_interpolation_indices_and_weights, get_vision_position_ids

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "..", "tests", "fixtures", "images")

# name, image, processor limits (shortest_edge, longest_edge) in pixels: odd grids
# whose position embeddings interpolate between the table's entries.
CASES = [
    ("rgb6x6", "rgb.png", 6144, 12288),  # 53 x 37 up to 96 x 96: grid 6 x 6
    ("gray6x4", "gray.png", 4096, 12288),  # 41 x 59 up to 64 x 96: grid 6 x 4
]


def processor_cfg(lo, hi):
    return {
        "size": {"shortest_edge": lo, "longest_edge": hi},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "vision"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    model = Qwen3_5ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).eval()
    vis = model.model.visual
    merge = vis.config.spatial_merge_size
    lines = []
    for name, image, lo, hi in CASES:
        cfg = processor_cfg(lo, hi)
        with open(os.path.join(a.out, f"cfg_{name}.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        proc = Qwen2VLImageProcessorPil(**{k: v for k, v in cfg.items() if k not in ("processor_class", "image_processor_type")})
        img = ImageOps.exif_transpose(Image.open(os.path.join(IMAGES, image)))
        enc = proc(images=[img], return_tensors="pt")
        pv = enc["pixel_values"].to(torch.float32)
        grid = enc["image_grid_thw"]
        t, h, w = (int(x) for x in grid[0])
        with torch.no_grad():
            out = vis(pv, grid_thw=grid)
            merged = out.pooler_output
            idx, wts = get_vision_interpolation_indices_and_weights(
                grid, num_grid_per_side=vis.num_grid_per_side, mode=vis.interpolation_mode,
                align_corners=vis.interpolation_align_corners, spatial_merge_size=merge)
            x0 = vis.patch_embed(pv) + (vis.pos_embed(idx) * wts[:, :, None]).sum(1)
        pv.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}.pv"))
        x0.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}.embed0"))
        merged.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}.vision"))
        lines.append(f"{name} {t} {h} {w} {pv.shape[1]} {x0.shape[1]} {merged.shape[0]} {merged.shape[1]}")
        pos = get_vision_position_ids(grid, merge)
        print(name, image, "grid", (t, h, w), "tokens", tuple(merged.shape),
              "rms", float(merged.pow(2).mean().sqrt()), "first (h, w)", pos[:6].tolist(), file=sys.stderr)
    with open(os.path.join(a.out, "vision.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
