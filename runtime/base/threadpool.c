#include "runtime/base/threadpool.h"

#include "runtime/base/common.h"

#include <pthread.h>
#include <stdlib.h>

struct fp4rt_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    unsigned long generation; /* incremented for each loop */
    int pending;              /* workers still running the current loop */
    int stop;
    /* the current loop */
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

static void *worker(void *varg) {
    worker_arg *wa = varg;
    fp4rt_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_part(p, index);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

fp4rt_status fp4rt_pool_create(int n_threads, fp4rt_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    fp4rt_pool *p = fp4rt_calloc(1, sizeof *p, "thread pool");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->n_threads = n_threads;
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
    p->stop = 1;
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    run_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
