/* The arithmetic of the CUDA linear kernels (cu_linear.cu), as __host__
 * __device__ functions so that tests/cuda/test_cu_linear_host.cu runs it on the CPU
 * and compares it with the CPU backend: the per-16-byte-chunk dot products of
 * the matrix-vector kernels (one per weight format) and the fragment maps of
 * the tensor-core tiles (mma.sync m16n8k16, PTX ISA "Matrix fragments for
 * mma.m16n8k16"). Nothing here touches global memory layout beyond a chunk.
 *
 * Chunk = 16 bytes of one weight row: 32 NVFP4 elements (two blocks), 16 FP8,
 * 8 BF16/F16, 4 F32. The dot products return FP32 sums in a fixed order. */
#ifndef FP4RT_CU_LINEAR_MATH_CUH
#define FP4RT_CU_LINEAR_MATH_CUH

#include "cuda/cu_numfmt.cuh"

#include <vector_types.h>

/* Weight formats (mirror of fp4rt_wfmt in runtime/model/weights.h; checked by a
 * static_assert in cu_linear.cu). */
enum { CUW_BF16 = 0, CUW_F16 = 1, CUW_F32 = 2, CUW_FP8 = 3, CUW_NVFP4 = 4 };

namespace culin {

/* Elements of one 16-byte chunk per format. */
FP4RT_HD constexpr int chunk_elems(int fmt) {
    return fmt == CUW_NVFP4 ? 32 : fmt == CUW_FP8 ? 16 : fmt == CUW_F32 ? 4 : 8;
}

/* Four consecutive floats of x (16-byte aligned on the device). */
FP4RT_HD float4 ld_x4(const float *p) {
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const float4 *>(p));
#else
    return make_float4(p[0], p[1], p[2], p[3]);
#endif
}

FP4RT_HD float2 half2_bits_to_float2(uint32_t h2) {
#ifdef __CUDA_ARCH__
    return __half22float2(*reinterpret_cast<const __half2 *>(&h2));
#else
    return make_float2(cunf::f16_bits_to_f32((uint16_t)(h2 & 0xffffu)),
                       cunf::f16_bits_to_f32((uint16_t)(h2 >> 16)));
#endif
}

/* ---- matrix-vector chunk dot products --------------------------------------
 * acc[t] += dot(chunk, x_t[0 .. chunk_elems)) for the NT token rows
 * x_t = x + t * xs. `w` is the chunk as 4 little-endian words. */

/* NVFP4: per block of 16, sum_j e2m1(c_j) * x_j in FP32 (E2M1 via the F16 bit
 * trick, exact), then times the block scale e4m3(sb) * 2^14 (exact). sc2 holds
 * the two block scales (bits 0..7: elements 0..15, bits 8..15: 16..31). */
template <int NT>
FP4RT_HD void dot_nvfp4(const uint32_t w[4], uint32_t sc2, const float *x, size_t xs,
                        float acc[NT]) {
#pragma unroll
    for (int hb = 0; hb < 2; hb++) {
        float wf[16]; /* wf[i] = e2m1(element 16 hb + i) * 2^-14 */
#pragma unroll
        for (int h = 0; h < 2; h++) {
            uint32_t q = w[2 * hb + h];
#pragma unroll
            for (int s = 0; s < 4; s++) {
                float2 v = half2_bits_to_float2(cunf::e2m1x2_f16_scaled(q, s));
                wf[8 * h + cunf::e2m1x2_elem_lo(s)] = v.x;
                wf[8 * h + cunf::e2m1x2_elem_hi(s)] = v.y;
            }
        }
        float sc = cunf::e4m3_to_f32((sc2 >> (8 * hb)) & 0xffu) * FP4RT_E2M1_F16_FACTOR;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float *xt = x + (size_t)t * xs + 16 * hb;
            float p0 = 0.f, p1 = 0.f;
#pragma unroll
            for (int i = 0; i < 16; i += 4) {
                float4 xv = ld_x4(xt + i);
                p0 = fmaf(wf[i], xv.x, p0);
                p1 = fmaf(wf[i + 1], xv.y, p1);
                p0 = fmaf(wf[i + 2], xv.z, p0);
                p1 = fmaf(wf[i + 3], xv.w, p1);
            }
            acc[t] = fmaf(p0 + p1, sc, acc[t]);
        }
    }
}

