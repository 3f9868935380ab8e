/* NVFP4 W4A4 linear layers on CUDA (FP4RT_W_NVFP4_W4A4: the checkpoint's W4A4
 * layers, and the W4A16 layers that --fp4-activations runs as W4A4).
 *
 *   y[t, n] = post[t] * sum_b (sum_{k in b} e2m1(xq[t,k]) e2m1(w[n,k])) * sfx[t,b] * sfw[n,b]
 *
 * Step 1 (fp4_act_quant): every activation row is quantized to NVFP4 exactly as
 * the CPU does (runtime/backend/cpu/cpu_linear.c fp4rt_nvfp4_act_quantize): tensor scale s =
 * input_scale, or amax(row) / (6 * 448) for a dynamic layer (fp4rt_linear
 * .act_dynamic); block scale sf = e4m3(min(amax16 / 6 / s, 448)); codes = E2M1
 * RNE of x / (sf * s). Codes, scales and post[t] = s * weight_scale go to the
 * workspace.
 * Step 2, the product, FP32 accumulation:
 *   - up to FP4_GEMV_ROWS rows (decode): fp4_gemv, one warp per output row,
 *     both operands decoded in registers (the per-block sums are exact
 *     integers, as in the MMA);
 *   - more rows (prefill): fp4_mma_gemm, 16 x 8 x 64 block-scaled MMAs: the
 *     native instruction on sm_120a / sm_121a, the emulation of
 *     cu_fp4_frag.cuh (same fragments, same scale registers, same loads)
 *     everywhere else.
 * The CPU sums in another order; results agree to FP32 rounding of the sums. */
#include "cuda/cu_fp4_frag.cuh"
#include "cuda/cu_ops.h"

#include <stdint.h>

using namespace fp4rt_fp4;

#define FP4_GEMV_ROWS 8
#define FP4_THREADS 128 /* 4 warps */

