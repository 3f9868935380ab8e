/* Memory planning without running anything: from an opened checkpoint, or from
 * a config + recipe alone (no files: `fp4rt plan --config qwen3.6-27b`). */
#ifndef FP4RT_PLAN_H
#define FP4RT_PLAN_H

#include "runtime/model/program.h"
#include "runtime/model/schema.h"

/* Bytes of each part a model + session needs. */
typedef struct fp4rt_memory_plan {
    uint64_t weights;  /* tensors the text model reads (as stored) */
    uint64_t kv;       /* KV cache of all full-attention layers */
    uint64_t conv;     /* GDN conv state */
    uint64_t ssm;      /* GDN recurrent state */
    uint64_t scratch;  /* activation arena */
    uint64_t logits;   /* logits buffer */
    uint64_t rope;     /* RoPE table of the GPU backends (Vulkan, CUDA; not the CPU's):
                          [n_ctx][rotary_dim / 2][2 (cos, sin)] f32, built on the host */
    uint64_t weights_per_token; /* weight bytes read by one decode step */
    /* The MTP head (weights.h), none of it in the fields above: its tensors as
     * stored (a quantizer keeps them BF16), their count, and the KV cache of its
     * layers (n_ctx tokens) that a session with fp4rt_session_params.mtp adds. */
    uint64_t mtp_weights;
    uint64_t mtp_tensors;
    uint64_t mtp_kv;
    /* The vision tower (none of it in the fields above; 0 without one): its tensors
     * as stored (BF16 from a config), their count, and the activations of one image
     * of FP4RT_VISION_MAX_PATCHES patches on the device (the encoder's and the
     * merger's arenas, runtime/engine/vision.c), allocated per image. */
    uint64_t vision_weights;
    uint64_t vision_tensors;
    uint64_t vision_image;
} fp4rt_memory_plan;

/* Per-format totals. Index FP4RT_W_COUNT collects non-linear tensors (embedding,
 * norms, conv, gates' vectors). Linears count their scale tensors with them. */
#define FP4RT_FMT_OTHER FP4RT_W_COUNT
typedef struct fp4rt_format_totals {
    uint64_t modules[FP4RT_W_COUNT + 1]; /* linears per format; other: tensors */
    uint64_t tensors[FP4RT_W_COUNT + 1]; /* tensors (weights and scales) */
    uint64_t bytes[FP4RT_W_COUNT + 1];
} fp4rt_format_totals;

/* The checkpoint's text-model weights; plan->weights and weights_per_token. */
void fp4rt_plan_checkpoint(const fp4rt_weights *w, fp4rt_memory_plan *plan,
                           fp4rt_format_totals *tot);
/* Everything for a config + recipe ("none" or NULL = BF16 as synthesized). */
fp4rt_status fp4rt_plan_config(const fp4rt_config *cfg, const char *recipe, int n_ctx, int chunk,
                               fp4rt_kv_type kv, fp4rt_memory_plan *plan, fp4rt_format_totals *tot);

/* Session sizes for a program (no allocation). n_ctx, chunk already resolved. */
void fp4rt_plan_session(const fp4rt_program *p, int n_ctx, int chunk, fp4rt_kv_type kv,
                        fp4rt_memory_plan *out);
/* Resolves the zero defaults of session params against a model config;
 * kv_fp8_declared: the checkpoint's kv_cache_quant_algo is FP8. */
void fp4rt_session_params_resolve(const fp4rt_config *cfg, int kv_fp8_declared,
                                  const fp4rt_session_params *in, fp4rt_session_params *out);

#endif
