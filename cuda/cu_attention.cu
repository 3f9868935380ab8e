/* CUDA kernels of gated full attention: partial NeoX RoPE, KV-cache append and
 * causal GQA softmax attention (split decoding for one token and for each row
 * of a verify step, fp4rt_step.decode_rows; a tiled kernel for prefill). The
 * numerics contract of attention (runtime/backend/backend.h,
 * cu_canon.cuh): per (row, query head) the online softmax over positions in
 * order, scores d = sum_e q_e k_e in e order then d * scale, exp from
 * canon_math.h, the contract's decode splits and merge, no fused multiply-add:
 * the bits of runtime/backend/cpu/cpu_attention.c. FP32 throughout (no tensor cores).
 * RoPE reads cos / sin from a table the host builds with the CPU's cosf / sinf
 * (fp4rt_cu_rope_table), so its bits are the CPU's too.
 *
 * Positions come from s->d_step->pos0 on the device; grids depend only on the
 * shapes (n_tokens, heads, decode_rows), so a decode or verify step can be
 * captured in a CUDA graph.
 *
 * KV cache (sb->kv): [n_attn][2 (K, V)][n_ctx][n_kv_heads][head_dim] of BF16, F32
 * or FP8 E4M3 (FP8 holds K / k_scale, V / v_scale). */
#include "cuda/cu_attn_index.h"
#include "cuda/cu_canon.cuh"
#include "cuda/cu_ops.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdlib.h>

namespace {

enum { KV_BF16 = 0, KV_F32 = 1, KV_FP8 = 2 };

constexpr int ROPE_MAX_HALF = 512; /* rotary_dim <= 1024, as the CPU */
constexpr int ATTN_MAX_HD = 256;   /* head_dim <= 256 (any size: lanes past it are masked) */
constexpr int ATTN_MAX_GROUP = 16; /* query heads per KV head */
constexpr int DEC_THREADS = 128;   /* decode block: 4 warps */
constexpr int DEC_TK = 16;         /* decode: positions per tile */
constexpr int PRE_BQ = 16, PRE_BK = 32, PRE_THREADS = 128; /* prefill: rows, positions per tile */
constexpr int PRE_LG = PRE_THREADS / PRE_BQ;               /* prefill: threads per row */

float *view_base(const fp4rt_cu_step *s, fp4rt_view v) {
    return (float *)s->sb->scratch->dev + s->p->buf_offset[v.buf] + v.col;
}

int kv_code(fp4rt_kv_type t) { return t == FP4RT_KV_F32 ? KV_F32 : t == FP4RT_KV_FP8 ? KV_FP8 : KV_BF16; }
/* bytes per cache element (the module does not link the runtime's fp4rt_kv_elem_size) */
size_t kv_elem_bytes(fp4rt_kv_type t) { return t == FP4RT_KV_F32 ? 4 : t == FP4RT_KV_FP8 ? 1 : 2; }

/* Element idx of the cache as FP32 (scale: the layer's FP8 k_scale / v_scale). */
template <int KV> __device__ __forceinline__ float kv_load(const void *kv, size_t idx, float scale) {
    if (KV == KV_F32) return ((const float *)kv)[idx];
    if (KV == KV_BF16) return __uint_as_float((uint32_t)((const uint16_t *)kv)[idx] << 16);
    __half_raw h = __nv_cvt_fp8_to_halfraw(((const __nv_fp8_storage_t *)kv)[idx], __NV_E4M3);
    return __half2float(__half(h)) * scale;
}

/* As the CPU's kv_store: F32 copy, BF16 RNE, FP8 e4m3 saturating of v / scale. */
template <int KV> __device__ __forceinline__ void kv_store(void *kv, size_t idx, float v, float scale) {
    if (KV == KV_F32)
        ((float *)kv)[idx] = v;
    else if (KV == KV_BF16)
        ((uint16_t *)kv)[idx] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    else
        ((__nv_fp8_storage_t *)kv)[idx] = __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
}

/* ---- RoPE ---- */

struct rope_args {
    float *x, *y;
    const float *tab; /* [n_pos][rotary_dim / 2][2] (cos, sin): fp4rt_cu_rope_table */
    const int32_t *rpos; /* [T][3] rotary positions (t, h, w), or NULL: pos0 + t */
    int stride;       /* floats between rows */
    int n_groups, group_dim, group_stride, rotary_dim, n_pos;
    int mode, s1, s2; /* fp4rt_rope_mode, mrope_section[1], [2] */
};

/* One block per row t; thread j handles frequency j for every group. Frequency
 * j turns by the position component of fp4rt_rope_component (backend.h); cos /
 * sin of that position come from the host-built table (the CPU's cosf / sinf
 * bits); the rotation rounds each product and sum, as the CPU. */
__global__ void rope_kernel(const __grid_constant__ rope_args a, const fp4rt_cu_step_info *st) {
    int t = blockIdx.x, half = a.rotary_dim / 2;
    const float *x = a.x + (size_t)t * a.stride;
    float *y = a.y + (size_t)t * a.stride;
    for (int j = threadIdx.x; j < half; j += blockDim.x) {
        int comp = a.mode == FP4RT_ROPE_VISION_2D ? (j < a.rotary_dim / 4 ? 1 : 2)
                   : j % 3 == 1 && j < 3 * a.s1    ? 1
                   : j % 3 == 2 && j < 3 * a.s2    ? 2
                                                   : 0;
        int pos = a.rpos ? a.rpos[3 * t + comp] : st->pos0 + t;
        if (pos < 0 || pos >= a.n_pos) continue; /* the core rejects such steps; never read past the table */
        const float *cs = a.tab + (size_t)pos * half * 2;
        float c = cs[2 * j], sn = cs[2 * j + 1];
        for (int g = 0; g < a.n_groups; g++) {
            size_t o = (size_t)g * a.group_stride;
            float x1 = x[o + j], x2 = x[o + j + half];
            /* no FMA contraction: the CPU rounds each product */
            y[o + j] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, sn));
            y[o + j + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, sn));
        }
    }
    if (x != y) /* lanes past rotary_dim pass through */
        for (int g = 0; g < a.n_groups; g++)
            for (int i = a.rotary_dim + threadIdx.x; i < a.group_dim; i += blockDim.x)
                y[(size_t)g * a.group_stride + i] = x[(size_t)g * a.group_stride + i];
}

