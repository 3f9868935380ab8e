/* The AMX path of BF16 linears in the default numerics mode
 * (runtime/backend/cpu/cpu_linear_amx.c; docs/NUMERICS.md "Modes"). Exit 77
 * (skipped) where the CPU or OS has no AMX-BF16.
 *
 * - Accuracy: every output within 1e-6 x sum_k |w x| of the float64 sum (the
 *   hi / mid / lo split is exact for normal activations; then FP32 sums).
 * - One path for every T: each output's bits are the same whether its token
 *   is computed alone (decode), in the first T = 1 .. 70 tokens of a batch
 *   (verify steps, prefill, several column tiles), on 1 or 2 threads.
 * - Tails: n_out % 16 != 0 (and n_out < 16), n_in % 32 != 0 (odd too); no
 *   write outside the outputs (sentinels).
 * - Special values: inf and NaN activations give the exact mode's inf / NaN
 *   pattern; the largest finite float (whose BF16 rounding overflows) stays
 *   finite and accurate; subnormal activations read as zero (a row of them
 *   gives +-0).
 * - The path is taken only where it must be: the exact mode and the other
 *   formats (F16, FP8 W8A8) give the same bits with ctx->amx on and off, and
 *   the exact mode gives the contract's one-row kernel's bits; and it is
 *   taken (the default mode's BF16 bits differ from the FMA path's).
 * - The knobs: FP4RT_CPU_AMX=0, FP4RT_CPU_LINEAR=rows and FP4RT_CPU_ISA=avx2
 *   each turn it off; the device line says "amx" when it is on. */
#include "tests/test_util.h"

#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/env.h"
#include "runtime/base/numfmt.h"

#include <float.h>
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
static float frand(void) {
    return (float)(rnd() & 0xffffff) / 8388608.0f - 1.0f;
} /* [-1, 1) */

#define SENTINEL 12345.25f
#define TMAX 70

typedef struct lin {
    fp4rt_linear l;
    void *w;
} lin;

static void make(lin *c, fp4rt_wfmt fmt, int N, int K) {
    size_t n = (size_t)N * K;
    c->l =
        (fp4rt_linear){.module = "test", .fmt = fmt, .n_out = N, .n_in = K, .weight_scale = 1.0f};
    if (fmt == FP4RT_W_FP8) {
        uint8_t *b = malloc(n);
        for (size_t i = 0; i < n; i++)
            do
                b[i] = (uint8_t)rnd();
            while ((b[i] & 0x7f) == 0x7f);
        c->w = b;
        c->l.weight_scale = 0.0173f;
        c->l.input_scale = 0.031f;
    } else {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++)
            h[i] = fmt == FP4RT_W_BF16 ? fp4rt_f32_to_bf16(frand()) : fp4rt_f32_to_f16(frand());
        c->w = h;
    }
    c->l.weight = c->w;
}

static float weight(const lin *c, int n, int k) {
    uint16_t h = ((const uint16_t *)c->w)[(size_t)n * c->l.n_in + k];
    return fp4rt_bf16_to_f32(h);
}

/* fp4rt_cpu_linear on the first T rows of x ([TMAX][K]) with the given
 * threads, mode and AMX switch; y[T][N]. Returns 0 when a sentinel beside
 * the outputs changed or the call failed. */
