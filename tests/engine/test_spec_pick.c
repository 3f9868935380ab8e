/* Greedy speculative decoding with the picks on the device (issue 16;
 * runtime/engine/speculate.h, `device`), on the trained reference model
 * models/qwen35-kjv-10m:
 *   test_spec_pick cpu|vulkan
 * - fp4rt_session_mtp_draft: the drafts picked on the device equal the host's
 *   greedy picks of the downloaded draft logits, with the whole vocabulary and
 *   with a draft vocabulary (FP4RT_MTP_DRAFT_VOCAB), and download no logits;
 * - fp4rt_session_verify_pick: every row's pick equals the CPU sampler's greedy
 *   pick of fp4rt_session_verify's logits of the same rows; nothing downloaded;
 * - fp4rt_generate greedy with K = 1..4 drafts (and K = 3 with the draft
 *   vocabulary): the tokens of plain greedy decoding and, on a backend with the
 *   argmax slot, exactly as many logits downloaded as plain greedy decoding
 *   downloads (the prompt's last row: the counter fp4rt_session.logits_down);
 *   until the context is full: the last logits plain decoding leaves;
 * - the same with the backend table's argmax_rows off (the argmax slot row by
 *   row after the step: what a backend without fp4rt_step.argmax_all gets).
 * The CPU backend has the argmax slot and argmax_rows too (cpu_argmax.c).
 * Skips (exit 0, "skipped: ...") on vulkan without a Vulkan device. */
#include "tests/test_util.h"
#include "tests/test_session_util.h"

#include "runtime/engine/model.h"
#include "runtime/engine/mtp.h"
#include "runtime/text/sampler.h"

#include <math.h>
#include <stdint.h>

#define MODEL "models/qwen35-kjv-10m"
#define N_GEN 48
#define DRAFT_VOCAB "1024"

static int V, g_np;
static int32_t g_prompt[24];

static fp4rt_session *mtp_session(fp4rt_model *m, int n_ctx) {
    fp4rt_session_params sp = fp4rt_session_default_params();
    sp.n_ctx = n_ctx;
    sp.prefill_chunk = 64;
    sp.mtp = 1;
    fp4rt_session *s = fp4rt_session_create(m, &sp);
    CHECK_MSG(s != NULL, "session: %s", fp4rt_last_error());
    return s;
}

typedef struct gen_out {
    int32_t ids[256];
    int n;
    int stop;
    uint64_t down; /* logits bytes downloaded */
    int have_logits;
    float *logits; /* [V] the session's last logits when it has them */
    fp4rt_generate_result res;
} gen_out;

/* Greedy generation of max tokens (0: until the context is full) with k drafts
 * (0: plain) on a fresh session of n_ctx. */
static int gen(fp4rt_model *m, int k, int n_ctx, int max, gen_out *o) {
    fp4rt_session *s = mtp_session(m, n_ctx);
    if (!s) return 0;
    fp4rt_generate_params gp = fp4rt_generate_default_params();
    gp.sampling.greedy = 1;
    gp.max_tokens = max;
    gp.ignore_eos = 1;
    gp.spec_drafts = k;
    gp.output_ids = o->ids;
    gp.output_cap = 256;
    memset(o->ids, 0xff, sizeof o->ids);
    fp4rt_status st = fp4rt_generate(s, g_prompt, (size_t)g_np, &gp, NULL, NULL, &o->res);
    CHECK_MSG(!st, "generate K = %d: %s", k, fp4rt_last_error());
    o->n = o->res.n_generated;
    o->stop = (int)o->res.stop_reason;
    o->down = s->logits_down;
    o->have_logits = s->have_logits && !s->pending;
    if (o->have_logits) memcpy(o->logits, s->last_logits, (size_t)V * sizeof(float));
    fp4rt_session_free(s);
    return !st;
}

static gen_out g_plain, g_spec;

