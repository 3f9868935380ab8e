/* Public API contracts a first-time user relies on (issue 12): argument checks
 * naming the field, generation that continues where it stopped, prefill
 * progress with a cancel that leaves the session untouched, and the memory
 * estimate without loading. On tests/fixtures/tiny-mixed, on the CPU (or the
 * device named by the first argument: test_api vulkan:0). */
#include "tests/test_util.h"

#include "fp4rt.h"
#include "runtime/base/common.h"
#include "runtime/engine/model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *DIR_ = "tests/fixtures/tiny-mixed";

/* The call fails with INVALID_ARGUMENT and a one-line message containing `field`. */
static void expect_invalid(fp4rt_status st, const char *field, const char *what) {
    CHECK_MSG(st == FP4RT_INVALID_ARGUMENT, "%s: status %s, expected INVALID_ARGUMENT", what,
              fp4rt_status_name(st));
    const char *msg = fp4rt_last_error();
    CHECK_MSG(strstr(msg, field) != NULL && !strchr(msg, '\n'), "%s: message '%s' does not name %s",
              what, msg, field);
}

static fp4rt_status gen(fp4rt_session *s, const int32_t *p, size_t n,
                        const fp4rt_generate_params *gp) {
    return fp4rt_generate(s, p, n, gp, NULL, NULL, NULL);
}

static char g_warned[512]; /* the last warning logged */
static void capture_log(fp4rt_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == FP4RT_LOG_WARN) snprintf(g_warned, sizeof g_warned, "%s", msg);
}

static void test_arguments(fp4rt_model *m) {
    fp4rt_session *s = fp4rt_session_create(m, NULL);
    int32_t prompt[3] = {10, 11, 12};
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.max_tokens = 2;
    gp.sampling.greedy = 1;
    /* stop strings: empty (once a crash: m - 1 wrapped), NULL array, NULL entry */
    const char *empty[] = {""};
    gp.stop = empty;
    gp.n_stop = 1;
    expect_invalid(gen(s, prompt, 3, &gp), "stop[0] is an empty string", "stop {\"\"}");
    gp.stop = NULL;
    gp.n_stop = 2;
    expect_invalid(gen(s, prompt, 3, &gp), "stop is NULL with n_stop = 2", "stop NULL, n_stop 2");
    const char *with_null[] = {"a", NULL};
    gp.stop = with_null;
    expect_invalid(gen(s, prompt, 3, &gp), "stop[1] is NULL", "stop {\"a\", NULL}");
    gp.stop = NULL;
    gp.n_stop = 0;
    gp.output_cap = 4;
    expect_invalid(gen(s, prompt, 3, &gp), "output_ids is NULL", "output_ids NULL, output_cap 4");
    gp.output_cap = 0;
    gp.max_tokens = -1;
    expect_invalid(gen(s, prompt, 3, &gp), "max_tokens", "max_tokens -1");
    gp.max_tokens = 2;
    expect_invalid(gen(s, NULL, 3, &gp), "prompt is NULL", "prompt NULL, n 3");
    CHECK_EQ_INT(fp4rt_session_n_past(s), 0); /* nothing ran */

    /* sampling values: each out of range, and NaN in every float field */
    struct {
        const char *field;
        size_t off;
        float bad;
    } fcases[] = {
        {"temperature", offsetof(fp4rt_sampling_params, temperature), -0.5f},
        {"temperature", offsetof(fp4rt_sampling_params, temperature), INFINITY},
        {"top_p", offsetof(fp4rt_sampling_params, top_p), 1.5f},
        {"top_p", offsetof(fp4rt_sampling_params, top_p), -0.1f},
        {"min_p", offsetof(fp4rt_sampling_params, min_p), 1.5f},
        {"min_p", offsetof(fp4rt_sampling_params, min_p), -0.5f},
        {"repetition_penalty", offsetof(fp4rt_sampling_params, repetition_penalty), -1.0f},
        {"presence_penalty", offsetof(fp4rt_sampling_params, presence_penalty), INFINITY},
        {"frequency_penalty", offsetof(fp4rt_sampling_params, frequency_penalty), -INFINITY},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(fcases); i++) {
        for (int nan = 0; nan < 2; nan++) {
            fp4rt_generate_params g = gp;
            float v = nan ? NAN : fcases[i].bad;
            memcpy((char *)&g.sampling + fcases[i].off, &v, sizeof v);
            char what[80];
            snprintf(what, sizeof what, "%s = %g", fcases[i].field, v);
            expect_invalid(gen(s, prompt, 3, &g), fcases[i].field, what);
        }
    }
    fp4rt_generate_params g = gp;
    g.sampling.top_k = -2;
    expect_invalid(gen(s, prompt, 3, &g), "top_k", "top_k -2");
    g = gp;
    g.sampling.greedy = 2;
    expect_invalid(gen(s, prompt, 3, &g), "greedy", "greedy 2");
    /* the documented special values are accepted */
    g = gp;
    g.sampling.greedy = 0;
    g.sampling.min_p = -1;
    g.sampling.top_k = -1;
    g.sampling.top_p = 1;
    g.sampling.temperature = 0.7f;
    g.sampling.repetition_penalty = 1.1f;
    CHECK_MSG(gen(s, prompt, 3, &g) == FP4RT_OK, "documented values: %s", fp4rt_last_error());
    fp4rt_session_free(s);

    /* session and model params */
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = -1;
    CHECK(fp4rt_session_create(m, &sp) == NULL);
    expect_invalid(FP4RT_INVALID_ARGUMENT, "n_ctx", "n_ctx -1");
    sp.n_ctx = 0;
    sp.prefill_chunk = -3;
    CHECK(fp4rt_session_create(m, &sp) == NULL);
    expect_invalid(FP4RT_INVALID_ARGUMENT, "prefill_chunk", "prefill_chunk -3");
    /* n_ctx above the model's maximum (4096): capped, and said */
    sp.prefill_chunk = 0;
    sp.n_ctx = 100000;
    g_warned[0] = 0;
    fp4rt_log_set(capture_log, NULL);
    fp4rt_session *big = fp4rt_session_create(m, &sp);
    fp4rt_log_set(NULL, NULL);
    CHECK_MSG(big != NULL, "n_ctx 100000: %s", fp4rt_last_error());
    CHECK_MSG(strstr(g_warned, "n_ctx = 100000") && strstr(g_warned, "using 4096"), "n_ctx cap warned: '%s'",
              g_warned);
    fp4rt_session_free(big);
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = "cpu";
    mp.n_threads = -2;
    CHECK(fp4rt_model_load(DIR_, &mp) == NULL);
    expect_invalid(FP4RT_INVALID_ARGUMENT, "n_threads", "n_threads -2");
    CHECK(fp4rt_model_eos_ids(m, NULL, 4) > 0); /* NULL ids: the count */
}

