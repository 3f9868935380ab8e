/* Vulkan op recording: the helpers every recorder shares and the dispatch
 * from op kind to recorder (vk_ops.h). */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

const vk_tensor *fp4rt_vk_tensor_find(const vk_ctx *c, const void *host) {
    for (int i = 0; i < c->n_tensors; i++)
        if (c->tensors[i].host == host) return &c->tensors[i];
    return NULL;
}

uint32_t fp4rt_vk_view_off(const vk_step *s, fp4rt_view v) {
    return (uint32_t)(s->p->buf_offset[v.buf] + v.col);
}

uint32_t fp4rt_vk_stride(const vk_step *s) {
    return (uint32_t)s->p->arena_width;
}

fp4rt_status fp4rt_vk_arena_bind(const vk_step *s, vk_bind *b) {
    return fp4rt_vk_window(s->c, s->sb->scratch, 0, s->sb->scratch->bytes, "the activation arena",
                           b, NULL);
}

fp4rt_status fp4rt_vk_tensor_bind(const vk_step *s, const void *host, VkDeviceSize bytes,
                                  size_t esize, const char *what, vk_bind *b, uint32_t *off) {
    const vk_tensor *t = fp4rt_vk_tensor_find(s->c, host);
    if (!t) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", what);
    VkDeviceSize skew = 0;
    fp4rt_status st = fp4rt_vk_window(s->c, s->c->weights, t->offset, bytes, what, b, &skew);
    *off = (uint32_t)(skew / esize);
    return st;
}

fp4rt_status fp4rt_vk_record_op(const vk_step *s, const fp4rt_op *op) {
    switch (op->kind) {
    case FP4RT_OP_EMBED:
        return fp4rt_vk_rec_embed(s, op);
    case FP4RT_OP_RMSNORM:
    case FP4RT_OP_GATED_RMSNORM:
    case FP4RT_OP_L2NORM:
        return fp4rt_vk_rec_norm(s, op);
    case FP4RT_OP_LINEAR:
        return fp4rt_vk_rec_linear(s, op);
    case FP4RT_OP_ROPE:
        return fp4rt_vk_rec_rope(s, op);
    case FP4RT_OP_KV_APPEND:
        return fp4rt_vk_rec_kv_append(s, op);
    case FP4RT_OP_ATTENTION:
        return fp4rt_vk_rec_attention(s, op);
    case FP4RT_OP_SIGMOID_GATE:
    case FP4RT_OP_SWIGLU:
    case FP4RT_OP_ADD:
        return fp4rt_vk_rec_eltwise(s, op);
    case FP4RT_OP_CONV1D_SILU:
        return fp4rt_vk_rec_conv(s, op);
    case FP4RT_OP_GATED_DELTA:
        return fp4rt_vk_rec_gdn(s, op);
    case FP4RT_OP_LAYERNORM:
        return fp4rt_vk_rec_layernorm(s, op);
    case FP4RT_OP_BIAS:
    case FP4RT_OP_GELU:
        return fp4rt_vk_rec_bias_gelu(s, op);
    case FP4RT_OP_ATTENTION_FULL:
        return fp4rt_vk_rec_attention_full(s, op);
    default:
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: op %s", fp4rt_op_name(op->kind));
    }
}
