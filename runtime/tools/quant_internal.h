/* Shared state of the checkpoint quantizer (quantize.c: driver and weights;
 * quant_output.c: config files; quant_calib.c: calibration and evaluation;
 * quant_report.c: report and summary). Internal to those files. */
#ifndef FP4RT_QUANT_INTERNAL_H
#define FP4RT_QUANT_INTERNAL_H

#include "loader/config.h"
#include "loader/quant_config.h"
#include "loader/safetensors.h"
#include "runtime/tools/quantize.h"
#include "runtime/model/schema.h"

/* One output item: a schema tensor (spec != NULL) or a copied-through tensor. */
typedef struct qjob {
    const fp4rt_st_tensor *src;
    const fp4rt_tensor_spec *spec;
    fp4rt_qalgo algo;
    float amax;        /* largest |W| of the tensor, then of its fused group (quantized only) */
    /* calibration (quantized linears only) */
    float act_amax;    /* largest |x| seen at the input, then max over the fused group */
    double *sumsq;     /* [K] sum of x^2 per input channel (NULL until seen) */
    long rows_seen;    /* input rows observed */
    float *importance; /* [K] mean x^2 per channel, floored (NULL: unweighted) */
    float input_scale; /* written value */
    /* statistics (quantized only): sums over the tensor */
    double err, err_absmax, energy; /* squared error (chosen, absmax) and sum of W^2 */
} qjob;

typedef struct qctx {
    const char *in_dir;
    const char *recipe;
    fp4rt_quantize_opts o;
    fp4rt_config cfg;
    fp4rt_checkpoint *ck;
    fp4rt_tensor_spec *specs;
    size_t n_specs;
    qjob *jobs;
    size_t n_jobs;
    int has_visual, has_mtp;
    int calib_tokens;      /* tokens run through the calibration (0: none) */
} qctx;

static inline int fp4rt_q_is_nvfp4(fp4rt_qalgo a) {
    return a == FP4RT_Q_NVFP4_W4A16 || a == FP4RT_Q_NVFP4_W4A4;
}

/* vals[i] := max of vals over job i's fused group (same layer, same algo). */
void fp4rt_quant_group_max(const qctx *q, float *vals);

/* quant_output.c: hf_quant_config.json, config.json, tokenizer and other files. */
fp4rt_status fp4rt_quant_write_configs(const qctx *q, const char *tmp);
fp4rt_status fp4rt_quant_copy_aux_files(const char *in_dir, const char *tmp);

/* quant_calib.c: runs q->o.calib_path through the source model; fills act_amax
 * (group max), importance and input_scale of every quantized job it reaches. */
fp4rt_status fp4rt_quant_calibrate(qctx *q);

/* quant_report.c: the one-screen summary (malloc'ed) and the JSON report. */
char *fp4rt_quant_summary_text(const qctx *q, const fp4rt_quantize_summary *s);
fp4rt_status fp4rt_quant_write_report(const qctx *q, const fp4rt_quantize_summary *s,
                                      const char *path);

#endif
