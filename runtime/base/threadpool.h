/* A fixed pool of worker threads for data-parallel loops (CPU backend).
 * fp4rt_pool_for splits [0, n) into contiguous ranges, one per thread (the
 * caller works too), and returns when all are done. Not re-entrant: one loop at
 * a time per pool; the pool belongs to one backend context. */
#ifndef FP4RT_THREADPOOL_H
#define FP4RT_THREADPOOL_H

#include "fp4rt.h"

typedef struct fp4rt_pool fp4rt_pool;

/* fn(arg, begin, end, thread_index) with thread_index in [0, n_threads). */
typedef void (*fp4rt_range_fn)(void *arg, long begin, long end, int thread);

/* n_threads >= 1 (1 = no workers, everything runs on the caller). */
fp4rt_status fp4rt_pool_create(int n_threads, fp4rt_pool **out);
void fp4rt_pool_free(fp4rt_pool *p);
int fp4rt_pool_threads(const fp4rt_pool *p);
/* Ranges are at least `grain` long (the last may be shorter). */
void fp4rt_pool_for(fp4rt_pool *p, long n, long grain, fp4rt_range_fn fn, void *arg);

#endif
