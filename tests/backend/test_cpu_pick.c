/* The CPU backend's greedy pick and gate rows (runtime/backend/cpu/cpu_argmax.c,
 * cpu_silu_x86.c), on every instruction set this CPU runs:
 * - fp4rt_cpu_argmax_row against the greedy sampler (fp4rt_sampler_sample) on
 *   crafted rows: sizes around the vector widths, many ties, +-inf, all -inf,
 *   +-0, masked ids (an invalid id holding the largest value, NaN or +inf), a
 *   valid NaN (-1: the engine samples the row on the host), the maximum in the
 *   scalar tail; and the backend's argmax slot at an offset, with its bounds check;
 * - the SiLU and sigmoid rows of the gated norm and the attention output gate
 *   against the scalar fp4rt_csilu / fp4rt_csigmoid bit for bit (exp's edges). */
#include "tests/test_util.h"

#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/numfmt.h"
#include "runtime/text/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_x = 12345;
static uint64_t rnd(void) {
    g_x = g_x * 6364136223846793005ull + 1442695040888963407ull;
    return g_x >> 33;
}

/* The greedy sampler's pick of l (a copy: the sampler writes -inf to invalid ids). */
static int32_t sampler_pick(const float *l, int n, const uint8_t *valid) {
    fp4rt_sampling_resolved sp = {
        .greedy = 1, .temperature = 1, .top_p = 1, .repetition_penalty = 1};
    fp4rt_sampler smp;
    float *tmp = malloc((size_t)n * sizeof *tmp);
    int32_t id = -2;
    if (tmp && !fp4rt_sampler_init(&smp, &sp, n, valid)) {
        memcpy(tmp, l, (size_t)n * sizeof *tmp);
        id = fp4rt_sampler_sample(&smp, tmp);
        fp4rt_sampler_free(&smp);
    }
    free(tmp);
    return id;
}

/* A row of mode: 0 many ties, 1 spread, 2 +-inf among small values, 3 all -inf,
 * 4 +-0 only, 5 one maximum in the last element. */
static void fill(float *l, int n, int mode) {
    for (int i = 0; i < n; i++) {
        uint64_t r = rnd();
        switch (mode) {
        case 0:
            l[i] = (float)(r % 5) - 2.0f;
            break;
        case 1:
            l[i] = (float)(int64_t)(r % 2000001) * 1e-5f - 10.0f;
            break;
        case 2:
            l[i] = r % 7 == 0 ? INFINITY : r % 7 == 1 ? -INFINITY : (float)(r % 3);
            break;
        case 3:
            l[i] = -INFINITY;
            break;
        case 4:
            l[i] = r % 2 ? 0.0f : -0.0f;
            break;
        default:
            l[i] = i == n - 1 ? 5.0f : (float)(r % 100) * 0.01f;
            break;
        }
    }
}

