/* The small-step linear (contract: fp4rt_cpu_linear_small in cpu_ops.h): a
 * step of 1 .. FP4RT_SMALL_TOKENS_MAX input rows (a decode step, the rows of a
 * verify step, the MTP head's drafts and feeds) with the weights decoded in
 * registers, so no FP32 panel is written and read back, and 4 weight rows x T
 * tokens of chains are in flight at once (a one-row dot is bound by the
 * latency of its 2 dependent add chains).
 *
 * AVX-512: lane j of a ZMM accumulator is chain j of the contract, so a vector
 * multiply then a vector add (never FMA) does, lane by lane, exactly the scalar
 * steps acc[j] += w[k + j] * x[k + j] of the one-row kernel; the 16 chains are
 * reduced in registers by the fixed tree of reduce16 (a[j] = c[j] + c[j + 8],
 * then ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))), then times the post
 * scale: the bits of fp4rt_cpu_row_dot (tests/backend/test_cpu_tile.c).
 * Decoding: BF16 a 16-bit shift; NVFP4 nibbles -> the doubled E2M1 table
 * (pshufb) -> int32 -> float, times half the block scale (exact), as
 * cpu_linear_x86.c does; FP8 (E4M3, W8A8: the activations are already the
 * E4M3 values x / input_scale, fp4rt_cpu_linear quantizes them) through F16
 * bits (e4m3x16), the NaN codes to NaN. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/numfmt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx2")))
#define INLINE static inline __attribute__((always_inline))
/* Software prefetch of the weights PF panels ahead: without it a step of 4
 * rows streamed its weights from L3 at ~40% of a 1-row step's rate (the
 * hardware prefetcher loses the 4 interleaved row streams); measured on the
 * 32768 x 256 BF16 bench shape, 1 thread: 1 row 0.80 -> 0.62 ms, 4 rows
 * 1.9-2.9 -> 1.0-1.1 ms (PF 1, 2, 4, 8 alike). */
#define PF 2

/* reduce16 of the chains in lanes 0 .. 15, in registers, same pairs and order. */
T512 INLINE float reduce512(__m512 c) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(c), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)); /* b[j] = a[j] + a[j + 4] */
    __m128 d = _mm_add_ps(b, _mm_shuffle_ps(b, b, _MM_SHUFFLE(2, 3, 0, 1)));      /* d0 = b0 + b1, d2 = b2 + b3 */
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_movehl_ps(d, d)));
}

T512 INLINE __m512 bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* 16 NVFP4 values (8 bytes of nibbles, low first) times the block scale. */
T512 INLINE __m512 nvfp4x16(const uint8_t *p, float scale) {
    const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    __m128i v = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(lo, hi)); /* 16 doubled values */
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), _mm512_set1_ps(0.5f * scale));
}

/* 16 E4M3 codes -> their FP32 values, exact. The code sign-extended to 16
 * bits and shifted left 7 holds the sign in bits 15 and 14 and the magnitude
 * in bits 13 .. 7; without bit 14 that is the F16 of value * 2^-8 (E4M3
 * subnormals are F16 subnormals), converted by vcvtph2ps, then times 256. The
 * NaN codes (magnitude 0x7f, which would read +-480) get the F16 exponent
 * 0x1f: F16 NaN, FP32 NaN, so a NaN weight makes the outputs NaN as the
 * table's NaN does on the one-row path. */
T512 INLINE __m512 e4m3x16(const uint8_t *p) {
    __m256i h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)), 7);
    h = _mm256_and_si256(h, _mm256_set1_epi16((short)0xbf80));
    __m256i mag = _mm256_and_si256(h, _mm256_set1_epi16(0x3f80));
    __m256i nan = _mm256_and_si256(_mm256_cmpeq_epi16(mag, _mm256_set1_epi16(0x3f80)), _mm256_set1_epi16(0x7c00));
    return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_or_si256(h, nan)), _mm512_set1_ps(256.0f));
}

/* Rows n0 .. n0 + R - 1 (R <= 4; missing rows repeat row n0, results dropped)
 * against T tokens; T and the format are constants after inlining. */
