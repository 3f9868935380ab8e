/* Vulkan attention ops: partial RoPE, KV-cache append and causal GQA attention.
 * Positions come from the step info (shaders/step.glsl) and the rotary
 * positions buffer (c->rope_pos), never push constants. */
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

#include <string.h>

typedef struct {
    uint32_t x_off, y_off, stride, group_dim, group_stride, rotary_dim, mode, s1, s2;
} pc_rope;
_Static_assert(sizeof(pc_rope) == 36, "pc_rope mirrors rope.comp");
typedef struct {
    uint32_t n, kv_type, c0, c1, x_off, z_off, stride, k_word_off, v_word_off;
    float k_scale, v_scale;
} pc_kv_append;
_Static_assert(sizeof(pc_kv_append) == 44, "pc_kv_append mirrors kv_append.comp");
typedef struct {
    uint32_t q_off, y_off, stride, q_group_stride, heads, head_dim, T, flags, skews, c0, c1;
    float scale, k_scale, v_scale;
} pc_attention;
_Static_assert(sizeof(pc_attention) == 56, "pc_attention mirrors attention.comp");
typedef struct {
    uint32_t y_off, stride, n_heads, head_dim, T, n_parts;
} pc_attn_merge;
_Static_assert(sizeof(pc_attn_merge) == 24, "pc_attn_merge mirrors attention_merge.comp");
_Static_assert(sizeof(pc_attention) <= FP4RT_VK_PUSH_BYTES, "push constants fit");

fp4rt_status fp4rt_vk_rec_rope(const vk_step *s, const fp4rt_op *op) {
    vk_ctx *c = s->c;
    vk_bind b[3];
    fp4rt_status st = fp4rt_vk_arena_bind(s, &b[0]);
    if (!st)
        st = fp4rt_vk_window(c, c->rope_tab, 0, c->rope_tab->bytes, "the RoPE table", &b[1], NULL);
    if (!st)
        st = fp4rt_vk_window(c, c->rope_pos, 0, (VkDeviceSize)s->step->n_tokens * 12, "the rotary positions", &b[2],
                             NULL);
    if (st) return st;
    pc_rope pc = {.x_off = fp4rt_vk_view_off(s, op->x),
                  .y_off = fp4rt_vk_view_off(s, op->y),
                  .stride = fp4rt_vk_stride(s),
                  .group_dim = (uint32_t)op->group_dim,
                  .group_stride = (uint32_t)op->group_stride,
                  .rotary_dim = (uint32_t)op->rotary_dim,
                  .mode = (uint32_t)op->rope_mode,
                  .s1 = (uint32_t)op->mrope_section[1],
                  .s2 = (uint32_t)op->mrope_section[2]};
    return fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_ROPE, b, 3, &pc, sizeof pc, (uint32_t)op->n_groups,
                             (uint32_t)s->step->n_tokens, 1);
}


/* ---- the KV cache in pieces ----
 * One layer's cache is [2 (K, V)][n_ctx][n_kv_heads * head_dim] elements. It is
 * bound as windows of whole positions: a piece is positions c0 .. c0 + per - 1,
 * with its K rows and its V rows as two windows, each within the binding limit
 * (maxStorageBufferRange, or FP4RT_VK_MAX_RANGE in tests). A cache that fits
 * is one piece. */
typedef struct kv_plan {
    VkDeviceSize row_bytes, layer_bytes; /* one position of K (or V); one layer */
    int per, n_pieces;                   /* positions per piece, pieces */
    int n_splits;                        /* attention spans per piece (see attention.comp) */
} kv_plan;

#define ATTN_KT 16        /* attention.comp KT: pieces are whole tiles where possible */
_Static_assert(ATTN_KT == FP4RT_ATTN_TILE, "attention.comp's span rounding is the contract's");
#define ATTN_QB 8         /* attention.comp QB */
/* Software devices: at most this many positions per piece. lavapipe stops a
 * shader's loops after 65 535 iterations per invocation (gallivm's loop
 * limiter) and returns garbage; a 16-position tile costs an invocation ~1 200
 * iterations, so a dispatch over 1 000+ positions (a long prefill) went past
 * it. Pieces carry the softmax state exactly (attention.comp), so the cap
 * changes no bits. */
#define ATTN_SW_PIECE 256

static fp4rt_status kv_plan_make(const vk_ctx *c, const fp4rt_session_buffers *sb, const fp4rt_config *cfg,
                                 int n_tokens, kv_plan *k) {
    VkDeviceSize limit = c->max_range;
    if (c->piece_range && c->piece_range < limit) limit = c->piece_range;
    k->row_bytes = (VkDeviceSize)cfg->n_kv_heads * cfg->head_dim * fp4rt_kv_elem_size(sb->kv_type);
    k->layer_bytes = 2 * (VkDeviceSize)sb->n_ctx * k->row_bytes;
    VkDeviceSize usable = limit > c->align + 4 ? limit - c->align - 4 : 0; /* room for the alignment skew */
    VkDeviceSize per = k->row_bytes ? usable / k->row_bytes : 0;
    if (per < 1)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: one KV-cache position (%llu bytes) exceeds the binding limit of %llu bytes",
                          (unsigned long long)k->row_bytes, (unsigned long long)limit);
    if (per >= ATTN_KT) per = per / ATTN_KT * ATTN_KT;
    if (c->desc.software && per > ATTN_SW_PIECE) per = ATTN_SW_PIECE;
    if (per > (VkDeviceSize)sb->n_ctx) per = (VkDeviceSize)sb->n_ctx;
    k->per = (int)per;
    k->n_pieces = (sb->n_ctx + k->per - 1) / k->per;
    /* decode splits depend on n_ctx only, never on the position or the pieces
     * (so a cache bound in pieces gives the same result, see attention.comp) */
    k->n_splits = fp4rt_attn_splits(sb->n_ctx, n_tokens);
    return FP4RT_OK;
}

