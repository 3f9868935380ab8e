/* Regression test of the tiled prefill linear (runtime/backend/cpu/cpu_linear_tile.c):
 * a CPU linear over several tokens must give every output the bits of the
 * one-row kernel (fp4rt_cpu_row_dot on the same, maybe quantized, activation
 * row, times the post scale), on every tile kernel this CPU runs (AVX2,
 * AVX-512), on the per-row path (FP4RT_CPU_LINEAR=rows, and the portable
 * build's path: FP4RT_CPU_ISA=c), with 1 and 2
 * threads, for every weight format (BF16, F16, F32, FP8 W8A8, NVFP4 W4A16, W4A4
 * with a static and a per-row activation scale), at sizes that are no multiple
 * of the tile: rows not a multiple of 4, tokens not a multiple of the kernel's
 * tokens per call, K not a multiple of 16 (formats that allow it) or of 64.
 * 1 .. 6 tokens with BF16 / FP8 / NVFP4 weights take the small-step path
 * (cpu_linear_small_x86.c) on AVX-512: every token count at K = 256 and 768,
 * FP8 with every E4M3 code (+-448, the subnormals, -0) and with NaN codes.
 * The column right of the output must keep its sentinel (no write past n_out).
 * NaN weights give NaN outputs on every path.
 *
 * All of it in both numerics modes (fp4rt_step.relaxed: exact, and the default
 * mode's one FMA per chain step), against a reference written here (the
 * decoded row, 16 chains of fmaf or of a multiply and an add, the contract's
 * tree, the tail), so a kernel that fuses in the exact mode, does not fuse in
 * the relaxed one or sums in another order fails; every token count 1 .. 8.
 * The two modes: the same bits where every product is exact (FP8 W8A8, NVFP4
 * W4A4), else different somewhere yet within the bound of their rounding. */
#include "tests/test_util.h"

#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/numfmt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float frand(void) { return (float)(rnd() & 0xffffff) / 8388608.0f - 1.0f; } /* [-1, 1) */

#define SENTINEL 12345.25f

typedef struct lin_case {
    fp4rt_linear l;
    void *w;
    uint8_t *sb;
} lin_case;

/* nan: a few weights (FP8) or block scales (NVFP4) are the E4M3 NaN codes;
 * NVFP4 bits of nan: 1 a NaN scale in the middle, 2 every scale code (+-0,
 * subnormals, +-448, negative scales) and blocks of zero codes 0 / 8, 4 the
 * NaN code 0xff on the last block */
static void make(lin_case *c, fp4rt_wfmt fmt, int N, int K, int dyn, int nan) {
    memset(c, 0, sizeof *c);
    size_t n = (size_t)N * K;
    c->l = (fp4rt_linear){.module = "test", .fmt = fmt, .n_out = N, .n_in = K, .weight_scale = 1.0f};
    switch (fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = fmt == FP4RT_W_BF16 ? fp4rt_f32_to_bf16(frand()) : fp4rt_f32_to_f16(frand());
        c->w = h;
        break;
    }
    case FP4RT_W_F32: {
        float *f = malloc(n * 4);
        for (size_t i = 0; i < n; i++) f[i] = frand();
        c->w = f;
        break;
    }
    case FP4RT_W_FP8: {
        uint8_t *b = malloc(n);
        for (size_t i = 0; i < n; i++) {
            do b[i] = (uint8_t)rnd(); while ((b[i] & 0x7f) == 0x7f); /* every code but NaN, -0 included */
        }
        size_t step = n >= 256 ? n / 256 : 1; /* each of them for sure: +-448, the subnormals 1 .. 7 */
        for (size_t i = 0; i < n && i < 256; i++)
            if ((i & 0x7f) != 0x7f) b[i * step] = (uint8_t)i;
        if (nan) b[n / 3] = 0x7f, b[n - 1] = 0xff;
        c->w = b;
        c->l.weight_scale = 0.0173f;
        c->l.input_scale = 0.031f;
        break;
    }
    default: { /* NVFP4 W4A16 / W4A4 */
        uint8_t *b = malloc(n / 2);
        for (size_t i = 0; i < n / 2; i++) b[i] = (uint8_t)rnd(); /* every code, -0 included */
        c->sb = malloc(n / 16);
        for (size_t i = 0; i < n / 16; i++) c->sb[i] = (uint8_t)(rnd() % 0x7e); /* subnormals and 0 too */
        if (nan & 2) { /* every scale code (NaN ones as +-0), whole blocks of codes 0 and 8 (+-0) */
            for (size_t i = 0; i < n / 16; i++) c->sb[i] = (i & 0x7f) == 0x7f ? (uint8_t)(i & 0x80) : (uint8_t)i;
            for (size_t i = 0; i + 16 <= n / 2; i += 24) memset(b + i, i % 48 ? 0x88 : 0x00, 8);
        }
        if (nan & 1) c->sb[n / 32] = 0x7f;
        if (nan & 4) c->sb[n / 16 - 1] = 0xff; /* the last block of the last row */
        c->w = b;
        c->l.block_scale = c->sb;
        c->l.weight_scale = 0.0021f;
        if (fmt == FP4RT_W_NVFP4_W4A4) {
            c->l.act_dynamic = dyn;
            c->l.input_scale = dyn ? 0.0f : 0.0047f;
        }
        break;
    }
    }
    c->l.weight = c->w;
}

