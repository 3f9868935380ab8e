/* The Vulkan backend's table (runtime/backend.h): context creation on one
 * device, session buffers, weight upload in prepare (every tensor the program
 * reads, once, streamed from the mmapped checkpoint through the staging
 * buffer into one device-local buffer) and run (every op recorded into one
 * command buffer, submitted and waited for). */
#include "vk_internal.h"

#include "common.h"

#include <stdlib.h>
#include "numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void vk_destroy(void *vc) {
    vk_ctx *c = vc;
    if (!c) return;
    if (c->dev) {
        c->vt.vkDeviceWaitIdle(c->dev);
        fp4rt_buffer *bufs[] = {c->staging, c->dummy, c->weights, c->xq, c->rope_tab};
        for (size_t i = 0; i < FP4RT_ARRAY_LEN(bufs); i++) fp4rt_vk_buffer_destroy(c, bufs[i]);
        fp4rt_vk_pipelines_free(c);
    }
    fp4rt_vk_device_close(c);
    free(c->tensors);
    free(c);
}

fp4rt_status fp4rt_vk_backend_create(int index, void **out) {
    *out = NULL;
    fp4rt_numfmt_init();
    vk_ctx *c = fp4rt_calloc(1, sizeof *c, "vulkan backend");
    if (!c) return FP4RT_OUT_OF_MEMORY;
    fp4rt_status st = fp4rt_vk_device_open(c, index);
    if (!st) st = fp4rt_vk_pipelines_init(c);
    if (!st) st = fp4rt_vk_buffer_create(c, 256, 0, "dummy binding", &c->dummy);
    if (st) {
        vk_destroy(c);
        return st;
    }
    *out = c;
    return FP4RT_OK;
}

static fp4rt_status vk_create(int n_threads, void **out) {
    (void)n_threads;
    return fp4rt_vk_backend_create(0, out);
}

static fp4rt_status vk_buffer_alloc(void *ctx, size_t bytes, const char *what, fp4rt_buffer **out) {
    return fp4rt_vk_buffer_create(ctx, bytes, 0, what, out);
}

static void vk_buffer_free(void *ctx, fp4rt_buffer *b) { fp4rt_vk_buffer_destroy(ctx, b); }

static fp4rt_status vk_buffer_upload(void *ctx, fp4rt_buffer *b, size_t off, const void *src, size_t n) {
    return fp4rt_vk_upload(ctx, b, off, src, n);
}

static fp4rt_status vk_buffer_download(void *ctx, fp4rt_buffer *b, size_t off, void *dst, size_t n) {
    return fp4rt_vk_download(ctx, b, off, dst, n);
}

static fp4rt_status vk_buffer_clear(void *ctx, fp4rt_buffer *b) { return fp4rt_vk_fill_zero(ctx, b); }

/* Registers a host tensor for upload (once per host pointer: tied weights share). */
static fp4rt_status add_tensor(vk_ctx *c, const void *host, uint64_t bytes, const char *name, VkDeviceSize *total) {
    if (!host || fp4rt_vk_tensor_find(c, host)) return FP4RT_OK;
    if (c->n_tensors == c->cap_tensors) {
        int cap = c->cap_tensors ? 2 * c->cap_tensors : 256;
        vk_tensor *t = realloc(c->tensors, (size_t)cap * sizeof *t);
        if (!t) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory listing tensors");
        c->tensors = t;
        c->cap_tensors = cap;
    }
    *total = (*total + c->align - 1) / c->align * c->align;
    c->tensors[c->n_tensors++] = (vk_tensor){host, bytes, *total, name};
    *total += bytes;
    return FP4RT_OK;
}

static uint64_t linear_weight_bytes(const fp4rt_linear *l) {
    uint64_t nk = (uint64_t)l->n_out * l->n_in;
    switch (l->fmt) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: return 2 * nk;
    case FP4RT_W_F32: return 4 * nk;
    case FP4RT_W_FP8: return nk;
    default: return nk / 2;
    }
}

