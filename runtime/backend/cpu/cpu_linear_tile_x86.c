/* x86-64 tile kernels of the prefill linear (contract: fp4rt_cpu_tile_fn in
 * cpu_ops.h). The 16 chains of one output are one ZMM register (AVX-512) or
 * two YMM registers (AVX2), lane j holding chain j, so a vector multiply then a
 * vector add (exact mode) or one vector FMA (relaxed mode) performs, lane by
 * lane, exactly the scalar steps FP4RT_CPU_CHAIN(acc[j], w[k + j], x[k + j])
 * of the one-row kernel. Each kernel is compiled once per mode.
 *   AVX-512: 4 rows x up to 6 tokens = 24 accumulators, 4 weight vectors and
 *            one activation vector in the 32 ZMM registers.
 *   AVX2:    4 rows x 1 token = 8 accumulators (16 YMM registers), the
 *            weights as memory operands; measured 25-30% less CPU time than
 *            2 rows x 2 tokens (bench/cpu_linear_bench, FP4RT_CPU_ISA=avx2). */
#include "runtime/backend/cpu/cpu_ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

#define T512 __attribute__((target("avx512f")))
#define TMAX512 6

/* One chain step of 16 chains in the mode: acc + w * x, or fma(w, x, acc). */
T512 INLINE __m512 chain16(__m512 acc, __m512 w, __m512 x, int relaxed) {
    return relaxed ? _mm512_fmadd_ps(w, x, acc) : _mm512_add_ps(acc, _mm512_mul_ps(w, x));
}

/* One call for T tokens; T is a constant after inlining, so the loops over
 * tokens unroll and the accumulators stay in registers. */
T512 INLINE void k512(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc, int cont,
                      int relaxed) {
    const float *w0 = w, *w1 = w + (size_t)K, *w2 = w + 2 * (size_t)K, *w3 = w + 3 * (size_t)K;
    __m512 a0[TMAX512], a1[TMAX512], a2[TMAX512], a3[TMAX512];
    for (int t = 0; t < T; t++) {
        if (cont) {
            a0[t] = _mm512_loadu_ps(acc + (0 * T + t) * 16);
            a1[t] = _mm512_loadu_ps(acc + (1 * T + t) * 16);
            a2[t] = _mm512_loadu_ps(acc + (2 * T + t) * 16);
            a3[t] = _mm512_loadu_ps(acc + (3 * T + t) * 16);
        } else {
            a0[t] = a1[t] = a2[t] = a3[t] = _mm512_setzero_ps();
        }
    }
    for (int k = k0; k < k1; k += 16) {
        __m512 v0 = _mm512_loadu_ps(w0 + k), v1 = _mm512_loadu_ps(w1 + k);
        __m512 v2 = _mm512_loadu_ps(w2 + k), v3 = _mm512_loadu_ps(w3 + k);
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_loadu_ps(x[t] + k);
            a0[t] = chain16(a0[t], v0, xv, relaxed);
            a1[t] = chain16(a1[t], v1, xv, relaxed);
            a2[t] = chain16(a2[t], v2, xv, relaxed);
            a3[t] = chain16(a3[t], v3, xv, relaxed);
        }
    }
    for (int t = 0; t < T; t++) {
        _mm512_storeu_ps(acc + (0 * T + t) * 16, a0[t]);
        _mm512_storeu_ps(acc + (1 * T + t) * 16, a1[t]);
        _mm512_storeu_ps(acc + (2 * T + t) * 16, a2[t]);
        _mm512_storeu_ps(acc + (3 * T + t) * 16, a3[t]);
    }
}

T512 INLINE void tile512(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc, int cont,
                         int relaxed) {
    switch (T) {
    case 1: k512(w, K, k0, k1, x, 1, acc, cont, relaxed); break;
    case 2: k512(w, K, k0, k1, x, 2, acc, cont, relaxed); break;
    case 3: k512(w, K, k0, k1, x, 3, acc, cont, relaxed); break;
    case 4: k512(w, K, k0, k1, x, 4, acc, cont, relaxed); break;
    case 5: k512(w, K, k0, k1, x, 5, acc, cont, relaxed); break;
    default: k512(w, K, k0, k1, x, 6, acc, cont, relaxed); break;
    }
}
T512 static void tile512_exact(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc,
                               int cont) {
    tile512(w, K, k0, k1, x, T, acc, cont, 0);
}
T512 static void tile512_fma(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc,
                             int cont) {
    tile512(w, K, k0, k1, x, T, acc, cont, 1);
}

