/* CUDA linear layers: y[t, n] = post * sum_k x'[t, k] * w'[n, k] for every weight
 * format except NVFP4 W4A4 (cu_fp4_mma.cu). The math is runtime/backend/cpu/cpu_linear.c:
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
 *    the numerics contract's matrix-unit freedom) and F16 weights; BF16 operands
 *    for BF16 weights. FP8 W8A8: m16n8k32 E4M3 x E4M3 where that is native
 *    (sm_89, sm_12x), else F16 operands (E4M3 values are exact in F16: both
 *    operands exact either way).
 *    F32 weights always take the matrix-vector path.
 * FP8 activations are quantized into the workspace first (exact, the CPU's
 * rounding); an input view that is not 16-byte aligned is copied there too. */
#include "cuda/cu_ops.h"

#include "cuda/cu_linear.h"
#include "cuda/cu_linear_math.cuh"

#include <cuda_fp16.h>

#include <stddef.h>
#include <stdint.h>

static_assert(CUW_BF16 == (int)FP4RT_W_BF16 && CUW_F16 == (int)FP4RT_W_F16 &&
                  CUW_F32 == (int)FP4RT_W_F32 && CUW_FP8 == (int)FP4RT_W_FP8 &&
                  CUW_NVFP4 == (int)FP4RT_W_NVFP4,
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
            for (int o = 16; o > 0; o >>= 1)
                acc[r][t] += __shfl_xor_sync(0xffffffffu, acc[r][t], o);
                /* lane r * NT + t writes (row0 + r, token t) */
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (lane == r * NT + t && row0 + r < a.N)
                a.y[(size_t)t * a.ys + row0 + r] = acc[r][t] * a.post;
}

/* Matrix-vector, any alignment and any K: one warp per output row, a.nt token rows. */
template <int FMT> __global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_scalar(gemv_args a) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n = blockIdx.x * GEMV_WARPS + warp;
    if (n >= a.N) return;
    for (int t = 0; t < a.nt; t++) {
        float acc = gemv_scalar_lane<FMT>(a, n, a.x + (size_t)t * a.xs, lane);
        for (int o = 16; o > 0; o >>= 1)
            acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) a.y[(size_t)t * a.ys + n] = acc * a.post;
    }
}

/* ---- tensor-core GEMM ------------------------------------------------------- */

template <bool BF16>
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (BF16)
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap(); /* the recorder never launches the GEMM below sm_80 */
#endif
}

/* One block: a GEMM_BM x GEMM_BN tile of y; 4 warps of 32 x 64. */
template <int FMT, bool BF16>
__global__ void __launch_bounds__(GEMM_THREADS) gemm_mma(gemm_args a) {
    __shared__ __align__(16) uint16_t As[GEMM_BM * GEMM_LDS];
    __shared__ __align__(16) uint16_t Bs[GEMM_BN * GEMM_LDS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = gemm_warp_m(warp), wn = gemm_warp_n(warp);
    const int m0 = blockIdx.y * GEMM_BM, n0 = blockIdx.x * GEMM_BN;
    float acc[2][GEMM_WN][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < GEMM_WN; j++)
#pragma unroll
            for (int r = 0; r < 4; r++)
                acc[i][j][r] = 0.f;
    for (int k0 = 0; k0 < a.K; k0 += GEMM_BK) {
        gemm_load_a(a, As, m0, k0, threadIdx.x);
        gemm_load_b<FMT, BF16>(a, Bs, n0, k0, threadIdx.x);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; kk += 16) {
            uint32_t af[2][4], bf[GEMM_WN][2];
            gemm_frags(As, Bs, wm, wn, kk, lane, af, bf);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < GEMM_WN; j++)
                    mma16816<BF16>(acc[i][j], af[i], bf[j]);
        }
        __syncthreads();
    }
    gemm_store(a, acc, m0, n0, wm, wn, lane);
}

/* FP8 W8A8 on sm_89+: E4M3 x E4M3 tensor cores, both operands exact. */
__device__ __forceinline__ void mma16832_e4m3(float c[4], const uint32_t a[4],
                                              const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap(); /* the recorder launches it on sm_89+ only */
#endif
}

