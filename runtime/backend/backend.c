/* The backend interface's wrappers (backend.h). */
#include "runtime/backend/backend.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/base/common.h"

/* INVALID_ARGUMENT naming the wrapper when the table, the context or another
 * required pointer is NULL. */
static fp4rt_status check_args(const char *fn, const fp4rt_backend_ops *be, const void *ctx, const void *arg,
                               const char *arg_name) {
    if (!be) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: backend is NULL", fn);
    if (!ctx) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: the %s backend's context is NULL", fn, be->name);
    if (!arg) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: %s is NULL", fn, arg_name);
    return FP4RT_OK;
}

static fp4rt_status unsupported(const fp4rt_backend_ops *be, const char *what) {
    return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend has no %s", be->name, what);
}

fp4rt_status fp4rt_backend_create(const fp4rt_backend_ops *be, int n_threads, void **ctx) {
    if (!be || !ctx) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_create: backend or ctx is NULL");
    *ctx = NULL;
    if (n_threads < 1)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_create: %d threads for the %s backend", n_threads,
                          be->name);
    return be->create(n_threads, ctx);
}

void fp4rt_backend_destroy(const fp4rt_backend_ops *be, void *ctx) {
    if (be && ctx) be->destroy(ctx);
}

fp4rt_status fp4rt_backend_alloc(const fp4rt_backend_ops *be, void *ctx, size_t bytes, const char *what,
                                 fp4rt_buffer **out) {
    fp4rt_status st = check_args("fp4rt_backend_alloc", be, ctx, out, "out");
    if (st) return st;
    *out = NULL;
    return be->buffer_alloc(ctx, bytes, what ? what : "buffer", out);
}

fp4rt_status fp4rt_backend_alloc_split(const fp4rt_backend_ops *be, void *ctx, size_t bytes, size_t granule,
                                       const char *what, fp4rt_buffer **out) {
    if (!be || !be->buffer_alloc_split || !granule) return fp4rt_backend_alloc(be, ctx, bytes, what, out);
    fp4rt_status st = check_args("fp4rt_backend_alloc_split", be, ctx, out, "out");
    if (st) return st;
    *out = NULL;
    return be->buffer_alloc_split(ctx, bytes, granule, what ? what : "buffer", out);
}

void fp4rt_backend_free(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b) {
    if (be && ctx && b) be->buffer_free(ctx, b);
}

fp4rt_status fp4rt_backend_upload(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b, size_t offset,
                                  const void *src, size_t bytes) {
    fp4rt_status st = check_args("fp4rt_backend_upload", be, ctx, b, "buffer");
    if (!st && !src && bytes) st = check_args("fp4rt_backend_upload", be, ctx, src, "src");
    if (st || !bytes) return st;
    return be->buffer_upload(ctx, b, offset, src, bytes);
}

fp4rt_status fp4rt_backend_download(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b, size_t offset,
                                    void *dst, size_t bytes) {
    fp4rt_status st = check_args("fp4rt_backend_download", be, ctx, b, "buffer");
    if (!st && !dst && bytes) st = check_args("fp4rt_backend_download", be, ctx, dst, "dst");
    if (st || !bytes) return st;
    return be->buffer_download(ctx, b, offset, dst, bytes);
}

fp4rt_status fp4rt_backend_clear(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *b) {
    fp4rt_status st = check_args("fp4rt_backend_clear", be, ctx, b, "buffer");
    return st ? st : be->buffer_clear(ctx, b);
}

fp4rt_status fp4rt_backend_copy(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *dst, size_t dst_off,
                                fp4rt_buffer *src, size_t src_off, size_t bytes) {
    fp4rt_status st = check_args("fp4rt_backend_copy", be, ctx, dst, "dst");
    if (!st) st = check_args("fp4rt_backend_copy", be, ctx, src, "src");
    if (st || !bytes) return st;
    if (src == dst) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_copy: src and dst are the same buffer");
    if (be->buffer_copy) return be->buffer_copy(ctx, dst, dst_off, src, src_off, bytes);
    void *tmp = fp4rt_malloc(bytes, "buffer copy");
    if (!tmp) return FP4RT_OUT_OF_MEMORY;
    st = be->buffer_download(ctx, src, src_off, tmp, bytes);
    if (!st) st = be->buffer_upload(ctx, dst, dst_off, tmp, bytes);
    free(tmp);
    return st;
}

fp4rt_status fp4rt_backend_prepare(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p, uint64_t seed) {
    fp4rt_status st = check_args("fp4rt_backend_prepare", be, ctx, p, "program");
    if (st) return st;
    if (!p->weights->synthetic) return be->prepare ? be->prepare(ctx, p) : FP4RT_OK;
    if (!be->prepare_synthetic)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot generate synthetic weights", be->name);
    return be->prepare_synthetic(ctx, p, seed);
}