/* ---- KV append ---- */

/* Block (t, which): row pos0 + t of K (which 0, from x) or V (1, from z). */
template <int KV>
__global__ void kv_append_kernel(const float *x, const float *z, int stride, void *kv_layer, int n_ctx,
                                 int n, float k_scale, float v_scale, const fp4rt_cu_step_info *st) {
    int t = blockIdx.x, which = blockIdx.y, pos = st->pos0 + t;
    if (pos >= n_ctx) return; /* the core rejects such steps; never write past the cache */
    const float *src = (which ? z : x) + (size_t)t * stride;
    size_t row = ((size_t)which * n_ctx + pos) * n;
    float scale = which ? v_scale : k_scale;
    for (int e = threadIdx.x; e < n; e += blockDim.x) kv_store<KV>(kv_layer, row + e, src[e], scale);
}

/* ---- attention, decode (one token, or each row of a verify step): the contract's splits ---- */

struct attn_args {
    const float *q; /* row 0, head 0 */
    float *y;
    int stride, q_group_stride, n_heads, n_kv_heads, head_dim, n_ctx;
    int n_splits;   /* decode: fp4rt_attn_splits(n_ctx, 1) */
    size_t row_part; /* decode: floats between the partials of consecutive rows (verify steps) */
    const void *kv; /* this layer: [2][n_ctx][n_kv_heads][head_dim] */
    float scale, k_scale, v_scale;
    float *part; /* decode partials, fp4rt_cu_attn_part_off */
};

/* The contract's online-softmax update of one head over the n scores sc[0, n)
 * of a tile: m, l carry over; per position it records the factor acc is
 * scaled by first (1 when the maximum stays: acc * 1 is acc) and the weight w
 * of the position's value. */
__device__ __forceinline__ void online_update(const float *sc, int n, float *m, float *l, float *corr, float *w) {
    for (int k = 0; k < n; k++) {
        float s = sc[k], c = 1.0f;
        if (s > *m) {
            c = fp4rt_cexp(*m - s);
            *l = *l * c;
            *m = s;
        }
        float wk = fp4rt_cexp(s - *m);
        *l = *l + wk;
        corr[k] = c;
        w[k] = wk;
    }
}

