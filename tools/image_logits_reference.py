#!/usr/bin/env python3
"""Logits of prompts with images, with transformers: the whole path (processor, vision
tower, M-RoPE text model) for tests/engine/test_image_logits.c.

    fp4rt synth --config tiny --out /tmp/tiny-vision      (seed 0, as test_vision)
    /work/venv-train/bin/python tools/image_logits_reference.py /tmp/tiny-vision \\
        [--out tests/fixtures/vision]

The checkpoint is fp4rt's synthetic "tiny" (seed 0; its tokenizer's <|image_pad|> is id
510, vision start / end 508 / 509, as config.json says): the C test synthesizes the same
bytes again. The processor is Qwen2VLImageProcessorPil with
tests/fixtures/vision/cfg_rgb6x6.json (small grids; the C test writes it as the model's
preprocessor_config.json). For each case: the prompt's token ids with one <|image_pad|>
per image (what fp4rt_tokenize gives for fp4rt_chat_format's text), the expanded ids
(each pad -> grid_t * grid_h/2 * grid_w/2 pads, as the processor does), mm_token_type_ids
(1 at the pads) and the logits of Qwen3_5ForConditionalGeneration (float32, CPU,
pure-torch GDN) given input_ids, pixel_values, image_grid_thw in one forward.

Writes OUT/image_logits.txt, one block per case:
  case NAME / images FILE... / prompt N ids... / expanded L ids... / end
and OUT/NAME.logits: float32 LE [L, vocab].
"""
import argparse
import json
import os
import sys

os.environ["USE_HUB_KERNELS"] = "0"  # pure-torch GDN, before transformers is imported

import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from transformers import Qwen3_5ForConditionalGeneration  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(HERE, "..", "tests", "fixtures", "images")
VS, VE, PAD = 508, 509, 510

# text ids are arbitrary in-vocabulary BPE ids (< 499, the first added token)
CASES = [
    ("img_one", ["rgb.png"], [11, 12, 13, VS, PAD, VE, 40, 41, 42, 43]),
    ("img_two", ["rgb.png", "big.png"], [20, VS, PAD, VE, 21, 22, VS, PAD, VE, 23, 24, 25]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "vision"))
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    if (cfg.get("image_token_id"), cfg.get("vision_start_token_id"), cfg.get("vision_end_token_id")) != (PAD, VS, VE):
        sys.exit(f"{a.model}: the vision token ids are not {PAD}, {VS}, {VE}: synthesize it again")
    with open(os.path.join(a.out, "cfg_rgb6x6.json")) as f:
        pcfg = json.load(f)
    proc = Qwen2VLImageProcessorPil(**{k: v for k, v in pcfg.items() if k not in ("processor_class", "image_processor_type")})
    torch.manual_seed(0)
    model = Qwen3_5ForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32).eval()
    merge = model.config.vision_config.spatial_merge_size
    lines = [f"# tools/image_logits_reference.py on fp4rt synth tiny seed 0; processor {os.path.basename('cfg_rgb6x6.json')}"]
    for name, images, ids in CASES:
        imgs = [ImageOps.exif_transpose(Image.open(os.path.join(IMAGES, f))) for f in images]
        enc = proc(images=imgs, return_tensors="pt")
        grids = enc["image_grid_thw"]
        expanded, k = [], 0
        for t in ids:
            if t == PAD:
                gt, gh, gw = (int(x) for x in grids[k])
                expanded += [PAD] * (gt * (gh // merge) * (gw // merge))
                k += 1
            else:
                expanded.append(t)
        input_ids = torch.tensor([expanded])
        mm = (input_ids == PAD).int()
        with torch.no_grad():
            out = model(input_ids=input_ids, pixel_values=enc["pixel_values"].float(), image_grid_thw=grids,
                        mm_token_type_ids=mm, use_cache=False)
        logits = out.logits[0].float()
        logits.numpy().astype("<f4").tofile(os.path.join(a.out, f"{name}.logits"))
        lines += [f"case {name}", "images " + " ".join(images),
                  "prompt " + " ".join(str(x) for x in [len(ids)] + ids),
                  "expanded " + " ".join(str(x) for x in [len(expanded)] + expanded), "end"]
        print(name, "grids", grids.tolist(), "tokens", len(expanded), "logits", tuple(logits.shape), file=sys.stderr)
    with open(os.path.join(a.out, "image_logits.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
