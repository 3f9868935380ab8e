#!/usr/bin/env python3
"""Tiny random Qwen3.5 checkpoints built in Python, plus an end-to-end self-test of reference_logits.py.

    python tools/make_tiny_py.py build    --out DIR [--seed 1]
    python tools/make_tiny_py.py quantize --in DIR --out DIR2 --recipe {nvidia-mixed,nvfp4-w4a4,fp8,w4a16}
    python tools/make_tiny_py.py selftest [--workdir DIR] [--keep]
    python tools/make_tiny_py.py config-keys

`build` writes the same layout fp4rt's synthesizer is meant to write: config.json
(Qwen3_5ForConditionalGeneration, model_type qwen3_5, geometry in "text_config"), one
model.safetensors with BF16 tensors named model.language_model.* plus lm_head.weight (docs/MODEL.md §4).

`quantize` is a small Python re-implementation of NVIDIA ModelOpt's export (docs/MODEL.md §5, docs/NVFP4.md §1.3):
NVFP4 weights (weight_scale_2 = amax/(6*448), per-16 E4M3 block scales clamped to [2^-9, 448],
RNE E2M1 codes, low nibble = even element), FP8 per-tensor weights (scale = amax/448), and
input_scale from max calibration (amax/(6*448) for the NVFP4 kinds, amax/448 for FP8).  It exists
only to exercise reference_logits.py's dequantization paths; the C tool `fp4rt quantize` is the one
that produces the fixtures.

`selftest` builds bf16 / mixed / w4a4 / fp8 / w4a16 checkpoints in a temp dir, runs
reference_logits.py on each (with --decode), compares against an independent float64
implementation of docs/MODEL.md §2 (recurrent GDN, plain RoPE), checks negative cases (missing / extra
tensors, config-vs-tensor mismatches), checks that text-only mRoPE equals plain RoPE, and
cross-checks the tensor-name mapping against transformers' own from_pretrained loader.

`config-keys` drops each text_config key in turn and reports which ones transformers' Qwen3.5 needs
(dropping them changes the model or breaks it).
"""

import argparse
import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

os.environ["USE_HUB_KERNELS"] = "0"

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_logits as R  # noqa: E402

# The exact config this tool writes (and which transformers 5.x accepts).  mrope_section sums to
# rotary_dim/2 = head_dim*partial_rotary_factor/2 = 4; for text-only input mRoPE == plain RoPE anyway.
TEXT_CONFIG = {
    "model_type": "qwen3_5_text",
    "hidden_size": 64,
    "num_hidden_layers": 8,
    "intermediate_size": 192,
    "vocab_size": 512,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 6,
    "linear_key_head_dim": 32,
    "linear_value_head_dim": 32,
    "linear_conv_kernel_dim": 4,
    "layer_types": ["linear_attention"] * 3 + ["full_attention"] + ["linear_attention"] * 3 + ["full_attention"],
    "full_attention_interval": 4,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000000.0,
        "partial_rotary_factor": 0.25,
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
    },
    "attn_output_gate": True,
    "attention_bias": False,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "dtype": "bfloat16",
}
CONFIG = {
    "architectures": ["Qwen3_5ForConditionalGeneration"],
    "model_type": "qwen3_5",
    "tie_word_embeddings": False,
    "text_config": TEXT_CONFIG,
}


# --------------------------------------------------------------------------------------------
# Build a BF16 checkpoint
# --------------------------------------------------------------------------------------------