/* Speculative runs vs plain of the same session size and length. */
static void compare(fp4rt_model *m, const char *what, int n_ctx, int max, int k_lo, int k_hi) {
    if (!gen(m, 0, n_ctx, max, &g_plain)) return;
    int device = m->backend->argmax != NULL;
    for (int k = k_lo; k <= k_hi; k++) {
        if (!gen(m, k, n_ctx, max, &g_spec)) return;
        int same = g_plain.n == g_spec.n && g_plain.stop == g_spec.stop &&
                   !memcmp(g_plain.ids, g_spec.ids, sizeof g_plain.ids) && g_plain.have_logits == g_spec.have_logits &&
                   (!g_plain.have_logits || !memcmp(g_plain.logits, g_spec.logits, (size_t)V * sizeof(float)));
        CHECK_MSG(same, "%s, K = %d: speculative output differs from plain (%d / %d tokens, stop %d / %d, "
                  "last logits %d / %d)", what, k, g_spec.n, g_plain.n, g_spec.stop, g_plain.stop,
                  g_spec.have_logits, g_plain.have_logits);
        CHECK_MSG(g_spec.res.spec_accepted > 0, "%s, K = %d: no draft accepted (%d verify steps)", what, k,
                  g_spec.res.spec_steps);
        if (device) /* the prompt's row (and the last logits at the context end), as plain decoding */
            CHECK_MSG(g_spec.down == g_plain.down, "%s, K = %d: %llu logits bytes downloaded, plain %llu", what, k,
                      (unsigned long long)g_spec.down, (unsigned long long)g_plain.down);
        printf("  %-40s K=%d: %s; %d tokens, %d of %d drafts accepted; logits downloaded: %llu bytes "
               "(plain %llu, %d rows of %d)\n", what, k, same ? "identical" : "DIFFER", g_spec.n,
               g_spec.res.spec_accepted, g_spec.res.spec_drafted, (unsigned long long)g_spec.down,
               (unsigned long long)g_plain.down, (int)(g_spec.down / ((uint64_t)V * 4)), V);
    }
}

/* The CPU sampler's greedy pick of a logits row over the model's valid ids. */
static int32_t host_pick(const fp4rt_model *m, const float *row, float *tmp) {
    fp4rt_sampling_resolved sp = {.greedy = 1, .temperature = 1, .top_p = 1, .repetition_penalty = 1};
    fp4rt_sampler smp;
    if (fp4rt_sampler_init(&smp, &sp, V, m->valid_ids)) return -2;
    memcpy(tmp, row, (size_t)V * sizeof(float));
    int32_t id = fp4rt_sampler_sample(&smp, tmp);
    fp4rt_sampler_free(&smp);
    return id;
}

/* Drafts and verify rows picked on the device vs on the host, on one session
 * over 6 positions after the prompt. */
static void check_pieces(fp4rt_model *m, const char *what) {
    enum { K = 4 };
    fp4rt_session *s = mtp_session(m, 128);
    float *rows = malloc((size_t)(K + 1) * V * sizeof(float)), *rows2 = malloc((size_t)(K + 1) * V * sizeof(float));
    float *dl = malloc((size_t)K * V * sizeof(float)), *tmp = malloc((size_t)V * sizeof(float));
    if (!s || !rows || !rows2 || !dl || !tmp) {
        CHECK_MSG(0, "%s: out of memory", what);
        goto out;
    }
    fp4rt_status st = fp4rt_session_eval(s, g_prompt, g_np, s->last_logits, 0);
    int device = m->backend->argmax != NULL, bad_d = 0, bad_v = 0, n_d = 0, n_v = 0;
    uint64_t dev_down = 0;
    for (int step = 0; !st && step < 6; step++) {
        int32_t next = g_prompt[(step * 7) % g_np], host[K], dev[K], toks[K + 1], picks[K + 1];
        st = fp4rt_session_mtp_draft(s, next, K, NULL, host, dl); /* draft logits to the host: host picks */
        uint64_t d0 = s->logits_down;
        if (!st) st = fp4rt_session_mtp_draft(s, next, K, NULL, dev, NULL); /* on the device where it can */
        dev_down += s->logits_down - d0;
        for (int j = 0; !st && j < K; j++, n_d++) bad_d += host[j] != dev[j];
        /* a verify of [next, drafts], then its rows picked on the device */
        toks[0] = next;
        memcpy(toks + 1, host, sizeof host);
        int np = fp4rt_session_n_past(s);
        if (!st) st = fp4rt_session_verify(s, toks, K + 1, rows);
        if (!st) st = fp4rt_session_keep(s, 0);
        if (!st && device) {
            d0 = s->logits_down;
            st = fp4rt_session_verify_pick(s, toks, K + 1, rows2, picks);
            dev_down += s->logits_down - d0;
            for (int r = 0; !st && r < K + 1; r++, n_v++) bad_v += picks[r] != host_pick(m, rows + (size_t)r * V, tmp);
            if (!st) st = fp4rt_session_keep(s, 0);
        }
        /* keep the first row (the token), so the head drafts from a new position */
        if (!st) st = fp4rt_session_verify(s, toks, 1, rows);
        if (!st) st = fp4rt_session_mtp_keep(s, np + 1);
    }
    CHECK_MSG(!st, "%s: %s", what, fp4rt_last_error());
    CHECK_MSG(bad_d == 0, "%s: %d of %d drafts picked on the device differ from the host's", what, bad_d, n_d);
    CHECK_MSG(bad_v == 0, "%s: %d of %d verify rows picked on the device differ from the CPU sampler", what, bad_v,
              n_v);
    if (device) CHECK_MSG(dev_down == 0, "%s: device picks downloaded %llu logits bytes", what,
                          (unsigned long long)dev_down);
    printf("  %-40s: %d drafts, %d verify rows picked on the device: %d / %d differ from the host; %llu logits bytes "
           "downloaded by them\n", what, device ? n_d : 0, n_v, bad_d, bad_v, (unsigned long long)dev_down);
out:
    fp4rt_session_free(s);
    free(rows);
    free(rows2);
    free(dl);
    free(tmp);
}

