/* BF16 / F16 / F32 checkpoint -> ModelOpt checkpoint (NVFP4, FP8 or mixed), as
 * `fp4rt quantize` does it.
 *
 * The input must be a complete Qwen3.5/3.6 text checkpoint: every tensor of the
 * schema (schema.h) present with the expected shape and a BF16/F16/F32 dtype,
 * nothing else except vision ("model.visual.*") and MTP ("mtp.*") tensors, which
 * are copied through unchanged. NaN or Inf in any schema tensor is refused
 * (FORMAT error naming the tensor and the element index).
 *
 * Output (written to a temporary directory, renamed into place when complete):
 * safetensors with, per quantized linear module M,
 *   NVFP4: M.weight U8 [N, K/2], M.weight_scale F8_E4M3 [N, K/16],
 *          M.weight_scale_2 F32 [], M.input_scale F32 [];
 *   FP8:   M.weight F8_E4M3 [N, K], M.weight_scale F32 [], M.input_scale F32 [];
 * every other tensor as it was; hf_quant_config.json; config.json with a
 * "quantization_config"; tokenizer*.json, generation_config.json and the chat
 * template copied when present.
 *
 * Modules that a serving engine fuses because they read the same input (q/k/v;
 * gate/up; the GDN input projections) share one tensor amax, as ModelOpt's
 * exporter arranges before export (preprocess_linear_fusion): vLLM keeps a single
 * weight_scale_2 for a fused NVFP4 layer. */
#ifndef FP4RT_QUANTIZE_H
#define FP4RT_QUANTIZE_H

#include "fp4rt.h"

#include <stddef.h>
#include <stdint.h>

/* Options; the zero value is the default. Fields are only ever appended. */
typedef struct fp4rt_quantize_opts {
    uint64_t shard_bytes; /* payload bytes per output shard; 0 = 4 GiB */
} fp4rt_quantize_opts;

typedef struct fp4rt_quantize_summary {
    size_t n_tensors;        /* tensors written */
    uint64_t bytes;          /* tensor payload bytes written */
    size_t n_nvfp4;          /* modules quantized to NVFP4 */
    size_t n_fp8;            /* modules quantized to FP8 */
    size_t n_kept;           /* schema tensors written as they were */
    size_t n_copied;         /* vision / MTP tensors copied through */
    int default_input_scale; /* 1: input_scale came from the uncalibrated default */
    float assumed_act_amax;  /* the activation amax that default assumes */
} fp4rt_quantize_summary;

/* recipe: "nvidia-mixed", "nvfp4-all" or "nvfp4-w4a4" (schema.h). out_dir must not
 * exist unless force. opts may be NULL (defaults); summary may be NULL. */
fp4rt_status fp4rt_quantize(const char *in_dir, const char *out_dir, const char *recipe, int force,
                            const fp4rt_quantize_opts *opts, fp4rt_quantize_summary *summary);

#endif
