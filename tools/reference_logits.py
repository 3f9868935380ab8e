#!/usr/bin/env python3
"""Reference logits for fp4rt, computed with Hugging Face transformers' OWN Qwen3.5 code.

    python tools/reference_logits.py --model DIR --tokens 1,2,3 --out FILE.bin [--dump-json]
                                     [--decode] [--decode-out FILE] [--threads N] [--kv-fp8]
    python tools/reference_logits.py --selftest

Output: teacher-forced logits, float32 little-endian, row-major [n_tokens, vocab], no header.

What runs
---------
* transformers.models.qwen3_5.Qwen3_5ForCausalLM built from a Qwen3_5TextConfig.  A
  Qwen3_5ForConditionalGeneration checkpoint contributes its "text_config"; tensor names
  "model.language_model.X" -> "model.X", "lm_head.weight" stays, "model.visual.*" and "mtp.*" are
  skipped.  Every parameter must be loaded: missing / unexpected keys are a hard error.
* Everything in float32 on the CPU: BF16 tensors are upcast to float32 and the model is built in
  float32; attn_implementation = "eager".
* The Hub-kernel / flash-linear-attention / causal-conv1d integrations are disabled
  (USE_HUB_KERNELS=0 before importing transformers) and the script verifies at run time that the
  four GDN helpers in modeling_qwen3_5 resolved to their pure-torch fallbacks
  (torch_chunk_gated_delta_rule, torch_recurrent_gated_delta_rule, causal_conv1d_fn,
  causal_conv1d_update); it aborts otherwise.  It counts how often each was called.
* --decode additionally feeds the tokens one at a time through a DynamicCache.  The first token
  goes through the chunked GDN function (no state yet), every later token through
  torch_recurrent_gated_delta_rule + causal_conv1d_update.  The max |decode - prefill| is reported.

Quantized checkpoints (NVIDIA ModelOpt export format)
-----------------------------------------------------
Quantization is read from hf_quant_config.json ("quantization" section) or, if that file is absent,
from config.json "quantization_config" (if both exist they must agree).  Supported:
  quant_algo "MIXED_PRECISION" + quantized_layers {module: {"quant_algo": A, ...}}, A in
  {"NVFP4", "W4A16_NVFP4", "FP8"}; or a single quant_algo A with exclude_modules (fnmatch
  patterns).  The per-module algorithm from the config must match the tensors in the files
  (U8 weight + F8_E4M3 weight_scale + weight_scale_2 for the NVFP4 kinds, F8_E4M3 weight + F32
  weight_scale for FP8); any mismatch is a hard error.

Exact semantics (the fp4rt runtime's contract) -- see the functions below for the code:
  e2m1 value table {0, .5, 1, 1.5, 2, 3, 4, 6}, bit 3 = sign.
  NVFP4 weight:  W[n,k] = (e2m1(code[n,k]) * float(weight_scale[n,k//16])) * weight_scale_2,
                 code[n,2i] = byte[n,i] & 15 (LOW nibble), code[n,2i+1] = byte[n,i] >> 4.
  FP8 weight:    W = float(weight_e4m3) * weight_scale.
  FP8 act (W8A8 static):  x' = float(e4m3_RNE(clamp(x / input_scale, -448, 448))) * input_scale.
  W4A16_NVFP4 act: untouched (input_scale ignored).
  NVFP4 act (W4A4), per 16 consecutive elements along K of each row, all float32:
     amax = max|x|;  sf = e4m3_RNE(min(amax / 6.0 / input_scale, 448));
     if sf == 0: block -> 0
     else: d = sf * input_scale;  q = E2M1_RNE_sat(x / d)  (ties: .25->0 .75->1 1.25->1 1.75->2
           2.5->2 3.5->4 5->4; |v| > 5 -> 6);  x' = (e2m1(q) * sf) * input_scale
  then y = x' W^T (float32 nn.Linear).
  Optional --kv-fp8: K (post-norm, post-RoPE) and V entering eager attention are passed through the
  FP8 activation rule with k_scale / v_scale (tensors "...self_attn.k_proj.k_scale" /
  "...v_proj.v_scale" if present, else 1.0).  Off by default.
"""

import argparse
import fnmatch
import glob
import hashlib
import json
import os
import sys
import time

os.environ["USE_HUB_KERNELS"] = "0"  # must precede any transformers import

import numpy as np
import torch

torch.set_default_dtype(torch.float32)

# --------------------------------------------------------------------------------------------
# Number formats
# --------------------------------------------------------------------------------------------

E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
FP8_E4M3_MAX = 448.0


