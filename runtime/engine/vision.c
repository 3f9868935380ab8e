/* The vision tower on the model's device (runtime/engine/vision.h). */
#include "runtime/engine/vision.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include <string.h>

/* No fused multiply-add in the interpolation (transformers computes it in
 * separate FP32 operations). GCC does not contract in ISO C mode. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Rows moved per upload / download: the region between a row's first and last
 * column is contiguous across rows, so a block of rows goes in one transfer. */
#define ROW_BLOCK 256

int fp4rt_model_has_vision(const fp4rt_model *m) { return m && m->weights && m->weights->vision; }

void fp4rt_vision_embeds_free(fp4rt_vision_embeds *e) {
    if (!e) return;
    free(e->data);
    memset(e, 0, sizeof *e);
}

void fp4rt_vision_row_hw(int r, int grid_h, int grid_w, int merge, int *h, int *w) {
    int within = r % (grid_h * grid_w), bw = grid_w / merge;
    int in_col = within % merge, in_row = within / merge % merge;
    int block_col = within / (merge * merge) % bw, block_row = within / (merge * merge * bw);
    *h = block_row * merge + in_row;
    *w = block_col * merge + in_col;
}

/* One axis: the two taps and weights of target index i on an axis of n into side. */
static void axis(int i, int n, int side, int tap[2], float wt[2]) {
    float src = (float)i * (float)(side - 1) / (float)(n - 1 > 1 ? n - 1 : 1);
    float f = (float)(int)src; /* src >= 0: floor */
    for (int k = 0; k < 2; k++) {
        int t = (int)f + k;
        tap[k] = t > side - 1 ? side - 1 : t;
        float d = src - f - (float)k;
        d = d < 0 ? -d : d;
        wt[k] = 1.0f - d > 0 ? 1.0f - d : 0.0f;
    }
}

void fp4rt_vision_pos_embed(const float *table, int side, int hidden, int grid_h, int grid_w, int h, int w,
                            float *out) {
    int th[2], tw[2];
    float wh[2], ww[2];
    axis(h, grid_h, side, th, wh);
    axis(w, grid_w, side, tw, ww);
    const float *e[4];
    float wt[4];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            e[2 * a + b] = table + ((size_t)th[a] * side + tw[b]) * hidden;
            wt[2 * a + b] = wh[a] * ww[b];
        }
    for (int j = 0; j < hidden; j++) {
        float s = e[0][j] * wt[0];
        for (int k = 1; k < 4; k++) s += e[k][j] * wt[k];
        out[j] = s;
    }
}

/* Starts the vision programs and their contexts once (under the run lock). */
static fp4rt_status start(fp4rt_model *m) {
    if (m->vis_merger_ctx) return FP4RT_OK;
    fp4rt_status st = FP4RT_OK;
    if (!m->vis_encoder) st = fp4rt_program_build_vision(m->weights, &m->vis_encoder, &m->vis_merger);
    fp4rt_program *progs[2] = {m->vis_encoder, m->vis_merger};
    void **ctxs[2] = {&m->vis_encoder_ctx, &m->vis_merger_ctx};
    for (int i = 0; !st && i < 2; i++) {
        if (*ctxs[i]) continue;
        const fp4rt_backend_ops *be = NULL;
        void *ctx = NULL;
        st = m->dev.reg->create(m->dev.index, m->n_threads, &be, &ctx);
        if (!st && be != m->backend) st = fp4rt_fail(FP4RT_INTERNAL, "the vision tower's backend differs from the model's");
        if (!st) st = fp4rt_backend_prepare(be, ctx, progs[i], m->seed);
        if (st && ctx) fp4rt_backend_destroy(be, ctx);
        if (!st) *ctxs[i] = ctx;
    }
    return st ? fp4rt_fail_context(st, "starting the vision tower") : FP4RT_OK;
}

/* A program's buffers for n rows on ctx: the arena and a token of logits (never
 * written: the steps run with no_logits). */
static fp4rt_status alloc(fp4rt_model *m, void *ctx, const fp4rt_program *p, int n, fp4rt_session_buffers *sb) {
    memset(sb, 0, sizeof *sb);
    sb->n_ctx = sb->chunk = n;
    sb->kv_type = FP4RT_KV_F32;
    uint64_t bytes = (uint64_t)n * (uint64_t)p->arena_width * 4;
    if (bytes > SIZE_MAX) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "the vision activations of %llu bytes do not fit",
                                            (unsigned long long)bytes);
    fp4rt_status st = fp4rt_backend_alloc(m->backend, ctx, (size_t)bytes, "vision activation arena", &sb->scratch);
    if (!st) st = fp4rt_backend_alloc(m->backend, ctx, 64, "vision logits (unused)", &sb->logits);
    return st;
}

