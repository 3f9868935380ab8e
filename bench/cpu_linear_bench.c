/* CPU prefill linear: op-level timing of the per-row path against the tiled
 * path on each instruction set (issue 14), on the qwen3.5-0.8b shapes.
 *
 * usage: cpu_linear_bench [--tokens T] [--threads N] [--rounds R] [--shape NxK]
 *                         [--mode exact|relaxed|both]
 * For each format (BF16, FP8 W8A8, NVFP4 W4A16, NVFP4 W4A4) and shape (the
 * 0.8B's MLP up, down and GDN qkv projections, or the one given), every
 * round runs each variant once (rows, tiled avx2, tiled avx512: those
 * the CPU has; amx: BF16 in the relaxed mode, where the CPU has AMX;
 * tiled-512-novbmi: with VBMI and at most FP4RT_SMALL_TOKENS_MAX tokens, NVFP4
 * on the small-step path with the AVX-512F decoder) in each numerics mode
 * asked (exact, relaxed: the default mode's FMA chains; default both),
 * interleaved so the machine's load hits them alike; prints the median wall
 * time per call, GMAC/s, the process CPU seconds per call and the weight
 * bytes read per second (wGB/s: NVFP4 counts its block scales). All variants of one mode are compared bit for bit (the
 * contract; amx with itself across rounds: its sums are its own); a
 * difference exits 1. */
#include "runtime/backend/cpu/cpu_ops.h"
#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float frand(void) { return (float)(rnd() & 0xffffff) / 8388608.0f - 1.0f; }

