/* CUDA linear layers: y[t, n] = post * sum_k x'[t, k] * w'[n, k] for every weight
 * format except NVFP4 W4A4 (cu_fp4_mma.cu). The math is runtime/cpu_linear.c:
 * w' is the weight decoded exactly (BF16/F16/F32 values, E4M3 values, E2M1 code
 * times E4M3 block scale), x' the activation row (FP8 W8A8: e4m3(x / input_scale)),
 * post the tensor scales applied after the sum (FP8: input_scale * weight_scale;
 * NVFP4 W4A16: weight_scale_2; 1 otherwise).
 *
 * Paths, picked per op from the row count:
 *  - rows < FP4RT_CU_GEMM_MIN_ROWS (decode): matrix-vector kernels, one warp per
 *    GEMV_RPW output rows, 16-byte streaming loads of the weights, FP32 operands
 *    and accumulation, warp-shuffle reduction; a scalar kernel for rows whose
 *    bytes are not 16-byte aligned (never a read past a row).
 *  - more rows (prefill, sm_80+): a tiled mma.sync m16n8k16 GEMM with FP32
 *    accumulation: F16 operands for NVFP4 (weights exact, activations rounded:
 *    the numerics contract's matrix-unit freedom), F16 weights and FP8 W8A8
 *    (both operands E4M3 values: exact in F16); BF16 operands for BF16 weights.
 *    F32 weights always take the matrix-vector path.
 * FP8 activations are quantized into the workspace first (exact, the CPU's
 * rounding); an input view that is not 16-byte aligned is copied there too. */
#include "cu_ops.h"

#include "cu_linear_math.cuh"

#include <cuda_fp16.h>

#include <stddef.h>
#include <stdint.h>


static_assert(CUW_BF16 == (int)FP4RT_W_BF16 && CUW_F16 == (int)FP4RT_W_F16 && CUW_F32 == (int)FP4RT_W_F32 &&
                  CUW_FP8 == (int)FP4RT_W_FP8 && CUW_NVFP4 == (int)FP4RT_W_NVFP4,
              "CUW_* mirror fp4rt_wfmt");

using namespace culin;

#define GEMV_MAX_NT 4 /* token rows per matrix-vector launch */
#ifndef FP4RT_CU_GEMM_MIN_ROWS
#define FP4RT_CU_GEMM_MIN_ROWS 9 /* below: matrix-vector in groups of <= 4 rows */
#endif

/* Matrix-vector, 16-byte chunks (gemv_lane): one warp per gemv_rpw<NT>() output
 * rows, partial sums meet in a fixed xor-shuffle tree (deterministic). */
template <int FMT, int NT>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_vec(gemv_args a) {
    constexpr int RPW = gemv_rpw<NT>();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row0 = (blockIdx.x * GEMV_WARPS + warp) * RPW;
    if (row0 >= a.N) return;
    float acc[RPW][NT];
    gemv_lane<FMT, NT>(a, row0, lane, acc);
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], o);
    /* lane r * NT + t writes (row0 + r, token t) */
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (lane == r * NT + t && row0 + r < a.N) a.y[(size_t)t * a.ys + row0 + r] = acc[r][t] * a.post;
}

/* Matrix-vector, any alignment and any K: one warp per output row, a.nt token rows. */
template <int FMT>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_scalar(gemv_args a) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n = blockIdx.x * GEMV_WARPS + warp;
    if (n >= a.N) return;
    for (int t = 0; t < a.nt; t++) {
        float acc = gemv_scalar_lane<FMT>(a, n, a.x + (size_t)t * a.xs, lane);
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) a.y[(size_t)t * a.ys + n] = acc * a.post;
    }
}

/* ---- tensor-core GEMM ------------------------------------------------------- */

template <bool BF16>
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                     "{%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                     "{%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap(); /* the recorder never launches the GEMM below sm_80 */
#endif
}

/* One block: a GEMM_BM x GEMM_BN tile of y; 4 warps of 32 x 32. */
template <int FMT, bool BF16>
__global__ void __launch_bounds__(GEMM_THREADS) gemm_mma(gemm_args a) {
    __shared__ __align__(16) uint16_t As[GEMM_BM * GEMM_LDS];
    __shared__ __align__(16) uint16_t Bs[GEMM_BN * GEMM_LDS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = gemm_warp_m(warp), wn = gemm_warp_n(warp);
    const int m0 = blockIdx.y * GEMM_BM, n0 = blockIdx.x * GEMM_BN;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;
    for (int k0 = 0; k0 < a.K; k0 += GEMM_BK) {
        gemm_load_a<BF16>(a, As, m0, k0, threadIdx.x);
        gemm_load_b<FMT, BF16>(a, Bs, n0, k0, threadIdx.x);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; kk += 16) {
            uint32_t af[2][4], bf[4][2];
            gemm_frags(As, Bs, wm, wn, kk, lane, af, bf);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma16816<BF16>(acc[i][j], af[i], bf[j]);
        }
        __syncthreads();
    }
    gemm_store(a, acc, m0, n0, wm, wn, lane);
}

