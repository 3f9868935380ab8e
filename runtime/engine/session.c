/* Public API: sessions and evaluation (fp4rt.h). */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_release(fp4rt_session *s) {
    const fp4rt_backend_ops *be = s->model->backend;
    void *ctx = s->model->backend_ctx;
    fp4rt_buffer **bufs[] = {&s->sb.scratch, &s->sb.kv, &s->sb.conv, &s->sb.ssm, &s->sb.logits};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(bufs); i++) {
        fp4rt_backend_free(be, ctx, *bufs[i]);
        *bufs[i] = NULL;
    }
}

fp4rt_session *fp4rt_session_create(fp4rt_model *m, const fp4rt_session_params *params) {
    if (!m) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_create: model is NULL");
        return NULL;
    }
    fp4rt_session_params defaults = fp4rt_session_default_params(), p;
    fp4rt_session_params_resolve(&m->weights->cfg, m->weights->quant.kv_cache_fp8,
                                 params ? params : &defaults, &p);
    if (p.kv_type != FP4RT_KV_BF16 && p.kv_type != FP4RT_KV_F32 && p.kv_type != FP4RT_KV_FP8) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "unknown kv_type %d", (int)p.kv_type);
        return NULL;
    }
    fp4rt_session *s = fp4rt_calloc(1, sizeof *s, "session");
    if (!s) return NULL;
    s->model = m;
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
    struct {
        fp4rt_buffer **buf;
        uint64_t bytes;
        const char *what;
    } parts[] = {
        {&s->sb.scratch, plan.scratch, "activation arena"},
        {&s->sb.kv, plan.kv, "KV cache"},
        {&s->sb.conv, plan.conv, "GDN conv state"},
        {&s->sb.ssm, plan.ssm, "GDN recurrent state"},
        {&s->sb.logits, plan.logits, "logits"},
    };
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(parts); i++) {
        if (parts[i].bytes > SIZE_MAX ||
            fp4rt_backend_alloc(be, m->backend_ctx, (size_t)parts[i].bytes, parts[i].what, parts[i].buf)) {
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
    fp4rt_session_reset(s);
    return s;
}

void fp4rt_session_free(fp4rt_session *s) {
    if (!s) return;
    session_release(s);
    free(s->history);
    free(s->last_logits);
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
}

int fp4rt_session_n_past(const fp4rt_session *s) { return s ? s->n_past : 0; }

const int32_t *fp4rt_session_tokens(const fp4rt_session *s) { return s ? s->history : NULL; }

fp4rt_status fp4rt_session_eval(fp4rt_session *s, const int32_t *tokens, int n, float *logits,
                                int all_logits) {
    if (!s || (!tokens && n > 0) || n < 0)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_session_eval: bad arguments");
    if (n == 0) return FP4RT_OK;
    fp4rt_model *m = s->model;
    int vocab = m->weights->cfg.vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "token %d at index %d is outside the vocabulary [0, %d)",
                              tokens[i], i, vocab);
    if (s->n_past + n > s->sb.n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d tokens held + %d new exceed n_ctx %d",
                          s->n_past, n, s->sb.n_ctx);
    for (int i = 0; i < n; i += s->sb.chunk) {
        int cn = FP4RT_MIN(s->sb.chunk, n - i);
        int last = i + cn == n;
        fp4rt_step step = {.tokens = tokens + i, .n_tokens = cn, .pos0 = s->n_past,
                           .all_logits = all_logits, .no_logits = !logits || (!all_logits && !last)};
        pthread_mutex_lock(&m->run_lock);
        fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
        if (!st && logits) {
            if (all_logits)
                st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0,
                                                 logits + (size_t)i * vocab, (size_t)cn * vocab * 4);
            else if (last)
                st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0, logits, (size_t)vocab * 4);
        }
        pthread_mutex_unlock(&m->run_lock);
        if (st) {
            /* the state is now partly updated: the session must be reset */
            s->have_logits = 0;
            return st;
        }
        memcpy(s->history + s->n_past, tokens + i, (size_t)cn * sizeof(int32_t));
        s->n_past += cn;
        s->have_logits = 0;
    }
    return fp4rt_backend_synchronize(m->backend, m->backend_ctx);
}

fp4rt_status fp4rt_session_fetch_logits(fp4rt_session *s) {
    fp4rt_model *m = s->model;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_download(m->backend, m->backend_ctx, s->sb.logits, 0, s->last_logits,
                                                  (size_t)m->weights->cfg.vocab * 4);
    pthread_mutex_unlock(&m->run_lock);
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
    fp4rt_step step = {.tokens = &token, .n_tokens = 1, .pos0 = s->n_past, .argmax_valid = m->valid_ids,
                       .argmax_out = id};
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
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
    fp4rt_step step = {.tokens = &token, .n_tokens = 1, .pos0 = s->n_past};
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_run(m->backend, m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
    if (st) return st;
    s->history[s->n_past++] = token;
    pthread_mutex_lock(&m->run_lock);
    st = fp4rt_backend_top_k(m->backend, m->backend_ctx, s->sb.logits, 0, vocab, req, vals, ids);
    pthread_mutex_unlock(&m->run_lock);
    if (st) return st;
    if (ids[0] < 0) return fp4rt_session_fetch_logits(s); /* a NaN: the CPU sampler decides */
    return FP4RT_OK;
}