static void release(fp4rt_model *m, void *ctx, fp4rt_session_buffers *sb) {
    fp4rt_backend_free(m->backend, ctx, sb->scratch);
    fp4rt_backend_free(m->backend, ctx, sb->logits);
}

/* Rows of `width` floats at column col of the arena: fill(user, r, row) writes row r
 * (upload), or the rows are read into dst[r * width] (download, fill NULL). stage:
 * ROW_BLOCK * arena_width floats. */
typedef void (*row_fill_fn)(void *user, int r, float *row);
static fp4rt_status move_rows(fp4rt_model *m, void *ctx, const fp4rt_program *p, fp4rt_buffer *buf, int col,
                              int width, int n, row_fill_fn fill, void *user, float *dst, float *stage) {
    size_t aw = (size_t)p->arena_width;
    fp4rt_status st = FP4RT_OK;
    for (int r0 = 0; !st && r0 < n; r0 += ROW_BLOCK) {
        int rn = FP4RT_MIN(ROW_BLOCK, n - r0);
        size_t off = ((size_t)r0 * aw + (size_t)col) * 4, bytes = ((size_t)(rn - 1) * aw + (size_t)width) * 4;
        if (fill) {
            memset(stage, 0, bytes); /* the other columns: written by the program before it reads them */
            for (int r = 0; r < rn; r++) fill(user, r0 + r, stage + (size_t)r * aw);
            st = fp4rt_backend_upload(m->backend, ctx, buf, off, stage, bytes);
        } else {
            st = fp4rt_backend_download(m->backend, ctx, buf, off, stage, bytes);
            for (int r = 0; !st && r < rn; r++)
                memcpy(dst + (size_t)(r0 + r) * width, stage + (size_t)r * aw, (size_t)width * 4);
        }
    }
    return st;
}

typedef struct enc_rows {
    const fp4rt_image_patches *ip;
    const fp4rt_weights *w;
    int side;
} enc_rows;

/* Encoder row r: [patch | interpolated position embedding]. */
static void fill_encoder(void *user, int r, float *row) {
    const enc_rows *e = user;
    const fp4rt_vision_config *v = &e->w->cfg.vision;
    int pd = e->ip->patch_dim, h, w;
    memcpy(row, e->ip->data + (size_t)r * pd, (size_t)pd * 4);
    fp4rt_vision_row_hw(r, e->ip->grid_h, e->ip->grid_w, v->merge, &h, &w);
    fp4rt_vision_pos_embed(e->w->vision->pos_embed, e->side, v->hidden, e->ip->grid_h, e->ip->grid_w, h, w, row + pd);
}

typedef struct mrg_rows {
    const float *x; /* [n, hidden] the encoder's output */
    int width;      /* merge^2 * hidden */
} mrg_rows;

static void fill_merger(void *user, int r, float *row) {
    const mrg_rows *g = user;
    memcpy(row, g->x + (size_t)r * g->width, (size_t)g->width * 4);
}

static fp4rt_status check_patches(const fp4rt_model *m, const fp4rt_image_patches *ip) {
    const fp4rt_vision_config *v = &m->weights->cfg.vision;
    if (ip->patch_dim != fp4rt_vcfg_patch_dim(v))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_vision_encode: patches of %d values, but the vision tower "
                          "takes %d (3 x %d x %d x %d)", ip->patch_dim, fp4rt_vcfg_patch_dim(v), v->temporal_patch,
                          v->patch, v->patch);
    if (ip->grid_t < 1 || ip->grid_h < 1 || ip->grid_w < 1 || ip->grid_h % v->merge || ip->grid_w % v->merge ||
        (int64_t)ip->grid_t * ip->grid_h * ip->grid_w != ip->n_patches || !ip->data)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_vision_encode: a grid of %d x %d x %d patches (%lld rows) is "
                          "not an image of whole %d x %d merge blocks", ip->grid_t, ip->grid_h, ip->grid_w,
                          (long long)ip->n_patches, v->merge, v->merge);
    if (ip->n_patches > FP4RT_VISION_MAX_PATCHES)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "an image of %d x %d pixels (%lld patches) is larger than the vision "
                          "tower takes (%d patches: 16,777,216 pixels)", ip->grid_w * v->patch,
                          ip->grid_h * v->patch, (long long)ip->n_patches, FP4RT_VISION_MAX_PATCHES);
    return FP4RT_OK;
}