def e2m1_decode(codes):
    """Map 4-bit E2M1 codes (uint8 tensor, values 0..15) to float32.

    Bits 0-2 index {0, 0.5, 1, 1.5, 2, 3, 4, 6}; bit 3 is the sign (code 8 = -0.0).
    """
    table = torch.tensor(E2M1_VALUES + tuple(-v for v in E2M1_VALUES), dtype=torch.float32)
    return table[codes.long()]


def e2m1_round(v):
    """Round float32 values to E2M1 codes: round-to-nearest, ties to even mantissa, saturating at +-6.

    Midpoints and where they go: 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4; anything
    above 5 (including inf) -> 6.  Sign bit = (v < 0), so tiny negatives give -0 (code 8).
    NaN input is an error.  Returns uint8 codes.
    """
    if torch.isnan(v).any():
        raise ValueError("e2m1_round: NaN input")
    a = v.abs()
    mag = ((a > 0.25).to(torch.uint8) + (a >= 0.75).to(torch.uint8) + (a > 1.25).to(torch.uint8)
           + (a >= 1.75).to(torch.uint8) + (a > 2.5).to(torch.uint8) + (a >= 3.5).to(torch.uint8)
           + (a > 5.0).to(torch.uint8))
    return mag | ((v < 0).to(torch.uint8) << 3)


def e4m3_rne(x):
    """float32 -> float8_e4m3fn (torch cast: round-to-nearest-even) -> float32.

    Caller must keep |x| <= 448 (out-of-range values become NaN in torch's cast, not saturate).
    """
    return x.to(torch.float32).to(torch.float8_e4m3fn).to(torch.float32)