T512 INLINE void small512(const cpu_lin_job *j, int n0, int R, int T, int fmt) {
    const fp4rt_linear *l = j->l;
    size_t K = (size_t)l->n_in;
    size_t rn[4];
    for (int r = 0; r < 4; r++) rn[r] = (size_t)n0 + (size_t)(r < R ? r : 0);
    const uint16_t *wb[4] = {0};
    const uint8_t *wq[4] = {0}, *sb[4] = {0};
    for (int r = 0; r < 4; r++) {
        if (fmt == FP4RT_W_BF16) {
            wb[r] = (const uint16_t *)l->weight + rn[r] * K;
        } else if (fmt == FP4RT_W_FP8) {
            wq[r] = (const uint8_t *)l->weight + rn[r] * K;
        } else {
            wq[r] = (const uint8_t *)l->weight + rn[r] * (K / 2);
            sb[r] = l->block_scale + rn[r] * (K / 16);
        }
    }
    const float *x[FP4RT_SMALL_TOKENS_MAX];
    for (int t = 0; t < T; t++) x[t] = j->x + (size_t)t * j->x_stride;
    __m512 a0[FP4RT_SMALL_TOKENS_MAX], a1[FP4RT_SMALL_TOKENS_MAX], a2[FP4RT_SMALL_TOKENS_MAX],
        a3[FP4RT_SMALL_TOKENS_MAX];
    for (int t = 0; t < T; t++) a0[t] = a1[t] = a2[t] = a3[t] = _mm512_setzero_ps();
    for (size_t k = 0; k < K; k += 16) {
        __m512 v0, v1, v2, v3;
        if (fmt == FP4RT_W_BF16) {
            if (!(k & 31)) /* the panel PF panels ahead, one line per row per 32 weights */
                for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(wb[r] + k + PF * 4 * K), _MM_HINT_T0);
            v0 = bf16x16(wb[0] + k), v1 = bf16x16(wb[1] + k), v2 = bf16x16(wb[2] + k), v3 = bf16x16(wb[3] + k);
        } else if (fmt == FP4RT_W_FP8) {
            if (!(k & 63)) /* one line per row per 64 weights */
                for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(wq[r] + k + PF * 4 * K), _MM_HINT_T0);
            v0 = e4m3x16(wq[0] + k), v1 = e4m3x16(wq[1] + k), v2 = e4m3x16(wq[2] + k), v3 = e4m3x16(wq[3] + k);
        } else {
            if (!(k & 127)) /* one line per row per 128 weights */
                for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(wq[r] + k / 2 + PF * 2 * K), _MM_HINT_T0);
            v0 = nvfp4x16(wq[0] + k / 2, fp4rt_e4m3_table[sb[0][k / 16]]);
            v1 = nvfp4x16(wq[1] + k / 2, fp4rt_e4m3_table[sb[1][k / 16]]);
            v2 = nvfp4x16(wq[2] + k / 2, fp4rt_e4m3_table[sb[2][k / 16]]);
            v3 = nvfp4x16(wq[3] + k / 2, fp4rt_e4m3_table[sb[3][k / 16]]);
        }
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_loadu_ps(x[t] + k);
            a0[t] = _mm512_add_ps(a0[t], _mm512_mul_ps(v0, xv));
            a1[t] = _mm512_add_ps(a1[t], _mm512_mul_ps(v1, xv));
            a2[t] = _mm512_add_ps(a2[t], _mm512_mul_ps(v2, xv));
            a3[t] = _mm512_add_ps(a3[t], _mm512_mul_ps(v3, xv));
        }
    }
    for (int t = 0; t < T; t++) {
        float post = j->row_post ? j->row_post[t] : j->post;
        float *y = j->y + (size_t)t * j->y_stride + n0;
        float s[4] = {reduce512(a0[t]), reduce512(a1[t]), reduce512(a2[t]), reduce512(a3[t])};
        for (int r = 0; r < R; r++) y[r] = s[r] * post;
    }
}

#define SMALL_CASES(FMT)                                                                                               \
    switch (T) {                                                                                                       \
    case 1: small512(j, n0, R, 1, FMT); break;                                                                         \
    case 2: small512(j, n0, R, 2, FMT); break;                                                                         \
    case 3: small512(j, n0, R, 3, FMT); break;                                                                         \
    case 4: small512(j, n0, R, 4, FMT); break;                                                                         \
    case 5: small512(j, n0, R, 5, FMT); break;                                                                         \
    default: small512(j, n0, R, 6, FMT); break;                                                                        \
    }

T512 static void panels512(const cpu_lin_job *j, long p0, long p1) {
    int T = j->n_rows, n_out = j->n_out, fmt = j->l->fmt;
    for (long p = p0; p < p1; p++) {
        int n0 = (int)p * 4, R = n_out - n0 < 4 ? n_out - n0 : 4;
        if (fmt == FP4RT_W_BF16) {
            SMALL_CASES(FP4RT_W_BF16)
        } else if (fmt == FP4RT_W_FP8) {
            SMALL_CASES(FP4RT_W_FP8)
        } else {
            SMALL_CASES(FP4RT_W_NVFP4)
        }
    }
}

int fp4rt_cpu_linear_small_ok(const fp4rt_linear *l, int isa, int n_rows) {
    int fmt_ok = l->fmt == FP4RT_W_BF16 || l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4 ||
                 l->fmt == FP4RT_W_NVFP4_W4A4;
    return fmt_ok && l->n_in % 16 == 0 && n_rows >= 1 && n_rows <= FP4RT_SMALL_TOKENS_MAX &&
           isa >= FP4RT_CPU_ISA_AVX512 && fp4rt_cpu_isa_supported() >= FP4RT_CPU_ISA_AVX512;
}

void fp4rt_cpu_linear_small(const cpu_lin_job *j, long p0, long p1) { panels512(j, p0, p1); }

#else
int fp4rt_cpu_linear_small_ok(const fp4rt_linear *l, int isa, int n_rows) {
    (void)l, (void)isa, (void)n_rows;
    return 0;
}
void fp4rt_cpu_linear_small(const cpu_lin_job *j, long p0, long p1) { (void)j, (void)p0, (void)p1; }
#endif
