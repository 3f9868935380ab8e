/* CUDA kernels of the Gated DeltaNet mixer: causal depthwise conv1d + SiLU with
 * carried state, and the gated delta rule in recurrent form (one token, decode)
 * and chunked form (prefill, the CPU's algorithm and chunk size, so CUDA prefill
 * agrees with CPU prefill). Same math as runtime/backend/cpu/cpu_gdn.c, FP32:
 *   per value head j with key head j / (V/K), S [dk, dv]:
 *   S <- exp(g) S;  m = k S;  u = beta (v - m);  S <- S + k^T u;  o = q S.
 * The numerics contract (cu_canon.cuh): every sum in the CPU's order, exp /
 * sigmoid / softplus / SiLU from canon_math.h, no fused multiply-add: the CPU's
 * bits.
 * The state never leaves the GPU: conv [n_gdn][conv_dim][kernel - 1] (oldest
 * input first), ssm [n_gdn][v_heads][dk][dv]. Value columns are split in slices
 * of FP4RT_CU_GDN_DVS (one block per value head and slice): every step of the
 * rule is independent per value column.
 * A verify step (fp4rt_step.decode_rows, backend.h) runs the recurrent form
 * row by row, each row with a 1-token step's bits, and the kernels themselves
 * write the state before each row r to checkpoint slot r of sb->ckpt (conv
 * and recurrent state in their layouts, [conv | ssm] per slot), when set. */
#include "cuda/cu_attn_index.h"
#include "cuda/cu_canon.cuh"
#include "cuda/cu_ops.h"

#include <math.h>

namespace {

constexpr int CONV_KMAX = 8;     /* conv kernel <= 8 (Qwen3.5: 4) */
constexpr int GDN_THREADS = 256; /* a block: 8 warps */
constexpr int REC_MAX_DK = 256;  /* recurrent: dk <= 256 (the state slice in shared memory) */
constexpr int CHUNK_MAX_DK = 128; /* chunked: dk <= 128 (shared memory) */
constexpr int CH = FP4RT_CU_GDN_CHUNK;
static_assert(FP4RT_CU_GDN_CHUNK == FP4RT_GDN_CHUNK, "the CPU's chunk (backend.h): prefill agrees across backends");
static_assert(FP4RT_CU_GDN_DVS == 32, "a value slice is one warp wide");

float *view_base(const fp4rt_cu_step *s, fp4rt_view v) {
    return (float *)s->sb->scratch->dev + s->p->buf_offset[v.buf] + v.col;
}

/* ---- conv1d + SiLU ---- */

/* Thread per channel: the window of the last K - 1 inputs lives in registers;
 * tokens are taken in order (x and y may be the same buffer: each thread reads
 * its column of row t before writing it). acc sums w[i] * window[i] in the
 * CPU's order. ckpt (NULL: none): this layer's state in checkpoint slot 0;
 * the window before row t goes to slot t (ckpt_slot floats apart). */
__global__ void conv_kernel(float *x, float *y, int stride, int C, int K, int T, const float *w,
                            float *state, float *ckpt, size_t ckpt_slot) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= C) return;
    float win[CONV_KMAX - 1], wt[CONV_KMAX - 1]; /* taps 0 .. K - 2; tap K - 1 in wl */
    float *st = state + (size_t)ch * (K - 1), wl = w[(size_t)ch * K + K - 1];
#pragma unroll
    for (int i = 0; i < CONV_KMAX - 1; i++) win[i] = i < K - 1 ? st[i] : 0.0f;