/* K or V rows kt .. kt + n - 1 of KV head kvh (base: its element offset in the
 * cache's K or V half) decoded into dst [n][hp], the block's nt threads
 * striding over the n * hd elements. */
template <int KV>
__device__ __forceinline__ void load_kv_tile(float *dst, const void *kv, size_t base, size_t kv_row, int kt, int n,
                                             int hd, int hp, float scale, int tid, int nt) {
    for (int i = tid; i < n * hd; i += nt) {
        int c = i / hd, e = i % hd;
        dst[c * hp + e] = kv_load<KV>(kv, base + (size_t)(kt + c) * kv_row + e, scale);
    }
}

/* Scores of nq query rows q [nq][hp] against n key rows k [n][hp]: out[row *
 * out_stride + c] = (sum_e q_e k_e, sequential in e) * scale, the contract's
 * dot (backend.h); the block's nt threads stride over the nq * n pairs. */
__device__ __forceinline__ void score_tile(const float *q, int nq, const float *k, int n, int hd, int hp,
                                           float scale, float *out, int out_stride, int tid, int nt) {
    for (int i = tid; i < nq * n; i += nt) {
        int row = i / n, c = i % n;
        float d = 0;
        for (int e = 0; e < hd; e++) d = d + q[row * hp + e] * k[c * hp + e];
        out[row * out_stride + c] = d * scale;
    }
}

/* Block (split, kv head, row t): row t of the step (0 for a 1-token step; a
 * verify step's rows each see positions 0 .. pos0 + t, in the decode spans of
 * that length, as a 1-token step at pos0 + t) over the positions of the
 * split's span in tiles of DEC_TK,
 * for the G query heads of the KV head at once (K / V rows loaded once for all
 * of them). Per tile: the K rows go to shared memory; thread i scores pairs
 * (head, position) i, i + 128, ..., each a sequential dot over e; thread g < G
 * runs head g's online update over the tile in position order; thread tid owns
 * output lanes tid and tid + 128 of every head and applies the factors and
 * weights in position order. The record written is the span's (m, l, acc). */
template <int KV> __global__ void __launch_bounds__(DEC_THREADS) attn_decode_kernel(const attn_args a, const fp4rt_cu_step_info *st) {
    constexpr int TK = DEC_TK, EV = ATTN_MAX_HD / DEC_THREADS, HP = ATTN_MAX_HD + 1;
    __shared__ float qs[ATTN_MAX_GROUP * HP], ks[TK * HP]; /* rows padded: hd + 1 floats apart */
    __shared__ float sc[ATTN_MAX_GROUP][TK], cr[ATTN_MAX_GROUP][TK], wt[ATTN_MAX_GROUP][TK];
    int split = blockIdx.x, kvh = blockIdx.y, t = blockIdx.z, tid = threadIdx.x;
    int hd = a.head_dim, hp = hd + 1, G = a.n_heads / a.n_kv_heads;
    if (split >= a.n_splits) return; /* past the split count: the merge does not read it */
    int len = min(st->pos0 + t + 1, a.n_ctx), p0, p1; /* (the core rejects steps past n_ctx) */
    const float *q = a.q + (size_t)t * a.stride;
    float *part = a.part + (size_t)t * a.row_part;
    fp4rt_cu_attn_span_range(len, a.n_splits, split, &p0, &p1);
    size_t kv_row = (size_t)a.n_kv_heads * hd;
    const size_t k_base = (size_t)kvh * hd, v_base = (size_t)a.n_ctx * kv_row + k_base;

    for (int i = tid; i < G * hd; i += DEC_THREADS)
        qs[i / hd * hp + i % hd] = q[(size_t)(kvh * G + i / hd) * a.q_group_stride + i % hd];
    float m = -INFINITY, l = 0; /* thread g < G: running max and sum of head g */
    float acc[ATTN_MAX_GROUP][EV];
#pragma unroll
    for (int g = 0; g < ATTN_MAX_GROUP; g++)
#pragma unroll
        for (int j = 0; j < EV; j++) acc[g][j] = 0;

    for (int kt = p0; kt < p1; kt += TK) {
        int n = min(TK, p1 - kt);
        __syncthreads(); /* qs written / the previous tile consumed */
        load_kv_tile<KV>(ks, a.kv, k_base, kv_row, kt, n, hd, hp, a.k_scale, tid, DEC_THREADS);
        __syncthreads();
        score_tile(qs, G, ks, n, hd, hp, a.scale, &sc[0][0], TK, tid, DEC_THREADS);
        __syncthreads();
        if (tid < G) online_update(sc[tid], n, &m, &l, cr[tid], wt[tid]);
        __syncthreads();
#pragma unroll
        for (int j = 0; j < EV; j++) {
            int e = tid + DEC_THREADS * j;
            if (e >= hd) break;
            for (int k = 0; k < n; k++) {
                float v = kv_load<KV>(a.kv, v_base + (size_t)(kt + k) * kv_row + e, a.v_scale);
#pragma unroll
                for (int g = 0; g < ATTN_MAX_GROUP; g++)
                    if (g < G) {
                        acc[g][j] = acc[g][j] * cr[g][k];
                        acc[g][j] = acc[g][j] + wt[g][k] * v;
                    }
            }
        }
    }
    /* an empty span leaves the neutral record: m = -inf, l = 0, acc = 0 */
#pragma unroll
    for (int g = 0; g < ATTN_MAX_GROUP; g++) {
        if (g >= G) break;
        float *rec = part + fp4rt_cu_attn_part_off(kvh * G + g, split, hd);
#pragma unroll
        for (int j = 0; j < EV; j++)
            if (tid + DEC_THREADS * j < hd) rec[tid + DEC_THREADS * j] = acc[g][j];
    }
    if (tid < G) {
        float *rec = part + fp4rt_cu_attn_part_off(kvh * G + tid, split, hd);
        rec[hd] = m;
        rec[hd + 1] = l;
    }
}