/* Everything above, with and without the draft vocabulary. */
static void check_all(fp4rt_model *m, const char *how) {
    char w[128];
    snprintf(w, sizeof w, "pieces (%s)", how);
    check_pieces(m, w);
    snprintf(w, sizeof w, "greedy (%s)", how);
    compare(m, w, 512, N_GEN, 1, 4);
    snprintf(w, sizeof w, "context end (%s)", how);
    compare(m, w, g_np + 31, 0, 3, 3);
    test_set_knob("FP4RT_MTP_DRAFT_VOCAB", DRAFT_VOCAB);
    snprintf(w, sizeof w, "pieces, draft vocabulary %s (%s)", DRAFT_VOCAB, how);
    check_pieces(m, w);
    snprintf(w, sizeof w, "greedy, draft vocabulary %s (%s)", DRAFT_VOCAB, how);
    compare(m, w, 512, N_GEN, 3, 3);
    test_set_knob("FP4RT_MTP_DRAFT_VOCAB", NULL);
}

int main(int argc, char **argv) {
    char dev[64];
    if (!test_device_arg(argc, argv, dev, sizeof dev)) return 0;
    test_set_knob("FP4RT_MTP_DRAFT_VOCAB", NULL);
    int n = 0;
    int32_t *text = test_read_tokens("tests/fixtures/kjv-heldout.tokens.txt", &n);
    CHECK_MSG(text && n >= 24, "tests/fixtures/kjv-heldout.tokens.txt missing");
    if (!text) return test_summary("test_spec_pick");
    g_np = 24;
    memcpy(g_prompt, text, (size_t)g_np * sizeof *text);
    free(text);
    fp4rt_model *m = test_load_model(MODEL, dev);
    if (!m) return test_summary("test_spec_pick");
    V = fp4rt_model_n_vocab(m);
    g_plain.logits = malloc((size_t)V * sizeof(float));
    g_spec.logits = malloc((size_t)V * sizeof(float));
    printf("%s on %s (%s), vocabulary %d\n", MODEL, dev,
           m->backend->argmax ? m->backend->argmax_rows ? "picks in the step" : "picks by the argmax slot"
                              : "no device pick",
           V);
    check_all(m, m->backend->argmax_rows ? "argmax_all" : "as the backend is");
    if (m->backend->argmax_rows) { /* the backend table as one without argmax_all (the MTP head has started) */
        const fp4rt_backend_ops *be = m->backend;
        fp4rt_backend_ops slot = *be;
        slot.argmax_rows = 0;
        m->backend = &slot;
        check_all(m, "argmax slot per row");
        m->backend = be;
    }
    free(g_plain.logits);
    free(g_spec.logits);
    fp4rt_model_free(m);
    return test_summary("test_spec_pick");
}
