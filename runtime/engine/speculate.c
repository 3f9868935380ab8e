/* Speculative decoding with the MTP head: the draft-and-verify loop
 * (runtime/engine/speculate.h). */
#include "runtime/engine/speculate.h"

#include "runtime/base/common.h"
#include "runtime/engine/mtp.h"

#include <stdlib.h>
#include <string.h>

/* The drafts' RNG stream: the seed's, moved to another stream. */
#define DRAFT_SEED_SALT 0x6a09e667f3bcc909ull

fp4rt_status fp4rt_spec_init(fp4rt_spec *sp, fp4rt_session *s, int k, fp4rt_sampler *smp,
                             const fp4rt_sampling_resolved *p, fp4rt_generate_result *res) {
    memset(sp, 0, sizeof *sp);
    if (!s->mtp)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_generate_params.spec_drafts = %d needs a session created "
                          "with fp4rt_session_params.mtp = 1", k);
    fp4rt_model *m = s->model;
    sp->s = s;
    sp->smp = smp;
    sp->k = k;
    sp->vocab = m->weights->cfg.vocab;
    sp->greedy = p->greedy;
    sp->penalties = p->repetition_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0;
    sp->device = sp->greedy && !sp->penalties && m->backend->argmax;
    sp->plain_pick = -1;
    sp->res = res;
    fp4rt_sampling_resolved dp = *p;
    dp.seed ^= DRAFT_SEED_SALT;
    fp4rt_status st = fp4rt_sampler_init(&sp->dsmp, &dp, sp->vocab, m->valid_ids);
    if (st) return st;
    size_t v = (size_t)sp->vocab * sizeof(float);
    sp->rows = fp4rt_malloc((size_t)(k + 1) * v, "speculative verify logits");
    sp->q = fp4rt_malloc((size_t)k * v, "speculative draft distributions");
    sp->p = fp4rt_malloc(v, "speculative scratch");
    sp->r = fp4rt_malloc(v, "speculative scratch");
    if (!sp->rows || !sp->q || !sp->p || !sp->r) {
        fp4rt_spec_free(sp);
        return FP4RT_OUT_OF_MEMORY;
    }
    return FP4RT_OK;
}

void fp4rt_spec_free(fp4rt_spec *sp) {
    fp4rt_sampler_free(&sp->dsmp);
    free(sp->rows);
    free(sp->q);
    free(sp->p);
    free(sp->r);
    sp->rows = sp->q = sp->p = sp->r = NULL;
}

int fp4rt_spec_n_past(const fp4rt_spec *sp) { return sp->s->n_past - (sp->n ? sp->n - 1 - sp->cur : 0); }

float *fp4rt_spec_logits(fp4rt_spec *sp) {
    return sp->n ? sp->rows + (size_t)sp->cur * sp->vocab : sp->s->last_logits;
}

int fp4rt_spec_picked(const fp4rt_spec *sp) {
    return sp->device && (sp->n ? sp->picks[sp->cur] >= 0 : sp->plain_pick >= 0);
}

int32_t fp4rt_spec_sample(fp4rt_spec *sp) {
    if (fp4rt_spec_picked(sp)) { /* greedy: the device's pick is the sampler's */
        int32_t id = sp->n ? sp->picks[sp->cur] : sp->plain_pick;
        sp->plain_pick = -1;
        return id;
    }
    float *l = fp4rt_spec_logits(sp);
    if (sp->greedy || !sp->n || sp->cur + 1 >= sp->n) /* greedy, or no draft after this row */
        return fp4rt_sampler_sample(sp->smp, l);
    int32_t d = sp->toks[sp->cur + 1];
    const float *q = sp->q + (size_t)sp->cur * sp->vocab;
    fp4rt_sampler_probs(sp->smp, l, sp->p);
    /* d was drawn from q, so q[d] > 0: accept with probability min(1, p / q) */
    if (fp4rt_sampler_uniform(sp->smp) * q[d] < sp->p[d]) return d;
    for (int i = 0; i < sp->vocab; i++) sp->r[i] = sp->p[i] > q[i] ? sp->p[i] - q[i] : 0;
    int32_t id = fp4rt_sampler_draw_weights(sp->smp, sp->r);
    /* a residual rounded to nothing (p == q but for rounding): draw from p */
    return id >= 0 ? id : fp4rt_sampler_draw_weights(sp->smp, sp->p);
}

/* The head's pick of draft j from its logits: the drafts' sampler (greedy: its
 * greedy pick; else a draw from q_j, kept for the acceptance test), the penalty
 * history extended by the drafts before it. */
