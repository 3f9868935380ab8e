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

/* ---- The linear kernel policy (vk_linear_policy.c) ---- */

/* How a linear's activations are quantized before its kernel runs. */
typedef enum fp4rt_vk_act_quant {
    FP4RT_VK_ACT_NONE,          /* FP32 activations: BF16 / F16 / F32 / NVFP4 W4A16 weights */
    FP4RT_VK_ACT_FP8,           /* FP8 E4M3 with the static input_scale */
    FP4RT_VK_ACT_NVFP4,         /* NVFP4 W4A4 with the static input_scale */
    FP4RT_VK_ACT_NVFP4_DYNAMIC, /* NVFP4 W4A4 with a per-row scale (act_dynamic) */
} fp4rt_vk_act_quant;

fp4rt_vk_act_quant fp4rt_vk_act_quant_of(const fp4rt_linear *l);

/* What the kernel choice depends on besides the linear: the device and the knobs. */
typedef struct fp4rt_vk_linear_caps {
    int coop;            /* FP4RT_VK_COOP_*: matrix units for FP8 / W4A4 prefill (NONE: none) */
    int idot;            /* packed integer dot products accelerated (W4A4 prefill) */
    int linear_rows;     /* software device (or FP4RT_VK_LINEAR): the whole-rows kernels */
    int linear_subgroup; /* the matrix-vector kernel reduces with subgroup shuffles */
    int exact;           /* FP4RT_VK_EXACT=1: the bit-exact kernels at any token count */
    int interleaved;     /* this weight is in the decode layout (shaders/wlayout.glsl, vk_wlayout.c) */
} fp4rt_vk_linear_caps;

/* The kernel for a piece of n_tokens tokens of a linear of format fmt with K
 * inputs, activations quantized as aq. Prefill (more than FP4RT_VK_MV_MAX_T
 * tokens, exact off) favours speed: quantized activations on the matrix units
 * (FP4RT_VK_SHADER_LINEAR_COOP, or _COOP_EMU on the emulation) where caps->coop is
 * set, else W4A4 with K % 16 == 0 on packed integer dot products
 * (FP4RT_VK_SHADER_LINEAR_I8) where caps->idot, else the tiled FP32 kernel
 * (FP4RT_VK_SHADER_LINEAR_MM) unless caps->linear_rows. The rest runs the
 * matrix-vector kernel (FP4RT_VK_SHADER_LINEAR with subgroups, else _SHMEM), or on
 * a software device the whole-rows kernel of fmt (FP4RT_VK_SHADER_LINEAR_ROWS_*)
 * when rows_aligned (the weight window and row size allow its 64-bit loads)
 * and K % 16 == 0; a weight in the decode layout (caps->interleaved) runs
 * FP4RT_VK_SHADER_LINEAR_MVI_* of its format instead of the matrix-vector
 * kernel. Pure: no device, no state. */
vk_kernel fp4rt_vk_linear_kernel(fp4rt_wfmt fmt, fp4rt_vk_act_quant aq, int K, uint64_t n_tokens,
                                 const fp4rt_vk_linear_caps *caps, int rows_aligned);

/* The recorders, one per op family. */
fp4rt_status fp4rt_vk_rec_linear(const vk_step *s, const fp4rt_op *op); /* vk_op_linear.c */
/* The linear with the element-wise op `pre` (SWIGLU or SIGMOID_GATE, the op
 * before it) applied to x as act_quant.comp reads it (quantized activations) or
 * as the decode kernel stages it; pre NULL: the plain linear. Only where
 * fp4rt_vk_pre_linear_fusable said so. */
fp4rt_status fp4rt_vk_rec_linear_pre(const vk_step *s, const fp4rt_op *op, const fp4rt_op *pre);
/* vk_fuse_linear.c: 1 if op i of the step's program (SWIGLU or SIGMOID_GATE)
 * can run inside the LINEAR at i + 1: that linear reads the op's whole output
 * in place, quantizes its activations (FP8, W4A4: act_quant) or runs linear_mvi
 * for the step's tokens (FP32 activations, decode layout, not the whole-rows
 * kernels), nothing after it names the op's output buffer, and its output
 * overlaps no arena column the op reads. c->fuse (FP4RT_VK_FUSE) decides
 * whether the recorder asks. */
int fp4rt_vk_pre_linear_fusable(const vk_step *s, int i);
/* Floats of an arena row from the first of pre's z operand to its last. */
uint32_t fp4rt_vk_pre_span(const fp4rt_op *pre);
fp4rt_status fp4rt_vk_rec_embed(const vk_step *s, const fp4rt_op *op);  /* vk_op_basic.c */
fp4rt_status fp4rt_vk_rec_norm(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_eltwise(const vk_step *s, const fp4rt_op *op);
/* An ADD whose output the next op, an RMSNORM of one group per row, normalizes:
 * both in one dispatch (the sum written as the ADD writes it, then the norm),
 * bit-identical to the two ops. fp4rt_vk_add_norm_fusable says whether the
 * pair qualifies (c->fuse, FP4RT_VK_FUSE, decides whether the recorder asks). */
int fp4rt_vk_add_norm_fusable(const fp4rt_op *add, const fp4rt_op *norm);
fp4rt_status fp4rt_vk_rec_add_norm(const vk_step *s, const fp4rt_op *add, const fp4rt_op *norm);
fp4rt_status fp4rt_vk_rec_rope(const vk_step *s, const fp4rt_op *op); /* vk_op_attention.c */
fp4rt_status fp4rt_vk_rec_kv_append(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_attention(const vk_step *s, const fp4rt_op *op);
/* Creates or grows c->attn_ws for the attention ops of p in sessions like sb. */
fp4rt_status fp4rt_vk_attention_workspace(vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb);
fp4rt_status fp4rt_vk_rec_conv(const vk_step *s, const fp4rt_op *op); /* vk_op_gdn.c */
fp4rt_status fp4rt_vk_rec_gdn(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_layernorm(const vk_step *s, const fp4rt_op *op); /* vk_op_vision.c */
fp4rt_status fp4rt_vk_rec_bias_gelu(const vk_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_vk_rec_attention_full(const vk_step *s, const fp4rt_op *op);

#endif
