/* The vision encoder's ops (issue 18): LayerNorm with bias, bias add, GELU (erf
 * and tanh forms) and bidirectional attention over the step's rows. The
 * numerics contract (cu_canon.cuh): the CPU's FP32 math
 * (runtime/backend/cpu/cpu_vision_ops.c) in the same operation order, GELU
 * from canon_math.h, the LayerNorm sums in fp4rt_csum's order, the attention's
 * dot products in element order and its online softmax position by position:
 * the CPU's bits (test_cu_emu checks them on the host). */
#include "cuda/cu_attn_index.h" /* FP4RT_CU_LAUNCH */
#include "cuda/cu_canon.cuh"
#include "cuda/cu_ops.h"

#define CU_VIS_THREADS 64
#define CU_VIS_MAX_HD (4 * CU_VIS_THREADS) /* ATTENTION_FULL head_dim */

/* ---- LayerNorm: one block per (row, group) ---- */

/* Threads j < 16 sum chain j (x_i, then (x_i - mean)^2), thread 0 the tree;
 * y = ((x - mean) r) w + b. In place (y == x) is safe: every read of x for the
 * sums precedes the barrier before the writes, and each thread rewrites only
 * the lanes it reads after it. */
__global__ void cu_layernorm_kernel(const float *x, float *y, size_t stride, int group_dim, int group_stride,
                                    const float *w, const float *b, float eps) {
    __shared__ float chain[16], stat[2];
    int t = blockIdx.x, g = blockIdx.y;
    const float *xg = x + (size_t)t * stride + (size_t)g * group_stride;
    float *yg = y + (size_t)t * stride + (size_t)g * group_stride;
    if (threadIdx.x < 16) {
        float c = 0;
        for (int i = threadIdx.x; i < group_dim; i += 16) c = c + xg[i];
        chain[threadIdx.x] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) stat[0] = fp4rt_csumsq_tree(chain) / (float)group_dim;
    __syncthreads();
    float mean = stat[0];
    if (threadIdx.x < 16) {
        float c = 0;
        for (int i = threadIdx.x; i < group_dim; i += 16) {
            float d = xg[i] - mean;
            c = c + d * d;
        }
        chain[threadIdx.x] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) stat[1] = 1.0f / sqrtf(fp4rt_csumsq_tree(chain) / (float)group_dim + eps);
    __syncthreads();
    float r = stat[1];
    for (int i = threadIdx.x; i < group_dim; i += blockDim.x) {
        float d = xg[i] - mean;
        d = d * r;
        d = d * w[i];
        yg[i] = d + b[i];
    }
}

fp4rt_status fp4rt_cu_op_layernorm(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const float *w = (const float *)fp4rt_cu_weight(s->c, op->w), *b = (const float *)fp4rt_cu_weight(s->c, op->b);
    if (!w || !b) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: a LayerNorm weight or bias was not uploaded");
    FP4RT_CU_LAUNCH(cu_layernorm_kernel, dim3(s->step->n_tokens, op->n_groups), CU_VIS_THREADS, 0, s->stream,
                    fp4rt_cu_view_ptr(s, op->x), fp4rt_cu_view_ptr(s, op->y), fp4rt_cu_view_stride(s, op->x),
                    op->group_dim, op->group_stride, w, b, op->eps);
    return fp4rt_cu_check_launch("layernorm");
}

/* ---- BIAS (mode 0), GELU erf (1) and tanh (2): one block row per step row ---- */

__global__ void cu_bias_gelu_kernel(int mode, const float *x, float *y, size_t stride, int n, const float *b) {
    int t = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[(size_t)t * stride + i];
    y[(size_t)t * stride + i] = mode == 0 ? v + b[i] : mode == 1 ? fp4rt_cgelu_erf(v) : fp4rt_cgelu_tanh(v);
}

fp4rt_status fp4rt_cu_op_bias_gelu(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int mode = op->kind == FP4RT_OP_BIAS ? 0 : op->gelu_tanh ? 2 : 1;
    const float *b = NULL;
    if (mode == 0 && !(b = (const float *)fp4rt_cu_weight(s->c, op->b)))
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: a bias was not uploaded");
    int n = op->x.cols;
    FP4RT_CU_LAUNCH(cu_bias_gelu_kernel, dim3((n + 255) / 256, s->step->n_tokens), 256, 0, s->stream, mode,
                    fp4rt_cu_view_ptr(s, op->x), fp4rt_cu_view_ptr(s, op->y), fp4rt_cu_view_stride(s, op->x), n, b);
    return fp4rt_cu_check_launch(mode ? "gelu" : "bias");
}