/* The K (which 0) or V (1) window of piece `piece` of layer `slot`; *skew gets its skew in bytes. */
static fp4rt_status kv_window(const vk_step *s, const kv_plan *k, int slot, int which, int piece, vk_bind *b,
                              VkDeviceSize *skew) {
    int c0 = piece * k->per, c1 = c0 + k->per < s->sb->n_ctx ? c0 + k->per : s->sb->n_ctx;
    VkDeviceSize off = (VkDeviceSize)slot * k->layer_bytes + (VkDeviceSize)which * s->sb->n_ctx * k->row_bytes +
                       (VkDeviceSize)c0 * k->row_bytes;
    return fp4rt_vk_window(s->c, s->sb->kv, off, (VkDeviceSize)(c1 - c0) * k->row_bytes,
                           which ? "a piece of the V cache" : "a piece of the K cache", b, skew);
}

static uint32_t kv_type_code(fp4rt_kv_type t) {
    return t == FP4RT_KV_F32 ? 1u : t == FP4RT_KV_FP8 ? 2u : 0u;
}

/* Running / partial softmax state of one attention op: [n_splits][T][n_heads]
 * [head_dim + 2] floats (m, l, acc), 0 when the op writes its output directly
 * (one piece, one split). */
static VkDeviceSize attn_ws_bytes(const kv_plan *k, int n_tokens, int n_heads, int head_dim) {
    if (k->n_pieces == 1 && k->n_splits == 1) return 0;
    return (VkDeviceSize)k->n_splits * n_tokens * n_heads * (head_dim + 2) * sizeof(float);
}

fp4rt_status fp4rt_vk_attention_workspace(vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb) {
    const fp4rt_config *cfg = &p->weights->cfg;
    VkDeviceSize need = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (op->kind != FP4RT_OP_ATTENTION) continue;
        for (int T = 1; T <= 2; T++) { /* decode (splits) and prefill (chunk rows, one split) */
            kv_plan k = {0};
            fp4rt_status st = kv_plan_make(c, sb, cfg, T, &k);
            if (st) return st;
            /* decode splits: also for the rows of a verify step (decode_rows) */
            int rows = T == 1 ? (sb->chunk < FP4RT_DECODE_ROWS_MAX ? sb->chunk : FP4RT_DECODE_ROWS_MAX) : sb->chunk;
            VkDeviceSize b = attn_ws_bytes(&k, rows, op->n_groups, op->group_dim);
            if (b > need) need = b;
        }
    }
    if (need == 0 || (c->attn_ws && c->attn_ws->bytes >= need)) return FP4RT_OK;
    fp4rt_vk_buffer_destroy(c, c->attn_ws);
    c->attn_ws = NULL;
    return fp4rt_vk_buffer_create(c, need, 0, "attention partials", &c->attn_ws);
}

