/* The vision tower's programs (program.h fp4rt_program_build_vision; the math:
 * docs/MODEL.md "Vision encoder", transformers' Qwen3VLVisionModel). */
#include "runtime/model/program.h"
#include "runtime/model/program_builder.h"

#include "runtime/base/common.h"

#include <math.h>
#include <stdlib.h>


/* y = x W^T + bias (bias [n_out]). */
static void linear_bias(fp4rt_pbuilder *b, int layer, fp4rt_view x, fp4rt_view y, const fp4rt_linear *lin,
                        const float *bias) {
    fp4rt_op *op = fp4rt_pb_emit(b, FP4RT_OP_LINEAR, layer);
    op->x = x;
    op->y = y;
    op->lin = lin;
    op = fp4rt_pb_emit(b, FP4RT_OP_BIAS, layer);
    op->x = op->y = y;
    op->b = bias;
}

static void layernorm(fp4rt_pbuilder *b, int layer, fp4rt_view x, fp4rt_view y, const float *w, const float *bias,
                      int dim) {
    fp4rt_op *op = fp4rt_pb_emit(b, FP4RT_OP_LAYERNORM, layer);
    op->x = x;
    op->y = y;
    op->w = w;
    op->b = bias;
    op->n_groups = 1;
    op->group_dim = op->group_stride = dim;
    op->eps = 1e-6f; /* nn.LayerNorm(eps=1e-6) in the blocks and the merger */
}

static void add(fp4rt_pbuilder *b, int layer, fp4rt_view x, fp4rt_view z) {
    fp4rt_op *op = fp4rt_pb_emit(b, FP4RT_OP_ADD, layer);
    op->x = op->y = x;
    op->z = z;
}

static void rope2d(fp4rt_pbuilder *b, int layer, fp4rt_view x, const fp4rt_vision_config *v) {
    fp4rt_op *op = fp4rt_pb_emit(b, FP4RT_OP_ROPE, layer);
    op->x = op->y = x;
    op->n_groups = v->n_heads;
    op->group_dim = op->group_stride = fp4rt_vcfg_head_dim(v);
    op->rotary_dim = op->group_dim;
    op->rope_theta = v->rope_theta;
    op->rope_mode = FP4RT_ROPE_VISION_2D;
}

static void block(fp4rt_pbuilder *b, const fp4rt_vision_config *v, const fp4rt_vision_block *B, int l) {
    int H = v->hidden, hd = fp4rt_vcfg_head_dim(v), x = b->p->hidden_buf;
    int a = fp4rt_pb_buf(b, H), qkv = fp4rt_pb_buf(b, 3 * H), o = fp4rt_pb_buf(b, H), t = fp4rt_pb_buf(b, H);
    layernorm(b, l, fp4rt_pb_whole(b, x), fp4rt_pb_whole(b, a), B->norm1_w, B->norm1_b, H);
    linear_bias(b, l, fp4rt_pb_whole(b, a), fp4rt_pb_whole(b, qkv), &B->qkv, B->qkv_b);
    rope2d(b, l, fp4rt_pb_cols(qkv, 0, H), v);
    rope2d(b, l, fp4rt_pb_cols(qkv, H, H), v);
    fp4rt_op *op = fp4rt_pb_emit(b, FP4RT_OP_ATTENTION_FULL, l);
    op->x = fp4rt_pb_cols(qkv, 0, H);
    op->z = fp4rt_pb_cols(qkv, H, H);
    op->a = fp4rt_pb_cols(qkv, 2 * H, H);
    op->y = fp4rt_pb_whole(b, o);
    op->n_groups = op->n_kv_heads = v->n_heads;
    op->group_dim = op->group_stride = hd;
    op->scale = 1.0f / sqrtf((float)hd);
    linear_bias(b, l, fp4rt_pb_whole(b, o), fp4rt_pb_whole(b, t), &B->proj, B->proj_b);
    add(b, l, fp4rt_pb_whole(b, x), fp4rt_pb_whole(b, t));
    int a2 = fp4rt_pb_buf(b, H), f = fp4rt_pb_buf(b, v->intermediate), t2 = fp4rt_pb_buf(b, H);
    layernorm(b, l, fp4rt_pb_whole(b, x), fp4rt_pb_whole(b, a2), B->norm2_w, B->norm2_b, H);
    linear_bias(b, l, fp4rt_pb_whole(b, a2), fp4rt_pb_whole(b, f), &B->fc1, B->fc1_b);
    op = fp4rt_pb_emit(b, FP4RT_OP_GELU, l);
    op->x = op->y = fp4rt_pb_whole(b, f);
    op->gelu_tanh = v->gelu_tanh;
    linear_bias(b, l, fp4rt_pb_whole(b, f), fp4rt_pb_whole(b, t2), &B->fc2, B->fc2_b);
    add(b, l, fp4rt_pb_whole(b, x), fp4rt_pb_whole(b, t2));
}

