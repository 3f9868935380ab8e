/* The backend wrappers (runtime/backend/backend.c): the step contract is checked
 * once, before any backend runs; NULL arguments are refused; optional slots get
 * their defaults. A fake backend counts what reaches it. */
#include "tests/test_util.h"

#include <limits.h>

#include "runtime/backend/backend.h"

static int g_runs, g_prepares;

struct fp4rt_buffer {
    int dummy;
};

static fp4rt_status fake_create(int n_threads, void **ctx) {
    static int the_ctx;
    (void)n_threads;
    *ctx = &the_ctx;
    return FP4RT_OK;
}
static void fake_destroy(void *ctx) { (void)ctx; }
static fp4rt_status fake_alloc(void *ctx, size_t bytes, const char *what, fp4rt_buffer **out) {
    static fp4rt_buffer bufs[8];
    static int n;
    (void)ctx, (void)bytes, (void)what;
    *out = &bufs[n++ % 8];
    return FP4RT_OK;
}
static void fake_free(void *ctx, fp4rt_buffer *b) { (void)ctx, (void)b; }
static fp4rt_status fake_copy(void *ctx, fp4rt_buffer *b, size_t offset, const void *src, size_t bytes) {
    (void)ctx, (void)b, (void)offset, (void)src, (void)bytes;
    return FP4RT_OK;
}
static fp4rt_status fake_download(void *ctx, fp4rt_buffer *b, size_t offset, void *dst, size_t bytes) {
    (void)ctx, (void)b, (void)offset, (void)dst, (void)bytes;
    return FP4RT_OK;
}
static fp4rt_status fake_clear(void *ctx, fp4rt_buffer *b) { (void)ctx, (void)b; return FP4RT_OK; }
static int g_copies;
static fp4rt_status fake_buffer_copy(void *ctx, fp4rt_buffer *dst, size_t dst_off, fp4rt_buffer *src, size_t src_off,
                                     size_t bytes) {
    (void)ctx, (void)dst, (void)dst_off, (void)src, (void)src_off, (void)bytes;
    g_copies++;
    return FP4RT_OK;
}
static fp4rt_status fake_run(void *ctx, const fp4rt_program *p, const fp4rt_session_buffers *sb,
                             const fp4rt_step *step) {
    (void)ctx, (void)p, (void)sb, (void)step;
    g_runs++;
    return FP4RT_OK;
}
static fp4rt_status fake_prepare(void *ctx, const fp4rt_program *p) {
    (void)ctx, (void)p;
    g_prepares++;
    return FP4RT_OK;
}

/* Only the required slots: every optional one takes its default. */
static const fp4rt_backend_ops k_bare = {
    .name = "bare", .create = fake_create, .destroy = fake_destroy, .run = fake_run,
    .buffer_alloc = fake_alloc, .buffer_free = fake_free, .buffer_clear = fake_clear,
    .buffer_upload = fake_copy, .buffer_download = fake_download,
};

static fp4rt_status fake_argmax(void *ctx, fp4rt_buffer *l, size_t off, int n, const uint8_t *valid, int32_t *out) {
    (void)ctx, (void)l, (void)off, (void)n, (void)valid;
    *out = 0;
    return FP4RT_OK;
}

/* Runs `step` through the wrapper; 1 when the backend saw it. */
static int reached(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p, const fp4rt_session_buffers *sb,
                   const fp4rt_step *step, fp4rt_status want) {
    int before = g_runs;
    fp4rt_status st = fp4rt_backend_run(be, ctx, p, sb, step);
    CHECK_MSG(st == want, "status %d, want %d (%s)", (int)st, (int)want, st ? fp4rt_last_error() : "ok");
    if (st) CHECK_MSG(strchr(fp4rt_last_error(), '\n') == NULL, "one line: %s", fp4rt_last_error());
    return g_runs != before;
}

