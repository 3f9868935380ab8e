/* CPU kernels for the cheap per-row ops: embedding (with the step's overrides), the three norms, SwiGLU,
 * residual add. They run on the calling thread (they are a small fraction of a
 * step); each loops over the step's rows. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/numfmt.h"

#include <math.h>
#include <string.h>

fp4rt_status fp4rt_cpu_embed(const cpu_step *s, const fp4rt_op *op) {
    const fp4rt_weights *w = s->p->weights;
    int h = w->cfg.hidden;
    size_t es = fp4rt_dtype_size(w->embed_dtype);
    for (int t = 0; t < s->step->n_tokens; t++) {
        float *y = cpu_row(s, op->y, t);
        if (s->step->embed_rows && s->step->embed_rows[t]) { /* an override row (image token) */
            memcpy(y, s->step->input_embeds + (size_t)t * h, (size_t)h * sizeof(float));
            continue;
        }
        const unsigned char *row = (const unsigned char *)w->embed + (size_t)s->step->tokens[t] * h * es;
        for (int i = 0; i < h; i++) {
            if (w->embed_dtype == FP4RT_DT_F32) {
                memcpy(&y[i], row + 4 * (size_t)i, 4);
            } else {
                uint16_t v;
                memcpy(&v, row + 2 * (size_t)i, 2);
                y[i] = w->embed_dtype == FP4RT_DT_BF16 ? fp4rt_bf16_to_f32(v) : fp4rt_f16_to_f32(v);
            }
        }
    }
    return FP4RT_OK;
}

/* y = x * rsqrt(mean(x^2) + eps) over one group (the sum in the numerics
 * contract's order: fp4rt_csumsq, as shaders/norm.comp). */
static float inv_rms(const float *x, int n, float eps) {
    return 1.0f / sqrtf(fp4rt_csumsq(x, n) / (float)n + eps);
}

fp4rt_status fp4rt_cpu_rmsnorm(const cpu_step *s, const fp4rt_op *op) {
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t);
        float *y = cpu_row(s, op->y, t);
        for (int g = 0; g < op->n_groups; g++) {
            const float *xg = x + (size_t)g * op->group_stride;
            float *yg = y + (size_t)g * op->group_stride;
            float r = inv_rms(xg, op->group_dim, op->eps);
            for (int i = 0; i < op->group_dim; i++) yg[i] = xg[i] * r * op->w[i];
        }
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_gated_rmsnorm(const cpu_step *s, const fp4rt_op *op) {
    float sz[FP4RT_CPU_GATE_ROW_MAX]; /* silu(z) of one group: the scalar's bits */
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t), *z = cpu_row(s, op->z, t);
        float *y = cpu_row(s, op->y, t);
        for (int g = 0; g < op->n_groups; g++) {
            size_t o = (size_t)g * op->group_stride;
            float r = inv_rms(x + o, op->group_dim, op->eps);
            if (op->group_dim <= FP4RT_CPU_GATE_ROW_MAX && fp4rt_cpu_silu_row_simd(z + o, sz, op->group_dim)) {
                for (int i = 0; i < op->group_dim; i++) y[o + i] = x[o + i] * r * op->w[i] * sz[i];
                continue;
            }
            for (int i = 0; i < op->group_dim; i++)
                y[o + i] = x[o + i] * r * op->w[i] * fp4rt_silu(z[o + i]);
        }
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_l2norm(const cpu_step *s, const fp4rt_op *op) {
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t);
        float *y = cpu_row(s, op->y, t);
        for (int g = 0; g < op->n_groups; g++) {
            size_t o = (size_t)g * op->group_stride;
            float r = 1.0f / sqrtf(fp4rt_csumsq(x + o, op->group_dim) + op->eps);
            for (int i = 0; i < op->group_dim; i++) y[o + i] = x[o + i] * r * op->scale;
        }
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_swiglu(const cpu_step *s, const fp4rt_op *op) {
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t), *z = cpu_row(s, op->z, t);
        float *y = cpu_row(s, op->y, t);
        if (!fp4rt_cpu_swiglu_row_simd(x, z, y, op->x.cols))
            for (int i = 0; i < op->x.cols; i++) y[i] = fp4rt_silu(x[i]) * z[i];
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_add(const cpu_step *s, const fp4rt_op *op) {
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t), *z = cpu_row(s, op->z, t);
        float *y = cpu_row(s, op->y, t);
        for (int i = 0; i < op->x.cols; i++) y[i] = x[i] + z[i];
    }
    return FP4RT_OK;
}
