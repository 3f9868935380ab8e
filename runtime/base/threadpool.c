/* The thread pool (contract: threadpool.h). A loop is handed over through an
 * atomic generation counter and finished through an atomic count of pending
 * workers. Both sides spin a while (FP4RT_POOL_SPIN_NS) before they sleep on
 * a condition variable: a decode step runs ~200 loops back to back, a few
 * microseconds of serial work apart, and a condition variable's wake-up costs
 * ~30 us each way (measured on the 2-core CI machine: ~6 ms of a ~65 ms
 * decode step), while the spinning hand-over costs well under a microsecond.
 * A pool left idle for longer sleeps and costs no CPU.
 *
 * Lost wake-ups: a sleeper announces itself (sleepers, caller_waiting) and
 * then re-checks the condition under the mutex; the other side changes the
 * condition and then reads the announcement (both sequentially consistent),
 * so at least one of them sees the other, and the wake-up is sent under the
 * mutex, after the sleeper waits. */
#include "runtime/base/threadpool.h"

#include "runtime/base/common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long a worker waits for the next loop, and the caller for the workers,
 * spinning before sleeping; 0 where the pool has more threads than the
 * machine has CPUs online (a spinning thread would take a working one's). */
#define FP4RT_POOL_SPIN_NS 200000L

struct fp4rt_pool {
    int n_threads;
    long spin_ns; /* FP4RT_POOL_SPIN_NS, or 0 */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    atomic_ulong generation; /* incremented for each loop */
    atomic_int pending;      /* workers still running the current loop */
    atomic_int stop;
    atomic_int sleepers;       /* workers asleep on work_cv (or about to be) */
    atomic_int caller_waiting; /* the caller asleep on done_cv (or about to be) */
    /* the current loop, written before generation is incremented */
    fp4rt_range_fn fn;
    void *arg;
    long n, chunk;
};

typedef struct worker_arg {
    fp4rt_pool *pool;
    int index;
} worker_arg;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins until done(p, v) or p->spin_ns pass; returns done's last value. */
static int spin_until(fp4rt_pool *p, unsigned long v, int (*done)(fp4rt_pool *, unsigned long)) {
    if (p->spin_ns <= 0) return done(p, v);
    long t0 = 0;
    for (int i = 0;; i++) {
        if (done(p, v)) return 1;
        if (i < 256) { /* a few microseconds of pause */
            CPU_RELAX();
            continue;
        }
        /* then yield: a thread of this or another process that the machine's
         * load left waiting for this CPU runs (under load a plain spin made
         * decode steps slower than sleeping) */
        sched_yield();
        long t = now_ns();
        if (!t0) t0 = t;
        else if (t - t0 > p->spin_ns) return done(p, v);
    }
}

static int new_loop(fp4rt_pool *p, unsigned long seen) {
    return atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->stop, memory_order_relaxed);
}

static int loop_done(fp4rt_pool *p, unsigned long unused) {
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

static void run_part(fp4rt_pool *p, int index) {
    long b = (long)index * p->chunk, e = b + p->chunk;
    if (e > p->n) e = p->n;
    if (b < e) p->fn(p->arg, b, e, index);
}

static void *worker(void *varg) {
    worker_arg *wa = varg;
    fp4rt_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        if (!spin_until(p, seen, new_loop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_part(p, index);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

fp4rt_status fp4rt_pool_create(int n_threads, fp4rt_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    fp4rt_pool *p = fp4rt_calloc(1, sizeof *p, "thread pool");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->n_threads = n_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->spin_ns = cpus > 0 && n_threads <= cpus ? FP4RT_POOL_SPIN_NS : 0;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_waiting, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->threads = fp4rt_calloc((size_t)n_threads, sizeof(pthread_t), "thread pool");
    if (!p->threads) {
        fp4rt_pool_free(p);
        return FP4RT_OUT_OF_MEMORY;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            p->n_threads = i;
            fp4rt_pool_free(p);
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory starting worker threads");
        }
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n_threads = i;
            fp4rt_pool_free(p);
            return fp4rt_fail(FP4RT_INTERNAL, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return FP4RT_OK;
}

void fp4rt_pool_free(fp4rt_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++)
        if (p->threads) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int fp4rt_pool_threads(const fp4rt_pool *p) { return p->n_threads; }

void fp4rt_pool_for(fp4rt_pool *p, long n, long grain, fp4rt_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long chunk = (n + p->n_threads - 1) / p->n_threads;
    if (chunk < grain) chunk = grain;
    if (p->n_threads == 1 || chunk >= n) {
        fn(arg, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1); /* publishes the loop (sequentially consistent) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_part(p, 0);
    if (!spin_until(p, 0, loop_done)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_waiting, 1);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        atomic_store(&p->caller_waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
