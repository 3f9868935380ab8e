/* CPU kernels of gated full attention: partial NeoX RoPE, KV-cache append,
 * causal GQA softmax attention over the cache, sigmoid output gate.
 *
 * KV cache layout (sb->kv): [n_attn_layers][2 (K, V)][n_ctx][n_kv_heads][head_dim],
 * elements BF16, F32 or FP8 (sb->kv_type; FP8 holds E4M3 of K / k_scale, V / v_scale). */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"

#include <math.h>
#include <string.h>

#include "runtime/backend/backend.h"

static size_t kv_elem_size(const fp4rt_session_buffers *sb) { return fp4rt_kv_elem_size(sb->kv_type); }

/* Address of (slot, which, pos) row of n_kv_heads * head_dim elements. */
static unsigned char *kv_row(const cpu_step *s, int slot, int which, int pos) {
    const fp4rt_config *c = &s->p->weights->cfg;
    size_t row = (size_t)c->n_kv_heads * c->head_dim * kv_elem_size(s->sb);
    size_t n_ctx = (size_t)s->sb->n_ctx;
    return (unsigned char *)s->sb->kv->data + (((size_t)slot * 2 + which) * n_ctx + pos) * row;
}

/* scale: the FP8 k_scale / v_scale of the layer (unused for BF16 / F32). */
static void kv_load(const fp4rt_session_buffers *sb, const unsigned char *src, float *dst, int n,
                    float scale) {
    if (sb->kv_type == FP4RT_KV_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    if (sb->kv_type == FP4RT_KV_FP8) {
        for (int i = 0; i < n; i++) dst[i] = fp4rt_e4m3_to_f32(src[i]) * scale;
        return;
    }
    for (int i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * (size_t)i, 2);
        dst[i] = fp4rt_bf16_to_f32(h);
    }
}