fp4rt_status fp4rt_backend_check_step(const fp4rt_backend_ops *be, const fp4rt_program *p,
                                      const fp4rt_session_buffers *sb, const fp4rt_step *step) {
    if (!be || !p || !sb || !step)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_run: backend, program, buffers or step is NULL");
    if (!sb->scratch || !sb->logits)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_run: the session's %s buffer is not allocated",
                          sb->scratch ? "logits" : "scratch");
    if (step->n_tokens < 1 || step->n_tokens > sb->chunk)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step of %d tokens (chunk is %d)", step->n_tokens, sb->chunk);
    if (step->pos0 < 0 || step->pos0 > sb->n_ctx - step->n_tokens)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "context full: %d + %d tokens exceed n_ctx %d", step->pos0,
                          step->n_tokens, sb->n_ctx);
    if (!step->tokens) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step of %d tokens without tokens", step->n_tokens);
    if (!step->input_embeds != !step->embed_rows)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step with %s but no %s", step->embed_rows ? "embed_rows" : "input_embeds",
                          step->embed_rows ? "input_embeds" : "embed_rows");
    int vocab = p->weights->cfg.vocab, embeds = 0, ropes = 0;
    for (int i = 0; i < p->n_ops; i++) {
        embeds |= p->ops[i].kind == FP4RT_OP_EMBED;
        ropes |= p->ops[i].kind == FP4RT_OP_ROPE;
    }
    for (int i = 0; embeds && i < step->n_tokens; i++)
        if (!(step->embed_rows && step->embed_rows[i]) && (step->tokens[i] < 0 || step->tokens[i] >= vocab))
            return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step token %d at index %d is outside the vocabulary [0, %d)",
                              step->tokens[i], i, vocab);
    for (int r = 0; ropes && r < step->n_tokens; r++)
        for (int c = 0; c < (step->positions ? 3 : 1); c++) {
            int pos = fp4rt_step_rope_pos(step, r, c);
            if (pos < 0 || pos >= sb->n_ctx)
                return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step row %d: rotary position %d (%s) outside [0, n_ctx %d)", r,
                                  pos, step->positions ? "positions" : "pos0 + row + rope_delta", sb->n_ctx);
        }
    for (int i = 0; ropes && i < p->n_ops; i++)
        if (p->ops[i].kind == FP4RT_OP_ROPE) {
            fp4rt_status st = fp4rt_rope_op_check(&p->ops[i]);
            if (st) return fp4rt_fail_context(st, "op %d (layer %d)", i, p->ops[i].layer);
        }
    if (step->logits_rows < 0 || step->logits_rows > vocab)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "step logits_rows = %d outside 0 .. %d", step->logits_rows, vocab);
    if (step->argmax_out && step->no_logits)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: a greedy pick of a step without logits", be->name);
    if (step->argmax_out && !be->argmax) return unsupported(be, "device pick (argmax)");
    if (step->argmax_all && (!step->argmax_out || !step->all_logits || step->n_tokens > FP4RT_DECODE_ROWS_MAX))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: argmax_all needs argmax_out, all_logits and at most %d rows "
                          "(step of %d)", be->name, FP4RT_DECODE_ROWS_MAX, step->n_tokens);
    if ((step->argmax_all || (step->argmax_out && step->logits_rows)) && !be->argmax_rows)
        return unsupported(be, step->argmax_all ? "device pick of every row (argmax_all)"
                                                : "device pick over logits_rows (argmax_out with logits_rows)");
    if (step->kv_only && (!step->no_logits || p->n_gdn_layers))
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "%s: a kv_only step needs no_logits and a program without GDN "
                          "state (%s)", be->name, !step->no_logits ? "the step has logits" : "the program has some");
    if (step->decode_rows && !be->decode_rows) return unsupported(be, "verify (decode_rows) step");
    if (step->decode_rows && step->n_tokens > FP4RT_DECODE_ROWS_MAX)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "verify step of %d rows (at most %d)", step->n_tokens,
                          FP4RT_DECODE_ROWS_MAX);
    return FP4RT_OK;
}

fp4rt_status fp4rt_backend_run(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p,
                               const fp4rt_session_buffers *sb, const fp4rt_step *step) {
    fp4rt_status st = check_args("fp4rt_backend_run", be, ctx, p, "program");
    if (!st) st = fp4rt_backend_check_step(be, p, sb, step);
    return st ? st : be->run(ctx, p, sb, step);
}

fp4rt_status fp4rt_backend_synchronize(const fp4rt_backend_ops *be, void *ctx) {
    fp4rt_status st = check_args("fp4rt_backend_synchronize", be, ctx, be, "backend");
    return st || !be->synchronize ? st : be->synchronize(ctx);
}

void fp4rt_backend_describe(const fp4rt_backend_ops *be, void *ctx, char *buf, size_t n) {
    if (!buf || !n) return;
    buf[0] = 0;
    if (!be) return;
    if (be->describe && ctx)
        be->describe(ctx, buf, n);
    else
        snprintf(buf, n, "%s", be->name);
}

fp4rt_status fp4rt_backend_set_observer(const fp4rt_backend_ops *be, void *ctx, fp4rt_linear_observer fn,
                                        void *user) {
    fp4rt_status st = check_args("fp4rt_backend_set_observer", be, ctx, be, "backend");
    if (st) return st;
    if (!be->set_observer)
        return fp4rt_fail(FP4RT_UNSUPPORTED, "the %s backend cannot observe activations", be->name);
    return be->set_observer(ctx, fn, user);
}

