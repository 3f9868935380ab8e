/* The numerics contract's exp, log and sums (why and where: docs/NUMERICS.md,
 * rules 2 and 3): IEEE single-precision +, -, *, / and exact power-of-two
 * scaling only, the same operation sequence and constant bits as
 * shaders/canon.glsl, so they give the same bits on every correctly rounded
 * fp32 device. Accuracy: a few ulp (tests/base/test_canon_math.c).
 *
 * Must be compiled without FP contraction (-ffp-contract=off; nvcc
 * --fmad=false, see cuda/cu_canon.cuh). Under nvcc every function is
 * __host__ __device__. */
#ifndef FP4RT_CANON_MATH_H
#define FP4RT_CANON_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define FP4RT_CM_FN static inline __host__ __device__
#else
#define FP4RT_CM_FN static inline
#endif

FP4RT_CM_FN float fp4rt_canon_bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* The constants as float bits, shared verbatim with shaders/canon.glsl. */
#define FP4RT_CM_LN2_HI 0x3f317200u /* 0.693145752: ln 2 to 16 bits, k * LN2_HI exact */
#define FP4RT_CM_LN2_LO 0x35bfbe8eu /* 1.42860677e-6: ln 2 - LN2_HI */
#define FP4RT_CM_LOG2E 0x3fb8aa3bu  /* 1.44269502 */
#define FP4RT_CM_EXP_MAX 0x42b17217u /* 88.7228317: above, +inf */
#define FP4RT_CM_C7 0x39500d01u /* 1 / 7! */
#define FP4RT_CM_C6 0x3ab60b61u /* 1 / 6! */
#define FP4RT_CM_C5 0x3c088889u /* 1 / 5! */
#define FP4RT_CM_C4 0x3d2aaaabu /* 1 / 4! */
#define FP4RT_CM_C3 0x3e2aaaabu /* 1 / 3! */
#define FP4RT_CM_SQRT_HALF 0x3f3504f3u
#define FP4RT_CM_L11 0x3dba2e8cu /* 1 / 11 */
#define FP4RT_CM_L9 0x3de38e39u  /* 1 / 9 */
#define FP4RT_CM_L7 0x3e124925u  /* 1 / 7 */
#define FP4RT_CM_L5 0x3e4ccccdu  /* 1 / 5 */
#define FP4RT_CM_L3 0x3eaaaaabu  /* 1 / 3 */
#define FP4RT_CM(name) fp4rt_canon_bits_float(FP4RT_CM_##name)

/* e^x. +inf above EXP_MAX; 0 below -87 (results stay normal: no subnormal
 * output a device could flush); NaN stays NaN. x = k ln2 + r (Cody-Waite,
 * ln 2 = LN2_HI + LN2_LO), |r| <= ln2 / 2, e^r by its Taylor series to r^7 / 7!
 * (truncation < 6e-9) in Horner form, times 2^k. */
FP4RT_CM_FN float fp4rt_cexp(float x) {
    if (x != x) return x;
    if (x > FP4RT_CM(EXP_MAX)) return INFINITY;
    if (x < -87.0f) return 0.0f;
    float k = rintf(x * FP4RT_CM(LOG2E)); /* nearest, ties to even: |k| <= 128 */
    float r = x - k * FP4RT_CM(LN2_HI);
    r = r - k * FP4RT_CM(LN2_LO);
    float p = FP4RT_CM(C7);
    p = p * r + FP4RT_CM(C6);
    p = p * r + FP4RT_CM(C5);
    p = p * r + FP4RT_CM(C4);
    p = p * r + FP4RT_CM(C3);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int ki = (int)k;
    if (ki > 127) return p * fp4rt_canon_bits_float(254u << 23) * 2.0f; /* 2^127 * 2 */
    return p * fp4rt_canon_bits_float((uint32_t)(ki + 127) << 23);
}

/* log(u): u = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m -
 * 1) / (m + 1), |s| < 0.172, by its series to s^11 / 11 (truncation < 2e-11);
 * log u = (log m + e LN2_LO) + e LN2_HI. log(0) = -inf, log(+inf) = +inf,
 * u < 0 or NaN: NaN. */
