/* Vulkan linear ops: activation quantization (FP8 / NVFP4 W4A4), then the
 * matrix-vector kernel (decode: up to VK_MV_MAX_T tokens, shaders/linear_mv.comp
 * with subgroup or shared-memory reductions) or the tiled matrix-matrix kernel
 * (prefill: shaders/linear_mm.comp), the cooperative-matrix kernel (FP8 / W4A4
 * prefill on matrix units, shaders/linear_coop.comp) or the integer-dot kernel
 * (W4A4 prefill, shaders/linear_i8.comp), chosen per token piece (see the
 * policy below), over bindings cut
 * into pieces that each fit the binding limit: rows of W (weight pieces,
 * c->piece_range) and tokens of x / y (the activation arena, the logits
 * [rows, vocab] and the quantized activations are bound per token piece,
 * c->act_range, never whole). On software devices (c->linear_rows) every
 * linear runs shaders/linear_rows.comp instead: one row per invocation, the same
 * bits as the matrix-vector kernel. */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

#include <string.h>

#define VK_MV_MAX_T 8 /* up to this many tokens: the matrix-vector kernel */
#define VK_MV_ROWS 4  /* output rows per matrix-vector workgroup (NR in linear_mv.comp) */
#define VK_MV_TOKENS 4 /* tokens per matrix-vector workgroup (MT) */
#define VK_ROWS_WG 32    /* rows per linear_rows.comp workgroup (WGR x R) */
#define VK_ROWS_TOKENS 2 /* tokens per linear_rows.comp workgroup (MT) */
#define VK_MM_TILE 64 /* rows and tokens per matrix-matrix workgroup (TILE in linear_mm.comp, linear_i8.comp) */
#define VK_COOP_TILE 32 /* rows and tokens per cooperative-matrix workgroup (TM, TN in linear_coop.comp) */

static long g_coop_dispatches, g_i8_dispatches;
long fp4rt_vk_coop_dispatches(void) { return g_coop_dispatches; }
long fp4rt_vk_i8_dispatches(void) { return g_i8_dispatches; }

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

/* Prefill (more than VK_MV_MAX_T tokens) on GPUs favours speed: FP8 / W4A4
 * linears on the matrix units (linear_coop: exact products, FP32 sums in the
 * hardware's order) where the device has them, else W4A4 on packed integer dot
 * products (linear_i8: exact 16-blocks) where it accelerates them, else every
 * linear on the tiled FP32 kernel (linear_mm). Those sum in other orders than
 * the CPU; in a model that re-quantizes activations a last-bit difference can
 * move an activation code (test_vk_parity's rules). FP4RT_VK_EXACT=1 keeps
 * every linear on the matrix-vector kernel, which reproduces the CPU's sums
 * bit for bit at any number of tokens. Software devices (lavapipe) run the
 * exact whole-rows kernel unless a test forces the others. */
/* Rows of W and tokens one workgroup of linear kernel k covers. */
static void kernel_tile(vk_kernel k, uint64_t *rows, uint64_t *tokens) {
    switch (k) {
    case FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4:
    case FP4RT_VK_SHADER_LINEAR_ROWS_FP8:
    case FP4RT_VK_SHADER_LINEAR_ROWS_HALF:
    case FP4RT_VK_SHADER_LINEAR_ROWS_F32:
        *rows = VK_ROWS_WG, *tokens = VK_ROWS_TOKENS;
        return;
    case FP4RT_VK_SHADER_LINEAR_COOP:
    case FP4RT_VK_SHADER_LINEAR_COOP_EMU:
        *rows = *tokens = VK_COOP_TILE;
        return;
    case FP4RT_VK_SHADER_LINEAR_MM:
    case FP4RT_VK_SHADER_LINEAR_I8:
        *rows = *tokens = VK_MM_TILE;
        return;
    default: /* linear_mv */
        *rows = VK_MV_ROWS, *tokens = VK_MV_TOKENS;
    }
}

