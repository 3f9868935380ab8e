/* The small-step linear (contract: fp4rt_cpu_linear_small in cpu_ops.h): a
 * step of 1 .. FP4RT_SMALL_TOKENS_MAX input rows (a decode step, the rows of a
 * verify step, the MTP head's drafts and feeds) with the weights decoded in
 * registers, so no FP32 panel is written and read back, and 4 weight rows x T
 * tokens of chains are in flight at once (a one-row dot is bound by the
 * latency of its 2 dependent add chains).
 *
 * AVX-512: lane j of a ZMM accumulator is chain j of the contract, so a vector
 * multiply then a vector add (exact mode) or one vector FMA (relaxed mode)
 * does, lane by lane, exactly the scalar steps FP4RT_CPU_CHAIN(acc[j], w[k + j],
 * x[k + j]) of the one-row kernel in the job's mode; the 16 chains are
 * reduced in registers by the fixed tree of reduce16 (a[j] = c[j] + c[j + 8],
 * then ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))), then times the post
 * scale: the bits of fp4rt_cpu_row_dot (tests/backend/test_cpu_tile.c).
 * Decoding: BF16 a 16-bit shift; NVFP4 on a CPU with AVX512-VBMI see
 * nvfp4x16_vbmi, else nibbles -> the doubled E2M1 table (pshufb) -> int32 ->
 * float, times half the block scale (exact), as cpu_linear_x86.c does; FP8
 * (E4M3 W8A8) see e4m3x16. The kernel (cpu_linear_small_x86_body.h) is
 * compiled twice: for AVX-512F with every format, and for AVX512-VBMI with
 * the NVFP4 formats (fp4rt_cpu_small_vbmi picks; BF16 and FP8 always run the
 * first). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/numfmt.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx2")))
#define T512V __attribute__((target("avx512f,avx512bw,avx512vbmi,avx2")))
#define INLINE static inline __attribute__((always_inline))
/* Software prefetch of the weights PF panels ahead: without it a step of 4
 * rows streamed its weights from L3 at ~40% of a 1-row step's rate (the
 * hardware prefetcher loses the 4 interleaved row streams); measured on the
 * 32768 x 256 BF16 bench shape, 1 thread: 1 row 0.80 -> 0.62 ms, 4 rows
 * 1.9-2.9 -> 1.0-1.1 ms (PF 1, 2, 4, 8 alike). */
#define PF 2
/* NVFP4 prefetches PF_NVFP4 panels ahead into L2 instead: one row step of its
 * decode-bound kernel reads fewer bytes, and a core's L1 fill buffers bound
 * what prefetches to L1 keep in flight; measured on 262144 x 1024, 1 token, 1
 * thread, out of cache, relaxed mode, 6 runs each on a loaded machine: ~10%
 * less CPU time per call than L1 at PF (16.9 vs 18.9 ms; no prefetch 30 ms). */
#define PF_NVFP4 16

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

/* 16 E4M3 codes -> their FP32 values / 256, exact. The code sign-extended to
 * 16 bits and shifted left 7 holds the sign in bits 15 and 14 and the
 * magnitude in bits 13 .. 7; without bit 14 that is the F16 of value * 2^-8
 * (E4M3 subnormals are F16 subnormals), converted by vcvtph2ps.
 *
 * The sums run on weights / 256 and are times 256 after the reduction: the
 * same bits as the one-row kernel's, because the activations of an FP8 linear
 * are E4M3 values too (fp4rt_cpu_linear quantizes them: 4 significant bits,
 * 2^-9 <= |x| <= 448, or 0), so every product w * x has at most 8 significant
 * bits and is exact in FP32, as is w / 256 * x, and every partial sum is a
 * multiple of 2^-26 (never subnormal, never near overflow): the scaled chains
 * round exactly as the unscaled ones, each value divided by 256. In the
 * relaxed mode each step is fma(w / 256, x, acc): the product being exact,
 * that is the exact mode's add of it, rounded once, so both modes give FP8
 * the same bits and the scaling argument holds unchanged.
 *
 * The NaN codes (magnitude 0x7f; here they read +-480 / 256) are caught per
 * row and 64 codes at a time (nan_acc): the row's outputs are NaN, as the
 * table's NaN makes them on the one-row path. */
T512 INLINE __m512 e4m3x16(const uint8_t *p) {
    __m256i h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)), 7);
    return _mm512_cvtph_ps(_mm256_and_si256(h, _mm256_set1_epi16((short)0xbf80)));
}

/* acc | (~codes & 0x7f..) - 0x01.. for the n <= 64 codes at p (n a multiple of
 * 4): a byte of (~c & 0x7f) is 0 exactly for a NaN code c, and then the
 * subtraction sets a high bit (bytes 0 .. 0x7f: only a 0 byte, or one above
 * a 0 byte's borrow, ends >= 0x80). nan_any: some high bit is set. */
