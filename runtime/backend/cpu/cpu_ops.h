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
    int isa;   /* FP4RT_CPU_ISA_*: the best the CPU has, capped by FP4RT_CPU_ISA */
    int tiled; /* prefill linears on the tile kernels (FP4RT_CPU_LINEAR, default on) */
    /* BF16 linears of the default mode on AMX (fp4rt_cpu_linear_amx): the CPU
     * and OS run it, FP4RT_CPU_AMX is not 0, isa is AVX-512 and tiled is on */
    int amx;
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
fp4rt_status fp4rt_cpu_measure_arith_peak(void *ctx, int fused, double *flops_per_s, char *what,
                                          size_t n); /* cpu_peak.c */

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
/* The vision encoder's ops (cpu_vision_ops.c) */
fp4rt_status fp4rt_cpu_layernorm(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_bias(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_gelu(const cpu_step *s, const fp4rt_op *op);
fp4rt_status fp4rt_cpu_attention_full(const cpu_step *s, const fp4rt_op *op);

/* The greedy pick of n logits (cpu_argmax.c): the lowest id of the largest
 * value, ids whose valid byte is 0 (valid NULL: none) counting as -inf; -1 when
 * a valid logit is NaN (the engine then samples the row on the host). Exactly
 * the greedy sampler's strict-greater scan otherwise, on every instruction set
 * (isa: FP4RT_CPU_ISA_*, the context's). */
int32_t fp4rt_cpu_argmax_row(const float *l, int n, const uint8_t *valid, int isa);
/* backend.h argmax slot */
fp4rt_status fp4rt_cpu_argmax(void *ctx, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                              int32_t *out);
/* The step's picks after its ops ran (fp4rt_step.argmax_out, argmax_all,
 * logits_rows): the last row's, or every row's, into step->argmax_out. */
void fp4rt_cpu_step_picks(const cpu_step *s);

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
/* fp4rt_fp8_act_quantize on AVX2 (cpu_actq_x86.c), the same bits (NaN for
 * NaN); returns 0 (nothing written) where the CPU or build lacks AVX2. */
int fp4rt_fp8_act_quantize_simd(const float *x, int k, float input_scale, float *out);

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

/* Instruction sets of the CPU kernels, in increasing order. Every kernel of
 * every set computes the same bits in each mode (the numerics contract, rule 3). */
enum { FP4RT_CPU_ISA_C, FP4RT_CPU_ISA_AVX2, FP4RT_CPU_ISA_AVX512 };
/* The best set this CPU and build run (AVX2 counts with F16C and FMA, AVX-512 with
 * AVX-512F), not capped by the FP4RT_CPU_ISA knob; fp4rt_cpu_isa_name names one. */
int fp4rt_cpu_isa_supported(void);
const char *fp4rt_cpu_isa_name(int isa);

/* The numerics modes of the linear kernels (docs/NUMERICS.md, "Modes";
 * fp4rt_step.relaxed). Exact (relaxed 0): each chain step of the contract is
 * acc = acc + w * x, the product and the sum each rounded to FP32. Relaxed
 * (1): the same chains, elements, order and reduce16 tree, but each chain step
 * (and each step of the scalar tail k >= K & ~15) is one fused multiply-add,
 * acc = fma(w, x, acc), rounded once (fmaf, vfmadd). FMA is correctly rounded,
 * so every path and instruction set gives the relaxed mode the same bits too.
 * Where every product w * x is exact in FP32 (FP8 W8A8 and NVFP4 W4A4: both
 * factors have at most 6 significant bits) the two modes give the same bits. */
#define FP4RT_CPU_CHAIN(acc, w, x, relaxed) ((relaxed) ? fmaf((w), (x), (acc)) : (acc) + (w) * (x))

/* One output of a linear for one input row in the given mode: the portable
 * kernel, and the vectorized one (x86-64 AVX2 + F16C + FMA; returns 0 where it
 * does not apply, else stores a result bit-identical to the portable kernel's). */
float fp4rt_cpu_row_dot(const fp4rt_linear *l, int n, const float *x, int relaxed);
/* 1 when the CPU and build run AVX2 with F16C and FMA (the SIMD kernels' floor) */
int fp4rt_cpu_simd_available(void);
int fp4rt_cpu_row_dot_simd(const fp4rt_linear *l, int n, const float *x, int relaxed, float *out);

/* y[i] = fp4rt_silu(x[i]) * z[i] for i < n on AVX2 (cpu_silu_x86.c): the
 * scalar's bits (NaN stays NaN); returns 0 (nothing written) without AVX2. */
int fp4rt_cpu_swiglu_row_simd(const float *x, const float *z, float *y, int n);
/* y[i] = fp4rt_cexp(x[i]) for i < n on AVX2 (cpu_silu_x86.c): the scalar's bits;
 * returns 0 (nothing written) without AVX2. */
int fp4rt_cpu_cexp_row_simd(const float *x, float *y, int n);
/* y[i] = fp4rt_csilu(x[i]), and y[i] = fp4rt_csigmoid(x[i]) = 1 / (1 + cexp(-x[i])),
 * for i < n on AVX2 (cpu_silu_x86.c): the scalar's bits (NaN stays NaN); return
 * 0 (nothing written) without AVX2. */
/* Group width up to which the gated norms compute their SiLU / sigmoid row
 * ahead (on the stack) with the two rows below. */
#define FP4RT_CPU_GATE_ROW_MAX 1024
int fp4rt_cpu_silu_row_simd(const float *x, float *y, int n);
int fp4rt_cpu_sigmoid_row_simd(const float *x, float *y, int n);

/* Row n of a linear's weight decoded to FP32 (unscaled by the tensor scale),
 * w[0 .. n_in): the portable decoder, and the AVX2 + F16C one (returns 0
 * where it does not apply: no AVX2, n_in not a multiple of 16, F16 / F32;
 * else the same values, up to the sign of zero weights, which no sum of the
 * contract can tell apart: an accumulator that starts at +0 never holds -0). */
void fp4rt_cpu_decode_row(const fp4rt_linear *l, int n, float *w);
int fp4rt_cpu_decode_row_simd(const fp4rt_linear *l, int n, float *w);

/* Tile kernels of the prefill linear (cpu_linear_tile.c). A panel is
 * FP4RT_TILE_ROWS decoded weight rows of K floats, row r at w + r * K. A tile
 * kernel advances, for r < FP4RT_TILE_ROWS and t < T (1 <= T <= t_max), the 16
 * chains of the contract's dot product of row r and activation row x[t],
 * acc[(r * T + t) * 16 + j], over the elements k0 <= k < k1 (multiples of 16):
 * chain j starts from its value in acc (cont) or from +0 (!cont) and adds
 * w[r][k] * x[t][k] for k = k0 + j, k0 + j + 16, ... < k1 in that order, in the
 * kernel's mode: every product and sum rounded to FP32 (exact), or one FMA per
 * step (relaxed; FP4RT_CPU_CHAIN). Calls over consecutive ranges
 * 0 = k0 < k1 < ... < K16 = K & ~15 thus give the chains of one pass over K16;
 * the caller reduces them (reduce16) and adds the tail k >= K16, as the one-row
 * kernels do. */
#define FP4RT_TILE_ROWS 4
#define FP4RT_TILE_TOKENS_MAX 8
typedef void (*fp4rt_cpu_tile_fn)(const float *w, int K, int k0, int k1, const float *const *x, int T, float *acc,
                                  int cont);
/* sums[i] = the contract's reduction (reduce16) of the 16 chains at
 * chains + 16 i, for i < n: a_j = c_j + c_{j+8}, then
 * ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), in registers. */
typedef void (*fp4rt_cpu_reduce_fn)(const float *chains, int n, float *sums);
typedef struct fp4rt_cpu_tile_kernel {
    fp4rt_cpu_tile_fn fn;         /* NULL: not available on this CPU / build */
    int t_max;                    /* tokens per call, <= FP4RT_TILE_TOKENS_MAX */
    fp4rt_cpu_reduce_fn reduce;   /* the same ISA's reduction (set where fn is) */
} fp4rt_cpu_tile_kernel;
/* The tile kernel of an instruction set and mode (relaxed 0 / 1); fn NULL for
 * FP4RT_CPU_ISA_C and where the CPU lacks the set (the caller then takes the
 * per-row path). */
fp4rt_cpu_tile_kernel fp4rt_cpu_tile_kernel_for(int isa, int relaxed);
/* The x86 kernels (cpu_linear_tile_x86.c): AVX2 or AVX-512; fn NULL elsewhere. */
fp4rt_cpu_tile_kernel fp4rt_cpu_tile_kernel_x86(int isa, int relaxed);

/* One linear over several input rows, as cpu_linear.c sets it up. */
typedef struct cpu_lin_job {
    const cpu_step *s;
    const fp4rt_linear *l;
    const float *x; /* row 0 of the (maybe quantized) input */
    size_t x_stride;
    int n_rows; /* input rows */
    int n_out;  /* outputs computed: l->n_out, or fewer for logits_rows */
    float *y;   /* output row for input row 0 */
    size_t y_stride;
    float post;
    const float *row_post; /* NULL, or post per input row (W4A4 with a per-row scale) */
    int relaxed;           /* the mode of every output (fp4rt_step.relaxed; FP4RT_CPU_CHAIN) */
} cpu_lin_job;
/* The small-step linear (cpu_linear_small_x86.c): 1 .. FP4RT_SMALL_TOKENS_MAX
 * input rows, the weights decoded in registers (no FP32 panel), 4 weight rows
 * x all the tokens in flight. fp4rt_cpu_linear_small_ok: 1 where it applies
 * (BF16, FP8 or NVFP4 weights, n_in a multiple of 16, isa AVX-512 and a CPU that
 * runs it), else 0. fp4rt_cpu_linear_small: the outputs of panels [p0, p1)
 * (rows [4 p0, min(4 p1, n_out))) for all input rows, each the bits of the
 * one-row kernel (fp4rt_cpu_row_dot, in j->relaxed's mode) times its post
 * scale; no workspace.
 * FP8: the input rows must be E4M3 values (as fp4rt_cpu_linear quantizes
 * them), which makes the kernel's scaled sums exact (cpu_linear_small_x86.c). */
#define FP4RT_SMALL_TOKENS_MAX 6
int fp4rt_cpu_linear_small_ok(const fp4rt_linear *l, int isa, int n_rows);
void fp4rt_cpu_linear_small(const cpu_lin_job *j, long p0, long p1);
/* The small-step path's NVFP4 decoder: want 1 asks for the AVX512-VBMI one
 * (taken where the CPU has it), 0 for the AVX-512F one (the default where the
 * CPU lacks VBMI), -1 asks nothing; returns the one now in use (1: VBMI). Both
 * give the same bits (tests/backend/test_cpu_tile.c runs both). Process-wide;
 * not to be changed while a linear runs. */
int fp4rt_cpu_small_vbmi(int want);
/* The AMX path of BF16 linears in the default numerics mode
 * (cpu_linear_amx.c; docs/NUMERICS.md "Modes"). Each activation x splits into
 * three BF16 parts, hi = RNE(x), mid = RNE(x - hi), lo = RNE(x - hi - mid)
 * (fp4rt_cpu_amx_split; the differences are exact; subnormal values read as
 * zero; a finite x whose hi would round to inf takes the truncated hi; a
 * non-finite x takes mid = lo = 0, so inf and NaN propagate). Each output is
 * ((acc_hi + acc_mid) + acc_lo) times the post scale, acc_q one FP32
 * accumulator from +0 over the k blocks of 32 in order, adding per block the
 * tile product of the weights with part q (TDPBF16PS: BF16 pair products,
 * FP32 sums, subnormal inputs and outputs as zero). The bits of an
 * output depend only on its weight row and its own token's activations: not on
 * the number of input rows, the other rows or the thread count.
 * fp4rt_cpu_amx_available: 1 where the CPU has AMX-TILE, AMX-BF16 and
 * AVX512-BF16 and the OS grants the tile state (asked once per process).
 * fp4rt_cpu_amx_pack: the split of the job's input rows in the VNNI pair
 * layout into c->shared (fp4rt_cpu_amx_pack_floats(n_in, n_rows) floats),
 * parallel over rows on the pool. fp4rt_cpu_linear_amx: the outputs of row
 * tiles [p0, p1) (rows [16 p0, min(16 p1, n_out))) for all input rows, from
 * the pack; ws: fp4rt_cpu_amx_ws_floats() floats (64-byte aligned). */
int fp4rt_cpu_amx_available(void);
void fp4rt_cpu_amx_split(const float *x, int n, uint16_t *hi, uint16_t *mid, uint16_t *lo);
size_t fp4rt_cpu_amx_pack_floats(int K, int T);
void fp4rt_cpu_amx_pack(const cpu_lin_job *j);
size_t fp4rt_cpu_amx_ws_floats(void);
void fp4rt_cpu_linear_amx(const cpu_lin_job *j, long p0, long p1, float *ws);
/* The arithmetic-peak probe's AMX loop (cpu_peak.c): iters rounds of 10
 * tile products (each: 16 rows x 5 tokens x 3 parts x 32 k, i.e. 16 x 5 x 32
 * multiply-adds of the linear), on the calling thread; returns a value of
 * the sums (to be used). Needs fp4rt_cpu_amx_available(). */
#define FP4RT_AMX_PEAK_FLOPS_PER_ITER (10.0 * 16 * 5 * 32 * 2)
float fp4rt_cpu_amx_peak(long iters);
/* Floats of per-thread workspace the tiled path needs for K inputs. */
size_t fp4rt_cpu_tile_ws_floats(int K);
/* Outputs of panels [p0, p1) (rows [4 p0, min(4 p1, n_out))) for all input
 * rows, on the tile kernel of `isa` (which must have one: isa >= AVX2, run by
 * the CPU); ws: fp4rt_cpu_tile_ws_floats(K) floats. Each output gets the bits
 * of the one-row kernel (fp4rt_cpu_row_dot, in j->relaxed's mode) times its post scale. */
void fp4rt_cpu_linear_tiles(const cpu_lin_job *j, int isa, long p0, long p1, float *ws);

/* The GDN mixer's prefill kernels on an instruction set (cpu_gdn_x86.c).
 * fp4rt_gdn_chunked_isa: fp4rt_gdn_chunked with the same arguments and the same
 * bits, on the AVX-512 or AVX2 kernels (`isa`, capped at what the CPU runs; the
 * portable form for FP4RT_CPU_ISA_C). ws: fp4rt_gdn_chunk_ws_floats(chunk, dk,
 * dv) floats, which covers fp4rt_gdn_chunk_ws_floats_simd (the vector kernels'
 * part). fp4rt_conv1d_silu_channels: the portable causal conv1d + SiLU (docs/
 * MODEL.md §2.4) of channels [c0, c1): x, y point at channel 0 of row 0 (rows
 * x_stride, y_stride floats apart), w [C][K], state [C][K - 1] (oldest first,
 * updated), win K - 1 + T floats of workspace; ckpt (NULL: none) gets the state
 * before row t at ckpt + t * ckpt_slot. fp4rt_conv1d_silu_simd: the same (no
 * checkpoints) for the channels c0 .. c0 + n - 1, n the most channels in
 * whole vectors (16 lanes AVX-512, 8 AVX2), with the same bits; returns n (0
 * for FP4RT_CPU_ISA_C, K > 16 or a CPU without the set); the caller does the
 * rest. ws: (2 K - 1) (c1 - c0) floats. */
size_t fp4rt_gdn_chunk_ws_floats_simd(int chunk, int dk, int dv);
void fp4rt_gdn_chunked_isa(int isa, int T, int chunk, int dk, int dv, const float *q, const float *k,
                           size_t qk_stride, const float *v, size_t v_stride, const float *beta, const float *g,
                           size_t bg_stride, float *S, float *o, size_t o_stride, float *ws);
void fp4rt_conv1d_silu_channels(int T, int K, const float *x, size_t x_stride, const float *w, float *state,
                                float *y, size_t y_stride, long c0, long c1, float *win, float *ckpt,
                                size_t ckpt_slot);
/* fp4rt_gdn_recurrent on the AVX-512 (dv a multiple of 64) or AVX2 (of 16)
 * kernel, isa capped at what the CPU runs: the same bits (each state element
 * read and written once per token instead of four passes); returns 0 (nothing
 * done) where neither applies. */
int fp4rt_gdn_recurrent_simd(int isa, int T, int dk, int dv, const float *q, const float *k, size_t qk_stride,
                             const float *v, size_t v_stride, const float *beta, const float *g, size_t bg_stride,
                             float *S, float *o, size_t o_stride);
long fp4rt_conv1d_silu_simd(int isa, int T, int K, const float *x, size_t x_stride, const float *w, float *state,
                            float *y, size_t y_stride, long c0, long c1, float *ws);

#endif
