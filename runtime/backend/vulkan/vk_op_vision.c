/* Vulkan recorders of the vision encoder's ops (issue 18): LAYERNORM
 * (shaders/layernorm.comp), BIAS and GELU (bias_gelu.comp), ATTENTION_FULL
 * (attention_full.comp), each bit for bit the CPU's
 * (runtime/backend/cpu/cpu_vision_ops.c). */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

typedef struct {
    uint32_t x_off, y_off, stride, group_dim, group_stride, w_off, b_off;
    float eps;
} pc_layernorm;
_Static_assert(sizeof(pc_layernorm) == 32, "pc_layernorm mirrors layernorm.comp");
typedef struct {
    uint32_t mode, x_off, y_off, stride, n, b_off;
} pc_bias_gelu;
_Static_assert(sizeof(pc_bias_gelu) == 24, "pc_bias_gelu mirrors bias_gelu.comp");
typedef struct {
    uint32_t q_off, k_off, v_off, y_off, stride, head_dim;
    float scale;
} pc_attention_full;
_Static_assert(sizeof(pc_attention_full) == 28, "pc_attention_full mirrors attention_full.comp");

fp4rt_status fp4rt_vk_rec_layernorm(const vk_step *s, const fp4rt_op *op) {
    pc_layernorm pc = {.x_off = fp4rt_vk_view_off(s, op->x),
                       .y_off = fp4rt_vk_view_off(s, op->y),
                       .stride = fp4rt_vk_stride(s),
                       .group_dim = (uint32_t)op->group_dim,
                       .group_stride = (uint32_t)op->group_stride,
                       .eps = op->eps};
    vk_bind b[3];
    VkDeviceSize bytes = (VkDeviceSize)op->group_dim * 4;
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st) st = fp4rt_vk_tensor_bind(s, op->w, bytes, 4, "a LayerNorm weight", &b[1], &pc.w_off);
    if (!st) st = fp4rt_vk_tensor_bind(s, op->b, bytes, 4, "a LayerNorm bias", &b[2], &pc.b_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_LAYERNORM, b, 3, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}

/* BIAS (mode 0) and GELU (1: erf form, 2: tanh form). */
fp4rt_status fp4rt_vk_rec_bias_gelu(const vk_step *s, const fp4rt_op *op) {
    pc_bias_gelu pc = {.mode = op->kind == FP4RT_OP_BIAS ? 0u : op->gelu_tanh ? 2u : 1u,
                       .x_off = fp4rt_vk_view_off(s, op->x),
                       .y_off = fp4rt_vk_view_off(s, op->y),
                       .stride = fp4rt_vk_stride(s),
                       .n = (uint32_t)op->x.cols};
    vk_bind b[2] = {{0}};
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st && op->kind == FP4RT_OP_BIAS)
        st = fp4rt_vk_tensor_bind(s, op->b, (VkDeviceSize)op->x.cols * 4, 4, "a bias", &b[1], &pc.b_off);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_BIAS_GELU, b, 2, &pc, sizeof pc, vk_groups(pc.n),
                             (uint32_t)s->step->n_tokens, 1);
}

static int views_overlap(fp4rt_view a, fp4rt_view b) {
    return a.buf == b.buf && a.col < b.col + b.cols && b.col < a.col + a.cols;
}

fp4rt_status fp4rt_vk_rec_attention_full(const vk_step *s, const fp4rt_op *op) {
    int w = op->n_groups * op->group_dim;
    if (op->group_dim < 1 || op->group_dim > 4 * (int)FP4RT_VK_WG)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: ATTENTION_FULL layer %d: head_dim %d (1 .. %u)", op->layer,
                          op->group_dim, 4 * FP4RT_VK_WG);
    if (op->n_groups < 1 || op->x.cols < w || op->z.cols < w || op->a.cols < w || op->y.cols < w)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: %d heads of %d over views of %d/%d/%d/%d columns",
                          op->layer, op->n_groups, op->group_dim, op->x.cols, op->z.cols, op->a.cols, op->y.cols);
    if (views_overlap(op->y, op->x) || views_overlap(op->y, op->z) || views_overlap(op->y, op->a))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "ATTENTION_FULL layer %d: the output overlaps q, k or v", op->layer);
    pc_attention_full pc = {.q_off = fp4rt_vk_view_off(s, op->x),
                            .k_off = fp4rt_vk_view_off(s, op->z),
                            .v_off = fp4rt_vk_view_off(s, op->a),
                            .y_off = fp4rt_vk_view_off(s, op->y),
                            .stride = fp4rt_vk_stride(s),
                            .head_dim = (uint32_t)op->group_dim,
                            .scale = op->scale};
    vk_bind b;
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b);
    if (st) return st;
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_ATTENTION_FULL, &b, 1, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}
