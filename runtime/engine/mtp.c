/* The MTP head: its start on the model's device, its session state and the
 * drafting call (runtime/engine/mtp.h; the math: docs/MODEL.md §3). */
#include "runtime/engine/mtp.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fp4rt_mtp_state {
    fp4rt_session_buffers sb; /* the head's own buffers on the model's mtp_ctx */
    int hidden;
    /* The main model's final-normed hidden states of positions rows_pos0 ..
     * rows_pos0 + rows_n - 1 (the row before the last main step, then its rows). */
    float *rows; /* [cap, hidden] */
    int rows_pos0, rows_n;
    int cap;     /* rows held: the main chunk or a verify step's rows (1-token steps), + 1 */
    int cur;     /* position whose hidden state the next draft starts from (n_past - 1), -1: none */
    int lost;    /* a cancelled evaluation lost the state: drafting fails until a reset */
    float *mh;   /* [hidden] the head's own output state of the last draft */
    float *lg;   /* [vocab] scratch logits: the draft vocabulary's, -inf past it */
    int draft_vocab; /* logits the head computes per draft: ids [0, draft_vocab) (FP4RT_MTP_DRAFT_VOCAB) */
    const float **hv; /* [chunk] a step's input rows */
} fp4rt_mtp_state;

fp4rt_status fp4rt_model_mtp_start(fp4rt_model *m) {
    if (!m->weights->n_mtp_layers)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "the model has no MTP head (config.json mtp_num_hidden_layers "
                          "is 0 or the checkpoint has no mtp.* tensors)");
    if (m->weights->n_mtp_layers > 1) /* vLLM runs layer k % n at draft k: one layer per step */
        return fp4rt_fail(FP4RT_UNSUPPORTED, "MTP heads of %d layers are not supported (Qwen3.5/3.6 ship 1)",
                          m->weights->n_mtp_layers);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = FP4RT_OK;
    if (!m->mtp_ctx) {
        const fp4rt_backend_ops *be = NULL;
        void *ctx = NULL;
        if (!m->mtp_program) st = fp4rt_program_build_mtp(m->weights, &m->mtp_program);
        if (!st) st = m->dev.reg->create(m->dev.index, m->n_threads, &be, &ctx);
        if (!st && be != m->backend)
            st = fp4rt_fail(FP4RT_INTERNAL, "the MTP head's backend differs from the model's");
        if (!st) st = fp4rt_backend_prepare(be, ctx, m->mtp_program, m->seed);
        if (st && ctx) fp4rt_backend_destroy(be, ctx);
        if (!st) m->mtp_ctx = ctx;
        if (st) fp4rt_fail_context(st, "starting the MTP head");
    }
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

fp4rt_status fp4rt_session_mtp_init(fp4rt_session *s) {
    fp4rt_model *m = s->model;
    fp4rt_status st = fp4rt_model_mtp_start(m);
    if (st) return st;
    fp4rt_mtp_state *t = fp4rt_calloc(1, sizeof *t, "MTP state");
    if (!t) return FP4RT_OUT_OF_MEMORY;
    s->mtp = t;
    int h = m->weights->cfg.hidden, vocab = m->weights->cfg.vocab;
    t->hidden = h;
    t->sb.n_ctx = s->sb.n_ctx;
    t->sb.kv_type = s->sb.kv_type;
    int cap = fp4rt_backend_max_chunk(m->backend, m->mtp_ctx, m->mtp_program);
    t->sb.chunk = FP4RT_MIN(s->sb.chunk, cap);
    if (t->sb.chunk < 1) return fp4rt_fail(FP4RT_UNSUPPORTED, "the MTP head cannot run one token on this device");
    t->cap = FP4RT_MAX(s->sb.chunk, FP4RT_VERIFY_MAX) + 1;
    t->rows = fp4rt_malloc((size_t)t->cap * h * sizeof(float), "MTP hidden rows");
    t->mh = fp4rt_malloc((size_t)h * sizeof(float), "MTP hidden state");
    t->lg = fp4rt_malloc((size_t)vocab * sizeof(float), "MTP logits");
    t->hv = fp4rt_malloc((size_t)t->sb.chunk * sizeof *t->hv, "MTP row list");
    if (!t->rows || !t->mh || !t->lg || !t->hv) return FP4RT_OUT_OF_MEMORY;
    long long dv = fp4rt_env_int(FP4RT_ENV_MTP_DRAFT_VOCAB);
    t->draft_vocab = dv > 0 && dv < vocab ? (int)dv : vocab;
    fp4rt_memory_plan plan;
    fp4rt_plan_session(m->mtp_program, t->sb.n_ctx, t->sb.chunk, t->sb.kv_type, &plan);
    struct {
        fp4rt_buffer **buf;
        uint64_t bytes;
        const char *what;
    } parts[] = {
        {&t->sb.scratch, plan.scratch, "MTP activation arena"},
        {&t->sb.kv, plan.kv, "MTP KV cache"},
        {&t->sb.logits, plan.logits, "MTP logits"},
    };
    for (size_t i = 0; !st && i < FP4RT_ARRAY_LEN(parts); i++) {
        if (parts[i].bytes > SIZE_MAX)
            return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s of %llu bytes does not fit in memory", parts[i].what,
                              (unsigned long long)parts[i].bytes);
        st = fp4rt_backend_alloc(m->backend, m->mtp_ctx, (size_t)parts[i].bytes, parts[i].what, parts[i].buf);
    }
    s->allocated.kv += plan.kv;
    s->allocated.scratch += plan.scratch;
    s->allocated.logits += plan.logits;
    fp4rt_session_mtp_reset(s);
    return st;
}

