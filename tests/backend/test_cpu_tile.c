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
 * NaN weights give NaN outputs on every path. */
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

/* nan: a few weights (FP8) or block scales (NVFP4) are the E4M3 NaN codes */
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
        if (nan) c->sb[n / 32] = 0x7f;
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

/* The expected output of row t, column n: the one-row kernel on the row as
 * fp4rt_cpu_linear quantizes it. */
static float expect(const fp4rt_linear *l, const float *x, int n, float *q) {
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
    return fp4rt_cpu_row_dot(l, n, in) * post;
}

/* Runs fp4rt_cpu_linear on T tokens with the given threads / ISA / path and
 * compares every output bit for bit with the expected values. */
static int run_one(const lin_case *c, int T, int threads, int isa, int tiled, const float *want) {
    int N = c->l.n_out, K = c->l.n_in;
    /* arena: [x (K) | gap 1 | y (N) | gap 1] per token */
    int offs[2] = {0, K + 1}, widths[2] = {K, N};
    fp4rt_program p = {.n_bufs = 2, .buf_width = widths, .buf_offset = offs, .arena_width = K + N + 2};
    fp4rt_step step = {.n_tokens = T};
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

static void check_case_nan(fp4rt_wfmt fmt, int dyn, int N, int K, int T, int nan) {
    lin_case c;
    make(&c, fmt, N, K, dyn, nan);
    float *want = malloc(sizeof(float) * (size_t)T * N), *x = malloc(sizeof(float) * K), *q = malloc(sizeof(float) * K);
    g_rng = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < K; k++) x[k] = 3.0f * frand();
        for (int n = 0; n < N; n++) want[(size_t)t * N + n] = expect(&c.l, x, n, q);
    }
    int best = fp4rt_cpu_isa_supported();
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_MSG(run_one(&c, T, threads, best, 0, want), "%s%s N=%d K=%d T=%d threads=%d: per-row path differs",
                  fp4rt_wfmt_name(fmt), dyn ? " (dynamic)" : "", N, K, T, threads);
        for (int isa = FP4RT_CPU_ISA_C; isa <= best; isa++)
            CHECK_MSG(run_one(&c, T, threads, isa, 1, want), "%s%s N=%d K=%d T=%d threads=%d: %s tiles differ",
                      fp4rt_wfmt_name(fmt), dyn ? " (dynamic)" : "", N, K, T, threads, fp4rt_cpu_isa_name(isa));
    }
    if (nan) {
        int n_nan = 0;
        for (int i = 0; i < T * N; i++) n_nan += isnan(want[i]);
        CHECK_MSG(n_nan > 0 && n_nan < T * N, "%s with NaN weights: %d of %d outputs NaN", fp4rt_wfmt_name(fmt), n_nan,
                  T * N);
    }
    free(want), free(x), free(q), free(c.w), free(c.sb);
}

static void check_case(fp4rt_wfmt fmt, int dyn, int N, int K, int T) { check_case_nan(fmt, dyn, N, K, T, 0); }

/* The tile kernels against chains summed in scalar code, value by value. */
static void test_kernels_direct(void) {
    const int K = 80, T = 7;
    float *w = malloc(sizeof(float) * FP4RT_TILE_ROWS * K), *xs = malloc(sizeof(float) * T * K);
    float acc[FP4RT_TILE_ROWS * FP4RT_TILE_TOKENS_MAX * 16];
    for (int i = 0; i < FP4RT_TILE_ROWS * K; i++) w[i] = frand();
    for (int i = 0; i < T * K; i++) xs[i] = frand() * 1e3f;
    CHECK(!fp4rt_cpu_tile_kernel_for(FP4RT_CPU_ISA_C).fn); /* the C build takes the per-row path */
    for (int isa = FP4RT_CPU_ISA_AVX2; isa <= fp4rt_cpu_isa_supported(); isa++) {
        fp4rt_cpu_tile_kernel kern = fp4rt_cpu_tile_kernel_for(isa);
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
                        for (int k = j; k < K; k += 16) chain += w[r * K + k] * x[t][k];
                        ok &= !memcmp(&chain, &acc[(r * n + t) * 16 + j], 4);
                    }
            CHECK_MSG(ok, "%s tile kernel, %d tokens: a chain differs from the scalar sum", fp4rt_cpu_isa_name(isa), n);
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
    check_case(FP4RT_W_F32, 0, 3, 8, 9); /* K < 16: the tail alone */
    /* NaN weights (E4M3 0x7f / 0xff) and a NaN block scale: NaN outputs, as on
     * the per-row path (fp4rt run reports NaN logits at the prefill step) */
    check_case_nan(FP4RT_W_FP8, 0, 13, 80, 7, 1);
    check_case_nan(FP4RT_W_NVFP4, 0, 13, 80, 7, 1);
    return test_summary("cpu_tile");
}
