#!/usr/bin/env python3
"""Independent conformance check of a ModelOpt-format NVFP4 / FP8 checkpoint
written by `fp4rt quantize` (or anyone else), against its BF16 source.

    python tools/check_modelopt.py --quant DIR --source DIR [--modelopt]
           [--expect-absmax] [--nvfp4-bound 0.015] [--fp8-bound 0.003] [--json FILE]

What it checks (numpy only; safetensors files are parsed here from the format's
definition, and the `safetensors` package's own reader must agree on names,
dtypes and shapes):
  * hf_quant_config.json and config.json's quantization_config: producer,
    quant_algo, MIXED_PRECISION quantized_layers (or exclude_modules / ignore),
    group_size 16, and that they declare exactly the formats of the tensors;
  * every quantized module's tensors: NVFP4 weight U8 [N, K/2], weight_scale
    F8_E4M3 [N, K/16] (no NaN code, sign bit clear), weight_scale_2 F32 [],
    input_scale F32 [] (finite, > 0); FP8 weight F8_E4M3 [N, K] (no NaN),
    weight_scale F32 [], input_scale F32 [];
  * dequantization per docs/NVFP4.md / tools/README.md:
    W = (e2m1(code) * float(weight_scale)) * weight_scale_2 (float32; even element
    in the low nibble), FP8 W = float(e4m3) * weight_scale; the relative error
    sum (W - W_src)^2 / sum W_src^2 of each module within the bounds;
  * every other tensor byte-identical to the source;
  * --modelopt: NVIDIA ModelOpt's NVFP4QTensor.dequantize on the same bytes
    must give bit-identical results to the same formula evaluated in ModelOpt's
    order (e2m1 * (scale * scale_2)), equal as numbers (its table decodes code 8
    as +0, the spec's as -0); against the spec order above, results may
    differ by one float32 rounding (reported: count and max ulp);
  * --expect-absmax (with --modelopt): NVFP4QTensor.quantize of the source with
    the stored weight_scale_2 must give the same weight and weight_scale bytes.

Exit status 0 when everything holds, 1 otherwise. Prints one line per failure
and a summary table.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)


def e4m3_table():
    t = np.zeros(256, dtype=np.float32)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e, m = (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            t[b] = np.nan
        elif e == 0:
            t[b] = s * m * 2.0 ** -9
        else:
            t[b] = s * 2.0 ** (e - 7) * (1 + m / 8)
    return t


E4M3 = e4m3_table()
DTYPES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "F8_E4M3": 1, "I64": 8, "I32": 4}


class Checkpoint:
    """A directory of safetensors files (single file or index), parsed from raw bytes."""

    def __init__(self, path):
        self.path = path
        files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        idx = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                wm = json.load(f)["weight_map"]
            files = sorted(set(wm.values()))
        self.tensors = {}  # name -> (file, dtype, shape, begin, end)
        self.data = {}
        for fn in files:
            full = os.path.join(path, fn)
            raw = np.memmap(full, dtype=np.uint8, mode="r")
            (hlen,) = struct.unpack("<Q", bytes(raw[:8]))
            header = json.loads(bytes(raw[8 : 8 + hlen]))
            header.pop("__metadata__", None)
            base = 8 + hlen
            for name, h in header.items():
                if name in self.tensors:
                    raise SystemExit(f"{path}: tensor {name} appears twice")
                b, e = h["data_offsets"]
                n = int(np.prod(h["shape"], dtype=np.int64)) * DTYPES[h["dtype"]]
                if e - b != n:
                    raise SystemExit(f"{full}: {name}: {e - b} bytes for {h['dtype']} {h['shape']}")
                self.tensors[name] = (fn, h["dtype"], list(h["shape"]), base + b, base + e)
            self.data[fn] = raw
        if os.path.exists(idx):
            if set(wm) != set(self.tensors):
                raise SystemExit(f"{idx}: weight_map does not list exactly the tensors in the shards")
        self._cross_check(files)

    def _cross_check(self, files):
        """The safetensors package must read the same names, dtypes and shapes."""
        try:
            from safetensors import safe_open
        except ImportError:
            return
        for fn in files:
            with safe_open(os.path.join(self.path, fn), framework="pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    t = self.tensors.get(k)
                    if not t or t[0] != fn or list(sl.get_shape()) != t[2] or sl.get_dtype() != t[1]:
                        raise SystemExit(f"{fn}: {k}: safetensors disagrees with the raw parse")

    def raw(self, name):
        fn, _, _, b, e = self.tensors[name]
        return np.asarray(self.data[fn][b:e])

    def dtype(self, name):
        return self.tensors[name][1]

    def shape(self, name):
        return self.tensors[name][2]

    def f32(self, name):
        """BF16 / F16 / F32 tensor as float32."""
        dt, raw = self.dtype(name), self.raw(name)
        if dt == "BF16":
            return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(self.shape(name))
        if dt == "F16":
            return raw.view(np.float16).astype(np.float32).reshape(self.shape(name))
        if dt == "F32":
            return raw.view(np.float32).reshape(self.shape(name))
        raise ValueError(f"{name}: {dt} is not a float type")

    def scalar(self, name):
        if self.dtype(name) != "F32" or self.shape(name) != []:
            raise ValueError(f"{name}: {self.dtype(name)} {self.shape(name)}, expected F32 []")
        return np.float32(self.raw(name).view(np.float32)[0])


def nvfp4_codes(packed):
    n, half = packed.shape
    codes = np.empty((n, half * 2), dtype=np.uint8)
    codes[:, 0::2] = packed & 15  # even element in the low nibble
    codes[:, 1::2] = packed >> 4
    return codes


def nvfp4_dequant(packed, scales, s2):
    """Spec order: (e2m1 * float(sb)) * s2, float32 (the first product is exact)."""
    codes = nvfp4_codes(packed)
    sb = np.repeat(E4M3[scales], 16, axis=1)
    return (E2M1[codes] * sb).astype(np.float32) * np.float32(s2)


def nvfp4_dequant_modelopt_order(packed, scales, s2):
    codes = nvfp4_codes(packed)
    per_block = (E4M3[scales] * np.float32(s2)).astype(np.float32)
    return E2M1[codes] * np.repeat(per_block, 16, axis=1)


def ulp_diff(a, b):
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quant", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--modelopt", action="store_true", help="also dequantize with NVIDIA ModelOpt")
    ap.add_argument("--expect-absmax", action="store_true",
                    help="NVFP4 bytes must equal ModelOpt's own absmax quantization")
    ap.add_argument("--nvfp4-bound", type=float, default=0.015)
    ap.add_argument("--fp8-bound", type=float, default=0.003)
    ap.add_argument("--json", help="write the per-module results here")
    a = ap.parse_args()

    fails = []

    def fail(msg):
        fails.append(msg)
        print("FAIL:", msg)

    q, src = Checkpoint(a.quant), Checkpoint(a.source)
    with open(os.path.join(a.quant, "hf_quant_config.json")) as f:
        hf = json.load(f)
    with open(os.path.join(a.quant, "config.json")) as f:
        cfg = json.load(f)
    quant = hf.get("quantization", {})
    qc = cfg.get("quantization_config", {})
    algo = quant.get("quant_algo")
    if hf.get("producer", {}).get("name") != "modelopt":
        fail("hf_quant_config.json: producer.name is not 'modelopt'")
    if qc.get("quant_method") != "modelopt" or qc.get("quant_algo") != algo:
        fail("config.json: quantization_config disagrees with hf_quant_config.json (quant_method / quant_algo)")
    if algo == "MIXED_PRECISION":
        layers = quant.get("quantized_layers", {})
        if qc.get("quantized_layers") != layers:
            fail("config.json: quantized_layers differ from hf_quant_config.json")
        declared = {m: e.get("quant_algo") for m, e in layers.items()}
        for m, e in layers.items():
            if e.get("quant_algo") in ("NVFP4", "W4A16_NVFP4") and e.get("group_size") != 16:
                fail(f"{m}: group_size {e.get('group_size')} (expected 16)")
    elif algo in ("NVFP4", "W4A16_NVFP4", "FP8"):
        if algo != "FP8" and quant.get("group_size") != 16:
            fail(f"group_size {quant.get('group_size')} (expected 16)")
        excl = quant.get("exclude_modules", [])
        if sorted(qc.get("ignore", [])) != sorted(excl):
            fail("config.json: ignore differs from exclude_modules")
        declared = None
    else:
        fail(f"unknown quant_algo {algo}")
        declared = {}

    # Modules with quantized tensors, by the dtype of their weight.
    found = {}
    for name in q.tensors:
        if name.endswith(".weight") and q.dtype(name) in ("U8", "F8_E4M3"):
            m = name[: -len(".weight")]
            found[m] = ("NVFP4" if q.dtype(name) == "U8" else "FP8")
    if declared is not None:
        for m, d in declared.items():
            kind = "NVFP4" if d in ("NVFP4", "W4A16_NVFP4") else d
            if found.get(m) != kind:
                fail(f"{m}: declared {d}, tensors are {found.get(m, 'unquantized')}")
        for m in found:
            if m not in declared:
                fail(f"{m}: quantized tensors but not in quantized_layers")
    else:
        import fnmatch
        for m, kind in found.items():
            if any(fnmatch.fnmatch(m, p) for p in excl):
                fail(f"{m}: excluded but quantized")
            if (kind == "FP8") != (algo == "FP8"):
                fail(f"{m}: {kind} tensors under quant_algo {algo}")

    mo = None
    if a.modelopt:
        import torch
        from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
        mo = (torch, NVFP4QTensor)

    results, used = [], set()
    tot = {"NVFP4": [0.0, 0.0], "FP8": [0.0, 0.0]}
    mo_stats = {"modules": 0, "identical_modelopt_order": 0, "spec_order_diff_elems": 0,
                "max_ulp": 0, "elements": 0, "absmax_bytes_equal": 0}
    for m, kind in sorted(found.items()):
        w = m + ".weight"
        if w not in src.tensors:
            fail(f"{m}: no {w} in the source")
            continue
        W = src.f32(w).astype(np.float32)
        N, K = W.shape
        names = [w, m + ".weight_scale", m + ".input_scale"] + ([m + ".weight_scale_2"] if kind == "NVFP4" else [])
        for n in names:
            used.add(n)
            if n not in q.tensors:
                fail(f"{n} missing")
        if any(n not in q.tensors for n in names):
            continue
        try:
            ins = q.scalar(m + ".input_scale")
            if not (np.isfinite(ins) and ins > 0):
                fail(f"{m}.input_scale = {ins}")
            if kind == "NVFP4":
                if q.shape(w) != [N, K // 2] or q.shape(m + ".weight_scale") != [N, K // 16] or \
                        q.dtype(m + ".weight_scale") != "F8_E4M3":
                    fail(f"{m}: NVFP4 shapes {q.shape(w)} {q.shape(m + '.weight_scale')} for source [{N}, {K}]")
                    continue
                packed = q.raw(w).reshape(N, K // 2)
                scales = q.raw(m + ".weight_scale").reshape(N, K // 16)
                s2 = q.scalar(m + ".weight_scale_2")
                if (scales & 0x80).any() or ((scales & 0x7F) == 0x7F).any():
                    fail(f"{m}.weight_scale: negative or NaN block scales")
                if not (np.isfinite(s2) and s2 > 0):
                    fail(f"{m}.weight_scale_2 = {s2}")
                D = nvfp4_dequant(packed, scales, s2)
                if mo:
                    torch, QT = mo
                    qt = QT(torch.Size([N, K]), torch.float32, torch.from_numpy(packed.copy()))
                    Dm = qt.dequantize(dtype=torch.float32,
                                       scale=torch.from_numpy(scales.copy()).view(torch.float8_e4m3fn),
                                       double_scale=torch.tensor(float(s2), dtype=torch.float32),
                                       block_sizes={-1: 16}).numpy()
                    ref_mo = nvfp4_dequant_modelopt_order(packed, scales, s2)
                    mo_stats["modules"] += 1
                    mo_stats["elements"] += D.size
                    # equal as numbers: ModelOpt's E2M1 table has +0 for code 8 (-0 here)
                    if np.array_equal(Dm, ref_mo):
                        mo_stats["identical_modelopt_order"] += 1
                    else:
                        fail(f"{m}: ModelOpt dequantization differs from e2m1 * (scale * scale_2)")
                    u = ulp_diff(Dm, D)
                    mo_stats["spec_order_diff_elems"] += int((u != 0).sum())
                    mo_stats["max_ulp"] = max(mo_stats["max_ulp"], int(u.max()))
                    if u.max() > 1:
                        fail(f"{m}: ModelOpt and spec-order dequantization differ by {u.max()} ulp")
                    if a.expect_absmax:
                        qx, sbq, _ = QT.quantize(torch.from_numpy(W.copy()), 16,
                                                 weights_scaling_factor_2=torch.tensor(float(s2)))
                        same = np.array_equal(qx._quantized_data.numpy(), packed) and np.array_equal(
                            sbq.view(torch.uint8).numpy().reshape(N, K // 16), scales)
                        mo_stats["absmax_bytes_equal"] += int(same)
                        if not same:
                            fail(f"{m}: bytes differ from ModelOpt's own NVFP4 quantization")
            else:
                if q.shape(w) != [N, K] or q.dtype(w) != "F8_E4M3":
                    fail(f"{m}: FP8 weight {q.dtype(w)} {q.shape(w)} for source [{N}, {K}]")
                    continue
                raw = q.raw(w).reshape(N, K)
                if ((raw & 0x7F) == 0x7F).any():
                    fail(f"{m}.weight: NaN codes")
                D = E4M3[raw] * q.scalar(m + ".weight_scale")
        except ValueError as e:
            fail(str(e))
            continue
        err = float(((D.astype(np.float64) - W) ** 2).sum())
        en = float((W.astype(np.float64) ** 2).sum())
        rel = err / en if en > 0 else 0.0
        bound = a.nvfp4_bound if kind == "NVFP4" else a.fp8_bound
        if not rel <= bound:
            fail(f"{m}: relative error {rel:.4g} > {bound}")
        tot[kind][0] += err
        tot[kind][1] += en
        results.append({"module": m, "format": kind, "shape": [N, K], "rel_mse": rel})

    # Everything else: byte-identical to the source.
    n_same = 0
    for name in q.tensors:
        if name in used:
            continue
        if name not in src.tensors:
            fail(f"{name}: not in the source")
        elif q.dtype(name) != src.dtype(name) or q.shape(name) != src.shape(name) or \
                not np.array_equal(q.raw(name), src.raw(name)):
            fail(f"{name}: differs from the source")
        else:
            n_same += 1
    for name in src.tensors:
        m = name[: -len(".weight")] if name.endswith(".weight") else None
        if name not in q.tensors and m not in found:
            fail(f"{name}: in the source, missing from the output")

    print(f"checkpoint {a.quant}: quant_algo {algo}; {len(found)} quantized modules, "
          f"{n_same} tensors copied unchanged")
    print("| format | modules | relative MSE (all) | worst module | bound |")
    print("|---|---|---|---|---|")
    for kind in ("NVFP4", "FP8"):
        rs = [r["rel_mse"] for r in results if r["format"] == kind]
        if rs:
            e, en = tot[kind]
            b = a.nvfp4_bound if kind == "NVFP4" else a.fp8_bound
            print(f"| {kind} | {len(rs)} | {e / en:.5g} | {max(rs):.5g} | {b} |")
    if mo:
        print(f"ModelOpt NVFP4QTensor.dequantize: {mo_stats['modules']} modules, "
              f"{mo_stats['identical_modelopt_order']} identical to e2m1*(scale*scale_2); "
              f"vs spec order (e2m1*scale)*scale_2: {mo_stats['spec_order_diff_elems']} of "
              f"{mo_stats['elements']} elements differ, max {mo_stats['max_ulp']} ulp")
        if a.expect_absmax:
            print(f"ModelOpt NVFP4QTensor.quantize: {mo_stats['absmax_bytes_equal']} of "
                  f"{mo_stats['modules']} modules byte-identical")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"modules": results, "modelopt": mo_stats if mo else None, "failures": fails}, f, indent=1)
    print(f"{len(fails)} failures" if fails else "OK")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