#pragma unroll
    for (int i = 0; i < CONV_KMAX - 1; i++) wt[i] = i < K - 1 ? w[(size_t)ch * K + i] : 0.0f;
    for (int t = 0; t < T; t++) {
        if (ckpt) { /* the state before row t */
#pragma unroll
            for (int i = 0; i < CONV_KMAX - 1; i++)
                if (i < K - 1) ckpt[(size_t)t * ckpt_slot + (size_t)ch * (K - 1) + i] = win[i];
        }
        float in = x[(size_t)t * stride + ch], acc = 0;
#pragma unroll
        for (int i = 0; i < CONV_KMAX - 1; i++)
            if (i < K - 1) acc += wt[i] * win[i];
        acc += wl * in;
        y[(size_t)t * stride + ch] = fp4rt_csilu(acc);
#pragma unroll
        for (int i = 0; i < CONV_KMAX - 1; i++) /* shift: the newest input goes last */
            win[i] = i + 1 < K - 1 ? win[i + 1 < CONV_KMAX - 1 ? i + 1 : i] : in; /* (index in bounds) */
    }
#pragma unroll
    for (int i = 0; i < CONV_KMAX - 1; i++)
        if (i < K - 1) st[i] = win[i];
}

/* ---- gated delta rule ---- */

struct gdn_args {
    const float *x;       /* conv output row 0: [q (key_dim) | k (key_dim) | v (value_dim)] */
    const float *z, *a;   /* b and alpha rows: [v_heads] */
    float *y;             /* o row 0: [v_heads * dv] */
    int stride, dk, dv, ratio, key_dim, T;
    const float *dt_bias, *neg_A; /* [v_heads] */
    float *S;             /* this layer: [v_heads][dk][dv] */
    float *ckpt;          /* recurrent form: NULL, or this layer's state in checkpoint slot 0 */
    size_t ckpt_slot;     /* floats between checkpoint slots */
};

/* beta and g of value head h at row t, as the CPU. */
__device__ __forceinline__ void gate(const gdn_args &a, int h, int t, float *beta, float *g) {
    *beta = fp4rt_csigmoid(a.z[(size_t)t * a.stride + h]);
    *g = a.neg_A[h] * fp4rt_csoftplus(a.a[(size_t)t * a.stride + h] + a.dt_bias[h]);
}

/* Recurrent, rows 0 .. T - 1 one after another (T = 1: decode; more: the rows
 * of a verify step, each with a 1-token step's bits). Block (slice, value head
 * h) keeps the state slice [dk][32] in shared memory across the rows. Per row
 * t: all threads stage q and k, write the state slice to checkpoint slot t
 * (when a.ckpt) and decay it, S_i exp(g); then thread e < 32 runs column
 * slice * 32 + e alone, each sum over i in order as the CPU
 * (fp4rt_gdn_recurrent): m = sum_i k_i S_i, u = beta (v - m), S_i += k_i u,
 * o = sum_i q_i S_i. After the last row all threads store the slice back. */
