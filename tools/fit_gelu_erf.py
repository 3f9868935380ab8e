#!/usr/bin/env python3
"""Fits the coefficients of the canonical normal CDF behind GELU's erf form
(runtime/base/canon_math.h fp4rt_cnormcdf, shaders/canon.glsl cnormcdf):
  |x| < 0.75:  Phi(x) = 0.5 + x P(x^2)            (P: degree 5)
  |x| >= 0.75: Phi(-u) = exp(-u^2 / 2) t Q(t),     t = 1 / (1 + u / 2)  (Q: degree 9)
by relative-weighted least squares on Chebyshev nodes against mpmath at 40
digits, then rounds to float and prints the bits and the fits' relative error.
Usage: fit_gelu_erf.py [core_degree tail_degree]   (default 5 9; needs mpmath, numpy)."""
import mpmath as mp, numpy as np, sys
mp.mp.dps = 40
f32 = np.float32
def Phi(x): return mp.ncdf(x)
# core: Phi(x) = 0.5 + x * P(x^2), |x| <= A
A = 0.75
def fit_core(deg):
    n = 400
    xs = [A * mp.cos(mp.pi * (k + 0.5) / n) for k in range(n)]
    xs = [x for x in xs if x > 0]
    M = np.array([[float(x**(2*i)) for i in range(deg + 1)] for x in xs])
    y = np.array([float((Phi(x) - 0.5) / x) for x in xs])
    w = 1 / y
    c, *_ = np.linalg.lstsq(M * w[:, None], y * w, rcond=None)
    return [f32(v) for v in c]
# tail: Phi(-u) = exp(-u^2/2) * g(u), g(u) = t * Q(t), t = 1 / (1 + u / K), u >= A
K = 2.0
UMAX = 13.5
def g(u): return Phi(-u) * mp.exp(u * u / 2)
def fit_tail(deg):
    n = 600
    t0, t1 = 1 / (1 + UMAX / K), 1 / (1 + A / K)
    ts = [(t0 + t1) / 2 + (t1 - t0) / 2 * mp.cos(mp.pi * (k + 0.5) / n) for k in range(n)]
    us = [K * (1 / t - 1) for t in ts]
    M = np.array([[float(t**(i + 1)) for i in range(deg + 1)] for t in ts])
    y = np.array([float(g(u)) for u in us])
    w = 1 / y
    c, *_ = np.linalg.lstsq(M * w[:, None], y * w, rcond=None)
    return [f32(v) for v in c]
def horner(c, z):
    p = c[-1]
    for v in reversed(c[:-1]): p = f32(p * z + v)
    return p
if __name__ == "__main__":
    dc, dt = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (5, 9)
    core, tail = fit_core(dc), fit_tail(dt)
    print("core", [hex(np.float32(v).view(np.uint32)) for v in core], core)
    print("tail", [hex(np.float32(v).view(np.uint32)) for v in tail], tail)
    
    # relative error of Phi's pieces in double evaluation of float coefficients
    worst_c = max(abs(float((0.5 + float(x) * float(np.polyval(core[::-1], float(x)**2))) / Phi(x) - 1)) for x in np.linspace(-A, A, 3001))
    worst_t = 0
    for u in np.linspace(A, UMAX, 4001):
        t = 1 / (1 + u / K)
        gg = t * np.polyval(tail[::-1], t)
        worst_t = max(worst_t, abs(float(gg / g(u) - 1)))
    print("core rel err (exact arith)", worst_c, "tail", worst_t)