def tensor_specs(tc):
    """(name, shape, kind) for every text tensor in docs/MODEL.md §4 order."""
    H, I, V = tc["hidden_size"], tc["intermediate_size"], tc["vocab_size"]
    nq, nkv, hd = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
    lk, lv, dk, dv = (tc["linear_num_key_heads"], tc["linear_num_value_heads"],
                      tc["linear_key_head_dim"], tc["linear_value_head_dim"])
    key_dim, value_dim = lk * dk, lv * dv
    conv_dim = 2 * key_dim + value_dim
    p = "model.language_model."
    specs = [(p + "embed_tokens.weight", (V, H), "embed")]
    for i, lt in enumerate(tc["layer_types"]):
        L = f"{p}layers.{i}."
        specs += [(L + "input_layernorm.weight", (H,), "norm0"),
                  (L + "post_attention_layernorm.weight", (H,), "norm0")]
        if lt == "linear_attention":
            a = L + "linear_attn."
            specs += [(a + "in_proj_qkv.weight", (conv_dim, H), "lin"),
                      (a + "in_proj_z.weight", (value_dim, H), "lin"),
                      (a + "in_proj_b.weight", (lv, H), "lin"),
                      (a + "in_proj_a.weight", (lv, H), "lin"),
                      (a + "conv1d.weight", (conv_dim, 1, tc["linear_conv_kernel_dim"]), "conv"),
                      (a + "dt_bias", (lv,), "dt_bias"),
                      (a + "A_log", (lv,), "A_log"),
                      (a + "norm.weight", (dv,), "norm1"),
                      (a + "out_proj.weight", (H, value_dim), "lin")]
        else:
            a = L + "self_attn."
            specs += [(a + "q_proj.weight", (nq * hd * 2, H), "lin"),
                      (a + "k_proj.weight", (nkv * hd, H), "lin"),
                      (a + "v_proj.weight", (nkv * hd, H), "lin"),
                      (a + "o_proj.weight", (H, nq * hd), "lin"),
                      (a + "q_norm.weight", (hd,), "norm0"),
                      (a + "k_norm.weight", (hd,), "norm0")]
        specs += [(L + "mlp.gate_proj.weight", (I, H), "lin"),
                  (L + "mlp.up_proj.weight", (I, H), "lin"),
                  (L + "mlp.down_proj.weight", (H, I), "lin")]
    specs += [(p + "norm.weight", (H,), "norm0"), ("lm_head.weight", (V, H), "head")]
    return specs


def build(out, seed=1, config=None):
    from safetensors.torch import save_file
    cfg = copy.deepcopy(config or CONFIG)
    tc = cfg["text_config"]
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32)

    tensors = {}
    for name, shape, kind in tensor_specs(tc):
        if kind == "embed":
            t = randn(*shape)
        elif kind == "lin":
            t = randn(*shape) / math.sqrt(shape[1])
        elif kind == "head":
            t = randn(*shape) * (2.0 / math.sqrt(shape[1]))
        elif kind == "norm0":      # zero-centred RMSNorm offsets (weight used as 1 + w)
            t = randn(*shape) * 0.1
        elif kind == "norm1":      # gated RMSNorm, plain weight
            t = 1.0 + randn(*shape) * 0.1
        elif kind == "conv":
            t = randn(*shape) * 0.5
        elif kind == "dt_bias":
            t = randn(*shape)
        elif kind == "A_log":      # A in [0.02, 1): long and short memories, tests the chunk carry
            t = torch.log(0.02 + 0.98 * torch.rand(*shape, generator=g))
        else:
            raise ValueError(kind)
        tensors[name] = t.to(torch.bfloat16).contiguous()
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return out


# --------------------------------------------------------------------------------------------
# ModelOpt-like quantizer (test helper)
# --------------------------------------------------------------------------------------------