__global__ void __launch_bounds__(GDN_THREADS) gdn_recurrent_kernel(const gdn_args a) {
    constexpr int W = FP4RT_CU_GDN_DVS;
    __shared__ float qs[REC_MAX_DK], ks[REC_MAX_DK], Ss[REC_MAX_DK * W];
    int h = blockIdx.y, tid = threadIdx.x, e0 = blockIdx.x * W, kh = h / a.ratio, dk = a.dk, dv = a.dv;
    float *S = a.S + (size_t)h * dk * dv;
    for (int idx = tid; idx < dk * W; idx += GDN_THREADS) {
        int i = idx / W, e = e0 + idx % W;
        Ss[idx] = e < dv ? S[(size_t)i * dv + e] : 0.0f;
    }
    for (int t = 0; t < a.T; t++) {
        __syncthreads(); /* the previous row is done with qs, ks and the slice */
        const float *x = a.x + (size_t)t * a.stride;
        for (int i = tid; i < dk; i += GDN_THREADS) {
            qs[i] = x[(size_t)kh * dk + i];
            ks[i] = x[a.key_dim + (size_t)kh * dk + i];
        }
        float beta, g;
        gate(a, h, t, &beta, &g);
        float decay = fp4rt_cexp(g);
        float *ck = a.ckpt ? a.ckpt + (size_t)t * a.ckpt_slot + (size_t)h * dk * dv : NULL;
        for (int idx = tid; idx < dk * W; idx += GDN_THREADS) { /* (the thread that staged idx) */
            int i = idx / W, e = e0 + idx % W;
            if (ck && e < dv) ck[(size_t)i * dv + e] = Ss[idx]; /* the state before row t */
            Ss[idx] = Ss[idx] * decay;
        }
        __syncthreads();
        if (tid < W && e0 + tid < dv) {
            int e = e0 + tid;
            float m = 0;
            for (int i = 0; i < dk; i++) m = m + ks[i] * Ss[i * W + tid];
            float u = beta * (x[2 * (size_t)a.key_dim + (size_t)h * dv + e] - m);
            float o = 0;
            for (int i = 0; i < dk; i++) {
                float sv = Ss[i * W + tid] + ks[i] * u;
                Ss[i * W + tid] = sv;
                o = o + qs[i] * sv;
            }
            a.y[(size_t)t * a.stride + (size_t)h * dv + e] = o;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < dk * W; idx += GDN_THREADS) {
        int i = idx / W, e = e0 + idx % W;
        if (e < dv) S[(size_t)i * dv + e] = Ss[idx];
    }
}

/* Shared memory of the chunked kernel, in floats: K [CH][dk + 1], S [dk][32],
 * A (then Q K^T) [CH][CH + 1], U [CH][32], gamma, beta, decay-to-end [CH]. */
__host__ __device__ inline size_t chunk_smem_floats(int dk) {
    return (size_t)CH * (dk + 1) + (size_t)dk * FP4RT_CU_GDN_DVS + (size_t)CH * (CH + 1) +
           (size_t)CH * FP4RT_CU_GDN_DVS + 3 * CH;
}

/* Chunked, T > 1: the CPU's gdn_chunk for value columns slice * 32 .. + 31 of
 * value head h, chunk after chunk (state slice in shared memory throughout).
 * Each sum runs in the CPU's order. */
__global__ void __launch_bounds__(GDN_THREADS) gdn_chunked_kernel(const gdn_args a) {
    FP4RT_CU_DYN_SMEM(float, sm);
    constexpr int W = FP4RT_CU_GDN_DVS;
    int h = blockIdx.y, tid = threadIdx.x, dk = a.dk, dv = a.dv, kp = dk + 1;
    int e0 = blockIdx.x * W, kh = h / a.ratio;
    float *Ks = sm, *Ss = Ks + CH * kp, *A = Ss + dk * W, *U = A + CH * (CH + 1);
    float *gam = U + CH * W, *bet = gam + CH, *dec = bet + CH;
    float *S = a.S + (size_t)h * dk * dv;
    const float *q = a.x + (size_t)kh * dk, *k = a.x + a.key_dim + (size_t)kh * dk;
    const float *v = a.x + 2 * (size_t)a.key_dim + (size_t)h * dv;
    float *o = a.y + (size_t)h * dv;
    size_t rs = (size_t)a.stride;

    for (int idx = tid; idx < dk * W; idx += GDN_THREADS) {
        int i = idx / W, e = e0 + idx % W;
        Ss[idx] = e < dv ? S[(size_t)i * dv + e] : 0.0f;
    }
    for (int t0 = 0; t0 < a.T; t0 += CH) {
        int c = fp4rt_cu_gdn_chunk_rows(a.T, CH, t0);
        __syncthreads(); /* the previous chunk is done with Ks, gam, dec */
        for (int idx = tid; idx < c * dk; idx += GDN_THREADS) {
            int r = idx / dk, i = idx % dk;
            Ks[r * kp + i] = k[(t0 + r) * rs + i];
        }
        if (tid < c) gate(a, h, t0 + tid, &bet[tid], &gam[tid]); /* gam holds g for now */
        __syncthreads();
        if (tid == 0) { /* in-chunk cumulative log decay, summed in order */
            float acc = 0;
            for (int r = 0; r < c; r++) gam[r] = acc += gam[r];
        }
        __syncthreads();
        if (tid < c) dec[tid] = fp4rt_cexp(gam[c - 1] - gam[tid]);
        /* A[r][s] = beta_r (k_r . k_s) exp(gamma_r - gamma_s), s < r */
        for (int idx = tid; idx < CH * CH; idx += GDN_THREADS) {
            int r = idx / CH, s = idx % CH;
            if (r >= c || s >= r) continue;
            float d = 0;
            for (int i = 0; i < dk; i++) d += Ks[r * kp + i] * Ks[s * kp + i];
            A[r * (CH + 1) + s] = bet[r] * d * fp4rt_cexp(gam[r] - gam[s]);
        }
        /* U[r] = beta_r (v_r - exp(gamma_r) k_r S) */
        for (int idx = tid; idx < c * W; idx += GDN_THREADS) {
            int r = idx / W, e = idx % W;
            float ks = 0;
            for (int i = 0; i < dk; i++) ks += Ks[r * kp + i] * Ss[i * W + e];
            float vr = e0 + e < dv ? v[(t0 + r) * rs + e0 + e] : 0.0f;
            U[r * W + e] = bet[r] * (vr - fp4rt_cexp(gam[r]) * ks);
        }
        __syncthreads();
        if (tid < W) /* forward substitution (I + A) U' = U, column tid, rows in order */
            for (int r = 1; r < c; r++) {
                float u = U[r * W + tid];
                for (int s = 0; s < r; s++) u -= A[r * (CH + 1) + s] * U[s * W + tid];
                U[r * W + tid] = u;
            }
        __syncthreads();
        /* A <- (q_r . k_s) exp(gamma_r - gamma_s), s <= r */
        for (int idx = tid; idx < CH * CH; idx += GDN_THREADS) {
            int r = idx / CH, s = idx % CH;
            if (r >= c || s > r) continue;
            const float *qr = q + (t0 + r) * rs;
            float d = 0;
            for (int i = 0; i < dk; i++) d += qr[i] * Ks[s * kp + i];
            A[r * (CH + 1) + s] = d * fp4rt_cexp(gam[r] - gam[s]);
        }
        __syncthreads();
        /* O[r] = exp(gamma_r) q_r S + sum_{s <= r} A[r][s] U[s] */
        for (int idx = tid; idx < c * W; idx += GDN_THREADS) {
            int r = idx / W, e = idx % W;
            const float *qr = q + (t0 + r) * rs;
            float eg = fp4rt_cexp(gam[r]), acc = 0;
            for (int i = 0; i < dk; i++) acc += (qr[i] * eg) * Ss[i * W + e];
            for (int s = 0; s <= r; s++) acc += A[r * (CH + 1) + s] * U[s * W + e];
            if (e0 + e < dv) o[(t0 + r) * rs + e0 + e] = acc;
        }
        __syncthreads(); /* O read the incoming state */
        /* S <- exp(gamma_last) S + sum_s (k_s exp(gamma_last - gamma_s))^T U[s] */
        float el = fp4rt_cexp(gam[c - 1]);
        for (int idx = tid; idx < dk * W; idx += GDN_THREADS) {
            int i = idx / W, e = idx % W;
            float sv = Ss[idx] * el;
            for (int s = 0; s < c; s++) sv += (Ks[s * kp + i] * dec[s]) * U[s * W + e];
            Ss[idx] = sv;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < dk * W; idx += GDN_THREADS) {
        int i = idx / W, e = e0 + idx % W;
        if (e < dv) S[(size_t)i * dv + e] = Ss[idx];
    }
}

/* Checkpoint slot 0 of a verify step at float offset `off` of its conv (ssm 0)
 * or recurrent (1) part, and the floats between slots (backend.h
 * fp4rt_session_buffers.ckpt); NULL when no checkpoints are asked for. */
float *ckpt_at(const fp4rt_cu_step *s, int ssm, size_t off, size_t *slot_floats) {
    const fp4rt_session_buffers *sb = s->sb;
    *slot_floats = 0;
    if (!s->step->decode_rows || !sb->ckpt) return NULL;
    *slot_floats = (sb->conv->bytes + sb->ssm->bytes) / sizeof(float);
    return (float *)sb->ckpt->dev + (ssm ? sb->conv->bytes / sizeof(float) : 0) + off;
}

} // namespace

fp4rt_status fp4rt_cu_op_conv(const fp4rt_cu_step *s, const fp4rt_op *op) {
    int C = op->x.cols, K = op->group_dim, T = s->step->n_tokens;
    if (K < 2 || K > CONV_KMAX || op->y.cols != C)
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: conv1d kernel %d (2 .. %d), %d -> %d channels", K,
                             CONV_KMAX, C, op->y.cols);
    const float *w = (const float *)fp4rt_cu_weight(s->c, op->w);
    if (!w) return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: conv1d weight of layer %d not on the device", op->layer);
    size_t off = (size_t)op->slot * C * (K - 1), slot;
    float *state = (float *)s->sb->conv->dev + off, *ckpt = ckpt_at(s, 0, off, &slot);
    FP4RT_CU_LAUNCH(conv_kernel, (C + 127) / 128, 128, 0, s->stream, view_base(s, op->x), view_base(s, op->y),
                    s->p->arena_width, C, K, T, w, state, ckpt, slot);
    return fp4rt_cu_check_launch("conv1d_silu");
}

