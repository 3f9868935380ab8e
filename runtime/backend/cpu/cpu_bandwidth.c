/* The CPU backend's bandwidth measurement (backend.h measure_bandwidth): the
 * worker threads stream-read a 1 GiB buffer (much larger than any cache), best
 * of 5 passes, bytes read per second. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/threadpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef struct bw_job {
    const uint64_t *buf;
    uint64_t *sums; /* one per thread, 64 bytes apart */
} bw_job;

static void bw_range(void *arg, long b, long e, int thread) {
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (long i = b; i + 4 <= e; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sums[thread * 8] += s0 ^ s1 ^ s2 ^ s3;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

fp4rt_status fp4rt_cpu_measure_bandwidth(void *vc, double *bytes_per_s) {
    cpu_ctx *c = vc;
    size_t bytes = (size_t)1 << 30, n = bytes / 8;
    *bytes_per_s = 0;
    uint64_t *buf = fp4rt_malloc(bytes, "bandwidth test buffer");
    uint64_t *sums = fp4rt_calloc((size_t)c->n_threads * 8, sizeof(uint64_t), "bandwidth sums");
    if (!buf || !sums) {
        free(buf);
        free(sums);
        return FP4RT_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; i++) buf[i] = i;
    bw_job j = {buf, sums};
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        fp4rt_pool_for(c->pool, (long)n, 1 << 16, bw_range, &j);
        double dt = now() - t0;
        if (dt > 0 && bytes / dt > *bytes_per_s) *bytes_per_s = bytes / dt;
    }
    volatile uint64_t keep = sums[0]; /* the reads must happen */
    (void)keep;
    free(buf);
    free(sums);
    return FP4RT_OK;
}