static fp4rt_status finish(fp4rt_pbuilder *b, int in, int out, fp4rt_program **dst) {
    fp4rt_program *p = b->p;
    fp4rt_status st = b->st ? b->st : fp4rt_pb_plan(p);
    if (st) {
        fp4rt_program_free(p);
        return st;
    }
    p->in_hidden_col = p->buf_offset[in];
    p->out_hidden_col = p->buf_offset[out];
    *dst = p;
    return FP4RT_OK;
}

static fp4rt_status build_encoder(const fp4rt_weights *w, fp4rt_program **out) {
    const fp4rt_vision_config *v = &w->cfg.vision;
    const fp4rt_vision_weights *vw = w->vision;
    fp4rt_program *p = fp4rt_calloc(1, sizeof *p, "vision encoder program");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->weights = w;
    fp4rt_pbuilder b = {.p = p};
    int H = v->hidden, pd = fp4rt_vcfg_patch_dim(v);
    p->hidden_buf = fp4rt_pb_buf(&b, H);
    int in = fp4rt_pb_buf(&b, pd + H); /* [patch | position embedding], written by the caller */
    linear_bias(&b, -1, fp4rt_pb_cols(in, 0, pd), fp4rt_pb_whole(&b, p->hidden_buf), &vw->patch, vw->patch_b);
    add(&b, -1, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_cols(in, pd, H));
    for (int l = 0; l < v->depth; l++) block(&b, v, &vw->blocks[l], l);
    int m = fp4rt_pb_buf(&b, H);
    layernorm(&b, -1, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, m), vw->merger_norm_w,
              vw->merger_norm_b, H);
    return finish(&b, in, m, out);
}

static fp4rt_status build_merger(const fp4rt_weights *w, fp4rt_program **out) {
    const fp4rt_vision_config *v = &w->cfg.vision;
    const fp4rt_vision_weights *vw = w->vision;
    fp4rt_program *p = fp4rt_calloc(1, sizeof *p, "vision merger program");
    if (!p) return FP4RT_OUT_OF_MEMORY;
    p->weights = w;
    fp4rt_pbuilder b = {.p = p};
    int M = v->hidden * v->merge * v->merge;
    p->hidden_buf = fp4rt_pb_buf(&b, M); /* the caller's rows */
    int f = fp4rt_pb_buf(&b, M), o = fp4rt_pb_buf(&b, v->out_hidden);
    linear_bias(&b, -1, fp4rt_pb_whole(&b, p->hidden_buf), fp4rt_pb_whole(&b, f), &vw->merger_fc1, vw->merger_fc1_b);
    fp4rt_op *op = fp4rt_pb_emit(&b, FP4RT_OP_GELU, -1);
    op->x = op->y = fp4rt_pb_whole(&b, f);
    op->gelu_tanh = 0; /* nn.GELU(): the erf form */
    linear_bias(&b, -1, fp4rt_pb_whole(&b, f), fp4rt_pb_whole(&b, o), &vw->merger_fc2, vw->merger_fc2_b);
    return finish(&b, p->hidden_buf, o, out);
}

fp4rt_status fp4rt_program_build_vision(const fp4rt_weights *w, fp4rt_program **encoder, fp4rt_program **merger) {
    *encoder = *merger = NULL;
    if (!w->vision) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "the model has no vision tower");
    fp4rt_status st = build_encoder(w, encoder);
    if (!st) st = build_merger(w, merger);
    if (st) {
        fp4rt_program_free(*encoder);
        *encoder = NULL;
    }
    return st;
}