/* Block (h, row t): output of query head h of row t from the records of the
 * n_splits splits, the contract's merge (fp4rt_cu_attn_merge_lane). */
__global__ void attn_merge_kernel(const attn_args a) {
    int h = blockIdx.x, t = blockIdx.y, hd = a.head_dim;
    const float *part = a.part + (size_t)t * a.row_part + fp4rt_cu_attn_part_off(h, 0, hd);
    for (int e = threadIdx.x; e < hd; e += blockDim.x)
        a.y[(size_t)t * a.stride + (size_t)h * hd + e] = fp4rt_cu_attn_merge_lane(part, a.n_splits, hd, e);
}

/* ---- attention, prefill (T > 1): one span per row ---- */

/* Block (query tile, head h): rows t0 .. t0 + 15, each over its positions 0 ..
 * pos0 + t in tiles of 32 positions (the contract's single span). Per tile:
 * thread i scores pairs (row, position) i, i + 128, ..., each a sequential dot
 * over e; thread r < 16 runs row r's online update over the positions of the
 * tile it sees, in order; thread (r = tid / 8, g = tid % 8) owns output lanes
 * g + 8 j of row r and applies the factors and weights in position order. y =
 * acc / l. Dynamic shared memory (prefill_smem): Q [16][hd + 1], K then V
 * [32][hd + 1] (rows padded against bank conflicts), scores then weights and
 * factors [16][33] each, l and the visible count per row [16] each. */
