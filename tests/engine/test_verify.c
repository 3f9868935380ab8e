/* The verify step and its rollback (runtime/engine/model.h), on one device:
 *   test_verify cpu|vulkan [model_dir | recipe]
 * (no model_dir: a synthesized "tiny" model, quantized with the recipe when one
 * is named: nvidia-mixed, nvfp4-all, nvfp4-w4a4). Checks, bit for bit (memcmp):
 * - a verify step's rows equal separate 1-token decode steps' logits, at the
 *   start, across the attention decode split boundary (n_ctx > 256), where
 *   the decode span length changes between rows, and at the end of the
 *   context;
 * - after verify(n) and keep(j), every j in 0..n, decoding and a chunked
 *   prefill continue exactly as in a session that only ever saw the j tokens
 *   (across a prefill-chunk boundary, at the end of the context, after
 *   fp4rt_session_reset);
 * - the same through the engine's fallback (rows as 1-token steps, when n
 *   exceeds the session's chunk or the backend has no decode_rows);
 * - misuse is refused with one line.
 * Skips (exit 0, "skipped: ...") on vulkan without a Vulkan device. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "runtime/engine/model.h"
#include "runtime/tools/quantize.h"
#include "runtime/tools/synth.h"
#include "tests/test_devices.h"

#include <stdint.h>

#define NV 8 /* rows verified */

static int V;
static int keep_step = 1; /* check_keep after a long prompt: every keep_step-th j (test_short: 4, j = 0, 4, 8) */

/* Plain decoding of toks[n] one token at a time; logits of each row to out. */
static fp4rt_status decode(fp4rt_session *s, const int32_t *toks, int n, float *out) {
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < n; i++) st = fp4rt_session_eval(s, toks + i, 1, out + (size_t)i * V, 0);
    return st;
}

/* Verify rows == decode steps after a prompt of np tokens (n_ctx, chunk). */
static void check_rows(fp4rt_model *m, const char *what, int np, int n_ctx, int chunk) {
    int32_t *ids = malloc((size_t)(np + NV) * sizeof *ids);
    float *a = malloc((size_t)NV * V * sizeof(float)), *b = malloc((size_t)NV * V * sizeof(float));
    test_fill_ids(ids, np + NV, 77u + (uint32_t)np, V);
    fp4rt_session *s = test_session(m, n_ctx, chunk);
    if (!s || !ids || !a || !b) goto out;
    fp4rt_status st = fp4rt_session_eval(s, ids, np, NULL, 0);
    if (!st) st = fp4rt_session_verify(s, ids + np, NV, a);
    CHECK_MSG(!st, "%s: verify: %s", what, fp4rt_last_error());
    CHECK_EQ_INT(fp4rt_session_n_past(s), np + NV);
    fp4rt_session_reset(s);
    st = fp4rt_session_eval(s, ids, np, NULL, 0);
    if (!st) st = decode(s, ids + np, NV, b);
    CHECK_MSG(!st, "%s: decode: %s", what, fp4rt_last_error());
    int same = !memcmp(a, b, (size_t)NV * V * sizeof(float));
    CHECK_MSG(same, "%s: verify rows differ from decode steps", what);
    printf("  rows at %d..%d (n_ctx %d): %s\n", np, np + NV - 1, n_ctx, same ? "bit-identical" : "DIFFER");
out:
    fp4rt_session_free(s);
    free(ids);
    free(a);
    free(b);
}

/* verify(NV) + keep(j) then `cont` tokens (decoded, then one chunked eval of
 * the rest) == a session that evaluated only the j tokens, for every j.
 * The session is reused for every j (fp4rt_session_reset between). */
