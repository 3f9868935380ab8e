/* Model-level test helpers shared by the engine and backend tests (after
 * tests/test_util.h): a session of given size, knobs changed in-process,
 * pseudo-random token ids. */
#ifndef FP4RT_TEST_SESSION_UTIL_H
#define FP4RT_TEST_SESSION_UTIL_H

#include "fp4rt.h"
#include "runtime/base/env.h"
#include "tests/test_devices.h"
#include "tests/test_util.h"

/* The device a model-level test runs on, from its first argument: a backend kind
 * ("cpu" when absent; "vulkan", "cuda": the device test_pick_device chooses, its
 * description printed). Writes the device string to dev; 0 when that kind has no
 * usable device here (the test then skips). */
static inline int test_device_arg(int argc, char **argv, char *dev, size_t n) {
    const char *kind = argc > 1 ? argv[1] : "cpu";
    snprintf(dev, n, "cpu");
    if (!strcmp(kind, "cpu")) return 1;
    fp4rt_device_ref ref;
    fp4rt_device_desc d;
    if (!test_pick_device(kind, NULL, dev, n, &ref, &d)) return 0;
    printf("device %s: %s\n", dev, d.description);
    return 1;
}

/* Model dir loaded on `device` with 2 threads (profiling when `profile`); a failed
 * CHECK naming both and NULL when it cannot be loaded. */
static inline fp4rt_model *test_load_model_profiled(const char *dir, const char *device, int profile) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = device;
    mp.n_threads = 2;
    mp.profile = profile;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s on %s: %s", dir, device ? device : "default", fp4rt_last_error());
    return m;
}

static inline fp4rt_model *test_load_model(const char *dir, const char *device) {
    return test_load_model_profiled(dir, device, 0);
}

/* A session of n_ctx tokens and prefill chunks of `chunk` in the numerics mode
 * `exact` (fp4rt_session_params.exact; a failed CHECK and NULL when it cannot be
 * made). Tests that compare bits across backends or with stored bits use the
 * exact mode (docs/NUMERICS.md "Modes"); those within one device may use either. */
static inline fp4rt_session *test_session_mode(fp4rt_model *m, int n_ctx, int chunk, int exact) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = n_ctx;
    sp.prefill_chunk = chunk;
    sp.exact = exact;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

/* The same in the default mode. */
static inline fp4rt_session *test_session(fp4rt_model *m, int n_ctx, int chunk) {
    return test_session_mode(m, n_ctx, chunk, 0);
}

/* The same in the exact mode. */
static inline fp4rt_session *test_session_exact(fp4rt_model *m, int n_ctx, int chunk) {
    return test_session_mode(m, n_ctx, chunk, 1);
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
