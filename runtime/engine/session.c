/* Public API: sessions and evaluation (fp4rt.h). */
#include "runtime/engine/model.h"
#include "runtime/engine/mtp.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_release(fp4rt_session *s) {
    const fp4rt_backend_ops *be = s->model->backend;
    void *ctx = s->model->backend_ctx;
    fp4rt_buffer **bufs[] = {&s->sb.scratch, &s->sb.kv, &s->sb.conv, &s->sb.ssm, &s->sb.logits, &s->sb.ckpt};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(bufs); i++) {
        fp4rt_backend_free(be, ctx, *bufs[i]);
        *bufs[i] = NULL;
    }
}

int fp4rt_numerics_relaxed(int exact) { return !exact && !fp4rt_env_bool(FP4RT_ENV_EXACT); }

const char *fp4rt_session_numerics(const fp4rt_session *s) {
    if (!s->relaxed) return "exact";
    return fp4rt_model_on_cpu(s->model) ? "default (FMA linears)"
                                        : "default (as exact: no relaxed kernels on this backend)";
}

fp4rt_session *fp4rt_session_create(fp4rt_model *m, const fp4rt_session_params *params) {
    if (!m) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_create: model is NULL");
        return NULL;
    }
    fp4rt_session_params defaults = fp4rt_session_default_params(), p;
    if (!params) params = &defaults;
    if (params->n_ctx < 0 || params->prefill_chunk < 0) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_params.%s = %d: expected 0 (default) or > 0",
                   params->n_ctx < 0 ? "n_ctx" : "prefill_chunk",
                   params->n_ctx < 0 ? params->n_ctx : params->prefill_chunk);
        return NULL;
    }
    fp4rt_session_params_resolve(&m->weights->cfg, m->weights->quant.kv_cache_fp8, params, &p);
    if (params->n_ctx > p.n_ctx) /* a cap is never silent */
        fp4rt_log(FP4RT_LOG_WARN, "fp4rt_session_params.n_ctx = %d is above the model's maximum context %d; using %d",
                  params->n_ctx, p.n_ctx, p.n_ctx);
    if (p.kv_type != FP4RT_KV_BF16 && p.kv_type != FP4RT_KV_F32 && p.kv_type != FP4RT_KV_FP8) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "unknown kv_type %d", (int)p.kv_type);
        return NULL;
    }
    fp4rt_session *s = fp4rt_calloc(1, sizeof *s, "session");
    if (!s) return NULL;
    s->model = m;
    s->relaxed = fp4rt_numerics_relaxed(params->exact);
    s->progress = p.eval_progress;
    s->progress_user = p.eval_progress_user;
    s->history = fp4rt_malloc((size_t)p.n_ctx * sizeof(int32_t), "session history");
    s->last_logits = fp4rt_malloc((size_t)m->weights->cfg.vocab * sizeof(float), "session logits");
    if (!s->history || !s->last_logits) {
        fp4rt_session_free(s);
        return NULL;
    }
    int cap = fp4rt_backend_max_chunk(m->backend, m->backend_ctx, m->program);
    if (cap < 1) {
        fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot hold one token's activations", m->backend->name);
        fp4rt_session_free(s);
        return NULL;
    }
    if (p.prefill_chunk > cap) {
        fp4rt_log(FP4RT_LOG_INFO, "prefill chunk capped from %d to %d tokens (what the device binds at once)",
                  p.prefill_chunk, cap);
        p.prefill_chunk = cap;
    }
    s->sb.n_ctx = p.n_ctx;
    s->sb.chunk = p.prefill_chunk;
    s->sb.kv_type = p.kv_type;
    fp4rt_memory_plan plan;
    fp4rt_plan_session(m->program, p.n_ctx, p.prefill_chunk, p.kv_type, &plan);
    const fp4rt_backend_ops *be = m->backend;
    /* granule: no op binds across a multiple of it (one layer's K or V, one
     * layer's state), so a backend may split the buffer there */
    int n_attn = m->program->n_attn_layers, n_gdn = m->program->n_gdn_layers;
    struct {
        fp4rt_buffer **buf;
        uint64_t bytes, granule;
        const char *what;
    } parts[] = {
        {&s->sb.scratch, plan.scratch, 0, "activation arena"},
        {&s->sb.kv, plan.kv, n_attn ? plan.kv / (2 * (uint64_t)n_attn) : 0, "KV cache"},
        {&s->sb.conv, plan.conv, n_gdn ? plan.conv / (uint64_t)n_gdn : 0, "GDN conv state"},
        {&s->sb.ssm, plan.ssm, n_gdn ? plan.ssm / (uint64_t)n_gdn : 0, "GDN recurrent state"},
        {&s->sb.logits, plan.logits, 0, "logits"},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(parts); i++) {
        if (parts[i].bytes > SIZE_MAX ||
            fp4rt_backend_alloc_split(be, m->backend_ctx, (size_t)parts[i].bytes, (size_t)parts[i].granule,
                                      parts[i].what, parts[i].buf)) {
            if (parts[i].bytes > SIZE_MAX)
                fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s of %llu bytes does not fit in memory", parts[i].what,
                           (unsigned long long)parts[i].bytes);
            fp4rt_session_free(s);
            return NULL;
        }
    }
    /* what was asked of the backend, for checking the planner */
    s->allocated.scratch = parts[0].bytes;
    s->allocated.kv = parts[1].bytes;
    s->allocated.conv = parts[2].bytes;
    s->allocated.ssm = parts[3].bytes;
    s->allocated.logits = parts[4].bytes;
    if (params->mtp && fp4rt_session_mtp_init(s)) {
        fp4rt_session_free(s);
        return NULL;
    }
    fp4rt_session_reset(s);
    return s;
}

