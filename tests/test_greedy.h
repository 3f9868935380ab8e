/* Greedy generation through the public API, for the tests that compare devices. */
#ifndef FP4RT_TEST_GREEDY_H
#define FP4RT_TEST_GREEDY_H

#include "fp4rt.h"
#include "tests/test_util.h"

#include <stdlib.h>

/* Loads dir with *mp (its device, threads, settings), evaluates prompt[np] (in the
 * exact numerics mode: devices are compared bit for bit) and
 * writes the n greedy tokens that follow to gen (argmax, the first of ties).
 * A failure is a failed check naming the device. */
static inline void test_greedy(const char *dir, const fp4rt_model_params *mp, const int32_t *prompt, int np,
                               int32_t *gen, int n) {
    fp4rt_model *m = fp4rt_model_load(dir, mp);
    if (!m) {
        CHECK_MSG(0, "%s", fp4rt_last_error());
        return;
    }
    int V = fp4rt_model_n_vocab(m);
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.exact = 1; /* devices compared: the exact mode */
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    float *lg = malloc((size_t)V * sizeof(float));
    fp4rt_status st = s && lg ? fp4rt_session_eval(s, prompt, np, lg, 0) : FP4RT_OUT_OF_MEMORY;
    for (int i = 0; !st && i < n; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        gen[i] = best;
        st = fp4rt_session_eval(s, &gen[i], 1, lg, 0);
    }
    CHECK_MSG(st == FP4RT_OK, "greedy on %s: %s", mp->device ? mp->device : "auto", fp4rt_last_error());
    free(lg);
    fp4rt_session_free(s);
    fp4rt_model_free(m);
}

#endif
