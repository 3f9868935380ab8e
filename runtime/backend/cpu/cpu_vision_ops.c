/* CPU kernels of the vision encoder's ops (issue 18): LayerNorm with bias, bias
 * add, GELU (erf and tanh forms) and bidirectional attention over the step's
 * rows. Each output element is computed by one thread in the numerics
 * contract's order (docs/NUMERICS.md), which the Vulkan shaders repeat. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"

#include <math.h>
#include <string.h>

typedef struct vis_job {
    const cpu_step *s;
    const fp4rt_op *op;
} vis_job;

/* Per group: mean = sum(x) / n and var = sum((x - mean)^2) / n, both sums in the
 * contract's order (fp4rt_csum, fp4rt_cdevsq); r = 1 / sqrt(var + eps);
 * y = ((x - mean) * r) * w + b. */
static void layernorm_rows(void *arg, long t0, long t1, int thread) {
    (void)thread;
    const vis_job *j = arg;
    const fp4rt_op *op = j->op;
    int n = op->group_dim;
    for (long t = t0; t < t1; t++) {
        const float *x = cpu_row(j->s, op->x, (int)t);
        float *y = cpu_row(j->s, op->y, (int)t);
        for (int g = 0; g < op->n_groups; g++) {
            const float *xg = x + (size_t)g * op->group_stride;
            float *yg = y + (size_t)g * op->group_stride;
            float mean = fp4rt_csum(xg, n) / (float)n;
            float var = fp4rt_cdevsq(xg, n, mean) / (float)n;
            float r = 1.0f / sqrtf(var + op->eps);
            for (int i = 0; i < n; i++) {
                float d = xg[i] - mean;
                d = d * r;
                d = d * op->w[i];
                yg[i] = d + op->b[i];
            }
        }
    }
}

fp4rt_status fp4rt_cpu_layernorm(const cpu_step *s, const fp4rt_op *op) {
    if (!op->w || !op->b || op->group_dim < 1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "LAYERNORM layer %d: no weight, bias or group", op->layer);
    vis_job j = {s, op};
    fp4rt_pool_for(s->ctx->pool, s->step->n_tokens, 8, layernorm_rows, &j);
    return FP4RT_OK;
}

static void bias_rows(void *arg, long t0, long t1, int thread) {
    (void)thread;
    const vis_job *j = arg;
    const fp4rt_op *op = j->op;
    for (long t = t0; t < t1; t++) {
        const float *x = cpu_row(j->s, op->x, (int)t);
        float *y = cpu_row(j->s, op->y, (int)t);
        for (int i = 0; i < op->x.cols; i++) y[i] = x[i] + op->b[i];
    }
}

fp4rt_status fp4rt_cpu_bias(const cpu_step *s, const fp4rt_op *op) {
    if (!op->b) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "BIAS layer %d: no bias", op->layer);
    vis_job j = {s, op};
    fp4rt_pool_for(s->ctx->pool, s->step->n_tokens, 8, bias_rows, &j);
    return FP4RT_OK;
}

static void gelu_rows(void *arg, long t0, long t1, int thread) {
    (void)thread;
    const vis_job *j = arg;
    const fp4rt_op *op = j->op;
    for (long t = t0; t < t1; t++) {
        const float *x = cpu_row(j->s, op->x, (int)t);
        float *y = cpu_row(j->s, op->y, (int)t);
        if (op->gelu_tanh)
            for (int i = 0; i < op->x.cols; i++) y[i] = fp4rt_cgelu_tanh(x[i]);
        else
            for (int i = 0; i < op->x.cols; i++) y[i] = fp4rt_cgelu_erf(x[i]);
    }
}

fp4rt_status fp4rt_cpu_gelu(const cpu_step *s, const fp4rt_op *op) {
    vis_job j = {s, op};
    fp4rt_pool_for(s->ctx->pool, s->step->n_tokens, 4, gelu_rows, &j);
    return FP4RT_OK;
}

/* Whether views a and b share a column of the same buffer. */
static int views_overlap(fp4rt_view a, fp4rt_view b) {
    return a.buf == b.buf && a.col < b.col + b.cols && b.col < a.col + a.cols;
}

/* One (row t, head h) per index: the online softmax of the contract over
 * positions p = 0 .. T - 1 in order, as the causal attention's one-head
 * sequence (cpu_attention.c attn_span): d = sum_i q_i k_i (in i order),
 * s = d * scale; when s > m: corr = e^(m - s), l *= corr, acc *= corr, m = s;
 * w = e^(s - m), l += w, acc += w v; then y = acc / l. Head h is at columns
 * h * group_dim of x (q), z (k), a (v) and y. */
static void attn_full_range(void *arg, long i0, long i1, int thread) {
    const vis_job *j = arg;
    const cpu_step *s = j->s;
    const fp4rt_op *op = j->op;
    int nh = op->n_groups, hd = op->group_dim, T = s->step->n_tokens;
    float *acc = s->ctx->thread_ws[thread];
    for (long i = i0; i < i1; i++) {
        int t = (int)(i / nh), h = (int)(i % nh);
        size_t ho = (size_t)h * hd;
        const float *q = cpu_row(s, op->x, t) + ho;
        float m = -INFINITY, l = 0;
        memset(acc, 0, (size_t)hd * sizeof(float));
        for (int p = 0; p < T; p++) {
            const float *k = cpu_row(s, op->z, p) + ho, *v = cpu_row(s, op->a, p) + ho;
            float d = 0;
            for (int e = 0; e < hd; e++) d += q[e] * k[e];
            float sc = d * op->scale;
            if (sc > m) {
                float corr = fp4rt_cexp(m - sc);
                l = l * corr;
                for (int e = 0; e < hd; e++) acc[e] = acc[e] * corr;
                m = sc;
            }
            float w = fp4rt_cexp(sc - m);
            l = l + w;
            for (int e = 0; e < hd; e++) acc[e] = acc[e] + w * v[e];
        }
        float *o = cpu_row(s, op->y, t) + ho;
        for (int e = 0; e < hd; e++) o[e] = acc[e] / l;
    }
}

fp4rt_status fp4rt_cpu_attention_full(const cpu_step *s, const fp4rt_op *op) {
    int w = op->n_groups * op->group_dim;
    if (op->n_groups < 1 || op->group_dim < 1 || op->x.cols < w || op->z.cols < w || op->a.cols < w || op->y.cols < w)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: %d heads of %d over views of %d/%d/%d/%d columns",
                          op->layer, op->n_groups, op->group_dim, op->x.cols, op->z.cols, op->a.cols, op->y.cols);
    if (views_overlap(op->y, op->x) || views_overlap(op->y, op->z) || views_overlap(op->y, op->a))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: the output overlaps q, k or v", op->layer);
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, 0, (size_t)op->group_dim);
    if (st) return st;
    vis_job j = {s, op};
    fp4rt_pool_for(s->ctx->pool, (long)s->step->n_tokens * op->n_groups, 1, attn_full_range, &j);
    return FP4RT_OK;
}