/* ---- activation preparation ---------------------------------------------------
 * out row r (stride ld floats) = x row r (FP8: e4m3(x / input_scale) as FP32,
 * the CPU's fp4rt_fp8_act_quantize; else a copy). */
__global__ void act_prepare(const float *x, size_t xs, float *out, size_t ld, int K, int fp8, float input_scale) {
    int k = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (k >= K) return;
    float v = x[(size_t)r * xs + k];
    out[(size_t)r * ld + k] = fp8 ? cunf::round_e4m3(v / input_scale) : v;
}

/* ---- standalone NVFP4 -> F16 dequantization ---------------------------------- */
__global__ void dequant_nvfp4(const uint8_t *packed, const uint8_t *scales, size_t n_pairs, uint32_t *out) {
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < n_pairs; p += (size_t)gridDim.x * blockDim.x)
        out[p] = cunf::nvfp4_dequant_pair(packed[p], scales[p >> 3]);
}

/* ---- host side -------------------------------------------------------------------- */

static size_t fmt_row_bytes(const fp4rt_linear *l) {
    switch (l->fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: return (size_t)l->n_in * 2;
    case FP4RT_W_F32: return (size_t)l->n_in * 4;
    case FP4RT_W_FP8: return (size_t)l->n_in;
    default: return (size_t)l->n_in / 2;
    }
}

static int view_off(const fp4rt_program *p, fp4rt_view v) { return p->buf_offset[v.buf] + v.col; }

/* Whether the input view's rows are 16-byte aligned in the arena (the arena
 * itself is cudaMalloc'ed, 256-byte aligned). */
static int x_view_aligned(const fp4rt_program *p, const fp4rt_op *op) {
    return p->arena_width % 4 == 0 && view_off(p, op->x) % 4 == 0;
}

static size_t round4(size_t k) { return (k + 3) & ~(size_t)3; }

size_t fp4rt_cu_linear_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk) {
    if (op->kind != FP4RT_OP_LINEAR || !op->lin || op->lin->fmt == FP4RT_W_NVFP4_W4A4) return 0;
    if (op->lin->fmt != FP4RT_W_FP8 && x_view_aligned(p, op)) return 0;
    return (size_t)chunk * round4((size_t)op->lin->n_in) * sizeof(float);
}

template <int FMT, int NT>
static void launch_gemv_vec(const gemv_args &a, cudaStream_t st) {
    constexpr int rows_per_block = GEMV_WARPS * gemv_rpw<NT>();
    unsigned blocks = (unsigned)((a.N + rows_per_block - 1) / rows_per_block);
    gemv_vec<FMT, NT><<<blocks, GEMV_WARPS * 32, 0, st>>>(a);
}

template <int FMT>
static fp4rt_status run_gemv(gemv_args a, int rows, int vec, cudaStream_t st) {
    for (int t0 = 0; t0 < rows; t0 += GEMV_MAX_NT) {
        gemv_args g = a;
        g.nt = rows - t0 < GEMV_MAX_NT ? rows - t0 : GEMV_MAX_NT;
        g.x = a.x + (size_t)t0 * a.xs;
        g.y = a.y + (size_t)t0 * a.ys;
        if (!vec) {
            gemv_scalar<FMT><<<(unsigned)((a.N + GEMV_WARPS - 1) / GEMV_WARPS), GEMV_WARPS * 32, 0, st>>>(g);
        } else {
            switch (g.nt) {
            case 1: launch_gemv_vec<FMT, 1>(g, st); break;
            case 2: launch_gemv_vec<FMT, 2>(g, st); break;
            case 3: launch_gemv_vec<FMT, 3>(g, st); break;
            default: launch_gemv_vec<FMT, 4>(g, st); break;
            }
        }
        fp4rt_status s = fp4rt_cu_check_launch(vec ? "linear (matrix-vector)" : "linear (matrix-vector, scalar)");
        if (s) return s;
    }
    return FP4RT_OK;
}

template <int FMT, bool BF16>
static fp4rt_status run_gemm(const gemm_args &a, cudaStream_t st) {
    dim3 grid((unsigned)((a.N + GEMM_BN - 1) / GEMM_BN), (unsigned)((a.M + GEMM_BM - 1) / GEMM_BM));
    if (grid.y > 65535u) return fp4rt_cu_fail(FP4RT_INTERNAL, "linear: %d rows exceed the GEMM grid", a.M);
    gemm_mma<FMT, BF16><<<grid, GEMM_THREADS, 0, st>>>(a);
    return fp4rt_cu_check_launch("linear (tensor-core GEMM)");
}

