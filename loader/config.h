/* config.json of a Qwen3.5 / Qwen3.6 dense text model.
 *
 * Accepted: Qwen3_5ForConditionalGeneration (text fields nested in "text_config",
 * tensors under "model.language_model.") and Qwen3_5ForCausalLM (flat, tensors
 * under "model."). The actual prefix is confirmed against the checkpoint by the
 * model loader. Layer kinds come from "layer_types" or, when absent, from
 * "full_attention_interval" (layer i is full attention iff (i+1) % interval == 0).
 * Every missing required key, wrong type or inconsistent value is a FORMAT error
 * naming the file and the key. */
#ifndef FP4RT_CONFIG_H
#define FP4RT_CONFIG_H

#include "fp4rt.h"

#include <stddef.h>

#define FP4RT_MAX_LAYERS 1024
#define FP4RT_MAX_EOS 8

typedef enum fp4rt_layer_kind { FP4RT_LAYER_GDN = 0, FP4RT_LAYER_ATTENTION = 1 } fp4rt_layer_kind;

typedef struct fp4rt_config {
    char architecture[64]; /* "Qwen3_5ForConditionalGeneration" or "Qwen3_5ForCausalLM" */
    int nested;            /* 1 when fields came from text_config */
    char tensor_prefix[32]; /* "model.language_model." (nested) or "model." */

    int hidden;       /* hidden_size */
    int n_layers;     /* num_hidden_layers */
    int intermediate; /* intermediate_size */
    int vocab;        /* vocab_size (rows of embed_tokens / lm_head) */
    float rms_eps;    /* rms_norm_eps */
    int tie_embeddings;
    int max_positions; /* max_position_embeddings (0 if absent) */

    /* gated full attention */
    int n_heads;    /* num_attention_heads */
    int n_kv_heads; /* num_key_value_heads */
    int head_dim;
    int attn_output_gate; /* must be 1 for Qwen3.5 */
    double rope_theta;
    float partial_rotary; /* partial_rotary_factor */
    int rotary_dim;       /* head_dim * partial_rotary_factor, even */
    /* M-RoPE (rope_parameters.mrope_section / mrope_interleaved): frequency slots
     * driven by the h and w position components (program.h, FP4RT_OP_ROPE).
     * Absent: transformers' Qwen3.5 default [11, 11, 10], interleaved (the only
     * layout Qwen3.5 / 3.6 use; an explicit false with a section that moves a slot
     * is UNSUPPORTED). Each entry >= 0, sum <= rotary_dim / 2. */
    int mrope_section[3];
    int mrope_interleaved;

    /* Gated DeltaNet */
    int lin_k_heads; /* linear_num_key_heads */
    int lin_v_heads; /* linear_num_value_heads, a multiple of lin_k_heads */
    int lin_k_dim;   /* linear_key_head_dim */
    int lin_v_dim;   /* linear_value_head_dim */
    int conv_kernel; /* linear_conv_kernel_dim */

    int mtp_layers; /* mtp_num_hidden_layers (recognized, not run) */

    int n_eos;
    int eos[FP4RT_MAX_EOS]; /* eos_token_id (int or list) */

    fp4rt_layer_kind layer_kind[FP4RT_MAX_LAYERS];
} fp4rt_config;

/* Derived sizes. */
static inline int fp4rt_cfg_key_dim(const fp4rt_config *c) { return c->lin_k_heads * c->lin_k_dim; }
static inline int fp4rt_cfg_value_dim(const fp4rt_config *c) { return c->lin_v_heads * c->lin_v_dim; }
static inline int fp4rt_cfg_conv_dim(const fp4rt_config *c) {
    return 2 * fp4rt_cfg_key_dim(c) + fp4rt_cfg_value_dim(c);
}
int fp4rt_cfg_n_attention_layers(const fp4rt_config *c);

/* Parses config.json text. `where` names the file in messages. */
fp4rt_status fp4rt_config_parse(const char *json, size_t len, const char *where, fp4rt_config *out);
/* Reads DIR/config.json. */
fp4rt_status fp4rt_config_load(const char *dir, fp4rt_config *out);

#endif