void fp4rt_session_free(fp4rt_session *s) {
    if (!s) return;
    fp4rt_session_mtp_free(s);
    session_release(s);
    free(s->history);
    free(s->last_logits);
    free(s->mrope);
    free(s);
}

void fp4rt_session_reset(fp4rt_session *s) {
    if (!s) return;
    const fp4rt_backend_ops *be = s->model->backend;
    /* the KV cache needs no clearing: positions >= n_past are never read */
    fp4rt_backend_clear(be, s->model->backend_ctx, s->sb.conv);
    fp4rt_backend_clear(be, s->model->backend_ctx, s->sb.ssm);
    s->n_past = 0;
    s->have_logits = 0;
    s->pending = 0;
    fp4rt_session_mtp_reset(s);
    s->verify_n = 0;
    s->rope_delta = 0;
    free(s->mrope);
    s->mrope = NULL;
    s->mrope_n = 0;
}

void fp4rt_session_rope_text(fp4rt_session *s, fp4rt_step *step) {
    step->positions = NULL;
    step->rope_delta = s->rope_delta;
    if (!s->mrope) return;
    for (int r = 0; r < step->n_tokens; r++) {
        int32_t *q = s->mrope + (size_t)(step->pos0 + r) * 3;
        q[0] = q[1] = q[2] = step->pos0 + r + s->rope_delta;
    }
    s->mrope_n = step->pos0 + step->n_tokens;
}

void fp4rt_session_position(const fp4rt_session *s, int i, int32_t out[3]) {
    if (s->mrope && i < s->mrope_n) {
        memcpy(out, s->mrope + (size_t)i * 3, 3 * sizeof(int32_t));
        return;
    }
    out[0] = out[1] = out[2] = i + s->rope_delta;
}

int fp4rt_session_n_past(const fp4rt_session *s) { return s ? s->n_past + s->pending : 0; }

const int32_t *fp4rt_session_tokens(const fp4rt_session *s) { return s ? s->history : NULL; }

/* Host copy of the GDN state (conv + recurrent), taken before an evaluation that
 * may be cancelled; the KV cache needs none (positions >= n_past are never read). */
typedef struct state_copy {
    void *conv, *ssm;
    size_t conv_bytes, ssm_bytes;
} state_copy;