namespace { /* kernels: internal linkage, no clash with other op families */

/* ---- step 1: activation quantization -------------------------------------- */

/* One block per activation row r: x row at x + r * x_stride (floats), K
 * multiple of 16. Out: codes [rows, K/2], scales [rows, K/16], post [rows]. */
__global__ void __launch_bounds__(FP4_THREADS)
fp4_act_quant(const float *__restrict__ x, size_t x_stride, int K, float input_scale, int dynamic,
              float weight_scale, uint8_t *__restrict__ codes, uint8_t *__restrict__ scales,
              float *__restrict__ post) {
    __shared__ float red[FP4_THREADS / 32];
    int r = blockIdx.x, tid = threadIdx.x;
    const float *xr = x + (size_t)r * x_stride;
    float s = input_scale;
    if (dynamic) { /* the row's amax: max is exact whatever the order */
        float m = 0.0f;
        for (int k = tid; k < K; k += FP4_THREADS) m = fp4_fmax(m, fabsf(xr[k]));
        for (int o = 16; o > 0; o >>= 1) m = fp4_fmax(m, __shfl_xor_sync(0xffffffffu, m, o));
        if ((tid & 31) == 0) red[tid >> 5] = m;
        __syncthreads();
        m = red[0];
        for (int w = 1; w < FP4_THREADS / 32; w++) m = fp4_fmax(m, red[w]);
        s = fp4_row_scale(m);
    }
    if (tid == 0) post[r] = fp4_mul(s, weight_scale);
    int nb = K / 16;
    for (int b = tid; b < nb; b += FP4_THREADS) {
        float v[16];
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = xr[16 * b + i];
        uint8_t c[8];
        uint32_t sfc = fp4_quantize_block16(v, s, c);
        uint2 packed;
        packed.x = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
        packed.y = (uint32_t)c[4] | (uint32_t)c[5] << 8 | (uint32_t)c[6] << 16 | (uint32_t)c[7] << 24;
        *(uint2 *)(codes + (size_t)r * (K / 2) + 8 * b) = packed; /* 8-byte aligned: K/2 % 8 == 0 */
        scales[(size_t)r * nb + b] = (uint8_t)sfc;
    }
}

/* ---- step 2a: decode GEMV --------------------------------------------------- */

/* One warp per output row n; lane L takes 16-blocks L, L + 32, ...; rows <= FP4_GEMV_ROWS.
 * The warp's partial sums are combined by a fixed xor tree (deterministic). */
__global__ void __launch_bounds__(FP4_THREADS)
fp4_gemv(fp4_mat w, fp4_mat xq, const float *__restrict__ post, float *__restrict__ y,
         size_t y_stride) {
    int lane = threadIdx.x & 31;
    int n = blockIdx.x * (FP4_THREADS / 32) + (threadIdx.x >> 5);
    if (n >= w.rows) return; /* whole warp */
    int rows = xq.rows, nb = w.K / 16;
    float acc[FP4_GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < FP4_GEMV_ROWS; r++) acc[r] = 0.0f;
    for (int b = lane; b < nb; b += 32) {
        uint32_t w0 = fp4_load_word(w, n, 16 * b), w1 = fp4_load_word(w, n, 16 * b + 8);
        float sw = fp4_ue4m3_value(w.scales[(size_t)n * nb + b]);
#pragma unroll
        for (int r = 0; r < FP4_GEMV_ROWS; r++) {
            if (r >= rows) break;
            uint32_t x0 = fp4_load_word(xq, r, 16 * b), x1 = fp4_load_word(xq, r, 16 * b + 8);
            int dot = fp4_dot8_x4(w0, x0) + fp4_dot8_x4(w1, x1); /* exact, as in the MMA */
            float sx = fp4_ue4m3_value(xq.scales[(size_t)r * nb + b]);
            acc[r] = fp4_add(acc[r], fp4_mul(fp4_mul((float)dot, 0.25f), fp4_mul(sw, sx)));
        }
    }
#pragma unroll
    for (int r = 0; r < FP4_GEMV_ROWS; r++) {
        if (r >= rows) break;
        float v = acc[r];
        for (int o = 16; o > 0; o >>= 1) v = fp4_add(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) y[(size_t)r * y_stride + n] = fp4_mul(v, post[r]);
    }
}

/* ---- step 2b: block-scaled MMA GEMM ---------------------------------------- */

#if !FP4RT_NATIVE_FP4_MMA
/* Register fetch across the warp for the emulation. */
struct fp4_shfl_fetch {
    const uint32_t *pa, *pb;
    uint32_t sa, sb;
    __device__ __forceinline__ uint32_t a(int src, int reg) const {
        return __shfl_sync(0xffffffffu, pa[reg], src);
    }
    __device__ __forceinline__ uint32_t b(int src, int reg) const {
        return __shfl_sync(0xffffffffu, pb[reg], src);
    }
    __device__ __forceinline__ uint32_t sfa(int src) const { return __shfl_sync(0xffffffffu, sa, src); }
    __device__ __forceinline__ uint32_t sfb(int src) const { return __shfl_sync(0xffffffffu, sb, src); }
};
#endif

/* d += A (16x64, scales sfa) x B (64x8, scales sfb) for the whole warp. */
__device__ __forceinline__ void fp4_mma_step(const uint32_t a[4], const uint32_t b[2], uint32_t sfa,
                                             uint32_t sfb, float d[4]) {
#if FP4RT_NATIVE_FP4_MMA
    asm volatile("mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X"
                 ".f32.e2m1.e2m1.f32.ue4m3 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3}, "
                 "%10, {0, 0}, %11, {0, 0};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(sfa),
                   "r"(sfb));
#else
    fp4_shfl_fetch f = {a, b, sfa, sfb};
    fp4_lane_view v;
    fp4_mma_gather((int)(threadIdx.x & 31), f, &v);
    fp4_mma_compute(&v, d, d);
#endif
}

/* Block: 4 warps x 16 weight rows = 64 outputs; blockIdx.y: 32 activation rows
 * (4 MMA columns of 8). Fragments are loaded straight from global memory
 * (the same fp4_load_frag_* the host test runs). */
__global__ void __launch_bounds__(FP4_THREADS)
fp4_mma_gemm(fp4_mat w, fp4_mat xq, const float *__restrict__ post, float *__restrict__ y,
             size_t y_stride) {
    int lane = threadIdx.x & 31;
    int n0 = (blockIdx.x * (FP4_THREADS / 32) + (threadIdx.x >> 5)) * 16;
    int r0 = blockIdx.y * 32;
    if (n0 >= w.rows) return; /* whole warp */
    float acc[4][4];
#pragma unroll
    for (int s = 0; s < 4; s++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[s][i] = 0.0f;
    for (int kt = 0; kt < w.K; kt += 64) {
        uint32_t a[4], sfa, b[4][2], sfb[4];
        fp4_load_frag_a(w, n0, kt, lane, a, &sfa);
#pragma unroll
        for (int s = 0; s < 4; s++) fp4_load_frag_b(xq, r0 + 8 * s, kt, lane, b[s], &sfb[s]);
#pragma unroll
        for (int s = 0; s < 4; s++) fp4_mma_step(a, b[s], sfa, sfb[s], acc[s]);
    }
#pragma unroll
    for (int s = 0; s < 4; s++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int n = n0 + fp4_frag_c_row(lane, i), r = r0 + 8 * s + fp4_frag_c_col(lane, i);
            if (n < w.rows && r < xq.rows) y[(size_t)r * y_stride + n] = fp4_mul(acc[s][i], post[r]);
        }
}

/* Writes FP4RT_NATIVE_FP4_MMA as compiled for the running device. */
__global__ void fp4_native_probe(int *out) { *out = FP4RT_NATIVE_FP4_MMA; }

} /* namespace */

/* ---- host side ---------------------------------------------------------------- */

static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

/* Workspace of one W4A4 linear for `rows` activation rows: codes, scales, post. */
static size_t ws_codes(int rows, int K) { return align256((size_t)rows * (size_t)(K / 2)); }
static size_t ws_scales(int rows, int K) { return align256((size_t)rows * (size_t)(K / 16)); }

size_t fp4rt_cu_w4a4_workspace_bytes(const fp4rt_op *op, int chunk) {
    if (op->kind != FP4RT_OP_LINEAR || !op->lin || op->lin->fmt != FP4RT_W_NVFP4_W4A4) return 0;
    int K = op->lin->n_in;
    return ws_codes(chunk, K) + ws_scales(chunk, K) + align256((size_t)chunk * sizeof(float));
}

fp4rt_status fp4rt_cu_fp4_native(int *native) {
    *native = 0;
    int *d = NULL;
    if (cudaMalloc(&d, sizeof(int)) != cudaSuccess)
        return fp4rt_cu_fail(FP4RT_DEVICE, "cuda: probing the FP4 MMA path: cudaMalloc failed");
    fp4_native_probe<<<1, 1>>>(d);
    cudaError_t e = cudaMemcpy(native, d, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d);
    if (e != cudaSuccess)
        return fp4rt_cu_fail(FP4RT_DEVICE, "cuda: probing the FP4 MMA path: %s", cudaGetErrorString(e));
    return FP4RT_OK;
}

static size_t view_off(const fp4rt_program *p, fp4rt_view v) {
    return (size_t)p->buf_offset[v.buf] + (size_t)v.col;
}

fp4rt_status fp4rt_cu_op_linear_w4a4(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    if (!l || l->fmt != FP4RT_W_NVFP4_W4A4)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: w4a4 linear called for %s (format %d, not NVFP4-W4A4)",
                             l && l->module ? l->module : "a linear without weights", l ? (int)l->fmt : -1);
    int K = l->n_in, N = l->n_out, T = s->step->n_tokens;
    if (op->x.cols != K || op->y.cols != N || K % 16)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: view %dx%d for a [%d, %d] weight",
                             l->module, op->x.cols, op->y.cols, N, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    if (!l->act_dynamic && !(l->input_scale > 0.0f))
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: W4A4 without an input_scale", l->module);
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0, rows = T - t0;
    const fp4rt_program *p = s->p;
    size_t stride = (size_t)p->arena_width;
    const float *x = (const float *)s->sb->scratch->dev + view_off(p, op->x) + (size_t)t0 * stride;
    float *y;
    size_t y_stride;
    if (op->is_logits) {
        y = (float *)s->sb->logits->dev;
        y_stride = (size_t)p->weights->cfg.vocab;
    } else {
        y = (float *)s->sb->scratch->dev + view_off(p, op->y) + (size_t)t0 * stride;
        y_stride = stride;
    }
    const uint8_t *wc = (const uint8_t *)fp4rt_cu_weight(s->c, l->weight);
    const uint8_t *wsc = (const uint8_t *)fp4rt_cu_weight(s->c, l->block_scale);
    if (!wc || !wsc) return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: %s was not uploaded", l->module);
    uint8_t *ws = (uint8_t *)fp4rt_cu_workspace(s, fp4rt_cu_w4a4_workspace_bytes(op, rows));
    if (!ws) return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: %s: no workspace for %d rows", l->module, rows);
    uint8_t *xc = ws, *xs = ws + ws_codes(rows, K);
    float *post = (float *)(xs + ws_scales(rows, K));

