/* Sampling on the device (runtime/backend/backend.h argmax and top_k): the greedy pick
 * and the top-k candidates of a logits row, computed where the logits are, so
 * a decode step downloads one id or k pairs instead of [vocab] floats.
 *
 * The same design as the Vulkan shaders (shaders/argmax.comp, topk.comp):
 * fixed-order reductions and a bitonic sort in shared memory, so the result
 * is deterministic and exactly the CPU sampler's. Top-k runs in levels, one
 * launch each: level 0 sorts slices of TOPK_SLICE ids and keeps k of each,
 * every later level keeps k of each TOPK_SLICE candidates, until one block is
 * left. Divisions and the penalty arithmetic use the IEEE round-to-nearest
 * intrinsics (__fdiv_rn, __fmul_rn, __fadd_rn, __fsub_rn): never contracted,
 * never approximated, whatever the compiler flags.
 *
 * The launchers below take device pointers only (the host emulation in
 * tests/cu_emu runs them); the backend slots at the end hold the context's
 * buffers and are compiled for the device only. */
#include "cuda/cu_ops.h"
#include "cuda/cu_sample.h"

#include <string.h>

#ifndef FP4RT_CU_EMU
#define FP4RT_CU_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define ARGMAX_THREADS 1024
#define TOPK_THREADS 256
#else
#define ARGMAX_THREADS 64 /* one std::thread per CUDA thread in the emulation */
#define TOPK_THREADS 64
#endif

#define TOPK_SLICE 1024
#define ID_PAD 0xffffffffu
#define ID_NAN 0xfffffffeu /* a NaN value: sorts first at every level */
#define ID_NONE 0xffffffffu

static __device__ __forceinline__ float neg_inf() { return __uint_as_float(0xff800000u); }

/* ---- argmax ---- */

static __device__ __forceinline__ bool argmax_better(float a, uint32_t ia, float b, uint32_t ib) {
    return ib == ID_NONE || (ia != ID_NONE && (a > b || (a == b && ia < ib)));
}

/* One block: thread t scans t, t + blockDim, ...; a fixed-order tree merges.
 * out[0] = the id, out[1] = 1 when a valid logit is NaN. */
