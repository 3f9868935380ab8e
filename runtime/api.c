/* Public API: model load, sessions, evaluation (fp4rt.h). */
#include "model.h"

#include "common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda.h"
#ifdef FP4RT_HAVE_VULKAN
#include "vk.h"
#endif

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

/* tokenizer_config.json's eos_token ("<|im_end|>" or {"content": ...}) as an id, or -1. */
static int32_t tokenizer_config_eos(const char *dir, const fp4rt_tokenizer *tok) {
    char *path = fp4rt_path_join(dir, "tokenizer_config.json"), *text = NULL;
    int32_t id = -1;
    size_t len;
    if (path && access(path, F_OK) == 0 && fp4rt_read_file(path, 16u << 20, &text, &len) == FP4RT_OK) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "eos_token");
        if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (cJSON_IsString(e)) id = fp4rt_tokenizer_find(tok, e->valuestring);
        cJSON_Delete(root);
    }
    fp4rt_clear_error();
    free(text);
    free(path);
    return id;
}

/* Tokenizer (if the checkpoint has one), generation defaults, stop ids. */
static fp4rt_status load_text_side(fp4rt_model *m, const char *dir) {
    fp4rt_status st = fp4rt_gen_config_load(dir, &m->gen);
    if (st) return st;
    char *path = fp4rt_path_join(dir, "tokenizer.json");
    if (!path) return FP4RT_OUT_OF_MEMORY;
    if (access(path, F_OK) == 0) st = fp4rt_tokenizer_load(path, &m->tokenizer);
    free(path);
    if (st) return st;
    const fp4rt_config *c = &m->weights->cfg;
    m->think_open = m->think_close = -1;
    if (m->tokenizer) {
        m->think_open = fp4rt_tokenizer_find(m->tokenizer, "<think>");
        m->think_close = fp4rt_tokenizer_find(m->tokenizer, "</think>");
        size_t nt = fp4rt_tokenizer_n_vocab(m->tokenizer);
        if (nt > (size_t)c->vocab)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tokenizer.json has %zu ids but the model has %d rows",
                              dir, nt, c->vocab);
        /* rows past the tokenizer (padding) and holes in its ids are never sampled */
        m->valid_ids = fp4rt_calloc((size_t)c->vocab, 1, "vocabulary mask");
        if (!m->valid_ids) return FP4RT_OUT_OF_MEMORY;
        for (int32_t id = 0; id < c->vocab; id++) m->valid_ids[id] = (uint8_t)fp4rt_tokenizer_has_id(m->tokenizer, id);
    }
    /* stop ids: generation_config.json, else the tokenizer's eos, else config.json */
    if (m->gen.n_eos > 0) {
        m->n_eos = m->gen.n_eos;
        memcpy(m->eos, m->gen.eos, sizeof(int32_t) * (size_t)m->n_eos);
    } else {
        int32_t id = m->tokenizer ? tokenizer_config_eos(dir, m->tokenizer) : -1;
        if (id >= 0) {
            m->eos[m->n_eos++] = id;
        } else {
            for (int i = 0; i < c->n_eos && m->n_eos < FP4RT_MAX_STOP_IDS; i++) m->eos[m->n_eos++] = c->eos[i];
        }
    }
    return FP4RT_OK;
}

/* The device a model runs on. */
typedef enum { DEV_CPU, DEV_VULKAN, DEV_CUDA } dev_kind;
typedef struct dev_choice {
    dev_kind kind;
    int index;
    int asked; /* the user named the device: no fallback */
} dev_choice;

/* Parses "kind" or "kind:N" (N defaults to 0); 0 when dev is not of that kind. */
static int parse_indexed(const char *dev, const char *kind, int *index, fp4rt_status *st) {
    size_t k = strlen(kind);
    if (strncmp(dev, kind, k) || (dev[k] && dev[k] != ':')) return 0;
    *st = FP4RT_OK;
    *index = 0;
    if (dev[k]) {
        char *end = NULL;
        long i = strtol(dev + k + 1, &end, 10);
        if (end == dev + k + 1 || *end || i < 0 || i > 1000)
            *st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "device '%s': expected %s:N", dev, kind);
        *index = (int)i;
    }
    return 1;
}

