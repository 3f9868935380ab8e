/* Index arithmetic of the CUDA attention and GDN kernels (cu_attention.cu,
 * cu_gdn.cu), shared by the kernels and the host unit test
 * (tests/test_cu_index.cu): split ranges of the flash-decoding kernel, the
 * merge of its partials, the causal key range of a prefill tile and the chunk
 * boundaries of the chunked gated delta rule. Everything here is plain integer
 * or FP32 arithmetic usable on the host and the device. */
#ifndef FP4RT_CU_ATTN_INDEX_H
#define FP4RT_CU_ATTN_INDEX_H

#include <math.h>

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

/* Flash-decoding: the keys 0 .. n_keys - 1 of one step are cut into at most
 * FP4RT_CU_ATTN_MAX_SPLITS ranges of `per` keys (the last one shorter). The grid
 * always has FP4RT_CU_ATTN_MAX_SPLITS blocks per KV head (so a captured graph
 * does not depend on the position); blocks past the split count exit. */
#define FP4RT_CU_ATTN_MAX_SPLITS 64
#define FP4RT_CU_ATTN_SPLIT_MIN 64 /* fewest keys a split is given */
#define FP4RT_CU_ATTN_TILE 32      /* keys per tile inside a block; per is a multiple */

/* Keys per split: at least min_per, a multiple of tile, and few enough that
 * n_keys keys need at most max_splits splits. n_keys >= 1. */
FP4RT_HD int fp4rt_cu_split_len(int n_keys, int max_splits, int min_per, int tile) {
    int per = (n_keys + max_splits - 1) / max_splits;
    if (per < min_per) per = min_per;
    return (per + tile - 1) / tile * tile;
}

/* Number of non-empty splits of n_keys keys in ranges of per keys. */
FP4RT_HD int fp4rt_cu_split_count(int n_keys, int per) { return (n_keys + per - 1) / per; }

/* Keys [*k0, *k1) of split i (empty, *k0 >= *k1, when i >= the split count). */
FP4RT_HD void fp4rt_cu_split_range(int n_keys, int per, int i, int *k0, int *k1) {
    long long a = (long long)i * per, b = a + per;
    *k0 = a < n_keys ? (int)a : n_keys;
    *k1 = b < n_keys ? (int)b : n_keys;
}

/* Workspace of the decode partials: for each query head h and split i, a record
 * of head_dim + 2 floats: acc[head_dim] (sum of exp(s - m) v over the split,
 * unnormalised), m (the split's maximum score), l (sum of exp(s - m)). */
FP4RT_HD long long fp4rt_cu_attn_part_off(int h, int split, int head_dim) {
    return ((long long)h * FP4RT_CU_ATTN_MAX_SPLITS + split) * (head_dim + 2);
}

/* Output lane e of one query head from its n_splits partial records (part
 * points at split 0 of the head; records head_dim + 2 floats apart):
 *   M = max m_i;  out[e] = sum_i exp(m_i - M) acc_i[e] / sum_i exp(m_i - M) l_i. */
FP4RT_HD float fp4rt_cu_attn_merge_lane(const float *part, int n_splits, int head_dim, int e) {
    int rec = head_dim + 2;
    float M = part[head_dim];
    for (int i = 1; i < n_splits; i++) M = fmaxf(M, part[(long long)i * rec + head_dim]);
    float num = 0, den = 0;
    for (int i = 0; i < n_splits; i++) {
        const float *r = part + (long long)i * rec;
        float w = expf(r[head_dim] - M);
        num += w * r[e];
        den += w * r[head_dim + 1];
    }
    return num / den;
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
 * runtime/backend.h; cu_gdn.cu and the unit test check they agree). */
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