FP4RT_CM_FN float fp4rt_clog(float u) {
    if (!(u >= 0.0f)) return NAN;
    if (u == 0.0f) return -INFINITY;
    if (u == INFINITY) return u;
    int e;
    float m = frexpf(u, &e); /* [0.5, 1) */
    if (m < FP4RT_CM(SQRT_HALF)) {
        m = m + m;
        e -= 1;
    }
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float p = FP4RT_CM(L11);
    p = p * z + FP4RT_CM(L9);
    p = p * z + FP4RT_CM(L7);
    p = p * z + FP4RT_CM(L5);
    p = p * z + FP4RT_CM(L3);
    p = p * z;
    float lm = s * p;
    lm = lm + s;
    lm = lm + lm;
    float fe = (float)e;
    float r = lm + fe * FP4RT_CM(LN2_LO);
    return r + fe * FP4RT_CM(LN2_HI);
}

/* log(1 + y), y > -1: exact near 0 by the (u - 1) correction. */
FP4RT_CM_FN float fp4rt_clog1p(float y) {
    float u = 1.0f + y;
    if (u == 1.0f) return y;
    return fp4rt_clog(u) * (y / (u - 1.0f));
}

FP4RT_CM_FN float fp4rt_csigmoid(float x) { return 1.0f / (1.0f + fp4rt_cexp(-x)); }
FP4RT_CM_FN float fp4rt_csilu(float x) { return x / (1.0f + fp4rt_cexp(-x)); }
/* torch.nn.functional.softplus with threshold 20. */
FP4RT_CM_FN float fp4rt_csoftplus(float x) { return x > 20.0f ? x : fp4rt_clog1p(fp4rt_cexp(x)); }

/* Sum of squares of x[0, n) in the contract's order: chain j sums x_i^2 for i =
 * j, j + 16, ... in order (fp4rt_csumsq_chain, j in 0 .. 15); then ((a0 + a4) +
 * (a1 + a5)) + ((a2 + a6) + (a3 + a7)) with a_j = chain j + chain j + 8 (the
 * linear kernels' final tree, fp4rt_csumsq_tree). A device may run the 16
 * chains in 16 threads and the tree in one. */
FP4RT_CM_FN float fp4rt_csumsq_chain(const float *x, int n, int j) {
    float c = 0;
    for (int i = j; i < n; i += 16) c = c + x[i] * x[i];
    return c;
}

