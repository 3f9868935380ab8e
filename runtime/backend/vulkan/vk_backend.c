/* The Vulkan backend's table (runtime/backend/backend.h): context creation on one
 * device, session buffers, weight upload in prepare (every tensor the program
 * reads, once, streamed from the mmapped checkpoint through the staging
 * buffer into one device-local buffer, linear weights permuted to the decode
 * layout where the matrix-vector kernels run (vk_wlayout.c); the embedding
 * table only when it is also the tied lm_head: the host gathers the step's
 * rows) and run (a prefill
 * chunk recorded into a one-shot command buffer; a decode step recorded once
 * and replayed; each submitted and waited for). */
#include "runtime/backend/vulkan/vk_internal.h"
#include "runtime/backend/vulkan/vk_ops.h"

#include "runtime/base/common.h"

#include <stdlib.h>
#include "runtime/base/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void vk_destroy(void *vc) {
    vk_ctx *c = vc;
    if (!c) return;
    if (c->dev) {
        c->vt.vkDeviceWaitIdle(c->dev);
        fp4rt_vk_profile_report(c);
        fp4rt_vk_profile_free(c);
        fp4rt_buffer *bufs[] = {c->staging, c->dummy,    c->step_info, c->step_host, c->weights, c->xq,
                                c->input,   c->input_host, c->rope_tab, c->rope_pos, c->rope_pos_host,
                                c->pick,    c->mask,    c->attn_ws,
                                c->topk_work, c->topk_pen, c->topk_out};
        for (size_t i = 0; i < FP4RT_ARRAY_LEN(bufs); i++) fp4rt_vk_buffer_destroy(c, bufs[i]);
        fp4rt_vk_pipelines_free(c);
    }
    fp4rt_vk_device_close(c);
    free(c->tensors);
    free(c->topk_mask);
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
    if (!st) st = fp4rt_vk_buffer_create(c, sizeof(vk_step_info), 0, "step info", &c->step_info);
    if (!st) st = fp4rt_vk_buffer_create(c, sizeof(vk_step_info), 1, "step info (host)", &c->step_host);
    if (!st) memset(c->step_host->mapped, 0, sizeof(vk_step_info));
    if (!st) st = fp4rt_vk_coop_check(c);
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

static fp4rt_status vk_buffer_alloc_split(void *ctx, size_t bytes, size_t granule, const char *what,
                                          fp4rt_buffer **out) {
    return fp4rt_vk_buffer_create_split(ctx, bytes, granule, 0, what, out);
}

static void vk_buffer_free(void *ctx, fp4rt_buffer *b) { fp4rt_vk_buffer_destroy(ctx, b); }

static fp4rt_status vk_buffer_upload(void *ctx, fp4rt_buffer *b, size_t off, const void *src, size_t n) {
    return fp4rt_vk_upload(ctx, b, off, src, n);
}

static fp4rt_status vk_buffer_download(void *ctx, fp4rt_buffer *b, size_t off, void *dst, size_t n) {
    return fp4rt_vk_download(ctx, b, off, dst, n);
}

static fp4rt_status vk_buffer_clear(void *ctx, fp4rt_buffer *b) { return fp4rt_vk_fill_zero(ctx, b); }

static fp4rt_status vk_buffer_copy(void *ctx, fp4rt_buffer *dst, size_t dst_off, fp4rt_buffer *src, size_t src_off,
                                   size_t n) {
    return fp4rt_vk_copy(ctx, dst, dst_off, src, src_off, n);
}

/* What add_tensor needs besides the tensor. */
typedef struct tensor_sizing {
    vk_ctx *c;
    VkDeviceSize total; /* bytes of the weights buffer so far */
    VkDeviceSize part;  /* the weights buffer's parts (c->max_alloc, a multiple of the alignment): no tensor
                           crosses a multiple of it */
} tensor_sizing;

/* Registers a program tensor for upload (once per host pointer: tied weights
 * share). The embedding is gathered on the host (embed_rows), never uploaded. */
