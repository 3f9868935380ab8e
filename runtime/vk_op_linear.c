/* Vulkan linear ops: activation quantization (FP8 / NVFP4 W4A4) and the matrix-vector /
 * matrix-matrix kernels over weights bound in pieces. */
#include "vk_ops.h"

#include "common.h"
#include "model.h"

#include <string.h>

typedef struct {
    uint32_t K, fmt, x_off, x_stride, y_off, y_stride, n0, w_off, s_off, post_off, pad1;
    float post;
} pc_linear;
_Static_assert(sizeof(pc_linear) == 48, "pc_linear mirrors linear.comp");
typedef struct {
    uint32_t K, mode, x_off, x_stride;
    float input_scale;
    uint32_t post_off;
    float weight_scale;
} pc_act_quant;
_Static_assert(sizeof(pc_act_quant) == 28, "pc_act_quant mirrors act_quant.comp");

static size_t row_bytes(const fp4rt_linear *l) {
    switch (l->fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16:
        return (size_t)l->n_in * 2;
    case FP4RT_W_F32:
        return (size_t)l->n_in * 4;
    case FP4RT_W_FP8:
        return (size_t)l->n_in;
    default:
        return (size_t)l->n_in / 2;
    }
}

fp4rt_status fp4rt_vk_rec_linear(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    vk_ctx *c = s->c;
    int T = s->step->n_tokens, K = l->n_in;
    if (op->x.cols != K || op->y.cols != l->n_out)
        return fp4rt_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module,
                          op->x.cols, op->y.cols, l->n_out, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0, rows = T - t0;
    vk_bind arena, xb, yb, wb, sb = {0};
    fp4rt_status st = fp4rt_vk_arena_bind(s, &arena);
    if (st) return st;
    pc_linear pc = {.K = (uint32_t)K,
                    .fmt = (uint32_t)l->fmt,
                    .x_off = fp4rt_vk_view_off(s, op->x) + (uint32_t)t0 * fp4rt_vk_stride(s),
                    .x_stride = fp4rt_vk_stride(s),
                    .post = 1.0f};
    xb = arena;
    if (l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4) {
        int fp8 = l->fmt == FP4RT_W_FP8;
        int dyn = !fp8 && l->act_dynamic; /* per-row scale: posts after the rows */
        pc_act_quant q = {.K = (uint32_t)K,
                          .mode = fp8 ? 0u : dyn ? 2u : 1u,
                          .x_off = pc.x_off,
                          .x_stride = pc.x_stride,
                          .input_scale = l->input_scale,
                          .post_off = (uint32_t)rows * (uint32_t)K,
                          .weight_scale = l->weight_scale};
        VkDeviceSize qbytes = ((VkDeviceSize)rows * K + (dyn ? (VkDeviceSize)rows : 0)) * 4;
        vk_bind qb[2] = {arena, {c->xq, 0, qbytes}};
        if (qbytes > c->xq->bytes) return fp4rt_fail(FP4RT_INTERNAL, "vulkan: xq too small");
        st = fp4rt_vk_dispatch(c, VK_K_ACT_QUANT, qb, 2, &q, sizeof q,
                               vk_groups(fp8 ? (uint64_t)K : (uint64_t)K / 16), (uint32_t)rows, 1);
        if (st) return st;
        xb = qb[1];
        pc.x_off = 0;
        pc.x_stride = (uint32_t)K;
        pc.post = l->input_scale * l->weight_scale;
        if (dyn) pc.post_off = q.post_off;
    } else if (l->fmt == FP4RT_W_NVFP4) {
        pc.post = l->weight_scale;
    }
    if (op->is_logits) {
        st = fp4rt_vk_window(c, s->sb->logits, 0, s->sb->logits->bytes, "the logits buffer", &yb,
                             NULL);
        pc.y_off = 0;
        pc.y_stride = (uint32_t)s->p->weights->cfg.vocab;
    } else {
        yb = arena;
        pc.y_off = fp4rt_vk_view_off(s, op->y) + (uint32_t)t0 * fp4rt_vk_stride(s);
        pc.y_stride = fp4rt_vk_stride(s);
    }
    if (st) return st;
    const vk_tensor *wt = fp4rt_vk_tensor_find(c, l->weight);
    const vk_tensor *st_t = l->block_scale ? fp4rt_vk_tensor_find(c, l->block_scale) : NULL;
    if (!wt || (l->block_scale && !st_t))
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", l->module);
    /* rows of W in pieces that fit one binding (and the workgroup-count limit) */
    size_t rb = row_bytes(l);
    uint64_t per = (c->piece_range - c->align) / (rb ? rb : 1);
    if (per > 65535) per = 65535;
    if (per == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: %s: one row of %zu bytes exceeds maxStorageBufferRange %llu",
                          l->module, rb, (unsigned long long)c->max_range);
    for (uint64_t n0 = 0; n0 < (uint64_t)l->n_out; n0 += per) {
        uint64_t n = (uint64_t)l->n_out - n0 < per ? (uint64_t)l->n_out - n0 : per;
        VkDeviceSize skew = 0;
        st = fp4rt_vk_window(c, c->weights, wt->offset + n0 * rb, n * rb, l->module, &wb, &skew);
        if (st) return st;
        pc.w_off = (uint32_t)skew;
        if (st_t) {
            st = fp4rt_vk_window(c, c->weights, st_t->offset + n0 * (K / 16), n * (K / 16),
                                 l->module, &sb, &skew);
            if (st) return st;
            pc.s_off = (uint32_t)skew;
        }
        pc.n0 = (uint32_t)n0;
        vk_bind b[4] = {xb, wb, sb, yb};
        st =
            fp4rt_vk_dispatch(c, VK_K_LINEAR, b, 4, &pc, sizeof pc, (uint32_t)n, (uint32_t)rows, 1);
        if (st) return st;
    }
    return FP4RT_OK;
}