static fp4rt_status dispatch(int fmt, const gemv_args &g, int rows, int vec, int gemm, const gemm_args &m,
                             cudaStream_t st) {
    switch (fmt) {
    case FP4RT_W_BF16: return gemm ? run_gemm<CUW_BF16, true>(m, st) : run_gemv<CUW_BF16>(g, rows, vec, st);
    case FP4RT_W_F16: return gemm ? run_gemm<CUW_F16, false>(m, st) : run_gemv<CUW_F16>(g, rows, vec, st);
    case FP4RT_W_F32: return run_gemv<CUW_F32>(g, rows, vec, st);
    case FP4RT_W_FP8: return gemm ? run_gemm<CUW_FP8, false>(m, st) : run_gemv<CUW_FP8>(g, rows, vec, st);
    case FP4RT_W_NVFP4: return gemm ? run_gemm<CUW_NVFP4, false>(m, st) : run_gemv<CUW_NVFP4>(g, rows, vec, st);
    default: return fp4rt_cu_fail(FP4RT_INTERNAL, "linear: unknown weight format %d", fmt);
    }
}

fp4rt_status fp4rt_cu_op_linear(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    if (!l) return fp4rt_cu_fail(FP4RT_INTERNAL, "linear op without a weight");
    if (l->fmt == FP4RT_W_NVFP4_W4A4) return fp4rt_cu_op_linear_w4a4(s, op);
    const fp4rt_program *p = s->p;
    int T = s->step->n_tokens, K = l->n_in, N = l->n_out;
    if (op->x.cols != K || op->y.cols != N)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module, op->x.cols,
                             op->y.cols, N, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    if (l->fmt == FP4RT_W_NVFP4 && K % 16)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "linear %s: NVFP4 with K = %d (not a multiple of 16)", l->module, K);
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0, rows = T - t0;
    if (rows <= 0) return FP4RT_OK;

    const uint8_t *w = (const uint8_t *)fp4rt_cu_weight(s->c, l->weight);
    const uint8_t *sb = l->block_scale ? (const uint8_t *)fp4rt_cu_weight(s->c, l->block_scale) : NULL;
    if (!w || (l->fmt == FP4RT_W_NVFP4 && !sb))
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: weights were not uploaded", l->module);

    float *arena = (float *)s->sb->scratch->dev;
    size_t aw = (size_t)p->arena_width;
    const float *x = arena + (size_t)t0 * aw + view_off(p, op->x);
    size_t xs = aw;
    float *y;
    size_t ys;
    if (op->is_logits) {
        y = (float *)s->sb->logits->dev; /* row 0 holds input row t0 */
        ys = (size_t)p->weights->cfg.vocab;
    } else {
        y = arena + (size_t)t0 * aw + view_off(p, op->y);
        ys = aw;
    }

    int fp8 = l->fmt == FP4RT_W_FP8;
    int x_ok = ((uintptr_t)x % 16 == 0) && xs % 4 == 0;
    if (fp8 || !x_ok) {
        size_t ld = round4((size_t)K);
        float *ws = (float *)fp4rt_cu_workspace(s, (size_t)rows * ld * sizeof(float));
        if (!ws) return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: no workspace for %d rows", l->module, rows);
        if (rows > 65535) return fp4rt_cu_fail(FP4RT_INTERNAL, "linear %s: %d rows", l->module, rows);
        dim3 grid((unsigned)((K + 255) / 256), (unsigned)rows);
        act_prepare<<<grid, 256, 0, s->stream>>>(x, xs, ws, ld, K, fp8, l->input_scale);
        fp4rt_status st = fp4rt_cu_check_launch("linear: activation preparation");
        if (st) return st;
        x = ws;
        xs = ld;
    }

    float post = 1.0f;
    if (fp8) post = l->input_scale * l->weight_scale;
    else if (l->fmt == FP4RT_W_NVFP4) post = l->weight_scale;

    size_t rb = fmt_row_bytes(l);
    int w_vec = (uintptr_t)w % 16 == 0 && rb % 16 == 0 && (!sb || (uintptr_t)sb % 2 == 0);
    gemv_args g = {w, sb, x, y, xs, ys, rb, N, K, 0, post};
    gemm_args m = {w, sb, x, y, xs, ys, rb, rows, N, K, w_vec, post};
    int gemm = rows >= FP4RT_CU_GEMM_MIN_ROWS && s->sm >= 80 && l->fmt != FP4RT_W_F32;
    return dispatch(l->fmt, g, rows, w_vec, gemm, m, s->stream);
}

fp4rt_status fp4rt_cu_dequant_nvfp4(cudaStream_t stream, const uint8_t *packed, const uint8_t *scales, size_t n,
                                    uint16_t *out) {
    if (n % 16) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: dequant of %zu elements (need a multiple of 16)", n);
    if ((uintptr_t)out % 4) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: dequant output not 4-byte aligned");
    if (n == 0) return FP4RT_OK;
    size_t pairs = n / 2, blocks = (pairs + 255) / 256;
    if (blocks > 65535) blocks = 65535; /* grid-stride beyond */
    dequant_nvfp4<<<(unsigned)blocks, 256, 0, stream>>>(packed, scales, pairs, (uint32_t *)out);
    return fp4rt_cu_check_launch("NVFP4 dequant");
}