/* FP8 E4M3 weights against already-quantized (E4M3-valued) FP32 activations:
 * products exact in FP32. The tensor scales are applied by the caller. */
template <int NT>
FP4RT_HD void dot_fp8(const uint32_t w[4], const float *x, size_t xs, float acc[NT]) {
    float wf[16];
#pragma unroll
    for (int i = 0; i < 4; i++) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
        float2 a = __half22float2(cunf::e4m3x2_to_half2(w[i] & 0xffffu));
        float2 b = __half22float2(cunf::e4m3x2_to_half2(w[i] >> 16));
        wf[4 * i] = a.x;
        wf[4 * i + 1] = a.y;
        wf[4 * i + 2] = b.x;
        wf[4 * i + 3] = b.y;
#else
#pragma unroll
        for (int j = 0; j < 4; j++)
            wf[4 * i + j] = cunf::e4m3_to_f32((w[i] >> (8 * j)) & 0xffu);
#endif
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float *xt = x + (size_t)t * xs;
        float p = 0.f;
#pragma unroll
        for (int i = 0; i < 16; i += 4) {
            float4 xv = ld_x4(xt + i);
            p = fmaf(wf[i], xv.x, p);
            p = fmaf(wf[i + 1], xv.y, p);
            p = fmaf(wf[i + 2], xv.z, p);
            p = fmaf(wf[i + 3], xv.w, p);
        }
        acc[t] += p;
    }
}

/* BF16 / F16 weights: 8 elements. */
template <int NT, bool BF16>
FP4RT_HD void dot_16bit(const uint32_t w[4], const float *x, size_t xs, float acc[NT]) {
    float wf[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (BF16) {
            wf[2 * i] = cunf::u2f(w[i] << 16);
            wf[2 * i + 1] = cunf::u2f(w[i] & 0xffff0000u);
        } else {
            float2 v = half2_bits_to_float2(w[i]);
            wf[2 * i] = v.x;
            wf[2 * i + 1] = v.y;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float *xt = x + (size_t)t * xs;
        float4 a = ld_x4(xt), b = ld_x4(xt + 4);
        float p = wf[0] * a.x;
        p = fmaf(wf[1], a.y, p);
        p = fmaf(wf[2], a.z, p);
        p = fmaf(wf[3], a.w, p);
        p = fmaf(wf[4], b.x, p);
        p = fmaf(wf[5], b.y, p);
        p = fmaf(wf[6], b.z, p);
        p = fmaf(wf[7], b.w, p);
        acc[t] += p;
    }
}

template <int NT>
FP4RT_HD void dot_f32(const uint32_t w[4], const float *x, size_t xs, float acc[NT]) {
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float4 a = ld_x4(x + (size_t)t * xs);
        float p = cunf::u2f(w[0]) * a.x;
        p = fmaf(cunf::u2f(w[1]), a.y, p);
        p = fmaf(cunf::u2f(w[2]), a.z, p);
        p = fmaf(cunf::u2f(w[3]), a.w, p);
        acc[t] += p;
    }
}

/* One weight element decoded to FP32 (the scalar paths): row bytes `r` of a row
 * of K elements, block scales `sb` of that row (NVFP4). Exact. */
FP4RT_HD float decode1(int fmt, const uint8_t *r, const uint8_t *sb, int k) {
    switch (fmt) {
    case CUW_BF16:
        return cunf::u2f((uint32_t)(r[2 * k] | (r[2 * k + 1] << 8)) << 16);
    case CUW_F16:
        return cunf::f16_bits_to_f32((uint16_t)(r[2 * k] | (r[2 * k + 1] << 8)));
    case CUW_F32:
        return cunf::u2f((uint32_t)r[4 * k] | ((uint32_t)r[4 * k + 1] << 8) |
                         ((uint32_t)r[4 * k + 2] << 16) | ((uint32_t)r[4 * k + 3] << 24));
    case CUW_FP8:
        return cunf::e4m3_to_f32(r[k]);
    default: {
        uint32_t c = (r[k >> 1] >> (4 * (k & 1))) & 15u;
        float e = cunf::f16_bits_to_f32((uint16_t)cunf::e2m1x2_f16_scaled(c, 0));
        return e * (cunf::e4m3_to_f32(sb[k >> 4]) * FP4RT_E2M1_F16_FACTOR);
    }
    }
}

