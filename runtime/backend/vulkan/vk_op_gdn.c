/* Vulkan Gated-DeltaNet ops: causal conv1d + SiLU with state and the gated delta rule. */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t C, K, T, x_off, y_off, stride, w_off, st_off;
} pc_conv;
_Static_assert(sizeof(pc_conv) == 32, "pc_conv mirrors conv1d_silu.comp");
typedef struct {
    uint32_t T, dk, dv, ratio, key_dim, x_off, z_off, a_off, y_off, stride, dt_off, na_off, s_off;
} pc_gdn;
_Static_assert(sizeof(pc_gdn) == 52, "pc_gdn mirrors gated_delta.comp and gated_delta_chunk.comp");
/* State columns per workgroup of gated_delta.comp (COLS) and gated_delta_chunk.comp
 * (CB); the chunk kernel's chunk is FP4RT_GDN_CHUNK (64) and it needs
 * A [64][64] + U [64][CB] + gamma, beta, decay floats of shared memory. */
_Static_assert(FP4RT_GDN_CHUNK == 64, "gated_delta_chunk.comp has CH 64: the CPU chunk");
#define GDN_REC_COLS 64u
#define GDN_CHUNK_COLS 32u
#define GDN_CHUNK_SHARED_BYTES ((64u * 64u + 64u * GDN_CHUNK_COLS + 3u * 64u) * 4u)

/* Records the copy of `bytes` at `off` of the conv (ssm 0) or recurrent (1)
 * state to checkpoint slot `row` (backend.h fp4rt_session_buffers.ckpt);
 * nothing without a checkpoint buffer. */
static fp4rt_status ckpt_save(const vk_step *s, int ssm, VkDeviceSize off, VkDeviceSize bytes, uint32_t row) {
    const fp4rt_session_buffers *sb = s->sb;
    if (!sb->ckpt) return FP4RT_OK;
    VkDeviceSize slot = sb->conv->bytes + sb->ssm->bytes, base = row * slot + (ssm ? sb->conv->bytes : 0);
    return fp4rt_vk_record_copy(s->c, sb->ckpt, base + off, ssm ? sb->ssm : sb->conv, off, (size_t)bytes);
}

fp4rt_status fp4rt_vk_rec_conv(const vk_step *s, const fp4rt_op *op) {
    uint32_t C = (uint32_t)op->x.cols, K = (uint32_t)op->group_dim;
    if (K < 1 || K > 9)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: conv kernel %u (at most 9)", K);
    vk_bind b[3];
    VkDeviceSize skew = 0;
    pc_conv pc = {.C = C,
                  .K = K,
                  .T = (uint32_t)s->step->n_tokens,
                  .x_off = fp4rt_vk_view_off(s, op->x),
                  .y_off = fp4rt_vk_view_off(s, op->y),
                  .stride = fp4rt_vk_stride(s)};
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_tensor_bind(s, op->w, (VkDeviceSize)C * K * 4, 4, "a conv1d weight", &b[1],
                                  &pc.w_off);
    VkDeviceSize layer = (VkDeviceSize)C * (K - 1) * 4;
    if (!st)
        st = fp4rt_vk_window(s->c, s->sb->conv, (VkDeviceSize)op->slot * layer, layer,
                             "the conv state", &b[2], &skew);
    if (st) return st;
    pc.st_off = (uint32_t)(skew / 4);
    if (!s->step->decode_rows)
        return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_CONV1D_SILU, b, 3, &pc, sizeof pc, vk_groups(C), 1, 1);
    /* a verify step: row by row, the state before each row to its checkpoint slot */
    uint32_t T = pc.T, x0 = pc.x_off, y0 = pc.y_off;
    pc.T = 1;
    for (uint32_t t = 0; t < T && !st; t++) {
        st = ckpt_save(s, 0, (VkDeviceSize)op->slot * layer, layer, t);
        pc.x_off = x0 + t * pc.stride;
        pc.y_off = y0 + t * pc.stride;
        if (!st) st = fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_CONV1D_SILU, b, 3, &pc, sizeof pc, vk_groups(C), 1, 1);
    }
    return st;
}

