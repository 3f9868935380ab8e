/* Internal view of the public handles (for the CLI, tests and benchmarks), and
 * the memory planner. */
#ifndef FP4RT_MODEL_H
#define FP4RT_MODEL_H

#include "backend.h"

#include <pthread.h>

#include "../loader/gen_config.h"
#include "../loader/tokenizer.h"

struct fp4rt_model {
    fp4rt_weights *weights;
    fp4rt_program *program;
    const fp4rt_backend_ops *backend;
    void *backend_ctx;
    char device[160]; /* one line: device and kernel path */
    int n_threads;    /* host worker threads used by the backend */
    pthread_mutex_t run_lock;   /* serializes steps of all sessions on the backend */
    fp4rt_tokenizer *tokenizer; /* NULL when the checkpoint has no tokenizer.json */
    fp4rt_gen_config gen;       /* generation_config.json (defaults if absent) */
    int n_eos;
    int32_t eos[FP4RT_MAX_STOP_IDS]; /* end-of-generation ids */
    int32_t think_open, think_close; /* ids of <think> / </think>, -1 if absent */
    uint8_t *valid_ids;         /* [vocab] 1: the tokenizer has this id; NULL without a tokenizer */
};

/* Bytes of each part a model + session needs. */
typedef struct fp4rt_memory_plan {
    uint64_t weights;  /* tensors the text model reads (as stored) */
    uint64_t kv;       /* KV cache of all full-attention layers */
    uint64_t conv;     /* GDN conv state */
    uint64_t ssm;      /* GDN recurrent state */
    uint64_t scratch;  /* activation arena */
    uint64_t logits;   /* logits buffer */
    uint64_t weights_per_token; /* weight bytes read by one decode step */
} fp4rt_memory_plan;

struct fp4rt_session {
    fp4rt_model *model;
    fp4rt_session_buffers sb;
    int n_past;
    int32_t *history;            /* [n_ctx] the n_past tokens held */
    float *last_logits;          /* [vocab] logits after the last token, if have_logits */
    int have_logits;
    fp4rt_memory_plan allocated; /* what was really allocated (bytes) */
};

/* One decode step of `token` whose next token is picked greedily on the device
 * (backend->argmax must exist): *id gets exactly what fp4rt_sampler_sample picks
 * greedily (without penalties) over the model's valid ids, and the logits stay
 * on the device (have_logits = 0; fp4rt_session_fetch_logits brings them). When
 * a logit is NaN, *id = -1 and the logits are downloaded (have_logits = 1). */
fp4rt_status fp4rt_session_eval_pick(fp4rt_session *s, int32_t token, int32_t *id);
/* Downloads the logits of the last step (a decode step) into last_logits. */
fp4rt_status fp4rt_session_fetch_logits(fp4rt_session *s);

/* Installs (fn != NULL) or removes the calibration hook on the model's backend
 * (runtime/backend.h). UNSUPPORTED if the backend has none. */
fp4rt_status fp4rt_model_set_observer(fp4rt_model *m, fp4rt_linear_observer fn, void *user);

/* Session sizes for a program (no allocation). n_ctx, chunk already resolved. */
void fp4rt_plan_session(const fp4rt_program *p, int n_ctx, int chunk, fp4rt_kv_type kv,
                        fp4rt_memory_plan *out);
/* Weight bytes of the text model of an opened checkpoint, total and per decode token. */
void fp4rt_plan_weights(const fp4rt_weights *w, fp4rt_memory_plan *out);
/* Resolves the zero defaults of session params against a model config;
 * kv_fp8_declared: the checkpoint's kv_cache_quant_algo is FP8. */
void fp4rt_session_params_resolve(const fp4rt_config *cfg, int kv_fp8_declared,
                                  const fp4rt_session_params *in, fp4rt_session_params *out);
/* Bytes per KV-cache element, and "BF16" / "F32" / "FP8". */
size_t fp4rt_kv_elem_size(fp4rt_kv_type t);
const char *fp4rt_kv_type_name(fp4rt_kv_type t);

#endif
