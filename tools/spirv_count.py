#!/usr/bin/env python3
"""SPIR-V instructions per weight in the inner loop of the Vulkan decode
linear kernels (issue 19 item 3), old (shaders/linear_mv.comp) against new
(shaders/linear_mvi.comp on the decode layout), per weight format.

Each kernel is compiled by glslc as the build does (--target-env=vulkan1.2 -O)
with COUNT_ONE_TOKEN (the one-token decode path alone) and, for linear_mv, one
format compiled in (COUNT_FMT), so the optimizer removes the other formats'
code. The tool then reads the SPIR-V binary itself (no spirv-dis needed):
blocks, the control-flow graph, natural loops (a back edge to an OpLoopMerge
header). The inner loop is the innermost loop that accumulates the most
weights per iteration (ties: the fewer instructions, the kernel's fast path);
weights per iteration = the lanes of its OpFAdd instructions that add an
OpFMul product of the loop (each weight of a chain adds its product w * x
once: a vec4 add is four weights; the reduction tree adds sums, not products). Instructions counted:
every instruction of the loop's blocks except OpLabel and the merge
declarations (OpLoopMerge, OpSelectionMerge), so the count includes the loop's
own compare and branch. A loop body with branches (the old kernel's E4M3 NaN
test) is reported as the fewest and most instructions one iteration executes
(its paths from the header to the back edge); --check uses the most. A vector instruction counts once (SPIR-V, not the
device's ISA: a driver scalarizes a vec4 multiply on a scalar GPU).

usage: spirv_count.py [--glslc PATH] [--shaders DIR] [--check MAX] [--no-fma SPVDIR]
  --check MAX: exit 1 unless every new kernel stays under MAX per weight.
  --no-fma SPVDIR: also exit 1 if a kernel of the numerics contract (every
    built .spv in SPVDIR but the prefill linears linear_mm, linear_coop*,
    linear_i8, which keep FMA: docs/NUMERICS.md) holds a GLSL.std.450 Fma:
    spirv-opt -O fuses a multiply and an add that `precise` does not protect
    (or whose NoContraction its loop unroller dropped), and lavapipe, which
    runs Fma unfused, cannot show it.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

OP_NAME = {54: "Function", 56: "FunctionEnd", 248: "Label", 246: "LoopMerge", 247: "SelectionMerge",
           249: "Branch", 250: "BranchConditional", 251: "Switch", 253: "Return", 254: "ReturnValue",
           252: "Kill", 255: "Unreachable", 129: "FAdd", 23: "TypeVector", 22: "TypeFloat"}
TERMINATORS = {249, 250, 251, 252, 253, 254, 255}

# (label, source, defines, weight format)
KERNELS = [
    ("old linear_mv", "linear_mv.comp", ["USE_SUBGROUP", "COUNT_FMT=4u"], "NVFP4"),
    ("old linear_mv", "linear_mv.comp", ["USE_SUBGROUP", "COUNT_FMT=3u"], "FP8"),
    ("old linear_mv", "linear_mv.comp", ["USE_SUBGROUP", "COUNT_FMT=0u"], "BF16"),
    ("new linear_mvi", "linear_mvi.comp", ["WFMT=4"], "NVFP4"),
    ("new linear_mvi", "linear_mvi.comp", ["WFMT=3"], "FP8"),
    ("new linear_mvi", "linear_mvi.comp", ["WFMT=0"], "BF16"),
]


def words_of(path):
    data = open(path, "rb").read()
    if len(data) < 20 or len(data) % 4:
        sys.exit(f"spirv_count: {path}: not a SPIR-V module ({len(data)} bytes)")
    w = struct.unpack("<%dI" % (len(data) // 4), data)
    if w[0] != 0x07230203:
        sys.exit(f"spirv_count: {path}: bad SPIR-V magic {w[0]:#x}")
    return w


def instructions(w):
    """(opcode, operand words) of every instruction after the header."""
    i, out = 5, []
    while i < len(w):
        n, op = w[i] >> 16, w[i] & 0xFFFF
        if n == 0 or i + n > len(w):
            sys.exit(f"spirv_count: damaged instruction at word {i}")
        out.append((op, w[i + 1:i + n]))
        i += n
    return out


def analyse(w):
    ins = instructions(w)
    # result types: id -> lanes (vector component count, 1 for scalars)
    lanes = {}
    for op, a in ins:
        if op == 23:  # OpTypeVector result, component type, count
            lanes[a[0]] = a[2]
    blocks, order, cur = {}, [], None
    for op, a in ins:
        if op == 248:  # OpLabel
            cur = a[0]
            blocks[cur] = {"ins": [], "succ": [], "merge": None}
            order.append(cur)
        elif cur is not None:
            b = blocks[cur]
            b["ins"].append((op, a))
            if op == 246:
                b["merge"] = ("loop", a[0], a[1])
            elif op == 249:
                b["succ"] = [a[0]]
            elif op == 250:
                b["succ"] = [a[1], a[2]]
            elif op == 251:
                b["succ"] = [a[1]] + [a[j] for j in range(3, len(a), 2)]
            if op in TERMINATORS:
                cur = None
    preds = {b: [] for b in blocks}
    for b, d in blocks.items():
        for s in d["succ"]:
            preds.setdefault(s, []).append(b)
    loops = []
    for h, d in blocks.items():
        if not d["merge"] or d["merge"][0] != "loop":
            continue
        # back edges: predecessors of h reachable from h inside the loop (not
        # through its merge block, the structured exit); the loop: everything
        # that reaches a back edge without passing h
        merge = d["merge"][1]
        back = [p for p in preds.get(h, []) if reaches(blocks, h, p, merge)]
        body, stack = {h}, list(back)
        while stack:
            x = stack.pop()
            if x in body:
                continue
            body.add(x)
            stack.extend(preds.get(x, []))
        loops.append((h, body))
    result = []
    headers = {h for h, _ in loops}
    for h, body in loops:
        if any(o in body for o in headers if o != h):
            continue  # not innermost
        n = adds = 0
        # products (OpFMul results) of the loop; a weight is an OpFAdd of a product
        # into its chain (not the reduction tree's adds of sums)
        products = {a[1] for b in body for op, a in blocks[b]["ins"] if op == 133}
        for b in body:
            for op, a in blocks[b]["ins"]:
                if op in (246, 247):
                    continue
                n += 1
                if op == 129 and (a[2] in products or a[3] in products):  # OpFAdd: type, result, a, b
                    adds += lanes.get(a[0], 1)
        if adds:
            lo, hi = path_lengths(blocks, h, body, set(back))
            result.append({"header": h, "blocks": len(body), "instructions": n, "weights": adds, "path_min": lo,
                           "path_max": hi})
    return result


def counted(block):
    return sum(1 for op, _ in block["ins"] if op not in (246, 247))


def path_lengths(blocks, h, body, back):
    """Fewest and most instructions executed by one iteration: over the paths
    from h to a back-edge source inside the body (acyclic once h's back edges
    are cut; an inner loop has none: this is an innermost loop)."""
    memo = {}

    def walk(x):
        if x in memo:
            return memo[x]
        own = counted(blocks[x])
        ends = [walk(s) for s in blocks[x]["succ"] if s in body and s != h]
        lo = min([e[0] for e in ends] + ([0] if x in back else []), default=None)
        hi = max([e[1] for e in ends] + ([0] if x in back else []), default=None)
        memo[x] = (own + (lo or 0), own + (hi or 0))
        return memo[x]

    return walk(h)


def reaches(blocks, h, p, merge):
    """p is reachable from h without passing h again or the loop's merge block
    (so p -> h is a back edge of h's loop)."""
    seen, stack = set(), [h]
    while stack:
        x = stack.pop()
        if x == p:
            return True
        if x in seen:
            continue
        seen.add(x)
        stack.extend(s for s in blocks[x]["succ"] if s != h and s != merge)
    return False


FMA_ALLOWED = ("linear_mm", "linear_coop", "linear_coop_emu", "linear_i8")


def fma_count(w):
    """GLSL.std.450 Fma (extended instruction 50) instructions of a module."""
    ins = instructions(w)
    glsl = {a[0] for op, a in ins if op == 11 and bytes_of(a[1:]).startswith(b"GLSL.std.450")}  # OpExtInstImport
    return sum(1 for op, a in ins if op == 12 and a[2] in glsl and a[3] == 50)  # OpExtInst type result set inst


def bytes_of(ws):
    return b"".join(struct.pack("<I", x) for x in ws)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--glslc", default="glslc")
    ap.add_argument("--shaders", default=os.path.join(here, "..", "shaders"))
    ap.add_argument("--check", type=float, default=None)
    ap.add_argument("--no-fma", default=None)
    args = ap.parse_args()
    rows, bad = [], []
    if args.no_fma:
        names = sorted(f for f in os.listdir(args.no_fma) if f.endswith(".spv"))
        if not names:
            sys.exit(f"spirv_count: no .spv files in {args.no_fma}")
        for f in names:
            if f[:-4] in FMA_ALLOWED:
                continue
            n = fma_count(words_of(os.path.join(args.no_fma, f)))
            if n:
                bad.append(f"{f}: {n} Fma in a kernel of the numerics contract")
    with tempfile.TemporaryDirectory() as tmp:
        for label, src, defs, fmt in KERNELS:
            spv = os.path.join(tmp, "k.spv")
            cmd = [args.glslc, "--target-env=vulkan1.2", "-O", "-DCOUNT_ONE_TOKEN"] + ["-D" + d for d in defs] + [
                "-o", spv, os.path.join(args.shaders, src)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"spirv_count: {' '.join(cmd)} failed:\n{r.stderr}")
            loops = analyse(words_of(spv))
            if not loops:
                sys.exit(f"spirv_count: {label} {fmt}: no loop accumulating weights found")
            hot = max(loops, key=lambda l: (l["weights"], -l["path_max"]))
            per = hot["path_max"] / hot["weights"]
            rows.append((label, fmt, hot, per))
            if args.check is not None and label.startswith("new") and per >= args.check:
                bad.append(f"{label} {fmt}: {per:.2f} instructions per weight, not under {args.check}")
    print("| kernel | format | blocks | instructions (all blocks) | executed per iteration (min-max path) "
          "| weights per iteration | per weight (min-max) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, fmt, l, per in rows:
        w = l["weights"]
        path = f"{l['path_min']}" + (f"-{l['path_max']}" if l["path_max"] != l["path_min"] else "")
        pw = f"{l['path_min'] / w:.2f}" + (f"-{per:.2f}" if l["path_max"] != l["path_min"] else "")
        print(f"| {label} | {fmt} | {l['blocks']} | {l['instructions']} | {path} | {w} | {pw} |")
    for b in bad:
        print("spirv_count: " + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