static fp4rt_status add_tensor(void *user, const fp4rt_program_tensor *pt) {
    tensor_sizing *z = user;
    vk_ctx *c = z->c;
    if (pt->kind == FP4RT_PT_EMBED || fp4rt_vk_tensor_find(c, pt->host)) return FP4RT_OK;
    if (c->n_tensors == c->cap_tensors) {
        int cap = c->cap_tensors ? 2 * c->cap_tensors : 256;
        vk_tensor *t = realloc(c->tensors, (size_t)cap * sizeof *t);
        if (!t) return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "out of memory listing tensors");
        c->tensors = t;
        c->cap_tensors = cap;
    }
    z->total = (z->total + c->align - 1) / c->align * c->align;
    if (pt->bytes > z->part)
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY,
                          "vulkan: tensor %s (%.2f GiB) is larger than one buffer may be on device %d (%.2f GiB: "
                          "maxMemoryAllocationSize, maxBufferSize%s)",
                          pt->name, pt->bytes / 1073741824.0, c->index, z->part / 1073741824.0,
                          c->max_alloc_knob ? ", FP4RT_VK_MAX_ALLOC" : "");
    if (pt->bytes && z->total / z->part != (z->total + pt->bytes - 1) / z->part) /* next part */
        z->total = (z->total / z->part + 1) * z->part;
    /* linear weights in the decode layout where the matrix-vector kernels run */
    uint32_t il = c->interleave && pt->kind == FP4RT_PT_WEIGHT && pt->lin ? fp4rt_vk_wlayout_blocks(pt->lin) : 0;
    c->tensors[c->n_tensors++] = (vk_tensor){pt->host, pt->bytes, z->total, pt->name, il, pt->lin};
    z->total += pt->bytes;
    return FP4RT_OK;
}

static fp4rt_status vk_prepare_impl(vk_ctx *c, const fp4rt_program *p, int synthetic, uint64_t seed) {
    c->ws_key.p = NULL; /* a new program may reuse the old one's address */
    if (c->prepared == p) return FP4RT_OK;
    if (c->weights) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "vulkan: the backend is already prepared for a program");
    const fp4rt_weights *w = p->weights;
    if (w->embed_dtype != FP4RT_DT_BF16 && w->embed_dtype != FP4RT_DT_F16 && w->embed_dtype != FP4RT_DT_F32)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: embedding of dtype %d", (int)w->embed_dtype);
    tensor_sizing z = {.c = c, .part = c->max_alloc / c->align * c->align};
    fp4rt_status st = fp4rt_program_tensors(p, add_tensor, &z);
    VkDeviceSize total = z.total;
    /* a software device's memory is the host's: check before filling it */
    if (!st && synthetic && c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU)
        st = fp4rt_host_mem_check(total, "vulkan: synthetic weights on a software device");
    if (!st) st = fp4rt_vk_memory_check(c, total, "the weights");
    if (!st) st = fp4rt_vk_buffer_create_split(c, total, z.part, 0, "weights", &c->weights);
    for (int i = 0; !st && i < c->n_tensors; i++) {
        const vk_tensor *t = &c->tensors[i];
        int synth = synthetic && fp4rt_weights_is_placeholder(w, t->host);
        if (t->il) {
            const fp4rt_linear *l = t->lin;
            st = fp4rt_vk_upload_wlayout(c, c->weights, t->offset, t->host, t->bytes, l->row_bytes,
                                         (uint32_t)(l->n_in / 16), t->il, synth ? w : NULL, seed);
        } else {
            st = synth ? fp4rt_vk_upload_synth(c, c->weights, t->offset, w, t->host, t->bytes, seed)
                       : fp4rt_vk_upload(c, c->weights, t->offset, t->host, t->bytes);
        }
    }
    if (st) return fp4rt_fail_context(st, "vulkan: uploading the weights");
    c->synthetic = synthetic;
    c->synth_seed = seed;
    c->prepared = p;
    return FP4RT_OK;
}

static fp4rt_status vk_prepare(void *vc, const fp4rt_program *p) { return vk_prepare_impl(vc, p, 0, 0); }

static fp4rt_status vk_prepare_synthetic(void *vc, const fp4rt_program *p, uint64_t seed) {
    return vk_prepare_impl(vc, p, 1, seed);
}

/* (Re)creates *b with at least `need` bytes. */
static fp4rt_status ensure_buffer(vk_ctx *c, fp4rt_buffer **b, size_t need, int host_visible, const char *what) {
    if (*b && (*b)->bytes >= need) return FP4RT_OK;
    fp4rt_vk_buffer_destroy(c, *b);
    *b = NULL;
    return fp4rt_vk_buffer_create(c, need, host_visible, what, b);
}

