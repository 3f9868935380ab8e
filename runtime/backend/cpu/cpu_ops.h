/* CPU backend internals: the context, row addressing and the op kernels.
 * Every kernel computes in FP32 and is deterministic: each output element is
 * produced by one thread with a fixed summation order. */
#ifndef FP4RT_CPU_OPS_H
#define FP4RT_CPU_OPS_H

#include "runtime/base/canon_math.h"
#include "runtime/backend/backend.h"
#include "runtime/base/threadpool.h"

#include <math.h>

struct fp4rt_buffer {
    void *data;
    size_t bytes;
};

typedef struct cpu_ctx {
    fp4rt_pool *pool;
    int n_threads;
    /* Workspace grown on demand: one shared area (quantized activations) and one
     * per thread (decoded weight rows, GDN chunk temporaries). */
    float *shared;
    size_t shared_floats;
    float **thread_ws;
    size_t thread_floats;
    /* FP4RT_PROFILE=1 in the environment: seconds and calls per op kind, printed
     * through the log when the backend is destroyed */
    int profile;
    fp4rt_linear_observer observer; /* calibration hook, or NULL */
    void *observer_user;
    double op_seconds[FP4RT_OP_COUNT];
    long op_calls[FP4RT_OP_COUNT];
} cpu_ctx;

/* Everything an op kernel needs about the current step. */
typedef struct cpu_step {
    cpu_ctx *ctx;
    const fp4rt_program *p;
    const fp4rt_session_buffers *sb;
    const fp4rt_step *step;
    float *arena;  /* [chunk, arena_width] */
    float *logits; /* [chunk, vocab] */
} cpu_step;

/* Pointer to row t of a view, and the distance between rows (floats). */
static inline float *cpu_row(const cpu_step *s, fp4rt_view v, int t) {
    if (v.buf == FP4RT_BUF_LOGITS) return s->logits + (size_t)t * s->p->weights->cfg.vocab + v.col;
    return s->arena + (size_t)t * s->p->arena_width + s->p->buf_offset[v.buf] + v.col;
}

/* Ensures the workspaces hold at least the given sizes. */
fp4rt_status fp4rt_cpu_reserve(cpu_ctx *c, size_t shared_floats, size_t thread_floats);
/* backend.h measure_bandwidth (cpu_bandwidth.c) */
fp4rt_status fp4rt_cpu_measure_bandwidth(void *ctx, double *bytes_per_s);

fp4rt_status fp4rt_cpu_embed(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_rmsnorm(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_gated_rmsnorm(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_l2norm(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_swiglu(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_add(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_linear(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_rope(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_kv_append(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_attention(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_sigmoid_gate(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_conv1d_silu(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_gated_delta(const cpu_step *s, const fp4rt_op *op);

/* Reference math shared with tests: the numerics contract's functions
 * (canon_math.h), which every backend evaluates with the same bits. */
static inline float fp4rt_silu(float x) { return fp4rt_csilu(x); }
static inline float fp4rt_sigmoid(float x) { return fp4rt_csigmoid(x); }
/* torch.nn.functional.softplus with threshold 20. */
static inline float fp4rt_softplus(float x) { return fp4rt_csoftplus(x); }

/* W4A4 activation quantization of one row of k (multiple of 16) values: out[i] =
 * e2m1(code_i) * sf_block, the quantized value divided by input_scale (the
 * caller multiplies the dot product by input_scale). Per block: sf =
 * e4m3(min(amax / 6 / input_scale, 448)); zero sf -> zero block; code = E2M1 RNE
 * saturating of x / (sf * input_scale). */
void fp4rt_nvfp4_act_quantize(const float *x, int k, float input_scale, float *out);
/* The activation tensor scale of a W4A4 layer with act_dynamic (--fp4-activations
 * on a layer without input_scale): amax(|x|) / (6 * 448) over the row (the IEEE
 * quotient amax / 2688), 1 for an all-zero row. Every backend computes exactly this. */
float fp4rt_nvfp4_act_row_scale(const float *x, int k);
/* FP8 W8A8 activation quantization: out[i] = e4m3_sat(x[i] / input_scale) as float. */
void fp4rt_fp8_act_quantize(const float *x, int k, float input_scale, float *out);

/* GDN state update for one value head over T tokens, recurrent (token by token)
 * or chunked (chunks of `chunk` tokens). q, k: [T] rows of dk (stride qk_stride),
 * v: [T] rows of dv (stride v_stride), beta, g: [T] (stride bg_stride); S: [dk, dv]
 * updated in place; o: [T] rows of dv (stride o_stride). ws: chunked workspace of
 * fp4rt_gdn_chunk_ws_floats(chunk, dk, dv) floats. */
void fp4rt_gdn_recurrent(int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                         const float *v, size_t v_stride, const float *beta, const float *g,
                         size_t bg_stride, float *S, float *o, size_t o_stride);
size_t fp4rt_gdn_chunk_ws_floats(int chunk, int dk, int dv);
void fp4rt_gdn_chunked(int T, int chunk, int dk, int dv, const float *q, const float *k,
                       size_t qk_stride, const float *v, size_t v_stride, const float *beta,
                       const float *g, size_t bg_stride, float *S, float *o, size_t o_stride,
                       float *ws);

/* FP4RT_GDN_CHUNK: backend.h */

/* One output of a linear for one input row: the portable kernel, and the
 * vectorized one (x86-64 AVX2 + F16C; returns 0 where it does not apply, else
 * stores a result bit-identical to the portable kernel's). */
float fp4rt_cpu_row_dot(const fp4rt_linear *l, int n, const float *x);
int fp4rt_cpu_simd_available(void);
int fp4rt_cpu_row_dot_simd(const fp4rt_linear *l, int n, const float *x, float *out);

#endif
