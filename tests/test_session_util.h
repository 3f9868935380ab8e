/* Model-level test helpers shared by the engine and backend tests (after
 * tests/test_util.h): a session of given size, knobs changed in-process,
 * pseudo-random token ids. */
#ifndef FP4RT_TEST_SESSION_UTIL_H
#define FP4RT_TEST_SESSION_UTIL_H

#include "fp4rt.h"
#include "runtime/base/env.h"
#include "tests/test_util.h"

/* A session of n_ctx tokens and prefill chunks of `chunk` (a failed CHECK and
 * NULL when it cannot be made). */
static inline fp4rt_session *test_session(fp4rt_model *m, int n_ctx, int chunk) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = n_ctx;
    sp.prefill_chunk = chunk;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

/* Sets (value != NULL) or unsets knob `name` and re-reads the environment:
 * knobs are parsed once (runtime/base/env.h). */
static inline void test_set_knob(const char *name, const char *value) {
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    fp4rt_env_reload();
}

/* Fills ids with pseudo-random tokens of [1, vocab) from seed. */
static inline void test_fill_ids(int32_t *ids, int n, uint32_t seed, int vocab) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = 1 + (int32_t)((seed >> 8) % (uint32_t)(vocab - 1));
    }
}

#endif