__global__ void __launch_bounds__(GEMM_THREADS) gemm_fp8_mma(gemm_args a) {
    __shared__ __align__(16) uint8_t As[GEMM_BM * GEMM8_LDS];
    __shared__ __align__(16) uint8_t Bs[GEMM_BN * GEMM8_LDS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = gemm_warp_m(warp), wn = gemm_warp_n(warp);
    const int m0 = blockIdx.y * GEMM_BM, n0 = blockIdx.x * GEMM_BN;
    float acc[2][GEMM_WN][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < GEMM_WN; j++)
#pragma unroll
            for (int r = 0; r < 4; r++)
                acc[i][j][r] = 0.f;
    for (int k0 = 0; k0 < a.K; k0 += GEMM8_BK) {
        gemm8_load_a(a, As, m0, k0, threadIdx.x);
        gemm8_load_b(a, Bs, n0, k0, threadIdx.x);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM8_BK; kk += 32) {
            uint32_t af[2][4], bf[GEMM_WN][2];
            gemm8_frags(As, Bs, wm, wn, kk, lane, af, bf);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < GEMM_WN; j++)
                    mma16832_e4m3(acc[i][j], af[i], bf[j]);
        }
        __syncthreads();
    }
    gemm_store(a, acc, m0, n0, wm, wn, lane);
}

/* ---- activation preparation ---------------------------------------------------
 * Matrix-vector input: out row r (stride ld floats) = x row r (FP8: e4m3(x /
 * input_scale) as FP32, the CPU's fp4rt_fp8_act_quantize; else a copy). */
__global__ void act_prepare(const float *x, size_t xs, float *out, size_t ld, int K, int fp8,
                            float input_scale) {
    int k = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (k >= K) return;
    float v = x[(size_t)r * xs + k];
    out[(size_t)r * ld + k] = fp8 ? cunf::round_e4m3(v / input_scale) : v;
}

/* GEMM input: x rows staged once in the operand format (stage_elem), padded
 * with zeros to `ld` bytes (gemm_staged_ld). */
template <int OUT>
__global__ void act_stage(const float *x, size_t xs, uint8_t *out, size_t ld, int K, int fp8,
                          float input_scale) {
    constexpr int EB = OUT == STAGE_E4M3 ? 1 : 2;
    int k = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if ((size_t)k * EB >= ld) return;
    uint32_t v = k < K ? stage_elem(OUT, x[(size_t)r * xs + k], fp8, input_scale) : 0u;
    uint8_t *o = out + (size_t)r * ld + (size_t)k * EB;
    if (EB == 2)
        *reinterpret_cast<uint16_t *>(o) = (uint16_t)v;
    else
        *o = (uint8_t)v;
}

/* ---- standalone NVFP4 -> F16 dequantization ---------------------------------- */
__global__ void dequant_nvfp4(const uint8_t *packed, const uint8_t *scales, size_t n_pairs,
                              uint32_t *out) {
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < n_pairs;
         p += (size_t)gridDim.x * blockDim.x)
        out[p] = cunf::nvfp4_dequant_pair(packed[p], scales[p >> 3]);
}

/* ---- host side -------------------------------------------------------------------- */

static int view_off(const fp4rt_program *p, fp4rt_view v) {
    return p->buf_offset[v.buf] + v.col;
}

size_t fp4rt_cu_linear_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk) {
    if (op->kind != FP4RT_OP_LINEAR || !op->lin || op->lin->fmt == FP4RT_W_NVFP4_W4A4) return 0;
    /* the arena is cudaMalloc'ed (256-byte aligned): rows are aligned when the
     * row width and the view's column offset are multiples of 4 floats. Any
     * row count up to chunk may run, on either path: the largest need. */
    int aligned = p->arena_width % 4 == 0 && view_off(p, op->x) % 4 == 0;
    size_t a = fp4rt_cu_linear_ws_bytes(op->lin->fmt, chunk, op->lin->n_in, 0, aligned);
    size_t b = fp4rt_cu_linear_ws_bytes(op->lin->fmt, chunk, op->lin->n_in, 1, aligned);
    return op->lin->fmt == FP4RT_W_F32 || chunk < FP4RT_CU_GEMM_MIN_ROWS ? a : (a > b ? a : b);
}

