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
 * weight_scale_2 for a fused NVFP4 layer; the input_scale of a group is
 * shared the same way (max over the group).
 *
 * NVFP4 block scales follow opts->scale (nvfp4.h: absmax, 4over6, mse). With
 * opts->calib_path the BF16 model runs on the CPU backend over that text and
 * every linear's input rows give its input_scale (amax / 448 for FP8 W8A8,
 * amax / (6 * 448) for NVFP4) and per-input-channel importance mean(x^2), which
 * weights the mse search. Without it, input scales are a documented default
 * (DEFAULT_ACT_AMAX in quantize.c) and the summary says so.
 *
 * Work is one tensor at a time, rows in parallel on opts->n_threads threads:
 * peak memory is about the quantized tensor plus per-row statistics, besides
 * the mmapped (and released) source. */
#ifndef FP4RT_QUANTIZE_H
#define FP4RT_QUANTIZE_H

#include "fp4rt.h"
#include "runtime/tools/nvfp4.h"

#include <stddef.h>
#include <stdint.h>

/* Options; the zero value is the default. Fields are only ever appended. */
typedef struct fp4rt_quantize_opts {
    uint64_t shard_bytes;         /* payload bytes per output shard; 0 = 4 GiB */
    fp4rt_scale_strategy scale;   /* NVFP4 block scales; 0 = absmax (ModelOpt, byte-exact);
                                     the fp4rt command defaults to mse */
    fp4rt_err_metric err;         /* 4over6 decision metric; 0 = MSE */
    const char *calib_path;       /* calibration text; NULL = default input scales */
    int calib_tokens;             /* tokens of it used at most; 0 = 4096 */
    int no_importance;            /* 1: calibrate input scales only, unweighted mse */
    const char *eval_path;        /* text for the KL / perplexity evaluation; NULL = none */
    int eval_tokens;              /* tokens of it used at most; 0 = 1024 */
    const char *report_path;      /* JSON report; NULL = none */
    int n_threads;                /* 0 = online cores */
    fp4rt_progress_fn progress;   /* NULL = none; fraction of the quantization done and
                                     the tensor at hand; called on the calling thread */
    void *progress_user;
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
    /* appended with the strategies, calibration and report */
    fp4rt_scale_strategy scale;
    uint64_t n_weights;      /* weights quantized (NVFP4 + FP8) */
    double quant_seconds;    /* wall time of reading + quantizing + writing the weights */
    double nvfp4_err, nvfp4_err_absmax, nvfp4_energy; /* over all NVFP4 weights: sum of
                                squared errors (chosen strategy, absmax) and sum of w^2 */
    int calib_tokens;        /* calibration tokens run (0: not calibrated) */
    size_t n_uncalibrated;   /* quantized modules the calibration never reached
                                (they keep the default input_scale) */
    int eval_tokens;         /* predictions evaluated (0: no --eval) */
    double kl;               /* mean KL(p_source || p_quantized) per token, nats */
    double ppl_source, ppl_quant;
    char *text;              /* one-screen summary (malloc'ed; free() it); NULL on failure */
} fp4rt_quantize_summary;

/* recipe: "nvidia-mixed", "nvfp4-all" or "nvfp4-w4a4" (schema.h). out_dir must not
 * exist unless force (loader/outdir.h: what force may replace). opts may be NULL (defaults); summary may be NULL. */
fp4rt_status fp4rt_quantize(const char *in_dir, const char *out_dir, const char *recipe, int force,
                            const fp4rt_quantize_opts *opts, fp4rt_quantize_summary *summary);

/* Teacher-forced comparison of two checkpoints of one model on a text (both on
 * the CPU backend, tokenized with ref_dir's tokenizer, windows of at most 512
 * tokens, at most max_tokens tokens (0 = 1024)): mean over predicted positions
 * of KL(p_ref || p_q) in nats, and both perplexities of the next token. */
fp4rt_status fp4rt_quant_eval(const char *ref_dir, const char *q_dir, const char *text_path,
                              int max_tokens, int n_threads, double *kl, double *ppl_ref,
                              double *ppl_q, int *n_predicted);

#endif
