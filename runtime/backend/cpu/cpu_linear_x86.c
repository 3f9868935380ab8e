/* AVX2 row-dot kernels for the one-token (decode) linear path on x86-64, the
 * row decoders of the tiled prefill path, and the CPU's instruction-set check.
 *
 * Each computes exactly what the portable row_dot in cpu_linear.c computes —
 * the same decoded weights (exact in FP32), the same products, the same 16
 * accumulation lanes and the same final reduction — so results are bit-identical
 * whichever path runs (checked in tests/backend/test_cpu_ops.c). Only the decoding is
 * vectorized:
 *   NVFP4: nibbles -> pshufb over the doubled E2M1 table {0,1,2,3,4,6,8,12,-0..-12}
 *          -> int32 -> float, times half the block scale (exact);
 *   FP8:   E4M3 bits -> F16 bits (sign << 8 | magnitude << 7, i.e. value * 2^-8,
 *          exact including subnormals; the NaN codes F16 NaN) -> F32
 *          (vcvtph2ps) -> * 256;
 *   BF16:  16-bit shift.
 * Each dot is compiled once per numerics mode (relaxed a constant after
 * inlining): exact, a multiply and an add, as the portable C's
 * acc + w * x; relaxed, one vfmadd, as its fmaf (FP4RT_CPU_CHAIN). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/numfmt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,f16c,fma")))
#define INLINE static inline __attribute__((always_inline))

/* One chain step of 8 chains in the mode: acc + w * x, or fma(w, x, acc). */
TARGET INLINE __m256 chain8(__m256 acc, __m256 w, __m256 x, int relaxed) {
    return relaxed ? _mm256_fmadd_ps(w, x, acc) : _mm256_add_ps(acc, _mm256_mul_ps(w, x));
}

TARGET static float reduce(__m256 a0, __m256 a1) {
    float acc[16];
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    float a[8];
    for (int j = 0; j < 8; j++) a[j] = acc[j] + acc[j + 8];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

TARGET INLINE float dot_nvfp4(const uint8_t *r, const uint8_t *sb, const float *x, int K, int relaxed) {
    const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(r + k / 2));
        __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
        __m128i v = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(lo, hi)); /* 16 doubled values */
        __m256 half = _mm256_set1_ps(0.5f * fp4rt_e4m3_table[sb[k / 16]]);
        __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), half);
        __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), half);
        a0 = chain8(a0, w0, _mm256_loadu_ps(x + k), relaxed);
        a1 = chain8(a1, w1, _mm256_loadu_ps(x + k + 8), relaxed);
    }
    return reduce(a0, a1);
}

/* 8 E4M3 codes -> FP32, exact: sign-extended and shifted left 7, without bit
 * 14, the code is the F16 of value * 2^-8; the NaN codes (magnitude 0x7f,
 * else +-480) get the F16 exponent 0x1f, so they read NaN as in the table. */
TARGET static __m256 e4m3x8(const uint8_t *p) {
    __m128i h = _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)), 7);
    h = _mm_and_si128(h, _mm_set1_epi16((short)0xbf80));
    __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x3f80));
    __m128i nan = _mm_and_si128(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x3f80)), _mm_set1_epi16(0x7c00));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_or_si128(h, nan)), _mm256_set1_ps(256.0f));
}

TARGET INLINE float dot_fp8(const uint8_t *r, const float *x, int K, int relaxed) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        a0 = chain8(a0, e4m3x8(r + k), _mm256_loadu_ps(x + k), relaxed);
        a1 = chain8(a1, e4m3x8(r + k + 8), _mm256_loadu_ps(x + k + 8), relaxed);
    }
    return reduce(a0, a1);
}

TARGET static __m256 bf16x8(const unsigned char *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

TARGET INLINE float dot_bf16(const unsigned char *r, const float *x, int K, int relaxed) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        a0 = chain8(a0, bf16x8(r + 2 * (size_t)k), _mm256_loadu_ps(x + k), relaxed);
        a1 = chain8(a1, bf16x8(r + 2 * (size_t)k + 16), _mm256_loadu_ps(x + k + 8), relaxed);
    }
    return reduce(a0, a1);
}