def unpack_nvfp4(packed):
    """uint8 [N, K/2] -> uint8 codes [N, K]; even element in the LOW nibble, odd in the HIGH."""
    lo = packed & 0x0F
    hi = packed >> 4
    return torch.stack((lo, hi), dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


def dequant_nvfp4_weight(weight, weight_scale, weight_scale_2):
    """ModelOpt NVFP4 weight -> float32 [N, K].

    weight U8 [N, K/2], weight_scale F8_E4M3 [N, K/16], weight_scale_2 F32 scalar:
    W[n,k] = (e2m1(code[n,k]) * float(weight_scale[n, k//16])) * weight_scale_2
    (e2m1 * e4m3 is exact in float32, so this is one correctly rounded product).
    """
    if weight.dtype != torch.uint8:
        raise TypeError(f"NVFP4 weight must be uint8, got {weight.dtype}")
    if weight_scale.dtype != torch.float8_e4m3fn:
        raise TypeError(f"NVFP4 weight_scale must be float8_e4m3fn, got {weight_scale.dtype}")
    codes = unpack_nvfp4(weight)
    n, k = codes.shape
    if weight_scale.shape != (n, k // 16) or k % 16:
        raise ValueError(f"NVFP4 weight_scale shape {tuple(weight_scale.shape)} != {(n, k // 16)}")
    ws = weight_scale.to(torch.float32)
    if not torch.isfinite(ws).all() or (ws < 0).any():
        raise ValueError("NVFP4 weight_scale has NaN or negative entries")
    s2 = weight_scale_2.to(torch.float32).reshape(-1)
    if s2.numel() != 1:
        raise ValueError("weight_scale_2 must be a scalar")
    blk = ws.repeat_interleave(16, dim=1)
    return (e2m1_decode(codes) * blk) * s2[0]


def dequant_fp8_weight(weight, weight_scale):
    """ModelOpt FP8 (per-tensor) weight -> float32: W = float(weight_e4m3) * weight_scale."""
    if weight.dtype != torch.float8_e4m3fn:
        raise TypeError(f"FP8 weight must be float8_e4m3fn, got {weight.dtype}")
    s = weight_scale.to(torch.float32).reshape(-1)
    if s.numel() != 1:
        raise ValueError("FP8 weight_scale must be a per-tensor scalar (per-channel not supported)")
    return weight.to(torch.float32) * s[0]


def fp8_act_qdq(x, input_scale):
    """Static per-tensor FP8 activation quantize-dequantize (ModelOpt W8A8):

    x_q = float8_e4m3fn(clamp(x / input_scale, -448, 448))  (torch RNE cast), x' = float(x_q) * input_scale.
    All float32.
    """
    s = torch.as_tensor(input_scale, dtype=torch.float32).reshape(-1)[0]
    x = x.to(torch.float32)
    q = torch.clamp(x / s, -FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)
    return q.to(torch.float32) * s


def nvfp4_act_scales(amax, input_scale):
    """Per-block activation scale: sf = e4m3_RNE(min(amax / 6.0 / input_scale, 448)), float32, in that order."""
    s = torch.as_tensor(input_scale, dtype=torch.float32).reshape(-1)[0]
    t = amax.to(torch.float32) / 6.0
    t = t / s
    t = torch.clamp(t, max=FP8_E4M3_MAX)
    return e4m3_rne(t)


def nvfp4_act_qdq(x, input_scale):
    """NVFP4 (W4A4) activation quantize-dequantize along the last axis, blocks of 16.

    Per block: amax = max|x|; sf = nvfp4_act_scales(amax, input_scale); if sf == 0 the block is 0;
    else d = sf * input_scale (float32), q = e2m1_round(x / d), x' = (e2m1(q) * sf) * input_scale.
    """
    s = torch.as_tensor(input_scale, dtype=torch.float32).reshape(-1)[0]
    x = x.to(torch.float32)
    shape = x.shape
    k = shape[-1]
    if k % 16:
        raise ValueError(f"NVFP4 activation K={k} not a multiple of 16")
    xb = x.reshape(-1, k // 16, 16)
    amax = xb.abs().amax(dim=-1, keepdim=True)
    sf = nvfp4_act_scales(amax, s)
    d = sf * s
    zero = sf == 0
    safe_d = torch.where(zero, torch.ones_like(d), d)
    q = e2m1_round(torch.where(zero, torch.zeros_like(xb), xb / safe_d))
    out = (e2m1_decode(q) * sf) * s
    out = torch.where(zero, torch.zeros_like(out), out)
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# Self-test of the number-format functions (no checkpoint, no transformers needed)
# --------------------------------------------------------------------------------------------

def selftest():
    fails = []

    def check(name, got, want):
        got = torch.as_tensor(got, dtype=torch.float32)
        want = torch.as_tensor(want, dtype=torch.float32)
        if got.shape != want.shape or not torch.equal(got, want):
            # equal() treats -0 == 0, which is what we want for values
            fails.append(f"{name}: got {got.tolist()} want {want.tolist()}")
        else:
            print(f"  ok  {name}")

    # e2m1 rounding at every midpoint, between midpoints, saturation, signs
    vin = [0.0, 0.1, 0.25, 0.2500001, 0.5, 0.74, 0.75, 1.0, 1.25, 1.26, 1.5, 1.74, 1.75, 2.0,
           2.5, 2.51, 3.0, 3.49, 3.5, 4.0, 4.99, 5.0, 5.01, 6.0, 7.0, 1e30, float("inf")]
    vout = [0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 1.5, 1.5, 1.5, 2, 2,
            2, 3, 3, 3, 4, 4, 4, 4, 6, 6, 6, 6, 6]
    t = torch.tensor(vin, dtype=torch.float32)
    check("e2m1_round +", e2m1_decode(e2m1_round(t)), vout)
    check("e2m1_round -", e2m1_decode(e2m1_round(-t)), [-v for v in vout])
    codes = e2m1_round(torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.75, -5.0, -0.1]))
    check("e2m1 tie codes", codes.float(), [0, 2, 2, 4, 4, 6, 6, 10, 14, 8])
    check("e2m1_decode all", e2m1_decode(torch.arange(16, dtype=torch.uint8)),
          [0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6])

    # e4m3 RNE cast (torch) at ties, subnormals, max
    check("e4m3_rne", e4m3_rne(torch.tensor([1.0625, 1.1875, 17.0, 19.0, 2 ** -10, 3 * 2 ** -10, 448.0, 0.0])),
          [1.0, 1.25, 16.0, 20.0, 0.0, 2 ** -8, 448.0, 0.0])

    # NVFP4 unpack / weight dequant: byte 0x71 -> element0 code 1 (0.5), element1 code 7 (6.0)
    packed = torch.tensor([[0x71, 0xF8] + [0x00] * 6], dtype=torch.uint8)  # K = 16
    check("unpack_nvfp4", unpack_nvfp4(packed).float()[0, :4], [1, 7, 8, 15])
    ws = torch.tensor([[2.0]]).to(torch.float8_e4m3fn)
    w = dequant_nvfp4_weight(packed, ws, torch.tensor(0.25))
    check("dequant_nvfp4_weight", w[0, :4], [0.5 * 2 * 0.25, 6 * 2 * 0.25, -0.0, -6 * 2 * 0.25])

    # FP8 weight dequant: E4M3 byte 0x38 = 1.0, 0xB8 = -1.0, 0x7E = 448
    wb = torch.tensor([0x38, 0xB8, 0x7E, 0x01], dtype=torch.uint8).view(torch.float8_e4m3fn)
    check("dequant_fp8_weight", dequant_fp8_weight(wb, torch.tensor(0.5)), [0.5, -0.5, 224.0, 2 ** -9 * 0.5])

    # FP8 activation: scale 0.5 (exact), clamp, RNE ties, subnormal tie to 0
    x = torch.tensor([1000.0, -1000.0, 0.5 * 1.0625, -0.5 * 17.0, 0.5 * 2 ** -10, 0.5 * 1.1875, 0.0])
    check("fp8_act_qdq", fp8_act_qdq(x, torch.tensor(0.5)), [224.0, -224.0, 0.5, -8.0, 0.0, 0.625, 0.0])

    # NVFP4 activation, input_scale 0.5.  Block 1: amax 12 -> sf = 12/6/0.5 = 4 -> d = 2;
    # elements chosen at every E2M1 tie (times d).
    s = torch.tensor(0.5)
    v = [6, -0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -5, 0.3, 0.2, -3, 2.9, 0, 1, -0.75]
    want = [6, 0, 1, 1, 2, 2, 4, 4, -4, 0.5, 0, -3, 3, 0, 1, -1]
    b1 = [2.0 * e for e in v]
    w1 = [2.0 * e for e in want]
    # Block 2: amax/6/0.5 = 1.0625 -> sf rounds (tie, RNE) DOWN to 1.0 -> d = 0.5; the max element
    # 3.1875/0.5 = 6.375 saturates to 6 -> 3.0.
    b2 = [3.1875, -3.1875, 0.25 * 0.5, 0.75 * 0.5] + [0.0] * 12
    w2 = [3.0, -3.0, 0.0, 0.5] + [0.0] * 12
    # Block 3: all zero.  Block 4: amax so small that sf underflows to 0 -> all zero.
    b3 = [0.0] * 16
    b4 = [1e-5, -2e-5] + [0.0] * 14
    # Block 5: sf clamped at 448: amax/6/0.5 = 1000 -> sf = 448 -> d = 224; 2688 -> 12 -> 6; 224*0.75 -> 1
    b5 = [3000.0, 224 * 0.75, -224 * 2.5] + [0.0] * 13
    w5 = [224 * 6.0, 224 * 1.0, -224 * 2.0] + [0.0] * 13
    x = torch.tensor([b1 + b2, b3 + b4, b5 + b1])
    check("nvfp4_act_qdq", nvfp4_act_qdq(x, s), [w1 + w2, b3 + [0.0] * 16, w5 + w1])
    check("nvfp4_act_scales", nvfp4_act_scales(torch.tensor([12.0, 3.1875, 1e-5, 3000.0, 0.0]), s),
          [4.0, 1.0, 0.0, 448.0, 0.0])
    # non-power-of-two input scale: d = sf*s computed in float32 first
    s3 = torch.tensor(1.0 / 448.0, dtype=torch.float32)
    xb = torch.linspace(-1, 1, 16).reshape(1, 16)
    sf = e4m3_rne(torch.clamp(xb.abs().amax() / 6.0 / s3, max=448.0))
    d = sf * s3
    ref = (e2m1_decode(e2m1_round(xb / d)) * sf) * s3
    check("nvfp4_act_qdq s=1/448", nvfp4_act_qdq(xb, s3), ref)

    if fails:
        print("SELFTEST FAILED:")
        for f in fails:
            print("  " + f)
        return 1
    print("selftest: all number-format checks passed")
    return 0


# --------------------------------------------------------------------------------------------
# Checkpoint reading
# --------------------------------------------------------------------------------------------

def map_name(name):
    """Checkpoint tensor/module name -> Qwen3_5ForCausalLM name, or None to skip."""
    if name.startswith("model.visual.") or name.startswith("mtp.") or name == "model.visual" or name == "mtp":
        return None
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    if name == "lm_head" or name.startswith("lm_head."):
        return name
    if name.startswith("model."):
        return name
    raise ValueError(f"unrecognised tensor name {name!r}")


def read_tensors(model_dir):
    from safetensors import safe_open
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        raise FileNotFoundError(f"no .safetensors files in {model_dir}")
    tensors, dtypes = {}, {}
    for fn in files:
        with safe_open(os.path.join(model_dir, fn), framework="pt") as f:
            for k in f.keys():
                if k in tensors:
                    raise ValueError(f"tensor {k} appears in more than one shard")
                t = f.get_tensor(k)
                tensors[k] = t
                dtypes[k] = str(t.dtype).replace("torch.", "")
    return tensors, files


SUPPORTED_ALGOS = ("NVFP4", "W4A16_NVFP4", "FP8")


def read_quant_config(model_dir, cfg):
    """Return (algo, quantized_layers dict or None, exclude_modules list, kv_algo, source) or None."""
    q1 = None
    p = os.path.join(model_dir, "hf_quant_config.json")
    if os.path.exists(p):
        with open(p) as f:
            hq = json.load(f)
        q1 = hq.get("quantization", hq)
    q2 = cfg.get("quantization_config")
    if q2 is not None and q2.get("quant_method", "modelopt") != "modelopt":
        raise ValueError(f"unsupported quantization_config.quant_method {q2.get('quant_method')!r}")
    if q1 is None and q2 is None:
        return None
    if q1 is not None and q2 is not None:
        if q1.get("quant_algo") != q2.get("quant_algo"):
            raise ValueError(f"hf_quant_config.json quant_algo {q1.get('quant_algo')!r} != "
                             f"config.json quantization_config {q2.get('quant_algo')!r}")
        if q1.get("quant_algo") == "MIXED_PRECISION" and q2.get("quantized_layers") is not None \
                and q1.get("quantized_layers") != q2.get("quantized_layers"):
            raise ValueError("quantized_layers differ between hf_quant_config.json and config.json")
    q = q1 if q1 is not None else q2
    src = "hf_quant_config.json" if q1 is not None else "config.json:quantization_config"
    algo = q.get("quant_algo")
    excl = q.get("exclude_modules")
    if excl is None:
        excl = q.get("ignore") or []
    kv = q.get("kv_cache_quant_algo")
    layers = None
    if algo == "MIXED_PRECISION":
        layers = q.get("quantized_layers")
        if not isinstance(layers, dict):
            raise ValueError("MIXED_PRECISION without a quantized_layers map")
        for m, ent in layers.items():
            a = ent.get("quant_algo")
            if a not in SUPPORTED_ALGOS:
                raise ValueError(f"{m}: unsupported quant_algo {a!r}")
            if "NVFP4" in a and int(ent.get("group_size", 16)) != 16:
                raise ValueError(f"{m}: NVFP4 group_size {ent.get('group_size')} != 16")
    elif algo in SUPPORTED_ALGOS:
        if "NVFP4" in algo and int(q.get("group_size", 16)) != 16:
            raise ValueError(f"NVFP4 group_size {q.get('group_size')} != 16")
    elif algo is None:
        return None
    else:
        raise ValueError(f"unsupported quant_algo {algo!r}")
    return algo, layers, list(excl), kv, src


def excluded(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) or name == p for p in patterns)