/* ---- tensor-core tiles ------------------------------------------------------
 * mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: lane = 4 g + q.
 *   A (16 x 16, row-major), 4 registers of 2 elements: register r, half h holds
 *     A[g + 8 (r & 1)][2 q + h + 8 (r >> 1)];
 *   B (16 x 8, "col": stored here as Bs[n][k]), 2 registers: register r, half h
 *     holds B[k = 2 q + h + 8 r][n = g];
 *   C/D (16 x 8, FP32), 4 registers: register r holds C[g + 8 (r >> 1)][2 q + (r & 1)]. */
FP4RT_HD int frag_a_row(int lane, int r) {
    return (lane >> 2) + 8 * (r & 1);
}
FP4RT_HD int frag_a_col(int lane, int r, int h) {
    return 2 * (lane & 3) + h + 8 * (r >> 1);
}
FP4RT_HD int frag_b_k(int lane, int r, int h) {
    return 2 * (lane & 3) + h + 8 * r;
}
FP4RT_HD int frag_b_n(int lane) {
    return lane >> 2;
}
FP4RT_HD int frag_c_row(int lane, int r) {
    return (lane >> 2) + 8 * (r >> 1);
}
FP4RT_HD int frag_c_col(int lane, int r) {
    return 2 * (lane & 3) + (r & 1);
}

/* GEMM block tile: BM token rows x BN output columns, K steps of BK; 4 warps in
 * 2 x 2, each 32 x 64 (2 x GEMM_WN mma tiles of 16 x 8). Shared tiles are
 * [rows][GEMM_LDS] 16-bit elements: BK plus 8 of padding, so that the 32-bit
 * fragment loads of a warp hit 32 different banks (row stride 20 words). */
constexpr int GEMM_BM = 64, GEMM_BN = 128, GEMM_BK = 32, GEMM_LDS = GEMM_BK + 8, GEMM_THREADS = 128;
constexpr int GEMM_WN = GEMM_BN / 2 / 8; /* n8 tiles per warp */

/* Shared-memory element offset of register r, half 0 of the A fragment of the
 * 16 x 16 sub-tile at (row0, k0) (and the B fragment at (n0, k0)). */
FP4RT_HD int smem_a_off(int lane, int r, int row0, int k0) {
    return (row0 + frag_a_row(lane, r)) * GEMM_LDS + k0 + frag_a_col(lane, r, 0);
}
FP4RT_HD int smem_b_off(int lane, int r, int n0, int k0) {
    return (n0 + frag_b_n(lane)) * GEMM_LDS + k0 + frag_b_k(lane, r, 0);
}

/* ---- kernel bodies, written for one thread with explicit indices so that the
 * host test runs whole blocks ------------------------------------------------- */

/* 16 bytes of a weight row, not kept in L1 (each weight is read once per step). */
FP4RT_HD uint4 ld_stream16(const void *p) {
#ifdef __CUDA_ARCH__
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
#else
    uint4 v;
    memcpy(&v, p, 16);
    return v;
#endif
}

FP4RT_HD uint32_t ld_u16(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const unsigned short *>(p));
#else
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
#endif
}

struct gemv_args {
    const uint8_t *w;  /* row n at w + n * row_bytes */
    const uint8_t *sb; /* NVFP4 block scales, row n at sb + n * (K / 16) */
    const float *x;    /* token row t at x + t * xs */
    float *y;          /* token row t at y + t * ys, column n */
    size_t xs, ys, row_bytes;
    int N, K, nt;
    float post;
};

#define GEMV_WARPS 4 /* warps per block */
/* Output rows per warp: fewer when several tokens share a pass (registers). */
template <int NT> FP4RT_HD constexpr int gemv_rpw() {
    return NT <= 2 ? 4 : 2;
}

/* The matrix-vector kernel's work for lane `lane` of the warp that owns output
 * rows row0 .. row0 + RPW - 1: chunks lane, lane + 32, ... of each row, partial
 * sums in acc (reduced across the warp by the caller). Requires row_bytes % 16
 * == 0, w 16-byte aligned, x rows 16-byte aligned. Rows past N are clamped to
 * N - 1 (loads stay inside W; their sums are not written). */
