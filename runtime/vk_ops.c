/* Vulkan op recording: each program op becomes one or a few dispatches of the
 * kernels in shaders/. Every push-constant struct mirrors the GLSL block of its
 * shader (same order, 4-byte fields) and is size-checked.
 *
 * Addressing: the activation arena is bound whole; an op's view is a float
 * offset (buf_offset + col) and rows are arena_width floats apart. Weights,
 * norm vectors and per-layer state are bound as windows (vk_dispatch.c). */
#include "vk_internal.h"

#include "common.h"
#include "model.h"

#include <string.h>

typedef struct { uint32_t K, fmt, x_off, x_stride, y_off, y_stride, n0, w_off, s_off, pad0, pad1; float post; } pc_linear;
typedef struct { uint32_t K, mode, x_off, x_stride; float input_scale; } pc_act_quant;
typedef struct { uint32_t mode, x_off, z_off, y_off, stride, group_dim, group_stride, w_off; float eps, scale; } pc_norm;
typedef struct { uint32_t mode, x_off, z_off, y_off, stride, n, group_dim, group_stride, z_group_stride; } pc_eltwise;
typedef struct { uint32_t hidden, dtype, e_off, y_off; } pc_embed;
typedef struct { uint32_t x_off, y_off, stride, group_dim, group_stride, rotary_dim, pos0, pad; } pc_rope;
typedef struct { uint32_t n, kv_type, pos0, n_ctx, x_off, z_off, stride, kv_word_off; float k_scale, v_scale; } pc_kv_append;
typedef struct {
    uint32_t q_off, y_off, stride, q_group_stride, n_heads, n_kv_heads, head_dim, pos0, n_ctx, kv_type, kv_elem_off, pad1;
    float scale, k_scale, v_scale;
} pc_attention;
typedef struct { uint32_t C, K, T, x_off, y_off, stride, w_off, st_off; } pc_conv;
typedef struct { uint32_t T, dk, dv, ratio, key_dim, x_off, z_off, a_off, y_off, stride, dt_off, na_off, s_off; } pc_gdn;
_Static_assert(sizeof(pc_linear) == 48, "pc_linear mirrors linear.comp");
_Static_assert(sizeof(pc_act_quant) == 20, "pc_act_quant mirrors act_quant.comp");
_Static_assert(sizeof(pc_norm) == 40, "pc_norm mirrors norm.comp");
_Static_assert(sizeof(pc_eltwise) == 36, "pc_eltwise mirrors eltwise.comp");
_Static_assert(sizeof(pc_embed) == 16, "pc_embed mirrors embed.comp");
_Static_assert(sizeof(pc_rope) == 32, "pc_rope mirrors rope.comp");
_Static_assert(sizeof(pc_kv_append) == 40, "pc_kv_append mirrors kv_append.comp");
_Static_assert(sizeof(pc_attention) == 60, "pc_attention mirrors attention.comp");
_Static_assert(sizeof(pc_conv) == 32, "pc_conv mirrors conv1d_silu.comp");
_Static_assert(sizeof(pc_gdn) == 52, "pc_gdn mirrors gated_delta.comp");
_Static_assert(sizeof(pc_attention) <= VK_PUSH_BYTES, "push constants fit");

#define WG 64u
static uint32_t groups(uint64_t n) { return (uint32_t)((n + WG - 1) / WG); }

const vk_tensor *fp4rt_vk_tensor_find(const vk_ctx *c, const void *host) {
    for (int i = 0; i < c->n_tensors; i++)
        if (c->tensors[i].host == host) return &c->tensors[i];
    return NULL;
}

static uint32_t view_off(const vk_step *s, fp4rt_view v) {
    return (uint32_t)(s->p->buf_offset[v.buf] + v.col);
}

static uint32_t stride(const vk_step *s) { return (uint32_t)s->p->arena_width; }

static fp4rt_status arena_bind(const vk_step *s, vk_bind *b) {
    return fp4rt_vk_window(s->c, s->sb->scratch, 0, s->sb->scratch->bytes, "the activation arena", b, NULL);
}