static void kv_store(const fp4rt_session_buffers *sb, unsigned char *dst, const float *src, int n,
                     float scale) {
    if (sb->kv_type == FP4RT_KV_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    if (sb->kv_type == FP4RT_KV_FP8) {
        for (int i = 0; i < n; i++) dst[i] = fp4rt_f32_to_e4m3_sat(src[i] / scale);
        return;
    }
    for (int i = 0; i < n; i++) {
        uint16_t h = fp4rt_f32_to_bf16(src[i]);
        memcpy(dst + 2 * (size_t)i, &h, 2);
    }
}

/* Rotate-half over the first rotary_dim lanes of each group; frequency j of row t
 * turns by (float)position * inv_freq[j], the position component and inv_freq
 * of the op's mode (backend.h fp4rt_rope_component / fp4rt_rope_inv_freq). Plain
 * text RoPE (positions NULL, rope_delta 0) is pos0 + t for every frequency. */
fp4rt_status fp4rt_cpu_rope(const cpu_step *s, const fp4rt_op *op) {
    fp4rt_status st = fp4rt_rope_op_check(op);
    if (st) return st;
    int half = op->rotary_dim / 2;
    float inv_freq[512];
    unsigned char comp[512];
    for (int j = 0; j < half; j++) {
        inv_freq[j] = fp4rt_rope_inv_freq(op, j);
        comp[j] = (unsigned char)fp4rt_rope_component(op, j);
    }
    for (int t = 0; t < s->step->n_tokens; t++) {
        float pos[3];
        for (int c = 0; c < 3; c++) pos[c] = (float)fp4rt_step_rope_pos(s->step, t, c);
        float *x = cpu_row(s, op->x, t), *y = cpu_row(s, op->y, t);
        for (int j = 0; j < half; j++) {
            float ang = pos[comp[j]] * inv_freq[j], c = cosf(ang), sn = sinf(ang);
            for (int g = 0; g < op->n_groups; g++) {
                size_t o = (size_t)g * op->group_stride;
                float x1 = x[o + j], x2 = x[o + j + half];
                y[o + j] = x1 * c - x2 * sn;
                y[o + j + half] = x2 * c + x1 * sn;
            }
        }
        if (x != y) /* lanes past rotary_dim pass through */
            for (int g = 0; g < op->n_groups; g++)
                memcpy(y + (size_t)g * op->group_stride + op->rotary_dim,
                       x + (size_t)g * op->group_stride + op->rotary_dim,
                       (size_t)(op->group_dim - op->rotary_dim) * sizeof(float));
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_kv_append(const cpu_step *s, const fp4rt_op *op) {
    int n = op->n_groups * op->group_dim;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    for (int t = 0; t < s->step->n_tokens; t++) {
        int pos = s->step->pos0 + t;
        kv_store(s->sb, kv_row(s, op->slot, 0, pos), cpu_row(s, op->x, t), n, L->k_scale);
        kv_store(s->sb, kv_row(s, op->slot, 1, pos), cpu_row(s, op->z, t), n, L->v_scale);
    }
    return FP4RT_OK;
}

/* Query heads per KV head the kernel takes (Qwen3.5 / 3.6: 4 and 6). */
#define FP4RT_ATTN_GROUP_MAX 64

/* Positions per block of scores: the q.k dots of a block run as
 * independent chains, one per position, instead of one latency-bound chain.
 * Spans of the decode splits are whole blocks (FP4RT_ATTN_TILE), so a block
 * never straddles two splits of a row. */
#define ATTN_BLOCK 16
_Static_assert(ATTN_BLOCK == FP4RT_ATTN_TILE, "a block of scores lies in one split");

/* Rows per work item at most: the rows of an item share each block's decoded
 * K and V (a verify step's rows attend over the same cache positions). */
#define ATTN_ROWS_MAX FP4RT_DECODE_ROWS_MAX

typedef struct attn_job {
    const cpu_step *s;
    const fp4rt_op *op;
    int rows; /* rows per item */
    int ns;   /* splits per row */
} attn_job;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FP4RT_NO_MULTIVERSION)
#define ATTN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define ATTN_HOT
#endif

/* d[g * ATTN_BLOCK + p] = q[g] . k[p] for the ATTN_BLOCK positions whose
 * decoded K slices are kt (transposed: kt[i * ATTN_BLOCK + p]); each dot the
 * contract's sequential sum d = 0, d += q[i] * k[i] for i = 0 .. hd - 1 (every
 * product and sum rounded to FP32, no FMA), the positions side by side. */
#if defined(__GNUC__) || defined(__clang__)
typedef float attn_v8 __attribute__((vector_size(32)));
ATTN_HOT static void attn_scores(const float *const *q, int group, int hd, const float *kt, float *d) {
    for (int g = 0; g < group; g++) {
        attn_v8 a0 = {0}, a1 = {0}, k0, k1;
        const float *qg = q[g];
        for (int i = 0; i < hd; i++) {
            memcpy(&k0, kt + i * ATTN_BLOCK, sizeof k0);
            memcpy(&k1, kt + i * ATTN_BLOCK + 8, sizeof k1);
            attn_v8 qi = {qg[i], qg[i], qg[i], qg[i], qg[i], qg[i], qg[i], qg[i]};
            a0 = a0 + qi * k0; /* lane by lane: the product rounded, then the sum */
            a1 = a1 + qi * k1;
        }
        memcpy(d + g * ATTN_BLOCK, &a0, sizeof a0);
        memcpy(d + g * ATTN_BLOCK + 8, &a1, sizeof a1);
    }
}
#else
static void attn_scores(const float *const *q, int group, int hd, const float *kt, float *d) {
    for (int g = 0; g < group; g++) {
        float acc[ATTN_BLOCK] = {0};
        for (int i = 0; i < hd; i++)
            for (int p = 0; p < ATTN_BLOCK; p++) acc[p] += q[g][i] * kt[i * ATTN_BLOCK + p];
        memcpy(d + g * ATTN_BLOCK, acc, sizeof acc);
    }
}
#endif

/* y[i] = fp4rt_cexp(x[i]), i < n: the vector rows where the CPU has them (the same bits). */
static void cexp_row(const float *x, float *y, int n) {
    if (fp4rt_cpu_cexp_row_simd(x, y, n)) return;
    for (int i = 0; i < n; i++) y[i] = fp4rt_cexp(x[i]);
}

/* The online softmax of the numerics contract (backend.h) over the first e
 * positions of a block, for the `group` query heads of one row: scores d
 * (attn_scores), V rows vb[p * hd]; head g's state st + g * st_stride =
 * {m, l, acc[hd]}. Per head and position, in order, exactly the one-head
 * sequence
 *   if (sc > m) { corr = cexp(m - sc); l = l * corr; acc = acc * corr; m = sc; }
 *   w = cexp(sc - m); l = l + w; acc = acc + w * v     (sc = d * scale)
 * with the block's running maxima found first, so that its exps run as vector
 * rows (cexp_row: the scalar's bits). */
ATTN_HOT static void attn_update(int group, int hd, const float *d, int e, float scale, const float *vb, float *st,
                                 size_t st_stride) {
    float x1[ATTN_BLOCK], x2[ATTN_BLOCK], w[ATTN_BLOCK], corr[ATTN_BLOCK];
    unsigned char up[ATTN_BLOCK];
    for (int g = 0; g < group; g++) {
        float *m = st + g * st_stride, *l = m + 1, *acc = m + 2, mm = *m;
        int any = 0;
        for (int p = 0; p < e; p++) {
            float sc = d[g * ATTN_BLOCK + p] * scale, prev = mm;
            up[p] = sc > mm;
            if (up[p]) mm = sc, any = 1;
            x1[p] = sc - mm;   /* w's argument, m after the position */
            x2[p] = prev - sc; /* corr's, where the maximum moved */
        }
        cexp_row(x1, w, e);
        if (any) cexp_row(x2, corr, e);
        float ll = *l;
        for (int p = 0; p < e; p++) {
            const float *v = vb + (size_t)p * hd;
            if (up[p]) {
                ll = ll * corr[p];
                for (int i = 0; i < hd; i++) acc[i] = acc[i] * corr[p];
            }
            ll = ll + w[p];
            for (int i = 0; i < hd; i++) acc[i] = acc[i] + w[p] * v[i];
        }
        *l = ll;
        *m = mm;
    }
}

/* One (row group, KV head) pair per index: the KV head's query heads of up to
 * job->rows rows together, over blocks of ATTN_BLOCK positions from 0; each
 * block's K slices are decoded (and transposed) and its V slices decoded once
 * for all of them. Row t attends positions 0 .. pos0 + t in ns decode splits
 * (spans of whole blocks) or one, each split an online softmax of its own,
 * merged in split order as shaders/attention_merge.comp. Thread workspace: the
 * block's K rows, K transposed and V rows [ATTN_BLOCK][head_dim] each, then
 * per row, query head and split m, l, acc [head_dim]. */
static void attn_range(void *arg, long i0, long i1, int thread) {
    const attn_job *j = arg;
    const cpu_step *s = j->s;
    const fp4rt_op *op = j->op;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    int nh = op->n_groups, nkv = op->n_kv_heads, hd = op->group_dim, ns = j->ns;
    int group = nh / nkv, T = s->step->n_tokens, pos0 = s->step->pos0;
    size_t hs = (size_t)ns * (hd + 2), rs = (size_t)group * hs; /* one query head's splits, one row's */
    size_t blk = (size_t)ATTN_BLOCK * hd;
    float *kraw = s->ctx->thread_ws[thread], *kt = kraw + blk, *vb = kt + blk, *part = vb + blk;
    float d[FP4RT_ATTN_GROUP_MAX * ATTN_BLOCK];
    for (long i = i0; i < i1; i++) {
        int t0 = (int)(i / nkv) * j->rows, kvh = (int)(i % nkv);
        int nr = FP4RT_MIN(j->rows, T - t0), end = pos0 + t0 + nr; /* positions the rows read: [0, end) */
        size_t koff = (size_t)kvh * hd * kv_elem_size(s->sb);
        const float *q[ATTN_ROWS_MAX][FP4RT_ATTN_GROUP_MAX];
        int span[ATTN_ROWS_MAX];
        for (int r = 0; r < nr; r++) {
            int len = pos0 + t0 + r + 1;
            span[r] = ns > 1 ? fp4rt_attn_span(len, ns) : len;
            for (int g = 0; g < group; g++)
                q[r][g] = cpu_row(s, op->x, t0 + r) + (size_t)(kvh * group + g) * op->group_stride;
        }
        for (size_t k = 0; k < (size_t)nr * group * ns; k++) {
            float *pk = part + k * (hd + 2);
            pk[0] = -INFINITY;
            pk[1] = 0;
            memset(pk + 2, 0, (size_t)hd * sizeof(float));
        }
        for (int p0 = 0; p0 < end; p0 += ATTN_BLOCK) {
            int n = FP4RT_MIN(ATTN_BLOCK, end - p0);
            for (int p = 0; p < ATTN_BLOCK; p++) {
                float *kr = kraw + (size_t)p * hd;
                if (p < n) {
                    kv_load(s->sb, kv_row(s, op->slot, 0, p0 + p) + koff, kr, hd, L->k_scale);
                    kv_load(s->sb, kv_row(s, op->slot, 1, p0 + p) + koff, vb + (size_t)p * hd, hd, L->v_scale);
                } else {
                    memset(kr, 0, (size_t)hd * sizeof(float)); /* scores unused */
                }
            }
            for (int p = 0; p < ATTN_BLOCK; p++)
                for (int e = 0; e < hd; e++) kt[e * ATTN_BLOCK + p] = kraw[(size_t)p * hd + e];
            for (int r = 0; r < nr; r++) {
                int len = pos0 + t0 + r + 1;
                if (p0 >= len) continue;
                int k = ns > 1 ? p0 / span[r] : 0;
                attn_scores(q[r], group, hd, kt, d);
                attn_update(group, hd, d, FP4RT_MIN(ATTN_BLOCK, len - p0), op->scale, vb,
                            part + r * rs + (size_t)k * (hd + 2), hs);
            }
        }
        for (int r = 0; r < nr; r++)
            for (int g = 0; g < group; g++) {
                const float *ph = part + r * rs + g * hs;
                float *o = cpu_row(s, op->y, t0 + r) + (size_t)(kvh * group + g) * hd;
                if (ns == 1) {
                    for (int e = 0; e < hd; e++) o[e] = ph[2 + e] / ph[1];
                    continue;
                }
                /* merge in split order, as shaders/attention_merge.comp */
                float M = -INFINITY, Lsum = 0;
                for (int k = 0; k < ns; k++) M = fmaxf(M, ph[(size_t)k * (hd + 2)]);
                for (int k = 0; k < ns; k++) {
                    const float *pk = ph + (size_t)k * (hd + 2);
                    if (pk[0] != -INFINITY) Lsum = Lsum + fp4rt_cexp(pk[0] - M) * pk[1];
                }
                for (int e = 0; e < hd; e++) {
                    float a = 0;
                    for (int k = 0; k < ns; k++) {
                        const float *pk = ph + (size_t)k * (hd + 2);
                        if (pk[0] != -INFINITY) a = a + fp4rt_cexp(pk[0] - M) * pk[2 + e];
                    }
                    o[e] = a / Lsum;
                }
            }
    }
}

fp4rt_status fp4rt_cpu_attention(const cpu_step *s, const fp4rt_op *op) {
    int group = op->n_groups / op->n_kv_heads;
    if (op->n_groups % op->n_kv_heads || group > FP4RT_ATTN_GROUP_MAX)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "attention layer %d: %d query heads over %d KV heads (at most %d per KV head)",
                          op->layer, op->n_groups, op->n_kv_heads, FP4RT_ATTN_GROUP_MAX);
    int T = s->step->n_tokens, nkv = op->n_kv_heads, threads = s->ctx->n_threads;
    int ns = fp4rt_attn_splits(s->sb->n_ctx, s->step->decode_rows ? 1 : T);
    /* rows per item: as many as share a block's K and V while every thread has an item */
    int rows = FP4RT_MIN(T, ATTN_ROWS_MAX);
    while (rows > 1 && (long)((T + rows - 1) / rows) * nkv < threads) rows = (rows + 1) / 2;
    size_t need = 3 * (size_t)ATTN_BLOCK * op->group_dim + (size_t)rows * group * ns * (op->group_dim + 2);
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, 0, need);
    if (st) return st;
    attn_job j = {s, op, rows, ns};
    fp4rt_pool_for(s->ctx->pool, (long)((T + rows - 1) / rows) * nkv, 1, attn_range, &j);
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_sigmoid_gate(const cpu_step *s, const fp4rt_op *op) {
    float sg[FP4RT_CPU_GATE_ROW_MAX]; /* sigmoid(z) of one group: the scalar's bits */
    for (int t = 0; t < s->step->n_tokens; t++) {
        const float *x = cpu_row(s, op->x, t), *z = cpu_row(s, op->z, t);
        float *y = cpu_row(s, op->y, t);
        for (int g = 0; g < op->n_groups; g++) {
            const float *xg = x + (size_t)g * op->group_stride, *zg = z + (size_t)g * op->z_group_stride;
            float *yg = y + (size_t)g * op->group_stride;
            if (op->group_dim <= FP4RT_CPU_GATE_ROW_MAX && fp4rt_cpu_sigmoid_row_simd(zg, sg, op->group_dim))
                for (int i = 0; i < op->group_dim; i++) yg[i] = xg[i] * sg[i];
            else
                for (int i = 0; i < op->group_dim; i++) yg[i] = xg[i] * fp4rt_sigmoid(zg[i]);
        }
    }
    return FP4RT_OK;
}
