/* Building the program (docs/MODEL.md §2) and planning its activation arena. */
#include "runtime/model/program.h"
#include "runtime/model/program_builder.h"

#include "runtime/base/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *fp4rt_op_name(fp4rt_op_kind k) {
    static const char *const names[FP4RT_OP_COUNT] = {
        "embed",      "rmsnorm",     "gated_rmsnorm", "l2norm",      "linear",
        "rope",       "kv_append",   "attention",     "sigmoid_gate", "conv1d_silu",
        "gated_delta", "swiglu",     "add",           "layernorm",   "bias",
        "gelu",       "attention_full"};
    return (unsigned)k < FP4RT_OP_COUNT ? names[k] : "?";
}

typedef fp4rt_pbuilder builder; /* program_builder.h */

static int new_buf(builder *b, int width) {
    if (b->st) return 0;
    if (b->p->n_bufs == b->cap_bufs) {
        int cap = b->cap_bufs ? 2 * b->cap_bufs : 64;
        int *w = realloc(b->p->buf_width, (size_t)cap * sizeof(int));
        if (!w) {
            b->st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory building the program");
            return 0;
        }
        b->p->buf_width = w;
        b->cap_bufs = cap;
    }
    b->p->buf_width[b->p->n_bufs] = width;
    return b->p->n_bufs++;
}

static fp4rt_op *emit(builder *b, fp4rt_op_kind kind, int layer) {
    static fp4rt_op dummy;
    if (b->st) return &dummy;
    if (b->p->n_ops == b->cap_ops) {
        int cap = b->cap_ops ? 2 * b->cap_ops : 256;
        fp4rt_op *o = realloc(b->p->ops, (size_t)cap * sizeof(fp4rt_op));
        if (!o) {
            b->st = fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory building the program");
            return &dummy;
        }
        b->p->ops = o;
        b->cap_ops = cap;
    }
    fp4rt_op *op = &b->p->ops[b->p->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->layer = layer;
    op->slot = -1;
    op->x.buf = op->y.buf = op->z.buf = op->a.buf = -1;
    return op;
}


static void rmsnorm(builder *b, int layer, fp4rt_view x, fp4rt_view y, const float *w, int groups,
                    int dim, int stride, float eps) {
    fp4rt_op *op = emit(b, FP4RT_OP_RMSNORM, layer);
    op->x = x;
    op->y = y;
    op->w = w;
    op->n_groups = groups;
    op->group_dim = dim;
    op->group_stride = stride;
    op->eps = eps;
}

static void linear(builder *b, int layer, fp4rt_view x, fp4rt_view y, const fp4rt_linear *lin) {
    fp4rt_op *op = emit(b, FP4RT_OP_LINEAR, layer);
    op->x = x;
    op->y = y;
    op->lin = lin;
}

static void add(builder *b, int layer, fp4rt_view x, fp4rt_view z) {
    fp4rt_op *op = emit(b, FP4RT_OP_ADD, layer);
    op->x = x;
    op->z = z;
    op->y = x;
}

/* A text ROPE op's position layout (program.h): M-RoPE from the config. */
static void rope_text(fp4rt_op *op, const fp4rt_config *c) {
    op->rotary_dim = c->rotary_dim;
    op->rope_theta = c->rope_theta;
    op->rope_mode = FP4RT_ROPE_TEXT;
    memcpy(op->mrope_section, c->mrope_section, sizeof op->mrope_section);
    op->mrope_interleaved = c->mrope_interleaved;
}

static void attention_mixer(builder *b, const fp4rt_config *c, int l, int slot, int a) {
    const fp4rt_layer_weights *L = &b->p->weights->layers[l];
    int hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    int qg = new_buf(b, 2 * nh * hd); /* per head: query [hd] then gate [hd] */
    int k = new_buf(b, nkv * hd), v = new_buf(b, nkv * hd);
    int o = new_buf(b, nh * hd), t = new_buf(b, c->hidden);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, qg), &L->q);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, k), &L->k);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, v), &L->v);
    /* q/k norm (zero-centred, per head) before RoPE */
    rmsnorm(b, l, fp4rt_pb_cols(qg, 0, 2 * nh * hd), fp4rt_pb_cols(qg, 0, 2 * nh * hd), L->q_norm, nh, hd, 2 * hd,
            c->rms_eps);
    rmsnorm(b, l, fp4rt_pb_whole(b, k), fp4rt_pb_whole(b, k), L->k_norm, nkv, hd, hd, c->rms_eps);
    fp4rt_op *op = emit(b, FP4RT_OP_ROPE, l);
    op->x = op->y = fp4rt_pb_cols(qg, 0, 2 * nh * hd);
    op->n_groups = nh;
    op->group_dim = hd;
    op->group_stride = 2 * hd;
    rope_text(op, c);
    op = emit(b, FP4RT_OP_ROPE, l);
    op->x = op->y = fp4rt_pb_whole(b, k);
    op->n_groups = nkv;
    op->group_dim = hd;
    op->group_stride = hd;
    rope_text(op, c);
    op = emit(b, FP4RT_OP_KV_APPEND, l);
    op->x = fp4rt_pb_whole(b, k);
    op->z = fp4rt_pb_whole(b, v);
    op->slot = slot;
    op->n_groups = nkv;
    op->group_dim = hd;
    op = emit(b, FP4RT_OP_ATTENTION, l);
    op->x = fp4rt_pb_cols(qg, 0, 2 * nh * hd);
    op->y = fp4rt_pb_whole(b, o);
    op->slot = slot;
    op->n_groups = nh;
    op->n_kv_heads = nkv;
    op->group_dim = hd;
    op->group_stride = 2 * hd;
    op->scale = 1.0f / sqrtf((float)hd);
    op = emit(b, FP4RT_OP_SIGMOID_GATE, l);
    op->x = op->y = fp4rt_pb_whole(b, o);
    op->z = fp4rt_pb_cols(qg, hd, 2 * nh * hd - hd);
    op->n_groups = nh;
    op->group_dim = hd;
    op->group_stride = hd;
    op->z_group_stride = 2 * hd;
    linear(b, l, fp4rt_pb_whole(b, o), fp4rt_pb_whole(b, t), &L->o);
    add(b, l, fp4rt_pb_whole(b, b->p->hidden_buf), fp4rt_pb_whole(b, t));
}

