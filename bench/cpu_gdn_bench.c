/* CPU GDN prefill ops: op-level timing of the chunked gated delta rule and the
 * conv1d + SiLU per instruction set (portable C, AVX2, AVX-512: those the CPU
 * has), one thread, on the qwen3.5-0.8b shapes (dk = dv = 128; conv channels
 * 2 * 2048 + 2048, kernel 4).
 *
 * usage: cpu_gdn_bench [--tokens T] [--rounds R]
 * Every round runs each variant once, interleaved so the machine's load hits
 * them alike; prints the median wall time per call (GDN: one value head of T
 * tokens; conv: all channels of T tokens) and the GDN's GFLOP/s (the chunked
 * form's multiply-adds, 2 FLOP each). Outputs are compared bit for bit with
 * the portable kernels; a difference exits 1. */
#include "runtime/backend/cpu/cpu_ops.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 16) & 0xffffff) / 8388608.0f - 1.0f;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int T = 64, rounds = 9;
    float gmin = -0.55f;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokens"))
            T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--gmin"))
            gmin = (float)atof(argv[i + 1]);
        else
            return fprintf(stderr, "cpu_gdn_bench: unknown option %s\n", argv[i]), 2;
    }
    if (T < 1 || rounds < 1 || rounds > 99)
        return fprintf(stderr, "cpu_gdn_bench: bad --tokens / --rounds\n"), 2;
    const int dk = 128, dv = 128, C = 6144, K = 4, n_isa = fp4rt_cpu_isa_supported() + 1;
    size_t width = 2 * (size_t)dk + dv;
    float *x = malloc(sizeof(float) * T * width), *beta = malloc(sizeof(float) * T),
          *g = malloc(sizeof(float) * T);
    float *ws = malloc(sizeof(float) * fp4rt_gdn_chunk_ws_floats(FP4RT_GDN_CHUNK, dk, dv));
    float *S0 = malloc(sizeof(float) * dk * dv), *S = malloc(sizeof(float) * dk * dv * 3);
    float *o = malloc(sizeof(float) * T * dv * 3);
    float *cx = malloc(sizeof(float) * T * C), *cw = malloc(sizeof(float) * C * K);
    float *cst0 = malloc(sizeof(float) * C * (K - 1)),
          *cst = malloc(sizeof(float) * C * (K - 1) * 3);
    float *cy = malloc(sizeof(float) * T * C * 3), *win = malloc(sizeof(float) * (K - 1 + T));
    float *cws = malloc(sizeof(float) * (2 * K - 1) * C);
    for (size_t i = 0; i < (size_t)T * width; i++)
        x[i] = 0.08f * frand();
    for (int t = 0; t < T; t++)
        beta[t] = 0.5f + 0.4f * frand(),
        g[t] = 0.5f * gmin * (1.0f - frand()); /* uniform (gmin, 0] */
    for (int i = 0; i < dk * dv; i++)
        S0[i] = 0.1f * frand();
    for (size_t i = 0; i < (size_t)T * C; i++)
        cx[i] = 3 * frand();
    for (int i = 0; i < C * K; i++)
        cw[i] = frand();
    for (int i = 0; i < C * (K - 1); i++)
        cst0[i] = frand();
    double tg[3][100], tc[3][100];
    for (int r = 0; r < rounds; r++)
        for (int a = 0; a < n_isa; a++) {
            int isa = (a + r) % n_isa; /* the order rotates every round */
            float *Si = S + (size_t)isa * dk * dv, *oi = o + (size_t)isa * T * dv;
            memcpy(Si, S0, sizeof(float) * dk * dv);
            double t0 = now();
            fp4rt_gdn_chunked_isa(isa, T, FP4RT_GDN_CHUNK, dk, dv, x, x + dk, width, x + 2 * dk,
                                  width, beta, g, 1, Si, oi, dv, ws);
            tg[isa][r] = now() - t0;
            float *sti = cst + (size_t)isa * C * (K - 1), *yi = cy + (size_t)isa * T * C;
            memcpy(sti, cst0, sizeof(float) * C * (K - 1));
            t0 = now();
            long n = fp4rt_conv1d_silu_simd(isa, T, K, cx, C, cw, sti, yi, C, 0, C, cws);
            fp4rt_conv1d_silu_channels(T, K, cx, C, cw, sti, yi, C, n, C, win, NULL, 0);
            tc[isa][r] = now() - t0;
        }
    int chunks = (T + FP4RT_GDN_CHUNK - 1) / FP4RT_GDN_CHUNK, bad = 0;
    double macs = 0; /* per chunk: k S, q S, state update (c dk dv each); k.k, q.k (c^2 dk / 2); U,
                        O sums (c^2 dv / 2) */
    for (int ci = 0; ci < chunks; ci++) {
        double c =
            T - ci * FP4RT_GDN_CHUNK < FP4RT_GDN_CHUNK ? T - ci * FP4RT_GDN_CHUNK : FP4RT_GDN_CHUNK;
        macs += 3 * c * dk * dv + c * c * dk + c * c * dv;
    }
    printf("T=%d tokens, %d rounds, 1 thread, median wall time per call\n", T, rounds);
    printf("| isa | chunked GDN, one head (ms) | GFLOP/s | conv1d+SiLU, %d channels (ms) "
           "|\n|---|---|---|---|\n",
           C);
    for (int isa = 0; isa < n_isa; isa++) {
        double mg = median(tg[isa], rounds), mc = median(tc[isa], rounds);
        printf("| %s | %.3f | %.2f | %.3f |\n", fp4rt_cpu_isa_name(isa), 1e3 * mg,
               2 * macs / mg * 1e-9, 1e3 * mc);
        bad |= memcmp(S + (size_t)isa * dk * dv, S, sizeof(float) * dk * dv) != 0;
        bad |= memcmp(o + (size_t)isa * T * dv, o, sizeof(float) * T * dv) != 0;
        bad |= memcmp(cy + (size_t)isa * T * C, cy, sizeof(float) * T * C) != 0;
        bad |= memcmp(cst + (size_t)isa * C * (K - 1), cst, sizeof(float) * C * (K - 1)) != 0;
    }
    if (bad)
        fprintf(stderr, "cpu_gdn_bench: the instruction sets' outputs differ (contract broken)\n");
    free(x), free(beta), free(g), free(ws), free(S0), free(S), free(o), free(cx), free(cw),
        free(cst0), free(cst);
    free(cy), free(win), free(cws);
    return bad;
}