void fp4rt_session_mtp_free(fp4rt_session *s) {
    fp4rt_mtp_state *t = s->mtp;
    if (!t) return;
    fp4rt_model *m = s->model;
    fp4rt_backend_free(m->backend, m->mtp_ctx, t->sb.scratch);
    fp4rt_backend_free(m->backend, m->mtp_ctx, t->sb.kv);
    fp4rt_backend_free(m->backend, m->mtp_ctx, t->sb.logits);
    free(t->rows);
    free(t->mh);
    free(t->lg);
    free((void *)t->hv);
    free(t);
    s->mtp = NULL;
}

void fp4rt_session_mtp_reset(fp4rt_session *s) {
    fp4rt_mtp_state *t = s->mtp;
    if (!t) return;
    t->rows_pos0 = t->rows_n = 0;
    t->cur = -1;
    t->lost = 0;
}

void fp4rt_session_mtp_lost(fp4rt_session *s) {
    if (s->mtp) s->mtp->lost = 1;
}

/* The kept hidden state of position pos, or NULL. */
static const float *row_of(const fp4rt_mtp_state *t, int pos) {
    if (pos < t->rows_pos0 || pos >= t->rows_pos0 + t->rows_n) return NULL;
    return t->rows + (size_t)(pos - t->rows_pos0) * t->hidden;
}

/* One step of the head over n pairs (hidden[r], tokens[r]) at MTP positions
 * pos0 .. pos0 + n - 1 (n <= its chunk); logits of the last row when want_logits,
 * with its greedy pick on the device to *pick when pick is not NULL (the
 * backend has argmax_rows, or the draft vocabulary is the whole vocabulary). */
static fp4rt_status head_step(fp4rt_session *s, const float *const *hidden, const int32_t *tokens, int n, int pos0,
                              int want_logits, int32_t *pick) {
    int vocab = s->model->weights->cfg.vocab;
    fp4rt_model *m = s->model;
    fp4rt_mtp_state *t = s->mtp;
    const fp4rt_program *p = m->mtp_program;
    fp4rt_status st = FP4RT_OK;
    for (int r = 0; !st && r < n; r++)
        st = fp4rt_backend_upload(m->backend, m->mtp_ctx, t->sb.scratch,
                                  ((size_t)r * p->arena_width + (size_t)p->in_hidden_col) * 4, hidden[r],
                                  (size_t)t->hidden * 4);
    fp4rt_step step = {.relaxed = s->relaxed,
                       .tokens = tokens,
                       .n_tokens = n,
                       .pos0 = pos0,
                       .no_logits = !want_logits,
                       .kv_only = !want_logits, /* the feed: only the head's KV entries are read later */
                       .logits_rows = s->mtp->draft_vocab < vocab ? s->mtp->draft_vocab : 0,
                       .argmax_valid = pick ? m->valid_ids : NULL,
                       .argmax_out = pick};
    /* the main model's rotary positions of these indices (text rows past what the
     * session holds, i.e. drafts: index + rope_delta) */
    step.rope_delta = s->rope_delta;
    if (s->mrope && pos0 + n <= s->mrope_n) step.positions = s->mrope + (size_t)pos0 * 3;
    if (!st) st = fp4rt_backend_run(m->backend, m->mtp_ctx, p, &t->sb, &step);
    return st;
}

