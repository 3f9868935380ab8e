/* The two numerics modes at session level (docs/NUMERICS.md "Modes"), on the CPU,
 * on fp4rt's synthetic "tiny" (seed 5) unquantized and quantized by every recipe
 * (nvidia-mixed, nvfp4-all, nvfp4-w4a4, fp8):
 *   - the default mode (fp4rt_session_params.exact = 0) is deterministic across
 *     thread counts: teacher-forced logits of a 40-token prefill (all rows, prefill
 *     chunks of 16: the tiled kernels) then 6 decode steps (the small-step and
 *     one-row kernels) are bit-identical with 1 and 2 threads;
 *   - the default mode is within NMSE 1e-6 of the exact mode over all those rows
 *     (its promise); the distance is printed;
 *   - the exact mode is as deterministic (1 vs 2 threads, bit for bit);
 *   - FP4RT_EXACT=1 makes a session asked for the default mode exact (the exact
 *     mode's bits).
 * A regression here means a relaxed kernel whose order depends on the thread
 * split, or a relaxed path further from the contract than promised. */
#include "tests/test_session_util.h"
#include "tests/test_util.h"

#include "fp4rt.h"
#include "runtime/model/schema.h"
#include "runtime/tools/quantize.h"
#include "runtime/tools/synth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N_PROMPT 40
#define N_DECODE 6
#define N_ROWS (N_PROMPT + N_DECODE)
#define DEFAULT_MODE_NMSE 1e-6

/* Teacher-forced logits [N_ROWS, V] of ids in the mode `exact` on dir loaded with
 * `threads` threads: one prefill of N_PROMPT tokens (chunks of 16), then N_DECODE
 * single-token steps. NULL (a failed check) on error. */
static float *run(const char *dir, int threads, int exact, const int32_t *ids, int *vocab) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = threads;
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s: %s", dir, fp4rt_last_error());
    if (!m) return NULL;
    int V = *vocab = fp4rt_model_n_vocab(m);
    fp4rt_session *s = test_session_mode(m, N_ROWS + 1, 16, exact);
    float *out = malloc((size_t)N_ROWS * V * sizeof(float));
    fp4rt_status st = s && out ? FP4RT_OK : FP4RT_OUT_OF_MEMORY;
    if (!st) st = fp4rt_session_eval(s, ids, N_PROMPT, out, 1);
    for (int i = N_PROMPT; !st && i < N_ROWS; i++) st = fp4rt_session_eval(s, ids + i, 1, out + (size_t)i * V, 0);
    CHECK_MSG(st == FP4RT_OK, "%s, %d threads, exact %d: %s", dir, threads, exact, fp4rt_last_error());
    fp4rt_session_free(s);
    fp4rt_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_model(const char *dir, const char *name) {
    int32_t ids[N_ROWS];
    int V = 0;
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    fp4rt_model *m = fp4rt_model_load(dir, &mp);
    CHECK_MSG(m != NULL, "load %s: %s", dir, fp4rt_last_error());
    if (!m) return;
    test_fill_ids(ids, N_ROWS, 17u, fp4rt_model_n_vocab(m));
    fp4rt_model_free(m);
    float *d1 = run(dir, 1, 0, ids, &V), *d2 = run(dir, 2, 0, ids, &V);
    float *e1 = run(dir, 1, 1, ids, &V), *e2 = run(dir, 2, 1, ids, &V);
    size_t n = (size_t)N_ROWS * V;
    if (d1 && d2 && e1 && e2) {
        double e = test_nmse(d2, e2, n);
        int finite = 1;
        for (size_t i = 0; i < n; i++) finite &= isfinite(d2[i]) != 0;
        printf("%-13s default vs exact mode: NMSE %.3g (bound %.0e)%s\n", name, e, DEFAULT_MODE_NMSE,
               memcmp(d2, e2, n * sizeof(float)) ? "" : "; identical (no relaxed kernel ran)");
        CHECK_MSG(finite, "%s: non-finite logits in the default mode", name);
        CHECK_MSG(!memcmp(d1, d2, n * sizeof(float)), "%s: the default mode differs between 1 and 2 threads "
                  "(NMSE %.3g)", name, test_nmse(d1, d2, n));
        CHECK_MSG(!memcmp(e1, e2, n * sizeof(float)), "%s: the exact mode differs between 1 and 2 threads", name);
        CHECK_MSG(e <= DEFAULT_MODE_NMSE, "%s: the default mode's NMSE to the exact mode %.3g > %.0e", name, e,
                  DEFAULT_MODE_NMSE);
    }
    /* FP4RT_EXACT=1: a default-mode session runs exact */
    test_set_knob("FP4RT_EXACT", "1");
    float *x = run(dir, 2, 0, ids, &V);
    test_set_knob("FP4RT_EXACT", NULL);
    if (x && e2) CHECK_MSG(!memcmp(x, e2, n * sizeof(float)), "%s: FP4RT_EXACT=1 is not the exact mode", name);
    free(x);
    free(d1);
    free(d2);
    free(e1);
    free(e2);
}

int main(void) {
    test_tmpdir("modes");
    fp4rt_config cfg;
    CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
    char bf16[512];
    snprintf(bf16, sizeof bf16, "%s", test_tmp_path("bf16"));
    CHECK_MSG(!fp4rt_synth(&cfg, bf16, 5, 0, 0), "synth tiny: %s", fp4rt_last_error());
    check_model(bf16, "bf16");
    static const char *recipes[] = {"nvidia-mixed", "nvfp4-all", "nvfp4-w4a4", "fp8"};
    for (size_t r = 0; r < sizeof recipes / sizeof recipes[0]; r++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s", test_tmp_path(recipes[r]));
        fp4rt_status st = fp4rt_quantize(bf16, dir, recipes[r], 0, NULL, NULL);
        CHECK_MSG(st == FP4RT_OK, "quantize %s: %s", recipes[r], fp4rt_last_error());
        if (!st) check_model(dir, recipes[r]);
    }
    test_tmpdir_remove();
    return test_summary("test_modes");
}