static int run(const lin *c, const float *x, int T, int threads, int relaxed, int amx, float *y) {
    int N = c->l.n_out, K = c->l.n_in;
    int offs[2] = {0, K + 1}, widths[2] = {K, N};
    fp4rt_program p = {
        .n_bufs = 2, .buf_width = widths, .buf_offset = offs, .arena_width = K + N + 2};
    fp4rt_step step = {.n_tokens = T, .relaxed = relaxed};
    float *arena = malloc(sizeof(float) * (size_t)T * p.arena_width);
    for (int t = 0; t < T; t++) {
        float *r = arena + (size_t)t * p.arena_width;
        memcpy(r, x + (size_t)t * K, sizeof(float) * K);
        for (int i = K; i < p.arena_width; i++)
            r[i] = SENTINEL;
    }
    void *vctx;
    if (fp4rt_backend_cpu.create(threads, &vctx)) return 0;
    cpu_ctx *ctx = vctx;
    ctx->amx = amx;
    cpu_step s = {.ctx = ctx, .p = &p, .step = &step, .arena = arena};
    fp4rt_op op = {.kind = FP4RT_OP_LINEAR, .x = {0, 0, K}, .y = {1, 0, N}, .lin = &c->l};
    int ok = fp4rt_cpu_linear(&s, &op) == FP4RT_OK;
    for (int t = 0; t < T && ok; t++) {
        const float *r = arena + (size_t)t * p.arena_width;
        ok &= r[K] == SENTINEL && r[K + 1 + N] == SENTINEL;
        memcpy(y + (size_t)t * N, r + K + 1, sizeof(float) * N);
    }
    fp4rt_backend_cpu.destroy(vctx);
    free(arena);
    return ok;
}

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static double g_worst; /* the largest |error| / sum |w x| seen */

/* One shape: accuracy, and the same bits for every T, alone and batched, 1 and 2 threads. */
static void check_shape(int N, int K) {
    lin c;
    make(&c, FP4RT_W_BF16, N, K);
    float *x = malloc(sizeof(float) * TMAX * K), *full = malloc(sizeof(float) * TMAX * N),
          *y = malloc(sizeof(float) * TMAX * N), *one = malloc(sizeof(float) * N);
    for (int i = 0; i < TMAX * K; i++)
        x[i] = 3.0f * frand() * (rnd() % 8 == 0 ? 100.0f : 1.0f);
    CHECK_MSG(run(&c, x, TMAX, 1, 1, 1, full), "%dx%d: T=%d failed or wrote past the outputs", N, K,
              TMAX);
    int bad = 0;
    for (int t = 0; t < TMAX; t++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)weight(&c, n, k) * x[(size_t)t * K + k];
                ref += p, mag += fabs(p);
            }
            double err = fabs(full[(size_t)t * N + n] - ref);
            if (mag > 0 && err / mag > g_worst) g_worst = err / mag;
            bad += !(err <= 1e-6 * mag);
        }
    CHECK_MSG(bad == 0, "%dx%d: %d outputs off the float64 sum by more than 1e-6 sum|wx|", N, K,
              bad);
    CHECK_MSG(run(&c, x, TMAX, 2, 1, 1, y) && same_bits(y, full, (size_t)TMAX * N),
              "%dx%d: 2 threads differ", N, K);
    int differ = 0;
    for (int T = 1; T < TMAX; T++) { /* the first T tokens as one step */
        int ok = run(&c, x, T, 1 + (T & 1), 1, 1, y);
        differ += !ok || !same_bits(y, full, (size_t)T * N);
    }
    for (int t = 0; t < TMAX; t++) { /* each token alone, as decode */
        int ok = run(&c, x + (size_t)t * K, 1, 1 + (t & 1), 1, 1, one);
        differ += !ok || !same_bits(one, full + (size_t)t * N, (size_t)N);
    }
    CHECK_MSG(differ == 0, "%dx%d: %d steps of other sizes gave other bits", N, K, differ);
    /* it is the AMX path: the FMA path's bits differ somewhere */
    CHECK_MSG(run(&c, x, TMAX, 1, 1, 0, y) && !same_bits(y, full, (size_t)TMAX * N),
              "%dx%d: AMX gave the FMA bits", N, K);
    free(x), free(full), free(y), free(one), free(c.w);
}