fp4rt_status fp4rt_session_mtp_after_step(fp4rt_session *s, const int32_t *tokens, int n, int pos0) {
    fp4rt_mtp_state *t = s->mtp;
    if (!t) return FP4RT_OK;
    fp4rt_model *m = s->model;
    const fp4rt_program *mp = m->program;
    size_t h = (size_t)t->hidden;
    /* keep h_{pos0 - 1} (the previous step's last row) and the rows before it
     * that leave room, then this step's rows: so the rows of a verify step run
     * as 1-token steps stay available to fp4rt_session_mtp_keep */
    const float *prev = row_of(t, pos0 - 1);
    int have_prev = prev != NULL;
    if (have_prev) { /* the rows before pos0 that leave room for n (cap >= chunk + 1 > n) */
        int from = FP4RT_MAX(t->rows_pos0, pos0 + n - t->cap);
        memmove(t->rows, row_of(t, from), (size_t)(pos0 - from) * h * sizeof(float));
        t->rows_pos0 = from;
        t->rows_n = pos0 - from;
    } else {
        t->rows_pos0 = pos0;
        t->rows_n = 0;
    }
    if (pos0 > 0 && !have_prev) t->lost = 1; /* the pair at pos0 - 1 cannot be made */
    int kept = t->rows_n;
    float *dst = t->rows + (size_t)kept * h;
    t->rows_n = 0;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = FP4RT_OK;
    for (int r = 0; !st && r < n; r++)
        st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.scratch,
                                    ((size_t)r * mp->arena_width + (size_t)mp->out_hidden_col) * 4, dst + r * h,
                                    h * 4);
    if (!st) t->rows_n = kept + n;
    /* the pairs (h_i, x_{i+1}) this step completed: i = pos0 - 1 (when kept) .. pos0 + n - 2 */
    int first = have_prev ? pos0 - 1 : pos0, count = pos0 + n - 1 - first;
    for (int c0 = 0; !st && c0 < count; c0 += t->sb.chunk) {
        int cn = FP4RT_MIN(t->sb.chunk, count - c0);
        for (int r = 0; r < cn; r++) t->hv[r] = row_of(t, first + c0 + r);
        st = head_step(s, t->hv, tokens + (first + c0 + 1 - pos0), cn, first + c0, 0, NULL);
    }
    pthread_mutex_unlock(&m->run_lock);
    t->cur = st ? -1 : pos0 + n - 1;
    return st;
}

/* Greedy: the lowest id of the largest logit among the valid ids (NaN never wins). */
static int32_t pick_greedy(const float *lg, int n, const uint8_t *valid) {
    int32_t best = -1;
    for (int i = 0; i < n; i++) {
        if ((valid && !valid[i]) || isnan(lg[i])) continue;
        if (best < 0 || lg[i] > lg[best]) best = i;
    }
    return best < 0 ? 0 : best;
}

/* The picks of fp4rt_session_mtp_draft: greedy or the sampler, logits kept. */
typedef struct plain_pick {
    fp4rt_session *s;
    fp4rt_sampler *sampler;
    float *draft_logits;
} plain_pick;

static int32_t pick_plain(void *user, int j, float *lg, int32_t device) {
    plain_pick *pp = user;
    fp4rt_model *m = pp->s->model;
    int vocab = m->weights->cfg.vocab;
    if (device >= 0) return device; /* greedy, without draft_logits: picked on the device */
    if (pp->draft_logits) memcpy(pp->draft_logits + (size_t)j * vocab, lg, (size_t)vocab * 4);
    return pp->sampler ? fp4rt_sampler_sample(pp->sampler, lg) : pick_greedy(lg, vocab, m->valid_ids);
}

fp4rt_status fp4rt_session_mtp_draft(fp4rt_session *s, int32_t next_token, int k, fp4rt_sampler *sampler,
                                     int32_t *drafts, float *draft_logits) {
    plain_pick pp = {s, sampler, draft_logits};
    int device = s && !sampler && !draft_logits && s->model->backend->argmax;
    return fp4rt_session_mtp_draft_pick(s, next_token, k, pick_plain, &pp, device, drafts);
}

int fp4rt_session_mtp_ready(const fp4rt_session *s) {
    const fp4rt_mtp_state *t = s->mtp;
    return t && !t->lost && s->n_past >= 1 && t->cur == s->n_past - 1 && row_of(t, t->cur);
}