template <int FMT, int NT> static void launch_gemv_vec(const gemv_args &a, cudaStream_t st) {
    constexpr int rows_per_block = GEMV_WARPS * gemv_rpw<NT>();
    unsigned blocks = (unsigned)((a.N + rows_per_block - 1) / rows_per_block);
    gemv_vec<FMT, NT><<<blocks, GEMV_WARPS * 32, 0, st>>>(a);
}

template <int FMT> static fp4rt_status run_gemv(gemv_args a, int rows, int vec, cudaStream_t st) {
    for (int t0 = 0; t0 < rows; t0 += GEMV_MAX_NT) {
        gemv_args g = a;
        g.nt = rows - t0 < GEMV_MAX_NT ? rows - t0 : GEMV_MAX_NT;
        g.x = a.x + (size_t)t0 * a.xs;
        g.y = a.y + (size_t)t0 * a.ys;
        if (!vec) {
            gemv_scalar<FMT>
                <<<(unsigned)((a.N + GEMV_WARPS - 1) / GEMV_WARPS), GEMV_WARPS * 32, 0, st>>>(g);
        } else {
            switch (g.nt) {
            case 1:
                launch_gemv_vec<FMT, 1>(g, st);
                break;
            case 2:
                launch_gemv_vec<FMT, 2>(g, st);
                break;
            case 3:
                launch_gemv_vec<FMT, 3>(g, st);
                break;
            default:
                launch_gemv_vec<FMT, 4>(g, st);
                break;
            }
        }
        fp4rt_status s = fp4rt_cu_check_launch(vec ? "linear (matrix-vector)"
                                                   : "linear (matrix-vector, scalar)");
        if (s) return s;
    }
    return FP4RT_OK;
}

template <int FMT, bool BF16> static fp4rt_status run_gemm(const gemm_args &a, cudaStream_t st) {
    dim3 grid((unsigned)((a.N + GEMM_BN - 1) / GEMM_BN), (unsigned)((a.M + GEMM_BM - 1) / GEMM_BM));
    if (grid.y > 65535u)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "linear: %d rows exceed the GEMM grid", a.M);
    gemm_mma<FMT, BF16><<<grid, GEMM_THREADS, 0, st>>>(a);
    return fp4rt_cu_check_launch("linear (tensor-core GEMM)");
}

/* Where mma.sync m16n8k32 E4M3 is one instruction (QMMA in the SASS of sm_89 and
 * sm_120a builds). On sm_90a and sm_100a ptxas expands it into F16 HMMA plus
 * conversions per fragment (seen in their SASS), so those take the F16-operand
 * GEMM, which converts once per tile; Hopper's FP8 tensor cores need wgmma. */
static int fp8_mma_native(int sm) {
    if (!(sm == 89 || (sm >= 120 && sm < 130))) return 0;
    /* ... and only if the code the driver loaded for gemm_fp8_mma was compiled
     * for a virtual architecture >= 8.9 (e.g. an Ada card running the module's
     * sm_80 code would reach the kernel's __trap); asked of the current device. */
    cudaFuncAttributes fa;
    return cudaFuncGetAttributes(&fa, gemm_fp8_mma) == cudaSuccess && fa.ptxVersion >= 89;
}

static fp4rt_status run_gemm_fp8(const gemm_args &a, cudaStream_t st) {
    dim3 grid((unsigned)((a.N + GEMM_BN - 1) / GEMM_BN), (unsigned)((a.M + GEMM_BM - 1) / GEMM_BM));
    if (grid.y > 65535u)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "linear: %d rows exceed the GEMM grid", a.M);
    gemm_fp8_mma<<<grid, GEMM_THREADS, 0, st>>>(a);
    return fp4rt_cu_check_launch("linear (FP8 tensor-core GEMM)");
}

static fp4rt_status run_gemv_fmt(int fmt, const gemv_args &g, int rows, int vec, cudaStream_t st) {
    switch (fmt) {
    case FP4RT_W_BF16:
        return run_gemv<CUW_BF16>(g, rows, vec, st);
    case FP4RT_W_F16:
        return run_gemv<CUW_F16>(g, rows, vec, st);
    case FP4RT_W_F32:
        return run_gemv<CUW_F32>(g, rows, vec, st);
    case FP4RT_W_FP8:
        return run_gemv<CUW_FP8>(g, rows, vec, st);
    default:
        return run_gemv<CUW_NVFP4>(g, rows, vec, st);
    }
}

