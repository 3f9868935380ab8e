/* Vulkan op recording, shared by vk_op_*.c: each program op becomes one or a
 * few dispatches of the kernels in shaders/. Every push-constant struct mirrors
 * the GLSL block of its shader (same order, 4-byte fields) and is size-checked
 * next to the recorder that fills it.
 *
 * Addressing: the activation arena is bound whole; an op's view is a float
 * offset (buf_offset + col) and rows are arena_width floats apart. Weights,
 * norm vectors and per-layer state are bound as windows (vk_dispatch.c). */
#ifndef FP4RT_VK_OPS_H
#define FP4RT_VK_OPS_H

#include "runtime/backend/vulkan/vk_internal.h"

#define FP4RT_VK_WG 64u
/* Workgroups of FP4RT_VK_WG invocations covering n items. */
static inline uint32_t vk_groups(uint64_t n) {
    return (uint32_t)((n + FP4RT_VK_WG - 1) / FP4RT_VK_WG);
}

/* Float offset of a view's first element, row 0, in the arena. */
uint32_t fp4rt_vk_view_off(const vk_step *s, fp4rt_view v);
/* Floats between arena rows. */
uint32_t fp4rt_vk_stride(const vk_step *s);
fp4rt_status fp4rt_vk_arena_bind(const vk_step *s, vk_bind *b);
/* Window over a whole uploaded host tensor; *off gets the skew in elements of esize bytes. */
fp4rt_status fp4rt_vk_tensor_bind(const vk_step *s, const void *host, VkDeviceSize bytes,
                                  size_t esize, const char *what, vk_bind *b, uint32_t *off);

/* The recorders, one per op family. */
fp4rt_status fp4rt_vk_rec_linear(const vk_step *s, const fp4rt_op *op); /* vk_op_linear.c */
fp4rt_status fp4rt_vk_rec_embed(const vk_step *s, const fp4rt_op *op);  /* vk_op_basic.c */
fp4rt_status fp4rt_vk_rec_norm(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_eltwise(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_rope(const vk_step *s, const fp4rt_op *op); /* vk_op_attention.c */
fp4rt_status fp4rt_vk_rec_kv_append(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_attention(const vk_step *s, const fp4rt_op *op);
/* Creates or grows c->attn_ws for the attention ops of p in sessions like sb. */
fp4rt_status fp4rt_vk_attention_workspace(vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb);
fp4rt_status fp4rt_vk_rec_conv(const vk_step *s, const fp4rt_op *op); /* vk_op_gdn.c */
fp4rt_status fp4rt_vk_rec_gdn(const vk_step *s, const fp4rt_op *op);

#endif
