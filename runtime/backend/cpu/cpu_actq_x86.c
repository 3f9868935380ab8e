/* The FP8 W8A8 activation quantizer on AVX2 (contract: fp4rt_fp8_act_quantize_simd
 * in cpu_ops.h): out[i] = fp4rt_round_e4m3(x[i] / input_scale), the scalar
 * fp4rt_fp8_act_quantize's bits, 8 at a time. The scalar one calls frexpf and
 * nearbyintf per value (~16 cycles): on a decode step that ran on the calling
 * thread, before the linear's threads start, ~0.5 ms per step of the
 * nvidia-mixed 0.8B.
 *
 * Per lane, a = |x / input_scale| (the IEEE quotient, as the scalar's):
 *   a < 2^-6 (E4M3 subnormals, unit 2^-9): nearbyint(a * 512) / 512, both
 *     scalings exact, the rounding to nearest even as nearbyintf's;
 *   else the float's mantissa rounded to 3 bits, to nearest even, by the
 *     integer add of 0x7ffff + bit 20 and a mask (a carry steps the exponent,
 *     as the scalar's m == 8 case does);
 *   a > 448 (infinity too): 448 (saturation); NaN stays NaN (the scalar's code
 *   0x7f reads NaN); the sign is x's (-0 gives -0). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/numfmt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))

TARGET static __m256 round_e4m3x8(__m256 q) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a = _mm256_and_ps(q, absmask);
    __m256i b = _mm256_castps_si256(a);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 20), _mm256_set1_epi32(1));
    b = _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7ffff), odd));
    __m256 rn = _mm256_castsi256_ps(_mm256_and_si256(b, _mm256_set1_epi32((int)0xfff00000u)));
    __m256 rs = _mm256_mul_ps(_mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(512.0f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                              _mm256_set1_ps(1.0f / 512.0f));
    __m256 r = _mm256_blendv_ps(rn, rs, _mm256_cmp_ps(a, _mm256_set1_ps(1.0f / 64.0f), _CMP_LT_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(448.0f), _mm256_cmp_ps(a, _mm256_set1_ps(448.0f), _CMP_GT_OQ));
    r = _mm256_blendv_ps(r, q, _mm256_cmp_ps(q, q, _CMP_UNORD_Q)); /* NaN */
    return _mm256_or_ps(r, _mm256_andnot_ps(absmask, q));
}

TARGET static void quantize_avx2(const float *x, int k, float input_scale, float *out) {
    __m256 s = _mm256_set1_ps(input_scale);
    int i = 0;
    for (; i + 8 <= k; i += 8) _mm256_storeu_ps(out + i, round_e4m3x8(_mm256_div_ps(_mm256_loadu_ps(x + i), s)));
    for (; i < k; i++) out[i] = fp4rt_round_e4m3(x[i] / input_scale);
}

int fp4rt_fp8_act_quantize_simd(const float *x, int k, float input_scale, float *out) {
    if (fp4rt_cpu_isa_supported() < FP4RT_CPU_ISA_AVX2) return 0;
    quantize_avx2(x, k, input_scale, out);
    return 1;
}

#else
int fp4rt_fp8_act_quantize_simd(const float *x, int k, float input_scale, float *out) {
    (void)x, (void)k, (void)input_scale, (void)out;
    return 0;
}
#endif