/* The contract's dot of row n and x in the mode, from the decoded row: chain j
 * sums elements j, j + 16, ... (each step fmaf, or a multiply then an add:
 * this file is built for baseline x86-64, no FMA to contract into), the tree
 * ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) of a_j = c_j + c_{j+8},
 * then the tail k >= K & ~15 in the same mode. *mag: sum |w x| (for bounds). */
static float ref_dot(const fp4rt_linear *l, int n, const float *x, int relaxed, double *mag) {
    int K = l->n_in, K16 = K & ~15;
    float *w = malloc(sizeof(float) * (size_t)K), c[16] = {0}, a[8];
    fp4rt_cpu_decode_row(l, n, w);
    *mag = 0;
    for (int k = 0; k < K; k++) *mag += fabs((double)w[k] * x[k]);
    for (int k = 0; k < K16; k++) c[k % 16] = relaxed ? fmaf(w[k], x[k], c[k % 16]) : c[k % 16] + w[k] * x[k];
    for (int j = 0; j < 8; j++) a[j] = c[j] + c[j + 8];
    float s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for (int k = K16; k < K; k++) s = relaxed ? fmaf(w[k], x[k], s) : s + w[k] * x[k];
    free(w);
    return s;
}

static int g_mode_bad; /* outputs where fp4rt_cpu_row_dot differs from ref_dot */

/* The expected output of row t, column n in the mode: the reference on the row
 * as fp4rt_cpu_linear quantizes it, times the post scale (the one-row kernel
 * fp4rt_cpu_row_dot must agree: counted in g_mode_bad). *mag: sum |w x| post. */
static float expect(const fp4rt_linear *l, const float *x, int n, float *q, int relaxed, double *mag) {
    int K = l->n_in;
    float post = 1.0f;
    const float *in = x;
    if (l->fmt == FP4RT_W_FP8) {
        fp4rt_fp8_act_quantize(x, K, l->input_scale, q);
        in = q, post = l->input_scale * l->weight_scale;
    } else if (l->fmt == FP4RT_W_NVFP4_W4A4) {
        float s = l->act_dynamic ? fp4rt_nvfp4_act_row_scale(x, K) : l->input_scale;
        fp4rt_nvfp4_act_quantize(x, K, s, q);
        in = q, post = l->act_dynamic ? s * l->weight_scale : l->input_scale * l->weight_scale;
    } else if (l->fmt == FP4RT_W_NVFP4) {
        post = l->weight_scale;
    }
    float r = ref_dot(l, n, in, relaxed, mag), k = fp4rt_cpu_row_dot(l, n, in, relaxed);
    g_mode_bad += isnan(r) ? !isnan(k) : memcmp(&r, &k, 4) != 0;
    *mag *= fabs((double)post);
    return r * post;
}

