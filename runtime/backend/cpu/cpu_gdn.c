/* CPU kernels of the Gated DeltaNet mixer (docs/MODEL.md §2.4): causal depthwise
 * conv1d + SiLU with carried state, and the gated delta rule in recurrent form
 * (one token at a time, decode) and chunked form (prefill). Both forms compute
 * the same recurrence, per value head j with key head j / (V/K):
 *   S <- exp(g) S;  m = k S;  u = beta (v - m);  S <- S + k^T u;  o = q S
 * with S [dk, dv] in FP32.
 *
 * State layouts: conv [n_gdn][conv_dim][kernel - 1] (oldest input first);
 * ssm [n_gdn][v_heads][dk][dv]. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"

#include <math.h>
#include <string.h>

typedef struct conv_job {
    const cpu_step *s;
    const fp4rt_op *op;
    float *state; /* [conv_dim][kernel - 1] of this layer */
    float *ckpt;  /* NULL, or this layer's conv state in checkpoint slot 0 (decode_rows) */
    size_t ckpt_slot; /* floats between checkpoint slots */
} conv_job;

/* The checkpoint buffer's slot 0 at float offset `off` of its conv (ssm: after
 * the conv bytes) part, and the floats between slots (backend.h
 * fp4rt_session_buffers.ckpt); NULL when no checkpoints are asked for. */
static float *ckpt_at(const cpu_step *s, int ssm, size_t off, size_t *slot_floats) {
    const fp4rt_session_buffers *sb = s->sb;
    *slot_floats = (sb->conv->bytes + sb->ssm->bytes) / sizeof(float);
    if (!s->step->decode_rows || !sb->ckpt) return NULL;
    return (float *)sb->ckpt->data + (ssm ? sb->conv->bytes / sizeof(float) : 0) + off;
}

void fp4rt_conv1d_silu_channels(int T, int K, const float *x, size_t x_stride, const float *w, float *state,
                                float *y, size_t y_stride, long c0, long c1, float *win, float *ckpt,
                                size_t ckpt_slot) {
    for (long ch = c0; ch < c1; ch++) {
        float *st = state + (size_t)ch * (K - 1);
        const float *wc = w + (size_t)ch * K;
        memcpy(win, st, (size_t)(K - 1) * sizeof(float));
        for (int t = 0; t < T; t++) win[K - 1 + t] = x[t * x_stride + ch];
        for (int t = 0; ckpt && t < T; t++) /* the state before row t */
            memcpy(ckpt + t * ckpt_slot + (size_t)ch * (K - 1), win + t, (size_t)(K - 1) * sizeof(float));
        for (int t = 0; t < T; t++) {
            float acc = 0;
            for (int i = 0; i < K; i++) acc += wc[i] * win[t + i];
            y[t * y_stride + ch] = fp4rt_silu(acc);
        }
        memcpy(st, win + T, (size_t)(K - 1) * sizeof(float));
    }
}

/* The checkpoints fp4rt_conv1d_silu_channels writes (the state before row t of
 * channels [c0, c1) at ckpt + t * ckpt_slot), from the state and x before the
 * step updates the state: element i of row t's window is state[t + i] while
 * t + i < K - 1, else x of row t + i - (K - 1). */
static void conv_checkpoints(int T, int K, const float *x, size_t x_stride, const float *state, long c0, long c1,
                             float *ckpt, size_t ckpt_slot) {
    for (int t = 0; t < T; t++)
        for (long ch = c0; ch < c1; ch++) {
            const float *st = state + (size_t)ch * (K - 1);
            float *out = ckpt + t * ckpt_slot + (size_t)ch * (K - 1);
            for (int i = 0; i < K - 1; i++)
                out[i] = t + i < K - 1 ? st[t + i] : x[(size_t)(t + i - (K - 1)) * x_stride + ch];
        }
}

static void conv_range(void *arg, long c0, long c1, int thread) {
    const conv_job *j = arg;
    const cpu_step *s = j->s;
    const fp4rt_op *op = j->op;
    int T = s->step->n_tokens, K = op->group_dim;
    size_t stride = (size_t)s->p->arena_width;
    const float *x = cpu_row(s, op->x, 0);
    float *y = cpu_row(s, op->y, 0);
    float *ws = s->ctx->thread_ws[thread];
    if (j->ckpt) /* the checkpoints first: the state before each row, which the kernels then update */
        conv_checkpoints(T, K, x, stride, j->state, c0, c1, j->ckpt, j->ckpt_slot);
    /* the vector kernel, then the channels left */
    c0 += fp4rt_conv1d_silu_simd(s->ctx->isa, T, K, x, stride, op->w, j->state, y, stride, c0, c1, ws);
    fp4rt_conv1d_silu_channels(T, K, x, stride, op->w, j->state, y, stride, c0, c1, ws, NULL, 0);
}

