/* Speculative decoding with the MTP head (issue 16, runtime/engine/speculate.h),
 * on one device:
 *   test_speculate cpu|vulkan [recipe] [n_tokens]
 * on the trained reference model models/qwen35-kjv-10m (BF16, or quantized here
 * with the recipe: nvidia-mixed, nvfp4-all, nvfp4-w4a4). Greedy, with K = 1..5
 * drafts per verify step, against plain greedy generation of the same session
 * settings (ids compared, then what the session holds):
 * - n_tokens (default 300) tokens for every K, with the acceptance statistics
 *   consistent and bounded; then the session continues identically;
 * - rejection forced at every draft position j (the test hook
 *   fp4rt_session.spec_corrupt_draft replaces draft j): never accepted there,
 *   the output unchanged;
 * - a prefill chunk of 4 (the prompt across chunks; K + 1 > chunk runs the
 *   verify as 1-token steps), the end of the context (K shrinks, STOP_CONTEXT,
 *   the last logits as plain decoding leaves them), after fp4rt_session_reset,
 *   mixed with plain generation and fp4rt_session_eval, a callback stop and a
 *   stop string, max_tokens;
 * - misuse: spec_drafts out of range, a session without MTP state.
 * Skips (exit 0, "skipped: ...") on vulkan without a Vulkan device. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "runtime/engine/model.h"
#include "runtime/tools/quantize.h"
#include "tests/test_devices.h"

#include <math.h>
#include <stdint.h>

#define MODEL "models/qwen35-kjv-10m"

static int V;
static int32_t g_prompt[64];
static int g_np;

/* Generation of max tokens (0: until the context is full) with K drafts
 * (0: plain) on a fresh session; ids into out [cap]. */
typedef struct run_opts {
    int n_ctx, chunk, k, max, corrupt, ignore_eos, stop_after;
    const char *stop;
} run_opts;

typedef struct run_out {
    int32_t ids[1024];
    fp4rt_generate_result res;
    int n_past;
    float *logits; /* [V] the session's last logits when it had them (no pending token) */
    int have_logits;
    int32_t next[32]; /* 32 tokens a plain continuation generates afterwards */
} run_out;

static int count_cb(const fp4rt_token_event *ev, void *user) {
    (void)ev;
    int *left = user;
    return --*left <= 0;
}

static int run(fp4rt_model *m, const run_opts *o, run_out *out) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = o->n_ctx;
    sp.prefill_chunk = o->chunk;
    sp.mtp = 1;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    if (!s) return 0;
    s->spec_corrupt_draft = o->corrupt;
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.max_tokens = o->max;
    gp.ignore_eos = o->ignore_eos;
    gp.spec_drafts = o->k;
    gp.output_ids = out->ids;
    gp.output_cap = 1024;
    const char *stops[1] = {o->stop};
    gp.stop = o->stop ? stops : NULL;
    gp.n_stop = o->stop ? 1 : 0;
    int left = o->stop_after;
    memset(out->ids, 0xff, sizeof out->ids);
    fp4rt_status st = fp4rt_generate(s, g_prompt, (size_t)g_np, &gp, o->stop_after ? count_cb : NULL, &left,
                                     &out->res);
    CHECK_MSG(!st, "generate (K = %d): %s", o->k, fp4rt_last_error());
    out->n_past = fp4rt_session_n_past(s);
    out->have_logits = s->have_logits && !s->pending;
    if (out->have_logits) memcpy(out->logits, s->last_logits, (size_t)V * sizeof(float));
    /* a plain continuation: the session holds what plain decoding's would */
    memset(out->next, 0xff, sizeof out->next);
    int room = o->n_ctx - out->n_past;
    if (!st && room > 0) {
        gp.spec_drafts = 0;
        gp.max_tokens = FP4RT_MIN(32, room);
        gp.output_ids = out->next;
        gp.output_cap = 32;
        gp.n_stop = 0;
        s->spec_corrupt_draft = 0;
        st = fp4rt_generate(s, NULL, 0, &gp, NULL, NULL, NULL);
        CHECK_MSG(!st, "continuation (K = %d): %s", o->k, fp4rt_last_error());
    }
    fp4rt_session_free(s);
    return !st;
}

/* Plain vs speculative runs of the same options: ids, stop, what the session holds. */
static int same_run(const char *what, const run_out *a, const run_out *b) {
    int ok = a->res.n_generated == b->res.n_generated && a->res.stop_reason == b->res.stop_reason &&
             !memcmp(a->ids, b->ids, sizeof a->ids) && a->n_past == b->n_past && !memcmp(a->next, b->next, sizeof a->next) &&
             a->have_logits == b->have_logits &&
             (!a->have_logits || !memcmp(a->logits, b->logits, (size_t)V * sizeof(float)));
    CHECK_MSG(ok, "%s: speculative output differs from plain (generated %d / %d, stop %d / %d, n_past %d / %d)", what,
              b->res.n_generated, a->res.n_generated, (int)b->res.stop_reason, (int)a->res.stop_reason, b->n_past,
              a->n_past);
    if (ok) return 1;
    for (int i = 0; i < a->res.n_generated; i++)
        if (a->ids[i] != b->ids[i]) {
            printf("    first difference at token %d: plain %d, speculative %d\n", i, a->ids[i], b->ids[i]);
            break;
        }
    return 0;
}