template <int FMT, int NT>
FP4RT_HD void gemv_lane(const gemv_args &a, int row0, int lane, float (&acc)[gemv_rpw<NT>()][NT]) {
    constexpr int RPW = gemv_rpw<NT>(), EL = chunk_elems(FMT);
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++)
            acc[r][t] = 0.f;
    const int nchunks = (int)(a.row_bytes / 16);
    const size_t sb_row = (size_t)a.K / 16;
#pragma unroll 2
    for (int c = lane; c < nchunks; c += 32) {
        uint4 wv[RPW];
        uint32_t sc[RPW];
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            int n = row0 + r < a.N ? row0 + r : a.N - 1;
            wv[r] = ld_stream16(a.w + (size_t)n * a.row_bytes + (size_t)c * 16);
            sc[r] = FMT == CUW_NVFP4 ? ld_u16(a.sb + (size_t)n * sb_row + 2 * (size_t)c) : 0u;
        }
        const float *xc = a.x + (size_t)c * EL;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            const uint32_t w4[4] = {wv[r].x, wv[r].y, wv[r].z, wv[r].w};
            if (FMT == CUW_NVFP4)
                dot_nvfp4<NT>(w4, sc[r], xc, a.xs, acc[r]);
            else if (FMT == CUW_FP8)
                dot_fp8<NT>(w4, xc, a.xs, acc[r]);
            else if (FMT == CUW_BF16)
                dot_16bit<NT, true>(w4, xc, a.xs, acc[r]);
            else if (FMT == CUW_F16)
                dot_16bit<NT, false>(w4, xc, a.xs, acc[r]);
            else
                dot_f32<NT>(w4, xc, a.xs, acc[r]);
        }
    }
}

/* The scalar matrix-vector kernel's lane sum for row n, token row x (any
 * alignment, any K; NVFP4: K % 16 == 0). */
template <int FMT>
FP4RT_HD float gemv_scalar_lane(const gemv_args &a, int n, const float *x, int lane) {
    const uint8_t *r = a.w + (size_t)n * a.row_bytes;
    const uint8_t *sb = FMT == CUW_NVFP4 ? a.sb + (size_t)n * (a.K / 16) : nullptr;
    float acc = 0.f;
    for (int k = lane; k < a.K; k += 32)
        acc = fmaf(decode1(FMT, r, sb, k), x[k], acc);
    return acc;
}

/* The GEMM reads activations staged once per call (act_stage in cu_linear.cu)
 * in the operand format: rows of GEMM_KPAD-padded K elements, zeros past K, so
 * that every K step of a row is whole 16-byte chunks. */
constexpr int GEMM_KPAD = 64;
FP4RT_HD size_t gemm_staged_ld(int K, int elem_bytes) {
    return ((size_t)K + GEMM_KPAD - 1) / GEMM_KPAD * GEMM_KPAD * elem_bytes;
}

struct gemm_args {
    const uint8_t *w, *sb;
    const uint8_t *xa; /* staged activations: row m at xa + m * xa_ld (bytes, a multiple of 16) */
    float *y;
    size_t xa_ld, ys, row_bytes;
    int M, N, K;
    int w_vec; /* rows 16-byte aligned: row_bytes % 16 == 0 and w aligned */
    float post;
};

/* Two floats -> the operand type (F16 or BF16, round to nearest even). */
FP4RT_HD uint32_t pack_op(float lo, float hi, bool bf16) {
    if (bf16)
        return (uint32_t)cunf::f32_to_bf16_bits(lo) | ((uint32_t)cunf::f32_to_bf16_bits(hi) << 16);
    return (uint32_t)cunf::f32_to_f16_bits(lo) | ((uint32_t)cunf::f32_to_f16_bits(hi) << 16);
}

/* Staged operand formats, and one activation staged (FP8 W8A8: quantized first
 * as the CPU does, e4m3(x / input_scale), then exact in every format). */