fp4rt_status fp4rt_cpu_conv1d_silu(const cpu_step *s, const fp4rt_op *op) {
    int K = op->group_dim, C = op->x.cols;
    size_t portable = (size_t)(K - 1 + s->step->n_tokens), simd = (size_t)(2 * K - 1) * C; /* a range <= C */
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, 0, portable > simd ? portable : simd);
    if (st) return st;
    size_t off = (size_t)op->slot * C * (K - 1);
    conv_job j = {s, op, (float *)s->sb->conv->data + off, NULL, 0};
    j.ckpt = ckpt_at(s, 0, off, &j.ckpt_slot);
    fp4rt_pool_for(s->ctx->pool, C, 64, conv_range, &j);
    return FP4RT_OK;
}

void fp4rt_gdn_recurrent(int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                         const float *v, size_t v_stride, const float *beta, const float *g,
                         size_t bg_stride, float *S, float *o, size_t o_stride) {
    float u[1024];
    for (int t = 0; t < T; t++) {
        const float *qt = q + t * qk_stride, *kt = k + t * qk_stride, *vt = v + t * v_stride;
        float decay = fp4rt_cexp(g[t * bg_stride]), b = beta[t * bg_stride];
        for (int i = 0; i < dk * dv; i++) S[i] *= decay;
        for (int e = 0; e < dv; e++) u[e] = 0;
        for (int i = 0; i < dk; i++)
            for (int e = 0; e < dv; e++) u[e] += kt[i] * S[i * dv + e]; /* m = k S */
        for (int e = 0; e < dv; e++) u[e] = b * (vt[e] - u[e]);
        for (int i = 0; i < dk; i++)
            for (int e = 0; e < dv; e++) S[i * dv + e] += kt[i] * u[e];
        float *ot = o + t * o_stride;
        for (int e = 0; e < dv; e++) ot[e] = 0;
        for (int i = 0; i < dk; i++)
            for (int e = 0; e < dv; e++) ot[e] += qt[i] * S[i * dv + e];
    }
}

size_t fp4rt_gdn_chunk_ws_floats(int chunk, int dk, int dv) {
    size_t portable = (size_t)chunk + (size_t)chunk * chunk + (size_t)chunk * dv;
    size_t simd = fp4rt_gdn_chunk_ws_floats_simd(chunk, dk, dv);
    return portable > simd ? portable : simd;
}

static float dotf(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* One chunk of c tokens (docs/MODEL.md §2.4, chunked form). gamma: in-chunk cumulative
 * log decay; A: strictly lower [c, c] of beta_r (k_r . k_s) exp(gamma_r - gamma_s).
 * V' = U - W S with (I + A) U = diag(beta) V and (I + A) W = diag(beta exp(gamma)) K
 * is computed in one forward substitution, since (I + A) V' = diag(beta) (V -
 * diag(exp gamma) K S). Then O = diag(exp gamma) Q S + tril(Q K^T . decay) V' and
 * S <- exp(gamma_last) S + (diag(exp(gamma_last - gamma)) K)^T V'. */
static void gdn_chunk(int c, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                      const float *v, size_t v_stride, const float *beta, const float *g,
                      size_t bg_stride, float *S, float *o, size_t o_stride, float *ws) {
    float *gamma = ws, *A = gamma + c, *U = A + (size_t)c * c;
    float acc = 0;
    for (int r = 0; r < c; r++) gamma[r] = acc += g[r * bg_stride];
    for (int r = 0; r < c; r++)
        for (int s = 0; s < r; s++)
            A[r * c + s] = beta[r * bg_stride] * dotf(k + r * qk_stride, k + s * qk_stride, dk) *
                           fp4rt_cexp(gamma[r] - gamma[s]);
    for (int r = 0; r < c; r++) {
        float br = beta[r * bg_stride], eg = fp4rt_cexp(gamma[r]);
        float *Ur = U + (size_t)r * dv;
        const float *vr = v + r * v_stride, *kr = k + r * qk_stride;
        for (int e = 0; e < dv; e++) Ur[e] = 0;
        for (int i = 0; i < dk; i++) /* k_r S */
            for (int e = 0; e < dv; e++) Ur[e] += kr[i] * S[i * dv + e];
        for (int e = 0; e < dv; e++) Ur[e] = br * (vr[e] - eg * Ur[e]);
        for (int s = 0; s < r; s++) {
            float a = A[r * c + s];
            for (int e = 0; e < dv; e++) Ur[e] -= a * U[(size_t)s * dv + e];
        }
    }
    /* outputs with the incoming state */
    for (int r = 0; r < c; r++) {
        float *orow = o + r * o_stride;
        const float *qr = q + r * qk_stride;
        float eg = fp4rt_cexp(gamma[r]);
        for (int e = 0; e < dv; e++) orow[e] = 0;
        for (int i = 0; i < dk; i++) {
            float qi = qr[i] * eg;
            for (int e = 0; e < dv; e++) orow[e] += qi * S[i * dv + e];
        }
        for (int s = 0; s <= r; s++) {
            float a = dotf(qr, k + s * qk_stride, dk) * fp4rt_cexp(gamma[r] - gamma[s]);
            for (int e = 0; e < dv; e++) orow[e] += a * U[(size_t)s * dv + e];
        }
    }
    /* state update */
    float last = gamma[c - 1], el = fp4rt_cexp(last);
    for (int i = 0; i < dk * dv; i++) S[i] *= el;
    for (int s = 0; s < c; s++) {
        const float *ks = k + s * qk_stride;
        float d = fp4rt_cexp(last - gamma[s]);
        for (int i = 0; i < dk; i++) {
            float ki = ks[i] * d;
            for (int e = 0; e < dv; e++) S[i * dv + e] += ki * U[(size_t)s * dv + e];
        }
    }
}

