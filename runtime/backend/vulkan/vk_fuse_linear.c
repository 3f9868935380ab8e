/* Vulkan: an element-wise op fused into the linear that reads its output
 * (issue 19 item 4). A SWIGLU (y = silu(x) * z, the MLP's gate and up) or a
 * SIGMOID_GATE (y = x * sigmoid(z), attention output and its gate) whose output
 * only the next op, a LINEAR, reads: with quantized activations (FP8, W4A4)
 * act_quant.comp applies the op wherever it reads x (any kernel after it, decode
 * or prefill); with FP32 activations only the decode kernel (linear_mvi) can,
 * as it stages x. Either way through pc.pre, and the op's own dispatch is
 * skipped: its output is never written. The same expressions on the same
 * canonical silu / sigmoid as eltwise.comp: the same bits. */
#include "runtime/backend/vulkan/vk_ops.h"

static int same_view(fp4rt_view a, fp4rt_view b) { return a.buf == b.buf && a.col == b.col && a.cols == b.cols; }

static int reads_buf(const fp4rt_op *op, int buf) {
    /* every view an op names, output too (conservative: a later writer keeps the op) */
    return (op->x.cols && op->x.buf == buf) || (op->z.cols && op->z.buf == buf) ||
           (op->a.cols && op->a.buf == buf) || (op->y.cols && op->y.buf == buf);
}

/* Floats of an arena row [lo, lo + n) and [lo2, lo2 + n2) overlap. */
static int overlap(uint32_t lo, uint32_t n, uint32_t lo2, uint32_t n2) { return lo < lo2 + n2 && lo2 < lo + n; }

static int later_unread(const vk_step *s, int i, const fp4rt_op *pre, const fp4rt_op *lin);

uint32_t fp4rt_vk_pre_span(const fp4rt_op *pre) {
    if (pre->kind == FP4RT_OP_SWIGLU) return (uint32_t)pre->z.cols;
    return (uint32_t)((pre->n_groups - 1) * pre->z_group_stride + pre->group_dim);
}

int fp4rt_vk_pre_linear_fusable(const vk_step *s, int i) {
    const fp4rt_program *p = s->p;
    const vk_ctx *c = s->c;
    if (i + 1 >= p->n_ops) return 0;
    const fp4rt_op *pre = &p->ops[i], *lin = &p->ops[i + 1];
    if (lin->kind != FP4RT_OP_LINEAR || lin->is_logits || !lin->lin) return 0;
    const fp4rt_linear *l = lin->lin;
    int K = l->n_in;
    if (!same_view(pre->x, pre->y) || !same_view(pre->y, lin->x) || lin->x.cols != K || K % 16) return 0;
    if (pre->kind == FP4RT_OP_SWIGLU) {
        if (pre->z.cols != K) return 0;
    } else if (pre->kind == FP4RT_OP_SIGMOID_GATE) {
        if (pre->group_dim <= 0 || pre->n_groups * pre->group_dim != K || pre->group_stride != pre->group_dim ||
            pre->z_group_stride < pre->group_dim)
            return 0;
    } else
        return 0;
    /* quantized activations: act_quant.comp applies the op wherever it reads x,
     * whatever kernel follows; else the decode kernel for every piece of the
     * step's tokens */
    const vk_tensor *wt = fp4rt_vk_tensor_find(c, l->weight);
    fp4rt_vk_act_quant aq = fp4rt_vk_act_quant_of(l);
    if (!wt) return 0;
    if (aq != FP4RT_VK_ACT_NONE) return later_unread(s, i, pre, lin);
    if (!wt->il || c->linear_rows) return 0;
    fp4rt_vk_linear_caps caps = {.coop = c->coop, .idot = c->idot, .linear_subgroup = c->linear_subgroup,
                                 .exact = c->exact, .interleaved = 1};
    vk_kernel k = fp4rt_vk_linear_kernel(l->fmt, aq, K, (uint64_t)s->step->n_tokens, &caps, 0);
    if (k != FP4RT_VK_SHADER_LINEAR_MVI_NVFP4 && k != FP4RT_VK_SHADER_LINEAR_MVI_FP8 &&
        k != FP4RT_VK_SHADER_LINEAR_MVI_BF16)
        return 0;
    return later_unread(s, i, pre, lin);
}

/* Nothing after the linear at i + 1 reads pre's output (it is never written),
 * and the linear's output shares no arena column with what the fused op reads. */
static int later_unread(const vk_step *s, int i, const fp4rt_op *pre, const fp4rt_op *lin) {
    const fp4rt_program *p = s->p;
    uint32_t K = (uint32_t)lin->x.cols;
    if (pre->y.buf == p->hidden_buf) return 0;
    for (int j = i + 2; j < p->n_ops; j++)
        if (reads_buf(&p->ops[j], pre->y.buf)) return 0;
    uint32_t yo = fp4rt_vk_view_off(s, lin->y), yn = (uint32_t)lin->y.cols;
    return !overlap(yo, yn, fp4rt_vk_view_off(s, pre->x), K) &&
           !overlap(yo, yn, fp4rt_vk_view_off(s, pre->z), fp4rt_vk_pre_span(pre));
}
