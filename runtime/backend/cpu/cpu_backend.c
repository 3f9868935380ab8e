/* The CPU reference backend: plain C, FP32 math, multi-threaded over output
 * rows (linear), heads (attention, GDN) or channels (conv) with a thread pool. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/env.h"
#include "runtime/base/numfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static fp4rt_status cpu_create(int n_threads, void **out) {
    *out = NULL;
    fp4rt_numfmt_init();
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    cpu_ctx *c = fp4rt_calloc(1, sizeof *c, "cpu backend");
    if (!c) return FP4RT_OUT_OF_MEMORY;
    c->n_threads = n_threads;
    c->isa = fp4rt_cpu_isa_supported();
    int cap = fp4rt_env_enum(FP4RT_ENV_CPU_ISA); /* avx512|avx2|c */
    static const int cap_isa[] = {FP4RT_CPU_ISA_AVX512, FP4RT_CPU_ISA_AVX2, FP4RT_CPU_ISA_C};
    if (cap >= 0 && cap_isa[cap] < c->isa) c->isa = cap_isa[cap];
    /* tiled|rows; the tile kernels need AVX2 */
    c->tiled = fp4rt_env_enum(FP4RT_ENV_CPU_LINEAR) != 1 && c->isa >= FP4RT_CPU_ISA_AVX2;
    c->amx = c->tiled && c->isa >= FP4RT_CPU_ISA_AVX512 && fp4rt_env_bool(FP4RT_ENV_CPU_AMX) &&
             fp4rt_cpu_amx_available();
    c->thread_ws = fp4rt_calloc((size_t)n_threads, sizeof(float *), "cpu workspace");
    fp4rt_status st = c->thread_ws ? fp4rt_pool_create(n_threads, &c->pool) : FP4RT_OUT_OF_MEMORY;
    if (st) {
        free(c->thread_ws);
        free(c);
        return st;
    }
    *out = c;
    return FP4RT_OK;
}

static void cpu_destroy(void *vc) {
    cpu_ctx *c = vc;
    if (!c) return;
    if (c->profile) {
        double total = 0;
        for (int k = 0; k < FP4RT_OP_COUNT; k++) total += c->op_seconds[k];
        for (int k = 0; k < FP4RT_OP_COUNT; k++)
            if (c->op_calls[k])
                fp4rt_log(FP4RT_LOG_INFO, "profile: %-14s %8ld calls %10.3f ms %5.1f%%", fp4rt_op_name(k),
                          c->op_calls[k], 1e3 * c->op_seconds[k], total > 0 ? 100 * c->op_seconds[k] / total : 0);
    }
    fp4rt_pool_free(c->pool);
    for (int i = 0; i < c->n_threads; i++) fp4rt_free_aligned(c->thread_ws[i]);
    free(c->thread_ws);
    fp4rt_free_aligned(c->shared);
    free(c);
}

fp4rt_status fp4rt_cpu_reserve(cpu_ctx *c, size_t shared_floats, size_t thread_floats) {
    if (shared_floats > c->shared_floats) {
        fp4rt_free_aligned(c->shared);
        c->shared = fp4rt_malloc_aligned(shared_floats * sizeof(float), "cpu workspace");
        c->shared_floats = c->shared ? shared_floats : 0;
        if (!c->shared) return FP4RT_OUT_OF_MEMORY;
    }
    if (thread_floats > c->thread_floats) {
        for (int i = 0; i < c->n_threads; i++) {
            fp4rt_free_aligned(c->thread_ws[i]);
            c->thread_ws[i] = fp4rt_malloc_aligned(thread_floats * sizeof(float), "cpu workspace");
            if (!c->thread_ws[i]) {
                c->thread_floats = 0;
                return FP4RT_OUT_OF_MEMORY;
            }
        }
        c->thread_floats = thread_floats;
    }
    return FP4RT_OK;
}