static void test_step_contract(void) {
    void *ctx = NULL;
    CHECK_EQ_INT(fp4rt_backend_create(&k_bare, 1, &ctx), FP4RT_OK);
    fp4rt_weights w = {0};
    w.cfg.vocab = 10;
    fp4rt_op embed = {.kind = FP4RT_OP_EMBED}; /* the tokens are checked when the program embeds them */
    fp4rt_program p = {.weights = &w, .n_ops = 1, .ops = &embed};
    fp4rt_session_buffers sb = {.n_ctx = 8, .chunk = 4};
    CHECK_EQ_INT(fp4rt_backend_alloc(&k_bare, ctx, 64, "scratch", &sb.scratch), FP4RT_OK);
    int32_t tok[4] = {1, 2, 3, 9}, bad_tok[2] = {1, 10}, neg_tok[1] = {-1}, pick = 0;

    fp4rt_step ok = {.tokens = tok, .n_tokens = 4, .pos0 = 4};
    /* the logits buffer is missing: refused before the backend */
    CHECK(!reached(&k_bare, ctx, &p, &sb, &ok, FP4RT_INVALID_ARGUMENT));
    CHECK_EQ_INT(fp4rt_backend_alloc(&k_bare, ctx, 64, "logits", &sb.logits), FP4RT_OK);
    CHECK(reached(&k_bare, ctx, &p, &sb, &ok, FP4RT_OK)); /* fills the context exactly */

    fp4rt_step s = ok;
    s.n_tokens = 0;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    s = ok;
    s.n_tokens = 5, s.pos0 = 0; /* more than the chunk */
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    s = ok;
    s.pos0 = 5; /* 5 + 4 > n_ctx */
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    CHECK(strstr(fp4rt_last_error(), "context full") != NULL);
    s = ok;
    s.pos0 = -1;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    s = ok;
    s.pos0 = INT_MAX; /* pos0 + n_tokens would overflow */
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    s = ok;
    s.tokens = NULL;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    s = (fp4rt_step){.tokens = bad_tok, .n_tokens = 2};
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    CHECK(strstr(fp4rt_last_error(), "index 1") != NULL);
    s = (fp4rt_step){.tokens = neg_tok, .n_tokens = 1};
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    fp4rt_program no_embed = {.weights = &w}; /* op-level programs: any token */
    CHECK(reached(&k_bare, ctx, &no_embed, &sb, &s, FP4RT_OK));
    /* a device pick on a backend without the argmax slot, and of a step without logits */
    s = (fp4rt_step){.tokens = tok, .n_tokens = 1, .argmax_out = &pick};
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_UNSUPPORTED));
    s.no_logits = 1;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    /* a verify (decode_rows) step: only on a backend that has it, at most FP4RT_DECODE_ROWS_MAX rows */
    s = ok;
    s.decode_rows = 1;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_UNSUPPORTED));
    CHECK(strstr(fp4rt_last_error(), "decode_rows") != NULL);
    fp4rt_backend_ops rows = k_bare;
    rows.decode_rows = 1;
    CHECK(reached(&rows, ctx, &p, &sb, &s, FP4RT_OK));
    fp4rt_session_buffers wide = sb;
    wide.chunk = wide.n_ctx = FP4RT_DECODE_ROWS_MAX + 1;
    int32_t many[FP4RT_DECODE_ROWS_MAX + 1] = {0};
    s = (fp4rt_step){.tokens = many, .n_tokens = FP4RT_DECODE_ROWS_MAX + 1, .decode_rows = 1};
    CHECK(!reached(&rows, ctx, &p, &wide, &s, FP4RT_INVALID_ARGUMENT));
    s.n_tokens = FP4RT_DECODE_ROWS_MAX;
    CHECK(reached(&rows, ctx, &p, &wide, &s, FP4RT_OK));
    /* every row's pick (argmax_all), a pick over logits_rows: only with ops.argmax_rows */
    int32_t picks[FP4RT_DECODE_ROWS_MAX + 1];
    fp4rt_backend_ops pick1 = rows;
    pick1.argmax = fake_argmax;
    fp4rt_backend_ops pickn = pick1;
    pickn.argmax_rows = 1;
    s = (fp4rt_step){.tokens = many, .n_tokens = 3, .all_logits = 1, .argmax_out = picks, .argmax_all = 1};
    CHECK(!reached(&pick1, ctx, &p, &wide, &s, FP4RT_UNSUPPORTED));
    CHECK(strstr(fp4rt_last_error(), "argmax_all") != NULL);
    CHECK(reached(&pickn, ctx, &p, &wide, &s, FP4RT_OK));
    s.all_logits = 0; /* the last row's logits only */
    CHECK(!reached(&pickn, ctx, &p, &wide, &s, FP4RT_INVALID_ARGUMENT));
    s.all_logits = 1, s.argmax_out = NULL;
    CHECK(!reached(&pickn, ctx, &p, &wide, &s, FP4RT_INVALID_ARGUMENT));
    s.argmax_out = picks, s.n_tokens = FP4RT_DECODE_ROWS_MAX + 1;
    CHECK(!reached(&pickn, ctx, &p, &wide, &s, FP4RT_INVALID_ARGUMENT));
    s = (fp4rt_step){.tokens = tok, .n_tokens = 1, .argmax_out = &pick, .logits_rows = 4};
    CHECK(!reached(&pick1, ctx, &p, &sb, &s, FP4RT_UNSUPPORTED));
    CHECK(strstr(fp4rt_last_error(), "logits_rows") != NULL);
    CHECK(reached(&pickn, ctx, &p, &sb, &s, FP4RT_OK));
    /* a kv_only step (the MTP feed): only without logits, on a program without GDN state */
    s = ok;
    s.kv_only = 1;
    CHECK(!reached(&k_bare, ctx, &p, &sb, &s, FP4RT_INVALID_ARGUMENT));
    CHECK(strstr(fp4rt_last_error(), "kv_only") != NULL);
    s.no_logits = 1;
    CHECK(reached(&k_bare, ctx, &p, &sb, &s, FP4RT_OK));
    fp4rt_program gdn = p;
    gdn.n_gdn_layers = 1;
    CHECK(!reached(&k_bare, ctx, &gdn, &sb, &s, FP4RT_INVALID_ARGUMENT));
    /* NULL pieces */
    CHECK(!reached(&k_bare, NULL, &p, &sb, &ok, FP4RT_INVALID_ARGUMENT));
    CHECK(!reached(NULL, ctx, &p, &sb, &ok, FP4RT_INVALID_ARGUMENT));
    CHECK(!reached(&k_bare, ctx, NULL, &sb, &ok, FP4RT_INVALID_ARGUMENT));
    CHECK(!reached(&k_bare, ctx, &p, NULL, &ok, FP4RT_INVALID_ARGUMENT));
    CHECK(!reached(&k_bare, ctx, &p, &sb, NULL, FP4RT_INVALID_ARGUMENT));
    CHECK_EQ_INT(fp4rt_backend_check_step(&k_bare, &p, &sb, &ok), FP4RT_OK);

    fp4rt_backend_free(&k_bare, ctx, sb.scratch);
    fp4rt_backend_free(&k_bare, ctx, sb.logits);
    fp4rt_backend_free(&k_bare, ctx, NULL); /* nothing */
    fp4rt_backend_destroy(&k_bare, ctx);
    fp4rt_backend_destroy(&k_bare, NULL); /* nothing */
}

