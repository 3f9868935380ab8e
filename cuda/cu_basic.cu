/* The cheap per-row ops: embedding, RMSNorm / gated RMSNorm / L2 norm, sigmoid
 * gate, SwiGLU, residual add. The numerics contract (cu_canon.cuh): the CPU's
 * FP32 math (runtime/backend/cpu/cpu_elementwise.c, cpu_attention.c for the sigmoid gate)
 * in the same operation order, the norms' sum of squares in fp4rt_csumsq's
 * order, SiLU and sigmoid from canon_math.h: the CPU's bits. Every kernel reads
 * the token ids from the device step info, and the row count is the step's
 * (fixed per captured graph). */
#include "cuda/cu_attn_index.h" /* FP4RT_CU_LAUNCH */
#include "cuda/cu_canon.cuh"
#include "cuda/cu_ops.h"

#include <cuda_fp16.h>

#define CU_BASIC_THREADS 256

/* ---- embedding: y[t] = table[tokens[t]] (BF16, F16 or F32 rows) ---- */

/* Rows whose override flag is set copy row t of embeds instead (the step's input_embeds). */
__global__ void cu_embed_kernel(const void *table, int dtype, int hidden, const fp4rt_cu_step_info *info, float *y,
                                size_t y_stride, const uint8_t *over, const float *embeds) {
    int t = blockIdx.x;
    float *yr = y + (size_t)t * y_stride;
    if (over && over[t]) {
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) yr[i] = embeds[(size_t)t * hidden + i];
        return;
    }
    size_t row = (size_t)info->tokens[t] * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        float v;
        if (dtype == FP4RT_DT_F32) {
            v = ((const float *)table)[row + i];
        } else {
            unsigned short h = ((const unsigned short *)table)[row + i];
            v = dtype == FP4RT_DT_BF16 ? __uint_as_float((unsigned)h << 16) : __half2float(__ushort_as_half(h));
        }
        yr[i] = v;
    }
}

fp4rt_status fp4rt_cu_op_embed(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_weights *w = s->p->weights;
    if (w->embed_dtype != FP4RT_DT_F32 && w->embed_dtype != FP4RT_DT_BF16 && w->embed_dtype != FP4RT_DT_F16)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: embedding of dtype %d", (int)w->embed_dtype);
    const void *table = fp4rt_cu_weight(s->c, w->embed);
    if (!table) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: embed_tokens was not uploaded");
    int hidden = w->cfg.hidden;
    FP4RT_CU_LAUNCH(cu_embed_kernel, s->step->n_tokens, hidden >= CU_BASIC_THREADS ? CU_BASIC_THREADS : 64, 0,
                    s->stream, table, (int)w->embed_dtype, hidden, s->d_step, fp4rt_cu_view_ptr(s, op->y),
                    fp4rt_cu_view_stride(s, op->y), s->embed_rows, s->embeds);
    return fp4rt_cu_check_launch("embed");
}

/* ---- norms ---- */

enum { CU_NORM_RMS = 0, CU_NORM_GATED = 1, CU_NORM_L2 = 2 };

/* One block per (row, group); blockDim.x >= 16. Threads j < 16 sum chain j of
 * the squares (fp4rt_csumsq_chain), thread 0 the tree and r = 1 / sqrt(mean +
 * eps) (L2: 1 / sqrt(sum + eps)); then y = (x r) w, gated ((x r) w) silu(z), L2
 * (x r) scale, as the CPU. In place (y == x) is safe: every read of x happens
 * before the barrier that precedes the writes, and each thread rewrites only
 * the lanes it reads after it. */
__global__ void cu_norm_kernel(int mode, const float *x, const float *z, float *y, size_t stride, int group_dim,
                               int group_stride, const float *w, float eps, float scale) {
    __shared__ float chain[16], rs;
    int t = blockIdx.y, g = blockIdx.x;
    size_t o = (size_t)t * stride + (size_t)g * group_stride;
    if (threadIdx.x < 16) chain[threadIdx.x] = fp4rt_csumsq_chain(x + o, group_dim, threadIdx.x);
    __syncthreads();
    if (threadIdx.x == 0) {
        float ss = fp4rt_csumsq_tree(chain);
        rs = mode == CU_NORM_L2 ? 1.0f / sqrtf(ss + eps) : 1.0f / sqrtf(ss / (float)group_dim + eps);
    }
    __syncthreads();
    float r = rs;
    for (int i = threadIdx.x; i < group_dim; i += blockDim.x) {
        float xv = x[o + i];
        if (mode == CU_NORM_RMS)
            y[o + i] = xv * r * w[i];
        else if (mode == CU_NORM_GATED)
            y[o + i] = xv * r * w[i] * fp4rt_csilu(z[o + i]);
        else
            y[o + i] = xv * r * scale;
    }
}