/* Largest K of a linear whose activations are quantized into xq (0: none). */
static size_t max_quant_k(const fp4rt_program *p) {
    size_t max_k = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (op->kind == FP4RT_OP_LINEAR && (op->lin->fmt == FP4RT_W_FP8 || op->lin->fmt == FP4RT_W_NVFP4_W4A4) &&
            (size_t)op->lin->n_in > max_k)
            max_k = (size_t)op->lin->n_in;
    }
    return max_k;
}

/* The largest prefill chunk whose chunk-sized bindings each fit one binding:
 * the activation arena, the quantized activations and the input rows. (The
 * logits and the KV cache are bound in pieces by their ops.) */
static int vk_max_chunk(void *vc, const fp4rt_program *p) {
    vk_ctx *c = vc;
    uint64_t per_row = (uint64_t)p->arena_width * 4;
    uint64_t mk = max_quant_k(p);
    /* xq rows, plus one float per row: the post scales of act_dynamic W4A4 layers */
    uint64_t k = mk ? (mk + 1) * 4 : 0, h = (uint64_t)p->weights->cfg.hidden * 4;
    if (k > per_row) per_row = k;
    if (h > per_row) per_row = h;
    uint64_t n = c->max_range / (per_row ? per_row : 1);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* The step's inputs into device-local memory at the start of its recording
 * (replays copy them afresh): the step info every dispatch reads, input_bytes
 * of embedding rows (0: none) and pos_bytes of rotary positions (0: none). */
static void record_step_inputs(vk_ctx *c, VkDeviceSize input_bytes, VkDeviceSize pos_bytes) {
    fp4rt_vk_cmd_copy(c, c->cmd, c->step_info, 0, c->step_host, 0, sizeof(vk_step_info));
    if (input_bytes) fp4rt_vk_cmd_copy(c, c->cmd, c->input, 0, c->input_host, 0, input_bytes);
    if (pos_bytes) fp4rt_vk_cmd_copy(c, c->cmd, c->rope_pos, 0, c->rope_pos_host, 0, pos_bytes);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_UNIFORM_READ_BIT | VK_ACCESS_SHADER_READ_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                               0, NULL, 0, NULL);
}

/* Writes the step's embedding rows, converted to FP32 exactly as the CPU does
 * (cpu_elementwise.c), or its override rows (step->embed_rows), into the
 * host-visible input buffer. */
static void embed_rows(vk_ctx *c, const fp4rt_weights *w, const fp4rt_step *step) {
    if (!w->embed) return; /* a program without an embedding (op tests) */
    size_t h = (size_t)w->cfg.hidden, es = fp4rt_dtype_size(w->embed_dtype);
    float *y = c->input_host->mapped;
    for (int t = 0; t < step->n_tokens; t++, y += h) {
        if (step->embed_rows && step->embed_rows[t]) {
            memcpy(y, step->input_embeds + (size_t)t * h, h * 4);
            continue;
        }
        const unsigned char *row = (const unsigned char *)w->embed + (size_t)step->tokens[t] * h * es;
        if (c->synthetic && fp4rt_weights_is_placeholder(w, row)) { /* BF16: generate the row in place */
            uint16_t tmp[256];
            for (size_t i0 = 0; i0 < h; i0 += 256) {
                size_t k = h - i0 < 256 ? h - i0 : 256;
                fp4rt_weights_synth_bytes(w, row + 2 * i0, 2 * k, c->synth_seed, tmp);
                for (size_t i = 0; i < k; i++) y[i0 + i] = fp4rt_bf16_to_f32(tmp[i]);
            }
            continue;
        }
        if (w->embed_dtype == FP4RT_DT_F32) {
            memcpy(y, row, h * 4);
            continue;
        }
        for (size_t i = 0; i < h; i++) {
            uint16_t v;
            memcpy(&v, row + 2 * i, 2);
            y[i] = w->embed_dtype == FP4RT_DT_BF16 ? fp4rt_bf16_to_f32(v) : fp4rt_f16_to_f32(v);
        }
    }
}

/* Writes the step's rotary positions, (t, h, w) per row, into rope_pos_host. */
static void rope_positions(vk_ctx *c, const fp4rt_step *step) {
    if (!c->rope_pos_host) return;
    int32_t *d = c->rope_pos_host->mapped;
    for (int t = 0; t < step->n_tokens; t++)
        for (int k = 0; k < 3; k++) d[3 * t + k] = fp4rt_step_rope_pos(step, t, k);
}