static fp4rt_status state_save(fp4rt_session *s, state_copy *c) {
    fp4rt_model *m = s->model;
    c->conv_bytes = (size_t)s->allocated.conv;
    c->ssm_bytes = (size_t)s->allocated.ssm;
    c->conv = c->conv_bytes ? fp4rt_malloc(c->conv_bytes, "GDN conv state copy") : NULL;
    c->ssm = c->ssm_bytes ? fp4rt_malloc(c->ssm_bytes, "GDN recurrent state copy") : NULL;
    if ((c->conv_bytes && !c->conv) || (c->ssm_bytes && !c->ssm)) return FP4RT_OUT_OF_MEMORY;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = FP4RT_OK;
    if (c->conv_bytes) st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.conv, 0, c->conv, c->conv_bytes);
    if (!st && c->ssm_bytes)
        st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.ssm, 0, c->ssm, c->ssm_bytes);
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

static fp4rt_status state_restore(fp4rt_session *s, const state_copy *c) {
    fp4rt_model *m = s->model;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = FP4RT_OK;
    if (c->conv_bytes) st = fp4rt_backend_upload(m->backend, m->backend_ctx, s->sb.conv, 0, c->conv, c->conv_bytes);
    if (!st && c->ssm_bytes) st = fp4rt_backend_upload(m->backend, m->backend_ctx, s->sb.ssm, 0, c->ssm, c->ssm_bytes);
    if (!st) st = fp4rt_backend_synchronize(m->backend, m->backend_ctx);
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

static void state_free(state_copy *c) {
    free(c->conv);
    free(c->ssm);
}

/* Rows [i, i + cn) of a prompt with images (fp4rt_eval_mm): their positions
 * (already in s->mrope at n_past) and, where a row has an embedding override,
 * the step's input_embeds / embed_rows (embeds [cn * hidden], flags [cn]). */
typedef struct chunk_mm {
    float *embeds;
    uint8_t *flags;
} chunk_mm;

static void chunk_fill(fp4rt_session *s, const fp4rt_eval_mm *mm, int i, int cn, chunk_mm *c, fp4rt_step *step) {
    size_t hidden = (size_t)s->model->weights->cfg.hidden;
    step->positions = s->mrope + (size_t)step->pos0 * 3;
    step->rope_delta = 0;
    int any = 0;
    for (int r = 0; r < cn; r++) {
        const float *row = mm->rows ? mm->rows[i + r] : NULL;
        c->flags[r] = row != NULL;
        if (row) memcpy(c->embeds + (size_t)r * hidden, row, hidden * sizeof(float)), any = 1;
    }
    if (any) {
        step->input_embeds = c->embeds;
        step->embed_rows = c->flags;
    }
}

/* One step of n tokens at n_past (n <= chunk), appended to the history; logits
 * of the rows as fp4rt_step says, downloaded (after `cancel` is asked, when
 * given: a cancel leaves the step's tokens appended and nothing downloaded).
 * mm: rows [i, i + cn) of a prompt with images (cm its buffers), or NULL. */
static fp4rt_status run_step(fp4rt_session *s, const int32_t *tokens, int cn, float *logits, int all_logits,
                             int (*cancel)(fp4rt_session *, int), int done, const fp4rt_eval_mm *mm, chunk_mm *cm) {
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    fp4rt_step step = {.relaxed = s->relaxed,
                       .tokens = tokens,
                       .n_tokens = cn,
                       .pos0 = s->n_past,
                       .all_logits = all_logits,
                       .no_logits = !logits};
    if (mm)
        chunk_fill(s, mm, done, cn, cm, &step);
    else
        fp4rt_session_rope_text(s, &step);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
    if (st) return st; /* the state is now partly updated: the session must be reset */
    memcpy(s->history + s->n_past, tokens, (size_t)cn * sizeof(int32_t));
    if ((st = fp4rt_session_mtp_after_step(s, tokens, cn, s->n_past))) return st;
    s->n_past += cn;
    if (cancel && cancel(s, done + cn)) return FP4RT_CANCELLED;
    if (!logits) return FP4RT_OK;
    size_t bytes = (size_t)(all_logits ? cn : 1) * vocab * 4;
    pthread_mutex_lock(&m->run_lock);
    st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0, logits, bytes);
    pthread_mutex_unlock(&m->run_lock);
    if (!st) s->logits_down += bytes;
    return st;
}