static fp4rt_status vk_prepare(void *vc, const fp4rt_program *p) {
    vk_ctx *c = vc;
    if (c->prepared == p) return FP4RT_OK;
    if (c->weights) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "vulkan: the backend is already prepared for a program");
    const fp4rt_weights *w = p->weights;
    const fp4rt_config *cfg = &w->cfg;
    VkDeviceSize total = 0;
    fp4rt_status st = FP4RT_OK;
    for (int i = 0; !st && i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        switch (op->kind) {
        case FP4RT_OP_EMBED:
            st = add_tensor(c, w->embed, (uint64_t)cfg->vocab * cfg->hidden * fp4rt_dtype_size(w->embed_dtype),
                            "embed_tokens", &total);
            break;
        case FP4RT_OP_LINEAR:
            st = add_tensor(c, op->lin->weight, linear_weight_bytes(op->lin), op->lin->module, &total);
            if (!st && op->lin->block_scale)
                st = add_tensor(c, op->lin->block_scale, (uint64_t)op->lin->n_out * op->lin->n_in / 16,
                                op->lin->module, &total);
            break;
        case FP4RT_OP_RMSNORM:
        case FP4RT_OP_GATED_RMSNORM: st = add_tensor(c, op->w, (uint64_t)op->group_dim * 4, "norm", &total); break;
        case FP4RT_OP_CONV1D_SILU:
            st = add_tensor(c, op->w, (uint64_t)op->x.cols * op->group_dim * 4, "conv1d", &total);
            break;
        case FP4RT_OP_GATED_DELTA:
            st = add_tensor(c, w->layers[op->layer].dt_bias, (uint64_t)cfg->lin_v_heads * 4, "dt_bias", &total);
            if (!st) st = add_tensor(c, w->layers[op->layer].neg_A, (uint64_t)cfg->lin_v_heads * 4, "A_log", &total);
            break;
        default: break;
        }
    }
    if (!st) st = fp4rt_vk_buffer_create(c, total, 0, "weights", &c->weights);
    for (int i = 0; !st && i < c->n_tensors; i++)
        st = fp4rt_vk_upload(c, c->weights, c->tensors[i].offset, c->tensors[i].host, c->tensors[i].bytes);
    if (st) return fp4rt_fail_context(st, "vulkan: uploading the weights");
    c->prepared = p;
    return FP4RT_OK;
}

/* Workspaces that depend on the session: quantized activations and the RoPE table. */
static fp4rt_status ensure_workspace(vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb) {
    size_t max_k = 0;
    const fp4rt_op *rope = NULL;
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (op->kind == FP4RT_OP_LINEAR && (op->lin->fmt == FP4RT_W_FP8 || op->lin->fmt == FP4RT_W_NVFP4_W4A4) &&
            (size_t)op->lin->n_in > max_k)
            max_k = (size_t)op->lin->n_in;
        if (op->kind == FP4RT_OP_ROPE) {
            if (rope && (rope->rotary_dim != op->rotary_dim || rope->rope_theta != op->rope_theta))
                return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: RoPE ops with different rotary_dim / theta");
            rope = op;
        }
    }
    size_t need = (size_t)sb->chunk * (max_k ? max_k : 1) * 4;
    if (!c->xq || c->xq->bytes < need) {
        fp4rt_vk_buffer_destroy(c, c->xq);
        c->xq = NULL;
        fp4rt_status st = fp4rt_vk_buffer_create(c, need, 0, "quantized activations", &c->xq);
        if (st) return st;
    }
    if (rope && (!c->rope_tab || c->rope_ctx < sb->n_ctx || c->rope_dim != rope->rotary_dim ||
                 c->rope_theta != rope->rope_theta)) {
        int half = rope->rotary_dim / 2;
        if (half > 512) return fp4rt_fail(FP4RT_UNSUPPORTED, "rotary_dim %d too large", rope->rotary_dim);
        size_t n = (size_t)sb->n_ctx * half * 2;
        float *tab = fp4rt_malloc(n * sizeof(float), "RoPE table"), inv_freq[512];
        if (!tab) return FP4RT_OUT_OF_MEMORY;
        /* exactly the CPU's FP32 values (cpu_attention.c) */
        for (int j = 0; j < half; j++)
            inv_freq[j] = 1.0f / powf((float)rope->rope_theta, (float)(2 * j) / (float)rope->rotary_dim);
        for (int pos = 0; pos < sb->n_ctx; pos++)
            for (int j = 0; j < half; j++) {
                float ang = (float)pos * inv_freq[j];
                tab[((size_t)pos * half + j) * 2] = cosf(ang);
                tab[((size_t)pos * half + j) * 2 + 1] = sinf(ang);
            }
        fp4rt_vk_buffer_destroy(c, c->rope_tab);
        c->rope_tab = NULL;
        fp4rt_status st = fp4rt_vk_buffer_create(c, n * sizeof(float), 0, "RoPE table", &c->rope_tab);
        if (!st) st = fp4rt_vk_upload(c, c->rope_tab, 0, tab, n * sizeof(float));
        free(tab);
        if (st) return st;
        c->rope_ctx = sb->n_ctx;
        c->rope_dim = rope->rotary_dim;
        c->rope_theta = rope->rope_theta;
    }
    return FP4RT_OK;
}