/* Workspaces that depend on the session: quantized activations, input rows, the
 * RoPE table (one per program: every ROPE op shares rotary_dim, theta and mode)
 * and the rotary positions. */
static fp4rt_status ensure_workspace(vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb) {
    if (c->ws_key.p == p && c->ws_key.chunk == sb->chunk && c->ws_key.n_ctx == sb->n_ctx &&
        c->ws_key.kv_type == (int)sb->kv_type)
        return FP4RT_OK;
    size_t max_k = max_quant_k(p);
    const fp4rt_op *rope = NULL;
    for (int i = 0; i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (op->kind == FP4RT_OP_ROPE) {
            if (rope && (rope->rotary_dim != op->rotary_dim || rope->rope_theta != op->rope_theta ||
                         rope->rope_mode != op->rope_mode))
                return fp4rt_fail(FP4RT_UNSUPPORTED, "vulkan: RoPE ops with different rotary_dim / theta / mode");
            fp4rt_status rs = fp4rt_rope_op_check(op);
            if (rs) return rs;
            rope = op;
        }
    }
    /* quantized rows, then the per-row post scales of W4A4 layers with act_dynamic */
    fp4rt_status st = ensure_buffer(c, &c->xq, (size_t)sb->chunk * ((max_k ? max_k : 1) + 1) * 4, 0,
                                    "quantized activations");
    if (!st) st = ensure_buffer(c, &c->input, (size_t)sb->chunk * p->weights->cfg.hidden * 4, 0, "input rows");
    if (!st)
        st = ensure_buffer(c, &c->input_host, (size_t)sb->chunk * p->weights->cfg.hidden * 4, 1, "input rows (host)");
    if (!st && rope) st = ensure_buffer(c, &c->rope_pos, (size_t)sb->chunk * 12, 0, "rotary positions");
    if (!st && rope) st = ensure_buffer(c, &c->rope_pos_host, (size_t)sb->chunk * 12, 1, "rotary positions (host)");
    if (st) return st;
    if (rope && (!c->rope_tab || c->rope_ctx < sb->n_ctx || c->rope_dim != rope->rotary_dim ||
                 c->rope_theta != rope->rope_theta || c->rope_mode != rope->rope_mode)) {
        int half = rope->rotary_dim / 2;
        if (half > 512) return fp4rt_fail(FP4RT_UNSUPPORTED, "rotary_dim %d too large", rope->rotary_dim);
        size_t n = (size_t)sb->n_ctx * half * 2;
        float *tab = fp4rt_malloc(n * sizeof(float), "RoPE table"), inv_freq[512];
        if (!tab) return FP4RT_OUT_OF_MEMORY;
        /* exactly the CPU's FP32 values (cpu_attention.c) */
        for (int j = 0; j < half; j++) inv_freq[j] = fp4rt_rope_inv_freq(rope, j);
        for (int pos = 0; pos < sb->n_ctx; pos++)
            for (int j = 0; j < half; j++) {
                float ang = (float)pos * inv_freq[j];
                tab[((size_t)pos * half + j) * 2] = cosf(ang);
                tab[((size_t)pos * half + j) * 2 + 1] = sinf(ang);
            }
        fp4rt_vk_buffer_destroy(c, c->rope_tab);
        c->rope_tab = NULL;
        st = fp4rt_vk_buffer_create(c, n * sizeof(float), 0, "RoPE table", &c->rope_tab);
        if (!st) st = fp4rt_vk_upload(c, c->rope_tab, 0, tab, n * sizeof(float));
        free(tab);
        if (st) return st;
        c->rope_ctx = sb->n_ctx;
        c->rope_dim = rope->rotary_dim;
        c->rope_theta = rope->rope_theta;
        c->rope_mode = rope->rope_mode;
    }
    st = fp4rt_vk_attention_workspace(c, p, sb);
    if (!st) {
        c->ws_key.p = p;
        c->ws_key.chunk = sb->chunk;
        c->ws_key.n_ctx = sb->n_ctx;
        c->ws_key.kv_type = (int)sb->kv_type;
    }
    return st;
}