template <int KV> __global__ void __launch_bounds__(PRE_THREADS) attn_prefill_kernel(const attn_args a, int T, const fp4rt_cu_step_info *st) {
    constexpr int RJ = ATTN_MAX_HD / PRE_LG, SP = PRE_BK + 1; /* output lanes per thread; score row pitch */
    FP4RT_CU_DYN_SMEM(float, smem);
    int hd = a.head_dim, hp = hd + 1, h = blockIdx.y, t0 = blockIdx.x * PRE_BQ;
    int kvh = h / (a.n_heads / a.n_kv_heads), tid = threadIdx.x, r = tid / PRE_LG, lg = tid % PRE_LG;
    int pos0 = st->pos0;
    float *Qs = smem, *KVs = Qs + PRE_BQ * hp, *Ws = KVs + PRE_BK * hp, *Cs = Ws + PRE_BQ * SP;
    float *Ls = Cs + PRE_BQ * SP, *Nv = Ls + PRE_BQ;
    size_t kv_row = (size_t)a.n_kv_heads * hd;
    const size_t k_base = (size_t)kvh * hd, v_base = (size_t)a.n_ctx * kv_row + k_base;

    for (int i = tid; i < PRE_BQ * hd; i += PRE_THREADS) {
        int row = i / hd, e = i % hd;
        Qs[row * hp + e] = t0 + row < T ? a.q[(size_t)(t0 + row) * a.stride + (size_t)h * a.q_group_stride + e] : 0.0f;
    }
    float m = -INFINITY, l = 0, acc[RJ]; /* m, l: thread tid < 16 for row tid */
#pragma unroll
    for (int j = 0; j < RJ; j++) acc[j] = 0;
    int n_keys = min(fp4rt_cu_tile_keys(pos0, T, t0, PRE_BQ), a.n_ctx);
    for (int kt = 0; kt < n_keys; kt += PRE_BK) {
        int n = min(PRE_BK, n_keys - kt);
        __syncthreads(); /* Qs written / the previous V tile consumed */
        load_kv_tile<KV>(KVs, a.kv, k_base, kv_row, kt, n, hd, hp, a.k_scale, tid, PRE_THREADS);
        __syncthreads();
        score_tile(Qs, PRE_BQ, KVs, n, hd, hp, a.scale, Ws, SP, tid, PRE_THREADS);
        __syncthreads();
        if (tid < PRE_BQ) {
            /* row t sees positions kt .. pos0 + t of this tile: a prefix */
            int t = t0 + tid, nv = t < T ? min(n, pos0 + t + 1 - kt) : 0;
            nv = max(nv, 0);
            online_update(Ws + tid * SP, nv, &m, &l, Cs + tid * SP, Ws + tid * SP);
            Nv[tid] = (float)nv;
        }
        __syncthreads(); /* scores done with K; factors and weights written */
        load_kv_tile<KV>(KVs, a.kv, v_base, kv_row, kt, n, hd, hp, a.v_scale, tid, PRE_THREADS);
        __syncthreads();
        int nv = (int)Nv[r];
        for (int c = 0; c < nv; c++) {
            float cc = Cs[r * SP + c], w = Ws[r * SP + c];
#pragma unroll
            for (int j = 0; j < RJ; j++) {
                int e = lg + PRE_LG * j;
                if (e >= hd) break;
                acc[j] = acc[j] * cc;
                acc[j] = acc[j] + w * KVs[c * hp + e];
            }
        }
    }
    if (tid < PRE_BQ) Ls[tid] = l;
    __syncthreads();
    int t = t0 + r;
    if (t >= T) return;
    float lr = Ls[r];
#pragma unroll
    for (int j = 0; j < RJ; j++) {
        int e = lg + PRE_LG * j;
        if (e < hd) a.y[(size_t)t * a.stride + (size_t)h * hd + e] = acc[j] / lr;
    }
}

size_t prefill_smem(int hd) {
    return (size_t)((PRE_BQ + PRE_BK) * (hd + 1) + 2 * PRE_BQ * (PRE_BK + 1) + 2 * PRE_BQ) * sizeof(float);
}

/* rows > 0: the decode kernels for each of `rows` rows (1: decode; a verify
 * step: its n_tokens); 0: the prefill kernel over T rows. */
template <int KV> fp4rt_status launch_attention(const fp4rt_cu_step *s, const attn_args &a, int T, int rows) {
    if (rows) {
        FP4RT_CU_LAUNCH(attn_decode_kernel<KV>, dim3(FP4RT_ATTN_MAX_SPLITS, a.n_kv_heads, rows), DEC_THREADS, 0,
                        s->stream, a, s->d_step);
        fp4rt_status st = fp4rt_cu_check_launch("attention (decode splits)");
        if (st) return st;
        FP4RT_CU_LAUNCH(attn_merge_kernel, dim3(a.n_heads, rows), 128, 0, s->stream, a);
        return fp4rt_cu_check_launch("attention (decode merge)");
    }
    /* (prefill steps are not captured; the attribute is per device, so set it each time) */
    size_t smem = prefill_smem(a.head_dim);
    if (cudaFuncSetAttribute(attn_prefill_kernel<KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) !=
        cudaSuccess) {
        cudaGetLastError();
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: attention prefill needs %zu bytes of shared memory per block",
                             smem);
    }
    dim3 grid((T + PRE_BQ - 1) / PRE_BQ, a.n_heads);
    FP4RT_CU_LAUNCH(attn_prefill_kernel<KV>, grid, PRE_THREADS, smem, s->stream, a, T, s->d_step);
    return fp4rt_cu_check_launch("attention (prefill)");
}

} // namespace