static void gdn_mixer(builder *b, const fp4rt_config *c, int l, int slot, int a) {
    const fp4rt_layer_weights *L = &b->p->weights->layers[l];
    int kd = fp4rt_cfg_key_dim(c), vd = fp4rt_cfg_value_dim(c), cd = fp4rt_cfg_conv_dim(c);
    int mix = new_buf(b, cd), z = new_buf(b, vd);
    int bb = new_buf(b, c->lin_v_heads), al = new_buf(b, c->lin_v_heads);
    int o = new_buf(b, vd), t = new_buf(b, c->hidden);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, mix), &L->qkv);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, z), &L->z);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, bb), &L->b);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, al), &L->a);
    fp4rt_op *op = emit(b, FP4RT_OP_CONV1D_SILU, l);
    op->x = op->y = fp4rt_pb_whole(b, mix);
    op->slot = slot;
    op->w = L->conv_w;
    op->group_dim = c->conv_kernel;
    /* q: L2 norm then * dk^-1/2 ; k: L2 norm */
    op = emit(b, FP4RT_OP_L2NORM, l);
    op->x = op->y = fp4rt_pb_cols(mix, 0, kd);
    op->n_groups = c->lin_k_heads;
    op->group_dim = op->group_stride = c->lin_k_dim;
    op->eps = 1e-6f;
    op->scale = 1.0f / sqrtf((float)c->lin_k_dim);
    op = emit(b, FP4RT_OP_L2NORM, l);
    op->x = op->y = fp4rt_pb_cols(mix, kd, kd);
    op->n_groups = c->lin_k_heads;
    op->group_dim = op->group_stride = c->lin_k_dim;
    op->eps = 1e-6f;
    op->scale = 1.0f;
    op = emit(b, FP4RT_OP_GATED_DELTA, l);
    op->x = fp4rt_pb_whole(b, mix);
    op->z = fp4rt_pb_whole(b, bb);
    op->a = fp4rt_pb_whole(b, al);
    op->y = fp4rt_pb_whole(b, o);
    op->slot = slot;
    op = emit(b, FP4RT_OP_GATED_RMSNORM, l);
    op->x = op->y = fp4rt_pb_whole(b, o);
    op->z = fp4rt_pb_whole(b, z);
    op->w = L->gdn_norm;
    op->n_groups = c->lin_v_heads;
    op->group_dim = op->group_stride = c->lin_v_dim;
    op->eps = c->rms_eps;
    linear(b, l, fp4rt_pb_whole(b, o), fp4rt_pb_whole(b, t), &L->out);
    add(b, l, fp4rt_pb_whole(b, b->p->hidden_buf), fp4rt_pb_whole(b, t));
}