fp4rt_status fp4rt_cu_op_norm(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int mode = op->kind == FP4RT_OP_RMSNORM ? CU_NORM_RMS : op->kind == FP4RT_OP_GATED_RMSNORM ? CU_NORM_GATED : CU_NORM_L2;
    const float *w = NULL;
    if (mode != CU_NORM_L2) {
        w = (const float *)fp4rt_cu_weight(s->c, op->w);
        if (!w) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: norm weights of layer %d were not uploaded", op->layer);
    }
    size_t stride = fp4rt_cu_view_stride(s, op->x);
    if (fp4rt_cu_view_stride(s, op->y) != stride || (mode == CU_NORM_GATED && fp4rt_cu_view_stride(s, op->z) != stride))
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: norm between buffers of different row strides");
    if (op->n_groups < 1 || op->n_groups > 65535 || op->group_dim < 1)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: norm of %d groups of %d", op->n_groups, op->group_dim);
    int threads = op->group_dim >= 1024 ? CU_BASIC_THREADS : op->group_dim >= 128 ? 128 : 32;
    dim3 grid((unsigned)op->n_groups, (unsigned)s->step->n_tokens);
    FP4RT_CU_LAUNCH(cu_norm_kernel, grid, threads, 0, s->stream, mode, fp4rt_cu_view_ptr(s, op->x),
                    mode == CU_NORM_GATED ? fp4rt_cu_view_ptr(s, op->z) : (float *)NULL, fp4rt_cu_view_ptr(s, op->y),
                    stride, op->group_dim, op->group_stride, w, op->eps, op->scale);
    return fp4rt_cu_check_launch(mode == CU_NORM_RMS ? "rmsnorm" : mode == CU_NORM_GATED ? "gated rmsnorm" : "l2norm");
}

/* ---- element-wise: sigmoid gate, SwiGLU, add ---- */

enum { CU_EW_GATE = 0, CU_EW_SWIGLU = 1, CU_EW_ADD = 2 };

/* Element e of the row (0 .. n_groups * group_dim) at column
 * (e / group_dim) * stride + e % group_dim; SwiGLU and add are one group. */
__global__ void cu_eltwise_kernel(int mode, const float *x, const float *z, float *y, size_t row_stride, int n_rows,
                                  int group_dim, int n_groups, int x_gstride, int z_gstride) {
    size_t per_row = (size_t)group_dim * n_groups, n = per_row * n_rows;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / per_row, e = i % per_row, g = e / group_dim, k = e % group_dim;
        size_t xo = t * row_stride + g * x_gstride + k, zo = t * row_stride + g * z_gstride + k;
        float xv = x[xo], zv = z[zo];
        y[xo] = mode == CU_EW_GATE ? xv * fp4rt_csigmoid(zv) : mode == CU_EW_SWIGLU ? fp4rt_csilu(xv) * zv : xv + zv;
    }
}

fp4rt_status fp4rt_cu_op_eltwise(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int mode = op->kind == FP4RT_OP_SIGMOID_GATE ? CU_EW_GATE : op->kind == FP4RT_OP_SWIGLU ? CU_EW_SWIGLU : CU_EW_ADD;
    size_t stride = fp4rt_cu_view_stride(s, op->x);
    if (fp4rt_cu_view_stride(s, op->y) != stride || fp4rt_cu_view_stride(s, op->z) != stride)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: element-wise op between buffers of different row strides");
    int group_dim = op->x.cols, n_groups = 1, xg = 0, zg = 0;
    if (mode == CU_EW_GATE) {
        group_dim = op->group_dim;
        n_groups = op->n_groups;
        xg = op->group_stride;
        zg = op->z_group_stride;
    }
    size_t n = (size_t)group_dim * n_groups * s->step->n_tokens;
    if (n == 0) return FP4RT_OK;
    unsigned blocks = (unsigned)((n + CU_BASIC_THREADS - 1) / CU_BASIC_THREADS);
    if (blocks > 4096) blocks = 4096;
    FP4RT_CU_LAUNCH(cu_eltwise_kernel, blocks, CU_BASIC_THREADS, 0, s->stream, mode, fp4rt_cu_view_ptr(s, op->x),
                    fp4rt_cu_view_ptr(s, op->z), fp4rt_cu_view_ptr(s, op->y), stride, s->step->n_tokens, group_dim,
                    n_groups, xg, zg);
    return fp4rt_cu_check_launch(mode == CU_EW_GATE ? "sigmoid gate" : mode == CU_EW_SWIGLU ? "swiglu" : "add");
}
