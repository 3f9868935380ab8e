/* Vulkan embedding, norms and element-wise ops. */
#include "vk_ops.h"

#include "common.h"
#include "model.h"

#include <string.h>

typedef struct {
    uint32_t mode, x_off, z_off, y_off, stride, group_dim, group_stride, w_off;
    float eps, scale;
} pc_norm;
_Static_assert(sizeof(pc_norm) == 40, "pc_norm mirrors norm.comp");
typedef struct {
    uint32_t mode, x_off, z_off, y_off, stride, n, group_dim, group_stride, z_group_stride;
} pc_eltwise;
_Static_assert(sizeof(pc_eltwise) == 36, "pc_eltwise mirrors eltwise.comp");
typedef struct {
    uint32_t hidden, dtype, e_off, y_off;
} pc_embed;
_Static_assert(sizeof(pc_embed) == 16, "pc_embed mirrors embed.comp");

fp4rt_status fp4rt_vk_rec_embed(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_weights *w = s->p->weights;
    size_t es = fp4rt_dtype_size(w->embed_dtype), h = (size_t)w->cfg.hidden;
    const vk_tensor *t = fp4rt_vk_tensor_find(s->c, w->embed);
    vk_bind b[2];
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!t) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: the embedding was not uploaded");
    for (int i = 0; !st && i < s->step->n_tokens; i++) {
        VkDeviceSize skew = 0;
        st = fp4rt_vk_window(s->c, s->c->weights, t->offset + (size_t)s->step->tokens[i] * h * es,
                             h * es, "the embedding row", &b[1], &skew);
        pc_embed pc = {.hidden = (uint32_t)h,
                       .dtype = w->embed_dtype == FP4RT_DT_F32   ? 2u
                                : w->embed_dtype == FP4RT_DT_F16 ? 1u
                                                                 : 0u,
                       .e_off = (uint32_t)(skew / es),
                       .y_off = fp4rt_vk_view_off(s, op->y) + (uint32_t)i * fp4rt_vk_stride(s)};
        if (!st) st = fp4rt_vk_dispatch(s->c, VK_K_EMBED, b, 2, &pc, sizeof pc, vk_groups(h), 1, 1);
    }
    return st;
}

fp4rt_status fp4rt_vk_rec_norm(const vk_step *s, const fp4rt_op *op) {
    uint32_t mode = op->kind == FP4RT_OP_RMSNORM         ? 0u
                    : op->kind == FP4RT_OP_GATED_RMSNORM ? 1u
                                                         : 2u;
    vk_bind b[2] = {{0}};
    pc_norm pc = {.mode = mode,
                  .x_off = fp4rt_vk_view_off(s, op->x),
                  .z_off = mode == 1 ? fp4rt_vk_view_off(s, op->z) : 0,
                  .y_off = fp4rt_vk_view_off(s, op->y),
                  .stride = fp4rt_vk_stride(s),
                  .group_dim = (uint32_t)op->group_dim,
                  .group_stride = (uint32_t)op->group_stride,
                  .eps = op->eps,
                  .scale = op->scale};
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st && mode != 2)
        st = fp4rt_vk_tensor_bind(s, op->w, (VkDeviceSize)op->group_dim * 4, 4, "a norm weight",
                                  &b[1], &pc.w_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, VK_K_NORM, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

fp4rt_status fp4rt_vk_rec_eltwise(const vk_step *s, const fp4rt_op *op) {
    pc_eltwise pc = {.x_off = fp4rt_vk_view_off(s, op->x),
                     .z_off = fp4rt_vk_view_off(s, op->z),
                     .y_off = fp4rt_vk_view_off(s, op->y),
                     .stride = fp4rt_vk_stride(s),
                     .n = (uint32_t)op->x.cols};
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
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, VK_K_ELTWISE, &b, 1, &pc, sizeof pc, vk_groups(pc.n),
                             (uint32_t)s->step->n_tokens, 1);
}