def plan_quantization(raw, linear_modules, qcfg):
    """Decide each HF linear module's format; cross-check config against the tensors.

    raw: checkpoint tensors (checkpoint names).  linear_modules: {hf_module_name: ckpt_module_name}.
    Returns {hf_module_name: algo} for quantized modules.
    """
    def tensor_kind(ck):
        w = raw.get(ck + ".weight")
        has_s = (ck + ".weight_scale") in raw
        if w is None:
            return "missing"
        if w.dtype == torch.uint8 and has_s and (ck + ".weight_scale_2") in raw:
            return "NVFP4"
        if w.dtype == torch.float8_e4m3fn and has_s:
            return "FP8"
        if has_s or (ck + ".weight_scale_2") in raw or (ck + ".input_scale") in raw:
            return "inconsistent"
        return "plain"

    plan, errors = {}, []
    for hf, ck in sorted(linear_modules.items()):
        kind = tensor_kind(ck)
        if qcfg is None:
            want = None
        else:
            algo, layers, excl, _, _ = qcfg
            if algo == "MIXED_PRECISION":
                ent = layers.get(ck) or layers.get(hf)
                want = ent["quant_algo"] if ent else None
                if want and excluded(ck, excl):
                    errors.append(f"{ck}: in quantized_layers and matched by exclude_modules")
            else:
                want = None if (excluded(ck, excl) or excluded(hf, excl)) else algo
        if kind in ("missing", "inconsistent"):
            errors.append(f"{ck}: weight tensors {kind}")
            continue
        if want is None:
            if kind != "plain":
                errors.append(f"{ck}: config says unquantized but tensors are {kind}")
            continue
        if (want == "FP8") != (kind == "FP8"):
            errors.append(f"{ck}: config says {want} but tensors are {kind}")
            continue
        if (ck + ".pre_quant_scale") in raw:
            errors.append(f"{ck}: pre_quant_scale (AWQ) is not supported")
        if want in ("FP8", "NVFP4") and (ck + ".input_scale") not in raw:
            errors.append(f"{ck}: {want} needs input_scale")
        plan[hf] = want
    if qcfg is not None and qcfg[0] == "MIXED_PRECISION":
        known = set(linear_modules.values()) | set(linear_modules.keys())
        for m in qcfg[1]:
            if map_name(m) is None:
                continue
            if m not in known:
                errors.append(f"quantized_layers names {m!r}, which is not a linear module of the text model")
    if errors:
        raise ValueError("quantization plan errors:\n  " + "\n  ".join(errors))
    return plan


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

