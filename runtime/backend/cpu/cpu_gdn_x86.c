/* x86-64 kernels of the GDN mixer (contracts: fp4rt_gdn_chunked_isa,
 * fp4rt_gdn_recurrent_simd and fp4rt_conv1d_silu_simd in cpu_ops.h): AVX-512 (16 lanes) and AVX2 (8 lanes).
 *
 * Chunked gated delta rule: every sum of cpu_gdn.c's gdn_chunk is a chain per
 * output element (a column e of U, O or S; a column s of the dot products)
 * over one index in a fixed order. Those chains are independent across the
 * columns, so a lane holds one column and a vector multiply then a vector add
 * (never FMA) performs, lane by lane, exactly the scalar chain's steps: the bits
 * do not change. The chunk's products become register-blocked matrix products
 * (RB rows x NV vectors of accumulators) over copies of the chunk's q and k rows
 * (and k transposed, for the dot products across s), padded with zeros to whole
 * blocks; padded rows and columns are computed and dropped.
 *   AVX-512: 4 rows x 4 vectors (64 columns) = 16 accumulators.
 *   AVX2:    4 rows x 2 vectors (16 columns) = 8 accumulators.
 * Conv1d + SiLU: lanes are channels (the x rows are channel-contiguous). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"

#include <string.h>

/* The chunk workspace's arrays for one set's block sizes (gw columns, rb rows). */
typedef struct gdn_lay {
    int cp, cw, dkp, dvp; /* chunk rows rounded up to rb; chunk columns to gw; dk to rb; dv to gw */
    float *gamma, *eg, *dd; /* [cw] each */
    float *Qc;              /* q, k, q exp(gamma) rows: [3][cp][dk] */
    float *KT;              /* k transposed: [dk][cw] */
    float *dm;              /* exp(gamma_r - gamma_s): [cp][cw] */
    float *dots;            /* decayed q.k, then A: [2][cp][cw] */
    float *uo;              /* U, then O: [2][cp][dvp] */
    float *KdT;             /* (k_s exp(gamma_last - gamma_s)) transposed: [dkp][cw] */
    float *sp;              /* the padded state [dkp][dvp], NULL where dk, dv need no padding */
    unsigned char *fl;      /* a flag per row block of a matrix product */
} gdn_lay;

static size_t up(size_t n, size_t m) {
    return (n + m - 1) / m * m;
}

/* Lays the arrays out from ws (NULL: only sizes them); returns the floats used. */
static size_t gdn_place(int chunk, int dk, int dv, int gw, int rb, float *ws, gdn_lay *L) {
    L->cp = (int)up((size_t)chunk, (size_t)rb), L->cw = (int)up((size_t)chunk, (size_t)gw);
    L->dkp = (int)up((size_t)dk, (size_t)rb), L->dvp = (int)up((size_t)dv, (size_t)gw);
    size_t cp = (size_t)L->cp, cw = (size_t)L->cw, dkp = (size_t)L->dkp, dvp = (size_t)L->dvp;
    int pad = L->dkp != dk || L->dvp != dv;
    float *fl;
    size_t sizes[] = {cw,          cw,          cw,           3 * cp * dk, dk * cw,
                      cp * cw,     2 * cp * cw, 2 * cp * dvp, dkp * cw,    pad ? dkp * dvp : 0,
                      2 * cp + dkp};
    float **slots[] = {&L->gamma, &L->eg, &L->dd,  &L->Qc, &L->KT, &L->dm,
                       &L->dots,  &L->uo, &L->KdT, &L->sp, &fl};
    size_t off = (16 - ((uintptr_t)ws / sizeof(float)) % 16) % 16; /* 64-byte aligned arrays */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *slots[i] = sizes[i] && ws ? ws + off : NULL;
        off += up(sizes[i], 16);
    }
    L->fl = (unsigned char *)fl;
    return off;
}