def quant_nvfp4_weight(w):
    """ModelOpt NVFP4QTensor weight quantization -> (packed U8 [N,K/2], F8 scale [N,K/16], F32 scale_2)."""
    w = w.to(torch.float32)
    n, k = w.shape
    s2 = w.abs().amax() / (6.0 * 448.0)
    if s2 == 0:
        s2 = torch.tensor(1.0)
    wb = w.reshape(n, k // 16, 16)
    sb = wb.abs().amax(-1) / (6.0 * s2)
    sb = torch.where(sb == 0, torch.ones_like(sb), sb)
    sb = torch.clamp(sb, min=2.0 ** -9, max=448.0).to(torch.float8_e4m3fn)
    codes = R.e2m1_round(wb / (sb.to(torch.float32).unsqueeze(-1) * s2)).reshape(n, k)
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return packed.contiguous(), sb.contiguous(), s2.reshape(()).to(torch.float32)


def quant_fp8_weight(w):
    w = w.to(torch.float32)
    s = w.abs().amax() / 448.0
    q = torch.clamp(w / s, -448, 448).to(torch.float8_e4m3fn)
    return q.contiguous(), s.reshape(()).to(torch.float32)


def calibrate(model_dir, tokens):
    """Per-linear input amax from the float32 HF model (checkpoint module names)."""
    model, M, info = R.load_model(model_dir, log=lambda *a: None)
    amax = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            ck = "lm_head" if name == "lm_head" else "model.language_model." + name[len("model."):]

            def h(m, args, _ck=ck):
                amax[_ck] = max(amax.get(_ck, 0.0), float(args[0].abs().max()))
            hooks.append(mod.register_forward_pre_hook(h))
    R.run_prefill(model, tokens)
    for hk in hooks:
        hk.remove()
    return amax


def recipe_plan(recipe, module):
    """Module (checkpoint name) -> algo or None, for the test recipes."""
    leaf = module.split(".")[-1]
    if recipe == "nvidia-mixed":   # docs/MODEL.md §5.2
        if leaf in ("gate_proj", "up_proj", "down_proj") or module == "lm_head":
            return "W4A16_NVFP4"
        if leaf in ("q_proj", "k_proj", "v_proj", "o_proj", "in_proj_qkv", "in_proj_z", "out_proj"):
            return "FP8"
        return None
    if recipe == "nvfp4-w4a4":
        return None if module == "lm_head" else "NVFP4"
    if recipe == "fp8":
        return None if module == "lm_head" or leaf in ("in_proj_a", "in_proj_b") else "FP8"
    if recipe == "w4a16":
        return None if module == "lm_head" else "W4A16_NVFP4"
    raise ValueError(recipe)


CALIB_TOKENS = [(i * 37 + 11) % 512 for i in range(48)]


def quantize(src, dst, recipe):
    from safetensors.torch import load_file, save_file
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    raw = load_file(os.path.join(src, "model.safetensors"))
    amax = calibrate(src, CALIB_TOKENS)
    out, layers = {}, {}
    for name, t in raw.items():
        mod = name[:-len(".weight")] if name.endswith(".weight") else None
        algo = recipe_plan(recipe, mod) if mod in amax else None
        if algo is None:
            out[name] = t
            continue
        layers[mod] = algo
        if algo == "FP8":
            q, s = quant_fp8_weight(t)
            out[mod + ".weight"], out[mod + ".weight_scale"] = q, s
            out[mod + ".input_scale"] = torch.tensor(amax[mod] / 448.0, dtype=torch.float32)
        else:
            p, sb, s2 = quant_nvfp4_weight(t)
            out[mod + ".weight"], out[mod + ".weight_scale"], out[mod + ".weight_scale_2"] = p, sb, s2
            out[mod + ".input_scale"] = torch.tensor(amax[mod] / (6.0 * 448.0), dtype=torch.float32)
    os.makedirs(dst, exist_ok=True)
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    algos = sorted(set(layers.values()))
    if len(algos) > 1:
        q = {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": None,
             "quantized_layers": {m: ({"quant_algo": a, "group_size": 16} if "NVFP4" in a else {"quant_algo": a})
                                  for m, a in sorted(layers.items())}}
    else:
        mods = [n[:-len(".weight")] for n in raw if n.endswith(".weight") and n[:-7] in amax]
        q = {"quant_algo": algos[0], "kv_cache_quant_algo": None,
             "exclude_modules": sorted(m for m in mods if m not in layers) + ["model.visual*", "mtp*"]}
        if "NVFP4" in algos[0]:
            q["group_size"] = 16
    with open(os.path.join(dst, "hf_quant_config.json"), "w") as f:
        json.dump({"producer": {"name": "modelopt", "version": "0.45.0 (emulated by make_tiny_py.py)"},
                   "quantization": q}, f, indent=2)
    cfg = copy.deepcopy(cfg)
    qc = {"quant_method": "modelopt", **{k: v for k, v in q.items() if k != "exclude_modules"}}
    if "exclude_modules" in q:
        qc["ignore"] = q["exclude_modules"]
    cfg["quantization_config"] = qc
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return layers


# --------------------------------------------------------------------------------------------
# Independent float64 implementation of docs/MODEL.md §2 (for cross-checking transformers)
# --------------------------------------------------------------------------------------------

def independent_forward(model_dir, tokens):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    tc = cfg.get("text_config", cfg)
    raw, _ = R.read_tensors(model_dir)
    qcfg = R.read_quant_config(model_dir, cfg)
    p = "model.language_model."
    D = torch.float64

    def W(mod):
        if mod + ".weight_scale_2" in raw:
            return R.dequant_nvfp4_weight(raw[mod + ".weight"], raw[mod + ".weight_scale"],
                                          raw[mod + ".weight_scale_2"]).to(D)
        if mod + ".weight_scale" in raw:
            return R.dequant_fp8_weight(raw[mod + ".weight"], raw[mod + ".weight_scale"]).to(D)
        return raw[mod + ".weight"].to(D)

    def algo_of(mod):
        if qcfg is None:
            return None
        algo, layers, excl, _, _ = qcfg
        if algo == "MIXED_PRECISION":
            e = layers.get(mod)
            return e["quant_algo"] if e else None
        return None if R.excluded(mod, excl) else algo

    def lin(x, mod):
        a = algo_of(mod)
        if a == "FP8":
            x = R.fp8_act_qdq(x.to(torch.float32), raw[mod + ".input_scale"]).to(D)
        elif a == "NVFP4":
            x = R.nvfp4_act_qdq(x.to(torch.float32), raw[mod + ".input_scale"]).to(D)
        return x @ W(mod).T

    def t(name):
        return raw[name].to(D)

    eps = tc["rms_norm_eps"]

    def rms1(x, w):                         # zero-centred RMSNorm: x*rsqrt(mean x^2+eps)*(1+w)
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * (1.0 + w)

    T = len(tokens)
    h = t(p + "embed_tokens.weight")[torch.tensor(tokens)]
    nq, nkv, hd = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
    lk, lv, dk, dv = (tc["linear_num_key_heads"], tc["linear_num_value_heads"],
                      tc["linear_key_head_dim"], tc["linear_value_head_dim"])
    rp = tc["rope_parameters"]
    rdim = int(hd * rp["partial_rotary_factor"])
    theta = rp["rope_theta"]
    pos = torch.arange(T, dtype=D)
    inv = theta ** (-torch.arange(0, rdim, 2, dtype=D) / rdim)            # [rdim/2]
    ang = pos[:, None] * inv[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rope(x):                            # x [T, heads, hd]; NeoX rotate-half on the first rdim dims
        half = rdim // 2
        x1, x2, rest = x[..., :half], x[..., half:rdim], x[..., rdim:]
        c, s = cos[:, None, :], sin[:, None, :]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s, rest], -1)

    for i, lt in enumerate(tc["layer_types"]):
        L = f"{p}layers.{i}."
        a = rms1(h, t(L + "input_layernorm.weight"))
        if lt == "linear_attention":
            A = L + "linear_attn."
            mixed = lin(a, A + "in_proj_qkv")
            z = lin(a, A + "in_proj_z").reshape(T, lv, dv)
            b = lin(a, A + "in_proj_b")
            al = lin(a, A + "in_proj_a")
            cw = t(A + "conv1d.weight")[:, 0, :]                           # [C, K]
            Kc = cw.shape[1]
            xp = torch.cat([torch.zeros(Kc - 1, mixed.shape[1], dtype=D), mixed], 0)
            c = torch.stack([(xp[tt:tt + Kc] * cw.T).sum(0) for tt in range(T)])
            c = c * torch.sigmoid(c)
            kd = lk * dk
            q = c[:, :kd].reshape(T, lk, dk)
            k = c[:, kd:2 * kd].reshape(T, lk, dk)
            v = c[:, 2 * kd:].reshape(T, lv, dv)
            beta = torch.sigmoid(b)
            g = -torch.exp(t(A + "A_log")) * torch.nn.functional.softplus(al + t(A + "dt_bias"))
            q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6) * dk ** -0.5
            k = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-6)
            o = torch.zeros(T, lv, dv, dtype=D)
            r = lv // lk
            for j in range(lv):
                kh = j // r                                                  # grouped value heads
                S = torch.zeros(dk, dv, dtype=D)
                for tt in range(T):
                    S = torch.exp(g[tt, j]) * S
                    m = k[tt, kh] @ S
                    u = beta[tt, j] * (v[tt, j] - m)
                    S = S + torch.outer(k[tt, kh], u)
                    o[tt, j] = q[tt, kh] @ S
            nw = t(A + "norm.weight")
            y = o / torch.sqrt((o * o).mean(-1, keepdim=True) + eps) * nw
            y = y * (z * torch.sigmoid(z))
            h = h + lin(y.reshape(T, lv * dv), A + "out_proj")
        else:
            A = L + "self_attn."
            qg = lin(a, A + "q_proj").reshape(T, nq, 2 * hd)
            q, gate = qg[..., :hd], qg[..., hd:].reshape(T, nq * hd)
            k = lin(a, A + "k_proj").reshape(T, nkv, hd)
            v = lin(a, A + "v_proj").reshape(T, nkv, hd)
            q = rope(rms1(q, t(A + "q_norm.weight")))
            k = rope(rms1(k, t(A + "k_norm.weight")))
            o = torch.zeros(T, nq, hd, dtype=D)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
            for hh in range(nq):
                kv = hh // (nq // nkv)
                sc = (q[:, hh] @ k[:, kv].T) / math.sqrt(hd)
                sc = sc.masked_fill(mask, float("-inf"))
                o[:, hh] = torch.softmax(sc, -1) @ v[:, kv]
            o = o.reshape(T, nq * hd) * torch.sigmoid(gate)
            h = h + lin(o, A + "o_proj")
        x = rms1(h, t(L + "post_attention_layernorm.weight"))
        M = L + "mlp."
        gt = lin(x, M + "gate_proj")
        h = h + lin(gt * torch.sigmoid(gt) * lin(x, M + "up_proj"), M + "down_proj")
    h = rms1(h, t(p + "norm.weight"))
    head = "lm_head" if "lm_head.weight" in raw else p + "embed_tokens"
    return lin(h, head) if head == "lm_head" else h @ t(head + ".weight").T