/* ---- ATTENTION_FULL: one block per (row t, head h), as shaders/attention_full.comp ----
 * Positions in tiles of CU_VIS_THREADS: thread i scores position p0 + i (the dot
 * product in element order, times scale) into shared memory; then every thread
 * walks the tile's scores in order with the same online softmax for its lanes
 * e = tid, tid + 64, ... of the output (m and l are the same in every thread). */
__global__ void cu_attention_full_kernel(const float *q, const float *k, const float *v, float *y, size_t stride,
                                         int T, int hd, float scale) {
    __shared__ float qs[CU_VIS_MAX_HD], sc[CU_VIS_THREADS];
    int h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x;
    size_t ho = (size_t)h * hd;
    for (int e = tid; e < hd; e += CU_VIS_THREADS) qs[e] = q[(size_t)t * stride + ho + e];
    __syncthreads();
    float m = -INFINITY, l = 0, acc[4] = {0, 0, 0, 0};
    for (int p0 = 0; p0 < T; p0 += CU_VIS_THREADS) {
        int p = p0 + tid;
        if (p < T) {
            const float *kr = k + (size_t)p * stride + ho;
            float d = 0;
            for (int e = 0; e < hd; e++) d = d + qs[e] * kr[e];
            sc[tid] = d * scale;
        }
        __syncthreads();
        int n = T - p0 < CU_VIS_THREADS ? T - p0 : CU_VIS_THREADS;
        for (int i = 0; i < n; i++) {
            float s = sc[i];
            if (s > m) {
                float corr = fp4rt_cexp(m - s);
                l = l * corr;
                for (int j = 0; j < 4; j++) acc[j] = acc[j] * corr;
                m = s;
            }
            float w = fp4rt_cexp(s - m);
            l = l + w;
            const float *vr = v + (size_t)(p0 + i) * stride + ho;
            for (int j = 0; j < 4; j++) {
                int e = tid + j * CU_VIS_THREADS;
                if (e < hd) acc[j] = acc[j] + w * vr[e];
            }
        }
        __syncthreads();
    }
    for (int j = 0; j < 4; j++) {
        int e = tid + j * CU_VIS_THREADS;
        if (e < hd) y[(size_t)t * stride + ho + e] = acc[j] / l;
    }
}

static int views_overlap(fp4rt_view a, fp4rt_view b) {
    return a.buf == b.buf && a.col < b.col + b.cols && b.col < a.col + a.cols;
}

fp4rt_status fp4rt_cu_op_attention_full(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int w = op->n_groups * op->group_dim;
    if (op->group_dim < 1 || op->group_dim > CU_VIS_MAX_HD)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: ATTENTION_FULL layer %d: head_dim %d (1 .. %d)", op->layer,
                             op->group_dim, CU_VIS_MAX_HD);
    if (op->n_groups < 1 || op->x.cols < w || op->z.cols < w || op->a.cols < w || op->y.cols < w)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: %d heads of %d over views of %d/%d/%d/%d columns",
                             op->layer, op->n_groups, op->group_dim, op->x.cols, op->z.cols, op->a.cols, op->y.cols);
    if (views_overlap(op->y, op->x) || views_overlap(op->y, op->z) || views_overlap(op->y, op->a))
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: the output overlaps q, k or v", op->layer);
    FP4RT_CU_LAUNCH(cu_attention_full_kernel, dim3(op->n_groups, s->step->n_tokens), CU_VIS_THREADS, 0, s->stream,
                    fp4rt_cu_view_ptr(s, op->x), fp4rt_cu_view_ptr(s, op->z), fp4rt_cu_view_ptr(s, op->a),
                    fp4rt_cu_view_ptr(s, op->y), fp4rt_cu_view_stride(s, op->x), s->step->n_tokens, op->group_dim,
                    op->scale);
    return fp4rt_cu_check_launch("attention_full");
}
