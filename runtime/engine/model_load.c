/* Public API: model load, queries, tokenizer access (fp4rt.h). */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <cjson/cJSON.h>
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
/* dir's preprocessor_config.json (or processor_config.json): a present one must
 * parse; none: the Qwen3.5 defaults (fp4rt_image_config_default). */
static fp4rt_status load_image_config(fp4rt_model *m, const char *dir) {
    static const char *const names[] = {"preprocessor_config.json", "processor_config.json"};
    int present = 0;
    for (size_t i = 0; i < FP4RT_ARRAY_LEN(names) && !present; i++) {
        char *path = fp4rt_path_join(dir, names[i]);
        if (!path) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "%s: out of memory for the path of %s", dir, names[i]);
        present = access(path, F_OK) == 0;
        free(path);
    }
    if (present) return fp4rt_image_config_load(dir, &m->image_cfg);
    fp4rt_image_config_default(&m->image_cfg);
    return FP4RT_OK;
}

static fp4rt_status load_text_side(fp4rt_model *m, const char *dir) {
    fp4rt_status st = fp4rt_gen_config_load(dir, &m->gen);
    if (st) return st;
    char *path = fp4rt_path_join(dir, "tokenizer.json");
    if (!path) return FP4RT_OUT_OF_MEMORY;
    if (access(path, F_OK) == 0) st = fp4rt_tokenizer_load(path, &m->tokenizer);
    free(path);
    if (st) return st;
    /* the image processor's settings (used only for images); absent: Qwen3.5's */
    if ((st = load_image_config(m, dir))) return st;
    const fp4rt_config *c = &m->weights->cfg;
    m->think_open = m->think_close = m->image_pad = -1;
    if (m->tokenizer) {
        m->think_open = fp4rt_tokenizer_find(m->tokenizer, "<think>");
        m->think_close = fp4rt_tokenizer_find(m->tokenizer, "</think>");
        m->image_pad = fp4rt_tokenizer_find(m->tokenizer, "<|image_pad|>");
        size_t nt = fp4rt_tokenizer_n_vocab(m->tokenizer);
        if (nt > (size_t)c->vocab)
            return fp4rt_fail(FP4RT_FORMAT, "%s: tokenizer.json has %zu ids but the model has %d rows",
                              dir, nt, c->vocab);
        /* rows past the tokenizer (padding) and holes in its ids are never sampled */
        m->valid_ids = fp4rt_calloc((size_t)c->vocab, 1, "vocabulary mask");
        if (!m->valid_ids) return FP4RT_OUT_OF_MEMORY;
        for (int32_t id = 0; id < c->vocab; id++) m->valid_ids[id] = (uint8_t)fp4rt_tokenizer_has_id(m->tokenizer, id);
    }
    /* every declared end-of-generation id must be a token the model can produce */
    const struct {
        const int32_t *ids;
        int n;
        const char *file;
    } decl[] = {{m->gen.eos, m->gen.n_eos, "generation_config.json"}, {c->eos, c->n_eos, "config.json"}};
    for (size_t k = 0; k < FP4RT_ARRAY_LEN(decl); k++)
        for (int i = 0; i < decl[k].n; i++) {
            int32_t id = decl[k].ids[i];
            if (id < 0 || id >= c->vocab)
                return fp4rt_fail(FP4RT_FORMAT, "%s/%s: eos_token_id %d is outside the vocabulary [0, %d)", dir,
                                  decl[k].file, id, c->vocab);
            if (m->valid_ids && !m->valid_ids[id])
                return fp4rt_fail(FP4RT_FORMAT, "%s/%s: eos_token_id %d is not a token of tokenizer.json", dir,
                                  decl[k].file, id);
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

static int report(const fp4rt_model_params *p, float f, const char *stage) {
    return p->progress ? p->progress(f, stage, p->progress_user) : 0;
}

/* Per-op timing on (--profile); a backend without it is a warning, not an error. */
static fp4rt_status profile_on(fp4rt_model *m) {
    fp4rt_status st = fp4rt_backend_set_profile(m->backend, m->backend_ctx, 1);
    if (st != FP4RT_UNSUPPORTED) return st;
    fp4rt_log(FP4RT_LOG_WARN, "%s", fp4rt_last_error());
    return FP4RT_OK;
}

/* The profile parameter: params->profile, or FP4RT_PROFILE=1 (the one place
 * that knob is read). */
static int wants_profile(const fp4rt_model_params *params) {
    return params->profile || fp4rt_env_bool(FP4RT_ENV_PROFILE);
}

fp4rt_model *fp4rt_model_load(const char *dir, const fp4rt_model_params *params) {
    fp4rt_model_params defaults = fp4rt_model_default_params();
    if (!params) params = &defaults;
    if (!dir) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_load: dir is NULL");
        return NULL;
    }
    if (params->n_threads < 0) {
        fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_params.n_threads = %d: expected 0 (all cores) or > 0",
                   params->n_threads);
        return NULL;
    }
    fp4rt_device_choice dev;
    fp4rt_status dst = fp4rt_device_parse(params->device, &dev);
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
        st = fp4rt_backend_start(m, dev, 0);
    }
    if (!st && wants_profile(params)) st = profile_on(m);
    if (!st && report(params, 1.0f, "ready")) st = FP4RT_CANCELLED;
    if (st == FP4RT_CANCELLED) fp4rt_fail(st, "%s: loading cancelled by the progress callback", dir);
    if (st) {
        fp4rt_model_free(m);
        return NULL;
    }
    fp4rt_backend_describe(m->backend, m->backend_ctx, m->device, sizeof m->device);
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
    fp4rt_device_choice dev;
    if (fp4rt_device_parse(params->device, &dev)) return NULL;
    fp4rt_model *m = fp4rt_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    pthread_mutex_init(&m->run_lock, NULL);
    m->think_open = m->think_close = m->image_pad = -1;
    fp4rt_image_config_default(&m->image_cfg);
    fp4rt_status st = fp4rt_weights_synthetic(preset, recipe, &m->weights);
    if (!st && params->fp4_activations) st = fp4rt_weights_fp4_activations(m->weights);
    if (!st) st = fp4rt_program_build(m->weights, &m->program);
    if (!st) {
        m->n_threads = params->n_threads;
        if (m->n_threads <= 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            m->n_threads = n > 0 ? (int)n : 1;
        }
        st = fp4rt_backend_start(m, dev, seed);
    }
    if (!st && wants_profile(params)) st = profile_on(m);
    if (st) {
        fp4rt_fail_context(st, "synthetic %s", preset);
        fp4rt_model_free(m);
        return NULL;
    }
    fp4rt_backend_describe(m->backend, m->backend_ctx, m->device, sizeof m->device);
    return m;
}

