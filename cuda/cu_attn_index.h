/* Index arithmetic of the CUDA attention and GDN kernels (cu_attention.cu,
 * cu_gdn.cu), shared by the kernels and the host unit test
 * (tests/cuda/test_cu_index.cu): the decode splits of attention, the merge of their
 * partials, the causal key range of a prefill tile and the chunk boundaries of
 * the chunked gated delta rule. Everything here is plain integer or FP32
 * arithmetic usable on the host and the device (the merge is the numerics
 * contract's: compile it as cu_canon.cuh says). */
#ifndef FP4RT_CU_ATTN_INDEX_H
#define FP4RT_CU_ATTN_INDEX_H

#include <math.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "runtime/backend/backend.h"
#include "runtime/base/canon_math.h"
#ifdef __cplusplus
}
#endif

#if defined(__CUDACC__)
#define FP4RT_HD __host__ __device__ __forceinline__
#elif defined(__cplusplus)
#define FP4RT_HD inline
#else
#define FP4RT_HD static inline
#endif

/* Kernel launches and dynamic shared memory go through these two macros so that
 * the host emulation of the kernels (tests/cu_emu/, FP4RT_CU_EMU) can replace
 * them; with nvcc they are the plain CUDA forms. */
#ifndef FP4RT_CU_EMU
#define FP4RT_CU_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define FP4RT_CU_DYN_SMEM(type, name) extern __shared__ type name[]
#endif

/* Decode (one token): the numerics contract's splits (runtime/backend/backend.h). The
 * positions 0 .. len - 1 are cut into ns = fp4rt_attn_splits(n_ctx, 1) spans of
 * fp4rt_attn_span(len, ns) positions (one span of len when ns is 1), the last
 * ones shorter or empty. The grid always has FP4RT_ATTN_MAX_SPLITS blocks per
 * KV head (so a captured graph does not depend on the position); blocks past
 * ns exit, and a split whose span is empty writes a neutral partial (m = -inf,
 * l = 0, acc = 0) that the merge skips. */
FP4RT_HD void fp4rt_cu_attn_span_range(int len, int ns, int i, int *b, int *e) {
    int span = ns > 1 ? fp4rt_attn_span(len, ns) : len;
    long long a = (long long)i * span, z = a + span;
    *b = a < len ? (int)a : len;
    *e = z < len ? (int)z : len;
}

/* Workspace of the decode partials: for each query head h and split i, a record
 * of head_dim + 2 floats: acc[head_dim] (sum of w v over the span, unnormalised),
 * m (the running maximum score), l (the running sum of w), the state of the
 * contract's online softmax at the end of the span. */
FP4RT_HD long long fp4rt_cu_attn_part_off(int h, int split, int head_dim) {
    return ((long long)h * FP4RT_ATTN_MAX_SPLITS + split) * (head_dim + 2);
}

/* Output lane e of one query head from its n_splits partial records (part
 * points at split 0 of the head; records head_dim + 2 floats apart), the
 * contract's merge in split order over the splits with m_i != -inf:
 *   M = max m_i;  L = sum_i exp(m_i - M) l_i;  a = sum_i exp(m_i - M) acc_i[e];
 *   out[e] = a / L
 * (one split: acc / l; runtime/backend/cpu/cpu_attention.c, shaders/attention_merge.comp). */
FP4RT_HD float fp4rt_cu_attn_merge_lane(const float *part, int n_splits, int head_dim, int e) {
    long long rec = head_dim + 2;
    if (n_splits == 1) return part[e] / part[head_dim + 1]; /* one span: acc / l, as the CPU */
    float M = -INFINITY, L = 0, a = 0;
    for (int i = 0; i < n_splits; i++) M = fmaxf(M, part[i * rec + head_dim]);
    for (int i = 0; i < n_splits; i++) {
        float m = part[i * rec + head_dim];
        if (m != -INFINITY) L = L + fp4rt_cexp(m - M) * part[i * rec + head_dim + 1];
    }
    for (int i = 0; i < n_splits; i++) {
        float m = part[i * rec + head_dim];
        if (m != -INFINITY) a = a + fp4rt_cexp(m - M) * part[i * rec + e];
    }
    return a / L;
}

/* Prefill attention: a block owns query rows t0 .. t0 + bq - 1 (those < T) of a
 * step starting at position pos0; row t sees keys 0 .. pos0 + t. Keys the block
 * must visit: */
FP4RT_HD int fp4rt_cu_tile_keys(int pos0, int T, int t0, int bq) {
    int last = t0 + bq < T ? t0 + bq : T; /* one past the last row */
    return pos0 + last;
}
FP4RT_HD int fp4rt_cu_key_visible(int pos0, int t, int key) { return key <= pos0 + t; }

/* Chunked gated delta rule: the chunk every backend uses (FP4RT_GDN_CHUNK,
 * runtime/backend/backend.h; cu_gdn.cu and the unit test check they agree). */
#define FP4RT_CU_GDN_CHUNK 64
/* Tokens are taken in chunks of `chunk` from token 0
 * (the CPU's fp4rt_gdn_chunked); the chunk starting at t0 has this many rows. */
FP4RT_HD int fp4rt_cu_gdn_chunk_rows(int T, int chunk, int t0) {
    return T - t0 < chunk ? T - t0 : chunk;
}

/* Value columns are processed in slices of FP4RT_CU_GDN_DVS (one warp wide). */
#define FP4RT_CU_GDN_DVS 32
FP4RT_HD int fp4rt_cu_gdn_slices(int dv) { return (dv + FP4RT_CU_GDN_DVS - 1) / FP4RT_CU_GDN_DVS; }

#endif