enum { STAGE_F16 = 0, STAGE_BF16 = 1, STAGE_E4M3 = 2 };
FP4RT_HD uint32_t stage_elem(int out, float v, int fp8, float input_scale) {
    if (fp8) v = cunf::round_e4m3(v / input_scale);
    return out == STAGE_F16    ? cunf::f32_to_f16_bits(v)
           : out == STAGE_BF16 ? cunf::f32_to_bf16_bits(v)
                               : cunf::f32_to_e4m3_sat(v);
}

FP4RT_HD uint4 ld_act16(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const uint4 *>(p));
#else
    uint4 v;
    memcpy(&v, p, 16);
    return v;
#endif
}

/* A tile, thread tid's share: staged rows m0.., columns k0..k0+BK-1 (16-bit
 * operands), zeros past M. */
FP4RT_HD void gemm_load_a(const gemm_args &a, uint16_t *As, int m0, int k0, int tid) {
#pragma unroll
    for (int i = 0; i < GEMM_BM * GEMM_BK / 8 / GEMM_THREADS; i++) {
        int idx = tid + i * GEMM_THREADS, row = idx >> 2, c = idx & 3;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (m0 + row < a.M)
            v = ld_act16(a.xa + (size_t)(m0 + row) * a.xa_ld + (size_t)(k0 + 8 * c) * 2);
        *reinterpret_cast<uint4 *>(As + row * GEMM_LDS + 8 * c) = v;
    }
}

/* B tile, thread tid's share: weight rows n0..n0+BN-1, columns k0..k0+BK-1,
 * decoded to the operand type (exact for every format routed here); zeros past
 * N and K. Whole 16-byte chunks use one load; the rest goes element by element. */
template <int FMT, bool BF16>
FP4RT_HD void gemm_load_b(const gemm_args &a, uint16_t *Bs, int n0, int k0, int tid) {
    if (FMT == CUW_NVFP4) { /* BN rows x 16 bytes: one row per thread */
        if (tid >= GEMM_BN) return;
        int n = n0 + tid;
        uint32_t out[16];
        if (n < a.N && a.w_vec && k0 + 32 <= a.K) {
            uint4 q = ld_stream16(a.w + (size_t)n * a.row_bytes + k0 / 2);
            uint32_t sc2 = ld_u16(a.sb + (size_t)n * (a.K / 16) + k0 / 16);
            const uint32_t w4[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
            for (int wi = 0; wi < 4; wi++) { /* word wi: elements 8 wi .. 8 wi + 7 */
                float s =
                    cunf::e4m3_to_f32((sc2 >> (8 * (wi >> 1))) & 0xffu) * FP4RT_E2M1_F16_FACTOR;
                float e[8];
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    float2 f = half2_bits_to_float2(cunf::e2m1x2_f16_scaled(w4[wi], j));
                    e[cunf::e2m1x2_elem_lo(j)] = f.x * s;
                    e[cunf::e2m1x2_elem_hi(j)] = f.y * s;
                }
#pragma unroll
                for (int j = 0; j < 4; j++)
                    out[4 * wi + j] = pack_op(e[2 * j], e[2 * j + 1], BF16);
            }
        } else {
            const uint8_t *r = a.w + (size_t)(n < a.N ? n : 0) * a.row_bytes;
            const uint8_t *sb = a.sb + (size_t)(n < a.N ? n : 0) * (a.K / 16);
#pragma unroll 1
            for (int j = 0; j < 16; j++) {
                int k = k0 + 2 * j;
                float lo = n < a.N && k < a.K ? decode1(CUW_NVFP4, r, sb, k) : 0.f;
                float hi = n < a.N && k + 1 < a.K ? decode1(CUW_NVFP4, r, sb, k + 1) : 0.f;
                out[j] = pack_op(lo, hi, BF16);
            }
        }
        uint4 *d = reinterpret_cast<uint4 *>(Bs + tid * GEMM_LDS);
#pragma unroll
        for (int j = 0; j < 4; j++)
            d[j] = make_uint4(out[4 * j], out[4 * j + 1], out[4 * j + 2], out[4 * j + 3]);
    } else if (FMT == CUW_BF16 || FMT == CUW_F16) { /* BN rows x 4 chunks of 8 elements */
#pragma unroll
        for (int i = 0; i < GEMM_BN * 4 / GEMM_THREADS; i++) {
            int idx = tid + i * GEMM_THREADS, row = idx >> 2, n = n0 + row, k = k0 + 8 * (idx & 3);
            uint4 v = make_uint4(0, 0, 0, 0);
            if (n < a.N) {
                const uint8_t *r = a.w + (size_t)n * a.row_bytes;
                if (a.w_vec && k + 8 <= a.K)
                    v = ld_stream16(r + (size_t)k * 2);
                else {
                    uint32_t e[4] = {0, 0, 0, 0};
                    for (int j = 0; j < 8 && k + j < a.K; j++)
                        e[j >> 1] |= (uint32_t)(r[2 * (k + j)] | (r[2 * (k + j) + 1] << 8))
                                     << (16 * (j & 1));
                    v = make_uint4(e[0], e[1], e[2], e[3]);
                }
            }
            *reinterpret_cast<uint4 *>(Bs + row * GEMM_LDS + 8 * (idx & 3)) = v;
        }
    } else if (FMT == CUW_FP8) { /* BN rows x 2 chunks of 16 elements; F16 operands */
#pragma unroll
        for (int it = 0; it < GEMM_BN * 2 / GEMM_THREADS; it++) {
            int idx = tid + it * GEMM_THREADS, row = idx >> 1, n = n0 + row,
                k = k0 + 16 * (idx & 1);
            uint32_t q[4] = {0, 0, 0, 0};
            if (n < a.N) {
                const uint8_t *r = a.w + (size_t)n * a.row_bytes;
                if (a.w_vec && k + 16 <= a.K) {
                    uint4 v = ld_stream16(r + k);
                    q[0] = v.x, q[1] = v.y, q[2] = v.z, q[3] = v.w;
                } else { /* a zero byte decodes to +0: columns past K contribute nothing */
                    for (int j = 0; j < 16 && k + j < a.K; j++)
                        q[j >> 2] |= (uint32_t)r[k + j] << (8 * (j & 3));
                }
            }
            uint32_t out[8];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                __half2 lo = cunf::e4m3x2_to_half2(q[j] & 0xffffu),
                        hi = cunf::e4m3x2_to_half2(q[j] >> 16);
                memcpy(&out[2 * j], &lo, 4);
                memcpy(&out[2 * j + 1], &hi, 4);
            }
            uint4 *d = reinterpret_cast<uint4 *>(Bs + row * GEMM_LDS + 16 * (idx & 1));
            d[0] = make_uint4(out[0], out[1], out[2], out[3]);
            d[1] = make_uint4(out[4], out[5], out[6], out[7]);
        }
    }
}