/* generate N, then continue with (NULL, 0) for N more == one generate of 2N */
static void test_continue(fp4rt_model *m) {
    enum { N = 6 };
    int32_t prompt[5] = {20, 21, 22, 23, 24};
    int32_t a[2 * N], b[N], c[N];
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.ignore_eos = 1;
    gp.max_tokens = 2 * N;
    gp.output_ids = a;
    gp.output_cap = 2 * N;
    fp4rt_session *one = fp4rt_session_create(m, NULL), *two = fp4rt_session_create(m, NULL);
    CHECK(!gen(one, prompt, 5, &gp));
    gp.max_tokens = N;
    gp.output_ids = b;
    gp.output_cap = N;
    CHECK(!gen(two, prompt, 5, &gp));
    CHECK_EQ_INT(fp4rt_session_n_past(two), 5 + N); /* the last sampled token is held */
    CHECK(fp4rt_session_tokens(two)[5 + N - 1] == b[N - 1]);
    gp.output_ids = c;
    fp4rt_status st = gen(two, NULL, 0, &gp);
    CHECK_MSG(st == FP4RT_OK, "continue: %s", fp4rt_last_error());
    CHECK(!memcmp(a, b, sizeof b) && !memcmp(a + N, c, sizeof c));
    CHECK_EQ_INT(fp4rt_session_n_past(two), 5 + 2 * N);
    CHECK_EQ_INT(fp4rt_session_n_past(one), 5 + 2 * N);
    CHECK(!memcmp(fp4rt_session_tokens(one), fp4rt_session_tokens(two),
                  (5 + 2 * N) * sizeof(int32_t)));
    /* the pending token is run first by an eval: same logits as a session that ran it */
    int vocab = fp4rt_model_n_vocab(m);
    float *l1 = malloc((size_t)vocab * 4), *l2 = malloc((size_t)vocab * 4);
    int32_t t = 30;
    CHECK(!fp4rt_session_eval(one, &t, 1, l1, 0));
    CHECK(!fp4rt_session_eval(two, &t, 1, l2, 0));
    CHECK(!memcmp(l1, l2, (size_t)vocab * 4));
    free(l1);
    free(l2);
    fp4rt_session_free(one);
    fp4rt_session_free(two);
}

typedef struct progress_log {
    int calls, last_done, last_total,
        cancel_at; /* cancel when calls reaches cancel_at (0: never) */
} progress_log;

static int on_eval(int done, int total, void *user) {
    progress_log *p = user;
    p->calls++;
    CHECK(done > p->last_done && done <= total);
    p->last_done = done;
    p->last_total = total;
    return p->cancel_at && p->calls >= p->cancel_at;
}