/* Window over a whole uploaded host tensor; *off gets the skew in elements of esize bytes. */
static fp4rt_status tensor_bind(const vk_step *s, const void *host, VkDeviceSize bytes, size_t esize,
                                const char *what, vk_bind *b, uint32_t *off) {
    const vk_tensor *t = fp4rt_vk_tensor_find(s->c, host);
    if (!t) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", what);
    VkDeviceSize skew = 0;
    fp4rt_status st = fp4rt_vk_window(s->c, s->c->weights, t->offset, bytes, what, b, &skew);
    *off = (uint32_t)(skew / esize);
    return st;
}

static size_t row_bytes(const fp4rt_linear *l) {
    switch (l->fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: return (size_t)l->n_in * 2;
    case FP4RT_W_F32: return (size_t)l->n_in * 4;
    case FP4RT_W_FP8: return (size_t)l->n_in;
    default: return (size_t)l->n_in / 2;
    }
}

static fp4rt_status rec_linear(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    vk_ctx *c = s->c;
    int T = s->step->n_tokens, K = l->n_in;
    if (op->x.cols != K || op->y.cols != l->n_out)
        return fp4rt_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module, op->x.cols,
                          op->y.cols, l->n_out, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0, rows = T - t0;
    vk_bind arena, xb, yb, wb, sb = {0};
    fp4rt_status st = arena_bind(s, &arena);
    if (st) return st;
    pc_linear pc = {.K = (uint32_t)K, .fmt = (uint32_t)l->fmt, .x_off = view_off(s, op->x) + (uint32_t)t0 * stride(s),
                    .x_stride = stride(s), .post = 1.0f};
    xb = arena;
    if (l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4) {
        int fp8 = l->fmt == FP4RT_W_FP8;
        pc_act_quant q = {.K = (uint32_t)K, .mode = fp8 ? 0u : 1u, .x_off = pc.x_off, .x_stride = pc.x_stride,
                          .input_scale = l->input_scale};
        vk_bind qb[2] = {arena, {c->xq, 0, (VkDeviceSize)rows * K * 4}};
        if ((VkDeviceSize)rows * K * 4 > c->xq->bytes) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: xq too small");
        st = fp4rt_vk_dispatch(c, VK_K_ACT_QUANT, qb, 2, &q, sizeof q, groups(fp8 ? (uint64_t)K : (uint64_t)K / 16),
                               (uint32_t)rows, 1);
        if (st) return st;
        xb = qb[1];
        pc.x_off = 0;
        pc.x_stride = (uint32_t)K;
        pc.post = l->input_scale * l->weight_scale;
    } else if (l->fmt == FP4RT_W_NVFP4) {
        pc.post = l->weight_scale;
    }
    if (op->is_logits) {
        st = fp4rt_vk_window(c, s->sb->logits, 0, s->sb->logits->bytes, "the logits buffer", &yb, NULL);
        pc.y_off = 0;
        pc.y_stride = (uint32_t)s->p->weights->cfg.vocab;
    } else {
        yb = arena;
        pc.y_off = view_off(s, op->y) + (uint32_t)t0 * stride(s);
        pc.y_stride = stride(s);
    }
    if (st) return st;
    const vk_tensor *wt = fp4rt_vk_tensor_find(c, l->weight);
    const vk_tensor *st_t = l->block_scale ? fp4rt_vk_tensor_find(c, l->block_scale) : NULL;
    if (!wt || (l->block_scale && !st_t)) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", l->module);
    /* rows of W in pieces that fit one binding (and the workgroup-count limit) */
    size_t rb = row_bytes(l);
    uint64_t per = (c->piece_range - c->align) / (rb ? rb : 1);
    if (per > 65535) per = 65535;
    if (per == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: %s: one row of %zu bytes exceeds maxStorageBufferRange %llu",
                          l->module, rb, (unsigned long long)c->max_range);
    for (uint64_t n0 = 0; n0 < (uint64_t)l->n_out; n0 += per) {
        uint64_t n = (uint64_t)l->n_out - n0 < per ? (uint64_t)l->n_out - n0 : per;
        VkDeviceSize skew = 0;
        st = fp4rt_vk_window(c, c->weights, wt->offset + n0 * rb, n * rb, l->module, &wb, &skew);
        if (st) return st;
        pc.w_off = (uint32_t)skew;
        if (st_t) {
            st = fp4rt_vk_window(c, c->weights, st_t->offset + n0 * (K / 16), n * (K / 16), l->module, &sb, &skew);
            if (st) return st;
            pc.s_off = (uint32_t)skew;
        }
        pc.n0 = (uint32_t)n0;
        vk_bind b[4] = {xb, wb, sb, yb};
        st = fp4rt_vk_dispatch(c, VK_K_LINEAR, b, 4, &pc, sizeof pc, (uint32_t)n, (uint32_t)rows, 1);
        if (st) return st;
    }
    return FP4RT_OK;
}

