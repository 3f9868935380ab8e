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

/* vision_config (Qwen3_5VisionConfig = Qwen3VLVisionConfig without DeepStack). */
typedef struct fp4rt_vision_config {
    int depth;          /* blocks; 0: no vision tower */
    int hidden;         /* hidden_size */
    int n_heads;        /* num_heads; head_dim = hidden / n_heads (even, a multiple of 4) */
    int intermediate;   /* intermediate_size */
    int in_channels;    /* 3 */
    int patch;          /* patch_size */
    int temporal_patch; /* temporal_patch_size */
    int merge;          /* spatial_merge_size */
    int n_pos;          /* num_position_embeddings, a perfect square */
    int out_hidden;     /* out_hidden_size: the text model's hidden_size */
    int gelu_tanh;      /* hidden_act gelu_pytorch_tanh (1) or gelu (0) */
    double rope_theta;  /* the 2-D rotary base: 10000 */
} fp4rt_vision_config;

/* Derived vision sizes. */
static inline int fp4rt_vcfg_head_dim(const fp4rt_vision_config *v) { return v->hidden / v->n_heads; }
static inline int fp4rt_vcfg_patch_dim(const fp4rt_vision_config *v) {
    return v->in_channels * v->temporal_patch * v->patch * v->patch;
}
static inline int fp4rt_vcfg_grid_side(const fp4rt_vision_config *v) { /* sqrt(n_pos) */
    int s = 0;
    while ((s + 1) * (s + 1) <= v->n_pos) s++;
    return s;
}

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

    /* The vision tower (issue 18; docs/MODEL.md "Vision encoder"): vision_config of a
     * Qwen3_5ForConditionalGeneration config. depth 0: none (a text-only model). */
    fp4rt_vision_config vision;
    /* image_token_id, video_token_id, vision_start_token_id, vision_end_token_id
     * (top level; -1 when absent). */
    int image_token_id, video_token_id, vision_start_token_id, vision_end_token_id;
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
/* The vision_config object of a nested config.json (root: the whole document) into
 * out->vision and the top-level token ids: absent vision_config leaves depth 0;
 * absent keys of a present one take Qwen3VLVisionConfig's defaults (as
 * transformers); a wrong type or an inconsistent size is FORMAT / UNSUPPORTED
 * naming the file and "vision_config.KEY"; deepstack_visual_indexes must be
 * empty. (out_hidden_size == hidden_size is checked where the tower loads.) */
struct cJSON;
fp4rt_status fp4rt_config_parse_vision(const struct cJSON *root, const char *where, fp4rt_config *out);
/* Reads DIR/config.json. */
fp4rt_status fp4rt_config_load(const char *dir, fp4rt_config *out);

#endif