/* The statistics of a speculative run are consistent. */
static void check_stats(const char *what, const fp4rt_generate_result *r, int k) {
    int d = 0, a = 0;
    for (int j = 0; j < FP4RT_SPEC_MAX_DRAFTS; j++) {
        d += r->spec_drafted_at[j];
        a += r->spec_accepted_at[j];
        CHECK_MSG(r->spec_accepted_at[j] <= r->spec_drafted_at[j], "%s: position %d accepted %d of %d", what, j,
                  r->spec_accepted_at[j], r->spec_drafted_at[j]);
        if (j >= k) CHECK_EQ_INT(r->spec_drafted_at[j], 0);
        if (j > 0) CHECK(r->spec_accepted_at[j] <= r->spec_accepted_at[j - 1]); /* a prefix is accepted */
    }
    CHECK_EQ_INT(d, r->spec_drafted);
    CHECK_EQ_INT(a, r->spec_accepted);
    CHECK(r->spec_steps > 0 && r->spec_drafted <= k * r->spec_steps);
    CHECK(fabs(r->spec_accept_len - (1.0 + (double)r->spec_accepted / r->spec_steps)) < 1e-12);
    /* every generated token after the first came from a verify row or a plain step */
    CHECK(r->spec_steps + r->spec_accepted <= r->n_generated);
}

static run_out g_a, g_b;

/* Plain, then speculative with each K, of the same options. */
static void compare(fp4rt_model *m, const char *what, run_opts o, int k_lo, int k_hi) {
    o.k = 0;
    o.corrupt = 0;
    if (!run(m, &o, &g_a)) return;
    for (int k = k_lo; k <= k_hi; k++) {
        run_opts so = o;
        so.k = k;
        if (!run(m, &so, &g_b)) return;
        char w[160];
        snprintf(w, sizeof w, "%s, K = %d", what, k);
        int same = same_run(w, &g_a, &g_b);
        const fp4rt_generate_result *r = &g_b.res;
        if (r->spec_steps) check_stats(w, r, k);
        printf("  %-34s K=%d: %s; %d tokens, %d verify steps, accepted %d of %d drafts (mean length %.2f)\n", what,
               k, same ? "identical" : "DIFFER", r->n_generated, r->spec_steps, r->spec_accepted, r->spec_drafted,
               r->spec_accept_len);
    }
}

/* Rejection forced at draft position j: none accepted there, output the same. */
static void check_corrupt(fp4rt_model *m, int n_tokens) {
    run_opts o = {.n_ctx = 512, .chunk = 64, .max = n_tokens / 2, .ignore_eos = 1};
    if (!run(m, &o, &g_a)) return;
    for (int j = 1; j <= FP4RT_SPEC_MAX_DRAFTS; j++) {
        run_opts so = o;
        so.k = FP4RT_SPEC_MAX_DRAFTS;
        so.corrupt = j;
        if (!run(m, &so, &g_b)) return;
        char w[64];
        snprintf(w, sizeof w, "draft %d corrupted", j);
        int same = same_run(w, &g_a, &g_b);
        const int *acc = g_b.res.spec_accepted_at, *dr = g_b.res.spec_drafted_at;
        /* the replaced draft is the model's pick only by chance */
        CHECK_MSG(acc[j - 1] * 20 <= dr[j - 1], "%s: accepted %d of %d at that position", w, acc[j - 1], dr[j - 1]);
        if (j > 1) CHECK_MSG(acc[j - 2] > 0, "%s: nothing accepted before it: the rejection is not at position %d", w, j);
        printf("  %-34s: %s; accepted per position %d %d %d %d %d of %d\n", w, same ? "identical" : "DIFFER", acc[0],
               acc[1], acc[2], acc[3], acc[4], dr[0]);
    }
}

/* Speculative and plain generation interleaved on one session, with resets and
 * evaluations between, vs the same calls all plain. */
static void check_mixed(fp4rt_model *m) {
    int32_t ids[2][400];
    int n[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        fp4rt_session_params sp = fp4rt_session_default_params();
        sp.n_ctx = 400;
        sp.prefill_chunk = 16;
        sp.mtp = 1;
        fp4rt_session *s = fp4rt_session_create(m, &sp);
        CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
        if (!s) return;
        fp4rt_status st = FP4RT_OK;
        /* generate (spec, plain, spec), a 5-token prompt appended and generate; reset; generate */
        const int ks[] = {3, 0, 2, -1, -2, 5};
        for (size_t c = 0; !st && c < sizeof ks / sizeof ks[0]; c++) {
            if (ks[c] == -2) {
                fp4rt_session_reset(s);
                continue;
            }
            fp4rt_generate_params gp = fp4rt_generate_default_params();
            gp.sampling.greedy = 1;
            gp.ignore_eos = 1;
            gp.max_tokens = 37;
            gp.spec_drafts = pass ? (ks[c] < 0 ? 4 : ks[c]) : 0;
            gp.output_ids = ids[pass] + n[pass];
            gp.output_cap = 37;
            int np = fp4rt_session_n_past(s) == 0 ? g_np : ks[c] == -1 ? 5 : 0;
            fp4rt_generate_result r;
            st = fp4rt_generate(s, ks[c] == -1 ? g_prompt + 3 : g_prompt, (size_t)np, &gp, NULL, NULL, &r);
            n[pass] += r.n_generated;
        }
        CHECK_MSG(!st, "mixed calls: %s", fp4rt_last_error());
        fp4rt_session_free(s);
    }
    int same = n[0] == n[1] && !memcmp(ids[0], ids[1], (size_t)n[0] * sizeof(int32_t));
    CHECK_MSG(same, "speculative and plain calls mixed on one session differ from plain calls");
    printf("  mixed with plain calls, eval, reset: %d tokens %s\n", n[1], same ? "identical" : "DIFFER");
}