/* fp4rt_backend_copy: the slot when there is one, else through the host;
 * the same buffer twice and NULL buffers refused. */
static void test_copy(void) {
    void *ctx = NULL;
    CHECK_EQ_INT(fp4rt_backend_create(&k_bare, 1, &ctx), FP4RT_OK);
    fp4rt_buffer *a = NULL, *b = NULL;
    CHECK(!fp4rt_backend_alloc(&k_bare, ctx, 64, "a", &a) && !fp4rt_backend_alloc(&k_bare, ctx, 64, "b", &b));
    fp4rt_backend_ops with = k_bare;
    with.buffer_copy = fake_buffer_copy;
    CHECK_EQ_INT(fp4rt_backend_copy(&with, ctx, a, 0, b, 8, 16), FP4RT_OK);
    CHECK_EQ_INT(g_copies, 1);
    CHECK_EQ_INT(fp4rt_backend_copy(&k_bare, ctx, a, 0, b, 8, 16), FP4RT_OK); /* download + upload */
    CHECK_EQ_INT(g_copies, 1);
    CHECK_EQ_INT(fp4rt_backend_copy(&with, ctx, a, 0, a, 8, 16), FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "same buffer") != NULL);
    CHECK_EQ_INT(fp4rt_backend_copy(&with, ctx, NULL, 0, b, 0, 16), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_copy(&with, ctx, a, 0, b, 0, 0), FP4RT_OK); /* nothing */
    CHECK_EQ_INT(g_copies, 1);
    fp4rt_backend_destroy(&k_bare, ctx);
}

