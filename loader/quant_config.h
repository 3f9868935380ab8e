/* Quantization config of a ModelOpt checkpoint and the format of each linear.
 *
 * Sources, in order: DIR/hf_quant_config.json ({"quantization": {...}}), else the
 * "quantization_config" object of config.json (quant_method "modelopt"), else
 * none (everything unquantized). Recognized quant_algo values: "NVFP4" (W4A4),
 * "W4A16_NVFP4", "FP8" (W8A8 static per-tensor), "MIXED_PRECISION" (with
 * "quantized_layers": {module: {"quant_algo": ...}}); anything else is an
 * UNSUPPORTED error naming the file, key and value. exclude_modules / ignore
 * entries are fnmatch-style patterns ("*" wildcards) matched against the full
 * module name; a pattern also matches every module below it ("model.visual"
 * covers "model.visual.blocks.0.attn.qkv"). group_size must be 16 for NVFP4. */
#ifndef FP4RT_QUANT_CONFIG_H
#define FP4RT_QUANT_CONFIG_H

#include "fp4rt.h"

#include <stddef.h>

typedef enum fp4rt_qalgo {
    FP4RT_Q_NONE = 0,    /* unquantized: BF16/F16/F32 as stored */
    FP4RT_Q_FP8,         /* FP8 E4M3 weight + F32 weight_scale, static F32 input_scale */
    FP4RT_Q_NVFP4_W4A16, /* NVFP4 weight, activations unquantized */
    FP4RT_Q_NVFP4_W4A4,  /* NVFP4 weight, activations NVFP4 per 16 with input_scale */
    FP4RT_Q_MIXED        /* only as the top-level algo */
} fp4rt_qalgo;

const char *fp4rt_qalgo_name(fp4rt_qalgo a); /* "none", "FP8", "W4A16_NVFP4", "NVFP4", "MIXED_PRECISION" */

typedef struct fp4rt_quant_layer {
    char *module;
    fp4rt_qalgo algo;
} fp4rt_quant_layer;

typedef struct fp4rt_quant_config {
    char source[512];       /* file the config came from ("" = none) */
    fp4rt_qalgo algo;       /* top-level quant_algo */
    int group_size;         /* 16 */
    int kv_cache_fp8;       /* kv_cache_quant_algo == "FP8" */
    size_t n_layers;
    fp4rt_quant_layer *layers; /* quantized_layers (MIXED_PRECISION) */
    size_t n_exclude;
    char **exclude;         /* exclude_modules / ignore patterns */
} fp4rt_quant_config;

/* Reads DIR/hf_quant_config.json, else DIR/config.json's quantization_config; with
 * neither, *out is algo NONE with source "" (config.json must still be readable). */
fp4rt_status fp4rt_quant_config_load(const char *dir, fp4rt_quant_config *out);
/* Parses JSON text that is any of: a whole hf_quant_config.json ({"quantization":
 * {...}}), a whole config.json (its "quantization_config"; quant_method must be
 * "modelopt"), a bare quantization_config object (has "quant_method"), or a bare
 * "quantization" object (has "quant_algo"). `where` names the file in messages and
 * is copied to out->source. On failure *out holds nothing to free. Free with
 * fp4rt_quant_config_free. */
fp4rt_status fp4rt_quant_config_parse(const char *json, size_t len, const char *where,
                                      fp4rt_quant_config *out);
void fp4rt_quant_config_free(fp4rt_quant_config *q);
/* The declared format of a module ("model.language_model.layers.3.mlp.up_proj"):
 * MIXED_PRECISION: the quantized_layers entry with exactly that name, else NONE
 * (exclude patterns are not consulted); a single algo: that algo unless an exclude
 * pattern covers the module. */
fp4rt_qalgo fp4rt_quant_algo_for(const fp4rt_quant_config *q, const char *module);

#endif
