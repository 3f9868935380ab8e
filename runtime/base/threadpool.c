/* The thread pool (threadpool.h). A loop is handed to the workers by bumping
 * `generation`; each worker spins on it for a while (FP4RT_POOL_SPIN polls)
 * before it sleeps on work_cv, and the caller spins on `pending` before it
 * sleeps on done_cv: a decode step runs ~100 short loops back to back, and a
 * futex wake-up per loop was most of a 2-thread decode step on a loaded
 * machine (bench/RESULTS.md). The sleep side is the classic Dekker handshake:
 * the sleeper announces itself (sleepers / waiting, sequentially consistent)
 * under the mutex and re-checks the condition before it waits; the other side
 * changes the condition (sequentially consistent) and then takes the mutex to
 * signal only when it sees a sleeper. */
#include "runtime/base/threadpool.h"

#include "runtime/base/common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Polls before sleeping (~20-50 us: a pause is ~10-40 ns), every 64th one a
 * sched_yield so that a spinner gives a shared core to the thread it waits for. */
#define FP4RT_POOL_SPIN 2048

struct fp4rt_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    atomic_ulong generation; /* incremented for each loop */
    atomic_int pending;      /* workers still running the current loop */
    atomic_int sleepers;     /* workers asleep (or about to be) on work_cv */
    atomic_int waiting;      /* 1 while the caller sleeps (or is about to) on done_cv */
    atomic_int stop;
    /* the current loop: written before generation is bumped, read after it is seen */
    fp4rt_range_fn fn;
    void *arg;
    long n, chunk;
};

typedef struct worker_arg {
    fp4rt_pool *pool;
    int index;
} worker_arg;

static void run_part(fp4rt_pool *p, int index) {
    long b = (long)index * p->chunk, e = b + p->chunk;
    if (e > p->n) e = p->n;
    if (b < e) p->fn(p->arg, b, e, index);
}

static void relax(int i) {
    if (i % 64 == 63)
        sched_yield();
    else
        CPU_RELAX();
}

/* Waits until the generation differs from seen (or stop); returns it. */
static unsigned long wait_work(fp4rt_pool *p, unsigned long seen) {
    for (int i = 0; i < FP4RT_POOL_SPIN; i++) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) return g;
        relax(i);
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->work_cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *varg) {
    worker_arg *wa = varg;
    fp4rt_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        seen = wait_work(p, seen);
        if (atomic_load(&p->stop)) break;
        run_part(p, index);
        if (atomic_fetch_sub(&p->pending, 1) == 1 &&
            atomic_load(&p->waiting)) { /* the last: wake the caller */
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
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->waiting, 0);
    atomic_init(&p->stop, 0);
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
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
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

int fp4rt_pool_threads(const fp4rt_pool *p) {
    return p->n_threads;
}

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
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the loop (sequentially consistent) */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_part(p, 0);
    for (int i = 0; i < FP4RT_POOL_SPIN; i++) {
        if (!atomic_load_explicit(&p->pending, memory_order_acquire)) return;
        relax(i);
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->waiting, 1);
    while (atomic_load(&p->pending) > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    atomic_store(&p->waiting, 0);
    pthread_mutex_unlock(&p->mu);
}
