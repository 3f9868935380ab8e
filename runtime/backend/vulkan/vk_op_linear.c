/* Vulkan linear ops: activation quantization (FP8 / NVFP4 W4A4), then the
 * matrix-vector kernel (decode: up to FP4RT_VK_MV_MAX_T tokens; weights in the
 * decode layout, vk_tensor.il, on shaders/linear_mvi.comp, the rest on
 * shaders/linear_mv.comp with subgroup or shared-memory reductions) or the tiled matrix-matrix kernel
 * (prefill: shaders/linear_mm.comp), the cooperative-matrix kernel (FP8 / W4A4
 * prefill on matrix units, shaders/linear_coop.comp) or the integer-dot kernel
 * (W4A4 prefill, shaders/linear_i8.comp), chosen per token piece by
 * fp4rt_vk_linear_kernel (vk_linear_policy.c), over bindings cut
 * into pieces that each fit the binding limit: rows of W (weight pieces,
 * c->piece_range) and tokens of x / y (the activation arena, the logits
 * [rows, vocab] and the quantized activations are bound per token piece,
 * c->act_range, never whole). On software devices (c->linear_rows) every
 * linear runs shaders/linear_rows.comp instead: one row per invocation, the same
 * bits as the matrix-vector kernel. */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

#include <string.h>

#define FP4RT_VK_MV_ROWS 4  /* output rows per matrix-vector workgroup (NR in linear_mv.comp) */
#define FP4RT_VK_MV_TOKENS 4 /* tokens per matrix-vector workgroup (MT) */
#define FP4RT_VK_MVI_ROWS 16 /* output rows per linear_mvi.comp workgroup (RPW) */
#define FP4RT_VK_MVI_TOKENS 4 /* tokens per linear_mvi.comp workgroup (MT) */
#define FP4RT_VK_ROWS_WG 32    /* rows per linear_rows.comp workgroup (WGR x R) */
#define FP4RT_VK_ROWS_TOKENS 2 /* tokens per linear_rows.comp workgroup (MT) */
#define FP4RT_VK_MM_TILE 64 /* rows and tokens per matrix-matrix workgroup (TILE in linear_mm.comp, linear_i8.comp) */
#define FP4RT_VK_COOP_TILE 32 /* rows and tokens per cooperative-matrix workgroup (TM, TN in linear_coop.comp) */

static long g_coop_dispatches, g_i8_dispatches, g_pre_linears, g_logits_groups;
long fp4rt_vk_pre_linears(void) { return g_pre_linears; }
long fp4rt_vk_logits_groups(void) { return g_logits_groups; }
long fp4rt_vk_coop_dispatches(void) { return g_coop_dispatches; }
long fp4rt_vk_i8_dispatches(void) { return g_i8_dispatches; }

typedef struct {
    uint32_t K, mode, x_off, x_stride;
    float input_scale;
    uint32_t post_off;
    float weight_scale;
    uint32_t pre, pre_off, pre_gd, pre_gs; /* a fused op on every x read (vk_pc_linear's) */
} pc_act_quant;
_Static_assert(sizeof(pc_act_quant) == 44, "pc_act_quant mirrors act_quant.comp");

/* A window over floats [off, off + n) of buffer b; *skew gets the float offset of
 * `off` inside it. */
static fp4rt_status float_window(const vk_ctx *c, const fp4rt_buffer *b, uint64_t off, uint64_t n,
                                 const char *what, vk_bind *out, uint32_t *skew) {
    VkDeviceSize sk = 0;
    fp4rt_status st = fp4rt_vk_window(c, b, off * 4, n * 4, what, out, &sk);
    *skew = (uint32_t)(sk / 4);
    return st;
}

/* Most tokens per piece such that `first` + (tokens - 1) * stride floats fit in
 * `limit` bytes (with room for the alignment skew); 0 if not even one does. */
static uint64_t tokens_fitting(VkDeviceSize limit, VkDeviceSize align, uint64_t first, uint64_t stride) {
    if (limit < align + first * 4) return 0;
    uint64_t room = (limit - align - first * 4) / 4;
    return stride ? 1 + room / stride : UINT32_MAX;
}

