/* BF16 linears of the default numerics mode on the AMX tile unit (contract:
 * fp4rt_cpu_linear_amx in cpu_ops.h; docs/NUMERICS.md "Modes").
 *
 * The product is C^T = W x X^T: the A tiles are 16 weight rows x 32 k read
 * straight from the stored BF16 rows (stride n_in * 2 bytes); the B tiles the
 * activations split into three BF16 parts (hi, mid, lo: fp4rt_cpu_amx_split)
 * in the VNNI pair layout, one column per (token, part): a column block holds
 * 5 tokens x 3 parts (+ one zero column), or all T x 3 when T < 5
 * (fp4rt_cpu_amx_pack, once per call into the shared workspace); the C tiles
 * 16 output rows x those columns of FP32 sums. Per k block of 32 (k
 * ascending, from a zeroed C): C += A x B, one tile product for all three
 * parts of up to 5 tokens (a decode step: one product per 1 KiB of weights).
 * Output = ((C_hi + C_mid) + C_lo) x post. Every element of a tile product
 * depends only on its weight row, its own column and its own previous value,
 * so an output's bits do not depend on the other tokens of the call (T = 1
 * decode, verify rows, prefill chunks alike), on the tiling or on the thread
 * count.
 *
 * Tails: k past n_in reads zero weights (a zero-padded copy of the A block,
 * in the thread's workspace) against zero activations (the pack pads k to a
 * multiple of 32); rows past the weight buffer read a zero-padded copy, their
 * outputs are dropped; token slots past T are zero columns, dropped too.
 *
 * Tile state is per thread: each pool job loads the configuration at its
 * start and releases the tiles at its end. The process asks Linux for the
 * tile data state once (arch_prctl ARCH_REQ_XCOMP_PERM, pthread_once). */
#include "runtime/backend/cpu/cpu_ops.h"

#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) &&      \
    !defined(FP4RT_NO_AMX)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TAMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
#define T512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int g_amx;
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, avx512bw = (b >> 30) & 1,
        avx512f = (b >> 16) & 1, avx512vl = (b >> 31) & 1;
    if (!tile || !bf16 || !avx512f || !avx512bw || !avx512vl) return;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) return; /* AVX512_BF16 */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return;         /* OSXSAVE */
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    /* XCR0: SSE, AVX, the three AVX-512 states, XTILECFG (17), XTILEDATA (18) */
    unsigned need = (1u << 1) | (1u << 2) | (7u << 5) | (3u << 17);
    g_amx = (lo & need) == need;
}

int fp4rt_cpu_amx_available(void) {
    pthread_once(&g_amx_once, amx_probe);
    return g_amx;
}

/* The hi / mid / lo split of 16 floats (cpu_ops.h fp4rt_cpu_amx_split):
 * vcvtneps2bf16 is RNE with subnormal inputs and outputs read / written as
 * zero, NaN to a quiet NaN, overflow to inf; the finite x whose hi overflowed
 * take the truncated hi; the non-finite x get mid = lo = 0. */
T512BF INLINE __m256i bf16_rne(__m512 x) {
    return (__m256i)_mm512_cvtneps_pbh(x);
}
T512BF INLINE __m512 bf16_widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

T512BF INLINE void split16(__m512 x, __m256i part[3]) {
    __m256i h = bf16_rne(x);
    __m512i xi = _mm512_castps_si512(x);
    __m512i expo = _mm512_set1_epi32(0x7f800000);
    __mmask16 finite = _mm512_cmpneq_epi32_mask(_mm512_and_si512(xi, expo), expo);
    __m512i hw = _mm512_castps_si512(bf16_widen(h));
    __mmask16 over = _mm512_mask_cmpeq_epi32_mask(finite, _mm512_and_si512(hw, expo), expo);
    hw = _mm512_mask_and_epi32(hw, over, xi, _mm512_set1_epi32((int)0xffff0000));
    part[0] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(hw, 16));
    __m512 r = _mm512_maskz_sub_ps(finite, x, _mm512_castsi512_ps(hw)); /* exact */
    part[1] = bf16_rne(r);
    part[2] = bf16_rne(_mm512_sub_ps(r, bf16_widen(part[1]))); /* exact difference */
}