fp4rt_status fp4rt_vk_rec_gdn(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_config *cfg = &s->p->weights->cfg;
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    if (cfg->lin_k_dim > 256)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: linear_key_head_dim %d > 256",
                          cfg->lin_k_dim);
    vk_bind b[4];
    VkDeviceSize skew = 0;
    pc_gdn pc = {.T = (uint32_t)s->step->n_tokens,
                 .dk = (uint32_t)cfg->lin_k_dim,
                 .dv = (uint32_t)cfg->lin_v_dim,
                 .ratio = (uint32_t)(cfg->lin_v_heads / cfg->lin_k_heads),
                 .key_dim = (uint32_t)fp4rt_cfg_key_dim(cfg),
                 .x_off = fp4rt_vk_view_off(s, op->x),
                 .z_off = fp4rt_vk_view_off(s, op->z),
                 .a_off = fp4rt_vk_view_off(s, op->a),
                 .y_off = fp4rt_vk_view_off(s, op->y),
                 .stride = fp4rt_vk_stride(s)};
    VkDeviceSize layer = (VkDeviceSize)cfg->lin_v_heads * cfg->lin_k_dim * cfg->lin_v_dim * 4;
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_window(s->c, s->sb->ssm, (VkDeviceSize)op->slot * layer, layer,
                             "the GDN state", &b[1], &skew);
    pc.s_off = (uint32_t)(skew / 4);
    VkDeviceSize hv = (VkDeviceSize)cfg->lin_v_heads * 4;
    if (!st) st = fp4rt_vk_tensor_bind(s, L->dt_bias, hv, 4, "dt_bias", &b[2], &pc.dt_off);
    if (!st) st = fp4rt_vk_tensor_bind(s, L->neg_A, hv, 4, "A_log", &b[3], &pc.na_off);
    if (st) return st;
    /* one token (decode): the recurrent form; prefill: the chunked form, as the
     * CPU (FP4RT_GDN_CHUNK), where the device has its shared memory (else the
     * recurrent form; FP4RT_VK_GDN_CHUNKED=0 forces that too, for tests).
     * One dispatch per 64-token chunk (per 128 tokens in the recurrent form):
     * the state carries over through the barrier between dispatches, and no
     * invocation runs more than ~35 000 loop iterations, under lavapipe's
     * limit of 65 535 per invocation (gallivm's loop limiter stops a shader's
     * loops beyond it, silently: the chunked kernel at dk 128 needs ~30 000 per
     * chunk). */
    uint32_t dv = pc.dv, T = pc.T;
    int rows = s->step->decode_rows; /* a verify step: the recurrent form row by row, checkpoints between */
    int chunked = T > 1 && !rows && fp4rt_env_bool(FP4RT_ENV_VK_GDN_CHUNKED) &&
                  s->c->props.limits.maxComputeSharedMemorySize >= GDN_CHUNK_SHARED_BYTES;
    uint32_t per = rows ? 1u : chunked ? FP4RT_GDN_CHUNK : 128u, cols = chunked ? GDN_CHUNK_COLS : GDN_REC_COLS;
    pc_gdn base = pc;
    for (uint32_t t0 = 0; t0 < T && !st; t0 += per) {
        if (rows) st = ckpt_save(s, 1, (VkDeviceSize)op->slot * layer, layer, t0);
        if (st) break;
        pc.T = T - t0 < per ? T - t0 : per;
        pc.x_off = base.x_off + t0 * base.stride;
        pc.z_off = base.z_off + t0 * base.stride;
        pc.a_off = base.a_off + t0 * base.stride;
        pc.y_off = base.y_off + t0 * base.stride;
        st = fp4rt_vk_dispatch(
            s->c, chunked ? FP4RT_VK_SHADER_GATED_DELTA_CHUNK : FP4RT_VK_SHADER_GATED_DELTA, b, 4,
            &pc, sizeof pc, (uint32_t)cfg->lin_v_heads, (dv + cols - 1) / cols, 1);
    }
    return st;
}