static fp4rt_status cpu_buffer_alloc(void *ctx, size_t bytes, const char *what, fp4rt_buffer **out) {
    *out = NULL;
    fp4rt_buffer *b = fp4rt_calloc(1, sizeof *b, what);
    if (!b) return FP4RT_OUT_OF_MEMORY;
    b->data = fp4rt_malloc_aligned(bytes, what);
    if (!b->data) {
        free(b);
        return FP4RT_OUT_OF_MEMORY;
    }
    b->bytes = bytes;
    *out = b;
    return FP4RT_OK;
}

static void cpu_buffer_free(void *ctx, fp4rt_buffer *b) {
    if (!b) return;
    fp4rt_free_aligned(b->data);
    free(b);
}

static fp4rt_status cpu_buffer_upload(void *ctx, fp4rt_buffer *b, size_t off, const void *src,
                                      size_t n) {
    if (off > b->bytes || n > b->bytes - off)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "upload of %zu bytes at %zu past a %zu-byte buffer", n, off, b->bytes);
    memcpy((char *)b->data + off, src, n);
    return FP4RT_OK;
}

static fp4rt_status cpu_buffer_download(void *ctx, fp4rt_buffer *b, size_t off, void *dst,
                                        size_t n) {
    if (off > b->bytes || n > b->bytes - off)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "download of %zu bytes at %zu past a %zu-byte buffer", n, off, b->bytes);
    memcpy(dst, (char *)b->data + off, n);
    return FP4RT_OK;
}

static fp4rt_status cpu_buffer_clear(void *ctx, fp4rt_buffer *b) {
    memset(b->data, 0, b->bytes);
    return FP4RT_OK;
}

static fp4rt_status cpu_buffer_copy(void *ctx, fp4rt_buffer *dst, size_t dst_off, fp4rt_buffer *src,
                                    size_t src_off, size_t n) {
    if (src_off > src->bytes || n > src->bytes - src_off || dst_off > dst->bytes || n > dst->bytes - dst_off)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "copy of %zu bytes from %zu of a %zu-byte buffer to %zu of a %zu-byte one",
                          n, src_off, src->bytes, dst_off, dst->bytes);
    memcpy((char *)dst->data + dst_off, (const char *)src->data + src_off, n);
    return FP4RT_OK;
}

typedef fp4rt_status (*cpu_kernel)(const cpu_step *, const fp4rt_op *);

static const cpu_kernel k_kernels[FP4RT_OP_COUNT] = {
    [FP4RT_OP_EMBED] = fp4rt_cpu_embed,
    [FP4RT_OP_RMSNORM] = fp4rt_cpu_rmsnorm,
    [FP4RT_OP_GATED_RMSNORM] = fp4rt_cpu_gated_rmsnorm,
    [FP4RT_OP_L2NORM] = fp4rt_cpu_l2norm,
    [FP4RT_OP_LINEAR] = fp4rt_cpu_linear,
    [FP4RT_OP_ROPE] = fp4rt_cpu_rope,
    [FP4RT_OP_KV_APPEND] = fp4rt_cpu_kv_append,
    [FP4RT_OP_ATTENTION] = fp4rt_cpu_attention,
    [FP4RT_OP_SIGMOID_GATE] = fp4rt_cpu_sigmoid_gate,
    [FP4RT_OP_CONV1D_SILU] = fp4rt_cpu_conv1d_silu,
    [FP4RT_OP_GATED_DELTA] = fp4rt_cpu_gated_delta,
    [FP4RT_OP_SWIGLU] = fp4rt_cpu_swiglu,
    [FP4RT_OP_ADD] = fp4rt_cpu_add,
    [FP4RT_OP_LAYERNORM] = fp4rt_cpu_layernorm,
    [FP4RT_OP_BIAS] = fp4rt_cpu_bias,
    [FP4RT_OP_GELU] = fp4rt_cpu_gelu,
    [FP4RT_OP_ATTENTION_FULL] = fp4rt_cpu_attention_full,
};