fp4rt_status fp4rt_vk_rec_kv_append(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    uint32_t n = (uint32_t)(op->n_groups * op->group_dim), code = kv_type_code(s->sb->kv_type);
    uint32_t per = code == 1 ? 1 : code == 0 ? 2 : 4;
    if (n % per)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: KV rows of %u elements (need a multiple of %u)", n, per);
    kv_plan k;
    fp4rt_status st = kv_plan_make(s->c, s->sb, &s->p->weights->cfg, s->step->n_tokens, &k);
    if (st) return st;
    /* every piece is recorded (the position is known only when the step runs); the
     * shader writes the rows that fall in its piece */
    for (int piece = 0; piece < k.n_pieces; piece++) {
        vk_bind b[3];
        VkDeviceSize ks = 0, vs = 0;
        st = fp4rt_vk_arena_bind(s, &b[0]);
        if (!st) st = kv_window(s, &k, op->slot, 0, piece, &b[1], &ks);
        if (!st) st = kv_window(s, &k, op->slot, 1, piece, &b[2], &vs);
        if (st) return st;
        uint32_t c0 = (uint32_t)(piece * k.per);
        pc_kv_append pc = {.n = n,
                           .kv_type = code,
                           .c0 = c0,
                           .c1 = c0 + (uint32_t)k.per,
                           .x_off = fp4rt_vk_view_off(s, op->x),
                           .z_off = fp4rt_vk_view_off(s, op->z),
                           .stride = fp4rt_vk_stride(s),
                           .k_word_off = (uint32_t)(ks / 4),
                           .v_word_off = (uint32_t)(vs / 4),
                           .k_scale = L->k_scale,
                           .v_scale = L->v_scale};
        st = fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_KV_APPEND, b, 3, &pc, sizeof pc, vk_groups(n / per),
                               (uint32_t)s->step->n_tokens, 2);
        if (st) return st;
    }
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_rec_attention(const vk_step *s, const fp4rt_op *op) {
    const fp4rt_layer_weights *L = &s->p->weights->layers[op->layer];
    const fp4rt_config *cfg = &s->p->weights->cfg;
    if (op->group_dim > 256 || op->n_kv_heads <= 0 || op->n_groups % op->n_kv_heads || op->n_groups > 65535 ||
        op->n_kv_heads != cfg->n_kv_heads || op->group_dim != cfg->head_dim)
        return fp4rt_fail(FP4RT_UNSUPPORTED,
                          "vulkan: attention with head_dim %d, %d heads, %d KV heads",
                          op->group_dim, op->n_groups, op->n_kv_heads);
    int T = s->step->n_tokens, group = op->n_groups / op->n_kv_heads, rows = s->step->decode_rows;
    kv_plan k;
    fp4rt_status st = kv_plan_make(s->c, s->sb, cfg, rows ? 1 : T, &k); /* a verify step: decode splits */
    if (st) return st;
    VkDeviceSize ws = attn_ws_bytes(&k, T, op->n_groups, op->group_dim);
    int direct = ws == 0;
    vk_bind wsb = {0};
    if (!direct) {
        if (!s->c->attn_ws || s->c->attn_ws->bytes < ws)
            return fp4rt_fail(FP4RT_INTERNAL, "vulkan: attention workspace not prepared");
        st = fp4rt_vk_window(s->c, s->c->attn_ws, 0, ws, "the attention partials", &wsb, NULL);
        if (st) return st;
    }
    size_t es = fp4rt_kv_elem_size(s->sb->kv_type);
    /* workgroups per KV head: with rows, each holds the queries of one row (attention.comp) */
    uint32_t nqb = rows ? (uint32_t)T * (uint32_t)((group + ATTN_QB - 1) / ATTN_QB)
                        : (uint32_t)(((size_t)T * group + ATTN_QB - 1) / ATTN_QB);
    for (int piece = 0; piece < k.n_pieces; piece++) {
        vk_bind b[4];
        VkDeviceSize ks = 0, vs = 0;
        st = fp4rt_vk_arena_bind(s, &b[0]);
        if (!st) st = kv_window(s, &k, op->slot, 0, piece, &b[1], &ks);
        if (!st) st = kv_window(s, &k, op->slot, 1, piece, &b[2], &vs);
        if (st) return st;
        b[3] = direct ? (vk_bind){0} : wsb;
        uint32_t c0 = (uint32_t)(piece * k.per);
        pc_attention pc = {.q_off = fp4rt_vk_view_off(s, op->x),
                           .y_off = fp4rt_vk_view_off(s, op->y),
                           .stride = fp4rt_vk_stride(s),
                           .q_group_stride = (uint32_t)op->group_stride,
                           .heads = (uint32_t)op->n_groups << 16 | (uint32_t)op->n_kv_heads,
                           .head_dim = (uint32_t)op->group_dim,
                           .T = (uint32_t)T,
                           .flags = kv_type_code(s->sb->kv_type) | (uint32_t)(piece == 0) << 2 |
                                    (uint32_t)(piece == k.n_pieces - 1) << 3 | (uint32_t)(rows != 0) << 4 |
                                    (uint32_t)k.n_splits << 8,
                           .skews = (uint32_t)(ks / es) | (uint32_t)(vs / es) << 16,
                           .c0 = c0,
                           .c1 = c0 + (uint32_t)k.per < (uint32_t)s->sb->n_ctx ? c0 + (uint32_t)k.per
                                                                                : (uint32_t)s->sb->n_ctx,
                           .scale = op->scale,
                           .k_scale = L->k_scale,
                           .v_scale = L->v_scale};
        st = fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_ATTENTION, b, 4, &pc, sizeof pc, (uint32_t)op->n_kv_heads * nqb,
                               (uint32_t)k.n_splits, 1);
        if (st) return st;
    }
    if (k.n_splits == 1) return FP4RT_OK; /* the last piece wrote y */
    vk_bind b[2];
    st = fp4rt_vk_arena_bind(s, &b[0]);
    if (st) return st;
    b[1] = wsb;
    pc_attn_merge pm = {.y_off = fp4rt_vk_view_off(s, op->y),
                        .stride = fp4rt_vk_stride(s),
                        .n_heads = (uint32_t)op->n_groups,
                        .head_dim = (uint32_t)op->group_dim,
                        .T = (uint32_t)T,
                        .n_parts = (uint32_t)k.n_splits};
    return fp4rt_vk_dispatch(s->c, FP4RT_VK_SHADER_ATTENTION_MERGE, b, 2, &pm, sizeof pm, (uint32_t)op->n_groups,
                             (uint32_t)T, 1);
}
