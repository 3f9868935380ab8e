/* The CPU backend's arithmetic-peak probe (backend.h measure_arith_peak): what
 * the linear kernels' arithmetic could reach on this machine. The exact mode's
 * kernels (cpu_linear_tile_x86.c) do a vector multiply then a vector add per
 * weight and token, the default mode's one fused multiply-add, so the probe
 * runs that mix: every worker thread keeps 12 independent accumulators (enough
 * to cover the latency) of the widest vector width the kernels use, acc = acc *
 * a + b (two operations or one FMA), for a fixed count of iterations; best of 3
 * passes. Operations counted: 2 per lane per step either way. Where the
 * linears run on AMX (BF16 weights in the default mode, cpu_ctx.amx: mode
 * FP4RT_PEAK_FUSED | FP4RT_PEAK_BF16) it runs the tile products instead: 5
 * column blocks of 5 tokens x 3 parts (hi, mid, lo) per A tile, and counts
 * the linear's operations, 2 per weight and token. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/threadpool.h"

#include <stdio.h>
#include <time.h>

#define PEAK_ITERS 400000L /* per thread and pass: ~10-30 ms */
#define PEAK_ACC 12

#define PEAK_AMX_ITERS 40000L /* per thread and pass: 400k tile products, ~3-5 ms */

typedef struct peak_job {
    int isa;
    int fused;
    int amx;
    float *sums; /* one per thread, 64 bytes apart: the results must be used */
} peak_job;

/* Portable: the compiler may vectorize it; it is what the C kernels get. */
static float peak_c(long iters, int fused) {
    float acc[PEAK_ACC], a = 1.0000001f, b = 0.9999999f;
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = fused ? fmaf(acc[i], a, b) : acc[i] * a + b;
    float s = 0;
    for (int i = 0; i < PEAK_ACC; i++) s += acc[i];
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define PEAK_BODY(V, set1, mul, add, fmadd, reduce)                                                            \
    V acc[PEAK_ACC], a = set1(1.0000001f), b = set1(0.9999999f);                                             \
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = set1((float)i);                                              \
    if (fused)                                                                                                \
        for (long it = 0; it < iters; it++)                                                                  \
            for (int i = 0; i < PEAK_ACC; i++) acc[i] = fmadd(acc[i], a, b);                                 \
    else                                                                                                      \
        for (long it = 0; it < iters; it++)                                                                  \
            for (int i = 0; i < PEAK_ACC; i++) acc[i] = add(mul(acc[i], a), b);                              \
    V s = acc[0];                                                                                            \
    for (int i = 1; i < PEAK_ACC; i++) s = add(s, acc[i]);                                                   \
    return reduce(s);

__attribute__((target("avx512f"))) static float peak_avx512(long iters, int fused) {
    PEAK_BODY(__m512, _mm512_set1_ps, _mm512_mul_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps)
}

__attribute__((target("avx2,fma"))) static float first_avx2(__m256 v) { return _mm256_cvtss_f32(v); }

__attribute__((target("avx2,fma"))) static float peak_avx2(long iters, int fused) {
    PEAK_BODY(__m256, _mm256_set1_ps, _mm256_mul_ps, _mm256_add_ps, _mm256_fmadd_ps, first_avx2)
}
#endif

static int lanes_of(int isa) { return isa == FP4RT_CPU_ISA_AVX512 ? 16 : isa == FP4RT_CPU_ISA_AVX2 ? 8 : 1; }

static void peak_range(void *arg, long b, long e, int thread) {
    peak_job *j = arg;
    float s = 0;
    for (long i = b; i < e; i++) {
        if (j->amx) {
            s += fp4rt_cpu_amx_peak(PEAK_AMX_ITERS);
            continue;
        }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        if (j->isa == FP4RT_CPU_ISA_AVX512) s += peak_avx512(PEAK_ITERS, j->fused);
        else if (j->isa == FP4RT_CPU_ISA_AVX2) s += peak_avx2(PEAK_ITERS, j->fused);
        else
#endif
            s += peak_c(PEAK_ITERS, j->fused);
    }
    j->sums[thread * 16] += s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

fp4rt_status fp4rt_cpu_measure_arith_peak(void *vc, int fused, double *flops_per_s, char *what, size_t n) {
    cpu_ctx *c = vc;
    *flops_per_s = 0;
    float *sums = fp4rt_calloc((size_t)c->n_threads * 16, sizeof(float), "arithmetic peak sums");
    if (!sums) return FP4RT_OUT_OF_MEMORY;
    int amx = (fused & FP4RT_PEAK_FUSED) && (fused & FP4RT_PEAK_BF16) && c->amx && c->tiled &&
              c->isa >= FP4RT_CPU_ISA_AVX512;
    fused &= FP4RT_PEAK_FUSED;
    peak_job j = {c->isa, fused, amx, sums};
    /* one unit of work per thread, so every thread runs exactly one */
    double ops = amx ? FP4RT_AMX_PEAK_FLOPS_PER_ITER * (double)PEAK_AMX_ITERS * c->n_threads
                     : 2.0 * lanes_of(c->isa) * PEAK_ACC * (double)PEAK_ITERS * c->n_threads;
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now();
        fp4rt_pool_for(c->pool, c->n_threads, 1, peak_range, &j);
        double dt = now() - t0;
        if (dt > 0 && ops / dt > *flops_per_s) *flops_per_s = ops / dt;
    }
    volatile float keep = sums[0];
    (void)keep;
    free(sums);
    if (what && n && amx)
        snprintf(what, n, "AMX BF16 tile products, 5 tokens x 3 parts (the hi / mid / lo split) each, %d thread%s",
                 c->n_threads, c->n_threads == 1 ? "" : "s");
    else if (what && n)
        snprintf(what, n, "FP32 %s, %s, %d thread%s", fused ? "fused multiply-add" : "multiply then add",
                 fp4rt_cpu_isa_name(c->isa), c->n_threads,
                 c->n_threads == 1 ? "" : "s");
    return FP4RT_OK;
}
