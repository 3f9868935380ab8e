/* Session state snapshots through the public API (fp4rt.h), on one device:
 *   test_snapshot cpu|vulkan [model_dir]
 * (no model_dir: a synthesized "tiny" model). Checks, bit for bit (memcmp):
 * snapshot at p, continue, restore, continue again == the first continuation
 * and == a fresh session that saw the same tokens (decode and chunked
 * prefill, across the attention decode split boundary); restore onto another
 * session holding the same first p tokens; a pending token is evaluated by
 * take; refused: another model, fewer tokens, different tokens (the session
 * unchanged). Skips (exit 0) on vulkan without a Vulkan device. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "fp4rt.h"
#include "runtime/tools/synth.h"
#include "tests/test_devices.h"

#include <stdint.h>

static int V;

/* n tokens: nd decoded one by one, the rest in one chunked eval; the logits
 * of every row to out[n][V]. */
static fp4rt_status cont(fp4rt_session *s, const int32_t *t, int n, int nd, float *out) {
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < nd; i++) st = fp4rt_session_eval(s, t + i, 1, out + (size_t)i * V, 0);
    if (!st && n > nd) st = fp4rt_session_eval(s, t + nd, n - nd, out + (size_t)nd * V, 1);
    return st;
}

#define NC 24 /* continuation tokens */

static void check_roundtrip(fp4rt_model *m, int np, int n_ctx, int chunk) {
    int32_t *ids = malloc((size_t)(np + 2 * NC) * sizeof *ids);
    float *a = malloc((size_t)NC * V * 4), *b = malloc((size_t)NC * V * 4), *l0 = malloc((size_t)V * 4),
          *l1 = malloc((size_t)V * 4);
    test_fill_ids(ids, np + 2 * NC, 31u + (uint32_t)np, V);
    const int32_t *c1 = ids + np, *c2 = ids + np + NC; /* two continuations */
    fp4rt_session *s = test_session(m, n_ctx, chunk), *r = test_session(m, n_ctx, chunk);
    if (!s || !r || !ids || !a || !b || !l0 || !l1) goto out;
    fp4rt_status st = fp4rt_session_eval(s, ids, np, l0, 0);
    fp4rt_session_snapshot *snap = st ? NULL : fp4rt_session_snapshot_take(s);
    CHECK_MSG(snap != NULL, "take at %d: %s", np, fp4rt_last_error());
    if (!snap) goto out;
    CHECK_EQ_INT(fp4rt_session_snapshot_n_past(snap), np);
    CHECK(!memcmp(fp4rt_session_snapshot_tokens(snap), ids, (size_t)np * 4));
    CHECK(fp4rt_session_snapshot_bytes(snap) > (size_t)np * 4);
    /* continue, restore, continue again: the same bits */
    CHECK(!cont(s, c1, NC, 5, a));
    CHECK(!fp4rt_session_snapshot_restore(s, snap));
    CHECK_EQ_INT(fp4rt_session_n_past(s), np);
    CHECK(!cont(s, c1, NC, 5, b));
    CHECK_MSG(!memcmp(a, b, (size_t)NC * V * 4), "at %d: continuing after restore differs", np);
    /* another continuation after a restore == a fresh session that saw it */
    CHECK(!fp4rt_session_snapshot_restore(s, snap));
    CHECK(!cont(s, c2, NC, 3, a));
    CHECK(!fp4rt_session_eval(r, ids, np, NULL, 0));
    CHECK(!cont(r, c2, NC, 3, b));
    CHECK_MSG(!memcmp(a, b, (size_t)NC * V * 4), "at %d: restore + other tokens differs from a fresh session", np);
    /* onto another session holding the same first np tokens (and more) */
    CHECK(!fp4rt_session_snapshot_restore(r, snap));
    CHECK(!cont(r, c1, NC, 5, b));
    CHECK(!fp4rt_session_snapshot_restore(s, snap));
    CHECK(!cont(s, c1, NC, 5, a));
    CHECK_MSG(!memcmp(a, b, (size_t)NC * V * 4), "at %d: restore onto another session differs", np);
    /* refused: fewer tokens, different tokens; the session unchanged */
    fp4rt_session_reset(r);
    CHECK(!fp4rt_session_eval(r, ids, np - 1, NULL, 0));
    CHECK(fp4rt_session_snapshot_restore(r, snap) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "has evaluated") != NULL);
    CHECK_EQ_INT(fp4rt_session_n_past(r), np - 1);
    int32_t other = ids[np - 1] % (V - 1) + 1;
    CHECK(!fp4rt_session_eval(r, &other, 1, l1, 0));
    CHECK(!fp4rt_session_eval(r, c1, 2, NULL, 0));
    CHECK(fp4rt_session_snapshot_restore(r, snap) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "position") != NULL);
    CHECK_EQ_INT(fp4rt_session_n_past(r), np + 2);
    printf("  snapshot at %d (n_ctx %d, chunk %d): restore and continue bit-identical\n", np, n_ctx, chunk);
    fp4rt_session_snapshot_free(snap);