static int32_t pick_draft(void *user, int j, float *lg, int32_t device) {
    fp4rt_spec *sp = user;
    int32_t tok;
    float *q = sp->q + (size_t)j * sp->vocab;
    if (device >= 0) { /* greedy without penalties: the device's pick */
        tok = device;
    } else if (sp->greedy) {
        tok = fp4rt_sampler_sample(&sp->dsmp, lg);
    } else {
        fp4rt_sampler_probs(&sp->dsmp, lg, q);
        tok = fp4rt_sampler_draw_weights(&sp->dsmp, q);
    }
    if (tok < 0 || sp->s->spec_corrupt_draft == j + 1) { /* no candidate (NaN logits), or the test hook */
        tok = tok < 0 ? 0 : (tok + 1) % sp->vocab;
        if (!sp->greedy) { /* q: what the draft was drawn from */
            memset(q, 0, (size_t)sp->vocab * sizeof *q);
            q[tok] = 1;
        }
    }
    if (sp->penalties) fp4rt_sampler_accept(&sp->dsmp, tok, 1);
    return tok;
}

/* Settles the outstanding verify step: the session keeps its rows up to the
 * current one, the head continues from there. */
static fp4rt_status settle(fp4rt_spec *sp) {
    if (!sp->n) return FP4RT_OK;
    fp4rt_generate_result *res = sp->res;
    res->spec_accepted += sp->cur;
    for (int j = 0; j < sp->cur; j++) res->spec_accepted_at[j]++;
    res->spec_accept_len = 1.0 + (double)res->spec_accepted / res->spec_steps;
    sp->n = 0;
    fp4rt_status st = fp4rt_session_keep(sp->s, sp->cur + 1);
    if (!st) st = fp4rt_session_mtp_keep(sp->s, sp->s->n_past);
    return st;
}

fp4rt_status fp4rt_spec_advance(fp4rt_spec *sp, int32_t token) {
    if (sp->n && sp->cur + 1 < sp->n && sp->toks[sp->cur + 1] == token) { /* the draft accepted */
        sp->cur++;
        return FP4RT_OK;
    }
    fp4rt_session *s = sp->s;
    fp4rt_status st = settle(sp);
    if (st) return st;
    int k = FP4RT_MIN(sp->k, s->sb.n_ctx - s->n_past - 1); /* the verify's k + 1 rows fit */
    if (k < 1 || !fp4rt_session_mtp_ready(s)) { /* a plain step */
        if (sp->device) return fp4rt_session_eval_pick(s, token, &sp->plain_pick); /* -1: logits downloaded */
        st = fp4rt_session_eval(s, &token, 1, s->last_logits, 0);
        if (!st) s->have_logits = 1;
        return st;
    }
    if (sp->penalties) fp4rt_sampler_copy_history(&sp->dsmp, sp->smp);
    sp->toks[0] = token;
    st = fp4rt_session_mtp_draft_pick(s, token, k, pick_draft, sp, sp->device, sp->toks + 1);
    if (!st) st = fp4rt_session_verify_pick(s, sp->toks, k + 1, sp->rows, sp->device ? sp->picks : NULL);
    if (st) return st;
    sp->n = k + 1;
    sp->cur = 0;
    fp4rt_generate_result *res = sp->res;
    res->spec_steps++;
    res->spec_drafted += k;
    for (int j = 0; j < k; j++) res->spec_drafted_at[j]++;
    res->spec_accept_len = 1.0 + (double)res->spec_accepted / res->spec_steps;
    return FP4RT_OK;
}

fp4rt_status fp4rt_spec_finish(fp4rt_spec *sp, int pending) {
    fp4rt_session *s = sp->s;
    if (!sp->n) { /* a plain step's pick not used (the session is full): its logits are on the device */
        int unused = sp->plain_pick >= 0 && !pending;
        sp->plain_pick = -1;
        return unused ? fp4rt_session_fetch_logits(s) : FP4RT_OK;
    }
    int cur = sp->cur, on_device = fp4rt_spec_picked(sp);
    const float *row = sp->rows + (size_t)cur * sp->vocab;
    fp4rt_status st = settle(sp);
    if (st || pending) return st;
    /* the verify step's rows stay on the device until the next step */
    if (on_device) st = fp4rt_session_logits_row(s, cur, s->last_logits);
    else memcpy(s->last_logits, row, (size_t)sp->vocab * sizeof(float));
    s->have_logits = !st;
    return st;
}