    fp4_act_quant<<<rows, FP4_THREADS, 0, s->stream>>>(x, stride, K, l->input_scale, l->act_dynamic,
                                                       l->weight_scale, xc, xs, post);
    fp4rt_status st = fp4rt_cu_check_launch("fp4_act_quant");
    if (st) return st;
    /* logits_rows: only the draft vocabulary's outputs, the first rows of the
     * weight (backend.h); the logits past them stay as they were (undefined) */
    int n_out = op->is_logits && s->step->logits_rows ? s->step->logits_rows : N;
    fp4_mat wm = {wc, wsc, n_out, K, ((uintptr_t)wc & 3) == 0};
    fp4_mat xm = {xc, xs, rows, K, 1};
    if (rows <= FP4_GEMV_ROWS) {
        unsigned blocks = (unsigned)((n_out + FP4_THREADS / 32 - 1) / (FP4_THREADS / 32));
        fp4_gemv<<<blocks, FP4_THREADS, 0, s->stream>>>(wm, xm, post, y, y_stride);
        return fp4rt_cu_check_launch("fp4_gemv");
    }
    dim3 grid((unsigned)((n_out + 63) / 64), (unsigned)((rows + 31) / 32));
    fp4_mma_gemm<<<grid, FP4_THREADS, 0, s->stream>>>(wm, xm, post, y, y_stride);
    return fp4rt_cu_check_launch("fp4_mma_gemm");
}