/* Runs fp4rt_cpu_linear on T tokens with the given threads / ISA / path and
 * compares every output bit for bit with the expected values. */
static int run_one(const lin_case *c, int T, int threads, int isa, int tiled, int relaxed, const float *want) {
    int N = c->l.n_out, K = c->l.n_in;
    /* arena: [x (K) | gap 1 | y (N) | gap 1] per token */
    int offs[2] = {0, K + 1}, widths[2] = {K, N};
    fp4rt_program p = {.n_bufs = 2, .buf_width = widths, .buf_offset = offs, .arena_width = K + N + 2};
    fp4rt_step step = {.n_tokens = T, .relaxed = relaxed};
    float *arena = malloc(sizeof(float) * (size_t)T * p.arena_width);
    g_rng = 0x9e3779b97f4a7c15ull; /* the same activations as expected() saw */
    for (int t = 0; t < T; t++) {
        float *r = arena + (size_t)t * p.arena_width;
        for (int k = 0; k < K; k++) r[k] = 3.0f * frand();
        for (int i = K; i < p.arena_width; i++) r[i] = SENTINEL;
    }
    void *vctx;
    if (fp4rt_backend_cpu.create(threads, &vctx)) return 0;
    cpu_ctx *ctx = vctx;
    ctx->isa = isa;
    ctx->tiled = tiled;
    ctx->amx = 0; /* the FMA kernels: BF16 in the default mode on AMX is test_cpu_amx's */
    cpu_step s = {.ctx = ctx, .p = &p, .step = &step, .arena = arena};
    fp4rt_op op = {.kind = FP4RT_OP_LINEAR, .x = {0, 0, K}, .y = {1, 0, N}, .lin = &c->l};
    int ok = fp4rt_cpu_linear(&s, &op) == FP4RT_OK;
    for (int t = 0; t < T && ok; t++) {
        const float *r = arena + (size_t)t * p.arena_width;
        ok &= r[K] == SENTINEL && r[K + 1 + N] == SENTINEL;
        for (int n = 0; n < N; n++) { /* the same bits, or both NaN (payloads are not part of the contract) */
            float got = r[K + 1 + n], w = want[(size_t)t * N + n];
            ok &= isnan(w) ? isnan(got) : memcmp(&got, &w, 4) == 0;
        }
    }
    fp4rt_backend_cpu.destroy(vctx);
    free(arena);
    return ok;
}

static long g_small_other; /* runs of the small-step path's other NVFP4 decoder */

/* Per format: outputs where the modes differ, and all outputs compared. */
static long g_differ[FP4RT_W_NVFP4_W4A4 + 1], g_compared[FP4RT_W_NVFP4_W4A4 + 1];