static void check_keep(fp4rt_model *m, const char *what, int np, int n_ctx, int chunk, int cont) {
    int n_dec = cont < 3 ? cont : 3, n_pre = cont - n_dec;
    int32_t *ids = malloc((size_t)(np + NV + cont) * sizeof *ids);
    float *vl = malloc((size_t)NV * V * sizeof(float));
    float *a = malloc((size_t)(cont + 1) * V * sizeof(float)), *b = malloc((size_t)(cont + 1) * V * sizeof(float));
    test_fill_ids(ids, np + NV + cont, 991u + (uint32_t)np, V);
    fp4rt_session *s = test_session(m, n_ctx, chunk), *r = test_session(m, n_ctx, chunk);
    int bad = 0, step = np > 64 ? keep_step : 1;
    for (int j = 0; s && r && ids && vl && a && b && j <= NV; j += step) {
        int k = FP4RT_MIN(cont, n_ctx - np - j); /* what still fits after the j tokens */
        int kd = FP4RT_MIN(n_dec, k), kp = FP4RT_MIN(n_pre, k - kd);
        const int32_t *c = ids + np + NV; /* continuation tokens */
        fp4rt_session_reset(s);
        fp4rt_status st = fp4rt_session_eval(s, ids, np, NULL, 0);
        if (!st) st = fp4rt_session_verify(s, ids + np, NV, vl);
        if (!st) st = fp4rt_session_keep(s, j);
        if (!st && fp4rt_session_n_past(s) != np + j) st = fp4rt_fail(FP4RT_INTERNAL, "n_past %d after keep(%d)",
                                                                      fp4rt_session_n_past(s), j);
        if (!st) st = decode(s, c, kd, a);
        if (!st && kp) st = fp4rt_session_eval(s, c + kd, kp, a + (size_t)kd * V, 0);
        CHECK_MSG(!st, "%s: keep(%d): %s", what, j, fp4rt_last_error());
        fp4rt_session_free(r); /* the reference: a fresh session that saw only the j tokens */
        r = test_session(m, n_ctx, chunk);
        st = r ? fp4rt_session_eval(r, ids, np, NULL, 0) : FP4RT_OUT_OF_MEMORY;
        if (!st) st = decode(r, ids + np, j, vl);
        if (!st) st = decode(r, c, kd, b);
        if (!st && kp) st = fp4rt_session_eval(r, c + kd, kp, b + (size_t)kd * V, 0);
        CHECK_MSG(!st, "%s: reference for j = %d: %s", what, j, fp4rt_last_error());
        size_t rows = (size_t)kd + (kp ? 1 : 0);
        if (memcmp(a, b, rows * V * sizeof(float))) {
            bad++;
            CHECK_MSG(0, "%s: keep(%d) then %d tokens differ from a session that saw only %d", what, j, k, j);
        }
        if (k < cont) { /* the end of the context: the session is full, nothing more fits */
            fp4rt_status full = fp4rt_session_eval(s, c, cont - k, NULL, 0);
            CHECK_MSG(full == FP4RT_INVALID_ARGUMENT, "%s: keep(%d): evaluating past n_ctx accepted", what, j);
            fp4rt_clear_error();
        }
    }
    printf("  keep(0..%d, step %d) after %d tokens, %d more (chunk %d, n_ctx %d): %s\n", NV, step, np, cont, chunk,
           n_ctx, bad ? "DIFFER" : "bit-identical");
    fp4rt_session_free(s);
    fp4rt_session_free(r);
    free(ids);
    free(vl);
    free(a);
    free(b);
}