/* Fragments of warp tile (wm, wn), k-slice kk, for lane `lane`. */
FP4RT_HD void gemm_frags(const uint16_t *As, const uint16_t *Bs, int wm, int wn, int kk, int lane,
                         uint32_t (&af)[2][4], uint32_t (&bf)[GEMM_WN][2]) {
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int r = 0; r < 4; r++)
            af[i][r] =
                *reinterpret_cast<const uint32_t *>(As + smem_a_off(lane, r, wm + 16 * i, kk));
#pragma unroll
    for (int j = 0; j < GEMM_WN; j++)
#pragma unroll
        for (int r = 0; r < 2; r++)
            bf[j][r] =
                *reinterpret_cast<const uint32_t *>(Bs + smem_b_off(lane, r, wn + 8 * j, kk));
}

/* The warp tile's origin within the block tile. */
FP4RT_HD int gemm_warp_m(int warp) {
    return (warp >> 1) * 32;
}
FP4RT_HD int gemm_warp_n(int warp) {
    return (warp & 1) * (GEMM_BN / 2);
}

/* Epilogue for lane `lane` of warp tile (wm, wn) of block (m0, n0). */
FP4RT_HD void gemm_store(const gemm_args &a, const float (&acc)[2][GEMM_WN][4], int m0, int n0,
                         int wm, int wn, int lane) {
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < GEMM_WN; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int m = m0 + wm + 16 * i + frag_c_row(lane, r),
                    n = n0 + wn + 8 * j + frag_c_col(lane, r);
                if (m < a.M && n < a.N) a.y[(size_t)m * a.ys + n] = acc[i][j][r] * a.post;
            }
}