static void test_argmax(void) {
    static const int sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1023, 8192, 8195};
    enum { NMAX = 8195 };
    float *l = malloc(NMAX * sizeof *l);
    uint8_t *valid = malloc(NMAX);
    int bad = 0, cases = 0, nan_cases = 0;
    int top = fp4rt_cpu_isa_supported();
    for (size_t s = 0; l && valid && s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        for (int mode = 0; mode < 6; mode++)
            for (int mask = 0; mask < 4; mask++) {
                fill(l, n, mode);
                /* mask 1: ~3/4 valid; 2: a few valid, an invalid id holds +inf; 3: mask 1 with
                 * a NaN at an invalid id (ignored) and, for n > 2, a NaN at a valid one */
                for (int i = 0; i < n; i++)
                    valid[i] = mask == 2 ? (uint8_t)(rnd() % 50 == 0) : (uint8_t)(rnd() % 4 != 0);
                int want_nan = 0;
                if (mask == 2 && n > 1) valid[n / 2] = 0, l[n / 2] = INFINITY;
                if (mask == 3) {
                    valid[0] = 0, l[0] = NAN;
                    if (n > 2) valid[n - 2] = 1, l[n - 2] = NAN, want_nan = 1;
                }
                const uint8_t *v = mask ? valid : NULL;
                int32_t want = want_nan ? -1 : sampler_pick(l, n, v);
                for (int isa = FP4RT_CPU_ISA_C; isa <= top; isa++) {
                    int32_t got = fp4rt_cpu_argmax_row(l, n, v, isa);
                    if (got != want && bad++ < 5)
                        printf("  argmax n=%d mode %d mask %d isa %s: %d, sampler %d\n", n, mode,
                               mask, fp4rt_cpu_isa_name(isa), got, want);
                    cases++;
                    nan_cases += want_nan;
                }
            }
    }
    CHECK_MSG(bad == 0, "%d of %d CPU argmax picks differ from the greedy sampler", bad, cases);
    CHECK(nan_cases > 0);
    printf("argmax: %d cases (%d with a valid NaN), %d instruction sets\n", cases, nan_cases,
           top + 1);

    /* the slot: an offset into a buffer, and a range past it */
    void *ctx = NULL;
    fp4rt_buffer *b = NULL;
    CHECK_EQ_INT(fp4rt_backend_cpu.create(1, &ctx), FP4RT_OK);
    if (ctx && !fp4rt_backend_cpu.buffer_alloc(ctx, 64 * sizeof(float), "logits", &b)) {
        float row[64];
        for (int i = 0; i < 64; i++)
            row[i] = (float)(i % 10);
        row[40] = 11.0f, row[50] = 12.0f;
        CHECK_EQ_INT(fp4rt_backend_cpu.buffer_upload(ctx, b, 0, row, sizeof row), FP4RT_OK);
        int32_t id = -2;
        CHECK_EQ_INT(fp4rt_backend_cpu.argmax(ctx, b, 16, 30, NULL, &id), FP4RT_OK);
        CHECK_EQ_INT(id, 24); /* row[40]: the largest of floats 16 .. 45 */
        CHECK_EQ_INT(fp4rt_backend_cpu.argmax(ctx, b, 16, 48, NULL, &id), FP4RT_OK);
        CHECK_EQ_INT(id, 34);
        CHECK_EQ_INT(fp4rt_backend_cpu.argmax(ctx, b, 16, 49, NULL, &id), FP4RT_INVALID_ARGUMENT);
        CHECK(strstr(fp4rt_last_error(), "argmax") != NULL);
        fp4rt_backend_cpu.buffer_free(ctx, b);
    }
    if (ctx) fp4rt_backend_cpu.destroy(ctx);
    free(l);
    free(valid);
}

static void test_gate_rows(void) {
    enum { N = 4099 };
    static const float edge[] = {0.0f,   -0.0f, 1.0f,    -1.0f,  87.0f,   -87.0f,   88.7f,
                                 -88.7f, 89.0f, -104.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY,
                                 NAN,    20.0f, -20.0f,  3e38f,  -3e38f};
    int ne = (int)(sizeof edge / sizeof edge[0]);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; x && i < N; i++)
        x[i] = i < ne ? edge[i]
                      : (float)(int64_t)(rnd() % 4000001) * (i % 2 ? 5e-5f : 5e-6f) -
                            (i % 2 ? 100.0f : 10.0f);
    for (int kind = 0; x && y && kind < 2; kind++) {
        const char *what = kind ? "sigmoid" : "silu";
        int ok = kind ? fp4rt_cpu_sigmoid_row_simd(x, y, N) : fp4rt_cpu_silu_row_simd(x, y, N);
        if (!ok) {
            printf("cpu_pick: no AVX2, the scalar %s only\n", what);
            continue;
        }
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float want = kind ? fp4rt_csigmoid(x[i]) : fp4rt_csilu(x[i]);
            int same = isnan(want) ? isnan(y[i]) : memcmp(&want, &y[i], 4) == 0;
            if (!same && bad++ < 5)
                printf("  %s(%.9g): %.9g, scalar %.9g\n", what, x[i], y[i], want);
        }
        CHECK_MSG(bad == 0, "AVX2 %s row: %d of %d values differ from the scalar", what, bad, N);
    }
    free(x);
    free(y);
}

int main(void) {
    fp4rt_numfmt_init();
    test_argmax();
    test_gate_rows();
    return test_summary("cpu_pick");
}
