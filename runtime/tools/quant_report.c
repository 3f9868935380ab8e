/* Quality report of a quantization: the one-screen summary and the JSON file
 * (quant_internal.h). Relative MSE = sum (W_hat - W)^2 / sum W^2 over the
 * dequantized weights (tensor scale included); SQNR = -10 log10(relative MSE)
 * in dB. "absmax" columns quantize the same tensor with ModelOpt's absmax
 * scales for comparison. */
#include "runtime/tools/quant_internal.h"

#include "runtime/base/common.h"
#include "loader/st_writer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double rel(double err, double energy) { return energy > 0 ? err / energy : 0; }

/* SQNR in dB; NAN when undefined (no error or no signal). */
static double sqnr(double err, double energy) {
    return err > 0 && energy > 0 ? 10.0 * log10(energy / err) : NAN;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static const char *algo_label(fp4rt_qalgo a) { return fp4rt_qalgo_name(a); }

/* ---- summary text ---------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) FP4RT_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
}

static int cmp_worst(const void *a, const void *b) {
    const qjob *x = *(const qjob *const *)a, *y = *(const qjob *const *)b;
    double rx = rel(x->err, x->energy), ry = rel(y->err, y->energy);
    return rx < ry ? 1 : rx > ry ? -1 : strcmp(x->spec->module, y->spec->module);
}

char *fp4rt_quant_summary_text(const qctx *q, const fp4rt_quantize_summary *s) {
    sbuf b = {.p = malloc(1024), .cap = 1024};
    if (!b.p) return NULL;
    b.p[0] = 0;
    const char *strat = fp4rt_scale_strategy_name(s->scale);
    if (s->n_nvfp4)
        sb_printf(&b, "scale %s%s (NVFP4 tensor scale amax/%d); ", strat,
                  s->scale == FP4RT_SCALE_4OVER6 && q->o.err == FP4RT_ERR_MAE ? " (MAE)" : "",
                  s->scale == FP4RT_SCALE_ABSMAX ? 2688 : 1536);
    else
        sb_printf(&b, "no NVFP4 weights (the scale strategy does not apply); ");
    sb_printf(&b, "%.1f M weights quantized in %.2f s (%.1f M/s, %d threads)\n", s->n_weights / 1e6,
              s->quant_seconds, s->quant_seconds > 0 ? s->n_weights / 1e6 / s->quant_seconds : 0.0,
              q->o.n_threads);
    if (s->nvfp4_energy > 0) {
        double r = rel(s->nvfp4_err, s->nvfp4_energy), ra = rel(s->nvfp4_err_absmax, s->nvfp4_energy);
        sb_printf(&b, "NVFP4 weights: relative MSE %.4g (SQNR %.2f dB); absmax %.4g (%.2f dB); "
                      "ratio %.4f\n",
                  r, sqnr(s->nvfp4_err, s->nvfp4_energy), ra,
                  sqnr(s->nvfp4_err_absmax, s->nvfp4_energy), ra > 0 ? r / ra : 0.0);
    }
    if (s->calib_tokens)
        sb_printf(&b, "calibration: %d tokens of %s; input_scale = amax/448 (FP8), amax/2688 "
                      "(NVFP4), shared over fused groups; %zu modules not reached keep the default\n",
                  s->calib_tokens, q->o.calib_path, s->n_uncalibrated);
    else if (s->default_input_scale)
        sb_printf(&b, "no calibration: input_scale is the default for activation amax %g "
                      "(FP8 %g, NVFP4 %g)\n",
                  (double)s->assumed_act_amax, (double)s->assumed_act_amax / 448.0,
                  (double)s->assumed_act_amax / 2688.0);
    if (s->eval_tokens)
        sb_printf(&b, "eval: %d predictions: KL(source || quantized) %.5g nats/token; perplexity "
                      "source %.4f, quantized %.4f\n",
                  s->eval_tokens, s->kl, s->ppl_source, s->ppl_quant);
    /* the five tensors with the largest relative error */
    const qjob **worst = malloc(q->n_jobs * sizeof *worst);
    size_t nw = 0;
    for (size_t i = 0; worst && i < q->n_jobs; i++)
        if (q->jobs[i].algo != FP4RT_Q_NONE) worst[nw++] = &q->jobs[i];
    if (worst && nw) {
        qsort(worst, nw, sizeof *worst, cmp_worst);
        sb_printf(&b, "largest relative MSE (%s / absmax):\n", strat);
        for (size_t i = 0; i < nw && i < 5; i++)
            sb_printf(&b, "  %-58s %-11s %.4g / %.4g\n", worst[i]->spec->module,
                      algo_label(worst[i]->algo), rel(worst[i]->err, worst[i]->energy),
                      rel(worst[i]->err_absmax, worst[i]->energy));
    }
    free(worst);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- JSON report ----------------------------------------------------------- */

static void add_errors(cJSON *o, double err, double err_abs, double energy) {
    add_num(o, "rel_mse", rel(err, energy));
    add_num(o, "sqnr_db", sqnr(err, energy));
    add_num(o, "absmax_rel_mse", rel(err_abs, energy));
    add_num(o, "absmax_sqnr_db", sqnr(err_abs, energy));
    add_num(o, "ratio_vs_absmax", err_abs > 0 ? err / err_abs : NAN);
}

fp4rt_status fp4rt_quant_write_report(const qctx *q, const fp4rt_quantize_summary *s,
                                      const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "quantize report");
    cJSON_AddStringToObject(root, "source", q->in_dir);
    cJSON_AddStringToObject(root, "recipe", q->recipe);
    cJSON_AddStringToObject(root, "strategy", fp4rt_scale_strategy_name(s->scale));
    cJSON_AddStringToObject(root, "error_metric", q->o.err == FP4RT_ERR_MAE ? "mae" : "mse");
    cJSON_AddNumberToObject(root, "nvfp4_tensor_scale_divisor",
                            s->scale == FP4RT_SCALE_ABSMAX ? 2688 : 1536);
    cJSON_AddNumberToObject(root, "threads", q->o.n_threads);
    cJSON_AddNumberToObject(root, "weights", (double)s->n_weights);
    cJSON_AddNumberToObject(root, "seconds", s->quant_seconds);
    add_num(root, "weights_per_second", s->quant_seconds > 0 ? s->n_weights / s->quant_seconds : NAN);

    cJSON *cal = cJSON_AddObjectToObject(root, "calibration");
    if (s->calib_tokens) {
        cJSON_AddStringToObject(cal, "file", q->o.calib_path);
        cJSON_AddNumberToObject(cal, "tokens", s->calib_tokens);
        cJSON_AddBoolToObject(cal, "importance", !q->o.no_importance);
        cJSON_AddNumberToObject(cal, "uncalibrated_modules", (double)s->n_uncalibrated);
    } else {
        cJSON_AddNullToObject(cal, "file");
        cJSON_AddNumberToObject(cal, "default_activation_amax", s->assumed_act_amax);
    }

    double err = 0, err_abs = 0, energy = 0;
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; i < q->n_jobs; i++) {
        const qjob *j = &q->jobs[i];
        if (j->algo == FP4RT_Q_NONE) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(tensors, t);
        cJSON_AddStringToObject(t, "module", j->spec->module);
        cJSON_AddStringToObject(t, "format", algo_label(j->algo));
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)j->spec->shape[0]));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)j->spec->shape[1]));
        cJSON_AddNumberToObject(t, "weight_amax", j->amax);
        cJSON_AddNumberToObject(t, "input_scale", j->input_scale);
        cJSON_AddBoolToObject(t, "calibrated", j->rows_seen > 0);
        add_errors(t, j->err, j->err_absmax, j->energy);
        err += j->err, err_abs += j->err_absmax, energy += j->energy;
    }
    cJSON *overall = cJSON_AddObjectToObject(root, "overall");
    cJSON *nv = cJSON_AddObjectToObject(overall, "nvfp4");
    add_errors(nv, s->nvfp4_err, s->nvfp4_err_absmax, s->nvfp4_energy);
    cJSON *all = cJSON_AddObjectToObject(overall, "all_quantized");
    add_errors(all, err, err_abs, energy);

    if (s->eval_tokens) {
        cJSON *ev = cJSON_AddObjectToObject(root, "eval");
        cJSON_AddStringToObject(ev, "file", q->o.eval_path);
        cJSON_AddNumberToObject(ev, "predictions", s->eval_tokens);
        add_num(ev, "kl_mean", s->kl);
        add_num(ev, "ppl_source", s->ppl_source);
        add_num(ev, "ppl_quantized", s->ppl_quant);
    } else {
        cJSON_AddNullToObject(root, "eval");
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "quantize report");
    fp4rt_status st = fp4rt_write_text_file(path, text);
    free(text);
    return st;
}