static fp4rt_status vk_run(void *vc, const fp4rt_program *p, const fp4rt_session_buffers *sb, const fp4rt_step *step) {
    vk_ctx *c = vc;
    if (step->n_tokens < 1 || step->n_tokens > sb->chunk)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step of %d tokens (chunk is %d)", step->n_tokens, sb->chunk);
    if (step->pos0 + step->n_tokens > sb->n_ctx)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d + %d tokens exceed n_ctx %d", step->pos0,
                          step->n_tokens, sb->n_ctx);
    fp4rt_status st = vk_prepare(c, p);
    if (!st) st = ensure_workspace(c, p, sb);
    if (st) return st;
    vk_step s = {.c = c, .p = p, .sb = sb, .step = step};
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        st = fp4rt_vk_record_op(&s, op);
        if (st) {
            if (c->recording) { /* drop what was recorded */
                c->vt.vkEndCommandBuffer(c->cmd);
                c->recording = 0;
            }
            return fp4rt_fail_context(st, "op %d (%s, layer %d)", i, fp4rt_op_name(op->kind), op->layer);
        }
    }
    return fp4rt_vk_submit_wait(c);
}

static void vk_describe(void *vc, char *buf, size_t n) {
    vk_ctx *c = vc;
    snprintf(buf, n, "vulkan:%d: %s (%s%s), FP32 math, NVFP4 dequantized to FP16 in registers", c->index,
             c->desc.name, c->desc.type, c->desc.software ? ", software" : "");
}

const fp4rt_backend_ops fp4rt_backend_vulkan = {
    .name = "vulkan",
    .create = vk_create,
    .destroy = vk_destroy,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_upload = vk_buffer_upload,
    .buffer_download = vk_buffer_download,
    .buffer_clear = vk_buffer_clear,
    .prepare = vk_prepare,
    .run = vk_run,
    .synchronize = NULL,
    .describe = vk_describe,
    .set_observer = NULL,
    .measure_bandwidth = fp4rt_vk_measure_bandwidth,
};

fp4rt_status fp4rt_vk_dequant_nvfp4(void *vc, const uint8_t *packed, const uint8_t *scales, size_t n, uint16_t *out) {
    vk_ctx *c = vc;
    if (n % 16) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "dequant of %zu elements (need a multiple of 16)", n);
    fp4rt_buffer *bw = NULL, *bs = NULL, *bo = NULL;
    fp4rt_status st = fp4rt_vk_buffer_create(c, n / 2, 0, "dequant codes", &bw);
    if (!st) st = fp4rt_vk_buffer_create(c, n / 16, 0, "dequant scales", &bs);
    if (!st) st = fp4rt_vk_buffer_create(c, n * 2, 0, "dequant output", &bo);
    if (!st) st = fp4rt_vk_upload(c, bw, 0, packed, n / 2);
    if (!st) st = fp4rt_vk_upload(c, bs, 0, scales, n / 16);
    vk_bind b[3];
    for (int i = 0; !st && i < 3; i++) {
        fp4rt_buffer *x = i == 0 ? bw : i == 1 ? bs : bo;
        st = fp4rt_vk_window(c, x, 0, x->bytes, "dequant buffer", &b[i], NULL);
    }
    uint32_t pairs = (uint32_t)(n / 2);
    if (!st) st = fp4rt_vk_dispatch(c, VK_K_DEQUANT_NVFP4, b, 3, &pairs, sizeof pairs, (pairs + 63) / 64, 1, 1);
    if (!st) st = fp4rt_vk_submit_wait(c);
    if (!st) st = fp4rt_vk_download(c, bo, 0, out, n * 2);
    fp4rt_vk_buffer_destroy(c, bw);
    fp4rt_vk_buffer_destroy(c, bs);
    fp4rt_vk_buffer_destroy(c, bo);
    return st;
}