/* cancel after the first prefill chunk: the session is as before; the same
 * prompt afterwards gives bit-identical logits to a fresh session */
static void test_cancel(fp4rt_model *m) {
    int vocab = fp4rt_model_n_vocab(m);
    int32_t head[3] = {5, 6, 7}, prompt[11];
    for (int i = 0; i < 11; i++)
        prompt[i] = 40 + 3 * i;
    progress_log pl = {0};
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.prefill_chunk = 4;
    sp.eval_progress = on_eval;
    sp.eval_progress_user = &pl;
    fp4rt_session *s = fp4rt_session_create(m, &sp), *ref = fp4rt_session_create(m, &sp);
    float *l1 = malloc((size_t)vocab * 4), *l2 = malloc((size_t)vocab * 4);
    /* some state first: the GDN state must come back, not just be zero */
    CHECK(!fp4rt_session_eval(s, head, 3, NULL, 0));
    pl = (progress_log){0};
    CHECK(!fp4rt_session_eval(ref, head, 3, NULL, 0));
    pl = (progress_log){0};
    CHECK(!fp4rt_session_eval(ref, prompt, 11, l2, 0));
    CHECK_EQ_INT(pl.calls, 3); /* chunks 4 + 4 + 3 */
    CHECK(pl.last_done == 11 && pl.last_total == 11);
    for (int at = 1; at <= 3; at++) { /* after the first, a middle and the last chunk */
        pl = (progress_log){.cancel_at = at};
        fp4rt_status st = fp4rt_session_eval(s, prompt, 11, l1, 0);
        CHECK_EQ_INT(st, FP4RT_CANCELLED);
        CHECK_EQ_INT(fp4rt_session_n_past(s), 3);
        CHECK(!memcmp(fp4rt_session_tokens(s), head, sizeof head));
    }
    pl = (progress_log){0};
    CHECK(!fp4rt_session_eval(s, prompt, 11, l1, 0));
    CHECK_MSG(!memcmp(l1, l2, (size_t)vocab * 4),
              "logits after a cancelled prefill differ from a fresh session");
    /* in generate: the prompt prefill reports and cancels the same way */
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.max_tokens = 2;
    int before = fp4rt_session_n_past(s);
    pl = (progress_log){.cancel_at = 2};
    CHECK_EQ_INT(gen(s, prompt, 11, &gp), FP4RT_CANCELLED);
    CHECK_EQ_INT(fp4rt_session_n_past(s), before);
    free(l1);
    free(l2);
    fp4rt_session_free(s);
    fp4rt_session_free(ref);
}

/* fp4rt_model_plan: what a session really allocates, without loading */
static void test_plan(fp4rt_model *m) {
    fp4rt_memory_estimate e;
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 256;
    sp.prefill_chunk = 32;
    fp4rt_status st = fp4rt_model_plan(DIR_, NULL, &sp, &e);
    CHECK_MSG(st == FP4RT_OK, "plan: %s", fp4rt_last_error());
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(e.kv == s->allocated.kv && e.conv == s->allocated.conv && e.ssm == s->allocated.ssm);
    CHECK(e.scratch == s->allocated.scratch && e.logits == s->allocated.logits);
    fp4rt_memory_plan w = {0};
    fp4rt_format_totals tot;
    fp4rt_plan_checkpoint(m->weights, &w, &tot);
    CHECK(e.weights == w.weights && e.weights > 0);
    CHECK(e.total == e.weights + e.kv + e.conv + e.ssm + e.scratch + e.logits + e.rope);
    CHECK(e.n_ctx == 256 && e.prefill_chunk == 32 && e.kv_type != FP4RT_KV_DEFAULT);
    fp4rt_session_free(s);
    expect_invalid(fp4rt_model_plan(DIR_, NULL, NULL, NULL), "out", "plan out NULL");
    CHECK(fp4rt_model_plan("/nonexistent-dir", NULL, NULL, &e) != FP4RT_OK);
    sp.n_ctx = -5;
    expect_invalid(fp4rt_model_plan(DIR_, NULL, &sp, &e), "n_ctx", "plan n_ctx -5");
}

int main(int argc, char **argv) {
    fp4rt_model_params mp = fp4rt_model_default_params();
    mp.device = argc > 1 ? argv[1] : "cpu";
    mp.n_threads = 2;
    fp4rt_model *m = fp4rt_model_load(DIR_, &mp);
    CHECK_MSG(m != NULL, "load: %s", fp4rt_last_error());
    if (!m) return test_summary("api");
    test_arguments(m);
    test_continue(m);
    test_cancel(m);
    test_plan(m);
    fp4rt_model_free(m);
    return test_summary("api");
}