static fp4rt_status run_gemm_fmt(int fmt, const gemm_args &m, int native8, cudaStream_t st) {
    switch (fmt) {
    case FP4RT_W_BF16:
        return run_gemm<CUW_BF16, true>(m, st);
    case FP4RT_W_F16:
        return run_gemm<CUW_F16, false>(m, st);
    case FP4RT_W_FP8:
        return native8 ? run_gemm_fp8(m, st) : run_gemm<CUW_FP8, false>(m, st);
    default:
        return run_gemm<CUW_NVFP4, false>(m, st);
    }
}

int fp4rt_cu_linear_uses_gemm(int fmt, int rows, int sm, int path) {
    if (sm < 80 || fmt == FP4RT_W_F32 || path == 1) return 0;
    return path == 2 || rows >= FP4RT_CU_GEMM_MIN_ROWS;
}

size_t fp4rt_cu_linear_ws_bytes(int fmt, int rows, int K, int gemm, int x_aligned) {
    if (gemm) return (size_t)rows * gemm_staged_ld(K, 2);
    if (fmt == FP4RT_W_FP8 || !x_aligned)
        return (size_t)rows * fp4rt_cu_linear_ld(K) * sizeof(float);
    return 0;
}

fp4rt_status fp4rt_cu_linear_launch(const fp4rt_cu_linear_call *c, cudaStream_t stream) {
    const int K = c->K, N = c->N, rows = c->rows;
    const char *what = c->what ? c->what : "(unnamed)";
    if (rows <= 0 || N <= 0) return FP4RT_OK;
    if (c->fmt < FP4RT_W_BF16 || c->fmt > FP4RT_W_NVFP4)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda linear %s: weight format %d not handled here",
                             what, c->fmt);
    if (K <= 0 || (c->fmt == FP4RT_W_NVFP4 && (K % 16 || !c->sb)))
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda linear %s: K = %d for format %d", what, K,
                             c->fmt);
    if (rows > 65535)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda linear %s: %d rows in one step", what, rows);
    const int fp8 = c->fmt == FP4RT_W_FP8;
    const int gemm = fp4rt_cu_linear_uses_gemm(c->fmt, rows, c->sm, c->path);
    const int x_ok = fp4rt_cu_linear_x_aligned(c->x, c->xs);
    size_t need = fp4rt_cu_linear_ws_bytes(c->fmt, rows, K, gemm, x_ok);
    if (need && (!c->ws || c->ws_bytes < need || (uintptr_t)c->ws % 16))
        return fp4rt_cu_fail(
            FP4RT_INTERNAL,
            "cuda linear %s: workspace of %zu bytes at %p, %zu needed (16-byte aligned)", what,
            c->ws_bytes, (void *)c->ws, need);
    float post = 1.0f;
    if (fp8)
        post = c->input_scale * c->weight_scale;
    else if (c->fmt == FP4RT_W_NVFP4)
        post = c->weight_scale;
    const uint8_t *w = (const uint8_t *)c->w, *sb = c->sb;
    size_t rb = fp4rt_cu_linear_row_bytes(c->fmt, K);
    int w_vec = (uintptr_t)w % 16 == 0 && rb % 16 == 0 && (!sb || (uintptr_t)sb % 2 == 0);

    if (gemm) {
        int native8 = fp8 && fp8_mma_native(c->sm);
        int out = native8 ? STAGE_E4M3 : c->fmt == FP4RT_W_BF16 ? STAGE_BF16 : STAGE_F16;
        size_t ld = gemm_staged_ld(K, native8 ? 1 : 2);
        dim3 grid((unsigned)((ld / (native8 ? 1 : 2) + 255) / 256), (unsigned)rows);
        uint8_t *xa = (uint8_t *)c->ws;
        if (out == STAGE_E4M3)
            act_stage<STAGE_E4M3>
                <<<grid, 256, 0, stream>>>(c->x, c->xs, xa, ld, K, fp8, c->input_scale);
        else if (out == STAGE_BF16)
            act_stage<STAGE_BF16>
                <<<grid, 256, 0, stream>>>(c->x, c->xs, xa, ld, K, fp8, c->input_scale);
        else
            act_stage<STAGE_F16>
                <<<grid, 256, 0, stream>>>(c->x, c->xs, xa, ld, K, fp8, c->input_scale);
        fp4rt_status st = fp4rt_cu_check_launch("linear: activation staging");
        if (st) return st;
        gemm_args m = {w, sb, xa, c->y, ld, c->ys, rb, rows, N, K, w_vec, post};
        return run_gemm_fmt(c->fmt, m, native8, stream);
    }
    const float *x = c->x;
    size_t xs = c->xs;
    if (fp8 || !x_ok) {
        size_t ld = fp4rt_cu_linear_ld(K);
        dim3 grid((unsigned)((K + 255) / 256), (unsigned)rows);
        act_prepare<<<grid, 256, 0, stream>>>(x, xs, c->ws, ld, K, fp8, c->input_scale);
        fp4rt_status st = fp4rt_cu_check_launch("linear: activation preparation");
        if (st) return st;
        x = c->ws;
        xs = ld;
    }
    gemv_args g = {w, sb, x, c->y, xs, c->ys, rb, N, K, 0, post};
    return run_gemv_fmt(c->fmt, g, rows, w_vec, stream);
}