def load_model(model_dir, kv_fp8=False, log=print):
    import transformers
    from transformers.models.qwen3_5 import modeling_qwen3_5 as M
    from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig
    import inspect

    # The GDN helpers must be the pure-torch fallbacks (no fla / causal_conv1d / hub kernels).
    for fname in ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule",
                  "causal_conv1d_fn", "causal_conv1d_update"):
        nl = inspect.getclosurevars(getattr(M, fname)).nonlocals
        impl = nl.get("implementation")
        if nl.get("is_new_implementation", True) or getattr(impl, "__module__", "") != M.__name__:
            raise RuntimeError(f"{fname} does not resolve to the torch fallback in {M.__name__} ({impl!r})")

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    arch = cfg.get("architectures") or []
    if "text_config" in cfg:
        tcfg = dict(cfg["text_config"])
        if "tie_word_embeddings" in cfg:
            if "tie_word_embeddings" in tcfg and bool(tcfg["tie_word_embeddings"]) != bool(cfg["tie_word_embeddings"]):
                raise ValueError("tie_word_embeddings differs between config.json top level and text_config")
            tcfg["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    else:
        tcfg = dict(cfg)
        for k in ("architectures", "quantization_config", "auto_map"):
            tcfg.pop(k, None)
    tcfg.pop("quantization_config", None)
    mt = tcfg.get("model_type", "qwen3_5_text")
    if mt not in ("qwen3_5_text", "qwen3_5"):
        raise ValueError(f"unexpected text model_type {mt!r}")
    tcfg["model_type"] = "qwen3_5_text"
    config = Qwen3_5TextConfig(**tcfg)
    config._attn_implementation = "eager"
    config.dtype = torch.float32
    model = M.Qwen3_5ForCausalLM(config).to(torch.float32).eval()
    if model.config._attn_implementation != "eager":
        raise RuntimeError(f"attn implementation is {model.config._attn_implementation}")
    log(f"config: architectures={arch} text model_type={mt} layers={config.num_hidden_layers} "
        f"hidden={config.hidden_size} vocab={config.vocab_size} tie={config.tie_word_embeddings}")

    raw, files = read_tensors(model_dir)
    qcfg = read_quant_config(model_dir, cfg)

    # linear modules of the HF model and their checkpoint names
    ck_prefix = "model.language_model." if any(k.startswith("model.language_model.") for k in raw) else "model."
    linear_modules = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            ck = name if name == "lm_head" else ck_prefix + name[len("model."):]
            linear_modules[name] = ck
    if config.tie_word_embeddings and "lm_head.weight" not in raw:
        linear_modules.pop("lm_head")
    plan = plan_quantization(raw, linear_modules, qcfg)

    sd, skipped, consumed, kv_scales = {}, [], set(), {}
    for hf, ck in linear_modules.items():
        algo = plan.get(hf)
        if algo is None:
            continue
        if algo == "FP8":
            w = dequant_fp8_weight(raw[ck + ".weight"], raw[ck + ".weight_scale"])
            consumed |= {ck + s for s in (".weight", ".weight_scale", ".input_scale")}
        else:
            w = dequant_nvfp4_weight(raw[ck + ".weight"], raw[ck + ".weight_scale"], raw[ck + ".weight_scale_2"])
            consumed |= {ck + s for s in (".weight", ".weight_scale", ".weight_scale_2", ".input_scale")}
        sd[hf + ".weight"] = w
    for k, t in raw.items():
        if k in consumed:
            continue
        hk = map_name(k)
        if hk is None:
            skipped.append(k)
            continue
        if hk.endswith(".k_scale") or hk.endswith(".v_scale"):
            kv_scales[hk] = t.to(torch.float32).reshape(-1)[0]
            continue
        if t.dtype not in (torch.bfloat16, torch.float32, torch.float16):
            raise ValueError(f"{k}: unexpected dtype {t.dtype} for an unquantized tensor")
        sd[hk] = t.to(torch.float32)

    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    if config.tie_word_embeddings and "lm_head.weight" in missing:
        missing.remove("lm_head.weight")  # tied to embed_tokens
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    for k, t in sd.items():
        if tuple(own[k].shape) != tuple(t.shape):
            raise RuntimeError(f"{k}: shape {tuple(t.shape)} != model {tuple(own[k].shape)}")
    res = model.load_state_dict(sd, strict=False)
    if res.missing_keys and res.missing_keys != (["lm_head.weight"] if config.tie_word_embeddings else []):
        raise RuntimeError(f"missing keys after load: {res.missing_keys}")
    if res.unexpected_keys:
        raise RuntimeError(f"unexpected keys after load: {res.unexpected_keys}")
    if config.tie_word_embeddings:
        if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
            raise RuntimeError("tie_word_embeddings but lm_head is not tied")
    elif model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("lm_head unexpectedly tied to embed_tokens")
    for n, p in list(model.named_parameters()) + list(model.named_buffers()):
        if p.dtype != torch.float32:
            raise RuntimeError(f"{n} is {p.dtype}, not float32")
    log(f"loaded {len(sd)} tensors from {len(files)} file(s) ({len(raw)} in checkpoint, "
        f"{len(skipped)} skipped visual/mtp); no missing / unexpected keys")

    # activation-quantization emulation
    counters = {"fp8_act": 0, "nvfp4_act": 0}
    mods = dict(model.named_modules())
    for hf, algo in sorted(plan.items()):
        ck = linear_modules[hf]
        lin = mods[hf]
        if algo == "W4A16_NVFP4":
            continue
        s = raw[ck + ".input_scale"].to(torch.float32).reshape(-1)
        if s.numel() != 1 or not (s[0] > 0 and torch.isfinite(s[0])):
            raise ValueError(f"{ck}: bad input_scale {s.tolist()}")
        wrap_linear(lin, algo, s[0].clone(), counters)
    summary = {}
    for algo in plan.values():
        summary[algo] = summary.get(algo, 0) + 1
    if qcfg is not None:
        log(f"quantization ({qcfg[4]}): quant_algo={qcfg[0]} modules={summary} kv_cache_quant_algo={qcfg[3]}")
    else:
        log("quantization: none (plain checkpoint)")

    if kv_fp8:
        install_kv_fp8(M, model, kv_scales, log)
    elif (qcfg is not None and qcfg[3]) or kv_scales:
        log("NOTE: checkpoint declares KV-cache quantization; it is NOT emulated (use --kv-fp8)")
    info = {"plan": plan, "quant": qcfg[:4] if qcfg else None, "counters": counters,
            "files": files, "n_tensors": len(raw), "skipped": len(skipped), "config": config}
    return model, M, info


def wrap_linear(lin, algo, input_scale, counters):
    """Wrap nn.Linear.forward so its input is quantize-dequantized first (FP8 or NVFP4 W4A4)."""
    orig = lin.forward
    if algo == "FP8":
        def fwd(x, _o=orig, _s=input_scale):
            counters["fp8_act"] += 1
            return _o(fp8_act_qdq(x, _s))
    elif algo == "NVFP4":
        def fwd(x, _o=orig, _s=input_scale):
            counters["nvfp4_act"] += 1
            return _o(nvfp4_act_qdq(x, _s))
    else:
        raise ValueError(algo)
    lin.forward = fwd
    lin.quant_emulation = (algo, float(input_scale))


def install_kv_fp8(M, model, kv_scales, log):
    orig = M.eager_attention_forward
    scales = {}
    for name, mod in model.named_modules():
        if isinstance(mod, M.Qwen3_5Attention):
            ks = kv_scales.get(name + ".k_proj.k_scale", torch.tensor(1.0))
            vs = kv_scales.get(name + ".v_proj.v_scale", torch.tensor(1.0))
            scales[id(mod)] = (ks, vs)

    def fwd(module, query, key, value, attention_mask, **kw):
        ks, vs = scales[id(module)]
        return orig(module, query, fp8_act_qdq(key, ks), fp8_act_qdq(value, vs), attention_mask, **kw)

    M.eager_attention_forward = fwd
    log(f"KV cache FP8 emulation ON ({len(kv_scales)} k/v scale tensors found, others 1.0)")


class PathCounter:
    """Counts calls of the GDN / conv helpers by patching the module globals of modeling_qwen3_5."""

    NAMES = ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule",
             "causal_conv1d_fn", "causal_conv1d_update")

    def __init__(self, M):
        self.M = M
        self.counts = {n: 0 for n in self.NAMES}
        for n in self.NAMES:
            f = getattr(M, n)

            def w(*a, _f=f, _n=n, **k):
                self.counts[_n] += 1
                return _f(*a, **k)
            setattr(M, n, w)

    def snapshot(self):
        return dict(self.counts)