size_t fp4rt_cu_attn_gdn_workspace_bytes(const fp4rt_program *p, const fp4rt_op *op, int chunk) {
    (void)p;
    if (op->kind != FP4RT_OP_ATTENTION) return 0; /* the GDN kernels need none */
    /* decode partials: [rows][n_heads][MAX_SPLITS][head_dim + 2] floats, rows up to
     * a verify step's (FP4RT_DECODE_ROWS_MAX, at most the chunk) */
    int rows = chunk < 1 ? 1 : chunk < FP4RT_DECODE_ROWS_MAX ? chunk : FP4RT_DECODE_ROWS_MAX;
    return (size_t)rows * (size_t)fp4rt_cu_attn_part_off(op->n_groups, 0, op->group_dim) * sizeof(float);
}

fp4rt_status fp4rt_cu_rope_table(const fp4rt_program *p, int n_ctx, float **tab, size_t *n_floats) {
    *tab = NULL;
    *n_floats = 0;
    const fp4rt_op *rope = NULL;
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (op->kind != FP4RT_OP_ROPE) continue;
        if (rope && (rope->rotary_dim != op->rotary_dim || rope->rope_theta != op->rope_theta ||
                     rope->rope_mode != op->rope_mode))
            return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: RoPE ops with different rotary_dim / theta / mode");
        rope = op;
    }
    if (!rope || n_ctx < 1) return FP4RT_OK;
    int half = rope->rotary_dim / 2;
    if (rope->rotary_dim < 2 || rope->rotary_dim % 2 || half > ROPE_MAX_HALF)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: RoPE with rotary_dim %d", rope->rotary_dim);
    size_t n = (size_t)n_ctx * half * 2;
    float *t = (float *)malloc(n * sizeof(float)), inv_freq[ROPE_MAX_HALF];
    if (!t) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory building the RoPE table (%zu bytes)", n * 4);
    /* exactly the CPU's FP32 expressions (cpu_attention.c), as transformers */
    for (int j = 0; j < half; j++) inv_freq[j] = fp4rt_rope_inv_freq(rope, j);
    for (int pos = 0; pos < n_ctx; pos++)
        for (int j = 0; j < half; j++) {
            float ang = (float)pos * inv_freq[j];
            t[((size_t)pos * half + j) * 2] = cosf(ang);
            t[((size_t)pos * half + j) * 2 + 1] = sinf(ang);
        }
    *tab = t;
    *n_floats = n;
    return FP4RT_OK;
}

fp4rt_status fp4rt_cu_op_rope(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int half = op->rotary_dim / 2;
    if (op->rotary_dim < 2 || op->rotary_dim % 2 || half > ROPE_MAX_HALF || op->rotary_dim > op->group_dim)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: RoPE with rotary_dim %d, head_dim %d", op->rotary_dim,
                             op->group_dim);
    if (op->rope_mode == FP4RT_ROPE_VISION_2D ? op->rotary_dim % 4 != 0
                                              : op->rope_mode != FP4RT_ROPE_TEXT ||
                                                    ((op->mrope_section[1] || op->mrope_section[2]) &&
                                                     !op->mrope_interleaved))
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: RoPE mode %d (rotary_dim %d, interleaved %d)", op->rope_mode,
                             op->rotary_dim, op->mrope_interleaved);
    if (!s->rope_tab || s->rope_dim != op->rotary_dim || s->rope_theta != op->rope_theta ||
        s->rope_mode != op->rope_mode)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: no RoPE table for rotary_dim %d, theta %g", op->rotary_dim,
                             op->rope_theta);
    rope_args a;
    a.x = view_base(s, op->x);
    a.y = view_base(s, op->y);
    a.tab = s->rope_tab;
    a.stride = s->p->arena_width;
    a.n_groups = op->n_groups;
    a.group_dim = op->group_dim;
    a.group_stride = op->group_stride;
    a.rotary_dim = op->rotary_dim;
    a.n_pos = s->rope_ctx;
    a.rpos = s->rpos;
    a.mode = op->rope_mode;
    a.s1 = op->mrope_section[1];
    a.s2 = op->mrope_section[2];
    FP4RT_CU_LAUNCH(rope_kernel, s->step->n_tokens, 128, 0, s->stream, a, s->d_step);
    return fp4rt_cu_check_launch("rope");
}