/* --device: NULL / "auto" (the best CUDA device when the CUDA module loads,
 * else the best Vulkan GPU, never a software device, else the CPU), "cpu",
 * "vulkan" (= vulkan:0), "vulkan:N", "cuda" (= cuda:0), "cuda:N". */
static fp4rt_status parse_device(const char *dev, dev_choice *out) {
    out->kind = DEV_CPU;
    out->index = -1;
    out->asked = 0;
    if (!dev || !strcmp(dev, "auto")) {
        int cu = fp4rt_cuda_best_device();
        if (cu >= 0) {
            out->kind = DEV_CUDA;
            out->index = cu;
            return FP4RT_OK;
        }
#ifdef FP4RT_HAVE_VULKAN
        int vk = fp4rt_vk_best_device();
        if (vk >= 0) {
            out->kind = DEV_VULKAN;
            out->index = vk;
        }
#endif
        return FP4RT_OK;
    }
    if (!strcmp(dev, "cpu")) return FP4RT_OK;
    out->asked = 1;
    fp4rt_status st;
    int i;
    if (parse_indexed(dev, "cuda", &i, &st)) {
        if (st) return st;
        if (i >= fp4rt_cuda_device_count()) {
            fp4rt_cuda_device_desc d;
            return fp4rt_fail_context(fp4rt_cuda_device_get(i, &d), "device '%s'", dev);
        }
        out->kind = DEV_CUDA;
        out->index = i;
        return FP4RT_OK;
    }
    if (parse_indexed(dev, "vulkan", &i, &st)) {
        if (st) return st;
#ifdef FP4RT_HAVE_VULKAN
        if (i >= fp4rt_vk_device_count())
            return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: %d Vulkan device%s%s%s%s", dev,
                              fp4rt_vk_device_count(), fp4rt_vk_device_count() == 1 ? "" : "s",
                              fp4rt_vk_unavailable_reason()[0] ? " (" : "", fp4rt_vk_unavailable_reason(),
                              fp4rt_vk_unavailable_reason()[0] ? ")" : "");
        out->kind = DEV_VULKAN;
        out->index = i;
        return FP4RT_OK;
#else
        return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available: this build has no Vulkan backend", dev);
#endif
    }
    return fp4rt_fail(FP4RT_DEVICE, "device '%s' is not available (known: auto, cpu, vulkan:N, cuda:N)", dev);
}

/* Creates and prepares the backend on one GPU device. */
/* prepare, or prepare_synthetic when the weights are synthetic. */
static fp4rt_status prepare_backend(fp4rt_model *m, uint64_t seed) {
    if (!m->weights->synthetic) return m->backend->prepare ? m->backend->prepare(m->backend_ctx, m->program) : 0;
    if (!m->backend->prepare_synthetic)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot generate synthetic weights", m->backend->name);
    return m->backend->prepare_synthetic(m->backend_ctx, m->program, seed);
}

static fp4rt_status start_gpu(fp4rt_model *m, dev_kind kind, int index, uint64_t seed) {
    fp4rt_status st = FP4RT_UNSUPPORTED;
    m->backend = NULL;
    if (kind == DEV_CUDA) {
        m->backend = fp4rt_cuda_backend();
        st = fp4rt_cuda_backend_create(index, &m->backend_ctx);
    }
#ifdef FP4RT_HAVE_VULKAN
    if (kind == DEV_VULKAN) {
        m->backend = &fp4rt_backend_vulkan;
        st = fp4rt_vk_backend_create(index, &m->backend_ctx);
    }
#endif
    if (!m->backend) return fp4rt_fail(FP4RT_DEVICE, "no backend for device kind %d", (int)kind);
    if (!st) st = prepare_backend(m, seed);
    if (st && m->backend_ctx) m->backend->destroy(m->backend_ctx);
    if (st) m->backend_ctx = NULL;
    return st;
}