fp4rt_status fp4rt_cu_op_linear(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    if (!l) return fp4rt_cu_fail(FP4RT_INTERNAL, "linear op without a weight");
    if (l->fmt == FP4RT_W_NVFP4_W4A4) return fp4rt_cu_op_linear_w4a4(s, op);
    const fp4rt_program *p = s->p;
    int T = s->step->n_tokens, K = l->n_in, N = l->n_out;
    if (op->x.cols != K || op->y.cols != N)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight",
                             l->module, op->x.cols, op->y.cols, N, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0;

    fp4rt_cu_linear_call c = {};
    c.fmt = l->fmt;
    c.w = fp4rt_cu_weight(s->c, l->weight);
    c.sb = l->block_scale ? (const uint8_t *)fp4rt_cu_weight(s->c, l->block_scale) : NULL;
    if (!c.w || (l->fmt == FP4RT_W_NVFP4 && !c.sb))
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: weights were not uploaded",
                             l->module);
    float *arena = (float *)s->sb->scratch->dev;
    size_t aw = (size_t)p->arena_width;
    c.x = arena + (size_t)t0 * aw + view_off(p, op->x);
    c.xs = aw;
    if (op->is_logits) {
        c.y = (float *)s->sb->logits->dev; /* row 0 holds input row t0 */
        c.ys = (size_t)p->weights->cfg.vocab;
    } else {
        c.y = arena + (size_t)t0 * aw + view_off(p, op->y);
        c.ys = aw;
    }
    c.rows = T - t0;
    /* logits_rows: only the draft vocabulary's outputs, the first rows of the
     * weight (backend.h); the logits past them stay as they were (undefined) */
    c.N = op->is_logits && s->step->logits_rows ? s->step->logits_rows : N;
    c.K = K;
    c.input_scale = l->input_scale;
    c.weight_scale = l->weight_scale;
    c.sm = s->sm;
    c.ws_bytes = fp4rt_cu_linear_ws_bytes(l->fmt, c.rows, K,
                                          fp4rt_cu_linear_uses_gemm(l->fmt, c.rows, c.sm, 0),
                                          fp4rt_cu_linear_x_aligned(c.x, c.xs));
    if (c.ws_bytes) {
        c.ws = (float *)fp4rt_cu_workspace(s, c.ws_bytes);
        if (!c.ws)
            return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: linear %s: no workspace of %zu bytes",
                                 l->module, c.ws_bytes);
    }
    c.what = l->module;
    return fp4rt_cu_linear_launch(&c, s->stream);
}

fp4rt_status fp4rt_cu_dequant_nvfp4(cudaStream_t stream, const uint8_t *packed,
                                    const uint8_t *scales, size_t n, uint16_t *out) {
    if (n % 16)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT,
                             "cuda: dequant of %zu elements (need a multiple of 16)", n);
    if ((uintptr_t)out % 4)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "cuda: dequant output not 4-byte aligned");
    if (n == 0) return FP4RT_OK;
    size_t pairs = n / 2, blocks = (pairs + 255) / 256;
    if (blocks > 65535) blocks = 65535; /* grid-stride beyond */
    dequant_nvfp4<<<(unsigned)blocks, 256, 0, stream>>>(packed, scales, pairs, (uint32_t *)out);
    return fp4rt_cu_check_launch("NVFP4 dequant");
}