FP4RT_CM_FN float fp4rt_csumsq_tree(const float *c /* [16] */) {
    float a[8];
    for (int j = 0; j < 8; j++) a[j] = c[j] + c[j + 8];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* The same sum in one pass (the chains interleaved). */
FP4RT_CM_FN float fp4rt_csumsq(const float *x, int n) {
    float c[16] = {0};
    for (int i = 0; i < n; i++) {
        float p = x[i] * x[i];
        c[i & 15] = c[i & 15] + p;
    }
    return fp4rt_csumsq_tree(c);
}

/* Sum of x[0, n) in the contract's order (fp4rt_csumsq's chains and tree, of
 * x_i instead of x_i^2), and the sum of (x_i - m)^2 in the same order. */
FP4RT_CM_FN float fp4rt_csum(const float *x, int n) {
    float c[16] = {0};
    for (int i = 0; i < n; i++) c[i & 15] = c[i & 15] + x[i];
    return fp4rt_csumsq_tree(c);
}

FP4RT_CM_FN float fp4rt_cdevsq(const float *x, int n, float m) {
    float c[16] = {0};
    for (int i = 0; i < n; i++) {
        float d = x[i] - m;
        c[i & 15] = c[i & 15] + d * d;
    }
    return fp4rt_csumsq_tree(c);
}

/* The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 (GELU's erf form is
 * x Phi(x)), fitted for this project (tools/fit_gelu_erf.py: weighted least
 * squares on Chebyshev nodes against mpmath, coefficients rounded to float):
 *   |x| < 0.75:  Phi = 0.5 + x P(x^2), P of degree 5 (GC0 .. GC5);
 *   |x| >= 0.75: Phi(-|x|) = e^(-x^2 / 2) t Q(t), t = 1 / (1 + |x| / 2), Q of
 *                degree 9 (GT0 .. GT9); Phi(x) = 1 - Phi(-x) for x > 0;
 *   |x| > 13.5:  0 or 1 (Phi(-13.5) < 1e-41).
 * e^(-x^2 / 2) without the rounding of x^2: x = xh + xl with xh the top 12
 * significant bits of x (xh^2 exact), e^(-xh^2 / 2) e^(-xl (x + xh) / 2).
 * The fits' relative error is below 4e-8 in exact arithmetic; evaluated here
 * (float, Horner, no FMA) the error of x Phi(x) against a double reference is
 * a few ulp (tests/base/test_canon_math.c measures it). */
#define FP4RT_CM_GC0 0x3ecc422au
#define FP4RT_CM_GC1 0xbd882c1cu
#define FP4RT_CM_GC2 0x3c236806u
#define FP4RT_CM_GC3 0xba9b99bau
#define FP4RT_CM_GC4 0x38f0b4c2u
#define FP4RT_CM_GC5 0xb70cb99fu
#define FP4RT_CM_GT0 0x3e4c43bfu
#define FP4RT_CM_GT1 0x3e4c0f68u
#define FP4RT_CM_GT2 0x3e1be29cu
#define FP4RT_CM_GT3 0x3cf7325du
#define FP4RT_CM_GT4 0x3cd546a6u
#define FP4RT_CM_GT5 0xbeb2a23au
#define FP4RT_CM_GT6 0x3e9829aeu
#define FP4RT_CM_GT7 0x3d7c2a90u
#define FP4RT_CM_GT8 0xbe3dfe0du
#define FP4RT_CM_GT9 0x3d8cab8cu
#define FP4RT_CM_GELU_K 0x3fcc422au /* 2 sqrt(2 / pi) = 1.59576917 */
#define FP4RT_CM_GELU_A 0x3d372713u /* 0.044715 */

FP4RT_CM_FN float fp4rt_cnormcdf(float x) {
    if (x != x) return x;
    float ax = fabsf(x);
    if (ax < 0.75f) {
        float z = x * x;
        float p = FP4RT_CM(GC5);
        p = p * z + FP4RT_CM(GC4);
        p = p * z + FP4RT_CM(GC3);
        p = p * z + FP4RT_CM(GC2);
        p = p * z + FP4RT_CM(GC1);
        p = p * z + FP4RT_CM(GC0);
        p = x * p;
        return 0.5f + p;
    }
    if (ax > 13.5f) return x < 0.0f ? 0.0f : 1.0f;
    float t = 1.0f / (1.0f + ax * 0.5f);
    float q = FP4RT_CM(GT9);
    q = q * t + FP4RT_CM(GT8);
    q = q * t + FP4RT_CM(GT7);
    q = q * t + FP4RT_CM(GT6);
    q = q * t + FP4RT_CM(GT5);
    q = q * t + FP4RT_CM(GT4);
    q = q * t + FP4RT_CM(GT3);
    q = q * t + FP4RT_CM(GT2);
    q = q * t + FP4RT_CM(GT1);
    q = q * t + FP4RT_CM(GT0);
    q = q * t;
#if defined(__CUDA_ARCH__)
    float xh = __uint_as_float(__float_as_uint(ax) & 0xfffff000u);
#else
    uint32_t u;
    memcpy(&u, &ax, 4);
    float xh = fp4rt_canon_bits_float(u & 0xfffff000u);
#endif
    float xl = ax - xh;
    float hi = xh * xh;
    hi = hi * 0.5f;
    float lo = ax + xh;
    lo = xl * lo;
    lo = lo * 0.5f;
    float tail = fp4rt_cexp(-hi) * fp4rt_cexp(-lo);
    tail = tail * q;
    return x < 0.0f ? tail : 1.0f - tail;
}

/* GELU, erf form (torch nn.GELU()): x Phi(x). */
FP4RT_CM_FN float fp4rt_cgelu_erf(float x) { return x * fp4rt_cnormcdf(x); }

/* GELU, tanh form (gelu_pytorch_tanh): 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x +
 * 0.044715 x^3), evaluated as x / (1 + e^(-2u)) (the same function: 1 + tanh(u)
 * = 2 / (1 + e^(-2u))), which keeps its relative accuracy for large negative x. */
FP4RT_CM_FN float fp4rt_cgelu_tanh(float x) {
    float x3 = x * x;
    x3 = x3 * x;
    float in = FP4RT_CM(GELU_A) * x3;
    in = x + in;
    float v = FP4RT_CM(GELU_K) * in;
    return x / (1.0f + fp4rt_cexp(-v));
}

#endif