size_t fp4rt_gdn_chunk_ws_floats_simd(int chunk, int dk, int dv) {
    gdn_lay L;
    size_t a = gdn_place(chunk, dk, dv, 64, 4, NULL, &L),
           b = gdn_place(chunk, dk, dv, 16, 4, NULL, &L);
    return (a > b ? a : b) + 16; /* + the alignment skew */
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "runtime/backend/cpu/cpu_vexp_x86.h"

static gdn_lay gdn_layout(int chunk, int dk, int dv, int gw, int rb, float *ws) {
    gdn_lay L;
    gdn_place(chunk, dk, dv, gw, rb, ws, &L);
    return L;
}

enum { MM_ZERO, MM_SCALE };

static inline int subnormal(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (u & 0x7f800000u) == 0 && (u & 0x007fffffu) != 0;
}

/* x * b lane by lane through float64: the product of two floats is exact there
 * and cvtpd2ps rounds it once (to nearest even, as the FP32 multiply), so the
 * bits are x * b's, including subnormal, zero, infinite results; conversions
 * take no microcode assist on subnormal operands, where an FP32 multiply does
 * (~170 ns each here). For the GDN's subnormal decayed factors. */
FP4RT_VX_AVX512 static inline __m512 mulx16(float x, __m512 b) {
    __m512d xd = _mm512_cvtps_pd(_mm256_set1_ps(x));
    __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(xd, _mm512_cvtps_pd(_mm512_castps512_ps256(b))));
    __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(
        xd, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1)))));
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

FP4RT_VX_AVX2 static inline __m256 mulx8(float x, __m256 b) {
    __m256d xd = _mm256_cvtps_pd(_mm_set1_ps(x));
    __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(xd, _mm256_cvtps_pd(_mm256_castps256_ps128(b))));
    __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(xd, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1))));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

/* Any of W floats subnormal: exponent bits 0, mantissa not. */
FP4RT_VX_AVX512 static inline int anysub16(const float *p) {
    __m512i u = _mm512_loadu_si512(p), z = _mm512_setzero_si512();
    __mmask16 e0 = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7f800000)), z);
    return (e0 & _mm512_cmpneq_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x007fffff)), z)) !=
           0;
}

FP4RT_VX_AVX2 static inline int anysub8(const float *p) {
    __m256i u = _mm256_loadu_si256((const __m256i *)p), z = _mm256_setzero_si256();
    __m256i e0 = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), z);
    __m256i m0 = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x007fffff)), z);
    return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_andnot_si256(m0, e0))) != 0;
}
#define CONV_KMAX 16

/* AVX-512 */
#define TGT FP4RT_VX_AVX512
#define VF __m512
#define W 16
#define NV 4
#define RB 4
#define GW (W * NV)
#define SFX(n) n##_avx512
#define LD(p) _mm512_loadu_ps(p)
#define ST(p, x) _mm512_storeu_ps(p, x)
#define SET1(x) _mm512_set1_ps(x)
#define ZERO() _mm512_setzero_ps()
#define MUL(a, b) _mm512_mul_ps(a, b)
#define ADD(a, b) _mm512_add_ps(a, b)
#define SUB(a, b) _mm512_sub_ps(a, b)
#define CEXP(x) fp4rt_cexp16(x)
#define SILU(x) fp4rt_csilu16(x)
#define MULX(x, b) mulx16(x, b)
#define ANYSUB(p) anysub16(p)
#include "runtime/backend/cpu/cpu_gdn_x86_body.h"
#undef TGT
#undef VF
#undef W
#undef NV
#undef SFX
#undef LD
#undef ST
#undef SET1
#undef ZERO
#undef MUL
#undef ADD
#undef SUB
#undef CEXP
#undef SILU
#undef MULX
#undef ANYSUB

/* AVX2 */
#define TGT FP4RT_VX_AVX2
#define VF __m256
#define W 8
#define NV 2
#define SFX(n) n##_avx2
#define LD(p) _mm256_loadu_ps(p)
#define ST(p, x) _mm256_storeu_ps(p, x)
#define SET1(x) _mm256_set1_ps(x)
#define ZERO() _mm256_setzero_ps()
#define MUL(a, b) _mm256_mul_ps(a, b)
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define CEXP(x) fp4rt_cexp8(x)
#define SILU(x) fp4rt_csilu8(x)
#define MULX(x, b) mulx8(x, b)
#define ANYSUB(p) anysub8(p)
#include "runtime/backend/cpu/cpu_gdn_x86_body.h"