fp4rt_status fp4rt_session_step1(fp4rt_session *s, int32_t token, float *logits) {
    return run_step(s, &token, 1, logits, 0, NULL, 0, NULL, NULL);
}

fp4rt_status fp4rt_session_eval_pending(fp4rt_session *s, float *logits) {
    if (!s->pending) return FP4RT_OK;
    int32_t t = s->history[s->n_past];
    s->pending = 0;
    fp4rt_status st = run_step(s, &t, 1, logits, 0, NULL, 0, NULL, NULL);
    if (!st && logits == s->last_logits) s->have_logits = 1;
    return st;
}

/* The progress callback between chunks: non-zero to cancel. */
static int ask_progress(fp4rt_session *s, int done) { return s->progress(done, s->eval_total, s->progress_user) != 0; }

fp4rt_status fp4rt_session_eval(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                int all_logits) {
    return fp4rt_session_eval_mm(s, tokens, n, NULL, logits, all_logits);
}

/* The session's M-RoPE table, allocated when a prompt with images first needs it:
 * the rows held so far written as text. */
static fp4rt_status mrope_alloc(fp4rt_session *s) {
    if (s->mrope) return FP4RT_OK;
    s->mrope = fp4rt_malloc((size_t)s->sb.n_ctx * 3 * sizeof(int32_t), "session M-RoPE positions");
    if (!s->mrope) return FP4RT_OUT_OF_MEMORY;
    for (int i = 0; i < s->sb.n_ctx; i++) s->mrope[i * 3] = s->mrope[i * 3 + 1] = s->mrope[i * 3 + 2] = i + s->rope_delta;
    s->mrope_n = s->n_past;
    return FP4RT_OK;
}

fp4rt_status fp4rt_session_eval_mm(fp4rt_session *s, const int32_t *tokens, int n, const fp4rt_eval_mm *mm,
                                   float *logits, int all_logits) {
    if (!s) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval: session is NULL");
    if (n < 0) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval: n = %d is negative", n);
    if (!tokens && n > 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval: tokens is NULL with n = %d", n);
    if (n == 0) return FP4RT_OK;
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "token %d at index %d is outside the vocabulary [0, %d)",
                              tokens[i], i, vocab);
    int held = s->n_past + s->pending;
    if (held + n > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + %d new exceed n_ctx %d", held, n,
                          s->sb.n_ctx);
    /* what a cancel restores */
    int n_past0 = s->n_past, pending0 = s->pending, have_logits0 = s->have_logits, delta0 = s->rope_delta;
    int32_t pending_id = s->pending ? s->history[s->n_past] : -1;
    state_copy saved = {0};
    chunk_mm cm = {0};
    fp4rt_status st = FP4RT_OK;
    if (mm) {
        size_t rows = (size_t)FP4RT_MIN(s->sb.chunk, n);
        cm.embeds = fp4rt_malloc(rows * (size_t)m->weights->cfg.hidden * sizeof(float), "image embedding rows");
        cm.flags = fp4rt_malloc(rows, "image embedding flags");
        st = !cm.embeds || !cm.flags ? FP4RT_OUT_OF_MEMORY : mrope_alloc(s);
    }
    if (!st && s->progress) st = state_save(s, &saved);
    if (!st) st = fp4rt_session_eval_pending(s, NULL);
    if (!st && mm) { /* the prompt's positions, then the delta its end leaves */
        memcpy(s->mrope + (size_t)s->n_past * 3, mm->positions, (size_t)n * 3 * sizeof(int32_t));
        s->mrope_n = s->n_past + n;
    }
    s->eval_total = n;
    for (int i = 0; !st && i < n; i += s->sb.chunk) {
        int cn = FP4RT_MIN(s->sb.chunk, n - i);
        int last = i + cn == n;
        float *out = !logits ? NULL : all_logits ? logits + (size_t)i * vocab : last ? logits : NULL;
        st = run_step(s, tokens + i, cn, out, all_logits, s->progress ? ask_progress : NULL, i, mm, &cm);
    }
    if (!st && mm) s->rope_delta = mm->next_pos - s->n_past;
    if (st == FP4RT_CANCELLED) {
        fp4rt_status rst = state_restore(s, &saved);
        s->n_past = n_past0;
        s->pending = pending0;
        if (pending0) s->history[n_past0] = pending_id;
        s->have_logits = have_logits0;
        s->rope_delta = delta0;
        if (s->mrope) s->mrope_n = FP4RT_MIN(s->mrope_n, n_past0);
        fp4rt_session_mtp_lost(s);
        st = rst ? rst : fp4rt_fail(FP4RT_CANCELLED, "evaluation cancelled by the progress callback");
    }
    free(cm.embeds);
    free(cm.flags);
    state_free(&saved);
    if (!st) st = fp4rt_backend_synchronize(m->backend, m->backend_ctx);
    return st;
}