static void check_case_nan(fp4rt_wfmt fmt, int dyn, int N, int K, int T, int nan) {
    lin_case c;
    make(&c, fmt, N, K, dyn, nan);
    size_t n_out = (size_t)T * N;
    float *want = malloc(sizeof(float) * 2 * n_out), *x = malloc(sizeof(float) * K), *q = malloc(sizeof(float) * K);
    double mag;
    g_rng = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < K; k++) x[k] = 3.0f * frand();
        for (int n = 0; n < N; n++) {
            float e = expect(&c.l, x, n, q, 0, &mag), r = expect(&c.l, x, n, q, 1, &mag);
            want[(size_t)t * N + n] = e, want[n_out + (size_t)t * N + n] = r;
            if (isnan(e) || isnan(r)) {
                CHECK_MSG(isnan(e) && isnan(r), "%s N=%d K=%d: NaN in one mode only", fp4rt_wfmt_name(fmt), N, K);
                continue;
            }
            /* each mode within (K / 16 + 20) units of rounding of the true sum */
            double bound = 2.0 * (K / 16 + 20) * ldexp(1.0, -24) * mag;
            CHECK_MSG(fabs((double)e - r) <= bound, "%s N=%d K=%d: the modes differ by %.3g > %.3g",
                      fp4rt_wfmt_name(fmt), N, K, fabs((double)e - r), bound);
            g_differ[fmt] += memcmp(&e, &r, 4) != 0;
            g_compared[fmt]++;
        }
    }
    CHECK_MSG(g_mode_bad == 0, "%s N=%d K=%d: fp4rt_cpu_row_dot differs from the reference in %d outputs",
              fp4rt_wfmt_name(fmt), N, K, g_mode_bad);
    g_mode_bad = 0;
    int best = fp4rt_cpu_isa_supported();
    for (int relaxed = 0; relaxed <= 1; relaxed++) {
        const float *wm = want + (size_t)relaxed * n_out;
        const char *mode = relaxed ? "relaxed" : "exact";
        for (int threads = 1; threads <= 2; threads++) {
            CHECK_MSG(run_one(&c, T, threads, best, 0, relaxed, wm),
                      "%s%s N=%d K=%d T=%d threads=%d %s: per-row path differs", fp4rt_wfmt_name(fmt),
                      dyn ? " (dynamic)" : "", N, K, T, threads, mode);
            for (int isa = FP4RT_CPU_ISA_C; isa <= best; isa++)
                CHECK_MSG(run_one(&c, T, threads, isa, 1, relaxed, wm),
                          "%s%s N=%d K=%d T=%d threads=%d %s: %s tiles differ", fp4rt_wfmt_name(fmt),
                          dyn ? " (dynamic)" : "", N, K, T, threads, mode, fp4rt_cpu_isa_name(isa));
            /* NVFP4 on the small-step path: the other decoder too (AVX-512F
             * where the default is VBMI, VBMI where the CPU has it) */
            int nv = fmt == FP4RT_W_NVFP4 || fmt == FP4RT_W_NVFP4_W4A4, vbmi = fp4rt_cpu_small_vbmi(-1);
            if (nv && best >= FP4RT_CPU_ISA_AVX512 && T <= FP4RT_SMALL_TOKENS_MAX && fp4rt_cpu_small_vbmi(!vbmi) != vbmi) {
                CHECK_MSG(run_one(&c, T, threads, best, 1, relaxed, wm),
                          "%s%s N=%d K=%d T=%d threads=%d %s: the small-step path's %s decoder differs",
                          fp4rt_wfmt_name(fmt), dyn ? " (dynamic)" : "", N, K, T, threads, mode,
                          vbmi ? "AVX-512F" : "VBMI");
                g_small_other++;
            }
            fp4rt_cpu_small_vbmi(vbmi);
        }
    }
    if (fmt == FP4RT_W_FP8 ? nan : nan & 5) {
        int n_nan = 0;
        for (int i = 0; i < T * N; i++) n_nan += isnan(want[i]);
        CHECK_MSG(n_nan > 0 && n_nan < T * N, "%s with NaN weights: %d of %d outputs NaN", fp4rt_wfmt_name(fmt), n_nan,
                  T * N);
    }
    free(want), free(x), free(q), free(c.w), free(c.sb);
}

static void check_case(fp4rt_wfmt fmt, int dyn, int N, int K, int T) { check_case_nan(fmt, dyn, N, K, T, 0); }

/* The tile kernels of both modes against chains summed in scalar code, value
 * by value. */