static void check_refused(fp4rt_model *m) {
    fp4rt_session *s = test_session(m, 64, 16);
    float *lg = malloc((size_t)(NV + 1) * V * sizeof(float));
    int32_t ids[NV + 1];
    test_fill_ids(ids, NV + 1, 5, V);
    if (!s || !lg) goto out;
    CHECK(fp4rt_session_keep(s, 0) == FP4RT_INVALID_ARGUMENT); /* no verify */
    CHECK(strstr(fp4rt_last_error(), "no verify step") != NULL);
    CHECK(fp4rt_session_verify(s, ids, NV + 1, lg) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "rows") != NULL);
    CHECK(fp4rt_session_verify(s, ids, 0, lg) == FP4RT_INVALID_ARGUMENT);
    ids[2] = V;
    CHECK(fp4rt_session_verify(s, ids, 3, lg) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "row 2") != NULL);
    CHECK_EQ_INT(fp4rt_session_n_past(s), 0);
    ids[2] = 3;
    CHECK(!fp4rt_session_verify(s, ids, 4, lg));
    CHECK(fp4rt_session_keep(s, 5) == FP4RT_INVALID_ARGUMENT); /* more than verified */
    CHECK(!fp4rt_session_eval(s, ids, 1, NULL, 0));
    CHECK(fp4rt_session_keep(s, 1) == FP4RT_INVALID_ARGUMENT); /* evaluated since */
    CHECK(!fp4rt_session_verify(s, ids, 2, lg));
    CHECK(!fp4rt_session_keep(s, 2));
    CHECK(fp4rt_session_keep(s, 2) == FP4RT_INVALID_ARGUMENT); /* once */
    fp4rt_session_reset(s);
    CHECK(fp4rt_session_keep(s, 0) == FP4RT_INVALID_ARGUMENT);
    /* the end of the context */
    fp4rt_session *t = test_session(m, 6, 16);
    CHECK(t && !fp4rt_session_eval(t, ids, 3, NULL, 0));
    CHECK(t && fp4rt_session_verify(t, ids, 4, lg) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "context full") != NULL);
    CHECK(t && !fp4rt_session_verify(t, ids, 3, lg));
    fp4rt_session_free(t);
    fp4rt_clear_error();
out:
    fp4rt_session_free(s);
    free(lg);
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "cpu";
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    const char *dir = argc > 2 ? argv[2] : NULL;
    const char *recipe = dir && !strchr(dir, '/') ? dir : NULL; /* a quantizer recipe, not a directory */
    char qdir[4096];
    if (!dir || recipe) {
        test_tmpdir(strcmp(kind, "cpu") ? "verify_vk" : "verify");
        fp4rt_config cfg;
        CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
        dir = test_tmp_path("tiny");
        CHECK(!fp4rt_synth(&cfg, dir, 9, 0, 0));
        if (recipe) {
            snprintf(qdir, sizeof qdir, "%s", test_tmp_path(recipe));
            CHECK_MSG(!fp4rt_quantize(dir, qdir, recipe, 0, NULL, NULL), "quantize %s: %s", recipe,
                      fp4rt_last_error());
            dir = qdir;
        }
    }
    fp4rt_model *m = test_load_model(dir, dev);
    if (!m) return test_summary("test_verify");
    V = fp4rt_model_n_vocab(m);
    if (test_short()) keep_step = 4;
    printf("%s on %s%s\n", dir, dev, test_short() ? " (FP4RT_TEST_SHORT: keep(j) after 250 tokens for j = 0, 4, 8)" : "");
    check_rows(m, "start", 3, 64, 16);
    check_rows(m, "split boundary", 252, 600, 64); /* rows 252..259: n_ctx 600 decodes in 3 spans */
    /* rows 282..289: the span length (whole tiles of a third of pos + 1) grows
     * from 96 to 112 at row 288, so each row needs its own spans */
    check_rows(m, "span growth", 282, 600, 64);
    check_rows(m, "context end", 40, 40 + NV, 16);
    check_keep(m, "chunk boundary", 11, 64, 16, 20);  /* the continuation's prefill crosses chunks */
    check_keep(m, "split boundary", 250, 600, 64, 6); /* rows and continuation across position 256 */
    check_keep(m, "context end", 20, 20 + NV + 2, 16, 6);
    /* 8 rows > a chunk of 4: the engine's fallback, 1-token steps with device copies of the state */
    check_rows(m, "fallback", 5, 64, 4);
    check_keep(m, "fallback", 9, 64, 4, 10);
    check_refused(m);
    fp4rt_model_free(m);
    return test_summary("test_verify");
}