fp4rt_status fp4rt_cu_op_kv_append(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    int n = op->n_groups * op->group_dim, code = kv_code(s->sb->kv_type);
    size_t layer = (size_t)2 * s->sb->n_ctx * n * kv_elem_bytes(s->sb->kv_type);
    void *kv = (unsigned char *)s->sb->kv->dev + (size_t)op->slot * layer;
    const float *x = view_base(s, op->x), *z = view_base(s, op->z);
    dim3 grid(s->step->n_tokens, 2);
    int stride = s->p->arena_width, n_ctx = s->sb->n_ctx;
    if (code == KV_F32)
        FP4RT_CU_LAUNCH(kv_append_kernel<KV_F32>, grid, 256, 0, s->stream, x, z, stride, kv, n_ctx, n, L->k_scale, L->v_scale, s->d_step);
    else if (code == KV_FP8)
        FP4RT_CU_LAUNCH(kv_append_kernel<KV_FP8>, grid, 256, 0, s->stream, x, z, stride, kv, n_ctx, n, L->k_scale, L->v_scale, s->d_step);
    else
        FP4RT_CU_LAUNCH(kv_append_kernel<KV_BF16>, grid, 256, 0, s->stream, x, z, stride, kv, n_ctx, n, L->k_scale, L->v_scale, s->d_step);
    return fp4rt_cu_check_launch("kv_append");
}

fp4rt_status fp4rt_cu_op_attention(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    int hd = op->group_dim, nh = op->n_groups, nkv = op->n_kv_heads, T = s->step->n_tokens;
    if (hd < 1 || hd > ATTN_MAX_HD || nkv <= 0 || nh % nkv || nh / nkv > ATTN_MAX_GROUP)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED,
                             "cuda: attention with head_dim %d (at most %d), %d heads, %d KV heads (at most %d "
                             "query heads per KV head)",
                             hd, ATTN_MAX_HD, nh, nkv, ATTN_MAX_GROUP);
    attn_args a;
    a.q = view_base(s, op->x);
    a.y = view_base(s, op->y);
    a.stride = s->p->arena_width;
    a.q_group_stride = op->group_stride;
    a.n_heads = nh;
    a.n_kv_heads = nkv;
    a.head_dim = hd;
    a.n_ctx = s->sb->n_ctx;
    a.n_splits = fp4rt_attn_splits(s->sb->n_ctx, 1);
    size_t layer = (size_t)2 * s->sb->n_ctx * nkv * hd * kv_elem_bytes(s->sb->kv_type);
    a.kv = (const unsigned char *)s->sb->kv->dev + (size_t)op->slot * layer;
    a.scale = op->scale;
    a.k_scale = L->k_scale;
    a.v_scale = L->v_scale;
    a.part = NULL;
    a.row_part = (size_t)fp4rt_cu_attn_part_off(nh, 0, hd);
    /* decode kernels: one token, or every row of a verify step (the decode splits) */
    int rows = T == 1 || s->step->decode_rows ? T : 0;
    if (rows) {
        size_t need = (size_t)rows * a.row_part * sizeof(float);
        if (rows > FP4RT_DECODE_ROWS_MAX || need > fp4rt_cu_attn_gdn_workspace_bytes(s->p, op, s->sb->chunk))
            return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: attention decode partials for %d rows (at most %d)", rows,
                                 FP4RT_DECODE_ROWS_MAX);
        a.part = (float *)fp4rt_cu_workspace(s, need);
        if (!a.part) return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: no workspace for the attention partials");
    }
    switch (kv_code(s->sb->kv_type)) {
    case KV_F32: return launch_attention<KV_F32>(s, a, T, rows);
    case KV_FP8: return launch_attention<KV_FP8>(s, a, T, rows);
    default: return launch_attention<KV_BF16>(s, a, T, rows);
    }
}