static void test_kernels_direct(void) {
    const int K = 80, T = 7;
    float *w = malloc(sizeof(float) * FP4RT_TILE_ROWS * K), *xs = malloc(sizeof(float) * T * K);
    float acc[FP4RT_TILE_ROWS * FP4RT_TILE_TOKENS_MAX * 16];
    for (int i = 0; i < FP4RT_TILE_ROWS * K; i++) w[i] = frand();
    for (int i = 0; i < T * K; i++) xs[i] = frand() * 1e3f;
    CHECK(!fp4rt_cpu_tile_kernel_for(FP4RT_CPU_ISA_C, 0).fn); /* the C build takes the per-row path */
    CHECK(!fp4rt_cpu_tile_kernel_for(FP4RT_CPU_ISA_C, 1).fn);
    for (int isa = FP4RT_CPU_ISA_AVX2; isa <= fp4rt_cpu_isa_supported(); isa++)
    for (int relaxed = 0; relaxed <= 1; relaxed++) {
        fp4rt_cpu_tile_kernel kern = fp4rt_cpu_tile_kernel_for(isa, relaxed);
        CHECK_MSG(kern.fn && kern.t_max >= 1 && kern.t_max <= FP4RT_TILE_TOKENS_MAX, "%s: no tile kernel",
                  fp4rt_cpu_isa_name(isa));
        if (!kern.fn) continue;
        for (int n = 1; n <= kern.t_max; n++) {
            const float *x[FP4RT_TILE_TOKENS_MAX];
            for (int t = 0; t < n; t++) x[t] = xs + (size_t)t * K;
            kern.fn(w, K, 0, 32, x, n, acc, 0); /* in two ranges: the chains carry over */
            kern.fn(w, K, 32, K & ~15, x, n, acc, 1);
            int ok = 1;
            for (int r = 0; r < FP4RT_TILE_ROWS; r++)
                for (int t = 0; t < n; t++)
                    for (int j = 0; j < 16; j++) {
                        float chain = 0;
                        for (int k = j; k < K; k += 16)
                            chain = relaxed ? fmaf(w[r * K + k], x[t][k], chain) : chain + w[r * K + k] * x[t][k];
                        ok &= !memcmp(&chain, &acc[(r * n + t) * 16 + j], 4);
                    }
            CHECK_MSG(ok, "%s tile kernel (%s), %d tokens: a chain differs from the scalar sum", fp4rt_cpu_isa_name(isa),
                      relaxed ? "relaxed" : "exact", n);
        }
    }
    free(w), free(xs);
}