fp4rt_status fp4rt_session_logits_row(fp4rt_session *s, int row, float *dst) {
    fp4rt_model *m = s->model;
    size_t bytes = (size_t)m->weights->cfg.vocab * 4;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, (size_t)row * bytes, dst, bytes);
    pthread_mutex_unlock(&m->run_lock);
    if (!st) s->logits_down += bytes;
    return st;
}

fp4rt_status fp4rt_session_fetch_logits(fp4rt_session *s) {
    fp4rt_status st = fp4rt_session_logits_row(s, 0, s->last_logits);
    s->have_logits = !st;
    return st;
}

fp4rt_status fp4rt_session_eval_pick(fp4rt_session *s, int32_t token, int32_t *id) {
    fp4rt_model *m = s->model;
    *id = -1;
    if (!m->backend->argmax) return fp4rt_fail(FP4RT_INTERNAL, "the %s backend has no device pick", m->backend->name);
    if (token < 0 || token >= m->weights->cfg.vocab)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "token %d is outside the vocabulary [0, %d)", token,
                          m->weights->cfg.vocab);
    if (s->n_past + 1 > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + 1 new exceed n_ctx %d", s->n_past,
                          s->sb.n_ctx);
    fp4rt_step step = {.relaxed = s->relaxed,
                       .tokens = &token,
                       .n_tokens = 1,
                       .pos0 = s->n_past,
                       .argmax_valid = m->valid_ids,
                       .argmax_out = id};
    fp4rt_session_rope_text(s, &step);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
    if (!st) st = fp4rt_session_mtp_after_step(s, &token, 1, s->n_past);
    if (st) return st;
    s->history[s->n_past++] = token;
    if (*id < 0) return fp4rt_session_fetch_logits(s); /* a NaN: the CPU sampler decides */
    return FP4RT_OK;
}

fp4rt_status fp4rt_session_eval_topk(fp4rt_session *s, int32_t token, const fp4rt_topk_request *req, float *vals,
                                     int32_t *ids) {
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    ids[0] = -1;
    if (!m->backend->top_k) return fp4rt_fail(FP4RT_INTERNAL, "the %s backend has no device top-k", m->backend->name);
    if (token < 0 || token >= vocab)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "token %d is outside the vocabulary [0, %d)", token, vocab);
    if (s->n_past + 1 > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + 1 new exceed n_ctx %d", s->n_past,
                          s->sb.n_ctx);
    fp4rt_step step = {.relaxed = s->relaxed, .tokens = &token, .n_tokens = 1, .pos0 = s->n_past};
    fp4rt_session_rope_text(s, &step);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
    if (!st) st = fp4rt_session_mtp_after_step(s, &token, 1, s->n_past);
    if (st) return st;
    s->history[s->n_past++] = token;
    pthread_mutex_lock(&m->run_lock);
    st = fp4rt_backend_top_k(m->backend, m->backend_ctx, s->sb.logits, 0, vocab, req, vals, ids);
    pthread_mutex_unlock(&m->run_lock);
    if (st) return st;
    if (ids[0] < 0) return fp4rt_session_fetch_logits(s); /* a NaN: the CPU sampler decides */
    return FP4RT_OK;
}