__global__ void argmax_kernel(const float *logits, int n, const uint8_t *valid, int32_t *out) {
    __shared__ float sv[ARGMAX_THREADS];
    __shared__ uint32_t si[ARGMAX_THREADS], sn[ARGMAX_THREADS];
    uint32_t tid = threadIdx.x;
    float bv = 0.0f;
    uint32_t bi = ID_NONE, nan_seen = 0;
    for (uint32_t i = tid; i < (uint32_t)n; i += ARGMAX_THREADS) {
        float v = valid && !valid[i] ? neg_inf() : logits[i];
        if (isnan(v)) {
            nan_seen = 1;
            continue;
        }
        if (argmax_better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    sv[tid] = bv;
    si[tid] = bi;
    sn[tid] = nan_seen;
    __syncthreads();
    for (uint32_t s = ARGMAX_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s) {
            if (argmax_better(sv[tid + s], si[tid + s], sv[tid], si[tid])) {
                sv[tid] = sv[tid + s];
                si[tid] = si[tid + s];
            }
            sn[tid] |= sn[tid + s];
        }
        __syncthreads();
    }
    if (tid == 0) {
        out[0] = si[0] == ID_NONE ? 0 : (int32_t)si[0];
        out[1] = (int32_t)sn[0];
    }
}

fp4rt_status fp4rt_cu_argmax_launch(cudaStream_t stream, const float *logits, int n, const uint8_t *valid,
                                    int32_t *out) {
    FP4RT_CU_LAUNCH(argmax_kernel, 1, ARGMAX_THREADS, 0, stream, logits, n, valid, out);
    return fp4rt_cu_check_launch("argmax");
}

/* ---- top-k ---- */

typedef struct topk_args {
    const float *logits;        /* level 0 */
    const uint32_t *src;        /* later levels: [n] (value bits, id) pairs */
    uint32_t *dst;              /* [blocks][k] pairs */
    const uint8_t *valid;       /* level 0: [n] or NULL */
    const fp4rt_topk_penalty *pen; /* level 0: [n_pen] ids ascending */
    uint32_t n, level, k, n_pen;
    float temperature, rep, presence, frequency;
} topk_args;

/* a sorts before b */
static __device__ __forceinline__ bool topk_before(float a, uint32_t ia, float b, uint32_t ib) {
    if (ia == ID_NAN) return ib != ID_NAN;
    if (ib == ID_NAN) return false;
    return a > b || (a == b && ia < ib);
}

__global__ void topk_kernel(topk_args a) {
    __shared__ float sv[TOPK_SLICE];
    __shared__ uint32_t si[TOPK_SLICE];
    __shared__ uint32_t s_lo;
    uint32_t tid = threadIdx.x, g = blockIdx.x, base = g * TOPK_SLICE;
    for (uint32_t t = tid; t < TOPK_SLICE; t += TOPK_THREADS) {
        uint32_t i = base + t, id = ID_PAD;
        float v = neg_inf();
        if (i < a.n) {
            if (a.level == 0) {
                v = a.valid && !a.valid[i] ? neg_inf() : a.logits[i];
                id = i;
            } else {
                v = __uint_as_float(a.src[2 * i]);
                id = a.src[2 * i + 1];
            }
        }
        sv[t] = v;
        si[t] = id;
    }
    if (a.level == 0) {
        if (a.n_pen > 0) { /* the listed ids of this slice, from a binary search */
            if (tid == 0) {
                uint32_t lo = 0, hi = a.n_pen;
                while (lo < hi) {
                    uint32_t mid = (lo + hi) / 2;
                    if ((uint32_t)a.pen[mid].id < base) lo = mid + 1;
                    else hi = mid;
                }
                s_lo = lo;
            }
            __syncthreads();
            for (uint32_t j = s_lo + tid; j < a.n_pen && (uint32_t)a.pen[j].id < base + TOPK_SLICE &&
                                          (uint32_t)a.pen[j].id < a.n;
                 j += TOPK_THREADS) {
                uint32_t t = (uint32_t)a.pen[j].id - base;
                float x = sv[t];
                if (a.rep != 1.0f) x = x > 0.0f ? __fdiv_rn(x, a.rep) : __fmul_rn(x, a.rep);
                if (a.pen[j].count != 0)
                    x = __fsub_rn(x, __fadd_rn(a.presence, __fmul_rn(a.frequency, (float)a.pen[j].count)));
                sv[t] = x;
            }
        }
        __syncthreads();
        for (uint32_t t = tid; t < TOPK_SLICE; t += TOPK_THREADS) {
            if (si[t] == ID_PAD) continue;
            float v = __fdiv_rn(sv[t], a.temperature);
            sv[t] = v;
            if (isnan(v)) si[t] = ID_NAN;
        }
    }
    __syncthreads();
    /* bitonic sort: blocks of `size` alternate direction until the last */
    for (uint32_t size = 2; size <= TOPK_SLICE; size <<= 1) {
        for (uint32_t stride = size >> 1; stride > 0; stride >>= 1) {
            for (uint32_t t = tid; t < TOPK_SLICE / 2; t += TOPK_THREADS) {
                uint32_t x = 2 * t - (t & (stride - 1)), y = x + stride;
                bool first = (x & size) == 0; /* this block ends best-first */
                bool sw = first ? topk_before(sv[y], si[y], sv[x], si[x]) : topk_before(sv[x], si[x], sv[y], si[y]);
                if (sw) {
                    float tv = sv[x];
                    sv[x] = sv[y];
                    sv[y] = tv;
                    uint32_t ti = si[x];
                    si[x] = si[y];
                    si[y] = ti;
                }
            }
            __syncthreads();
        }
    }
    for (uint32_t t = tid; t < a.k; t += TOPK_THREADS) {
        a.dst[2 * (g * a.k + t)] = __float_as_uint(sv[t]);
        a.dst[2 * (g * a.k + t) + 1] = si[t];
    }
}

size_t fp4rt_cu_top_k_work_pairs(int n, int k) {
    return (size_t)((n + TOPK_SLICE - 1) / TOPK_SLICE) * (size_t)k;
}

fp4rt_status fp4rt_cu_top_k_launch(cudaStream_t stream, const float *logits, int n, const uint8_t *valid,
                                   const fp4rt_topk_penalty *pen, const fp4rt_topk_request *r, uint32_t *work,
                                   uint32_t *out) {
    topk_args a;
    memset(&a, 0, sizeof a);
    a.logits = logits;
    a.valid = valid;
    a.pen = pen;
    a.n = (uint32_t)n;
    a.k = (uint32_t)r->k;
    a.n_pen = (uint32_t)r->n_pen;
    a.temperature = r->temperature;
    a.rep = r->repetition_penalty;
    a.presence = r->presence_penalty;
    a.frequency = r->frequency_penalty;
    size_t half = fp4rt_cu_top_k_work_pairs(n, r->k) * 2; /* words */
    int src_half = -1;
    for (uint32_t level = 0;; level++) {
        uint32_t blocks = (a.n + TOPK_SLICE - 1) / TOPK_SLICE;
        int last = blocks == 1, dst_half = src_half == 0 ? 1 : 0;
        a.level = level;
        a.src = src_half < 0 ? NULL : work + (size_t)src_half * half;
        a.dst = last ? out : work + (size_t)dst_half * half;
        FP4RT_CU_LAUNCH(topk_kernel, blocks, TOPK_THREADS, 0, stream, a);
        fp4rt_status st = fp4rt_cu_check_launch("top-k");
        if (st || last) return st;
        a.n = blocks * a.k;
        src_half = dst_half;
    }
}

int fp4rt_cu_top_k_result(const uint32_t *out, int k, float *vals, int32_t *ids) {
    ids[0] = -1;
    if (out[1] == ID_NAN) return 0;
    for (int i = 0; i < k; i++) {
        uint32_t v = out[2 * i];
        memcpy(&vals[i], &v, 4);
        ids[i] = (int32_t)out[2 * i + 1];
    }
    return 1;
}

/* ---- the backend slots (device build only) ---- */
#ifndef FP4RT_CU_EMU
#include "cuda/cu_internal.h"

#include <math.h>
#include <stdlib.h>

static fp4rt_status ck(cudaError_t e, const char *what) { return e == cudaSuccess ? FP4RT_OK : fp4rt_cu_error(e, what); }

/* (*p) of at least `bytes` device memory; contents not kept. */
static fp4rt_status ensure_dev(void **p, size_t *cap, size_t bytes, const char *what) {
    if (*p && *cap >= bytes) return FP4RT_OK;
    cudaFree(*p);
    *p = NULL;
    *cap = 0;
    fp4rt_status st = ck(cudaMalloc(p, bytes), what);
    if (st) {
        *p = NULL;
        return st;
    }
    *cap = bytes;
    return FP4RT_OK;
}

/* The result buffers and the device copy of the valid mask (uploaded when its
 * bytes differ from the last upload's). */
static fp4rt_status prepare(fp4rt_cu_ctx *c, const uint8_t *valid, int n, const uint8_t **d_valid) {
    fp4rt_sample_state *ss = &c->sample;
    size_t out_bytes = (size_t)FP4RT_TOPK_MAX * 8;
    fp4rt_status st = ensure_dev(&ss->d_out, &ss->d_out_cap, out_bytes, "allocating the sampling result");
    if (!st && !ss->h_out) {
        st = ck(cudaHostAlloc(&ss->h_out, out_bytes, cudaHostAllocDefault), "allocating the sampling result");
        if (st) ss->h_out = NULL;
    }
    *d_valid = NULL;
    if (st || !valid) return st;
    if (ss->mask_n != n || !ss->h_mask || memcmp(ss->h_mask, valid, (size_t)n)) {
        ss->mask_n = 0;
        free(ss->h_mask);
        ss->h_mask = (uint8_t *)malloc((size_t)n);
        if (!ss->h_mask) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory copying the valid-id mask");
        memcpy(ss->h_mask, valid, (size_t)n);
        st = ensure_dev(&ss->d_mask, &ss->d_mask_cap, (size_t)n, "allocating the valid-id mask");
        if (!st) st = ck(cudaMemcpyAsync(ss->d_mask, valid, (size_t)n, cudaMemcpyHostToDevice, c->stream),
                         "uploading the valid-id mask");
        if (st) return st;
        ss->mask_n = n;
    }
    *d_valid = (const uint8_t *)ss->d_mask;
    return FP4RT_OK;
}

fp4rt_status fp4rt_cu_pick(fp4rt_cu_ctx *c, const float *logits, int n, const uint8_t *valid, int32_t *out) {
    *out = -1;
    const uint8_t *d_valid;
    fp4rt_status st = prepare(c, valid, n, &d_valid);
    if (!st) st = fp4rt_cu_argmax_launch(c->stream, logits, n, d_valid, (int32_t *)c->sample.d_out);
    if (!st) st = ck(cudaMemcpyAsync(c->sample.h_out, c->sample.d_out, 8, cudaMemcpyDeviceToHost, c->stream),
                     "downloading the greedy pick");
    if (!st) st = ck(cudaStreamSynchronize(c->stream), "waiting for the greedy pick");
    if (st) return st;
    const int32_t *h = (const int32_t *)c->sample.h_out;
    *out = h[1] ? -1 : h[0];
    return FP4RT_OK;
}

static fp4rt_status check_row(const fp4rt_buffer *logits, size_t offset, int n) {
    if (n < 1) return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "a pick of %d logits", n);
    if (offset + (size_t)n > logits->bytes / 4)
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "a pick of %d logits at %zu: past the end of %s", n, offset,
                             logits->what);
    return FP4RT_OK;
}