static void mlp(builder *b, const fp4rt_config *c, int l) {
    const fp4rt_layer_weights *L = &b->p->weights->layers[l];
    int a = new_buf(b, c->hidden);
    int g = new_buf(b, c->intermediate), u = new_buf(b, c->intermediate);
    int t = new_buf(b, c->hidden);
    rmsnorm(b, l, fp4rt_pb_whole(b, b->p->hidden_buf), fp4rt_pb_whole(b, a), L->post_norm, 1, c->hidden, c->hidden,
            c->rms_eps);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, g), &L->gate);
    linear(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, u), &L->up);
    fp4rt_op *op = emit(b, FP4RT_OP_SWIGLU, l);
    op->x = op->y = fp4rt_pb_whole(b, g);
    op->z = fp4rt_pb_whole(b, u);
    linear(b, l, fp4rt_pb_whole(b, g), fp4rt_pb_whole(b, t), &L->down);
    add(b, l, fp4rt_pb_whole(b, b->p->hidden_buf), fp4rt_pb_whole(b, t));
}

/* Liveness-based arena planning: each buffer lives from its first to its last
 * use; buffers are placed first-fit at the lowest column offset that does not
 * collide with a buffer alive at the same time. */
static fp4rt_status plan_arena(fp4rt_program *p) {
    int n = p->n_bufs;
    int *first = malloc((size_t)n * sizeof(int)), *last = malloc((size_t)n * sizeof(int));
    p->buf_offset = malloc((size_t)n * sizeof(int));
    if (!first || !last || !p->buf_offset) {
        free(first);
        free(last);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory planning the arena");
    }
    for (int i = 0; i < n; i++) {
        first[i] = INT32_MAX;
        last[i] = -1;
    }
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_view *vs[4] = {&p->ops[i].x, &p->ops[i].y, &p->ops[i].z, &p->ops[i].a};
        for (int j = 0; j < 4; j++) {
            int bidx = vs[j]->buf;
            if (bidx < 0) continue;
            if (i < first[bidx]) first[bidx] = i;
            if (i > last[bidx]) last[bidx] = i;
        }
    }
    /* the residual stream lives throughout */
    first[p->hidden_buf] = 0;
    last[p->hidden_buf] = p->n_ops;
    p->arena_width = 0;
    for (int i = 0; i < n; i++) { /* buffers are created in order of first use */
        int off = 0, moved = 1;
        while (moved) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                if (last[j] < first[i] || first[j] > last[i]) continue; /* not alive together */
                int a0 = p->buf_offset[j], a1 = a0 + p->buf_width[j];
                if (off < a1 && a0 < off + p->buf_width[i]) {
                    off = a1;
                    moved = 1;
                }
            }
        }
        p->buf_offset[i] = off;
        if (off + p->buf_width[i] > p->arena_width) p->arena_width = off + p->buf_width[i];
    }
    free(first);
    free(last);
    return FP4RT_OK;
}

/* The logits op over `normed` (the last op: its input rows stay in the arena
 * after a step), the arena plan, and *out. */
static fp4rt_status finish(builder *b, int normed, fp4rt_program **out) {
    fp4rt_program *p = b->p;
    const fp4rt_weights *w = p->weights;
    fp4rt_op *op = emit(b, FP4RT_OP_LINEAR, -1);
    op->x = fp4rt_pb_whole(b, normed);
    op->y = fp4rt_pb_cols(FP4RT_BUF_LOGITS, 0, w->cfg.vocab);
    op->lin = &w->lm_head;
    op->is_logits = 1;
    fp4rt_status st = b->st ? b->st : plan_arena(p);
    if (st) {
        fp4rt_program_free(p);
        return st;
    }
    p->out_hidden_col = p->buf_offset[normed];
    p->in_hidden_col = -1;
    *out = p;
    return FP4RT_OK;
}