fp4rt_status fp4rt_vision_encode(fp4rt_model *m, const fp4rt_image_patches *ip, int exact,
                                 fp4rt_vision_embeds *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!m || !ip || !out)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_vision_encode: %s is NULL", !m ? "model" : !ip ? "patches" : "out");
    if (!fp4rt_model_has_vision(m))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "the model has no vision tower (config.json has no vision_config "
                          "or the checkpoint no model.visual.* tensors)");
    fp4rt_status st = check_patches(m, ip);
    if (st) return st;
    const fp4rt_vision_config *v = &m->weights->cfg.vision;
    int n = (int)ip->n_patches, mm = v->merge * v->merge, nm = n / mm, H = v->hidden;
    pthread_mutex_lock(&m->run_lock);
    st = start(m);
    const fp4rt_program *pe = m->vis_encoder, *pm = m->vis_merger;
    if (!st) {
        int cap = FP4RT_MIN(fp4rt_backend_max_chunk(m->backend, m->vis_encoder_ctx, pe),
                            fp4rt_backend_max_chunk(m->backend, m->vis_merger_ctx, pm));
        if (n > cap)
            st = fp4rt_fail(FP4RT_UNSUPPORTED, "an image of %d x %d pixels (%d patches) is more than this device "
                            "runs in one step (%d patches)", ip->grid_w * v->patch, ip->grid_h * v->patch, n, cap);
    }
    fp4rt_session_buffers se = {0}, sm = {0};
    int32_t *tokens = NULL, *pos = NULL;
    float *stage = NULL, *x = NULL;
    if (!st) {
        size_t aw = (size_t)FP4RT_MAX(pe->arena_width, pm->arena_width);
        tokens = fp4rt_calloc((size_t)n, sizeof *tokens, "vision step tokens");
        pos = fp4rt_malloc((size_t)n * 3 * sizeof *pos, "vision rotary positions");
        stage = fp4rt_malloc((size_t)ROW_BLOCK * aw * 4, "vision row staging");
        x = fp4rt_malloc((size_t)n * H * 4, "vision encoder output");
        out->data = fp4rt_malloc((size_t)nm * v->out_hidden * 4, "vision embeddings");
        if (!tokens || !pos || !stage || !x || !out->data) st = FP4RT_OUT_OF_MEMORY;
    }
    if (!st) st = alloc(m, m->vis_encoder_ctx, pe, n, &se);
    if (!st) {
        for (int r = 0; r < n; r++) {
            pos[3 * r] = 0;
            fp4rt_vision_row_hw(r, ip->grid_h, ip->grid_w, v->merge, &pos[3 * r + 1], &pos[3 * r + 2]);
        }
        enc_rows e = {ip, m->weights, fp4rt_vcfg_grid_side(v)};
        st = move_rows(m, m->vis_encoder_ctx, pe, se.scratch, pe->in_hidden_col, ip->patch_dim + H, n, fill_encoder,
                       &e, NULL, stage);
    }
    int relaxed = fp4rt_numerics_relaxed(exact);
    fp4rt_step step = {.relaxed = relaxed, .tokens = tokens, .n_tokens = n, .no_logits = 1, .positions = pos};
    if (!st) st = fp4rt_backend_run(m->backend, m->vis_encoder_ctx, pe, &se, &step);
    if (!st) st = move_rows(m, m->vis_encoder_ctx, pe, se.scratch, pe->out_hidden_col, H, n, NULL, NULL, x, stage);
    release(m, m->vis_encoder_ctx, &se);
    if (!st) st = alloc(m, m->vis_merger_ctx, pm, nm, &sm);
    if (!st) { /* [n, hidden] -> [n / merge^2, merge^2 * hidden]: consecutive rows are one merge block */
        mrg_rows g = {x, mm * H};
        st = move_rows(m, m->vis_merger_ctx, pm, sm.scratch, pm->in_hidden_col, mm * H, nm, fill_merger, &g, NULL,
                       stage);
    }
    fp4rt_step mstep = {.relaxed = relaxed, .tokens = tokens, .n_tokens = nm, .no_logits = 1};
    if (!st) st = fp4rt_backend_run(m->backend, m->vis_merger_ctx, pm, &sm, &mstep);
    if (!st)
        st = move_rows(m, m->vis_merger_ctx, pm, sm.scratch, pm->out_hidden_col, v->out_hidden, nm, NULL, NULL,
                       out->data, stage);
    release(m, m->vis_merger_ctx, &sm);
    pthread_mutex_unlock(&m->run_lock);
    free(tokens);
    free(pos);
    free(stage);
    free(x);
    if (st) {
        fp4rt_vision_embeds_free(out);
        return st;
    }
    out->n_tokens = nm;
    out->grid_t = ip->grid_t;
    out->grid_h = ip->grid_h;
    out->grid_w = ip->grid_w;
    out->merge = v->merge;
    out->hidden = v->out_hidden;
    return FP4RT_OK;
}
