/* Vulkan embedding, norms and element-wise ops; an ADD and the RMSNORM of its
 * output in one dispatch (norm.comp mode 3: the same bits as the two). */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

#include <string.h>

typedef struct {
    uint32_t mode, x_off, z_off, y_off, stride, group_dim, group_stride, w_off;
    float eps, scale;
    uint32_t a_off, b_off; /* mode 3 (ADD + RMSNORM): the ADD's inputs */
} pc_norm;
_Static_assert(sizeof(pc_norm) == 48, "pc_norm mirrors norm.comp");
typedef struct {
    uint32_t mode, x_off, z_off, y_off, stride, n, group_dim, group_stride, z_group_stride;
} pc_eltwise;
_Static_assert(sizeof(pc_eltwise) == 36, "pc_eltwise mirrors eltwise.comp");
typedef struct {
    uint32_t hidden, y_off, stride;
} pc_embed;
_Static_assert(sizeof(pc_embed) == 12, "pc_embed mirrors embed.comp");

/* The rows were written by the host into c->input (vk_backend.c): one copy
 * into the arena, whatever the vocabulary size. */
fp4rt_status fp4rt_vk_rec_embed(const vk_step *s, const fp4rt_op *op) {
    uint32_t h = (uint32_t)s->p->weights->cfg.hidden;
    if (op->y.cols != (int)h) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: embed view of %d columns", op->y.cols);
    vk_bind b[2];
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_window(s->c, s->c->input, 0, (VkDeviceSize)s->step->n_tokens * h * 4, "the input rows",
                             &b[1], NULL);
    if (st) return st;
    pc_embed pc = {.hidden = h, .y_off = fp4rt_vk_view_off(s, op->y), .stride = fp4rt_vk_stride(s)};
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_EMBED, b, 2, &pc, sizeof pc, vk_groups(h),
                             (uint32_t)s->step->n_tokens, 1);
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
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_NORM, b, 2, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

static int same_view(fp4rt_view a, fp4rt_view b) { return a.buf == b.buf && a.col == b.col && a.cols == b.cols; }

int fp4rt_vk_add_norm_fusable(const fp4rt_op *add, const fp4rt_op *norm) {
    return add->kind == FP4RT_OP_ADD && norm->kind == FP4RT_OP_RMSNORM && same_view(add->y, norm->x) &&
           norm->n_groups == 1 && norm->group_dim == add->x.cols && add->z.cols == add->x.cols &&
           add->y.cols == add->x.cols && norm->y.cols >= norm->group_dim;
}

fp4rt_status fp4rt_vk_rec_add_norm(const vk_step *s, const fp4rt_op *add, const fp4rt_op *norm) {
    if (!fp4rt_vk_add_norm_fusable(add, norm))
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: ADD and RMSNORM that cannot be fused");
    vk_bind b[2] = {{0}};
    pc_norm pc = {.mode = 3u,
                  .x_off = fp4rt_vk_view_off(s, add->y),
                  .y_off = fp4rt_vk_view_off(s, norm->y),
                  .stride = fp4rt_vk_stride(s),
                  .group_dim = (uint32_t)norm->group_dim,
                  .eps = norm->eps,
                  .a_off = fp4rt_vk_view_off(s, add->x),
                  .b_off = fp4rt_vk_view_off(s, add->z)};
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_tensor_bind(s, norm->w, (VkDeviceSize)norm->group_dim * 4, 4, "a norm weight", &b[1],
                                  &pc.w_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_NORM, b, 2, &pc, sizeof pc, 1, (uint32_t)s->step->n_tokens, 1);
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
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_ELTWISE, &b, 1, &pc, sizeof pc, vk_groups(pc.n),
                             (uint32_t)s->step->n_tokens, 1);
}
