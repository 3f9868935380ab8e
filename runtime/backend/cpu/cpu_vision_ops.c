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

/* Rows per work item of ATTENTION_FULL: a thread transposes one head's keys once
 * per item, so this many rows share that cost (1 / (2 * ATTN_ROWS) of the work). */
#define ATTN_ROWS 32
#define ATTN_LANES 16

/* Floats of one thread's ATTENTION_FULL workspace: the head's keys transposed
 * ([hd][T16], T16 = T rounded up to ATTN_LANES, zero-padded), one row's scores,
 * weights and corrections [3][T16] and its accumulator [hd]. */
static size_t attn_full_ws(int T, int hd) {
    size_t t16 = ((size_t)T + ATTN_LANES - 1) / ATTN_LANES * ATTN_LANES;
    return (size_t)hd * t16 + 3 * t16 + (size_t)hd;
}

/* y[p] = fp4rt_cexp(x[p]) for p < n, vectorized where the CPU can (same bits). */
static void cexp_row(float *x, float *y, int n) {
    if (fp4rt_cpu_cexp_row_simd(x, y, n)) return;
    for (int p = 0; p < n; p++) y[p] = fp4rt_cexp(x[p]);
}

/* One (head h, block of ATTN_ROWS rows) per index. Each row runs the online
 * softmax of the contract over positions p = 0 .. T - 1 in order, as the causal
 * attention's one-head sequence (cpu_attention.c attn_span): d = sum_i q_i k_i
 * (one chain, in i order), s = d * scale; when s > m: corr = e^(m - s),
 * l *= corr, acc *= corr, m = s; w = e^(s - m), l += w, acc += w v; then
 * y = acc / l. Head h is at columns h * group_dim of x (q), z (k), a (v) and y.
 * The scores of ATTN_LANES positions are computed side by side from the
 * transposed keys (lane = position, each lane its own chain in i order); the
 * running maximum m is found first, position by position, so that every
 * exponential (w = e^(s - m) and, where m moves, corr) is known before the
 * sequential pass and runs vectorized; the accumulator update runs across the
 * head's dimensions. No element's sequence of operations changes. */
static void attn_full_range(void *arg, long i0, long i1, int thread) {
    const vis_job *j = arg;
    const cpu_step *s = j->s;
    const fp4rt_op *op = j->op;
    int hd = op->group_dim, T = s->step->n_tokens;
    int n_blocks = (T + ATTN_ROWS - 1) / ATTN_ROWS;
    size_t t16 = ((size_t)T + ATTN_LANES - 1) / ATTN_LANES * ATTN_LANES;
    float *kt = s->ctx->thread_ws[thread], *sc = kt + (size_t)hd * t16, *w = sc + t16, *corr = w + t16;
    float *acc = corr + t16;
    int have_h = -1;
    for (long i = i0; i < i1; i++) {
        int h = (int)(i / n_blocks), b = (int)(i % n_blocks);
        size_t ho = (size_t)h * hd;
        if (h != have_h) {
            for (int p = 0; p < (int)t16; p++) {
                const float *k = p < T ? cpu_row(s, op->z, p) + ho : NULL;
                for (int e = 0; e < hd; e++) kt[(size_t)e * t16 + p] = k ? k[e] : 0.0f;
            }
            have_h = h;
        }
        int t1 = FP4RT_MIN(T, (b + 1) * ATTN_ROWS);
        for (int t = b * ATTN_ROWS; t < t1; t++) {
            const float *q = cpu_row(s, op->x, t) + ho;
            for (size_t p0 = 0; p0 < t16; p0 += ATTN_LANES) {
                float d[ATTN_LANES] = {0};
                for (int e = 0; e < hd; e++) {
                    const float *ke = kt + (size_t)e * t16 + p0;
                    float qe = q[e];
                    for (int l = 0; l < ATTN_LANES; l++) d[l] = d[l] + qe * ke[l];
                }
                for (int l = 0; l < ATTN_LANES; l++) sc[p0 + l] = d[l] * op->scale;
            }
            /* First pass: w[p] = s_p - m_p and, where m moves at p, corr[p] =
             * m_{p-1} - s_p (elsewhere unused); then both exponentiated. The second
             * pass repeats the comparisons, so it moves m at the same positions. */
            float m = -INFINITY;
            for (int p = 0; p < T; p++) {
                float scp = sc[p];
                if (scp > m) {
                    corr[p] = m - scp;
                    m = scp;
                } else {
                    corr[p] = 0.0f; /* unused */
                }
                w[p] = scp - m;
            }
            cexp_row(w, w, T);
            cexp_row(corr, corr, T);
            float lsum = 0;
            m = -INFINITY;
            memset(acc, 0, (size_t)hd * sizeof(float));
            for (int p = 0; p < T; p++) {
                const float *v = cpu_row(s, op->a, p) + ho;
                if (sc[p] > m) {
                    float c = corr[p];
                    lsum = lsum * c;
                    for (int e = 0; e < hd; e++) acc[e] = acc[e] * c;
                    m = sc[p];
                }
                float wp = w[p];
                lsum = lsum + wp;
                for (int e = 0; e < hd; e++) acc[e] = acc[e] + wp * v[e];
            }
            float *o = cpu_row(s, op->y, t) + ho;
            for (int e = 0; e < hd; e++) o[e] = acc[e] / lsum;
        }
    }
}

fp4rt_status fp4rt_cpu_attention_full(const cpu_step *s, const fp4rt_op *op) {
    int w = op->n_groups * op->group_dim;
    if (op->n_groups < 1 || op->group_dim < 1 || op->x.cols < w || op->z.cols < w || op->a.cols < w || op->y.cols < w)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: %d heads of %d over views of %d/%d/%d/%d columns",
                          op->layer, op->n_groups, op->group_dim, op->x.cols, op->z.cols, op->a.cols, op->y.cols);
    if (views_overlap(op->y, op->x) || views_overlap(op->y, op->z) || views_overlap(op->y, op->a))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: the output overlaps q, k or v", op->layer);
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, 0, attn_full_ws(s->step->n_tokens, op->group_dim));
    if (st) return st;
    vis_job j = {s, op};
    long n_blocks = (s->step->n_tokens + ATTN_ROWS - 1) / ATTN_ROWS;
    fp4rt_pool_for(s->ctx->pool, n_blocks * op->n_groups, 1, attn_full_range, &j);
    return FP4RT_OK;
}