/* ---- FP8 GEMM (sm_89+): mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 ----
 * Both operands E4M3 bytes (the weights as stored, the activations as the
 * quantizer rounded them: exact), FP32 accumulation. Fragments of 8-bit
 * operands: register r of A holds A[g + 8 (r & 1)][4 q + 16 (r >> 1) + byte];
 * register r of B holds B[k = 4 q + 16 r + byte][n = g]; C as above. Shared
 * tiles are [rows][GEMM8_LDS] bytes: BK8 plus 16 of padding (row stride 20
 * words: conflict-free fragment loads, 16-byte aligned rows). */
constexpr int GEMM8_BK = 64, GEMM8_LDS = GEMM8_BK + 16;

FP4RT_HD int frag8_a_row(int lane, int r) {
    return (lane >> 2) + 8 * (r & 1);
}
FP4RT_HD int frag8_a_col(int lane, int r) {
    return 4 * (lane & 3) + 16 * (r >> 1);
}
FP4RT_HD int frag8_b_k(int lane, int r) {
    return 4 * (lane & 3) + 16 * r;
}

FP4RT_HD int smem8_a_off(int lane, int r, int row0, int k0) {
    return (row0 + frag8_a_row(lane, r)) * GEMM8_LDS + k0 + frag8_a_col(lane, r);
}
FP4RT_HD int smem8_b_off(int lane, int r, int n0, int k0) {
    return (n0 + frag_b_n(lane)) * GEMM8_LDS + k0 + frag8_b_k(lane, r);
}

/* A tile (E4M3 bytes): staged rows m0.., columns k0..k0+BK8-1; zeros past M. */
FP4RT_HD void gemm8_load_a(const gemm_args &a, uint8_t *As, int m0, int k0, int tid) {
#pragma unroll
    for (int i = 0; i < GEMM_BM * GEMM8_BK / 16 / GEMM_THREADS; i++) {
        int idx = tid + i * GEMM_THREADS, row = idx >> 2, c = idx & 3;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (m0 + row < a.M) v = ld_act16(a.xa + (size_t)(m0 + row) * a.xa_ld + k0 + 16 * c);
        *reinterpret_cast<uint4 *>(As + row * GEMM8_LDS + 16 * c) = v;
    }
}

/* B tile (E4M3 bytes as stored): weight rows n0..n0+BN-1, columns k0..k0+BK8-1;
 * zero bytes (+0) past N and K. */
FP4RT_HD void gemm8_load_b(const gemm_args &a, uint8_t *Bs, int n0, int k0, int tid) {
#pragma unroll
    for (int i = 0; i < GEMM_BN * GEMM8_BK / 16 / GEMM_THREADS; i++) {
        int idx = tid + i * GEMM_THREADS, row = idx >> 2, n = n0 + row, k = k0 + 16 * (idx & 3);
        uint4 v = make_uint4(0, 0, 0, 0);
        if (n < a.N) {
            const uint8_t *r = a.w + (size_t)n * a.row_bytes;
            if (a.w_vec && k + 16 <= a.K)
                v = ld_stream16(r + k);
            else {
                uint32_t q[4] = {0, 0, 0, 0};
                for (int j = 0; j < 16 && k + j < a.K; j++)
                    q[j >> 2] |= (uint32_t)r[k + j] << (8 * (j & 3));
                v = make_uint4(q[0], q[1], q[2], q[3]);
            }
        }
        *reinterpret_cast<uint4 *>(Bs + row * GEMM8_LDS + 16 * (idx & 3)) = v;
    }
}

FP4RT_HD void gemm8_frags(const uint8_t *As, const uint8_t *Bs, int wm, int wn, int kk, int lane,
                          uint32_t (&af)[2][4], uint32_t (&bf)[GEMM_WN][2]) {
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int r = 0; r < 4; r++)
            af[i][r] =
                *reinterpret_cast<const uint32_t *>(As + smem8_a_off(lane, r, wm + 16 * i, kk));
#pragma unroll
    for (int j = 0; j < GEMM_WN; j++)
#pragma unroll
        for (int r = 0; r < 2; r++)
            bf[j][r] =
                *reinterpret_cast<const uint32_t *>(Bs + smem8_b_off(lane, r, wn + 8 * j, kk));
}

} // namespace culin

#endif