def run_prefill(model, tokens):
    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False)
    return out.logits[0].to(torch.float32).contiguous()


def run_decode(model, tokens):
    from transformers.cache_utils import DynamicCache
    cache = DynamicCache(config=model.config)
    rows = []
    with torch.no_grad():
        for t in tokens:
            out = model(input_ids=torch.tensor([[t]], dtype=torch.long), cache=cache, use_cache=True)
            cache = out.cache if getattr(out, "cache", None) is not None else cache
            rows.append(out.logits[0, -1].to(torch.float32))
    return torch.stack(rows).contiguous()


def parse_tokens(s):
    if s.startswith("@"):
        with open(s[1:]) as f:
            s = f.read()
    toks = [int(x) for x in s.replace("\n", ",").replace(" ", "").split(",") if x != ""]
    if not toks:
        raise ValueError("no tokens")
    return toks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint directory (config.json + *.safetensors)")
    ap.add_argument("--tokens", help="comma-separated token ids, or @FILE")
    ap.add_argument("--out", help="output .bin (float32 LE [n_tokens, vocab])")
    ap.add_argument("--dump-json", action="store_true", help="also write OUT.json with metadata/top-k")
    ap.add_argument("--decode", action="store_true", help="cross-check against token-by-token cached decode")
    ap.add_argument("--decode-out", help="write the decode-path logits here too")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--kv-fp8", action="store_true", help="emulate FP8 KV cache (k_scale/v_scale, default 1.0)")
    ap.add_argument("--selftest", action="store_true", help="unit-check the number-format functions and exit")
    args = ap.parse_args(argv)

    if args.selftest:
        return selftest()
    if not (args.model and args.tokens and args.out):
        ap.error("--model, --tokens and --out are required")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    import transformers
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"threads {torch.get_num_threads()}")
    tokens = parse_tokens(args.tokens)
    t0 = time.time()
    model, M, info = load_model(args.model, kv_fp8=args.kv_fp8)
    vocab = info["config"].vocab_size
    bad = [t for t in tokens if not 0 <= t < vocab]
    if bad:
        raise ValueError(f"token ids out of range [0,{vocab}): {bad[:10]}")
    pc = PathCounter(M)
    print(f"attn_implementation={model.config._attn_implementation}; GDN/conv helpers are the torch fallbacks "
          f"(fla / causal_conv1d / hub kernels not used)")

    logits = run_prefill(model, tokens)
    prefill_counts = pc.snapshot()
    n_lin = sum(1 for t in info["config"].layer_types if t == "linear_attention")
    print(f"prefill: {len(tokens)} tokens -> logits {tuple(logits.shape)} in {time.time() - t0:.1f}s; "
          f"GDN path calls: chunked={prefill_counts['torch_chunk_gated_delta_rule']} "
          f"recurrent={prefill_counts['torch_recurrent_gated_delta_rule']} "
          f"(linear-attention layers: {n_lin}); conv: fn={prefill_counts['causal_conv1d_fn']} "
          f"update={prefill_counts['causal_conv1d_update']}; act-quant calls {info['counters']}")
    if not torch.isfinite(logits).all():
        raise RuntimeError("non-finite logits")

    arr = logits.numpy().astype("<f4", copy=False)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(arr.tobytes(order="C"))
    sha = hashlib.sha256(arr.tobytes(order="C")).hexdigest()
    print(f"wrote {args.out}: {arr.shape[0]} x {arr.shape[1]} float32 LE, sha256 {sha}")

    dec = None
    if args.decode:
        dlog = run_decode(model, tokens)
        c = pc.snapshot()
        dc = {k: c[k] - prefill_counts[k] for k in c}
        diff = (dlog - logits).abs()
        dec = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
               "max_abs_logit": float(logits.abs().max()),
               "argmax_agree": int((dlog.argmax(-1) == logits.argmax(-1)).sum()),
               "path_calls": dc}
        print(f"decode: GDN path calls chunked={dc['torch_chunk_gated_delta_rule']} "
              f"recurrent={dc['torch_recurrent_gated_delta_rule']}; conv fn={dc['causal_conv1d_fn']} "
              f"update={dc['causal_conv1d_update']}")
        print(f"decode vs prefill: max abs diff {dec['max_abs_diff']:.3e} (mean {dec['mean_abs_diff']:.3e}, "
              f"max |logit| {dec['max_abs_logit']:.3f}), argmax agree {dec['argmax_agree']}/{len(tokens)}")
        if args.decode_out:
            with open(args.decode_out, "wb") as f:
                f.write(dlog.numpy().astype("<f4").tobytes(order="C"))
            print(f"wrote {args.decode_out}")

    if args.dump_json:
        top = torch.topk(logits, k=min(5, vocab), dim=-1)
        meta = {
            "model": os.path.abspath(args.model), "out": os.path.abspath(args.out),
            "format": "float32 little-endian, row-major [n_tokens, vocab], no header",
            "n_tokens": len(tokens), "vocab": vocab, "tokens": tokens, "sha256": sha,
            "transformers": transformers.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "threads": torch.get_num_threads(),
            "attn_implementation": "eager", "dtype": "float32", "device": "cpu",
            "kv_fp8": args.kv_fp8,
            "prefill_path_calls": prefill_counts,
            "quant_algo": info["quant"][0] if info["quant"] else None,
            "quantized_modules": info["plan"],
            "argmax": logits.argmax(-1).tolist(),
            "top5_ids": top.indices.tolist(),
            "top5_logits": [[round(float(v), 6) for v in r] for r in top.values],
            "row_logsumexp": [round(float(v), 6) for v in torch.logsumexp(logits, -1)],
            "decode": dec,
        }
        jp = os.path.splitext(args.out)[0] + ".json"
        with open(jp, "w") as f:
            json.dump(meta, f, indent=1)
        print(f"wrote {jp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