static void check_refused(fp4rt_model *m) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = 64;
    fp4rt_session *s = fp4rt_session_create(m, &sp); /* no MTP state */
    CHECK(s != NULL);
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.max_tokens = 2;
    gp.spec_drafts = 2;
    CHECK(fp4rt_generate(s, g_prompt, 4, &gp, NULL, NULL, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "fp4rt_session_params.mtp") != NULL);
    gp.spec_drafts = FP4RT_SPEC_MAX_DRAFTS + 1;
    CHECK(fp4rt_generate(s, g_prompt, 4, &gp, NULL, NULL, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK(strstr(fp4rt_last_error(), "spec_drafts") != NULL);
    gp.spec_drafts = -1;
    CHECK(fp4rt_generate(s, g_prompt, 4, &gp, NULL, NULL, NULL) == FP4RT_INVALID_ARGUMENT);
    CHECK_EQ_INT(fp4rt_session_n_past(s), 0); /* nothing ran */
    fp4rt_session_free(s);
    fp4rt_clear_error();
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "cpu";
    const char *recipe = argc > 2 && strcmp(argv[2], "bf16") ? argv[2] : NULL;
    int n_tokens = argc > 3 ? atoi(argv[3]) : 300;
    if (n_tokens < 40 || n_tokens > 1000) n_tokens = 300;
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    const char *dir = MODEL;
    if (recipe) {
        test_tmpdir(strcmp(kind, "cpu") ? "speculate_vk" : "speculate");
        dir = test_tmp_path(recipe);
        CHECK_MSG(!fp4rt_quantize(MODEL, dir, recipe, 0, NULL, NULL), "quantize %s: %s", recipe, fp4rt_last_error());
    }
    int n = 0;
    int32_t *text = test_read_tokens("tests/fixtures/kjv-heldout.tokens.txt", &n);
    CHECK_MSG(text && n >= 24, "tests/fixtures/kjv-heldout.tokens.txt missing");
    if (!text) return test_summary("test_speculate");
    g_np = 24;
    memcpy(g_prompt, text, (size_t)g_np * sizeof *text);
    free(text);
    fp4rt_model *m = test_load_model(dir, dev);
    if (!m) return test_summary("test_speculate");
    V = fp4rt_model_n_vocab(m);
    g_a.logits = malloc((size_t)V * sizeof(float));
    g_b.logits = malloc((size_t)V * sizeof(float));
    printf("%s (%s) on %s, %d tokens\n", MODEL, recipe ? recipe : "bf16", dev, n_tokens);
    compare(m, "greedy", (run_opts){.n_ctx = 1024, .chunk = 64, .max = n_tokens, .ignore_eos = 1}, 1,
            FP4RT_SPEC_MAX_DRAFTS);
    check_corrupt(m, n_tokens);
    /* the prompt over 6 chunks; K + 1 > 4: the verify runs as 1-token steps */
    compare(m, "prefill chunk 4", (run_opts){.n_ctx = 256, .chunk = 4, .max = 60, .ignore_eos = 1}, 3, 5);
    /* until the context is full: K shrinks over the last positions */
    for (int extra = 0; extra < 3; extra++)
        compare(m, "context end", (run_opts){.n_ctx = g_np + 40 + extra, .chunk = 64, .ignore_eos = 1}, 1 + extra * 2,
                1 + extra * 2);
    compare(m, "callback stop after 23 pieces", (run_opts){.n_ctx = 256, .chunk = 64, .max = 60, .ignore_eos = 1,
                                                            .stop_after = 23}, 2, 4);
    compare(m, "stop string \"the\"", (run_opts){.n_ctx = 256, .chunk = 64, .max = 60, .ignore_eos = 1,
                                                  .stop = " the"}, 3, 3);
    compare(m, "max_tokens 7", (run_opts){.n_ctx = 256, .chunk = 64, .max = 7, .ignore_eos = 1}, 5, 5);
    compare(m, "stop at end of generation", (run_opts){.n_ctx = 1024, .chunk = 64, .max = n_tokens}, 3, 3);
    check_mixed(m);
    check_refused(m);
    free(g_a.logits);
    free(g_b.logits);
    fp4rt_model_free(m);
    return test_summary("test_speculate");
}
