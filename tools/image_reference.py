#!/usr/bin/env python3
"""Reference data for fp4rt's image preprocessing (runtime/vision/, docs/MODEL.md
"Vision preprocessing"): the Hugging Face image processor's pixel values for a few
small committed test images.

    /work/venv-train/bin/python tools/image_reference.py [--out tests/fixtures/images]

Needs numpy, Pillow 13.0.0 and transformers (no torchvision: the processor used is
transformers' `Qwen2VLImageProcessorPil`, the PIL backend of the class Qwen3.5 /
Qwen3.6 checkpoints name in preprocessor_config.json, `Qwen2VLImageProcessorFast`).
Pillow is pinned: runtime/vision/image_resize.c reproduces 13.0.0's bicubic bit for
bit, including its pass order (vertical first for some shapes, where Pillow <= 12.3
always ran the horizontal pass first: docs/MODEL.md, "Vision preprocessing").
Install: pip install "pillow==13.0.0".

What it writes into --out (all deterministic; rerunning rewrites identical files):
  * the test images, made here with PIL from seeded numpy noise and shapes, each a
    few KB and of odd size: rgb.png, rgba.png (partial alpha), gray.png (mode L),
    la.png (gray + alpha), pal_trns.png (palette with a transparent index),
    orient{3,5,6,7,8}.jpg (EXIF orientation tags),
    cmyk.jpg (Adobe CMYK JPEG), rgb.bmp (24-bit), anim.gif (two frames, a
    transparent index; the first frame counts), tiny.png (3x2, upscaled), gray16.png (16-bit gray: PIL clips to 255),
    big.png (downscaled);
  * <image>.<cfg>.pv: the processor's pixel_values, float32 little-endian
    [grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size^2];
  * images.txt: one line per case, "image cfg grid_t grid_h grid_w rows cols";
  * cfg_<name>.json: the processor configs (preprocessor_config.json format);
  * resize.bin + resize.txt: PIL's bicubic resize of a seeded 23x17 RGB image to
    several sizes (uint8, [h, w, 3] each), isolating the resampler;
  * smart_resize.txt: "h w -> rh rw" (or "h w -> error") of the processor's
    smart_resize under the real Qwen3.5 limits, for the C grid test.

The reference load path: PIL.Image.open, then PIL.ImageOps.exif_transpose (as
transformers.image_utils.load_image), then the PIL image itself is given to the
processor, whose convert_to_rgb composites alpha onto white. (load_image would
also call .convert("RGB"), which drops alpha instead; see docs/MODEL.md.)
"""
import argparse
import io
import json
import os

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
    smart_resize,
)

# The real Qwen3.5 / Qwen3.6 preprocessor_config.json (e.g. Qwen/Qwen3.5-2B-Base).
QWEN35 = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
# Test configs: the Qwen3.5 geometry with small pixel limits (so fixtures stay small),
# and a Qwen2-VL-like one (patch 14, CLIP mean / std, legacy min_pixels / max_pixels).
CONFIGS = {
    "q35": dict(QWEN35, size={"longest_edge": 3072, "shortest_edge": 1024}),
    "clip": {
        "min_pixels": 784,
        "max_pixels": 2352,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "rescale_factor": 0.00392156862745098,
        "resample": 3,
        "image_processor_type": "Qwen2VLImageProcessor",
    },
}