/* Conv1d + SiLU of one token with kernel 4 (the decode step), AVX-512, the
 * channels [c0, c0 + n), n the multiple of 16 <= c1 - c0; returns n. conv_rows
 * transposes the weights and the state in scalar loops, ~10x the arithmetic
 * at T = 1; here 16 channels' 64 weights and 48 state entries are loaded as
 * vectors and transposed in registers (vpermt2ps), and the new state (s1, s2,
 * x per channel) is the old one moved down one float (valignd) with x
 * permuted into every third float. Each channel's chain is cpu_gdn.c's (acc =
 * +0, then + w_i * in_i for i = 0 .. 3, in order). y may be x. */
FP4RT_VX_AVX512 static long conv1_k4_avx512(const float *x, const float *w, float *state, float *y, long c0,
                                            long c1) {
    long n = (c1 - c0) / 16 * 16;
    __m512i wlo[4], whi[4], slo[3], shi[3], xi[3];
    for (int t = 0; t < 4; t++) { /* weight tap t of channel l: w[4 l + t]: lanes 0..7 from (w0, w1), 8..15 from (w2, w3) */
        int a[16], b[16];
        for (int l = 0; l < 16; l++) a[l] = (4 * l + t) & 31, b[l] = (4 * (l - 8) + t) & 31;
        wlo[t] = _mm512_loadu_si512(a), whi[t] = _mm512_loadu_si512(b);
    }
    for (int t = 0; t < 3; t++) { /* state tap t of channel l: s[3 l + t]: lanes 0..7 from (s0, s1), 8..15 from (s1, s2) */
        int a[16], b[16];
        for (int l = 0; l < 16; l++) a[l] = (3 * l + t) & 31, b[l] = (3 * l + t - 16) & 31;
        slo[t] = _mm512_loadu_si512(a), shi[t] = _mm512_loadu_si512(b);
    }
    __mmask16 xm[3]; /* new state vector m: floats 16 m + l with (16 m + l) % 3 == 2 take x[(16 m + l) / 3] */
    for (int m = 0; m < 3; m++) {
        int a[16];
        xm[m] = 0;
        for (int l = 0; l < 16; l++) {
            a[l] = (16 * m + l) / 3;
            if ((16 * m + l) % 3 == 2) xm[m] |= (__mmask16)(1u << l);
        }
        xi[m] = _mm512_loadu_si512(a);
    }
    for (long j = 0; j < n; j += 16) {
        long c = c0 + j;
        const float *wc = w + (size_t)c * 4;
        float *sc = state + (size_t)c * 3;
        __m512 w0 = _mm512_loadu_ps(wc), w1 = _mm512_loadu_ps(wc + 16), w2 = _mm512_loadu_ps(wc + 32),
               w3 = _mm512_loadu_ps(wc + 48);
        __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16), s2 = _mm512_loadu_ps(sc + 32);
        __m512 xv = _mm512_loadu_ps(x + c), a = _mm512_setzero_ps();
        for (int t = 0; t < 3; t++) {
            __m512 wt = _mm512_mask_blend_ps(0xff00, _mm512_permutex2var_ps(w0, wlo[t], w1),
                                             _mm512_permutex2var_ps(w2, whi[t], w3));
            __m512 st = _mm512_mask_blend_ps(0xff00, _mm512_permutex2var_ps(s0, slo[t], s1),
                                             _mm512_permutex2var_ps(s1, shi[t], s2));
            a = _mm512_add_ps(a, _mm512_mul_ps(wt, st));
        }
        __m512 w3t = _mm512_mask_blend_ps(0xff00, _mm512_permutex2var_ps(w0, wlo[3], w1),
                                          _mm512_permutex2var_ps(w2, whi[3], w3));
        a = _mm512_add_ps(a, _mm512_mul_ps(w3t, xv));
        __m512i i0 = _mm512_castps_si512(s0), i1 = _mm512_castps_si512(s1), i2 = _mm512_castps_si512(s2);
        __m512 n0 = _mm512_castsi512_ps(_mm512_alignr_epi32(i1, i0, 1));
        __m512 n1 = _mm512_castsi512_ps(_mm512_alignr_epi32(i2, i1, 1));
        __m512 n2 = _mm512_castsi512_ps(_mm512_alignr_epi32(i2, i2, 1)); /* its float 15 is x's */
        _mm512_storeu_ps(sc, _mm512_mask_permutexvar_ps(n0, xm[0], xi[0], xv));
        _mm512_storeu_ps(sc + 16, _mm512_mask_permutexvar_ps(n1, xm[1], xi[1], xv));
        _mm512_storeu_ps(sc + 32, _mm512_mask_permutexvar_ps(n2, xm[2], xi[2], xv));
        _mm512_storeu_ps(y + c, fp4rt_csilu16(a));
    }
    return n;
}