# --------------------------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------------------------

TEST_TOKENS = [(i * 7919 + 13) % 509 for i in range(70)] + [5, 5, 5, 17, 5, 17]   # 76 > 64 (two GDN chunks)


def run_ref(model_dir, out, extra=()):
    cmd = [sys.executable, os.path.join(HERE, "reference_logits.py"), "--model", model_dir,
           "--tokens", ",".join(map(str, TEST_TOKENS)), "--out", out, "--dump-json", "--decode",
           "--threads", "1", "--decode-out", os.path.splitext(out)[0].replace(".logits", "") + ".decode.bin",
           *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r


def load_bin(path, vocab):
    import numpy as np
    a = np.fromfile(path, dtype="<f4")
    return torch.from_numpy(a.reshape(-1, vocab).copy())


def check_rope_equivalence():
    """Text-only mRoPE (any mrope_section) must equal plain 1-D RoPE."""
    from transformers.models.qwen3_5 import modeling_qwen3_5 as M
    from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig
    res = []
    for sec in ([2, 1, 1], [11, 11, 10], None):
        tc = copy.deepcopy(TEXT_CONFIG)
        if sec is None:
            del tc["rope_parameters"]["mrope_section"]
        else:
            tc["rope_parameters"]["mrope_section"] = sec
        cfg = Qwen3_5TextConfig(**tc)
        re = M.Qwen3_5TextRotaryEmbedding(cfg)
        T = 100
        pid = torch.arange(T).view(1, 1, -1).expand(3, 1, -1)
        cos, sin = re(torch.zeros(1, dtype=torch.float32), pid)
        rdim = int(tc["head_dim"] * 0.25)
        inv = 1.0 / (1e7 ** (torch.arange(0, rdim, 2, dtype=torch.float) / rdim))
        f = torch.arange(T).float()[:, None] * inv[None]
        emb = torch.cat([f, f], -1)
        ok = torch.equal(cos[0], emb.cos()) and torch.equal(sin[0], emb.sin())
        res.append((sec, ok, tuple(cos.shape)))
    return res


def selftest(workdir=None, keep=False):
    import numpy as np
    tmp = workdir or tempfile.mkdtemp(prefix="fp4rt-tiny-")
    os.makedirs(tmp, exist_ok=True)
    fails = []
    V = TEXT_CONFIG["vocab_size"]
    print(f"workdir {tmp}")

    print("== number formats")
    if R.selftest() != 0:
        fails.append("number-format selftest")

    print("== text-only mRoPE vs plain RoPE")
    for sec, ok, shp in check_rope_equivalence():
        print(f"  mrope_section={sec}: equal={ok} cos shape {shp}")
        if not ok:
            fails.append(f"mrope {sec}")

    bf = build(os.path.join(tmp, "tiny-bf16"), seed=1)
    ckpts = {"tiny-bf16": bf}
    for rec, name in (("nvidia-mixed", "tiny-mixed"), ("nvfp4-w4a4", "tiny-w4a4"),
                      ("fp8", "tiny-fp8"), ("w4a16", "tiny-w4a16")):
        d = os.path.join(tmp, name)
        quantize(bf, d, rec)
        ckpts[name] = d

    results = {}
    for name, d in ckpts.items():
        print(f"== {name}")
        out = os.path.join(tmp, name + ".logits.bin")
        r = run_ref(d, out)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            fails.append(f"{name}: reference_logits failed")
            continue
        for line in r.stdout.splitlines():
            print("  | " + line)
        meta = json.load(open(os.path.splitext(out)[0] + ".json"))
        got = load_bin(out, V)
        dlg = load_bin(os.path.join(tmp, name + ".decode.bin"), V)
        ind = independent_forward(d, TEST_TOKENS)
        diff = float((got.double() - ind).abs().max())
        ddiff = float((dlg.double() - ind).abs().max())
        scale = float(ind.abs().max())
        agree = int((got.argmax(-1) == ind.argmax(-1)).sum())
        dec = meta["decode"]
        results[name] = {"prefill_vs_independent_max_abs": diff, "decode_vs_independent_max_abs": ddiff,
                         "max_abs_logit": scale, "prefill_vs_independent_argmax_agree": agree,
                         "decode_vs_prefill_max_abs": dec["max_abs_diff"]}
        print(f"  vs independent MODEL.md float64 forward: prefill max abs {diff:.3e}, decode max abs {ddiff:.3e} "
              f"(max |logit| {scale:.2f}), prefill argmax agree {agree}/{len(TEST_TOKENS)}")
        if name in ("tiny-bf16", "tiny-w4a16"):
            # no activation quantization: everything must agree to float32 rounding
            if diff > 2e-4 * max(1.0, scale) or ddiff > 2e-4 * max(1.0, scale):
                fails.append(f"{name}: transformers vs independent diff {diff} / {ddiff}")
            if dec["max_abs_diff"] > 1e-3:
                fails.append(f"{name}: decode vs prefill diff {dec['max_abs_diff']}")
        else:
            # Activation quantization amplifies float32 rounding differences (chunked vs recurrent GDN,
            # float32 vs float64) into whole-step FP8/FP4 rounding flips that then cascade, so only
            # the first row (no recurrence yet) and the early decode rows are expected to match tightly.
            r0 = float((got[0].double() - ind[0]).abs().max())
            e16 = float((dlg[:16].double() - ind[:16]).abs().max())
            print(f"  row 0 prefill vs independent {r0:.3e}; decode rows 0-15 vs independent {e16:.3e}")
            if r0 > 1e-4 * max(1.0, scale) or e16 > 1e-3 * max(1.0, scale) or agree < 0.7 * len(TEST_TOKENS):
                fails.append(f"{name}: row0 {r0} decode[:16] {e16} argmax {agree}")
        pc = meta["prefill_path_calls"]
        if pc["torch_chunk_gated_delta_rule"] != 6 or pc["torch_recurrent_gated_delta_rule"] != 0:
            fails.append(f"{name}: unexpected prefill GDN path calls {pc}")
        dpc = dec["path_calls"]
        if dpc["torch_recurrent_gated_delta_rule"] != 6 * (len(TEST_TOKENS) - 1):
            fails.append(f"{name}: unexpected decode GDN path calls {dpc}")
        if name == "tiny-bf16":
            results[name]["bin"] = got

    # quantized logits must differ from bf16 (i.e. quantization actually happened)
    if "tiny-bf16" in results:
        base = results["tiny-bf16"]["bin"]
        for name in ckpts:
            if name == "tiny-bf16" or name not in results:
                continue
            d = float((load_bin(os.path.join(tmp, name + ".logits.bin"), V) - base).abs().max())
            print(f"  {name} vs bf16: max abs {d:.3e}")
            if d == 0:
                fails.append(f"{name}: identical to bf16")

    # activation-emulation toggling: W4A4 logits with the hooks vs weights-only must differ
    print("== activation emulation is active")
    model, M, info = R.load_model(ckpts["tiny-w4a4"], log=lambda *a: None)
    a1 = R.run_prefill(model, TEST_TOKENS)
    n1 = info["counters"]["nvfp4_act"]
    for mod in model.modules():
        if hasattr(mod, "quant_emulation"):
            del mod.forward
    a2 = R.run_prefill(model, TEST_TOKENS)
    d = float((a1 - a2).abs().max())
    print(f"  nvfp4 act-quant calls per prefill {n1}; w4a4 vs weight-only-dequant max abs {d:.3e}")
    n_lin_expected = sum(1 for m in model.modules() if isinstance(m, torch.nn.Linear)) - 1
    if n1 != n_lin_expected or d == 0:
        fails.append(f"w4a4 emulation: calls {n1} (want {n_lin_expected}), diff {d}")

    # transformers' own from_pretrained loader must agree with our manual name mapping (bf16)
    print("== transformers from_pretrained cross-check (bf16)")
    try:
        from transformers.models.qwen3_5 import modeling_qwen3_5 as M
        import transformers
        transformers.logging.set_verbosity_error()   # the load report lists the (absent) vision tower
        full = M.Qwen3_5ForConditionalGeneration.from_pretrained(bf, dtype=torch.float32,
                                                                 attn_implementation="eager")
        with torch.no_grad():
            lg = full(input_ids=torch.tensor([TEST_TOKENS]), use_cache=False).logits[0]
        d = float((lg - results["tiny-bf16"]["bin"]).abs().max())
        print(f"  Qwen3_5ForConditionalGeneration.from_pretrained (vision tower random, unused) vs ours: "
              f"max abs {d:.3e}")
        if d > 1e-4:
            fails.append(f"from_pretrained mismatch {d}")
    except Exception as e:  # report, don't hide
        print(f"  from_pretrained cross-check could not run: {type(e).__name__}: {e}")
        fails.append("from_pretrained cross-check")

    # negative tests: the loader must fail loudly
    print("== negative tests")
    from safetensors.torch import load_file, save_file

    def neg(label, mutate, expect):
        d = os.path.join(tmp, "neg-" + label)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(ckpts["tiny-mixed"] if "quant" in label else bf, d)
        mutate(d)
        r = run_ref(d, os.path.join(d, "x.bin"))
        ok = r.returncode != 0 and expect in (r.stderr + r.stdout)
        print(f"  {label}: {'fails as expected' if ok else 'NOT DETECTED'}")
        if not ok:
            print(r.stdout[-2000:], r.stderr[-2000:])
            fails.append(f"negative test {label}")

    def drop(d, key):
        t = load_file(os.path.join(d, "model.safetensors"))
        del t[key]
        save_file(t, os.path.join(d, "model.safetensors"))

    def add(d, key):
        t = load_file(os.path.join(d, "model.safetensors"))
        t[key] = torch.zeros(4, dtype=torch.bfloat16)
        save_file(t, os.path.join(d, "model.safetensors"))

    def edit_q(d, fn):
        p = os.path.join(d, "hf_quant_config.json")
        j = json.load(open(p))
        fn(j["quantization"])
        json.dump(j, open(p, "w"))
        os.remove(os.path.join(d, "config.json"))
        c = copy.deepcopy(CONFIG)
        json.dump(c, open(os.path.join(d, "config.json"), "w"))

    neg("missing", lambda d: drop(d, "model.language_model.layers.2.linear_attn.A_log"), "missing=")
    neg("unexpected", lambda d: add(d, "model.language_model.layers.0.linear_attn.bogus"), "unexpected=")
    neg("quant-algo-mismatch",
        lambda d: edit_q(d, lambda q: q["quantized_layers"].__setitem__(
            "model.language_model.layers.0.mlp.down_proj", {"quant_algo": "FP8"})), "config says FP8")
    neg("quant-unlisted",
        lambda d: edit_q(d, lambda q: q["quantized_layers"].pop("model.language_model.layers.0.mlp.up_proj")),
        "config says unquantized")
    # visual / mtp tensors are skipped silently (not an error)
    d = os.path.join(tmp, "with-mtp")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(bf, d)
    add(d, "mtp.fc.weight")
    add(d, "model.visual.blocks.0.norm1.weight")
    r = run_ref(d, os.path.join(d, "x.bin"))
    same = r.returncode == 0 and torch.equal(load_bin(os.path.join(d, "x.bin"), V), results["tiny-bf16"]["bin"])
    print(f"  mtp.* / model.visual.* tensors skipped: {'ok' if same else 'FAILED'}")
    if not same:
        fails.append("skip mtp/visual")

    # sharded checkpoint with model.safetensors.index.json must give identical logits
    d = os.path.join(tmp, "sharded")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(bf, "config.json"), d)
    t = load_file(os.path.join(bf, "model.safetensors"))
    names = sorted(t)
    wm, total = {}, 0
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
        fn = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: t[k] for k in part}, os.path.join(d, fn))
        for k in part:
            wm[k] = fn
            total += t[k].numel() * t[k].element_size()
    json.dump({"metadata": {"total_size": total}, "weight_map": wm},
              open(os.path.join(d, "model.safetensors.index.json"), "w"))
    r = run_ref(d, os.path.join(d, "x.bin"))
    same = r.returncode == 0 and torch.equal(load_bin(os.path.join(d, "x.bin"), V), results["tiny-bf16"]["bin"])
    print(f"  sharded checkpoint (index.json, 2 shards): {'ok' if same else 'FAILED'}")
    if not same:
        fails.append("sharded")

    summary = {k: {kk: vv for kk, vv in v.items() if kk != "bin"} for k, v in results.items()}
    print("== summary")
    print(json.dumps(summary, indent=1))
    if not keep and workdir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print("SELFTEST FAILED:\n  " + "\n  ".join(fails))
        return 1
    print("make_tiny_py selftest: ALL OK")
    return 0