fp4rt_status fp4rt_cu_op_gdn(const fp4rt_cu_step *s, const fp4rt_op *op) {
    const fp4rt_config *c = &s->p->weights->cfg;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    int T = s->step->n_tokens, dk = c->lin_k_dim, dv = c->lin_v_dim;
    int rec = T == 1 || s->step->decode_rows; /* row by row: a 1-token step's bits */
    if (dk < 1 || dv < 1 || c->lin_k_heads < 1 || c->lin_v_heads % c->lin_k_heads ||
        dk > (rec ? REC_MAX_DK : CHUNK_MAX_DK))
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: GDN with key head dim %d (at most %d for %s), %d / %d heads",
                             dk, rec ? REC_MAX_DK : CHUNK_MAX_DK, rec ? "decode" : "prefill",
                             c->lin_v_heads, c->lin_k_heads);
    gdn_args a;
    a.x = view_base(s, op->x);
    a.z = view_base(s, op->z);
    a.a = view_base(s, op->a);
    a.y = view_base(s, op->y);
    a.stride = s->p->arena_width;
    a.dk = dk;
    a.dv = dv;
    a.ratio = c->lin_v_heads / c->lin_k_heads;
    a.key_dim = fp4rt_cfg_key_dim(c);
    a.T = T;
    a.dt_bias = (const float *)fp4rt_cu_weight(s->c, L->dt_bias);
    a.neg_A = (const float *)fp4rt_cu_weight(s->c, L->neg_A);
    if (!a.dt_bias || !a.neg_A)
        return fp4rt_cu_fail(FP4RT_INTERNAL, "cuda: dt_bias / A_log of layer %d not on the device", op->layer);
    size_t off = (size_t)op->slot * c->lin_v_heads * dk * dv;
    a.S = (float *)s->sb->ssm->dev + off;
    a.ckpt = ckpt_at(s, 1, off, &a.ckpt_slot);
    dim3 grid(fp4rt_cu_gdn_slices(dv), c->lin_v_heads);
    if (rec) { /* as the CPU: one token, or a verify step's rows, run the recurrent form */
        FP4RT_CU_LAUNCH(gdn_recurrent_kernel, grid, GDN_THREADS, 0, s->stream, a);
        return fp4rt_cu_check_launch("gated_delta (recurrent)");
    }
    size_t smem = chunk_smem_floats(dk) * sizeof(float);
    if (cudaFuncSetAttribute(gdn_chunked_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) !=
        cudaSuccess) {
        cudaGetLastError();
        return fp4rt_cu_fail(FP4RT_UNSUPPORTED, "cuda: chunked GDN needs %zu bytes of shared memory per block", smem);
    }
    FP4RT_CU_LAUNCH(gdn_chunked_kernel, grid, GDN_THREADS, smem, s->stream, a);
    return fp4rt_cu_check_launch("gated_delta (chunked)");
}