/* Creates and prepares the backend; a GPU device the user did not name falls
 * back (CUDA to the best Vulkan GPU, then the CPU) with a warning. */
static fp4rt_status start_backend(fp4rt_model *m, dev_choice d, uint64_t seed) {
    fp4rt_status st;
    while (d.kind != DEV_CPU) {
        st = start_gpu(m, d.kind, d.index, seed);
        if (!st || d.asked) return st;
        const char *name = d.kind == DEV_CUDA ? "cuda" : "vulkan";
        int failed = d.index;
        d.kind = DEV_CPU;
#ifdef FP4RT_HAVE_VULKAN
        if (!strcmp(name, "cuda") && fp4rt_vk_best_device() >= 0) {
            d.kind = DEV_VULKAN;
            d.index = fp4rt_vk_best_device();
        }
#endif
        fp4rt_log(FP4RT_LOG_WARN, "%s:%d is not usable (%s); falling back to %s", name, failed, fp4rt_last_error(),
                  d.kind == DEV_VULKAN ? "Vulkan" : "the CPU");
        fp4rt_clear_error();
    }
    m->backend = &fp4rt_backend_cpu;
    st = m->backend->create(m->n_threads, &m->backend_ctx);
    if (!st) st = prepare_backend(m, seed);
    return st;
}

static int report(const fp4rt_model_params *p, float f, const char *stage) {
    return p->progress ? p->progress(f, stage, p->progress_user) : 0;
}

fp4rt_model *fp4rt_model_load(const char *dir, const fp4rt_model_params *params) {
    fp4rt_model_params defaults = fp4rt_model_default_params();
    if (!params) params = &defaults;
    if (!dir) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_load: dir is NULL");
        return NULL;
    }
    dev_choice dev;
    fp4rt_status dst = parse_device(params->device, &dev);
    if (dst) return NULL;
    fp4rt_model *m = fp4rt_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    pthread_mutex_init(&m->run_lock, NULL);
    fp4rt_status st = report(params, 0.0f, "reading the checkpoint") ? FP4RT_CANCELLED : FP4RT_OK;
    if (!st) st = fp4rt_weights_load(dir, &m->weights);
    if (!st && params->fp4_activations) st = fp4rt_weights_fp4_activations(m->weights);
    if (!st && report(params, 0.6f, "building the program")) st = FP4RT_CANCELLED;
    if (!st) st = fp4rt_program_build(m->weights, &m->program);
    if (!st && report(params, 0.7f, "loading the tokenizer")) st = FP4RT_CANCELLED;
    if (!st) st = load_text_side(m, dir);
    if (!st && report(params, 0.8f, "preparing the device")) st = FP4RT_CANCELLED;
    if (!st) {
        m->n_threads = params->n_threads;
        if (m->n_threads <= 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            m->n_threads = n > 0 ? (int)n : 1;
        }
        st = start_backend(m, dev, 0);
    }
    if (!st && params->profile) {
        if (m->backend->set_profile)
            st = m->backend->set_profile(m->backend_ctx, 1);
        else
            fp4rt_log(FP4RT_LOG_WARN, "the %s backend has no profile", m->backend->name);
    }
    if (!st && report(params, 1.0f, "ready")) st = FP4RT_CANCELLED;
    if (st == FP4RT_CANCELLED) fp4rt_fail(st, "%s: loading cancelled by the progress callback", dir);
    if (st) {
        fp4rt_model_free(m);
        return NULL;
    }
    if (m->backend->describe)
        m->backend->describe(m->backend_ctx, m->device, sizeof m->device);
    else
        snprintf(m->device, sizeof m->device, "%s", m->backend->name);
    if (params->fp4_activations) { /* a property of the model: said on every device line */
        size_t len = strlen(m->device);
        snprintf(m->device + len, sizeof m->device - len, "; fp4-activations: %d linears W4A4 (%d dynamic)",
                 m->weights->n_fp4_act, m->weights->n_fp4_act_dynamic);
    }
    return m;
}