int main(void) {
    fp4rt_numfmt_init();
    printf("cpu_tile: kernels up to %s\n", fp4rt_cpu_isa_name(fp4rt_cpu_isa_supported()));
    test_kernels_direct();
    /* rows: 1, 5, 13 (last panel partial), 67; tokens 2 .. 13 around 2, 4 and 6
     * tokens per call; K: 16, 80 (not of 64), 37 / 100 (not of 16) */
    const int ns[] = {1, 5, 13, 67}, ts[] = {2, 3, 7, 13};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 4; b++) {
            int N = ns[a], T = ts[b];
            check_case(FP4RT_W_NVFP4, 0, N, 80, T);
            check_case(FP4RT_W_NVFP4_W4A4, 0, N, 16, T);
            check_case(FP4RT_W_NVFP4_W4A4, 1, N, 80, T);
            check_case(FP4RT_W_FP8, 0, N, 100, T);
            check_case(FP4RT_W_FP8, 0, N, 80, T);
            check_case(FP4RT_W_BF16, 0, N, 37, T);
            check_case(FP4RT_W_BF16, 0, N, 80, T);
            check_case(FP4RT_W_F16, 0, N, 100, T);
            check_case(FP4RT_W_F32, 0, N, 37, T);
        }
    /* long rows (k-segments of 1024: 1040 = 1024 + 16, 2100 = 2 x 1024 + 52)
     * and token counts that split into blocks (K * 4 bytes * 70 tokens > the
     * 256 KiB block; 300 tokens > 256 per block) */
    check_case(FP4RT_W_NVFP4, 0, 9, 1040, 70);
    check_case(FP4RT_W_BF16, 0, 6, 2100, 70);
    check_case(FP4RT_W_FP8, 0, 5, 2100, 33);
    check_case(FP4RT_W_NVFP4_W4A4, 1, 7, 2064, 19);
    check_case(FP4RT_W_NVFP4, 0, 5, 32, 300);
    /* the small-step path (AVX-512, 1 .. 6 tokens: decode and verify steps),
     * at the reference model's K = 256 and 768, rows not of 4, every token count */
    for (int T = 1; T <= 6; T++) {
        check_case(FP4RT_W_BF16, 0, 13, 256, T);
        check_case(FP4RT_W_BF16, 0, 70, 768, T);
        check_case(FP4RT_W_NVFP4, 0, 13, 256, T);
        check_case(FP4RT_W_NVFP4_W4A4, 1, 9, 768, T);
        check_case(FP4RT_W_NVFP4_W4A4, 0, 6, 256, T);
        check_case(FP4RT_W_FP8, 0, 13, 256, T);
        check_case(FP4RT_W_FP8, 0, 70, 768, T);
        check_case_nan(FP4RT_W_FP8, 0, 13, 256, T, 1);
        check_case_nan(FP4RT_W_FP8, 0, 13, 80, T, 1); /* the last NaN in a row's last 16 codes */
    }
    /* NVFP4 special values on the small-step path, both decoders: every
     * scale code, zero codes 0 / 8 in whole blocks, NaN scales 0x7f / 0xff
     * (E4M3 has no infinity) */
    for (int T = 1; T <= 6; T++) {
        check_case_nan(FP4RT_W_NVFP4, 0, 21, 256, T, 2);
        check_case_nan(FP4RT_W_NVFP4, 0, 21, 256, T, 7);
        check_case_nan(FP4RT_W_NVFP4_W4A4, 0, 21, 256, T, 2);
        check_case_nan(FP4RT_W_NVFP4_W4A4, 1, 21, 256, T, 7);
    }
    check_case(FP4RT_W_F32, 0, 3, 8, 9); /* K < 16: the tail alone */
    /* every token count 1 .. 8 (one-row, small-step and tiled paths), every format */
    for (int T = 1; T <= 8; T++) {
        check_case(FP4RT_W_BF16, 0, 9, 272, T);
        check_case(FP4RT_W_F16, 0, 9, 272, T);
        check_case(FP4RT_W_F32, 0, 9, 101, T);
        check_case(FP4RT_W_FP8, 0, 9, 272, T);
        check_case(FP4RT_W_NVFP4, 0, 9, 272, T);
        check_case(FP4RT_W_NVFP4_W4A4, 0, 9, 272, T);
        check_case(FP4RT_W_NVFP4_W4A4, 1, 9, 272, T);
    }
    /* NaN weights (E4M3 0x7f / 0xff) and a NaN block scale: NaN outputs, as on
     * the per-row path (fp4rt run reports NaN logits at the prefill step) */
    check_case_nan(FP4RT_W_FP8, 0, 13, 80, 7, 1);
    check_case_nan(FP4RT_W_NVFP4, 0, 13, 80, 7, 1);
    /* the modes: the same bits where every product is exact in FP32 (FP8 and
     * W4A4 activations and weights have at most 6 significant bits), else
     * different in a good share of the outputs (the flag reaches the kernels) */
    const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_F16, FP4RT_W_F32, FP4RT_W_FP8, FP4RT_W_NVFP4, FP4RT_W_NVFP4_W4A4};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        fp4rt_wfmt f = fmts[i];
        long d = g_differ[f], n = g_compared[f];
        int exact_products = f == FP4RT_W_FP8 || f == FP4RT_W_NVFP4_W4A4;
        printf("cpu_tile: %s: relaxed differs from exact in %ld of %ld outputs\n", fp4rt_wfmt_name(f), d, n);
        CHECK_MSG(n > 0 && (exact_products ? d == 0 : d * 10 > n), "%s: relaxed differs from exact in %ld of %ld",
                  fp4rt_wfmt_name(f), d, n);
    }
    int vbmi = fp4rt_cpu_small_vbmi(-1), other = fp4rt_cpu_small_vbmi(!vbmi) != vbmi;
    fp4rt_cpu_small_vbmi(vbmi);
    printf("cpu_tile: small-step NVFP4 decoder %s; the other one ran %ld cases\n", vbmi ? "VBMI" : "AVX-512F",
           g_small_other);
    CHECK_MSG(!other || g_small_other > 0, "the small-step path's second NVFP4 decoder never ran");
    return test_summary("cpu_tile");
}
