/* Vulkan attention ops: partial RoPE, KV-cache append and causal GQA attention.
 * Positions come from the step info (shaders/step.glsl), never push constants. */
#include "vk_ops.h"

#include "common.h"
#include "model.h"

#include <string.h>

typedef struct {
    uint32_t x_off, y_off, stride, group_dim, group_stride, rotary_dim;
} pc_rope;
_Static_assert(sizeof(pc_rope) == 24, "pc_rope mirrors rope.comp");
typedef struct {
    uint32_t n, kv_type, n_ctx, x_off, z_off, stride, kv_word_off;
    float k_scale, v_scale;
} pc_kv_append;
_Static_assert(sizeof(pc_kv_append) == 36, "pc_kv_append mirrors kv_append.comp");
typedef struct {
    uint32_t q_off, y_off, stride, q_group_stride, n_heads, n_kv_heads, head_dim, n_ctx, kv_type,
        kv_elem_off;
    float scale, k_scale, v_scale;
} pc_attention;
_Static_assert(sizeof(pc_attention) == 52, "pc_attention mirrors attention.comp");
_Static_assert(sizeof(pc_attention) <= VK_PUSH_BYTES, "push constants fit");

fp4rt_status fp4rt_vk_rec_rope(const vk_step *s, const fp4rt_op *op) {
    vk_ctx *c = s->c;
    vk_bind b[2];
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_window(c, c->rope_tab, 0, c->rope_tab->bytes, "the RoPE table", &b[1], NULL);
    if (st) return st;
    pc_rope pc = {.x_off = fp4rt_vk_view_off(s, op->x),
                  .y_off = fp4rt_vk_view_off(s, op->y),
                  .stride = fp4rt_vk_stride(s),
                  .group_dim = (uint32_t)op->group_dim,
                  .group_stride = (uint32_t)op->group_stride,
                  .rotary_dim = (uint32_t)op->rotary_dim};
    return fp4rt_vk_dispatch(c, VK_K_ROPE, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

/* Window over the cache of one attention layer; *skew_bytes gets the skew. */
static fp4rt_status kv_bind(const vk_step *s, int slot, vk_bind *b, VkDeviceSize *skew) {
    const fp4rt_config *cfg = &s->p->weights->cfg;
    VkDeviceSize layer = (VkDeviceSize)2 * s->sb->n_ctx * cfg->n_kv_heads * cfg->head_dim *
                         fp4rt_kv_elem_size(s->sb->kv_type);
    return fp4rt_vk_window(s->c, s->sb->kv, (VkDeviceSize)slot * layer, layer,
                           "the KV cache of one layer", b, skew);
}

static uint32_t kv_type_code(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? 1u : t == FP4RT_KV_FP8 ? 2u : 0u;
}

fp4rt_status fp4rt_vk_rec_kv_append(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    uint32_t n = (uint32_t)(op->n_groups * op->group_dim), code = kv_type_code(s->sb->kv_type);
    uint32_t per = code == 1 ? 1 : code == 0 ? 2 : 4;
    if (n % per)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: KV rows of %u elements (need a multiple of %u)", n, per);
    vk_bind b[2];
    VkDeviceSize skew = 0;
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st) st = kv_bind(s, op->slot, &b[1], &skew);
    if (st) return st;
    pc_kv_append pc = {.n = n,
                       .kv_type = code,
                       .n_ctx = (uint32_t)s->sb->n_ctx,
                       .x_off = fp4rt_vk_view_off(s, op->x),
                       .z_off = fp4rt_vk_view_off(s, op->z),
                       .stride = fp4rt_vk_stride(s),
                       .kv_word_off = (uint32_t)(skew / 4),
                       .k_scale = L->k_scale,
                       .v_scale = L->v_scale};
    return fp4rt_vk_dispatch(s->c, VK_K_KV_APPEND, b, 2, &pc, sizeof pc, vk_groups(n / per),
                             (uint32_t)s->step->n_tokens, 2);
}

fp4rt_status fp4rt_vk_rec_attention(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    if (op->group_dim > 256 || op->n_kv_heads <= 0 || op->n_groups % op->n_kv_heads)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: attention with head_dim %d, %d heads, %d KV heads",
                          op->group_dim, op->n_groups, op->n_kv_heads);
    vk_bind b[2];
    VkDeviceSize skew = 0;
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st) st = kv_bind(s, op->slot, &b[1], &skew);
    if (st) return st;
    pc_attention pc = {.q_off = fp4rt_vk_view_off(s, op->x),
                       .y_off = fp4rt_vk_view_off(s, op->y),
                       .stride = fp4rt_vk_stride(s),
                       .q_group_stride = (uint32_t)op->group_stride,
                       .n_heads = (uint32_t)op->n_groups,
                       .n_kv_heads = (uint32_t)op->n_kv_heads,
                       .head_dim = (uint32_t)op->group_dim,
                       .n_ctx = (uint32_t)s->sb->n_ctx,
                       .kv_type = kv_type_code(s->sb->kv_type),
                       .kv_elem_off = (uint32_t)(skew / fp4rt_kv_elem_size(s->sb->kv_type)),
                       .scale = op->scale,
                       .k_scale = L->k_scale,
                       .v_scale = L->v_scale};
    return fp4rt_vk_dispatch(s->c, VK_K_ATTENTION, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}