/* inf, NaN, the largest finite float and subnormals among the activations. */
static void check_special(void) {
    int N = 24, K = 64;
    lin c;
    make(&c, FP4RT_W_BF16, N, K);
    float x[6 * 64], y[6 * 24], e[6 * 24];
    for (int i = 0; i < 6 * K; i++)
        x[i] = frand();
    x[0 * K + 5] = INFINITY;
    x[1 * K + 9] = NAN;
    x[2 * K + 3] = -INFINITY,
              x[2 * K + 40] = INFINITY; /* inf - inf where both weights are nonzero: NaN */
    x[3 * K + 7] =
        FLT_MAX; /* its BF16 rounding overflows; its weights |w| < 1/2 keep the sums finite */
    for (int n = 0; n < N; n++)
        ((uint16_t *)c.w)[(size_t)n * K + 7] = fp4rt_f32_to_bf16(0.5f * frand());
    x[4 * K + 11] = 1e-40f, x[4 * K + 12] = -3e-39f; /* subnormals among normal values */
    for (int k = 0; k < K; k++)
        x[5 * K + k] = (k & 1 ? -1 : 1) * 1e-39f * (float)(1 + k % 7); /* all subnormal */
    CHECK(run(&c, x, 6, 2, 1, 1, y));
    CHECK(run(&c, x, 6, 1, 0, 0, e)); /* the exact mode */
    int bad = 0;
    for (int t = 0; t < 3; t++)
        for (int n = 0; n < N; n++) {
            float a = y[t * N + n], b = e[t * N + n];
            bad += isnan(a) != isnan(b) || (isinf(b) && a != b) || (!isnan(b) && !isinf(b));
        }
    CHECK_MSG(bad == 0, "inf / NaN activations: %d outputs unlike the exact mode's", bad);
    bad = 0;
    for (int t = 3; t < 5; t++)
        for (int n = 0; n < N; n++) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)weight(&c, n, k) * x[t * K + k];
                ref += p, mag += fabs(p);
            }
            bad += !isfinite(y[t * N + n]) || !(fabs(y[t * N + n] - ref) <= 1e-6 * mag);
        }
    CHECK_MSG(bad == 0, "FLT_MAX / subnormal activations: %d outputs off", bad);
    bad = 0;
    for (int n = 0; n < N; n++)
        bad += y[5 * N + n] != 0.0f;
    CHECK_MSG(
        bad == 0,
        "a row of subnormal activations: %d outputs not zero (the tile unit reads them as zero)",
        bad);
    free(c.w);
}

/* Where AMX must not run: the exact mode (the contract's one-row bits) and
 * other formats in the default mode (the same bits with AMX on and off). */
static void check_not_taken(void) {
    int N = 33, K = 96, T = 9;
    float *x = malloc(sizeof(float) * TMAX * K), y[9 * 33], z[9 * 33];
    for (int i = 0; i < T * K; i++)
        x[i] = 2.0f * frand();
    lin c;
    make(&c, FP4RT_W_BF16, N, K);
    CHECK(run(&c, x, T, 2, 0, 1, y));
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            float r = fp4rt_cpu_row_dot(&c.l, n, x + t * K, 0);
            bad += memcmp(&r, &y[t * N + n], 4) != 0;
        }
    CHECK_MSG(bad == 0, "exact mode with AMX on: %d outputs not the one-row kernel's bits", bad);
    free(c.w);
    const fp4rt_wfmt other[] = {FP4RT_W_F16, FP4RT_W_FP8};
    for (int f = 0; f < 2; f++) {
        make(&c, other[f], N, K);
        CHECK_MSG(run(&c, x, T, 2, 1, 1, y) && run(&c, x, T, 2, 1, 0, z) &&
                      same_bits(y, z, (size_t)T * N),
                  "%s in the default mode: AMX on changed the bits", fp4rt_wfmt_name(other[f]));
        free(c.w);
    }
    free(x);
}

/* ctx->amx after create, with one knob set. */
static int amx_with(const char *name, const char *value, char *desc, size_t n) {
    if (name) setenv(name, value, 1);
    fp4rt_env_reload();
    void *vctx;
    int on = -1;
    if (!fp4rt_backend_cpu.create(1, &vctx)) {
        on = ((cpu_ctx *)vctx)->amx;
        if (desc) fp4rt_backend_cpu.describe(vctx, desc, n);
        fp4rt_backend_cpu.destroy(vctx);
    }
    if (name) unsetenv(name);
    fp4rt_env_reload();
    return on;
}