fp4rt_status fp4rt_cu_argmax(void *vc, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                             int32_t *out) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    *out = -1;
    fp4rt_status st = check_row(logits, offset, n);
    if (st) return st;
    cudaSetDevice(c->device);
    return fp4rt_cu_pick(c, (const float *)logits->dev + offset, n, valid, out);
}

static int normal_positive(float x) { return isnormal(x) && x > 0; }

fp4rt_status fp4rt_cu_top_k(void *vc, fp4rt_buffer *logits, size_t offset, int n, const fp4rt_topk_request *r,
                            float *vals, int32_t *ids) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    ids[0] = -1;
    fp4rt_status st = check_row(logits, offset, n);
    if (st) return st;
    if (r->k < 1 || r->k > FP4RT_TOPK_MAX || r->k > n)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "device top-k: k = %d (1 .. %d and at most %d)", r->k, FP4RT_TOPK_MAX,
                             n);
    if (!normal_positive(r->temperature) || !normal_positive(r->repetition_penalty))
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED,
                             "device top-k: temperature %g, repetition penalty %g (need positive normal)",
                             (double)r->temperature, (double)r->repetition_penalty);
    if (r->n_pen < 0 || (r->n_pen > 0 && !r->pen))
        return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT, "device top-k: penalty list of %d entries", r->n_pen);
    for (int i = 0; i < r->n_pen; i++)
        if (r->pen[i].id < 0 || r->pen[i].id >= n || (i && r->pen[i].id <= r->pen[i - 1].id) || r->pen[i].count < 0)
            return fp4rt_cu_fail(FP4RT_INVALID_ARGUMENT,
                                 "device top-k: penalty entry %d (id %d, count %d) is not ascending in [0, %d)", i,
                                 r->pen[i].id, r->pen[i].count, n);
    cudaSetDevice(c->device);
    fp4rt_sample_state *ss = &c->sample;
    const uint8_t *d_valid;
    st = prepare(c, r->valid, n, &d_valid);
    if (!st) /* sized for the largest k, so a k change does not reallocate */
        st = ensure_dev(&ss->d_work, &ss->d_work_cap, 2 * fp4rt_cu_top_k_work_pairs(n, FP4RT_TOPK_MAX) * 8,
                        "allocating the top-k candidates");
    if (!st && r->n_pen) {
        st = ensure_dev(&ss->d_pen, &ss->d_pen_cap, (size_t)r->n_pen * sizeof *r->pen, "allocating the penalty list");
        if (!st) st = ck(cudaMemcpyAsync(ss->d_pen, r->pen, (size_t)r->n_pen * sizeof *r->pen, cudaMemcpyHostToDevice,
                                         c->stream), "uploading the penalty list");
    }
    if (!st)
        st = fp4rt_cu_top_k_launch(c->stream, (const float *)logits->dev + offset, n, d_valid,
                                   (const fp4rt_topk_penalty *)ss->d_pen, r, (uint32_t *)ss->d_work,
                                   (uint32_t *)ss->d_out);
    if (!st) st = ck(cudaMemcpyAsync(ss->h_out, ss->d_out, (size_t)r->k * 8, cudaMemcpyDeviceToHost, c->stream),
                     "downloading the top-k candidates");
    if (!st) st = ck(cudaStreamSynchronize(c->stream), "waiting for the top-k candidates");
    if (st) return st;
    fp4rt_cu_top_k_result((const uint32_t *)ss->h_out, r->k, vals, ids);
    return FP4RT_OK;
}

void fp4rt_cu_sample_free(fp4rt_cu_ctx *c) {
    fp4rt_sample_state *ss = &c->sample;
    cudaFree(ss->d_out);
    cudaFree(ss->d_mask);
    cudaFree(ss->d_pen);
    cudaFree(ss->d_work);
    cudaFreeHost(ss->h_out);
    free(ss->h_mask);
    memset(ss, 0, sizeof *ss);
}
#endif