#define T256 __attribute__((target("avx2,fma")))
#define TMAX256 4

/* One chain step of 8 chains in the mode: acc + w * x, or fma(w, x, acc). */
T256 INLINE __m256 chain8(__m256 acc, __m256 w, __m256 x, int relaxed) {
    return relaxed ? _mm256_fmadd_ps(w, x, acc) : _mm256_add_ps(acc, _mm256_mul_ps(w, x));
}

/* The 4 rows against token t: 8 accumulators, each activation vector loaded
 * once for the 4 rows, the weights as memory operands. */
T256 INLINE void k256(const float *w, int K, int k0, int k1, const float *const *x, int T, int t, float *acc,
                      int cont, int relaxed) {
    __m256 a[FP4RT_TILE_ROWS][2];
    for (int r = 0; r < FP4RT_TILE_ROWS; r++)
        for (int h = 0; h < 2; h++)
            a[r][h] = cont ? _mm256_loadu_ps(acc + (r * T + t) * 16 + 8 * h) : _mm256_setzero_ps();
    const float *xt = x[t];
    for (int k = k0; k < k1; k += 16) {
        __m256 x0 = _mm256_loadu_ps(xt + k), x1 = _mm256_loadu_ps(xt + k + 8);
        for (int r = 0; r < FP4RT_TILE_ROWS; r++) {
            const float *wr = w + (size_t)r * K + k;
            a[r][0] = chain8(a[r][0], _mm256_loadu_ps(wr), x0, relaxed);
            a[r][1] = chain8(a[r][1], _mm256_loadu_ps(wr + 8), x1, relaxed);
        }
    }
    for (int r = 0; r < FP4RT_TILE_ROWS; r++)
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(acc + (r * T + t) * 16 + 8 * h, a[r][h]);
}

T256 static void tile256_exact(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc,
                               int cont) {
    for (int t = 0; t < T; t++) k256(w, K, k0, k1, x, T, t, acc, cont, 0);
}
T256 static void tile256_fma(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc,
                             int cont) {
    for (int t = 0; t < T; t++) k256(w, K, k0, k1, x, T, t, acc, cont, 1);
}

/* reduce16 of 8 chains in a (a[j] = c[j] + c[j + 8] done) in registers:
 * b[j] = a[j] + a[j + 4], then (b0 + b1) + (b2 + b3), the contract's pairs. */
T256 INLINE float reduce8(__m256 a) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 d = _mm_add_ps(b, _mm_shuffle_ps(b, b, _MM_SHUFFLE(2, 3, 0, 1))); /* d0 = b0 + b1, d2 = b2 + b3 */
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehl_ps(d, d)));
}

/* fp4rt_cpu_reduce_fn on AVX2 (the first step as two YMM halves) and AVX-512. */
T256 static void reduce256(const float *chains, int n, float *sums) {
    for (int i = 0; i < n; i++)
        sums[i] = reduce8(_mm256_add_ps(_mm256_loadu_ps(chains + 16 * i), _mm256_loadu_ps(chains + 16 * i + 8)));
}

__attribute__((target("avx512f,avx2,fma"))) static void reduce512(const float *chains, int n, float *sums) {
    for (int i = 0; i < n; i++) {
        __m512 c = _mm512_loadu_ps(chains + 16 * i);
        sums[i] = reduce8(
            _mm256_add_ps(_mm512_castps512_ps256(c), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1))));
    }
}

fp4rt_cpu_tile_kernel fp4rt_cpu_tile_kernel_x86(int isa, int relaxed) {
    int have = fp4rt_cpu_isa_supported();
    if (isa == FP4RT_CPU_ISA_AVX512 && have >= FP4RT_CPU_ISA_AVX512)
        return (fp4rt_cpu_tile_kernel){relaxed ? tile512_fma : tile512_exact, TMAX512, reduce512};
    if (isa == FP4RT_CPU_ISA_AVX2 && have >= FP4RT_CPU_ISA_AVX2)
        return (fp4rt_cpu_tile_kernel){relaxed ? tile256_fma : tile256_exact, TMAX256, reduce256};
    return (fp4rt_cpu_tile_kernel){NULL, 0, NULL};
}

#else
fp4rt_cpu_tile_kernel fp4rt_cpu_tile_kernel_x86(int isa, int relaxed) {
    (void)isa, (void)relaxed;
    return (fp4rt_cpu_tile_kernel){NULL, 0, NULL};
}
#endif