static void check_knobs(void) {
    char desc[256] = "";
    unsetenv("FP4RT_CPU_AMX"), unsetenv("FP4RT_CPU_LINEAR"), unsetenv("FP4RT_CPU_ISA");
    CHECK_EQ_INT(amx_with(NULL, NULL, desc, sizeof desc), 1);
    CHECK_MSG(strstr(desc, "amx") != NULL, "device line without amx: %s", desc);
    CHECK_EQ_INT(amx_with("FP4RT_CPU_AMX", "0", desc, sizeof desc), 0);
    CHECK_MSG(strstr(desc, "amx") == NULL, "device line says amx with it off: %s", desc);
    CHECK_EQ_INT(amx_with("FP4RT_CPU_AMX", "1", NULL, 0), 1);
    CHECK_EQ_INT(amx_with("FP4RT_CPU_LINEAR", "rows", NULL, 0), 0);
    CHECK_EQ_INT(amx_with("FP4RT_CPU_ISA", "avx2", NULL, 0), 0);
    CHECK_EQ_INT(amx_with("FP4RT_CPU_ISA", "avx512", NULL, 0), 1);
}

/* The split itself: hi + mid + lo = x, the overflow and non-finite cases. */
static void check_split(void) {
    float x[] = {1.0f, 1.00390625f + 1e-6f, -3.14159265f, FLT_MAX, -FLT_MAX, INFINITY, NAN, 1e-40f,
                 0.0f};
    int n = (int)(sizeof x / sizeof x[0]);
    uint16_t hi[16], mid[16], lo[16];
    fp4rt_cpu_amx_split(x, n, hi, mid, lo);
    for (int i = 0; i < 3; i++) { /* hi + mid + lo is x (24 significant bits = 3 x 8) */
        double s =
            (double)fp4rt_bf16_to_f32(hi[i]) + fp4rt_bf16_to_f32(mid[i]) + fp4rt_bf16_to_f32(lo[i]);
        CHECK_MSG(s == x[i], "split of %.9g: %.9g", x[i], s);
        CHECK_EQ_INT(hi[i], fp4rt_f32_to_bf16(x[i])); /* hi is the RNE BF16 */
    }
    CHECK_EQ_INT(hi[3], 0x7f7f); /* the truncated hi, not inf */
    CHECK_EQ_INT(hi[4], 0xff7f);
    CHECK((double)fp4rt_bf16_to_f32(hi[3]) + fp4rt_bf16_to_f32(mid[3]) + fp4rt_bf16_to_f32(lo[3]) ==
          FLT_MAX);
    CHECK(isinf(fp4rt_bf16_to_f32(hi[5])) && mid[5] == 0 && lo[5] == 0);
    CHECK(isnan(fp4rt_bf16_to_f32(hi[6])) && mid[6] == 0 && lo[6] == 0);
    CHECK(fp4rt_bf16_to_f32(hi[7]) == 0 && fp4rt_bf16_to_f32(mid[7]) == 0 &&
          fp4rt_bf16_to_f32(lo[7]) == 0);
    CHECK(hi[8] == 0 && mid[8] == 0 && lo[8] == 0);
}

int main(void) {
    fp4rt_numfmt_init();
    if (!fp4rt_cpu_amx_available() || fp4rt_cpu_isa_supported() < FP4RT_CPU_ISA_AVX512) {
        printf("test_cpu_amx: skipped (no AMX-BF16 on this CPU / OS)\n");
        return 77;
    }
    check_split();
    const int shapes[][2] = {{48, 64}, {40, 96},  {37, 77},  {5, 32},
                             {16, 33}, {50, 200}, {70, 1024}};
    int n_shapes = test_short() ? 4 : (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < n_shapes; i++)
        check_shape(shapes[i][0], shapes[i][1]);
    printf("test_cpu_amx: largest error %.3g x sum|wx|\n", g_worst);
    check_special();
    check_not_taken();
    check_knobs();
    return test_summary("test_cpu_amx");
}
