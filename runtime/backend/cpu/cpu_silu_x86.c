/* SwiGLU rows and canonical exp rows on AVX2 (contracts: fp4rt_cpu_swiglu_row_simd,
 * fp4rt_cpu_cexp_row_simd in cpu_ops.h): 8
 * lanes of exactly the scalar fp4rt_csilu(x) * z of canon_math.h, operation
 * for operation, so each output has the scalar's bits (NaN payloads aside):
 *   e = cexp(-x): k = rint(-x * LOG2E) (round to nearest even, as rintf in the
 *   default mode); r = (-x - k LN2_HI) - k LN2_LO; the Horner steps, each a
 *   multiply then an add (AVX2 without FMA); times 2^k built in the exponent
 *   field (k = 128: times 2^127, then times 2); then the early returns of the
 *   scalar as blends: NaN stays NaN, +inf above EXP_MAX, 0 below -87;
 *   silu = x / (1 + e); times z.
 * The scalar loop was 0.27 ms of a 4-row verify step's 2.7 ms (1 thread). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/canon_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))

TARGET static inline __m256 cm(uint32_t bits) { return _mm256_castsi256_ps(_mm256_set1_epi32((int)bits)); }

TARGET static inline __m256 cexp8(__m256 x) {
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, cm(FP4RT_CM_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(k, cm(FP4RT_CM_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(k, cm(FP4RT_CM_LN2_LO)));
    __m256 p = cm(FP4RT_CM_C7);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), cm(FP4RT_CM_C6));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), cm(FP4RT_CM_C5));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), cm(FP4RT_CM_C4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), cm(FP4RT_CM_C3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    __m256i ki = _mm256_cvttps_epi32(k);
    __m256i big = _mm256_cmpgt_epi32(ki, _mm256_set1_epi32(127)); /* k = 128 */
    __m256 two_k = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    two_k = _mm256_blendv_ps(two_k, cm(254u << 23), _mm256_castsi256_ps(big));
    __m256 e = _mm256_mul_ps(p, two_k);
    e = _mm256_blendv_ps(e, _mm256_mul_ps(e, _mm256_set1_ps(2.0f)), _mm256_castsi256_ps(big));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, cm(FP4RT_CM_EXP_MAX), _CMP_GT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

TARGET static void swiglu_avx2(const float *x, const float *z, float *y, int n) {
    int i = 0;
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 e = cexp8(_mm256_xor_ps(xv, sign));
        __m256 s = _mm256_div_ps(xv, _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(z + i)));
    }
    for (; i < n; i++) y[i] = fp4rt_csilu(x[i]) * z[i];
}

int fp4rt_cpu_swiglu_row_simd(const float *x, const float *z, float *y, int n) {
    if (!fp4rt_cpu_simd_available()) return 0;
    swiglu_avx2(x, z, y, n);
    return 1;
}

TARGET static void cexp_avx2(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, cexp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = fp4rt_cexp(x[i]);
}

int fp4rt_cpu_cexp_row_simd(const float *x, float *y, int n) {
    if (!fp4rt_cpu_simd_available()) return 0;
    cexp_avx2(x, y, n);
    return 1;
}

#else
int fp4rt_cpu_swiglu_row_simd(const float *x, const float *z, float *y, int n) {
    (void)x, (void)z, (void)y, (void)n;
    return 0;
}

int fp4rt_cpu_cexp_row_simd(const float *x, float *y, int n) {
    (void)x, (void)y, (void)n;
    return 0;
}
#endif
