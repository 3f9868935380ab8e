/* What fp4rt bench asks of a loaded model (model.h): the device's bandwidth
 * and the bytes one decode step reads, so the CLI calls functions and never
 * reaches into the backend or the program. */
#include "runtime/engine/model.h"

#include "runtime/base/common.h"

fp4rt_status fp4rt_model_bandwidth(fp4rt_model *m, double *bytes_per_s) {
    *bytes_per_s = 0;
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_bandwidth: no model");
    if (!m->backend->measure_bandwidth) return FP4RT_OK; /* no probe: 0, not an error */
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_measure_bandwidth(m->backend, m->backend_ctx, bytes_per_s);
    pthread_mutex_unlock(&m->run_lock);
    if (st) *bytes_per_s = 0;
    return st;
}

fp4rt_status fp4rt_model_arith_peak(fp4rt_model *m, int fused, double *flops_per_s, char *what, size_t n) {
    *flops_per_s = 0;
    if (what && n) what[0] = 0;
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_arith_peak: no model");
    if (!m->backend->measure_arith_peak) return FP4RT_OK; /* no probe: 0, not an error */
    int mode = fused ? FP4RT_PEAK_FUSED : 0;
    if (fused) { /* BF16 linears carry most of the work: their kernels' peak */
        double bf16 = 0, all = 0;
        for (int i = 0; i < m->program->n_ops; i++) {
            const fp4rt_op *op = &m->program->ops[i];
            if (op->kind != FP4RT_OP_LINEAR) continue;
            double f = (double)op->lin->n_in * op->lin->n_out;
            all += f;
            if (op->lin->fmt == FP4RT_W_BF16) bf16 += f;
        }
        if (bf16 > 0.5 * all) mode |= FP4RT_PEAK_BF16;
    }
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_measure_arith_peak(m->backend, m->backend_ctx, mode, flops_per_s, what, n);
    pthread_mutex_unlock(&m->run_lock);
    if (st) *flops_per_s = 0;
    return st;
}

fp4rt_status fp4rt_model_profile_set(fp4rt_model *m, int on) {
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_profile_set: no model");
    if (!m->backend->profile_take) return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot report a profile",
                                                     m->backend->name);
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_set_profile(m->backend, m->backend_ctx, on);
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

fp4rt_status fp4rt_model_profile_take(fp4rt_model *m, double *seconds, long *calls) {
    if (!m) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_model_profile_take: no model");
    pthread_mutex_lock(&m->run_lock);
    fp4rt_status st = fp4rt_backend_profile_take(m->backend, m->backend_ctx, seconds, calls);
    pthread_mutex_unlock(&m->run_lock);
    return st;
}

double fp4rt_model_linear_flops(const fp4rt_model *m, int n_tokens) {
    double f = 0;
    for (int i = 0; m && i < m->program->n_ops; i++) {
        const fp4rt_op *op = &m->program->ops[i];
        if (op->kind != FP4RT_OP_LINEAR) continue;
        f += 2.0 * op->lin->n_in * op->lin->n_out * (op->is_logits ? 1 : n_tokens);
    }
    return f;
}

int fp4rt_model_on_cpu(const fp4rt_model *m) { return m && m->backend == &fp4rt_backend_cpu; }

int fp4rt_model_n_threads(const fp4rt_model *m) { return m ? m->n_threads : 0; }

const char *fp4rt_model_synthetic_recipe(const fp4rt_model *m) {
    return m && m->weights->synthetic ? m->weights->synth_recipe : NULL;
}

fp4rt_status fp4rt_session_decode_bytes(const fp4rt_session *s, double pos, double *bytes, uint64_t *weights) {
    *bytes = 0;
    *weights = 0;
    const fp4rt_model *m = s->model;
    fp4rt_memory_plan plan;
    fp4rt_format_totals tot;
    if (m->weights->synthetic) { /* no checkpoint: the planner's count for the preset and recipe */
        fp4rt_status st = fp4rt_plan_config(&m->weights->cfg, m->weights->synth_recipe, s->sb.n_ctx, s->sb.chunk,
                                            s->sb.kv_type, &plan, &tot);
        if (st) return st;
    } else {
        fp4rt_plan_checkpoint(m->weights, &plan, &tot);
    }
    const fp4rt_config *c = &m->weights->cfg;
    double kv_per_token =
        (double)m->program->n_attn_layers * 2 * c->n_kv_heads * c->head_dim * fp4rt_kv_elem_size(s->sb.kv_type);
    *weights = plan.weights_per_token;
    *bytes = (double)plan.weights_per_token + 2.0 * (s->allocated.ssm + s->allocated.conv) + pos * kv_per_token;
    return FP4RT_OK;
}