fp4rt_status fp4rt_program_build(const fp4rt_weights *w, fp4rt_program **out) {
    *out = NULL;
    fp4rt_program *p = fp4rt_calloc(1, sizeof *p, "program");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->weights = w;
    builder b = {.p = p};
    const fp4rt_config *c = &w->cfg;
    p->hidden_buf = new_buf(&b, c->hidden);
    fp4rt_op *op = emit(&b, FP4RT_OP_EMBED, -1);
    op->y = fp4rt_pb_whole(&b, p->hidden_buf);
    for (int l = 0; l < c->n_layers; l++) {
        int a = new_buf(&b, c->hidden);
        rmsnorm(&b, l, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, a), w->layers[l].input_norm, 1,
                c->hidden, c->hidden, c->rms_eps);
        if (c->layer_kind[l] == FP4RT_LAYER_ATTENTION)
            attention_mixer(&b, c, l, p->n_attn_layers++, a);
        else
            gdn_mixer(&b, c, l, p->n_gdn_layers++, a);
        mlp(&b, c, l);
    }
    int a = new_buf(&b, c->hidden);
    rmsnorm(&b, -1, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, a), w->final_norm, 1, c->hidden, c->hidden,
            c->rms_eps);
    return finish(&b, a, out);
}

fp4rt_status fp4rt_program_build_mtp(const fp4rt_weights *w, fp4rt_program **out) {
    *out = NULL;
    if (!w->n_mtp_layers) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "the model has no MTP head");
    fp4rt_program *p = fp4rt_calloc(1, sizeof *p, "MTP program");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->weights = w;
    builder b = {.p = p};
    const fp4rt_config *c = &w->cfg;
    int h = c->hidden;
    p->hidden_buf = new_buf(&b, h);
    int cat = new_buf(&b, 2 * h); /* [embedding | hidden state in] */
    fp4rt_op *op = emit(&b, FP4RT_OP_EMBED, -1);
    op->y = fp4rt_pb_cols(cat, 0, h);
    rmsnorm(&b, -1, fp4rt_pb_cols(cat, 0, h), fp4rt_pb_cols(cat, 0, h), w->mtp_norm_embed, 1, h, h, c->rms_eps);
    rmsnorm(&b, -1, fp4rt_pb_cols(cat, h, h), fp4rt_pb_cols(cat, h, h), w->mtp_norm_hidden, 1, h, h, c->rms_eps);
    linear(&b, -1, fp4rt_pb_whole(&b, cat), fp4rt_pb_whole(&b, p->hidden_buf), &w->mtp_fc);
    for (int j = 0; j < w->n_mtp_layers; j++) {
        int l = c->n_layers + j;
        int a = new_buf(&b, h);
        rmsnorm(&b, l, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, a),
                w->layers[l].input_norm, 1, h, h, c->rms_eps);
        attention_mixer(&b, c, l, p->n_attn_layers++, a);
        mlp(&b, c, l);
    }
    int a = new_buf(&b, h);
    rmsnorm(&b, -1, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, a), w->mtp_norm, 1, h, h, c->rms_eps);
    fp4rt_status st = finish(&b, a, out);
    if (!st) p->in_hidden_col = p->buf_offset[cat] + h;
    return st;
}

void fp4rt_program_free(fp4rt_program *p) {
    if (!p) return;
    free(p->ops);
    free(p->buf_width);
    free(p->buf_offset);
    free(p);
}

size_t fp4rt_kv_elem_size(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? 4 : t == FP4RT_KV_FP8 ? 1 : 2;
}

const char *fp4rt_kv_type_name(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? "F32" : t == FP4RT_KV_FP8 ? "FP8" : "BF16";
}

/* The builder for the other program files (program_builder.h). */
int fp4rt_pb_buf(fp4rt_pbuilder *b, int width) { return new_buf(b, width); }
fp4rt_op *fp4rt_pb_emit(fp4rt_pbuilder *b, fp4rt_op_kind kind, int layer) { return emit(b, kind, layer); }
fp4rt_status fp4rt_pb_plan(fp4rt_program *p) { return plan_arena(p); }