static int replay_matches(const vk_ctx *c, const fp4rt_program *p, const fp4rt_session_buffers *sb,
                          const fp4rt_step *step) {
    const vk_replay *r = &c->replay;
    return r->valid && r->p == p && r->scratch == sb->scratch && r->kv == sb->kv && r->conv == sb->conv &&
           r->ssm == sb->ssm && r->logits == sb->logits && r->n_ctx == sb->n_ctx && r->chunk == sb->chunk &&
           r->kv_type == (int)sb->kv_type && r->all_logits == !!step->all_logits &&
           r->no_logits == !!step->no_logits && r->profile == c->prof.on && r->logits_rows == step->logits_rows &&
           r->argmax == (step->argmax_out != NULL) && r->mask == step->argmax_valid;
}

/* The step's greedy picks (argmax_out): the last row's, or every row's
 * (argmax_all), each over the ids of logits_rows (0: the vocabulary). */
static fp4rt_status rec_picks(vk_ctx *c, const fp4rt_session_buffers *sb, const fp4rt_step *step, int vocab) {
    int n = step->logits_rows ? step->logits_rows : vocab;
    if (!step->argmax_all) {
        size_t row = step->all_logits ? (size_t)(step->n_tokens - 1) * vocab : 0;
        return fp4rt_vk_rec_argmax(c, sb->logits, row, n, step->argmax_valid, 0);
    }
    fp4rt_status st = FP4RT_OK;
    for (int r = 0; !st && r < step->n_tokens; r++)
        st = fp4rt_vk_rec_argmax(c, sb->logits, (size_t)r * vocab, n, step->argmax_valid, r);
    return st;
}

static void read_picks(const vk_ctx *c, const fp4rt_step *step) {
    for (int r = 0; r < (step->argmax_all ? step->n_tokens : 1); r++) step->argmax_out[r] = fp4rt_vk_pick_result(c, r);
}

static fp4rt_status vk_run(void *vc, const fp4rt_program *p, const fp4rt_session_buffers *sb, const fp4rt_step *step) {
    vk_ctx *c = vc; /* the step was checked by fp4rt_backend_run */
    fp4rt_status st = vk_prepare(c, p);
    if (!st) st = ensure_workspace(c, p, sb);
    int vocab = p->weights->cfg.vocab;
    if (!st && step->argmax_out) st = fp4rt_vk_argmax_prepare(c, step->argmax_valid, vocab);
    if (st) return st;
    /* the previous submission was waited for: the GPU reads no step info or input now */
    vk_step_info *si = c->step_host->mapped;
    *si = (vk_step_info){.pos0 = (uint32_t)step->pos0, .n_tokens = (uint32_t)step->n_tokens};
    embed_rows(c, p->weights, step);
    rope_positions(c, step);
    int replay = step->n_tokens == 1 && !step->decode_rows; /* a verify step records its checkpoints */
    if (replay && replay_matches(c, p, sb, step)) {
        fp4rt_vk_set_work(c, "the replayed decode step at position %d", step->pos0);
        st = fp4rt_vk_replay_step(c);
        if (!st) st = fp4rt_vk_profile_collect(c, p, 1);
        if (!st && step->argmax_out) read_picks(c, step);
        return st;
    }
    /* a decode step's recording must not depend on its position or token */
    fp4rt_step rec = *step;
    if (replay) {
        rec.pos0 = -1;
        rec.tokens = NULL;
    }
    vk_step s = {.c = c, .p = p, .sb = sb, .step = &rec, .replay = replay};
    fp4rt_vk_set_work(c, "the step of %d tokens at position %d", step->n_tokens, step->pos0);
    st = replay ? fp4rt_vk_begin_step(c) : fp4rt_vk_begin(c);
    if (!st)
        record_step_inputs(c, p->weights->embed ? (VkDeviceSize)step->n_tokens * p->weights->cfg.hidden * 4 : 0,
                           c->rope_pos ? (VkDeviceSize)step->n_tokens * 12 : 0);
    if (!st) st = fp4rt_vk_profile_begin(c, p);
    for (int i = 0; !st && i < p->n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        if (c->fuse && i + 1 < p->n_ops && fp4rt_vk_add_norm_fusable(op, op + 1)) {
            fp4rt_vk_profile_op(c, i); /* --profile: the pair's time goes to the RMSNORM */
            op++, i++;
            st = fp4rt_vk_rec_add_norm(&s, op - 1, op);
        } else if (c->fuse && fp4rt_vk_pre_linear_fusable(&s, i)) {
            fp4rt_vk_profile_op(c, i); /* --profile: the pair's time goes to the LINEAR */
            op++, i++;
            st = fp4rt_vk_rec_linear_pre(&s, op, op - 1);
        } else
            st = fp4rt_vk_record_op(&s, op);
        if (st) {
            fp4rt_vk_abandon(c);
            return fp4rt_fail_context(st, "op %d (%s, layer %d)", i, fp4rt_op_name(op->kind), op->layer);
        }
        fp4rt_vk_profile_op(c, i);
    }
    if (!st && step->argmax_out) st = rec_picks(c, sb, step, vocab);
    if (st) {
        fp4rt_vk_abandon(c);
        return st;
    }
    if (replay)
        c->replay = (vk_replay){.valid = 1, .dispatches = c->hz.dispatches, .barriers = c->hz.barriers,
                                .p = p, .scratch = sb->scratch, .kv = sb->kv, .conv = sb->conv,
                                .ssm = sb->ssm, .logits = sb->logits, .n_ctx = sb->n_ctx, .chunk = sb->chunk,
                                .kv_type = (int)sb->kv_type, .all_logits = !!step->all_logits,
                                .no_logits = !!step->no_logits, .profile = c->prof.on,
                                .logits_rows = step->logits_rows, .argmax = step->argmax_out != NULL,
                                .mask = step->argmax_valid};
    st = fp4rt_vk_submit_wait(c);
    if (!st) st = fp4rt_vk_profile_collect(c, p, 0);
    if (!st && step->argmax_out) read_picks(c, step);
    return st;
}

