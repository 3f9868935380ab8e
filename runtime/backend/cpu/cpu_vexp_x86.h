/* The numerics contract's exp and SiLU on x86 vectors (x86-64 GCC / clang only;
 * include inside the #if that guards <immintrin.h>): lanes of exactly the scalar
 * fp4rt_cexp / fp4rt_csilu of canon_math.h, operation for operation, so each
 * lane has the scalar's bits (NaN stays NaN; its payload may differ):
 *   k = rint(x * LOG2E) (round to nearest even, as rintf in the default mode);
 *   r = (x - k LN2_HI) - k LN2_LO; the Horner steps, each a multiply then an add
 *   (no FMA); times 2^k built in the exponent field (k = 128: times 2^127, then
 *   times 2); then the early returns of the scalar as blends: NaN stays NaN,
 *   +inf above EXP_MAX, 0 below -87. silu(x) = x / (1 + cexp(-x)).
 * Tested lane against scalar over the special cases in tests/backend/test_cpu_ops.c. */
#ifndef FP4RT_CPU_VEXP_X86_H
#define FP4RT_CPU_VEXP_X86_H

#include "runtime/base/canon_math.h"

#include <immintrin.h>

#define FP4RT_VX_AVX2 __attribute__((target("avx2")))
#define FP4RT_VX_AVX512 __attribute__((target("avx2,avx512f")))

FP4RT_VX_AVX2 static inline __m256 fp4rt_cm8(uint32_t bits) {
    return _mm256_castsi256_ps(_mm256_set1_epi32((int)bits));
}

FP4RT_VX_AVX2 static inline __m256 fp4rt_cexp8(__m256 x) {
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, fp4rt_cm8(FP4RT_CM_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(k, fp4rt_cm8(FP4RT_CM_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(k, fp4rt_cm8(FP4RT_CM_LN2_LO)));
    __m256 p = fp4rt_cm8(FP4RT_CM_C7);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), fp4rt_cm8(FP4RT_CM_C6));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), fp4rt_cm8(FP4RT_CM_C5));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), fp4rt_cm8(FP4RT_CM_C4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), fp4rt_cm8(FP4RT_CM_C3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    __m256i ki = _mm256_cvttps_epi32(k);
    __m256i big = _mm256_cmpgt_epi32(ki, _mm256_set1_epi32(127)); /* k = 128 */
    __m256 two_k =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    two_k = _mm256_blendv_ps(two_k, fp4rt_cm8(254u << 23), _mm256_castsi256_ps(big));
    __m256 e = _mm256_mul_ps(p, two_k);
    e = _mm256_blendv_ps(e, _mm256_mul_ps(e, _mm256_set1_ps(2.0f)), _mm256_castsi256_ps(big));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(),
                         _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY),
                         _mm256_cmp_ps(x, fp4rt_cm8(FP4RT_CM_EXP_MAX), _CMP_GT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

FP4RT_VX_AVX2 static inline __m256 fp4rt_csilu8(__m256 x) {
    __m256 e = fp4rt_cexp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

FP4RT_VX_AVX512 static inline __m512 fp4rt_cm16(uint32_t bits) {
    return _mm512_castsi512_ps(_mm512_set1_epi32((int)bits));
}

FP4RT_VX_AVX512 static inline __m512 fp4rt_cexp16(__m512 x) {
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, fp4rt_cm16(FP4RT_CM_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(k, fp4rt_cm16(FP4RT_CM_LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(k, fp4rt_cm16(FP4RT_CM_LN2_LO)));
    __m512 p = fp4rt_cm16(FP4RT_CM_C7);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), fp4rt_cm16(FP4RT_CM_C6));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), fp4rt_cm16(FP4RT_CM_C5));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), fp4rt_cm16(FP4RT_CM_C4));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), fp4rt_cm16(FP4RT_CM_C3));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    __m512i ki = _mm512_cvttps_epi32(k);
    __mmask16 big = _mm512_cmpgt_epi32_mask(ki, _mm512_set1_epi32(127)); /* k = 128 */
    __m512 two_k =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ki, _mm512_set1_epi32(127)), 23));
    two_k = _mm512_mask_blend_ps(big, two_k, fp4rt_cm16(254u << 23));
    __m512 e = _mm512_mul_ps(p, two_k);
    e = _mm512_mask_blend_ps(big, e, _mm512_mul_ps(e, _mm512_set1_ps(2.0f)));
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ), e,
                             _mm512_setzero_ps());
    e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, fp4rt_cm16(FP4RT_CM_EXP_MAX), _CMP_GT_OQ), e,
                             _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), e, x);
}

FP4RT_VX_AVX512 static inline __m512 fp4rt_csilu16(__m512 x) {
    __m512 e = fp4rt_cexp16(_mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

#endif