/* Draft j's greedy pick on the device, in the head's step where the backend can
 * (argmax_rows, or the whole vocabulary), else by the argmax slot after it:
 * *id, or -1 for a NaN (the caller downloads the logits). Under the run lock. */
static fp4rt_status draft_step_pick(fp4rt_session *s, const float *hid, const int32_t *tok, int pos, int32_t *id) {
    fp4rt_model *m = s->model;
    fp4rt_mtp_state *t = s->mtp;
    int in_step = m->backend->argmax_rows || t->draft_vocab == m->weights->cfg.vocab;
    fp4rt_status st = head_step(s, &hid, tok, 1, pos, 1, in_step ? id : NULL);
    if (!st && !in_step)
        st = fp4rt_backend_argmax(m->backend, m->mtp_ctx, t->sb.logits, 0, t->draft_vocab, m->valid_ids, id);
    return st;
}

fp4rt_status fp4rt_session_mtp_draft_pick(fp4rt_session *s, int32_t next_token, int k, fp4rt_mtp_pick_fn pick,
                                          void *user, int device, int32_t *drafts) {
    if (!s || !drafts || !pick) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: %s is NULL",
                                         !s ? "session" : !drafts ? "drafts" : "pick");
    fp4rt_mtp_state *t = s->mtp;
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    if (!t) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: the session was created without mtp");
    if (k < 1 || k > FP4RT_MTP_MAX_DRAFTS)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: k = %d outside 1 .. %d", k,
                          FP4RT_MTP_MAX_DRAFTS);
    if (next_token < 0 || next_token >= vocab)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: token %d is outside the vocabulary [0, %d)",
                          next_token, vocab);
    if (t->lost) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: a cancelled evaluation lost "
                                   "the MTP state; reset the session");
    if (device && !m->backend->argmax)
        return fp4rt_fail(FP4RT_INTERNAL, "fp4rt_session_mtp_draft: the %s backend has no device pick",
                          m->backend->name);
    const float *h0 = t->cur == s->n_past - 1 ? row_of(t, t->cur) : NULL;
    if (s->n_past < 1 || !h0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: no hidden state of position %d "
                          "(evaluate at least one token first)", s->n_past - 1);
    if (s->n_past + 1 + k > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_draft: context full: %d tokens held + 1 + %d "
                          "drafts exceed n_ctx %d", s->n_past, k, s->sb.n_ctx);
    const fp4rt_program *p = m->mtp_program;
    fp4rt_status st = FP4RT_OK;
    int32_t tok = next_token;
    const float *hid = h0;
    pthread_mutex_lock(&m->run_lock);
    for (int j = 0; !st && j < k; j++) {
        int32_t id = -1; /* the device's greedy pick, -1: the logits come to the host */
        st = device ? draft_step_pick(s, hid, &tok, s->n_past - 1 + j, &id)
                    : head_step(s, &hid, &tok, 1, s->n_past - 1 + j, 1, NULL);
        if (!st && id < 0) {
            size_t bytes = (size_t)t->draft_vocab * 4;
            st = fp4rt_backend_download(m->backend, m->mtp_ctx, t->sb.logits, 0, t->lg, bytes);
            if (!st) s->logits_down += bytes;
            for (int i = t->draft_vocab; i < vocab; i++) t->lg[i] = -INFINITY; /* a pick may have written there */
        }
        if (!st && j + 1 < k)
            st = fp4rt_backend_download(m->backend, m->mtp_ctx, t->sb.scratch, (size_t)p->out_hidden_col * 4, t->mh,
                                        (size_t)t->hidden * 4);
        if (st) break;
        tok = pick(user, j, id < 0 ? t->lg : NULL, id);
        if (tok < 0 || tok >= vocab) {
            st = fp4rt_fail(FP4RT_INTERNAL, "fp4rt_session_mtp_draft: draft %d picked id %d outside [0, %d)", j + 1,
                            tok, vocab);
            break;
        }
        drafts[j] = tok;
        hid = t->mh;
    }
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

fp4rt_status fp4rt_session_mtp_keep(fp4rt_session *s, int n_keep) {
    fp4rt_mtp_state *t = s ? s->mtp : NULL;
    if (!t) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_keep: the session was created without mtp");
    if (n_keep < 1 || !row_of(t, n_keep - 1))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_mtp_keep: position %d is not a row of the last step "
                          "(rows %d .. %d)", n_keep - 1, t->rows_pos0, t->rows_pos0 + t->rows_n - 1);
    t->cur = n_keep - 1;
    return FP4RT_OK;
}