static fp4rt_status vk_set_profile(void *vc, int on) { return fp4rt_vk_profile_enable(vc, on); }

static void vk_describe(void *vc, char *buf, size_t n) {
    vk_ctx *c = vc;
    /* prefill linears: the fast kernel for FP8 / W4A4 (coop first), the rest */
    char fast[64] = "";
    if (c->coop && !c->exact)
        snprintf(fast, sizeof fast, "FP8 / W4A4 on %s cooperative matrices, ", fp4rt_vk_coop_name(c->coop));
    else if (c->idot && !c->exact)
        snprintf(fast, sizeof fast, "W4A4 on integer dot products, ");
    snprintf(buf, n, "vulkan:%d: %s (%s%s), FP32 math, NVFP4 dequantized to FP16 in registers; prefill: %s%s%s",
             c->index, c->desc.name, c->desc.type, c->desc.software ? ", software" : "", fast,
             fast[0] ? "the rest " : "",
             c->exact ? "exact (FP4RT_VK_EXACT)" : c->desc.software ? "exact" : "tiled FP32");
}

/* A verify step's rows (decode_rows) stay on the matrix-vector linear kernels,
 * whose rows are bit-identical to a 1-token step's (vk_linear_policy.c). */
_Static_assert(FP4RT_VK_MV_MAX_T >= FP4RT_DECODE_ROWS_MAX, "verify rows on the decode linear kernels");

const fp4rt_backend_ops fp4rt_backend_vulkan = {
    .name = "vulkan",
    .create = vk_create,
    .destroy = vk_destroy,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_alloc_split = vk_buffer_alloc_split,
    .buffer_free = vk_buffer_free,
    .buffer_upload = vk_buffer_upload,
    .buffer_download = vk_buffer_download,
    .buffer_clear = vk_buffer_clear,
    .buffer_copy = vk_buffer_copy,
    .prepare = vk_prepare,
    .prepare_synthetic = vk_prepare_synthetic,
    .run = vk_run,
    .synchronize = NULL,
    .describe = vk_describe,
    .set_observer = NULL,
    .measure_bandwidth = fp4rt_vk_measure_bandwidth,
    .max_chunk = vk_max_chunk,
    .set_profile = vk_set_profile,
    .argmax = fp4rt_vk_argmax,
    .top_k = fp4rt_vk_top_k,
    .decode_rows = 1,
    .profile_take = fp4rt_vk_profile_take,
    .argmax_rows = 1,
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
    if (!st)
        st = fp4rt_vk_dispatch(c, FP4RT_VK_SHADER_DEQUANT_NVFP4, b, 3, &pairs, sizeof pairs,
                               (pairs + 63) / 64, 1, 1);
    if (!st) st = fp4rt_vk_submit_wait(c);
    if (!st) st = fp4rt_vk_download(c, bo, 0, out, n * 2);
    fp4rt_vk_buffer_destroy(c, bw);
    fp4rt_vk_buffer_destroy(c, bs);
    fp4rt_vk_buffer_destroy(c, bo);
    return st;
}