void fp4rt_model_free(fp4rt_model *m) {
    if (!m) return;
    if (m->mtp_ctx) fp4rt_backend_destroy(m->backend, m->mtp_ctx);
    if (m->vis_encoder_ctx) fp4rt_backend_destroy(m->backend, m->vis_encoder_ctx);
    if (m->vis_merger_ctx) fp4rt_backend_destroy(m->backend, m->vis_merger_ctx);
    fp4rt_program_free(m->vis_encoder);
    fp4rt_program_free(m->vis_merger);
    fp4rt_program_free(m->mtp_program);
    fp4rt_backend_destroy(m->backend, m->backend_ctx);
    fp4rt_program_free(m->program);
    fp4rt_weights_free(m->weights);
    fp4rt_tokenizer_free(m->tokenizer);
    free(m->valid_ids);
    pthread_mutex_destroy(&m->run_lock);
    free(m);
}

int fp4rt_model_n_vocab(const fp4rt_model *m) { return m ? m->weights->cfg.vocab : 0; }

fp4rt_status fp4rt_model_set_observer(fp4rt_model *m, fp4rt_linear_observer fn, void *user) {
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_set_observer: model is NULL");
    return fp4rt_backend_set_observer(m->backend, m->backend_ctx, fn, user);
}

int fp4rt_model_eos_ids(const fp4rt_model *m, int32_t *ids, int cap) {
    if (!m) return 0;
    for (int i = 0; ids && i < m->n_eos && i < cap; i++) ids[i] = m->eos[i]; /* ids NULL: the count only */
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