static fp4rt_status rec_embed(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_weights *w = s->p->weights;
    size_t es = fp4rt_dtype_size(w->embed_dtype), h = (size_t)w->cfg.hidden;
    const vk_tensor *t = fp4rt_vk_tensor_find(s->c, w->embed);
    vk_bind b[2];
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!t) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: the embedding was not uploaded");
    for (int i = 0; !st && i < s->step->n_tokens; i++) {
        VkDeviceSize skew = 0;
        st = fp4rt_vk_window(s->c, s->c->weights, t->offset + (size_t)s->step->tokens[i] * h * es, h * es,
                             "the embedding row", &b[1], &skew);
        pc_embed pc = {.hidden = (uint32_t)h,
                       .dtype = w->embed_dtype == FP4RT_DT_F32 ? 2u : w->embed_dtype == FP4RT_DT_F16 ? 1u : 0u,
                       .e_off = (uint32_t)(skew / es), .y_off = view_off(s, op->y) + (uint32_t)i * stride(s)};
        if (!st) st = fp4rt_vk_dispatch(s->c, VK_K_EMBED, b, 2, &pc, sizeof pc, groups(h), 1, 1);
    }
    return st;
}

static fp4rt_status rec_norm(const vk_step *s, const fp4rt_op *op) {
    uint32_t mode = op->kind == FP4RT_OP_RMSNORM ? 0u : op->kind == FP4RT_OP_GATED_RMSNORM ? 1u : 2u;
    vk_bind b[2] = {{0}};
    pc_norm pc = {.mode = mode, .x_off = view_off(s, op->x), .z_off = mode == 1 ? view_off(s, op->z) : 0,
                  .y_off = view_off(s, op->y), .stride = stride(s), .group_dim = (uint32_t)op->group_dim,
                  .group_stride = (uint32_t)op->group_stride, .eps = op->eps, .scale = op->scale};
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st && mode != 2)
        st = tensor_bind(s, op->w, (VkDeviceSize)op->group_dim * 4, 4, "a norm weight", &b[1], &pc.w_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, VK_K_NORM, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

static fp4rt_status rec_eltwise(const vk_step *s, const fp4rt_op *op) {
    pc_eltwise pc = {.x_off = view_off(s, op->x), .z_off = view_off(s, op->z), .y_off = view_off(s, op->y),
                     .stride = stride(s), .n = (uint32_t)op->x.cols};
    if (op->kind == FP4RT_OP_SIGMOID_GATE) {
        pc.mode = 0;
        pc.n = (uint32_t)(op->n_groups * op->group_dim);
        pc.group_dim = (uint32_t)op->group_dim;
        pc.group_stride = (uint32_t)op->group_stride;
        pc.z_group_stride = (uint32_t)op->z_group_stride;
    } else {
        pc.mode = op->kind == FP4RT_OP_SWIGLU ? 1u : 2u;
    }
    vk_bind b;
    fp4rt_status st = arena_bind(s, &b);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, VK_K_ELTWISE, &b, 1, &pc, sizeof pc, groups(pc.n), (uint32_t)s->step->n_tokens, 1);
}