static fp4rt_status cpu_run(void *vc, const fp4rt_program *p, const fp4rt_session_buffers *sb,
                            const fp4rt_step *step) {
    cpu_ctx *c = vc; /* the step was checked by fp4rt_backend_run */
    cpu_step s = {.ctx = c, .p = p, .sb = sb, .step = step, .arena = sb->scratch->data,
                  .logits = sb->logits->data};
    int n_ops = p->n_ops;
    if (step->kv_only) /* up to the last KV append: the rest writes only the arena */
        for (n_ops = p->n_ops; n_ops > 0 && p->ops[n_ops - 1].kind != FP4RT_OP_KV_APPEND; n_ops--) {}
    for (int i = 0; i < n_ops; i++) {
        const fp4rt_op *op = &p->ops[i];
        struct timespec t0, t1;
        if (c->profile) clock_gettime(CLOCK_MONOTONIC, &t0);
        fp4rt_status st = k_kernels[op->kind] ? k_kernels[op->kind](&s, op)
                                              : fp4rt_fail(FP4RT_UNSUPPORTED, "cpu: no kernel");
        if (c->profile) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            c->op_seconds[op->kind] += (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
            c->op_calls[op->kind]++;
        }
        if (st) return fp4rt_fail_context(st, "op %d (%s, layer %d)", i, fp4rt_op_name(op->kind), op->layer);
    }
    if (step->argmax_out) fp4rt_cpu_step_picks(&s);
    return FP4RT_OK;
}

static void cpu_describe(void *vc, char *buf, size_t n) {
    cpu_ctx *c = vc;
    snprintf(buf, n, "cpu: %d threads, FP32 reference kernels (%s%s%s)", c->n_threads, fp4rt_cpu_isa_name(c->isa),
             c->tiled ? ", tiled prefill" : "", c->amx ? ", amx bf16" : "");
}

static fp4rt_status cpu_set_profile(void *vc, int on) {
    ((cpu_ctx *)vc)->profile = on;
    return FP4RT_OK;
}

static fp4rt_status cpu_profile_take(void *vc, double *seconds, long *calls) {
    cpu_ctx *c = vc;
    memcpy(seconds, c->op_seconds, sizeof c->op_seconds);
    memcpy(calls, c->op_calls, sizeof c->op_calls);
    memset(c->op_seconds, 0, sizeof c->op_seconds);
    memset(c->op_calls, 0, sizeof c->op_calls);
    return FP4RT_OK;
}

static fp4rt_status cpu_set_observer(void *vc, fp4rt_linear_observer fn, void *user) {
    cpu_ctx *c = vc;
    c->observer = fn;
    c->observer_user = user;
    return FP4RT_OK;
}

/* The kernels read the weights in place: the placeholders become host memory
 * at the same addresses, filled on the host (checked against the available
 * memory first). */
static fp4rt_status cpu_prepare_synthetic(void *vc, const fp4rt_program *p, uint64_t seed) {
    (void)vc;
    return fp4rt_weights_materialize((fp4rt_weights *)p->weights, seed);
}

const fp4rt_backend_ops fp4rt_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_upload = cpu_buffer_upload,
    .buffer_download = cpu_buffer_download,
    .buffer_clear = cpu_buffer_clear,
    .buffer_copy = cpu_buffer_copy,
    .prepare = NULL,
    .prepare_synthetic = cpu_prepare_synthetic,
    .run = cpu_run,
    .synchronize = NULL,
    .describe = cpu_describe,
    .set_observer = cpu_set_observer,
    .measure_bandwidth = fp4rt_cpu_measure_bandwidth,
    .set_profile = cpu_set_profile,
    .measure_arith_peak = fp4rt_cpu_measure_arith_peak,
    .profile_take = cpu_profile_take,
    .decode_rows = 1,
    .argmax = fp4rt_cpu_argmax,
    .argmax_rows = 1,
};
