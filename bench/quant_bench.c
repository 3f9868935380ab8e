/* NVFP4 weight-quantizer benchmark: relative weight MSE of 4over6 and mse
 * against absmax on 2^20-element tensors from four distributions, the search
 * range justification (an exhaustive search over all 126 E4M3 codes and the
 * histogram of the offsets it picks), and throughput per strategy (weights/s on
 * one core and with every core).
 *
 *   quant_bench [--rows N] [--threads T] [--seed S]
 *
 * MSE is measured on dequantized weights, tensor scale included, exactly as the
 * runtime dequantizes (fp4rt_nvfp4_dequantize_row). */
#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"
#include "runtime/tools/nvfp4.h"
#include "runtime/base/threadpool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define K 1024

static uint64_t rng_state;
static double urand(void) { /* (0, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(rng_state >> 11) + 0.5) * 0x1p-53;
}
static double gauss(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

enum { D_GAUSS, D_LAPLACE, D_T3, D_OUTLIER, N_DIST };
static const char *const k_dist[] = {"Gaussian", "Laplace", "Student-t(3)",
                                     "Gaussian + 0.1% outliers x20"};

static void fill(float *x, size_t n, int dist) {
    for (size_t i = 0; i < n; i++) {
        double v;
        switch (dist) {
        case D_GAUSS: v = gauss(); break;
        case D_LAPLACE: {
            double u = urand() - 0.5;
            v = (u < 0 ? 1 : -1) * log(1 - 2 * fabs(u));
            break;
        }
        case D_T3: { /* N / sqrt(chi2_3 / 3) */
            double z = gauss(), c = 0;
            for (int j = 0; j < 3; j++) {
                double g = gauss();
                c += g * g;
            }
            v = z / sqrt(c / 3);
            break;
        }
        default: v = gauss() * (urand() < 0.001 ? 20.0 : 1.0); break;
        }
        x[i] = (float)(v * 0.02); /* weight-like magnitude */
    }
}

typedef struct job {
    const float *x;
    size_t rows;
    float s2;
    fp4rt_scale_strategy s;
    uint8_t *packed, *scales;
} job;

static void run_rows(void *arg, long b, long e, int t) {
    job *j = arg;
    for (long r = b; r < e; r++)
        fp4rt_nvfp4_quantize_row_with(j->x + (size_t)r * K, K, j->s2, j->s, FP4RT_ERR_MSE, NULL,
                                      j->packed + (size_t)r * K / 2, j->scales + (size_t)r * K / 16);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Squared error of a quantized tensor (double accumulation). */
static double sq_err(const job *j, const float *x) {
    float back[K];
    double e = 0;
    for (size_t r = 0; r < j->rows; r++) {
        fp4rt_nvfp4_dequantize_row(j->packed + r * K / 2, j->scales + r * K / 16, K, j->s2, back);
        for (int i = 0; i < K; i++) {
            double d = (double)back[i] - x[r * K + i];
            e += d * d;
        }
    }
    return e;
}

/* Exhaustive search over all E4M3 codes (s2 = amax / 1536): the optimum a
 * block-scale search can reach; counts which offset from code(s6) wins. */
static double exhaustive(const float *x, size_t n, float s2, long *hist /* [41], offset+20 */) {
    double e = 0;
    for (size_t b = 0; b < n / 16; b++) {
        const float *xb = x + b * 16;
        float a = fp4rt_absmax(xb, 16);
        if (a == 0) continue;
        float sb = a / (6 * s2);
        if (sb < 0x1p-9f) sb = 0x1p-9f;
        int c6 = fp4rt_f32_to_e4m3_sat(sb);
        float best = INFINITY;
        int bc = c6;
        for (int c = 1; c <= 0x7e; c++) {
            float v = fp4rt_nvfp4_block_error(xb, NULL, (uint8_t)c, s2, FP4RT_ERR_MSE);
            if (v < best) best = v, bc = c;
        }
        int off = bc - c6;
        hist[FP4RT_MIN(FP4RT_MAX(off, -20), 20) + 20]++;
        e += best;
    }
    return e;
}

int main(int argc, char **argv) {
    size_t rows = 1024; /* 2^20 elements */
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows")) rows = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = (uint64_t)atoll(argv[i + 1]);
    }
    if (threads < 1) threads = 1;
    fp4rt_numfmt_init();
    size_t n = rows * K;
    float *x = malloc(n * sizeof *x);
    uint8_t *packed = malloc(n / 2), *scales = malloc(n / 16);
    fp4rt_pool *pool1 = NULL, *pooln = NULL;
    if (!x || !packed || !scales || fp4rt_pool_create(1, &pool1) || fp4rt_pool_create(threads, &pooln)) {
        fprintf(stderr, "quant_bench: out of memory\n");
        return 1;
    }
    printf("quant_bench: %zu x %d = %zu elements per tensor, seed %llu, %d threads\n\n", rows, K, n,
           (unsigned long long)seed, threads);
    printf("| distribution | 4over6 / absmax | mse / absmax | exhaustive / absmax | mse <= 4over6 |\n");
    printf("|---|---|---|---|---|\n");
    long hist[41] = {0};
    double rate[3][2] = {{0}};
    int ok = 1;
    for (int d = 0; d < N_DIST; d++) {
        rng_state = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)d;
        fill(x, n, d);
        float amax = fp4rt_absmax(x, n);
        double err[3];
        for (int s = 0; s < 3; s++) {
            job j = {x, rows, fp4rt_nvfp4_tensor_scale_for((fp4rt_scale_strategy)s, amax),
                     (fp4rt_scale_strategy)s, packed, scales};
            for (int p = 0; p < 2; p++) { /* one core, then all */
                double t0 = now();
                fp4rt_pool_for(p ? pooln : pool1, (long)rows, 1, run_rows, &j);
                double r = n / (now() - t0);
                if (r > rate[s][p]) rate[s][p] = r; /* best of the four tensors */
            }
            err[s] = sq_err(&j, x);
        }
        double ex = exhaustive(x, n, fp4rt_nvfp4_tensor_scale_for(FP4RT_SCALE_MSE, amax), hist);
        ok &= err[2] <= err[1];
        printf("| %s | %.4f | %.4f | %.4f | %s |\n", k_dist[d], err[1] / err[0], err[2] / err[0],
               ex / err[0], err[2] <= err[1] ? "yes" : "NO");
    }
    printf("\noffset of the exhaustive optimum from code(s6), all four tensors (%% of blocks):\n");
    long tot = 0;
    for (int i = 0; i < 41; i++) tot += hist[i];
    for (int i = 0; i < 41; i++)
        if (hist[i]) printf("  %+d: %.3f%%\n", i - 20, 100.0 * hist[i] / tot);
    printf("\n| strategy | Mweights/s, 1 thread | Mweights/s, %d threads | per core |\n", threads);
    printf("|---|---|---|---|\n");
    for (int s = 0; s < 3; s++)
        printf("| %s | %.1f | %.1f | %.1f |\n", fp4rt_scale_strategy_name((fp4rt_scale_strategy)s),
               rate[s][0] / 1e6, rate[s][1] / 1e6, rate[s][1] / 1e6 / threads);
    fp4rt_pool_free(pool1);
    fp4rt_pool_free(pooln);
    free(x);
    free(packed);
    free(scales);
    return ok ? 0 : 1;
}