out:
    fp4rt_session_free(s);
    fp4rt_session_free(r);
    free(ids);
    free(a);
    free(b);
    free(l0);
    free(l1);
}

/* A token fp4rt_generate left pending: take evaluates it; the snapshot holds it. */
static void check_pending(fp4rt_model *m) {
    fp4rt_session *s = test_session(m, 64, 16);
    int32_t ids[8];
    test_fill_ids(ids, 8, 3, V);
    fp4rt_generate_params g = fp4rt_generate_default_params();
    g.sampling.greedy = 1;
    g.max_tokens = 3;
    g.ignore_eos = 1;
    fp4rt_status st = s ? fp4rt_generate(s, ids, 8, &g, NULL, NULL, NULL) : FP4RT_OUT_OF_MEMORY;
    CHECK_MSG(!st, "generate: %s", fp4rt_last_error());
    if (st) goto out;
    CHECK_EQ_INT(fp4rt_session_n_past(s), 11);
    fp4rt_session_snapshot *snap = fp4rt_session_snapshot_take(s);
    CHECK(snap && fp4rt_session_snapshot_n_past(snap) == 11);
    CHECK(snap && !memcmp(fp4rt_session_snapshot_tokens(snap), fp4rt_session_tokens(s), 11 * 4));
    fp4rt_session_snapshot_free(snap);
    fp4rt_session_snapshot_free(NULL);
    CHECK(fp4rt_session_snapshot_restore(s, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK(fp4rt_session_snapshot_take(NULL) == NULL);
out:
    fp4rt_session_free(s);
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "cpu";
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    const char *dir = argc > 2 ? argv[2] : NULL;
    if (!dir) {
        test_tmpdir(strcmp(kind, "cpu") ? "snapshot_vk" : "snapshot");
        fp4rt_config cfg;
        CHECK(!fp4rt_config_preset("tiny", 0, &cfg));
        dir = test_tmp_path("tiny");
        CHECK(!fp4rt_synth(&cfg, dir, 9, 0, 0));
    }
    fp4rt_model *m = test_load_model(dir, dev), *m2 = test_load_model(dir, dev);
    if (!m || !m2) return test_summary("test_snapshot");
    V = fp4rt_model_n_vocab(m);
    printf("%s on %s\n", dir, dev);
    check_roundtrip(m, 7, 64, 16);
    check_roundtrip(m, 245, 600, 64); /* the continuations cross position 256 */
    check_pending(m);
    /* refused: a snapshot of another model (the same files loaded twice) */
    fp4rt_session *s = test_session(m, 64, 16), *t = test_session(m2, 64, 16);
    int32_t ids[4] = {1, 2, 3, 4};
    CHECK(s && t && !fp4rt_session_eval(s, ids, 4, NULL, 0) && !fp4rt_session_eval(t, ids, 4, NULL, 0));
    fp4rt_session_snapshot *snap = s ? fp4rt_session_snapshot_take(s) : NULL;
    CHECK(snap && fp4rt_session_snapshot_restore(t, snap) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "another model") != NULL);
    CHECK_EQ_INT(fp4rt_session_n_past(t), 4);
    fp4rt_session_snapshot_free(snap);
    fp4rt_session_free(s);
    fp4rt_session_free(t);
    fp4rt_model_free(m2);
    fp4rt_model_free(m);
    return test_summary("test_snapshot");
}
