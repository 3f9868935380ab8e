/* Public API: model load, sessions, evaluation (fp4rt.h). */
#include "model.h"

#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

fp4rt_model_params fp4rt_model_default_params(void) {
    fp4rt_model_params p;
    memset(&p, 0, sizeof p);
    return p;
}

fp4rt_session_params fp4rt_session_default_params(void) {
    fp4rt_session_params p;
    memset(&p, 0, sizeof p);
    return p;
}

fp4rt_model *fp4rt_model_load(const char *dir, const fp4rt_model_params *params) {
    fp4rt_model_params defaults = fp4rt_model_default_params();
    if (!params) params = &defaults;
    if (!dir) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_load: dir is NULL");
        return NULL;
    }
    if (params->device && strcmp(params->device, "auto") && strcmp(params->device, "cpu")) {
        fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available (this build has: cpu)", params->device);
        return NULL;
    }
    fp4rt_model *m = fp4rt_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    fp4rt_status st = fp4rt_weights_load(dir, &m->weights);
    if (!st) st = fp4rt_program_build(m->weights, &m->program);
    if (!st) {
        m->backend = &fp4rt_backend_cpu;
        m->n_threads = params->n_threads;
        if (m->n_threads <= 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            m->n_threads = n > 0 ? (int)n : 1;
        }
        st = m->backend->create(m->n_threads, &m->backend_ctx);
    }
    if (!st && m->backend->prepare) st = m->backend->prepare(m->backend_ctx, m->program);
    if (st) {
        fp4rt_model_free(m);
        return NULL;
    }
    if (m->backend->describe)
        m->backend->describe(m->backend_ctx, m->device, sizeof m->device);
    else
        snprintf(m->device, sizeof m->device, "%s", m->backend->name);
    return m;
}

void fp4rt_model_free(fp4rt_model *m) {
    if (!m) return;
    if (m->backend_ctx) m->backend->destroy(m->backend_ctx);
    fp4rt_program_free(m->program);
    fp4rt_weights_free(m->weights);
    free(m);
}

int fp4rt_model_n_vocab(const fp4rt_model *m) { return m ? m->weights->cfg.vocab : 0; }

size_t fp4rt_kv_elem_size(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? 4 : t == FP4RT_KV_FP8 ? 1 : 2;
}

const char *fp4rt_kv_type_name(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? "F32" : t == FP4RT_KV_FP8 ? "FP8" : "BF16";
}

void fp4rt_session_params_resolve(const fp4rt_config *cfg, int kv_fp8_declared,
                                  const fp4rt_session_params *in, fp4rt_session_params *out) {
    *out = *in;
    if (out->n_ctx <= 0) out->n_ctx = 4096;
    if (cfg->max_positions > 0 && out->n_ctx > cfg->max_positions) out->n_ctx = cfg->max_positions;
    if (out->prefill_chunk <= 0) out->prefill_chunk = 512;
    if (out->prefill_chunk > out->n_ctx) out->prefill_chunk = out->n_ctx;
    if (out->kv_type == FP4RT_KV_DEFAULT) out->kv_type = kv_fp8_declared ? FP4RT_KV_FP8 : FP4RT_KV_BF16;
}

void fp4rt_plan_session(const fp4rt_program *p, int n_ctx, int chunk, fp4rt_kv_type kv,
                        fp4rt_memory_plan *out) {
    const fp4rt_config *c = &p->weights->cfg;
    size_t kv_elem = fp4rt_kv_elem_size(kv);
    out->kv = (uint64_t)p->n_attn_layers * 2 * n_ctx * c->n_kv_heads * c->head_dim * kv_elem;
    out->conv = (uint64_t)p->n_gdn_layers * fp4rt_cfg_conv_dim(c) * (c->conv_kernel - 1) * 4;
    out->ssm = (uint64_t)p->n_gdn_layers * c->lin_v_heads * c->lin_k_dim * c->lin_v_dim * 4;
    out->scratch = (uint64_t)chunk * p->arena_width * 4;
    out->logits = (uint64_t)chunk * c->vocab * 4;
}

static void session_release(fp4rt_session *s) {
    const fp4rt_backend_ops *be = s->model->backend;
    void *ctx = s->model->backend_ctx;
    fp4rt_buffer **bufs[] = {&s->sb.scratch, &s->sb.kv, &s->sb.conv, &s->sb.ssm, &s->sb.logits};
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(bufs); i++) {
        if (*bufs[i]) be->buffer_free(ctx, *bufs[i]);
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
            be->buffer_alloc(m->backend_ctx, (size_t)parts[i].bytes, parts[i].what, parts[i].buf)) {
            if (parts[i].bytes > SIZE_MAX)
                fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s of %llu bytes does not fit in memory", parts[i].what,
                           (unsigned long long)parts[i].bytes);
            session_release(s);
            free(s);
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
    free(s);
}

void fp4rt_session_reset(fp4rt_session *s) {
    if (!s) return;
    const fp4rt_backend_ops *be = s->model->backend;
    /* the KV cache needs no clearing: positions >= n_past are never read */
    be->buffer_clear(s->model->backend_ctx, s->sb.conv);
    be->buffer_clear(s->model->backend_ctx, s->sb.ssm);
    s->n_past = 0;
}

int fp4rt_session_n_past(const fp4rt_session *s) { return s ? s->n_past : 0; }

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
        fp4rt_status st = m->backend->run(m->backend_ctx, m->program, &s->sb, &step);
        if (st) return st;
        s->n_past += cn;
        if (!logits) continue;
        if (all_logits)
            st = m->backend->buffer_download(m->backend_ctx, s->sb.logits, 0,
                                             logits + (size_t)i * vocab, (size_t)cn * vocab * 4);
        else if (last)
            st = m->backend->buffer_download(m->backend_ctx, s->sb.logits, 0, logits, (size_t)vocab * 4);
        if (st) return st;
    }
    if (m->backend->synchronize) return m->backend->synchronize(m->backend_ctx);
    return FP4RT_OK;
}