def picture(w, h, seed):
    """A smooth gradient with mild noise and a few shapes: structure that shows a wrong
    orientation or channel order, noise that exercises the resampler."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    base = np.concatenate([255 * x * np.ones((h, 1, 1)), 255 * y * np.ones((1, w, 1)),
                           255 * (1 - x) * (1 - y)], axis=2)
    noise = rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    if w < 8 or h < 8:
        return img
    d = ImageDraw.Draw(img)
    d.rectangle([w // 8, h // 6, w // 3, h // 2], fill=(250, 30, 20))
    d.ellipse([w // 2, h // 2, w - 3, h - 2], fill=(20, 200, 60))
    return img


def alpha_channel(w, h, seed):
    rng = np.random.default_rng(seed)
    a = np.linspace(0, 255, w)[None, :] * np.ones((h, 1))
    a[: h // 3, :] = 255
    a[h - 3:, :] = 0
    a = np.clip(a + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "L")


def exif_bytes(orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def make_images(out):
    files = {}

    def save(name, img, **kw):
        path = os.path.join(out, name)
        img.save(path, **kw)
        files[name] = path

    save("rgb.png", picture(53, 37, 1))
    rgba = picture(45, 29, 2)
    rgba.putalpha(alpha_channel(45, 29, 3))
    save("rgba.png", rgba)
    save("gray.png", picture(41, 59, 4).convert("L"))
    la = picture(39, 33, 5).convert("L")
    la = Image.merge("LA", [la, alpha_channel(39, 33, 6)])
    save("la.png", la)
    pal = picture(47, 31, 7).quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    save("pal_trns.png", pal, transparency=3)
    for o in (6, 5, 7, 8, 3):
        save(f"orient{o}.jpg", picture(51, 35, 10 + o), quality=92, exif=exif_bytes(o))
    save("cmyk.jpg", picture(43, 35, 20).convert("CMYK"), quality=92)
    save("rgb.bmp", picture(35, 27, 21))
    f0 = picture(37, 33, 22).quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    f1 = picture(37, 33, 23).quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = os.path.join(out, "anim.gif")
    f0.save(buf, save_all=True, append_images=[f1], transparency=5, duration=100, loop=0, disposal=1)
    files["anim.gif"] = buf
    save("tiny.png", picture(3, 2, 24))
    # 16-bit grayscale (PIL mode I;16): values around and far above 255
    g = np.asarray(picture(33, 29, 26).convert("L")).astype(np.uint16)
    g16 = (g * np.where(np.arange(33)[None, :] < 16, 1, 257)).astype(np.uint16)
    save("gray16.png", Image.fromarray(g16))
    save("big.png", picture(157, 101, 25))
    return files


def reference_pixels(path, cfg):
    img = ImageOps.exif_transpose(Image.open(path))
    proc = Qwen2VLImageProcessorPil(**{k: v for k, v in cfg.items()
                                       if k not in ("processor_class", "image_processor_type")})
    res = proc(images=[img], return_tensors="np")
    pv = np.asarray(res["pixel_values"], dtype=np.float32)
    grid = np.asarray(res["image_grid_thw"]).reshape(-1).tolist()
    return pv, grid


def main():
    import PIL
    if PIL.__version__ != "13.0.0":
        raise SystemExit(f"tools/image_reference.py: Pillow {PIL.__version__}; the fixtures pin 13.0.0 "
                         "(pip install pillow==13.0.0)")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/images")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    files = make_images(out)

    for name, cfg in CONFIGS.items():
        with open(os.path.join(out, f"cfg_{name}.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    lines = []
    for img_name in sorted(files):
        for cfg_name in ("q35", "clip") if img_name in ("rgb.png", "rgba.png", "orient6.jpg") else ("q35",):
            pv, grid = reference_pixels(files[img_name], CONFIGS[cfg_name])
            pv.astype("<f4").tofile(os.path.join(out, f"{img_name}.{cfg_name}.pv"))
            lines.append(f"{img_name} {cfg_name} {grid[0]} {grid[1]} {grid[2]} {pv.shape[0]} {pv.shape[1]}")
    with open(os.path.join(out, "images.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # the resampler alone: PIL bicubic (the processor's resample=3) of a seeded image
    rng = np.random.default_rng(99)
    src = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    src[4:9, 3:12] = (255, 0, 0)  # a hard edge: overshoot clipped to 0 / 255
    src[10:, 15:] = 0
    Image.fromarray(src, "RGB").save(os.path.join(out, "resize_src.png"))
    # both pass orders: vertical first when h < 17 and 2 (23 - w) < 17 - h (Pillow 13.0)
    sizes = [(5, 4), (64, 48), (23, 40), (7, 17), (46, 9), (1, 1), (23, 17), (20, 5), (24, 16),
             (22, 16), (11, 16), (40, 10), (5, 2), (60, 30)]
    blob = bytearray()
    with open(os.path.join(out, "resize.txt"), "w") as f:
        for w, h in sizes:
            r = np.asarray(Image.fromarray(src, "RGB").resize((w, h), resample=Image.Resampling.BICUBIC))
            f.write(f"{w} {h} {len(blob)}\n")
            blob += r.astype(np.uint8).tobytes()
    with open(os.path.join(out, "resize.bin"), "wb") as f:
        f.write(bytes(blob))

    # smart_resize under the real limits
    factor = QWEN35["patch_size"] * QWEN35["merge_size"]
    lo, hi = QWEN35["size"]["shortest_edge"], QWEN35["size"]["longest_edge"]
    cases = [(1, 1), (2, 3), (37, 53), (256, 256), (240, 272), (1080, 1920), (3024, 4032),
             (4096, 4096), (5000, 5000), (100, 19999), (100, 20001), (48, 9600), (17, 3333),
             (720, 1280), (80, 80), (16, 16), (1, 200), (1, 201), (8000, 3000), (513, 511)]
    with open(os.path.join(out, "smart_resize.txt"), "w") as f:
        for h, w in cases:
            try:
                rh, rw = smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
                f.write(f"{h} {w} {rh} {rw}\n")
            except ValueError:
                f.write(f"{h} {w} error\n")
    print(f"wrote {len(lines)} cases, {len(sizes)} resizes, {len(cases)} smart_resize cases to {out}")


if __name__ == "__main__":
    main()