/* Rows of W and tokens one workgroup of linear kernel k covers. */
static void kernel_tile(vk_kernel k, uint64_t *rows, uint64_t *tokens) {
    switch (k) {
    case FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4:
    case FP4RT_VK_SHADER_LINEAR_ROWS_FP8:
    case FP4RT_VK_SHADER_LINEAR_ROWS_HALF:
    case FP4RT_VK_SHADER_LINEAR_ROWS_F32:
        *rows = FP4RT_VK_ROWS_WG, *tokens = FP4RT_VK_ROWS_TOKENS;
        return;
    case FP4RT_VK_SHADER_LINEAR_COOP:
    case FP4RT_VK_SHADER_LINEAR_COOP_EMU:
        *rows = *tokens = FP4RT_VK_COOP_TILE;
        return;
    case FP4RT_VK_SHADER_LINEAR_MM:
    case FP4RT_VK_SHADER_LINEAR_I8:
        *rows = *tokens = FP4RT_VK_MM_TILE;
        return;
    case FP4RT_VK_SHADER_LINEAR_MVI_NVFP4:
    case FP4RT_VK_SHADER_LINEAR_MVI_FP8:
    case FP4RT_VK_SHADER_LINEAR_MVI_BF16:
        *rows = FP4RT_VK_MVI_ROWS, *tokens = FP4RT_VK_MVI_TOKENS;
        return;
    default: /* linear_mv */
        *rows = FP4RT_VK_MV_ROWS, *tokens = FP4RT_VK_MV_TOKENS;
    }
}

fp4rt_status fp4rt_vk_rec_linear(const vk_step *s, const fp4rt_op *op) { return fp4rt_vk_rec_linear_pre(s, op, NULL); }