static fp4rt_status rec_rope(const vk_step *s, const fp4rt_op *op) {
    vk_ctx *c = s->c;
    vk_bind b[2];
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st) st = fp4rt_vk_window(c, c->rope_tab, 0, c->rope_tab->bytes, "the RoPE table", &b[1], NULL);
    if (st) return st;
    pc_rope pc = {.x_off = view_off(s, op->x), .y_off = view_off(s, op->y), .stride = stride(s),
                  .group_dim = (uint32_t)op->group_dim, .group_stride = (uint32_t)op->group_stride,
                  .rotary_dim = (uint32_t)op->rotary_dim, .pos0 = (uint32_t)s->step->pos0};
    return fp4rt_vk_dispatch(c, VK_K_ROPE, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups, (uint32_t)s->step->n_tokens, 1);
}

/* Window over the cache of one attention layer; *skew_bytes gets the skew. */
static fp4rt_status kv_bind(const vk_step *s, int slot, vk_bind *b, VkDeviceSize *skew) {
    const fp4rt_config *cfg = &s->p->weights->cfg;
    VkDeviceSize layer = (VkDeviceSize)2 * s->sb->n_ctx * cfg->n_kv_heads * cfg->head_dim *
                         fp4rt_kv_elem_size(s->sb->kv_type);
    return fp4rt_vk_window(s->c, s->sb->kv, (VkDeviceSize)slot * layer, layer, "the KV cache of one layer", b, skew);
}

static uint32_t kv_type_code(fp4rt_kv_type t) { return t == FP4RT_KV_F32 ? 1u : t == FP4RT_KV_FP8 ? 2u : 0u; }

static fp4rt_status rec_kv_append(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    uint32_t n = (uint32_t)(op->n_groups * op->group_dim), code = kv_type_code(s->sb->kv_type);
    uint32_t per = code == 1 ? 1 : code == 0 ? 2 : 4;
    if (n % per) return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: KV rows of %u elements (need a multiple of %u)", n, per);
    vk_bind b[2];
    VkDeviceSize skew = 0;
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st) st = kv_bind(s, op->slot, &b[1], &skew);
    if (st) return st;
    pc_kv_append pc = {.n = n, .kv_type = code, .pos0 = (uint32_t)s->step->pos0, .n_ctx = (uint32_t)s->sb->n_ctx,
                       .x_off = view_off(s, op->x), .z_off = view_off(s, op->z), .stride = stride(s),
                       .kv_word_off = (uint32_t)(skew / 4), .k_scale = L->k_scale, .v_scale = L->v_scale};
    return fp4rt_vk_dispatch(s->c, VK_K_KV_APPEND, b, 2, &pc, sizeof pc, groups(n / per), (uint32_t)s->step->n_tokens, 2);
}

static fp4rt_status rec_attention(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    if (op->group_dim > 256 || op->n_kv_heads <= 0 || op->n_groups % op->n_kv_heads)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: attention with head_dim %d, %d heads, %d KV heads",
                          op->group_dim, op->n_groups, op->n_kv_heads);
    vk_bind b[2];
    VkDeviceSize skew = 0;
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st) st = kv_bind(s, op->slot, &b[1], &skew);
    if (st) return st;
    pc_attention pc = {.q_off = view_off(s, op->x), .y_off = view_off(s, op->y), .stride = stride(s),
                       .q_group_stride = (uint32_t)op->group_stride, .n_heads = (uint32_t)op->n_groups,
                       .n_kv_heads = (uint32_t)op->n_kv_heads, .head_dim = (uint32_t)op->group_dim,
                       .pos0 = (uint32_t)s->step->pos0, .n_ctx = (uint32_t)s->sb->n_ctx,
                       .kv_type = kv_type_code(s->sb->kv_type),
                       .kv_elem_off = (uint32_t)(skew / fp4rt_kv_elem_size(s->sb->kv_type)), .scale = op->scale,
                       .k_scale = L->k_scale, .v_scale = L->v_scale};
    return fp4rt_vk_dispatch(s->c, VK_K_ATTENTION, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

static fp4rt_status rec_conv(const vk_step *s, const fp4rt_op *op) {
    uint32_t C = (uint32_t)op->x.cols, K = (uint32_t)op->group_dim;
    if (K < 1 || K > 9) return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: conv kernel %u (at most 9)", K);
    vk_bind b[3];
    VkDeviceSize skew = 0;
    pc_conv pc = {.C = C, .K = K, .T = (uint32_t)s->step->n_tokens, .x_off = view_off(s, op->x),
                  .y_off = view_off(s, op->y), .stride = stride(s)};
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st) st = tensor_bind(s, op->w, (VkDeviceSize)C * K * 4, 4, "a conv1d weight", &b[1], &pc.w_off);
    VkDeviceSize layer = (VkDeviceSize)C * (K - 1) * 4;
    if (!st) st = fp4rt_vk_window(s->c, s->sb->conv, (VkDeviceSize)op->slot * layer, layer, "the conv state", &b[2], &skew);
    if (st) return st;
    pc.st_off = (uint32_t)(skew / 4);
    return fp4rt_vk_dispatch(s->c, VK_K_CONV1D_SILU, b, 3, &pc, sizeof pc, groups(C), 1, 1);
}