void fp4rt_cpu_amx_split(const float *x, int n, uint16_t *hi, uint16_t *mid, uint16_t *lo);
T512BF void fp4rt_cpu_amx_split(const float *x, int n, uint16_t *hi, uint16_t *mid, uint16_t *lo) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256i part[3];
        split16(_mm512_maskz_loadu_ps(m, x + i), part);
        _mm256_mask_storeu_epi16(hi + i, m, part[0]);
        _mm256_mask_storeu_epi16(mid + i, m, part[1]);
        _mm256_mask_storeu_epi16(lo + i, m, part[2]);
    }
}

/* The pack: column blocks of tpb tokens (tpb = 5, or T when T < 5), each
 * [P][bwc] words of two BF16 (P = the k pairs rounded up to 16 pairs; bwc =
 * 16 columns, or 3 T when T < 5): column 3 s + q is part q of the block's
 * token s; column 15 of a 5-token block is zero. A B tile is 16 whole rows of
 * 4 bwc bytes one after the other (rows that overlap or straddle lines at
 * random load at a third of the rate; a decode step's B is 192 bytes). */
typedef struct amx_layout {
    int tpb, bwc, P, n_blocks;
} amx_layout;

static amx_layout layout_of(int K, int T) {
    amx_layout g;
    g.tpb = T < 5 ? T : 5;
    g.bwc = T < 5 ? 3 * T : 16;
    g.P = (K + 31) / 32 * 16;
    g.n_blocks = (T + g.tpb - 1) / g.tpb;
    return g;
}

size_t fp4rt_cpu_amx_pack_floats(int K, int T) {
    amx_layout g = layout_of(K, T);
    return (size_t)g.n_blocks * g.P * g.bwc; /* words */
}

/* Token slots [s0, s1) of the pack (slots past T: zero columns). */
T512BF static void pack_range(void *arg, long s0, long s1, int thread) {
    (void)thread;
    const cpu_lin_job *j = arg;
    int K = j->l->n_in, T = j->n_rows;
    amx_layout g = layout_of(K, T);
    uint32_t *pack = (uint32_t *)j->s->ctx->shared;
    __m512i vidx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(g.bwc));
    for (long t = s0; t < s1; t++) {
        uint32_t *base = pack + (size_t)(t / g.tpb) * g.P * g.bwc + (size_t)(t % g.tpb) * 3;
        if (g.bwc == 16 && t % g.tpb == g.tpb - 1) /* the block's spare column */
            for (int p = 0; p < g.P; p++)
                base[(size_t)p * 16 + 3] = 0;
        if (t >= T) {
            for (int p = 0; p < g.P; p++)
                base[(size_t)p * g.bwc] = base[(size_t)p * g.bwc + 1] =
                    base[(size_t)p * g.bwc + 2] = 0;
            continue;
        }
        const float *x = j->x + (size_t)t * j->x_stride;
        for (int p = 0; p < g.P; p += 16) { /* 32 k: 16 pairs */
            int k = 2 * p, n = K - k < 32 ? (K - k > 0 ? K - k : 0) : 32;
            __mmask16 m0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
            __mmask16 m1 = n >= 32  ? (__mmask16)0xffff
                           : n > 16 ? (__mmask16)((1u << (n - 16)) - 1)
                                    : 0;
            __m256i a[3], b[3];
            split16(_mm512_maskz_loadu_ps(m0, x + k), a);
            split16(_mm512_maskz_loadu_ps(m1, x + k + 16), b);
            for (int q = 0; q < 3; q++) /* 32 BF16 in k order = 16 pair words, column 3 s + q */
                _mm512_i32scatter_epi32(base + (size_t)p * g.bwc + q, vidx,
                                        _mm512_inserti64x4(_mm512_castsi256_si512(a[q]), b[q], 1),
                                        4);
        }
    }
}