static double now(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct variant {
    const char *name;
    int tiled, isa, relaxed, amx;
    int f_decode; /* 1: NVFP4 on the small-step path with the AVX-512F decoder, not VBMI */
    double wall[64], cpu[64];
} variant;

static void make_linear(fp4rt_linear *l, fp4rt_wfmt fmt, int N, int K, void **w, uint8_t **sb) {
    size_t n = (size_t)N * K;
    *l = (fp4rt_linear){.module = "bench", .fmt = fmt, .n_out = N, .n_in = K, .weight_scale = 0.01f};
    *sb = NULL;
    if (fmt == FP4RT_W_BF16) {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = fp4rt_f32_to_bf16(frand());
        *w = h;
    } else if (fmt == FP4RT_W_FP8) {
        uint8_t *b = malloc(n);
        for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(rnd() % 0x7e) | (uint8_t)(rnd() & 0x80);
        *w = b;
        l->input_scale = 0.02f;
    } else {
        uint8_t *b = malloc(n / 2);
        for (size_t i = 0; i < n / 2; i++) b[i] = (uint8_t)rnd();
        *sb = malloc(n / 16);
        for (size_t i = 0; i < n / 16; i++) (*sb)[i] = (uint8_t)(40 + rnd() % 40);
        *w = b;
        if (fmt == FP4RT_W_NVFP4_W4A4) l->input_scale = 0.003f;
    }
    l->weight = *w;
    l->block_scale = *sb;
}

int main(int argc, char **argv) {
    int T = 64, threads = 2, rounds = 7, n_shapes = 3, mode_lo = 0, mode_hi = 1;
    int shapes[3][2] = {{3584, 1024}, {1024, 3584}, {6144, 1024}}; /* N, K: MLP up, down, GDN qkv */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shape")) {
            if (sscanf(argv[i + 1], "%dx%d", &shapes[0][0], &shapes[0][1]) != 2 || shapes[0][0] < 1 ||
                shapes[0][1] < 16 || shapes[0][1] % 16) {
                fprintf(stderr, "cpu_linear_bench: --shape %s: want NxK, K a multiple of 16\n", argv[i + 1]);
                return 2;
            }
            n_shapes = 1;
        } else if (!strcmp(argv[i], "--mode")) {
            const char *m = argv[i + 1];
            if (!strcmp(m, "exact")) mode_lo = mode_hi = 0;
            else if (!strcmp(m, "relaxed")) mode_lo = mode_hi = 1;
            else if (!strcmp(m, "both")) mode_lo = 0, mode_hi = 1;
            else {
                fprintf(stderr, "cpu_linear_bench: --mode %s: want exact, relaxed or both\n", m);
                return 2;
            }
        } else {
            fprintf(stderr, "cpu_linear_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (T < 1 || threads < 1 || rounds < 1 || rounds > 64) {
        fprintf(stderr, "cpu_linear_bench: --tokens, --threads >= 1, --rounds 1..64\n");
        return 2;
    }
    fp4rt_numfmt_init();
    int best = fp4rt_cpu_isa_supported();
    const variant kinds[] = {{.name = "rows", .tiled = 0, .isa = best},
                             {.name = "tiled-avx2", .tiled = 1, .isa = FP4RT_CPU_ISA_AVX2},
                             {.name = "tiled-avx512", .tiled = 1, .isa = FP4RT_CPU_ISA_AVX512},
                             {.name = "amx", .tiled = 1, .isa = FP4RT_CPU_ISA_AVX512, .amx = 1},
                             {.name = "tiled-512-novbmi", .tiled = 1, .isa = FP4RT_CPU_ISA_AVX512, .f_decode = 1}};
    int nk = best == FP4RT_CPU_ISA_AVX512 ? 3 : best == FP4RT_CPU_ISA_AVX2 ? 2 : 1, nv = 0;
    int vbmi = fp4rt_cpu_small_vbmi(-1);
    variant vars[10];
    for (int m = mode_lo; m <= mode_hi; m++) {
        for (int k = 0; k < nk + (m == 1 && nk == 3 && fp4rt_cpu_amx_available()); k++) {
            vars[nv] = kinds[k];
            vars[nv++].relaxed = m;
        }
        if (nk == 3 && vbmi && T <= FP4RT_SMALL_TOKENS_MAX) {
            vars[nv] = kinds[4];
            vars[nv++].relaxed = m;
        }
    }
    const fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_FP8, FP4RT_W_NVFP4, FP4RT_W_NVFP4_W4A4};
    printf("cpu_linear_bench: %d tokens, %d threads, %d rounds, best ISA %s\n", T, threads, rounds,
           fp4rt_cpu_isa_name(best));
    printf("%-12s %-11s %-16s %-8s %10s %8s %10s %8s\n", "format", "N x K", "variant", "mode", "ms/call", "GMAC/s",
           "cpu ms", "wGB/s");
    void *vctx;
    if (fp4rt_backend_cpu.create(threads, &vctx)) return 1;
    cpu_ctx *ctx = vctx;
    int bad = 0;
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++)
        for (int sh = 0; sh < n_shapes; sh++) {
            int N = shapes[sh][0], K = shapes[sh][1];
            fp4rt_linear l;
            void *w;
            uint8_t *sb;
            make_linear(&l, fmts[f], N, K, &w, &sb);
            int offs[2] = {0, K}, widths[2] = {K, N};
            fp4rt_program p = {.n_bufs = 2, .buf_width = widths, .buf_offset = offs, .arena_width = K + N};
            fp4rt_step step = {.n_tokens = T};
            float *arena = fp4rt_malloc_aligned(sizeof(float) * (size_t)T * p.arena_width, "bench arena");
            float *ref = malloc(sizeof(float) * 3 * (size_t)T * N); /* per mode, and AMX's own */
            for (size_t i = 0; i < (size_t)T * p.arena_width; i++) arena[i] = frand();
            cpu_step s = {.ctx = ctx, .p = &p, .step = &step, .arena = arena};
            fp4rt_op op = {.kind = FP4RT_OP_LINEAR, .x = {0, 0, K}, .y = {1, 0, N}, .lin = &l};
            for (int r = 0; r < rounds; r++)
                for (int v = 0; v < nv; v++) {
                    int nvfp4 = fmts[f] == FP4RT_W_NVFP4 || fmts[f] == FP4RT_W_NVFP4_W4A4;
                    if (vars[v].amx && fmts[f] != FP4RT_W_BF16) continue; /* BF16 only */
                    if (vars[v].f_decode && !nvfp4) continue;              /* NVFP4 only */
                    fp4rt_cpu_small_vbmi(vars[v].f_decode ? 0 : vbmi);
                    ctx->amx = vars[v].amx;
                    ctx->tiled = vars[v].tiled;
                    ctx->isa = vars[v].isa;
                    step.relaxed = vars[v].relaxed;
                    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
                    if (fp4rt_cpu_linear(&s, &op)) return 1;
                    vars[v].wall[r] = now(CLOCK_MONOTONIC) - w0;
                    vars[v].cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
                    int slot = vars[v].amx ? 2 : vars[v].relaxed; /* AMX has its own sums (NUMERICS.md) */
                    float *mref = ref + (size_t)slot * T * N;
                    int first = r == 0 && (vars[v].amx || v == 0 || vars[v - 1].relaxed != vars[v].relaxed);
                    for (int t = 0; t < T; t++) {
                        float *y = arena + (size_t)t * p.arena_width + K;
                        if (first) memcpy(mref + (size_t)t * N, y, sizeof(float) * N);
                        else if (memcmp(mref + (size_t)t * N, y, sizeof(float) * N)) bad = 1;
                    }
                }
            double wbytes = fmts[f] == FP4RT_W_BF16 ? 2.0 * N * K : fmts[f] == FP4RT_W_FP8 ? (double)N * K : 0.5625 * N * K;
            for (int v = 0; v < nv; v++) {
                if (vars[v].amx && fmts[f] != FP4RT_W_BF16) continue;
                if (vars[v].f_decode && fmts[f] != FP4RT_W_NVFP4 && fmts[f] != FP4RT_W_NVFP4_W4A4) continue;
                qsort(vars[v].wall, (size_t)rounds, sizeof(double), cmp_d);
                qsort(vars[v].cpu, (size_t)rounds, sizeof(double), cmp_d);
                double ms = 1e3 * vars[v].wall[rounds / 2];
                char shape[32];
                snprintf(shape, sizeof shape, "%dx%d", N, K);
                printf("%-12s %-11s %-16s %-8s %10.3f %8.2f %10.3f %8.2f\n", fp4rt_wfmt_name(fmts[f]), shape,
                       vars[v].name, vars[v].relaxed ? "relaxed" : "exact", ms, (double)N * K * T / (ms * 1e-3) / 1e9,
                       1e3 * vars[v].cpu[rounds / 2], wbytes / (ms * 1e-3) / 1e9);
            }
            fp4rt_free_aligned(arena);
            free(ref), free(w), free(sb);
        }
    fp4rt_backend_cpu.destroy(vctx);
    if (bad) fprintf(stderr, "cpu_linear_bench: the variants' outputs differ\n");
    return bad;
}