static fp4rt_status rec_gdn(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_config *cfg = &s->p->weights->cfg;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    if (cfg->lin_k_dim > 256) return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: linear_key_head_dim %d > 256", cfg->lin_k_dim);
    vk_bind b[4];
    VkDeviceSize skew = 0;
    pc_gdn pc = {.T = (uint32_t)s->step->n_tokens, .dk = (uint32_t)cfg->lin_k_dim, .dv = (uint32_t)cfg->lin_v_dim,
                 .ratio = (uint32_t)(cfg->lin_v_heads / cfg->lin_k_heads), .key_dim = (uint32_t)fp4rt_cfg_key_dim(cfg),
                 .x_off = view_off(s, op->x), .z_off = view_off(s, op->z), .a_off = view_off(s, op->a),
                 .y_off = view_off(s, op->y), .stride = stride(s)};
    VkDeviceSize layer = (VkDeviceSize)cfg->lin_v_heads * cfg->lin_k_dim * cfg->lin_v_dim * 4;
    fp4rt_status st = arena_bind(s, &b[0]);
    if (!st) st = fp4rt_vk_window(s->c, s->sb->ssm, (VkDeviceSize)op->slot * layer, layer, "the GDN state", &b[1], &skew);
    pc.s_off = (uint32_t)(skew / 4);
    VkDeviceSize hv = (VkDeviceSize)cfg->lin_v_heads * 4;
    if (!st) st = tensor_bind(s, L->dt_bias, hv, 4, "dt_bias", &b[2], &pc.dt_off);
    if (!st) st = tensor_bind(s, L->neg_A, hv, 4, "A_log", &b[3], &pc.na_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, VK_K_GATED_DELTA, b, 4, &pc, sizeof pc, (uint32_t)cfg->lin_v_heads, 1, 1);
}

fp4rt_status fp4rt_vk_record_op(const vk_step *s, const fp4rt_op *op) {
    switch (op->kind) {
    case FP4RT_OP_EMBED: return rec_embed(s, op);
    case FP4RT_OP_RMSNORM:
    case FP4RT_OP_GATED_RMSNORM:
    case FP4RT_OP_L2NORM: return rec_norm(s, op);
    case FP4RT_OP_LINEAR: return rec_linear(s, op);
    case FP4RT_OP_ROPE: return rec_rope(s, op);
    case FP4RT_OP_KV_APPEND: return rec_kv_append(s, op);
    case FP4RT_OP_ATTENTION: return rec_attention(s, op);
    case FP4RT_OP_SIGMOID_GATE:
    case FP4RT_OP_SWIGLU:
    case FP4RT_OP_ADD: return rec_eltwise(s, op);
    case FP4RT_OP_CONV1D_SILU: return rec_conv(s, op);
    case FP4RT_OP_GATED_DELTA: return rec_gdn(s, op);
    default: return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: op %s", fp4rt_op_name(op->kind));
    }
}