void fp4rt_cpu_amx_pack(const cpu_lin_job *j) {
    amx_layout g = layout_of(j->l->n_in, j->n_rows);
    if (g.n_blocks == 1) /* decode, verify: a few rows, not worth a pool loop */
        pack_range((void *)j, 0, g.tpb, 0);
    else
        fp4rt_pool_for(j->s->ctx->pool, (long)g.n_blocks * g.tpb, 5, pack_range, (void *)j);
}

typedef struct tilecfg {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

/* All 8 tiles 16 rows: A (32 BF16 a row), C (bwc FP32 a row), B (16 pairs x
 * bwc columns x 2 BF16). bwc 16: every tile 64 bytes a row (the roles: the
 * kernels below); bwc < 16 (T < 5: only kern_rows runs): C 0, 1 and B 4 are
 * 4 bwc bytes a row. A column's sums do not depend on the columns beside it. */
TAMX static void amx_config(int bwc) {
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = (uint16_t)(bwc < 16 && (i < 2 || i == 4) ? 4 * bwc : 64);
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* A row tile: its weight rows (have of them in the buffer, <= 16) and its
 * padded-copy scratch (16 x 32 BF16, 64-byte rows). */
typedef struct rtile {
    const uint16_t *w;
    int have;
    uint16_t *pad;
} rtile;

/* The A tile of k block kb: the weight rows themselves (stride K * 2 bytes)
 * where 16 rows x 32 k exist, else the padded copy, zero past K and past the
 * rows. */
INLINE const void *a_tile(const rtile *r, int K, int kb, size_t *stride) {
    int full = K / 32;
    if (r->have == 16 && kb < full) {
        *stride = (size_t)K * 2;
        return r->w + (size_t)kb * 32;
    }
    int kn = K - kb * 32 < 32 ? K - kb * 32 : 32;
    memset(r->pad, 0, 1024);
    for (int i = 0; i < r->have; i++)
        memcpy(r->pad + i * 32, r->w + (size_t)i * K + (size_t)kb * 32, (size_t)kn * 2);
    *stride = 64;
    return r->pad;
}

/* Decode's weight stream: each kern_rows block prefetches its rows' lines
 * PF_KB blocks ahead into L1. Measured (cpu_linear_bench, one token, one
 * thread, the weights in L3), the 3584 x 1024 shape: with one tile product
 * per part and two row tiles per block, none 0.38 ms, 2 blocks 0.33-0.35,
 * 4: 0.34, 8: 0.38, into L2 only: 0.39-0.47; with the parts as columns and
 * one row tile, 2 blocks 0.28, none 0.28 (the AVX-512 FMA path 0.25-0.26;
 * weights past the L3, 512 MiB: AMX 48 against 50 ms). Tile loads straight from 16
 * rows keep few lines in flight (each load waits for the products still
 * reading its tile); staging whole row tiles through vector loads (one
 * sequential stream) measured 0.40. */
#define PF_KB 2

/* The kernels, every output column one chain over the k blocks in order.
 * Tile numbers are constants, so one function per shape; the C tile of row
 * tile (kern_rows) or of column block c (kern_cols) goes to slot 0 or c of
 * the output scratch (16 x 16 floats each).
 * kern_rows (one column block: T <= 5; decode, verify): C 0; A 2; B 4. Two
 * row tiles per k block (C 0, 1; A 2, 3) measured 0.31 ms against 0.28, and
 * three 0.40-0.44, the 3584 x 1024 shape above (with K = 1024 the rows of
 * several tiles share few L1 sets).
 * kern_cols (R = 1, nc <= 5 column blocks; prefill: one A tile serves nc
 * column blocks, 25 tokens): C 0 .. 4; A 5; B 6 | 7 alternating. */
TAMX INLINE void kern_rows(const rtile *r, int K, const uint32_t *b, int bwc, float *c) {
    size_t bs = (size_t)bwc * 4, bkb = (size_t)bwc * 16, as;
    _tile_zero(0);
    for (int kb = 0, n_kb = (K + 31) / 32; kb < n_kb; kb++, b += bkb) {
        const void *a = a_tile(r, K, kb, &as);
        if (r->have == 16 && kb + PF_KB < K / 32) /* the rows PF_KB blocks ahead */
            for (int q = 0; q < 16; q++)
                _mm_prefetch((const char *)(r->w + (size_t)q * K + (size_t)(kb + PF_KB) * 32),
                             _MM_HINT_T0);
        _tile_loadd(2, a, as);
        _tile_loadd(4, b, bs);
        _tile_dpbf16ps(0, 2, 4);
    }
    _tile_stored(0, c, 64);
}

#define DP_COL(CT, BT)                                                                             \
    do {                                                                                           \
        _tile_loadd(BT, b + (CT)*cs, 64);                                                          \
        _tile_dpbf16ps(CT, 5, BT);                                                                 \
    } while (0)

TAMX INLINE void kern_cols(const rtile *r, int K, const uint32_t *b, int P, int nc, float *c) {
    size_t cs = (size_t)P * 16, as;
    _tile_zero(0);
    if (nc > 1) _tile_zero(1);
    if (nc > 2) _tile_zero(2);
    if (nc > 3) _tile_zero(3);
    if (nc > 4) _tile_zero(4);
    for (int kb = 0, n_kb = (K + 31) / 32; kb < n_kb; kb++, b += 256) {
        _tile_loadd(5, a_tile(r, K, kb, &as), as);
        DP_COL(0, 6);
        if (nc > 1) DP_COL(1, 7);
        if (nc > 2) DP_COL(2, 6);
        if (nc > 3) DP_COL(3, 7);
        if (nc > 4) DP_COL(4, 6);
    }
    _tile_stored(0, c, 64);
    if (nc > 1) _tile_stored(1, c + 256, 64);
    if (nc > 2) _tile_stored(2, c + 512, 64);
    if (nc > 3) _tile_stored(3, c + 768, 64);
    if (nc > 4) _tile_stored(4, c + 1024, 64);
}

/* Output scratch (5 C tiles), then a padded A copy, with room to align. */
size_t fp4rt_cpu_amx_ws_floats(void) {
    return 5 * 256 + 256 + 16;
}

/* y[t][n0 + q] for the tokens of column block slot (c + slot * 256), q < rows. */
static void put_block(const cpu_lin_job *j, const float *cb, int t0, int nt, int n0, int rows) {
    for (int s = 0; s < nt; s++) {
        int t = t0 + s;
        float post = j->row_post ? j->row_post[t] : j->post;
        float *y = j->y + (size_t)t * j->y_stride + n0;
        for (int q = 0; q < rows; q++) {
            const float *v = cb + q * 16 + 3 * s;
            y[q] = ((v[0] + v[1]) + v[2]) * post;
        }
    }
}

/* Column blocks per super-group: 13 (65 tokens) keep one super-group's B
 * (K x 13 x 64 bytes: 1.4 MiB at K = 3584) in L2 while every row tile passes. */
#define SUPER_BLOCKS 13

TAMX void fp4rt_cpu_linear_amx(const cpu_lin_job *j, long p0, long p1, float *ws) {
    const fp4rt_linear *l = j->l;
    int K = l->n_in, T = j->n_rows, n_out = j->n_out;
    amx_layout g = layout_of(K, T);
    const uint32_t *pack = (const uint32_t *)j->s->ctx->shared;
    float *c = ws; /* 5 C tiles of 16 x 16 */
    uint16_t *pads =
        (uint16_t *)(((uintptr_t)(ws + 5 * 256) + 63) & ~(uintptr_t)63); /* 16 x 32 BF16 */
    const uint16_t *W = l->weight;
    amx_config(g.bwc);
    if (g.n_blocks == 1) { /* decode, verify */
        for (long rt = p0; rt < p1; rt++) {
            int n0 = (int)rt * 16;
            rtile r = {W + (size_t)n0 * K, l->n_out - n0 < 16 ? l->n_out - n0 : 16, pads};
            kern_rows(&r, K, pack, g.bwc, c);
            put_block(j, c, 0, T, n0, n_out - n0 < 16 ? n_out - n0 : 16);
        }
        _tile_release();
        return;
    }
    for (int sg = 0; sg < g.n_blocks; sg += SUPER_BLOCKS) {
        int sg_end = sg + SUPER_BLOCKS < g.n_blocks ? sg + SUPER_BLOCKS : g.n_blocks;
        for (long rt = p0; rt < p1; rt++) {
            int n0 = (int)rt * 16, rows = n_out - n0 < 16 ? n_out - n0 : 16;
            rtile r = {W + (size_t)n0 * K, l->n_out - n0 < 16 ? l->n_out - n0 : 16, pads};
            for (int cb = sg; cb < sg_end; cb += 5) {
                int nc = sg_end - cb < 5 ? sg_end - cb : 5;
                const uint32_t *b = pack + (size_t)cb * g.P * 16;
                switch (nc) {
                case 1:
                    kern_cols(&r, K, b, g.P, 1, c);
                    break;
                case 2:
                    kern_cols(&r, K, b, g.P, 2, c);
                    break;
                case 3:
                    kern_cols(&r, K, b, g.P, 3, c);
                    break;
                case 4:
                    kern_cols(&r, K, b, g.P, 4, c);
                    break;
                default:
                    kern_cols(&r, K, b, g.P, 5, c);
                    break;
                }
                for (int i = 0; i < nc; i++) {
                    int t0 = (cb + i) * 5, nt = T - t0 < 5 ? T - t0 : 5;
                    put_block(j, c + i * 256, t0, nt, n0, rows);
                }
            }
        }
    }
    _tile_release();
}

TAMX float fp4rt_cpu_amx_peak(long iters) {
    static const uint16_t zero[512]
        __attribute__((aligned(64))) = {0}; /* the values do not change the rate */
    float out[256] __attribute__((aligned(64)));
    amx_config(16);
    _tile_loadd(5, zero, 64);
    _tile_loadd(6, zero, 64);
    _tile_loadd(7, zero, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    for (long i = 0; i < iters; i++) { /* kern_cols's mix: 5 column blocks per A tile */
        _tile_dpbf16ps(0, 5, 6);
        _tile_dpbf16ps(1, 5, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        _tile_dpbf16ps(4, 5, 6);
        _tile_dpbf16ps(0, 5, 7);
        _tile_dpbf16ps(1, 5, 6);
        _tile_dpbf16ps(2, 5, 7);
        _tile_dpbf16ps(3, 5, 6);
        _tile_dpbf16ps(4, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}

#else
float fp4rt_cpu_amx_peak(long iters) {
    (void)iters;
    return 0;
}
int fp4rt_cpu_amx_available(void) {
    return 0;
}
size_t fp4rt_cpu_amx_pack_floats(int K, int T) {
    (void)K, (void)T;
    return 0;
}
size_t fp4rt_cpu_amx_ws_floats(void) {
    return 0;
}
void fp4rt_cpu_amx_split(const float *x, int n, uint16_t *hi, uint16_t *mid, uint16_t *lo) {
    (void)x, (void)n, (void)hi, (void)mid, (void)lo;
}
void fp4rt_cpu_amx_pack(const cpu_lin_job *j) {
    (void)j;
}
void fp4rt_cpu_linear_amx(const cpu_lin_job *j, long p0, long p1, float *ws) {
    (void)j, (void)p0, (void)p1, (void)ws;
}
#endif