fp4rt_status fp4rt_backend_measure_bandwidth(const fp4rt_backend_ops *be, void *ctx, double *bytes_per_s) {
    fp4rt_status st = check_args("fp4rt_backend_measure_bandwidth", be, ctx, bytes_per_s, "bytes_per_s");
    if (st) return st;
    *bytes_per_s = 0;
    return be->measure_bandwidth ? be->measure_bandwidth(ctx, bytes_per_s) : unsupported(be, "bandwidth probe");
}

int fp4rt_backend_max_chunk(const fp4rt_backend_ops *be, void *ctx, const fp4rt_program *p) {
    if (!be || !ctx || !p || !be->max_chunk) return INT_MAX;
    return be->max_chunk(ctx, p);
}

fp4rt_status fp4rt_backend_set_profile(const fp4rt_backend_ops *be, void *ctx, int on) {
    fp4rt_status st = check_args("fp4rt_backend_set_profile", be, ctx, be, "backend");
    if (st) return st;
    return be->set_profile ? be->set_profile(ctx, on) : unsupported(be, "profile");
}

fp4rt_status fp4rt_backend_measure_arith_peak(const fp4rt_backend_ops *be, void *ctx, int fused, double *flops_per_s,
                                              char *what, size_t n) {
    fp4rt_status st = check_args("fp4rt_backend_measure_arith_peak", be, ctx, flops_per_s, "flops_per_s");
    if (st) return st;
    *flops_per_s = 0;
    if (what && n) what[0] = 0;
    return be->measure_arith_peak ? be->measure_arith_peak(ctx, fused, flops_per_s, what, n)
                                  : unsupported(be, "arithmetic peak probe");
}

fp4rt_status fp4rt_backend_profile_take(const fp4rt_backend_ops *be, void *ctx, double *seconds, long *calls) {
    fp4rt_status st = check_args("fp4rt_backend_profile_take", be, ctx, seconds, "seconds");
    if (!st && !calls) st = fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_profile_take: calls is NULL");
    if (st) return st;
    return be->profile_take ? be->profile_take(ctx, seconds, calls) : unsupported(be, "profile");
}

fp4rt_status fp4rt_backend_argmax(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *logits, size_t offset, int n,
                                  const uint8_t *valid, int32_t *out) {
    fp4rt_status st = check_args("fp4rt_backend_argmax", be, ctx, logits, "logits");
    if (!st) st = check_args("fp4rt_backend_argmax", be, ctx, out, "out");
    if (st) return st;
    if (n < 1) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_argmax: %d logits", n);
    return be->argmax ? be->argmax(ctx, logits, offset, n, valid, out) : unsupported(be, "device pick (argmax)");
}

fp4rt_status fp4rt_backend_top_k(const fp4rt_backend_ops *be, void *ctx, fp4rt_buffer *logits, size_t offset, int n,
                                 const fp4rt_topk_request *req, float *vals, int32_t *ids) {
    fp4rt_status st = check_args("fp4rt_backend_top_k", be, ctx, logits, "logits");
    if (!st) st = check_args("fp4rt_backend_top_k", be, ctx, req, "request");
    if (!st && (!vals || !ids)) st = check_args("fp4rt_backend_top_k", be, ctx, NULL, "vals or ids");
    if (st) return st;
    if (n < 1) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "fp4rt_backend_top_k: %d logits", n);
    return be->top_k ? be->top_k(ctx, logits, offset, n, req, vals, ids) : unsupported(be, "device top-k");
}

fp4rt_status fp4rt_rope_op_check(const fp4rt_op *op) {
    const char *bad = NULL;
    int sec = op->mrope_section[0] | op->mrope_section[1] | op->mrope_section[2];
    if (op->rotary_dim < 2 || op->rotary_dim % 2 || op->rotary_dim > 1024 || op->rotary_dim > op->group_dim)
        bad = "rotary_dim";
    else if (op->rope_mode != FP4RT_ROPE_TEXT && op->rope_mode != FP4RT_ROPE_VISION_2D)
        bad = "rope_mode";
    else if (op->mrope_section[0] < 0 || op->mrope_section[1] < 0 || op->mrope_section[2] < 0)
        bad = "mrope_section";
    else if (op->rope_mode == FP4RT_ROPE_TEXT && sec && !op->mrope_interleaved)
        bad = "mrope_interleaved (only the interleaved M-RoPE layout)";
    else if (op->rope_mode == FP4RT_ROPE_VISION_2D && op->rotary_dim % 4)
        bad = "rotary_dim (the 2-D vision rotary needs a multiple of 4)";
    if (!bad) return FP4RT_OK;
    return fp4rt_fail(FP4RT_UNSUPPORTED, "ROPE op: unsupported %s (mode %d, rotary_dim %d of %d, mrope_section {%d, %d, %d})",
                      bad, op->rope_mode, op->rotary_dim, op->group_dim, op->mrope_section[0], op->mrope_section[1],
                      op->mrope_section[2]);
}