static void test_defaults(void) {
    void *ctx = NULL;
    CHECK_EQ_INT(fp4rt_backend_create(&k_bare, 0, &ctx), FP4RT_INVALID_ARGUMENT);
    CHECK(ctx == NULL);
    CHECK_EQ_INT(fp4rt_backend_create(&k_bare, 2, &ctx), FP4RT_OK);
    fp4rt_weights w = {0};
    w.cfg.vocab = 10;
    fp4rt_program p = {.weights = &w};
    char line[64] = "x";
    fp4rt_backend_describe(&k_bare, ctx, line, sizeof line);
    CHECK(!strcmp(line, "bare"));
    CHECK_EQ_INT(fp4rt_backend_synchronize(&k_bare, ctx), FP4RT_OK);
    CHECK_EQ_INT(fp4rt_backend_max_chunk(&k_bare, ctx, &p), INT_MAX);
    CHECK_EQ_INT(fp4rt_backend_set_profile(&k_bare, ctx, 1), FP4RT_UNSUPPORTED);
    CHECK_EQ_INT(fp4rt_backend_set_observer(&k_bare, ctx, NULL, NULL), FP4RT_UNSUPPORTED);
    double bw = -1;
    CHECK_EQ_INT(fp4rt_backend_measure_bandwidth(&k_bare, ctx, &bw), FP4RT_UNSUPPORTED);
    CHECK(bw == 0);
    fp4rt_buffer *b = NULL;
    CHECK_EQ_INT(fp4rt_backend_alloc(&k_bare, ctx, 16, "logits", &b), FP4RT_OK);
    int32_t id = 0, ids[1];
    float vals[1];
    fp4rt_topk_request req = {.k = 1, .temperature = 1, .repetition_penalty = 1};
    CHECK_EQ_INT(fp4rt_backend_argmax(&k_bare, ctx, b, 0, 4, NULL, &id), FP4RT_UNSUPPORTED);
    CHECK_EQ_INT(fp4rt_backend_argmax(&k_bare, ctx, b, 0, 0, NULL, &id), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_top_k(&k_bare, ctx, b, 0, 4, &req, vals, ids), FP4RT_UNSUPPORTED);
    CHECK_EQ_INT(fp4rt_backend_top_k(&k_bare, ctx, b, 0, 4, NULL, vals, ids), FP4RT_INVALID_ARGUMENT);
    /* buffers: NULL refused, zero bytes a no-op */
    float f[4] = {0};
    CHECK_EQ_INT(fp4rt_backend_upload(&k_bare, ctx, NULL, 0, f, 16), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_upload(&k_bare, ctx, b, 0, NULL, 16), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_upload(&k_bare, ctx, b, 0, NULL, 0), FP4RT_OK);
    CHECK_EQ_INT(fp4rt_backend_download(&k_bare, ctx, b, 0, NULL, 16), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_download(&k_bare, ctx, b, 0, f, 16), FP4RT_OK);
    CHECK_EQ_INT(fp4rt_backend_clear(&k_bare, ctx, NULL), FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_backend_alloc(&k_bare, ctx, 16, "x", NULL), FP4RT_INVALID_ARGUMENT);
    /* prepare: no slot is nothing to do; synthetic weights need prepare_synthetic */
    CHECK_EQ_INT(fp4rt_backend_prepare(&k_bare, ctx, &p, 0), FP4RT_OK);
    fp4rt_backend_ops with_prepare = k_bare;
    with_prepare.prepare = fake_prepare;
    CHECK_EQ_INT(fp4rt_backend_prepare(&with_prepare, ctx, &p, 0), FP4RT_OK);
    CHECK_EQ_INT(g_prepares, 1);
    w.synthetic = 1;
    CHECK_EQ_INT(fp4rt_backend_prepare(&with_prepare, ctx, &p, 7), FP4RT_UNSUPPORTED);
    CHECK_EQ_INT(g_prepares, 1);
    fp4rt_backend_free(&k_bare, ctx, b);
    fp4rt_backend_destroy(&k_bare, ctx);
}

/* The real CPU backend behind the wrapper: a bad step never reaches it. */
static void test_cpu(void) {
    void *ctx = NULL;
    CHECK_EQ_INT(fp4rt_backend_create(&fp4rt_backend_cpu, 1, &ctx), FP4RT_OK);
    char line[128];
    fp4rt_backend_describe(&fp4rt_backend_cpu, ctx, line, sizeof line);
    CHECK(!strncmp(line, "cpu:", 4));
    CHECK_EQ_INT(fp4rt_backend_max_chunk(&fp4rt_backend_cpu, ctx, NULL), INT_MAX);
    CHECK_EQ_INT(fp4rt_backend_set_profile(&fp4rt_backend_cpu, ctx, 0), FP4RT_OK);
    fp4rt_weights w = {0};
    w.cfg.vocab = 10;
    fp4rt_program p = {.weights = &w}; /* no ops */
    fp4rt_session_buffers sb = {.n_ctx = 2, .chunk = 2};
    CHECK_EQ_INT(fp4rt_backend_alloc(&fp4rt_backend_cpu, ctx, 64, "scratch", &sb.scratch), FP4RT_OK);
    CHECK_EQ_INT(fp4rt_backend_alloc(&fp4rt_backend_cpu, ctx, 64, "logits", &sb.logits), FP4RT_OK);
    int32_t tok[2] = {0, 1};
    fp4rt_step s = {.tokens = tok, .n_tokens = 2, .pos0 = 1};
    CHECK_EQ_INT(fp4rt_backend_run(&fp4rt_backend_cpu, ctx, &p, &sb, &s), FP4RT_INVALID_ARGUMENT);
    s.pos0 = 0;
    CHECK_EQ_INT(fp4rt_backend_run(&fp4rt_backend_cpu, ctx, &p, &sb, &s), FP4RT_OK);
    fp4rt_backend_free(&fp4rt_backend_cpu, ctx, sb.scratch);
    fp4rt_backend_free(&fp4rt_backend_cpu, ctx, sb.logits);
    fp4rt_backend_destroy(&fp4rt_backend_cpu, ctx);
}

int main(void) {
    test_step_contract();
    test_defaults();
    test_copy();
    test_cpu();
    return test_summary("test_backend_wrappers");
}