fp4rt_status fp4rt_vk_rec_linear_pre(const vk_step *s, const fp4rt_op *op, const fp4rt_op *pre) {
    const fp4rt_linear *l = op->lin;
    vk_ctx *c = s->c;
    int T = s->step->n_tokens, K = l->n_in;
    if (op->x.cols != K || op->y.cols != l->n_out)
        return fp4rt_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module,
                          op->x.cols, op->y.cols, l->n_out, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    int t0 = op->is_logits && !s->step->all_logits ? T - 1 : 0, rows = T - t0;
    if (rows <= 0) return FP4RT_OK;
    /* outputs computed: the LM head's first logits_rows (the draft vocabulary), else all */
    uint64_t n_out = op->is_logits && s->step->logits_rows ? (uint64_t)s->step->logits_rows : (uint64_t)l->n_out;
    fp4rt_vk_act_quant aq = fp4rt_vk_act_quant_of(l);
    int quant = aq != FP4RT_VK_ACT_NONE;
    if (pre) g_pre_linears++;
    float post = 1.0f;
    if (quant)
        post = l->input_scale * l->weight_scale;
    else if (l->fmt == FP4RT_W_NVFP4)
        post = l->weight_scale;
    /* activations: x rows t at xo + t * xs floats of the arena; y rows at yo + t * ys */
    uint64_t xo = fp4rt_vk_view_off(s, op->x) + (uint64_t)t0 * fp4rt_vk_stride(s), xs = fp4rt_vk_stride(s);
    /* a fused op's z operand shares the x binding: the window spans both, from
     * lo (floats of the first row) over xspan floats per row */
    uint64_t lo = xo, xspan = (uint64_t)K, zo = 0;
    if (pre) {
        zo = fp4rt_vk_view_off(s, pre->z) + (uint64_t)t0 * xs;
        uint64_t hi = xo + (uint64_t)K, zhi = zo + fp4rt_vk_pre_span(pre);
        lo = zo < xo ? zo : xo;
        xspan = (zhi > hi ? zhi : hi) - lo;
    }
    const fp4rt_buffer *yb_buf = s->sb->scratch;
    uint64_t yo, ys;
    if (op->is_logits) {
        yb_buf = s->sb->logits;
        yo = 0;
        ys = (uint64_t)s->p->weights->cfg.vocab;
    } else {
        yo = fp4rt_vk_view_off(s, op->y) + (uint64_t)t0 * fp4rt_vk_stride(s);
        ys = fp4rt_vk_stride(s);
    }
    int dyn = aq == FP4RT_VK_ACT_NVFP4_DYNAMIC; /* per-row scales after the rows */
    if (quant && ((VkDeviceSize)rows * K + (dyn ? (VkDeviceSize)rows : 0)) * 4 > c->xq->bytes)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: xq too small");

    const vk_tensor *wt = fp4rt_vk_tensor_find(c, l->weight);
    const vk_tensor *st_t = l->block_scale ? fp4rt_vk_tensor_find(c, l->block_scale) : NULL;
    if (!wt || (l->block_scale && !st_t))
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", l->module);
    fp4rt_vk_linear_caps caps = {.coop = c->coop, .idot = c->idot, .linear_rows = c->linear_rows,
                                 .linear_subgroup = c->linear_subgroup, .exact = c->exact,
                                 .interleaved = wt->il != 0};
    const uint32_t *max_groups = c->props.limits.maxComputeWorkGroupCount;

    /* weight pieces: rows of W that fit one binding and one dispatch */
    size_t rb = (size_t)l->row_bytes;
    uint64_t per = (c->piece_range - c->align) / (rb ? rb : 1);
    if (per > (uint64_t)max_groups[0] * FP4RT_VK_MV_ROWS) per = (uint64_t)max_groups[0] * FP4RT_VK_MV_ROWS;
    if (per == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: %s: one row of %zu bytes exceeds maxStorageBufferRange %llu",
                          l->module, rb, (unsigned long long)c->max_range);
    if (per > n_out) per = n_out;
    /* token pieces: x, y (and xq) windows within the limit; a single token over
     * the lowered test limit falls back to the device's own */
    VkDeviceSize lim = c->act_range;
    if (!tokens_fitting(lim, c->align, xspan, xs) || !tokens_fitting(lim, c->align, per, ys))
        lim = c->max_range;
    uint64_t tr = tokens_fitting(lim, c->align, xspan, xs), ty = tokens_fitting(lim, c->align, per, ys);
    uint64_t tq = quant ? tokens_fitting(lim, c->align, (uint64_t)K + 1, (uint64_t)K + 1) : UINT32_MAX;
    if (ty < tr) tr = ty;
    if (tq < tr) tr = tq;
    uint64_t tok_groups = /* the fewer */
        (uint64_t)max_groups[1] * (c->linear_rows ? FP4RT_VK_ROWS_TOKENS : FP4RT_VK_MV_TOKENS);
    if (tok_groups < tr) tr = tok_groups;
    if (tr == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: %s: one token's activations exceed maxStorageBufferRange %llu",
                          l->module, (unsigned long long)c->max_range);

    for (uint64_t ta = 0; ta < (uint64_t)rows; ta += tr) {
        uint64_t nt = (uint64_t)rows - ta < tr ? (uint64_t)rows - ta : tr;
        /* the piece's kernel; a software device's whole-rows kernel is picked per weight piece */
        vk_kernel piece_kern = fp4rt_vk_linear_kernel(l->fmt, aq, K, nt, &caps, 0);
        int coop = piece_kern == FP4RT_VK_SHADER_LINEAR_COOP || piece_kern == FP4RT_VK_SHADER_LINEAR_COOP_EMU;
        int i8 = piece_kern == FP4RT_VK_SHADER_LINEAR_I8;
        vk_pc_linear pc = {.K = (uint32_t)K, .fmt = (uint32_t)l->fmt, .T = (uint32_t)nt, .post = post, .il = wt->il};
        vk_bind xb, yb, wb, sb = {0};
        fp4rt_status st = float_window(c, s->sb->scratch, lo + ta * xs, (nt - 1) * xs + xspan,
                                       "the activation arena", &xb, &pc.x_off);
        if (st) return st;
        if (pre) { /* in act_quant's reads of x (below) when quantized, else linear_mvi's staging */
            if (!quant && piece_kern != FP4RT_VK_SHADER_LINEAR_MVI_NVFP4 && piece_kern != FP4RT_VK_SHADER_LINEAR_MVI_FP8 &&
                piece_kern != FP4RT_VK_SHADER_LINEAR_MVI_BF16)
                return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s: a fused %s off the decode kernel", l->module,
                                  fp4rt_op_name(pre->kind));
            int swiglu = pre->kind == FP4RT_OP_SWIGLU;
            pc.pre = swiglu ? 1u : 2u;
            pc.pre_off = pc.x_off + (uint32_t)(zo - lo);
            pc.pre_gd = swiglu ? (uint32_t)K : (uint32_t)pre->group_dim;
            pc.pre_gs = swiglu ? 0u : (uint32_t)pre->z_group_stride;
            pc.x_off += (uint32_t)(xo - lo);
        }
        pc.x_stride = (uint32_t)xs;
        pc.y_stride = (uint32_t)ys;
        if (quant) {
            int fp8 = aq == FP4RT_VK_ACT_FP8;
            /* linear_i8 takes the codes (modes 3 / 4): rows of 5 K / 16 words */
            uint64_t qrow = i8 ? (uint64_t)K / 16 * 5 : (uint64_t)K;
            pc_act_quant q = {.K = (uint32_t)K,
                              .mode = fp8 ? 0u : (dyn ? 2u : 1u) + (i8 ? 2u : 0u),
                              .x_off = pc.x_off,
                              .x_stride = pc.x_stride,
                              .input_scale = l->input_scale,
                              .post_off = (uint32_t)(nt * qrow),
                              .weight_scale = l->weight_scale,
                              .pre = pc.pre,
                              .pre_off = pc.pre_off,
                              .pre_gd = pc.pre_gd,
                              .pre_gs = pc.pre_gs};
            pc.pre = 0; /* the linear reads the quantized rows */
            vk_bind qb[2] = {xb, {c->xq, 0, (nt * (VkDeviceSize)qrow + (dyn ? nt : 0)) * 4}};
            st = fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_ACT_QUANT, qb, 2, &q, sizeof q,
                                   vk_groups(fp8 ? (uint64_t)K : (uint64_t)K / 16), (uint32_t)nt, 1);
            if (st) return st;
            xb = qb[1];
            pc.x_off = 0;
            pc.x_stride = (uint32_t)qrow;
            if (dyn) pc.post_off = q.post_off;
        }
        for (uint64_t n0 = 0; n0 < n_out; n0 += per) {
            uint64_t n = n_out - n0 < per ? n_out - n0 : per;
            st = float_window(c, yb_buf, yo + ta * ys + n0, (nt - 1) * ys + n,
                              op->is_logits ? "the logits buffer" : "the activation arena", &yb, &pc.y_off);
            if (st) return st;
            VkDeviceSize skew = 0;
            st = fp4rt_vk_window(c, c->weights, wt->offset + n0 * rb, n * rb, l->module, &wb, &skew);
            if (st) return st;
            pc.w_off = (uint32_t)skew;
            pc.aligned = rb % 16 == 0 && skew % 16 == 0;
            /* the whole-rows kernel takes whole groups of 16 weights by 64-bit
             * loads (and x by 64-bit loads where its offset and stride are even) */
            vk_kernel kern = fp4rt_vk_linear_kernel(l->fmt, aq, K, nt, &caps, rb % 8 == 0 && skew % 8 == 0);
            if (kern != piece_kern) /* the whole-rows kernel */
                pc.aligned = pc.x_off % 2 == 0 && pc.x_stride % 2 == 0 ? 2 : 0;
            uint64_t rows_per_group, tok_per_group;
            kernel_tile(kern, &rows_per_group, &tok_per_group);
            if (st_t) {
                st = fp4rt_vk_window(c, c->weights, st_t->offset + n0 * (K / 16), n * (K / 16), l->module, &sb,
                                     &skew);
                if (st) return st;
                pc.s_off = (uint32_t)skew;
            }
            if (kern == FP4RT_VK_SHADER_LINEAR_MVI_NVFP4 || kern == FP4RT_VK_SHADER_LINEAR_MVI_FP8 ||
                kern == FP4RT_VK_SHADER_LINEAR_MVI_BF16) /* whole blocks by 16-byte loads, scales by words */
                pc.aligned = pc.w_off % 16 == 0 && rb % 16 == 0 &&
                             (!st_t || (pc.s_off % 4 == 0 && (K / 16) % 4 == 0));
            pc.N = (uint32_t)n;
            vk_bind b[4] = {xb, wb, sb, yb};
            if (coop) g_coop_dispatches++;
            if (i8) g_i8_dispatches++;
            uint32_t gx = (uint32_t)((n + rows_per_group - 1) / rows_per_group),
                     gy = (uint32_t)((nt + tok_per_group - 1) / tok_per_group);
            if (op->is_logits) g_logits_groups += (long)gx * gy;
            st = fp4rt_vk_dispatch(c, kern, b, 4, &pc, sizeof pc, gx, gy, 1);
            if (st) return st;
        }
    }
    return FP4RT_OK;
}
