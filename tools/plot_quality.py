#!/usr/bin/env python3
"""The quality plot of bench/quality_table.sh: mean KL vs BF16 (log axis) against file size.

    python3 tools/plot_quality.py QUALITY.csv OUT.svg

Reads the CSV that bench/quality_table.sh writes (columns variant, recipe, scale, calib, ...,
kl_mean, ..., bytes) and writes a standalone SVG (standard library only): one labelled point per
quantized variant, coloured by recipe, hollow without --calib and filled with it; BF16 (KL 0,
which a log axis cannot show) is the dashed vertical line at its size.  A row with kl_mean <= 0
other than BF16's is an error.
"""

import csv
import math
import sys

COLOURS = {"fp8": "#1f77b4", "nvidia-mixed": "#2ca02c", "nvfp4-all": "#ff7f0e", "nvfp4-w4a4": "#d62728"}
W, H = 820, 520
L, R, T, B = 80, 250, 40, 60  # margins; the legend and labels use the right one


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_ticks(lo, hi, n=6):
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9:
        out.append(t)
        t += step
    return out


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: plot_quality.py QUALITY.csv OUT.svg")
    with open(argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    base = [r for r in rows if r["recipe"] == "none"]
    pts = [r for r in rows if r["recipe"] != "none"]
    if not pts:
        sys.exit(f"plot_quality: {argv[1]}: no quantized rows")
    for r in pts:
        if float(r["kl_mean"]) <= 0:
            sys.exit(f"plot_quality: {argv[1]}: row '{r['variant']}' has kl_mean {r['kl_mean']}")
    mb = [int(r["bytes"]) / 1e6 for r in rows]
    x0, x1 = min(mb) * 0.95, max(mb) * 1.03
    kls = [float(r["kl_mean"]) for r in pts]
    y0, y1 = math.floor(math.log10(min(kls))), math.ceil(math.log10(max(kls)))
    if y1 == y0:
        y1 += 1
    pw, ph = W - L - R, H - T - B
    X = lambda v: L + (v - x0) / (x1 - x0) * pw
    Y = lambda kl: T + ph - (math.log10(kl) - y0) / (y1 - y0) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L + pw / 2}" y="22" text-anchor="middle" font-size="14">'
         'qwen35-kjv-10m: mean KL vs BF16 on held-out text against file size</text>']
    for e in range(y0, y1 + 1):  # decades and their 2x / 5x
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if v > 10.0 ** y1:
                break
            y = Y(v)
            o.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" '
                     f'stroke-width="{1 if m == 1 else 0.5}"/>')
            if m == 1:
                o.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    for t in nice_ticks(x0, x1):
        x = X(t)
        o.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{T + ph}" stroke="#eee"/>')
        o.append(f'<text x="{x:.1f}" y="{T + ph + 16}" text-anchor="middle">{t:g}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">'
             'safetensors size (MB, MTP head included)</text>')
    o.append(f'<text x="18" y="{T + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {T + ph / 2})">mean KL(BF16 || variant), nats (log)</text>')
    for r in base:
        x = X(int(r["bytes"]) / 1e6)
        o.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{T + ph}" stroke="#555" '
                 'stroke-dasharray="5,4"/>')
        o.append(f'<text x="{x - 4:.1f}" y="{T + 14}" text-anchor="end">BF16 (KL 0, ppl {r["ppl"]})</text>')
    for r in sorted(pts, key=lambda r: float(r["kl_mean"])):
        x, y = X(int(r["bytes"]) / 1e6), Y(float(r["kl_mean"]))
        c = COLOURS.get(r["recipe"], "#555")
        fill = c if r["calib"] == "yes" else "white"
        o.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" stroke="{c}" stroke-width="1.8">'
                 f'<title>{esc(r["variant"])} calib={r["calib"]}: KL {r["kl_mean"]}, ppl {r["ppl"]}</title>'
                 '</circle>')
    # Labels: in a column right of the plot, joined to their points by thin lines, in KL order
    # (points at one file size overlap too much for labels beside them).
    lab = sorted(pts, key=lambda r: -float(r["kl_mean"]))
    step = ph / max(1, len(lab) - 1)
    for i, r in enumerate(lab):
        x, y = X(int(r["bytes"]) / 1e6), Y(float(r["kl_mean"]))
        ly = T + i * step
        c = COLOURS.get(r["recipe"], "#555")
        cal = " +calib" if r["calib"] == "yes" else ""
        o.append(f'<line x1="{x + 5:.1f}" y1="{y:.1f}" x2="{L + pw + 8}" y2="{ly:.1f}" stroke="{c}" '
                 'stroke-width="0.4" opacity="0.6"/>')
        o.append(f'<text x="{L + pw + 12}" y="{ly + 4:.1f}" fill="{c}">'
                 f'{esc(r["variant"])}{cal}  {float(r["kl_mean"]):.2g}</text>')
    o.append(f'<text x="{L}" y="{H - 4}" fill="#555">hollow: no --calib; filled: --calib '
             '(calibration text: training chapters)</text>')
    o.append("</svg>")
    with open(argv[2], "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main(sys.argv)