fp4rt_model *fp4rt_model_load_synthetic(const char *preset, const char *recipe, uint64_t seed,
                                        const fp4rt_model_params *params) {
    fp4rt_model_params defaults = fp4rt_model_default_params();
    if (!params) params = &defaults;
    dev_choice dev;
    if (parse_device(params->device, &dev)) return NULL;
    fp4rt_model *m = fp4rt_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    pthread_mutex_init(&m->run_lock, NULL);
    m->think_open = m->think_close = -1;
    fp4rt_status st = fp4rt_weights_synthetic(preset, recipe, &m->weights);
    if (!st && params->fp4_activations) st = fp4rt_weights_fp4_activations(m->weights);
    if (!st) st = fp4rt_program_build(m->weights, &m->program);
    if (!st) {
        m->n_threads = params->n_threads;
        if (m->n_threads <= 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            m->n_threads = n > 0 ? (int)n : 1;
        }
        st = start_backend(m, dev, seed);
    }
    if (!st && params->profile && m->backend->set_profile) st = m->backend->set_profile(m->backend_ctx, 1);
    if (st) {
        fp4rt_fail_context(st, "synthetic %s", preset);
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
    fp4rt_tokenizer_free(m->tokenizer);
    free(m->valid_ids);
    pthread_mutex_destroy(&m->run_lock);
    free(m);
}

int fp4rt_model_n_vocab(const fp4rt_model *m) { return m ? m->weights->cfg.vocab : 0; }

fp4rt_status fp4rt_model_set_observer(fp4rt_model *m, fp4rt_linear_observer fn, void *user) {
    if (!m->backend->set_observer)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot observe activations", m->backend->name);
    return m->backend->set_observer(m->backend_ctx, fn, user);
}

int fp4rt_model_eos_ids(const fp4rt_model *m, int32_t *ids, int cap) {
    if (!m) return 0;
    for (int i = 0; i < m->n_eos && i < cap; i++) ids[i] = m->eos[i];
    return m->n_eos;
}

const char *fp4rt_model_device(const fp4rt_model *m) { return m ? m->device : ""; }

fp4rt_status fp4rt_tokenize(const fp4rt_model *m, const char *text, int32_t **ids, size_t *n) {
    if (!m || !text || !ids || !n) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_tokenize: NULL argument");
    if (!m->tokenizer) return fp4rt_fail(FP4RT_UNSUPPORTED, "the model has no tokenizer.json");
    return fp4rt_tokenizer_encode(m->tokenizer, text, strlen(text), ids, n);
}

fp4rt_status fp4rt_detokenize(const fp4rt_model *m, const int32_t *ids, size_t n, char **text) {
    if (!m || (!ids && n) || !text) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_detokenize: NULL argument");
    if (!m->tokenizer) return fp4rt_fail(FP4RT_UNSUPPORTED, "the model has no tokenizer.json");
    size_t len;
    return fp4rt_tokenizer_decode(m->tokenizer, ids, n, 0, text, &len);
}

static int vk_count(void) {
#ifdef FP4RT_HAVE_VULKAN
    return fp4rt_vk_device_count();
#else
    return 0;
#endif
}

/* Device order: the CPU, the Vulkan devices, the CUDA devices. */
int fp4rt_device_count(void) { return 1 + vk_count() + fp4rt_cuda_device_count(); }

fp4rt_status fp4rt_device_get(int index, fp4rt_device_info *out) {
    if (!out || index < 0 || index >= fp4rt_device_count()) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "no device %d", index);
    memset(out, 0, sizeof *out);
    if (index > vk_count()) {
        int i = index - 1 - vk_count();
        fp4rt_cuda_device_desc d;
        fp4rt_status st = fp4rt_cuda_device_get(i, &d);
        if (st) return st;
        out->kind = FP4RT_DEVICE_CUDA;
        snprintf(out->name, sizeof out->name, "cuda:%d", i);
        snprintf(out->description, sizeof out->description, "%.80s (sm_%d%d, %.0f GB/s), NVFP4 %s%s%.60s", d.name,
                 d.cc_major, d.cc_minor, d.bandwidth_gbs, fp4rt_cuda_fp4_path_name(d.fp4_path),
                 d.usable ? "" : ", not usable: ", d.usable ? "" : d.reason);
        out->memory_bytes = d.memory_bytes;
        out->usable = d.usable;
        return FP4RT_OK;
    }
#ifdef FP4RT_HAVE_VULKAN
    if (index > 0) {
        fp4rt_vk_device_desc d;
        fp4rt_status st = fp4rt_vk_device_get(index - 1, &d);
        if (st) return st;
        out->kind = FP4RT_DEVICE_VULKAN;
        snprintf(out->name, sizeof out->name, "vulkan:%d", index - 1);
        snprintf(out->description, sizeof out->description, "%.80s (%s%s), %.60s%s%.40s", d.name, d.type,
                 d.software ? ", software: used only when named" : "", d.driver, d.usable ? "" : ", not usable: ",
                 d.usable ? "" : d.reason);
        out->memory_bytes = d.memory_bytes;
        out->usable = d.usable;
        return FP4RT_OK;
    }
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->kind = FP4RT_DEVICE_CPU;
    snprintf(out->name, sizeof out->name, "cpu");
    out->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    snprintf(out->description, sizeof out->description,
             "%ld cores, %.1f GiB memory, FP32 reference kernels (NVFP4/FP8 decoded in registers)", cores,
             out->memory_bytes / 1073741824.0);
    out->usable = 1;
    return FP4RT_OK;
}

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
    out->rope = 0;
    for (int i = 0; i < p->n_ops; i++) /* one table per program: every RoPE op has the same rotary_dim */
        if (p->ops[i].kind == FP4RT_OP_ROPE) {
            out->rope = (uint64_t)n_ctx * (p->ops[i].rotary_dim / 2) * 2 * 4;
            break;
        }
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
    s->history = fp4rt_malloc((size_t)p.n_ctx * sizeof(int32_t), "session history");
    s->last_logits = fp4rt_malloc((size_t)m->weights->cfg.vocab * sizeof(float), "session logits");
    if (!s->history || !s->last_logits) {
        fp4rt_session_free(s);
        return NULL;
    }
    if (m->backend->max_chunk) {
        int cap = m->backend->max_chunk(m->backend_ctx, m->program);
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
            be->buffer_alloc(m->backend_ctx, (size_t)parts[i].bytes, parts[i].what, parts[i].buf)) {
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
    be->buffer_clear(s->model->backend_ctx, s->sb.conv);
    be->buffer_clear(s->model->backend_ctx, s->sb.ssm);
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
        fp4rt_status st = m->backend->run(m->backend_ctx, m->program, &s->sb, &step);
        if (!st && logits) {
            if (all_logits)
                st = m->backend->buffer_download(m->backend_ctx, s->sb.logits, 0,
                                                 logits + (size_t)i * vocab, (size_t)cn * vocab * 4);
            else if (last)
                st = m->backend->buffer_download(m->backend_ctx, s->sb.logits, 0, logits, (size_t)vocab * 4);
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
    if (m->backend->synchronize) return m->backend->synchronize(m->backend_ctx);
    return FP4RT_OK;
}

fp4rt_status fp4rt_session_fetch_logits(fp4rt_session *s) {
    fp4rt_model *m = s->model;
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = m->backend->buffer_download(m->backend_ctx, s->sb.logits, 0, s->last_logits,
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
    fp4rt_status st = m->backend->run(m->backend_ctx, m->program, &s->sb, &step);
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
    fp4rt_status st = m->backend->run(m->backend_ctx, m->program, &s->sb, &step);
    pthread_mutex_unlock(&m->run_lock);
    s->have_logits = 0;
    if (st) return st;
    s->history[s->n_past++] = token;
    pthread_mutex_lock(&m->run_lock);
    st = m->backend->top_k(m->backend_ctx, s->sb.logits, 0, vocab, req, vals, ids);
    pthread_mutex_unlock(&m->run_lock);
    if (st) return st;
    if (ids[0] < 0) return fp4rt_session_fetch_logits(s); /* a NaN: the CPU sampler decides */
    return FP4RT_OK;
}