/* The dots once per mode. */
TARGET static float dot_nvfp4_exact(const uint8_t *r, const uint8_t *sb, const float *x, int K) {
    return dot_nvfp4(r, sb, x, K, 0);
}
TARGET static float dot_nvfp4_fma(const uint8_t *r, const uint8_t *sb, const float *x, int K) {
    return dot_nvfp4(r, sb, x, K, 1);
}
TARGET static float dot_fp8_exact(const uint8_t *r, const float *x, int K) { return dot_fp8(r, x, K, 0); }
TARGET static float dot_fp8_fma(const uint8_t *r, const float *x, int K) { return dot_fp8(r, x, K, 1); }
TARGET static float dot_bf16_exact(const unsigned char *r, const float *x, int K) { return dot_bf16(r, x, K, 0); }
TARGET static float dot_bf16_fma(const unsigned char *r, const float *x, int K) { return dot_bf16(r, x, K, 1); }

/* Row decoders for the tiled prefill path: the same per-16 decoding as the
 * dot kernels above, stored as FP32. */
TARGET static void decode_nvfp4(const uint8_t *r, const uint8_t *sb, float *w, int K) {
    const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    for (int k = 0; k < K; k += 16) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(r + k / 2));
        __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
        __m128i v = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(lo, hi));
        __m256 half = _mm256_set1_ps(0.5f * fp4rt_e4m3_table[sb[k / 16]]);
        _mm256_storeu_ps(w + k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), half));
        _mm256_storeu_ps(w + k + 8,
                         _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), half));
    }
}

TARGET static void decode_fp8(const uint8_t *r, float *w, int K) {
    for (int k = 0; k < K; k += 8) _mm256_storeu_ps(w + k, e4m3x8(r + k));
}

TARGET static void decode_bf16(const unsigned char *r, float *w, int K) {
    for (int k = 0; k < K; k += 8) _mm256_storeu_ps(w + k, bf16x8(r + 2 * (size_t)k));
}

int fp4rt_cpu_decode_row_simd(const fp4rt_linear *l, int n, float *w) {
    int K = l->n_in;
    if (K % 16 || !fp4rt_cpu_simd_available()) return 0;
    switch (l->fmt) {
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4:
        decode_nvfp4((const uint8_t *)l->weight + (size_t)n * (K / 2), l->block_scale + (size_t)n * (K / 16), w, K);
        return 1;
    case FP4RT_W_FP8: decode_fp8((const uint8_t *)l->weight + (size_t)n * K, w, K); return 1;
    case FP4RT_W_BF16: decode_bf16((const unsigned char *)l->weight + (size_t)n * K * 2, w, K); return 1;
    default: return 0;
    }
}

int fp4rt_cpu_isa_supported(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init(); /* "avx512f" also checks that the OS saves the ZMM state */
        cached = !fp4rt_cpu_simd_available()           ? FP4RT_CPU_ISA_C
                 : __builtin_cpu_supports("avx512f") ? FP4RT_CPU_ISA_AVX512
                                                     : FP4RT_CPU_ISA_AVX2;
    }
    return cached;
}

int fp4rt_cpu_simd_available(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        __builtin_cpu_init(); /* "avx2" also checks that the OS saves the AVX state */
        int f16c_fma = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && (c & bit_FMA);
        cached = __builtin_cpu_supports("avx2") && f16c_fma;
    }
    return cached;
}

int fp4rt_cpu_row_dot_simd(const fp4rt_linear *l, int n, const float *x, int relaxed, float *out) {
    int K = l->n_in;
    if (K % 16 || !fp4rt_cpu_simd_available()) return 0;
    switch (l->fmt) {
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4: {
        const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * (K / 2), *sb = l->block_scale + (size_t)n * (K / 16);
        *out = relaxed ? dot_nvfp4_fma(r, sb, x, K) : dot_nvfp4_exact(r, sb, x, K);
        return 1;
    }
    case FP4RT_W_FP8: {
        const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * K;
        *out = relaxed ? dot_fp8_fma(r, x, K) : dot_fp8_exact(r, x, K);
        return 1;
    }
    case FP4RT_W_BF16: {
        const unsigned char *r = (const unsigned char *)l->weight + (size_t)n * K * 2;
        *out = relaxed ? dot_bf16_fma(r, x, K) : dot_bf16_exact(r, x, K);
        return 1;
    }
    default:
        return 0;
    }
}

#else
int fp4rt_cpu_simd_available(void) { return 0; }
int fp4rt_cpu_isa_supported(void) { return FP4RT_CPU_ISA_C; }
int fp4rt_cpu_decode_row_simd(const fp4rt_linear *l, int n, float *w) {
    (void)l, (void)n, (void)w;
    return 0;
}
int fp4rt_cpu_row_dot_simd(const fp4rt_linear *l, int n, const float *x, int relaxed, float *out) {
    (void)l, (void)n, (void)x, (void)relaxed, (void)out;
    return 0;
}
#endif