void fp4rt_gdn_chunked(int T, int chunk, int dk, int dv, const float *q, const float *k,
                       size_t qk_stride, const float *v, size_t v_stride, const float *beta,
                       const float *g, size_t bg_stride, float *S, float *o, size_t o_stride,
                       float *ws) {
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int c = FP4RT_MIN(chunk, T - t0);
        gdn_chunk(c, dk, dv, q + t0 * qk_stride, k + t0 * qk_stride, qk_stride, v + t0 * v_stride,
                  v_stride, beta + t0 * bg_stride, g + t0 * bg_stride, bg_stride, S,
                  o + t0 * o_stride, o_stride, ws);
    }
}

typedef struct gdn_job {
    const cpu_step *s;
    const fp4rt_op *op;
    float *state; /* [v_heads][dk][dv] of this layer */
    float *ckpt;  /* NULL, or this layer's state in checkpoint slot 0 (decode_rows) */
    size_t ckpt_slot;
} gdn_job;

static void gdn_range(void *arg, long h0, long h1, int thread) {
    const gdn_job *j = arg;
    const cpu_step *s = j->s;
    const fp4rt_op *op = j->op;
    const fp4rt_config *c = &s->p->weights->cfg;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    int T = s->step->n_tokens, dk = c->lin_k_dim, dv = c->lin_v_dim;
    int ratio = c->lin_v_heads / c->lin_k_heads, key_dim = fp4rt_cfg_key_dim(c);
    size_t stride = (size_t)s->p->arena_width;
    float *beta = s->ctx->thread_ws[thread], *g = beta + T, *ws = g + T;
    for (long h = h0; h < h1; h++) {
        int kh = (int)h / ratio; /* value head h reads key head h / (V/K) */
        for (int t = 0; t < T; t++) {
            beta[t] = fp4rt_sigmoid(cpu_row(s, op->z, t)[h]);
            g[t] = L->neg_A[h] * fp4rt_softplus(cpu_row(s, op->a, t)[h] + L->dt_bias[h]);
        }
        const float *x = cpu_row(s, op->x, 0);
        const float *q = x + (size_t)kh * dk, *k = x + key_dim + (size_t)kh * dk;
        const float *v = x + 2 * (size_t)key_dim + (size_t)h * dv;
        float *S = j->state + (size_t)h * dk * dv;
        float *o = cpu_row(s, op->y, 0) + (size_t)h * dv;
        if (T == 1 || s->step->decode_rows) /* row by row: a 1-token step's bits */
            for (int t = 0; t < T; t++) {
                if (j->ckpt) /* the state before row t */
                    memcpy(j->ckpt + t * j->ckpt_slot + (size_t)h * dk * dv, S, (size_t)dk * dv * sizeof(float));
                if (!fp4rt_gdn_recurrent_simd(s->ctx->isa, 1, dk, dv, q + t * stride, k + t * stride, stride,
                                              v + t * stride, stride, beta + t, g + t, 1, S, o + t * stride, stride))
                    fp4rt_gdn_recurrent(1, dk, dv, q + t * stride, k + t * stride, stride, v + t * stride, stride,
                                        beta + t, g + t, 1, S, o + t * stride, stride);
            }
        else
            fp4rt_gdn_chunked_isa(s->ctx->isa, T, FP4RT_GDN_CHUNK, dk, dv, q, k, stride, v, stride, beta, g, 1,
                                  S, o, stride, ws);
    }
}

fp4rt_status fp4rt_cpu_gated_delta(const cpu_step *s, const fp4rt_op *op) {
    const fp4rt_config *c = &s->p->weights->cfg;
    if (c->lin_v_dim > 1024) return fp4rt_fail(FP4RT_UNSUPPORTED, "linear_value_head_dim %d > 1024", c->lin_v_dim);
    size_t need = 2 * (size_t)s->step->n_tokens +
                  fp4rt_gdn_chunk_ws_floats(FP4RT_GDN_CHUNK, c->lin_k_dim, c->lin_v_dim);
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, 0, need);
    if (st) return st;
    size_t off = (size_t)op->slot * c->lin_v_heads * c->lin_k_dim * c->lin_v_dim;
    gdn_job j = {s, op, (float *)s->sb->ssm->data + off, NULL, 0};
    j.ckpt = ckpt_at(s, 1, off, &j.ckpt_slot);
    fp4rt_pool_for(s->ctx->pool, c->lin_v_heads, 1, gdn_range, &j);
    return FP4RT_OK;
}