T512 INLINE __m512i nan_acc(__m512i acc, const uint8_t *p, int n) {
    __mmask16 m = n >= 64 ? (__mmask16)0xffff : (__mmask16)((1u << (n / 4)) - 1);
    __m512i v = _mm512_andnot_si512(_mm512_maskz_loadu_epi32(m, p), _mm512_set1_epi32(0x7f7f7f7f));
    return _mm512_or_si512(acc, _mm512_sub_epi32(v, _mm512_set1_epi32(0x01010101)));
}

T512 INLINE int nan_any(__m512i acc) { return _mm512_test_epi32_mask(acc, _mm512_set1_epi32((int)0x80808080)) != 0; }

/* One chain step of 16 chains in the mode: acc + w * x, or fma(w, x, acc). */
T512 INLINE __m512 chain16(__m512 acc, __m512 w, __m512 x, int relaxed) {
    return relaxed ? _mm512_fmadd_ps(w, x, acc) : _mm512_add_ps(acc, _mm512_mul_ps(w, x));
}

/* 16 NVFP4 values, AVX512-VBMI: the 8 bytes broadcast to each 64-bit lane
 * (a load), vpmultishiftqb puts nibble i in the low 4 bits of 32-bit lane i
 * (control bytes 8q and 8q + 4 of lane q: bit offsets 4i), vpermps picks lane
 * i's value from e2m1 (fp4rt_e2m1_table) times the block scale: the
 * one-row kernel's products fp4rt_e2m1_table[c] * scale, bit for bit (the
 * zero of code 8 is -0 * scale, as there). 3 vector ALU operations per 16
 * weights instead of nvfp4x16's ~11: NVFP4 decode steps are no longer
 * bound by the decode. */
T512V INLINE __m512 nvfp4x16_vbmi(const uint8_t *p, uint8_t code, __m512 e2m1) {
    const __m512i ctrl = _mm512_set_epi64(0x3c00000038ll, 0x3400000030ll, 0x2c00000028ll, 0x2400000020ll,
                                          0x1c00000018ll, 0x1400000010ll, 0x0c00000008ll, 0x0400000000ll);
    uint64_t u;
    memcpy(&u, p, 8);
    __m512i idx = _mm512_multishift_epi64_epi8(ctrl, _mm512_set1_epi64((long long)u));
    return _mm512_permutexvar_ps(idx, _mm512_mul_ps(e2m1, _mm512_set1_ps(fp4rt_e4m3_table[code])));
}

#define TGT T512
#define SFX(name) name
#define NVFP4X16(p, code) nvfp4x16(p, fp4rt_e4m3_table[code])
#define ONLY_NVFP4 0
#include "runtime/backend/cpu/cpu_linear_small_x86_body.h"
#undef TGT
#undef SFX
#undef NVFP4X16
#undef ONLY_NVFP4

#define TGT T512V
#define SFX(name) name##_vbmi
#define NVFP4X16(p, code) nvfp4x16_vbmi(p, code, e2m1)
#define ONLY_NVFP4 1
#include "runtime/backend/cpu/cpu_linear_small_x86_body.h"
#undef TGT
#undef SFX
#undef NVFP4X16
#undef ONLY_NVFP4

int fp4rt_cpu_linear_small_ok(const fp4rt_linear *l, int isa, int n_rows) {
    int fmt_ok = l->fmt == FP4RT_W_BF16 || l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4 ||
                 l->fmt == FP4RT_W_NVFP4_W4A4;
    return fmt_ok && l->n_in % 16 == 0 && n_rows >= 1 && n_rows <= FP4RT_SMALL_TOKENS_MAX &&
           isa >= FP4RT_CPU_ISA_AVX512 && fp4rt_cpu_isa_supported() >= FP4RT_CPU_ISA_AVX512;
}

/* -1: not asked yet (on where the CPU has AVX512-VBMI), else 0 / 1 */
static int g_vbmi = -1;

static int vbmi_supported(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vbmi");
    }
    return cached;
}

int fp4rt_cpu_small_vbmi(int want) {
    if (want >= 0 || g_vbmi < 0) g_vbmi = want != 0 && vbmi_supported();
    return g_vbmi;
}

void fp4rt_cpu_linear_small(const cpu_lin_job *j, long p0, long p1) {
    int nvfp4 = j->l->fmt == FP4RT_W_NVFP4 || j->l->fmt == FP4RT_W_NVFP4_W4A4;
    if (nvfp4 && (g_vbmi < 0 ? fp4rt_cpu_small_vbmi(-1) : g_vbmi)) {
        if (j->relaxed)
            panels512_fma_vbmi(j, p0, p1);
        else
            panels512_exact_vbmi(j, p0, p1);
    } else if (j->relaxed) {
        panels512_fma(j, p0, p1);
    } else {
        panels512_exact(j, p0, p1);
    }
}

#else
int fp4rt_cpu_linear_small_ok(const fp4rt_linear *l, int isa, int n_rows) {
    (void)l, (void)isa, (void)n_rows;
    return 0;
}
void fp4rt_cpu_linear_small(const cpu_lin_job *j, long p0, long p1) { (void)j, (void)p0, (void)p1; }
int fp4rt_cpu_small_vbmi(int want) {
    (void)want;
    return 0;
}
#endif
