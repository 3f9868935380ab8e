/* The thread pool (runtime/base/threadpool.c): every index of a loop runs
 * exactly once, in contiguous ranges of at least `grain` (the last may be
 * shorter), one per thread, thread indices in range; loops back to back (the
 * spinning hand-over), loops after the workers fell asleep (the condition
 * variable's), a loop whose worker part outlasts the caller's spin (the caller
 * sleeps on the workers), pools with more threads than CPUs (no spinning), and
 * freeing a pool with spinning or sleeping workers. */
#include "runtime/base/threadpool.h"

#include "tests/test_util.h"

#include <stdatomic.h>
#include <time.h>

#define MAX_N 4096

typedef struct loop {
    atomic_int hits[MAX_N];
    atomic_int bad; /* a range too short, or a thread index out of range */
    atomic_int ranges[8]; /* per thread */
    int n_threads;
    long n, grain;
    long sleep_ns; /* thread 1 sleeps this long in its range */
} loop;

static void sleep_ns(long ns) {
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

static void body(void *arg, long b, long e, int thread) {
    loop *l = arg;
    if (thread < 0 || thread >= l->n_threads || b >= e || (e - b < l->grain && e != l->n))
        atomic_fetch_add(&l->bad, 1);
    else
        atomic_fetch_add(&l->ranges[thread], 1);
    for (long i = b; i < e; i++) atomic_fetch_add(&l->hits[i], 1);
    if (thread == 1 && l->sleep_ns) sleep_ns(l->sleep_ns);
}

static loop g_loop;

/* Runs one loop over n with the grain; 1 when every index ran once. */
static int run(fp4rt_pool *p, long n, long grain, long worker_sleep_ns) {
    loop *l = &g_loop;
    for (long i = 0; i < MAX_N; i++) atomic_store(&l->hits[i], 0);
    for (int t = 0; t < 8; t++) atomic_store(&l->ranges[t], 0);
    atomic_store(&l->bad, 0);
    l->n_threads = fp4rt_pool_threads(p);
    l->n = n, l->grain = grain, l->sleep_ns = worker_sleep_ns;
    fp4rt_pool_for(p, n, grain, body, l);
    int ok = atomic_load(&l->bad) == 0;
    for (long i = 0; i < MAX_N; i++) ok &= atomic_load(&l->hits[i]) == (i < n);
    for (int t = 0; t < l->n_threads; t++) ok &= atomic_load(&l->ranges[t]) <= 1;
    return ok;
}

static void check_pool(int threads) {
    fp4rt_pool *p = NULL;
    CHECK(fp4rt_pool_create(threads, &p) == FP4RT_OK && p);
    if (!p) return;
    CHECK_EQ_INT(fp4rt_pool_threads(p), threads);
    int bad = 0;
    /* back to back: sizes 1 .. 300, grains 1, 3, 64 */
    for (int r = 0; r < 2000; r++) {
        long n = 1 + r % 300, grain = r % 3 == 0 ? 1 : r % 3 == 1 ? 3 : 64;
        bad += !run(p, n, grain, 0);
    }
    CHECK_MSG(bad == 0, "%d threads: %d of 2000 back-to-back loops wrong", threads, bad);
    /* after the workers' spin ran out (they sleep): loops still run, and all of them */
    bad = 0;
    for (int r = 0; r < 5; r++) {
        sleep_ns(2000000);
        bad += !run(p, MAX_N, 1, 0);
        if (threads > 1) /* every thread had a range */
            for (int t = 0; t < threads; t++) bad += atomic_load(&g_loop.ranges[t]) != 1;
    }
    CHECK_MSG(bad == 0, "%d threads: loops after an idle pause wrong (%d)", threads, bad);
    /* a worker part longer than the caller's spin: the caller sleeps and is woken */
    bad = 0;
    for (int r = 0; r < 3; r++) bad += !run(p, 1000, 1, 3000000);
    CHECK_MSG(bad == 0, "%d threads: loops with a slow worker wrong (%d)", threads, bad);
    fp4rt_pool_free(p); /* workers spinning (the last loop just ended) */
    CHECK(fp4rt_pool_create(threads, &p) == FP4RT_OK && p);
    if (!p) return;
    CHECK(run(p, 100, 1, 0));
    sleep_ns(2000000);
    fp4rt_pool_free(p); /* workers asleep */
}

int main(void) {
    for (int threads = 1; threads <= 6; threads++) check_pool(threads); /* 6: more than this CPU has, maybe */
    return test_summary("threadpool");
}
