/* What tensors a Qwen3.5/3.6 text model has, by name and shape, derived from its
 * config alone; the named preset configs; and the quantization recipes. Used by
 * the synthesizer (to write), the quantizer (to decide), the planner (to count
 * without files) and the loader (to check). */
#ifndef FP4RT_SCHEMA_H
#define FP4RT_SCHEMA_H

#include "loader/config.h"
#include "loader/quant_config.h"

#include <stdint.h>

typedef enum fp4rt_tensor_role {
    FP4RT_ROLE_LINEAR,     /* a quantizable [N, K] matrix (".weight" of a linear module) */
    FP4RT_ROLE_EMBED,      /* embed_tokens [vocab, hidden] */
    FP4RT_ROLE_NORM,       /* zero-centred RMSNorm weight (stored w, used as 1 + w) */
    FP4RT_ROLE_NORM_PLAIN, /* gated RMSNorm weight (used as w) */
    FP4RT_ROLE_CONV,       /* conv1d.weight [conv_dim, 1, kernel] */
    FP4RT_ROLE_VECTOR,     /* A_log, dt_bias [lin_v_heads] */
    /* the vision tower (model.visual.*; docs/MODEL.md "Vision encoder"): */
    FP4RT_ROLE_VLINEAR,    /* a vision linear's weight [N, K]; the patch embedding [H, C, T, P, P] */
    FP4RT_ROLE_VBIAS,      /* a vision linear's bias [N] */
    FP4RT_ROLE_VNORM_W,    /* a LayerNorm weight [H] (used as w) */
    FP4RT_ROLE_VNORM_B,    /* a LayerNorm bias [H] */
    FP4RT_ROLE_VPOS        /* pos_embed [num_position_embeddings, H] */
} fp4rt_tensor_role;

typedef struct fp4rt_tensor_spec {
    char name[128];   /* full tensor name */
    char module[128]; /* module name (name without ".weight"), for linears */
    fp4rt_tensor_role role;
    int layer;        /* -1 for embed / final norm / lm_head; vision: the block, -1 outside blocks */
    int ndim;
    int64_t shape[5];
} fp4rt_tensor_spec;

/* All text-model tensors of cfg in checkpoint order (embed, layers, norm, lm_head
 * unless tied). Returns the count; *out is malloc'ed (NULL + 0 on OOM). */
size_t fp4rt_schema_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out);

/* The MTP head's tensors (mtp.pre_fc_norm_embedding / _hidden, mtp.fc [H, 2H],
 * mtp.layers.J.* full-attention decoder layers with layer = n_layers + J,
 * mtp.norm); 0 and *out NULL when cfg->mtp_layers is 0 (or on OOM, with the
 * error set). */
size_t fp4rt_schema_mtp_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out);

/* The vision tower's tensors (model.visual.*, transformers' Qwen3_5VisionModel
 * state_dict names): patch_embed.proj.weight [H, 3, T, P, P] and .bias, pos_embed.weight,
 * blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.linear_fc1, mlp.linear_fc2}.{weight, bias},
 * merger.{norm, linear_fc1, linear_fc2}.{weight, bias}. 0 and *out NULL when
 * cfg->vision.depth is 0 (or on OOM, with the error set). */
size_t fp4rt_schema_vision_tensors(const fp4rt_config *cfg, fp4rt_tensor_spec **out);
/* preprocessor_config.json text for cfg's vision tower (Qwen3.5's processor values with
 * the config's patch / temporal patch / merge sizes); malloc'ed, NULL without a tower. */
char *fp4rt_preprocessor_config_json(const fp4rt_config *cfg);

/* Named configs: "tiny", "small", "qwen3.5-0.8b", "qwen3.6-27b". n_layers > 0 shortens
 * (keeping the 3 GDN : 1 attention pattern). Returns INVALID_ARGUMENT for an
 * unknown name (the message lists the known ones). */
fp4rt_status fp4rt_config_preset(const char *name, int n_layers, fp4rt_config *out);
/* config.json text for cfg (Qwen3_5ForConditionalGeneration when cfg->nested, else
 * Qwen3_5ForCausalLM); malloc'ed. */
char *fp4rt_config_to_json(const fp4rt_config *cfg);

/* Quantization recipes: "nvidia-mixed" (MLP and lm_head W4A16_NVFP4; attention and
 * in_proj_qkv / in_proj_z / out_proj FP8; the rest unquantized), "nvfp4-all"
 * (every linear W4A16_NVFP4 except in_proj_a/b; the vision tower stays BF16 in every recipe), "nvfp4-w4a4" (the same with NVFP4
 * activations), "fp8" (FP8 W8A8 on every linear nvidia-mixed quantizes except
 * lm_head, which ModelOpt's FP8 configs leave unquantized: MLP, attention and
 * in_proj_qkv / in_proj_z / out_proj). Returns the index in that order (0..3), -1
 * for an unknown recipe name. */
int fp4rt_recipe_known(const char *recipe);
/* The algorithm a recipe gives a tensor (NONE for non-linears and excluded ones). */
fp4rt_qalgo fp4rt_recipe_algo(const char *recipe, const fp4rt_tensor_spec *t);

#endif
