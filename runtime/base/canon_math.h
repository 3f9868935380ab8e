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

#endif