static int usable(int isa) {
    return isa >= FP4RT_CPU_ISA_AVX2 && fp4rt_cpu_isa_supported() >= isa;
}

void fp4rt_gdn_chunked_isa(int isa, int T, int chunk, int dk, int dv, const float *q,
                           const float *k, size_t qk_stride, const float *v, size_t v_stride,
                           const float *beta, const float *g, size_t bg_stride, float *S, float *o,
                           size_t o_stride, float *ws) {
    if (isa >= FP4RT_CPU_ISA_AVX512 && usable(FP4RT_CPU_ISA_AVX512))
        chunked_avx512(T, chunk, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o,
                       o_stride, ws);
    else if (usable(isa))
        chunked_avx2(T, chunk, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o,
                     o_stride, ws);
    else
        fp4rt_gdn_chunked(T, chunk, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o,
                          o_stride, ws);
}

int fp4rt_gdn_recurrent_simd(int isa, int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                             const float *v, size_t v_stride, const float *beta, const float *g, size_t bg_stride,
                             float *S, float *o, size_t o_stride) {
    if (isa >= FP4RT_CPU_ISA_AVX512 && usable(FP4RT_CPU_ISA_AVX512) && dv % 64 == 0)
        recurrent_avx512(T, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o, o_stride);
    else if (usable(isa) && dv % 16 == 0)
        recurrent_avx2(T, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o, o_stride);
    else
        return 0;
    return 1;
}

long fp4rt_conv1d_silu_simd(int isa, int T, int K, const float *x, size_t x_stride, const float *w,
                            float *state, float *y, size_t y_stride, long c0, long c1, float *ws) {
    if (K < 1 || K > CONV_KMAX) return 0;
    if (isa >= FP4RT_CPU_ISA_AVX512 && usable(FP4RT_CPU_ISA_AVX512) && T == 1 && K == 4)
        return conv1_k4_avx512(x, w, state, y, c0, c1);
    if (isa >= FP4RT_CPU_ISA_AVX512 && usable(FP4RT_CPU_ISA_AVX512))
        return conv_avx512(T, K, x, x_stride, w, state, y, y_stride, c0, c1, ws);
    if (usable(isa)) return conv_avx2(T, K, x, x_stride, w, state, y, y_stride, c0, c1, ws);
    return 0;
}

#else
void fp4rt_gdn_chunked_isa(int isa, int T, int chunk, int dk, int dv, const float *q,
                           const float *k, size_t qk_stride, const float *v, size_t v_stride,
                           const float *beta, const float *g, size_t bg_stride, float *S, float *o,
                           size_t o_stride, float *ws) {
    (void)isa;
    fp4rt_gdn_chunked(T, chunk, dk, dv, q, k, qk_stride, v, v_stride, beta, g, bg_stride, S, o,
                      o_stride, ws);
}

int fp4rt_gdn_recurrent_simd(int isa, int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                             const float *v, size_t v_stride, const float *beta, const float *g, size_t bg_stride,
                             float *S, float *o, size_t o_stride) {
    (void)isa, (void)T, (void)dk, (void)dv, (void)q, (void)k, (void)qk_stride, (void)v, (void)v_stride, (void)beta,
        (void)g, (void)bg_stride, (void)S, (void)o, (void)o_stride;
    return 0;
}

long fp4rt_conv1d_silu_simd(int isa, int T, int K, const float *x, size_t x_stride, const float *w,
                            float *state, float *y, size_t y_stride, long c0, long c1, float *ws) {
    (void)isa, (void)T, (void)K, (void)x, (void)x_stride, (void)w, (void)state, (void)y,
        (void)y_stride, (void)c0, (void)c1, (void)ws;
    return 0;
}
#endif