def config_keys():
    """Which config keys transformers needs: drop each one and compare the resulting model.

    A key is REQUIRED when dropping it errors or changes the model (tensor shapes, layer types,
    norm eps, activation, RoPE inverse frequencies, tie flag).  Top-level keys are tested through
    AutoConfig.from_pretrained on a written config.json.
    """
    from transformers import AutoConfig
    from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig
    from transformers.models.qwen3_5 import modeling_qwen3_5 as M

    def signature(c):
        m = M.Qwen3_5ForCausalLM(c)
        shapes = tuple((k, tuple(v.shape)) for k, v in m.state_dict().items())
        rot = m.model.rotary_emb
        return (shapes, tuple(c.layer_types), c.rms_norm_eps, c.hidden_act, bool(c.tie_word_embeddings),
                tuple(rot.inv_freq.tolist()), float(rot.attention_scaling), bool(c.attention_bias))

    ref = signature(Qwen3_5TextConfig(**TEXT_CONFIG))
    needed, optional = [], []
    keys = list(TEXT_CONFIG) + [f"rope_parameters.{k}" for k in TEXT_CONFIG["rope_parameters"]]
    for key in keys:
        tc = copy.deepcopy(TEXT_CONFIG)
        if "." in key:
            del tc["rope_parameters"][key.split(".")[1]]
        else:
            del tc[key]
        try:
            if signature(Qwen3_5TextConfig(**tc)) != ref:
                needed.append((key, "transformers' default gives a different model"))
            else:
                optional.append(key)
        except Exception as ex:
            needed.append((key, f"error: {type(ex).__name__}: {str(ex).splitlines()[-1][:140]}"))
    print("text_config keys whose absence changes or breaks the model (REQUIRED for this geometry):")
    for k, why in needed:
        print(f"  {k}: {why}")
    print("text_config keys that may be omitted (default gives the same text model):")
    print("  " + ", ".join(optional))

    print("top-level config.json (via AutoConfig.from_pretrained):")
    with tempfile.TemporaryDirectory() as d:
        for drop in (None, "architectures", "model_type", "tie_word_embeddings", "text_config.model_type"):
            c = copy.deepcopy(CONFIG)
            if drop == "text_config.model_type":
                del c["text_config"]["model_type"]
            elif drop:
                del c[drop]
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(c, f)
            try:
                ac = AutoConfig.from_pretrained(d)
                sub = getattr(ac, "text_config", ac)
                same = signature(Qwen3_5TextConfig(**sub.to_dict())) == ref
                print(f"  drop {drop}: {type(ac).__name__}, text model {'same' if same else 'DIFFERENT'}")
            except Exception as ex:
                print(f"  drop {drop}: error {type(ex).__name__}: {str(ex).splitlines()[0][:160]}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=1)
    q = sub.add_parser("quantize")
    q.add_argument("--in", dest="src", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--recipe", required=True, choices=["nvidia-mixed", "nvfp4-w4a4", "fp8", "w4a16"])
    s = sub.add_parser("selftest")
    s.add_argument("--workdir")
    s.add_argument("--keep", action="store_true")
    sub.add_parser("config-keys")
    a = ap.parse_args()
    if a.cmd == "build":
        print(build(a.out, a.seed))
        return 0
    if a.cmd == "quantize":
        print(json.dumps(quantize(a.src, a.out, a.recipe), indent=1))
        return 0
    if a.cmd == "selftest":
        return selftest(a.workdir, a.keep)
    return config_keys()


if __name__ == "__main__":
    sys.exit(main())