static vk_kernel rows_kernel(fp4rt_wfmt f) {
    switch (f) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16:
        return FP4RT_VK_SHADER_LINEAR_ROWS_HALF;
    case FP4RT_W_F32:
        return FP4RT_VK_SHADER_LINEAR_ROWS_F32;
    case FP4RT_W_FP8:
        return FP4RT_VK_SHADER_LINEAR_ROWS_FP8;
    default:
        return FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4;
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
    if (rows <= 0) return FP4RT_OK;
    int quant = l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4;
    float post = 1.0f;
    if (quant)
        post = l->input_scale * l->weight_scale;
    else if (l->fmt == FP4RT_W_NVFP4)
        post = l->weight_scale;
    /* activations: x rows t at xo + t * xs floats of the arena; y rows at yo + t * ys */
    uint64_t xo = fp4rt_vk_view_off(s, op->x) + (uint64_t)t0 * fp4rt_vk_stride(s), xs = fp4rt_vk_stride(s);
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
    int dyn = l->fmt == FP4RT_W_NVFP4_W4A4 && l->act_dynamic; /* per-row scales after the rows */
    if (quant && ((VkDeviceSize)rows * K + (dyn ? (VkDeviceSize)rows : 0)) * 4 > c->xq->bytes)
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: xq too small");

    const vk_tensor *wt = fp4rt_vk_tensor_find(c, l->weight);
    const vk_tensor *st_t = l->block_scale ? fp4rt_vk_tensor_find(c, l->block_scale) : NULL;
    if (!wt || (l->block_scale && !st_t))
        return fp4rt_fail(FP4RT_INTERNAL, "vulkan: %s was not uploaded", l->module);
    const uint32_t *max_groups = c->props.limits.maxComputeWorkGroupCount;

    /* weight pieces: rows of W that fit one binding and one dispatch */
    size_t rb = row_bytes(l);
    uint64_t per = (c->piece_range - c->align) / (rb ? rb : 1);
    if (per > (uint64_t)max_groups[0] * VK_MV_ROWS) per = (uint64_t)max_groups[0] * VK_MV_ROWS;
    if (per == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: %s: one row of %zu bytes exceeds maxStorageBufferRange %llu",
                          l->module, rb, (unsigned long long)c->max_range);
    if (per > (uint64_t)l->n_out) per = (uint64_t)l->n_out;
    /* token pieces: x, y (and xq) windows within the limit; a single token over
     * the lowered test limit falls back to the device's own */
    VkDeviceSize lim = c->act_range;
    if (!tokens_fitting(lim, c->align, (uint64_t)K, xs) || !tokens_fitting(lim, c->align, per, ys))
        lim = c->max_range;
    uint64_t tr = tokens_fitting(lim, c->align, (uint64_t)K, xs), ty = tokens_fitting(lim, c->align, per, ys);
    uint64_t tq = quant ? tokens_fitting(lim, c->align, (uint64_t)K + 1, (uint64_t)K + 1) : UINT32_MAX;
    if (ty < tr) tr = ty;
    if (tq < tr) tr = tq;
    uint64_t tok_groups = (uint64_t)max_groups[1] * (c->linear_rows ? VK_ROWS_TOKENS : VK_MV_TOKENS); /* the fewer */
    if (tok_groups < tr) tr = tok_groups;
    if (tr == 0)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: %s: one token's activations exceed maxStorageBufferRange %llu",
                          l->module, (unsigned long long)c->max_range);

    for (uint64_t ta = 0; ta < (uint64_t)rows; ta += tr) {
        uint64_t nt = (uint64_t)rows - ta < tr ? (uint64_t)rows - ta : tr;
        int big = nt > VK_MV_MAX_T && !c->exact;
        int coop = big && quant && c->coop;
        int i8 = big && !coop && l->fmt == FP4RT_W_NVFP4_W4A4 && c->idot && K % 16 == 0;
        int mm = big && !coop && !i8 && !c->linear_rows;
        vk_kernel mv = coop ? (c->coop == FP4RT_VK_COOP_EMU ? FP4RT_VK_SHADER_LINEAR_COOP_EMU
                                                            : FP4RT_VK_SHADER_LINEAR_COOP)
                       : i8 ? FP4RT_VK_SHADER_LINEAR_I8
                       : mm ? FP4RT_VK_SHADER_LINEAR_MM
                       : c->linear_subgroup ? FP4RT_VK_SHADER_LINEAR
                                            : FP4RT_VK_SHADER_LINEAR_SHMEM;
        vk_pc_linear pc = {.K = (uint32_t)K, .fmt = (uint32_t)l->fmt, .T = (uint32_t)nt, .post = post};
        vk_bind xb, yb, wb, sb = {0};
        fp4rt_status st = float_window(c, s->sb->scratch, xo + ta * xs, (nt - 1) * xs + (uint64_t)K,
                                       "the activation arena", &xb, &pc.x_off);
        if (st) return st;
        pc.x_stride = (uint32_t)xs;
        pc.y_stride = (uint32_t)ys;
        if (quant) {
            int fp8 = l->fmt == FP4RT_W_FP8;
            /* linear_i8 takes the codes (modes 3 / 4): rows of 5 K / 16 words */
            uint64_t qrow = i8 ? (uint64_t)K / 16 * 5 : (uint64_t)K;
            pc_act_quant q = {.K = (uint32_t)K,
                              .mode = fp8 ? 0u : (dyn ? 2u : 1u) + (i8 ? 2u : 0u),
                              .x_off = pc.x_off,
                              .x_stride = pc.x_stride,
                              .input_scale = l->input_scale,
                              .post_off = (uint32_t)(nt * qrow),
                              .weight_scale = l->weight_scale};
            vk_bind qb[2] = {xb, {c->xq, 0, (nt * (VkDeviceSize)qrow + (dyn ? nt : 0)) * 4}};
            st = fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_ACT_QUANT, qb, 2, &q, sizeof q,
                                   vk_groups(fp8 ? (uint64_t)K : (uint64_t)K / 16), (uint32_t)nt, 1);
            if (st) return st;
            xb = qb[1];
            pc.x_off = 0;
            pc.x_stride = (uint32_t)qrow;
            if (dyn) pc.post_off = q.post_off;
        }
        for (uint64_t n0 = 0; n0 < (uint64_t)l->n_out; n0 += per) {
            uint64_t n = (uint64_t)l->n_out - n0 < per ? (uint64_t)l->n_out - n0 : per;
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
            int rows_k = c->linear_rows && !coop && !i8 && K % 16 == 0 && rb % 8 == 0 && skew % 8 == 0;
            if (rows_k) pc.aligned = pc.x_off % 2 == 0 && pc.x_stride % 2 == 0 ? 2 : 0;
            vk_kernel kern = rows_k ? rows_kernel(l->fmt) : mv;
            uint64_t rows_per_group, tok_per_group;
            kernel_tile(kern, &rows_per_group, &tok_per_group);
            if (st_t) {
                st = fp4rt_vk_window(c, c->weights, st_t->offset + n0 * (K / 16), n * (K / 16), l->module, &sb,
                                     &skew);
                if (st) return st;
                pc.s_off = (uint32_t)skew;
            }
            pc.N = (uint32_t)n;
            vk_bind b[4] = {xb, wb, sb, yb};
            if (coop) g_coop_dispatches++;
            if (i8) g_i8_dispatches++;
            st = fp4rt_vk_dispatch(c, kern, b, 4, &pc, sizeof pc, (uint32_t)((n + rows_per_group - 1) / rows_per_group),
                                   (uint32_t)((nt + tok_per_group - 1) / tok_per_group), 1);
            if (st) return st;
        }
    }
    return FP4RT_OK;
}
