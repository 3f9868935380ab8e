/* CPU linear layer: y[t, n] = post_scale * sum_k x'[t, k] * w'[n, k], where w' is the
 * weight row decoded to FP32 (BF16/F16/F32 values; E4M3 values for FP8; E2M1
 * code * E4M3 block scale for NVFP4 — exact in FP32) and x' is the activation
 * row, quantized first when the format says so (FP8 W8A8: e4m3(x / input_scale);
 * NVFP4 W4A4: per-16 NVFP4 divided by the activation tensor scale s, which is
 * input_scale, or per row amax / (6 * 448) for act_dynamic layers). post_scale is 1,
 * or input_scale * weight_scale (FP8), weight_scale_2 (W4A16), s * weight_scale_2
 * (W4A4): the tensor scales are applied after the sum.
 *
 * Parallel over output rows. Up to FP4RT_SMALL_TOKENS_MAX tokens with BF16,
 * FP8 or NVFP4 weights on AVX-512 (a decode step, a verify step's rows, the MTP
 * head): the small-step path (cpu_linear_small_x86.c) decodes the weights in
 * registers, 4 rows x all the tokens at once, prefetching ahead. Otherwise one
 * token: each row is dotted with the input without materializing it
 * (fp4rt_cpu_row_dot, or its AVX2 twin). More tokens: the tiled path
 * (cpu_linear_tile.c) decodes panels of rows once per block of tokens and runs
 * a register-blocked kernel over rows x tokens; FP4RT_CPU_LINEAR=rows keeps the
 * per-row path (decode a row, one dot per token) and turns off the small-step
 * path. Every path gives each output the same bits, in each numerics mode
 * (cpu_lin_job.relaxed: FP4RT_CPU_CHAIN in cpu_ops.h). The exception: BF16
 * weights in the default mode on a CPU with AMX (cpu_ctx.amx) run every step,
 * of any number of rows, on the tile unit (cpu_linear_amx.c), whose sums are
 * its own (the three-part split: fp4rt_cpu_linear_amx in cpu_ops.h); still one
 * path per linear, so the same bits for a token in every step and on every
 * thread count. */
#include "runtime/backend/cpu/cpu_ops.h"

#include "runtime/base/common.h"
#include "runtime/base/numfmt.h"

#include <math.h>
#include <string.h>

void fp4rt_fp8_act_quantize(const float *x, int k, float input_scale, float *out) {
    for (int i = 0; i < k; i++) out[i] = fp4rt_round_e4m3(x[i] / input_scale);
}

void fp4rt_nvfp4_act_quantize(const float *x, int k, float input_scale, float *out) {
    for (int b = 0; b < k; b += 16) {
        float amax = 0;
        for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(x[b + i]));
        float sf = fp4rt_round_e4m3(fminf(amax / 6.0f / input_scale, FP4RT_E4M3_MAX));
        if (sf == 0.0f) {
            memset(out + b, 0, 16 * sizeof(float));
            continue;
        }
        float div = sf * input_scale;
        for (int i = 0; i < 16; i++) out[b + i] = fp4rt_e2m1_to_f32(fp4rt_f32_to_e2m1(x[b + i] / div)) * sf;
    }
}

float fp4rt_nvfp4_act_row_scale(const float *x, int k) {
    float amax = 0;
    for (int i = 0; i < k; i++) amax = fmaxf(amax, fabsf(x[i]));
    return amax > 0.0f ? amax / 2688.0f : 1.0f;
}

/* Hot loops are compiled twice (x86-64-v3: AVX2 + FMA, and baseline x86-64)
 * and picked at load time; the arithmetic is the same in both (no FMA
 * contraction: -ffp-contract=off; the relaxed mode's fmaf is one vfmadd on
 * v3, a libm call on the baseline, correctly rounded in both). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FP4RT_NO_MULTIVERSION)
#define FP4RT_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FP4RT_HOT
#endif
#define INLINE static inline __attribute__((always_inline))
/* Unrolls the 16-chain loops: at -O3 GCC 12 otherwise vectorizes the fmaf
 * loop as a mix of YMM, XMM and scalar FMAs (1.5x the CPU time of the exact
 * loop); unrolled it is two YMM FMAs per 16 elements. */
#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL16 _Pragma("GCC unroll 16")
#else
#define UNROLL16
#endif

#define LANES 16

/* Decodes weights [k0, k0 + 16) of row n into w (FP32, unscaled by the tensor
 * scale). k0 is a multiple of 16 and k0 + 16 <= K. */
static inline void decode16(const fp4rt_linear *l, int n, int k0, float *w) {
    size_t K = (size_t)l->n_in;
    switch (l->fmt) {
    case FP4RT_W_BF16: {
        const unsigned char *r = (const unsigned char *)l->weight + ((size_t)n * K + k0) * 2;
        uint16_t h[LANES];
        memcpy(h, r, sizeof h);
        for (int j = 0; j < LANES; j++) {
            uint32_t u = (uint32_t)h[j] << 16;
            memcpy(&w[j], &u, 4);
        }
        break;
    }
    case FP4RT_W_F16: {
        const unsigned char *r = (const unsigned char *)l->weight + ((size_t)n * K + k0) * 2;
        uint16_t h[LANES];
        memcpy(h, r, sizeof h);
        for (int j = 0; j < LANES; j++) w[j] = fp4rt_f16_to_f32(h[j]);
        break;
    }
    case FP4RT_W_F32:
        memcpy(w, (const unsigned char *)l->weight + ((size_t)n * K + k0) * 4, LANES * 4);
        break;
    case FP4RT_W_FP8: {
        const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * K + k0;
        for (int j = 0; j < LANES; j++) w[j] = fp4rt_e4m3_table[r[j]];
        break;
    }
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4: {
        const uint8_t *r = (const uint8_t *)l->weight + ((size_t)n * K + k0) / 2;
        float s = fp4rt_e4m3_table[l->block_scale[((size_t)n * K + k0) / 16]];
        for (int j = 0; j < LANES / 2; j++) {
            w[2 * j] = fp4rt_e2m1_table[r[j] & 15] * s; /* exact: E2M1 x E4M3 fits FP32 */
            w[2 * j + 1] = fp4rt_e2m1_table[r[j] >> 4] * s;
        }
        break;
    }
    default:
        memset(w, 0, LANES * sizeof(float));
        break;
    }
}

/* Scalar decode of one weight (tails of rows whose K is not a multiple of 16). */
static float decode1(const fp4rt_linear *l, int n, int k) {
    size_t i = (size_t)n * l->n_in + k;
    uint16_t h;
    float f;
    switch (l->fmt) {
    case FP4RT_W_BF16:
        memcpy(&h, (const unsigned char *)l->weight + 2 * i, 2);
        return fp4rt_bf16_to_f32(h);
    case FP4RT_W_F16:
        memcpy(&h, (const unsigned char *)l->weight + 2 * i, 2);
        return fp4rt_f16_to_f32(h);
    case FP4RT_W_F32:
        memcpy(&f, (const unsigned char *)l->weight + 4 * i, 4);
        return f;
    case FP4RT_W_FP8: return fp4rt_e4m3_table[((const uint8_t *)l->weight)[i]];
    default: return 0; /* NVFP4 rows are multiples of 16 */
    }
}

/* The fixed reduction of the 16 lanes (same for every path). */
static inline float reduce16(const float *acc) {
    float a[8];
    for (int j = 0; j < 8; j++) a[j] = acc[j] + acc[j + 8];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

void fp4rt_cpu_decode_row(const fp4rt_linear *l, int n, float *w) {
    int K = l->n_in, k = 0;
    for (; k + LANES <= K; k += LANES) decode16(l, n, k, w + k);
    for (; k < K; k++) w[k] = decode1(l, n, k);
}

/* sum_k w[k] x[k] in 16 lanes, then the tail, in the mode `relaxed` (a
 * constant after inlining: FP4RT_CPU_CHAIN). */
INLINE float dot_m(const float *w, const float *x, int n, int relaxed) {
    float acc[LANES] = {0};
    int k = 0;
    for (; k + LANES <= n; k += LANES) {
        const float *wk = w + k, *xk = x + k;
        UNROLL16 for (int j = 0; j < LANES; j++) acc[j] = FP4RT_CPU_CHAIN(acc[j], wk[j], xk[j], relaxed);
    }
    float s = reduce16(acc);
    for (; k < n; k++) s = FP4RT_CPU_CHAIN(s, w[k], x[k], relaxed);
    return s;
}
FP4RT_HOT static float dot_exact(const float *w, const float *x, int n) { return dot_m(w, x, n, 0); }
FP4RT_HOT static float dot_fma(const float *w, const float *x, int n) { return dot_m(w, x, n, 1); }
static float dot(const float *w, const float *x, int n, int relaxed) {
    return relaxed ? dot_fma(w, x, n) : dot_exact(w, x, n);
}

/* Row n of the weight dotted with x without materializing the row (one-token
 * path). Bit-identical to dot(decode_row(n), x): same products, same lanes,
 * same mode. One loop per format so the format switch stays out of the inner
 * loop; each is compiled once per mode (ROW_DOT_MODES). */
#define ROW_DOT_BODY(DECODE)                                                                       \
    float acc[LANES] = {0}, w[LANES];                                                              \
    int K = l->n_in, k = 0;                                                                        \
    for (; k + LANES <= K; k += LANES) {                                                           \
        DECODE;                                                                                    \
        const float *xk = x + k;                                                                   \
        UNROLL16 for (int j = 0; j < LANES; j++) acc[j] = FP4RT_CPU_CHAIN(acc[j], w[j], xk[j], relaxed); \
    }                                                                                              \
    float s = reduce16(acc);                                                                       \
    for (; k < K; k++) s = FP4RT_CPU_CHAIN(s, decode1(l, n, k), x[k], relaxed);                    \
    return s;

#define ROW_DOT_MODES(NAME)                                                                        \
    FP4RT_HOT static float NAME##_exact(const fp4rt_linear *l, int n, const float *x) {            \
        return NAME(l, n, x, 0);                                                                   \
    }                                                                                              \
    FP4RT_HOT static float NAME##_fma(const fp4rt_linear *l, int n, const float *x) {              \
        return NAME(l, n, x, 1);                                                                   \
    }

INLINE float row_dot_bf16(const fp4rt_linear *l, int n, const float *x, int relaxed) {
    const unsigned char *r = (const unsigned char *)l->weight + (size_t)n * l->n_in * 2;
    ROW_DOT_BODY({
        uint16_t h[LANES];
        memcpy(h, r + 2 * (size_t)k, sizeof h);
        for (int j = 0; j < LANES; j++) {
            uint32_t u = (uint32_t)h[j] << 16;
            memcpy(&w[j], &u, 4);
        }
    })
}

INLINE float row_dot_fp8(const fp4rt_linear *l, int n, const float *x, int relaxed) {
    const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * l->n_in;
    ROW_DOT_BODY({
        for (int j = 0; j < LANES; j++) w[j] = fp4rt_e4m3_table[r[k + j]];
    })
}

INLINE float row_dot_nvfp4(const fp4rt_linear *l, int n, const float *x, int relaxed) {
    const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * (l->n_in / 2);
    const uint8_t *sb = l->block_scale + (size_t)n * (l->n_in / 16);
    ROW_DOT_BODY({
        float sc = fp4rt_e4m3_table[sb[k / 16]];
        for (int j = 0; j < LANES / 2; j++) {
            w[2 * j] = fp4rt_e2m1_table[r[k / 2 + j] & 15] * sc;
            w[2 * j + 1] = fp4rt_e2m1_table[r[k / 2 + j] >> 4] * sc;
        }
    })
}

INLINE float row_dot_any(const fp4rt_linear *l, int n, const float *x, int relaxed) {
    ROW_DOT_BODY(decode16(l, n, k, w))
}

ROW_DOT_MODES(row_dot_bf16)
ROW_DOT_MODES(row_dot_fp8)
ROW_DOT_MODES(row_dot_nvfp4)
ROW_DOT_MODES(row_dot_any)

float fp4rt_cpu_row_dot(const fp4rt_linear *l, int n, const float *x, int relaxed) {
    switch (l->fmt) {
    case FP4RT_W_BF16: return relaxed ? row_dot_bf16_fma(l, n, x) : row_dot_bf16_exact(l, n, x);
    case FP4RT_W_FP8: return relaxed ? row_dot_fp8_fma(l, n, x) : row_dot_fp8_exact(l, n, x);
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4: return relaxed ? row_dot_nvfp4_fma(l, n, x) : row_dot_nvfp4_exact(l, n, x);
    default: return relaxed ? row_dot_any_fma(l, n, x) : row_dot_any_exact(l, n, x);
    }
}

static void lin_range(void *arg, long n0, long n1, int thread) {
    const cpu_lin_job *j = arg;
    float *w = j->s->ctx->thread_ws[thread];
    if (j->n_rows == 1) {
        float v;
        int simd = j->s->ctx->isa >= FP4RT_CPU_ISA_AVX2;
        for (long n = n0; n < n1; n++) {
            if (!simd || !fp4rt_cpu_row_dot_simd(j->l, (int)n, j->x, j->relaxed, &v))
                v = fp4rt_cpu_row_dot(j->l, (int)n, j->x, j->relaxed);
            j->y[n] = v * (j->row_post ? j->row_post[0] : j->post);
        }
        return;
    }
    for (long n = n0; n < n1; n++) {
        fp4rt_cpu_decode_row(j->l, (int)n, w);
        for (int r = 0; r < j->n_rows; r++)
            j->y[(size_t)r * j->y_stride + n] = dot(w, j->x + (size_t)r * j->x_stride, j->l->n_in, j->relaxed) *
                                                (j->row_post ? j->row_post[r] : j->post);
    }
}

/* Panels [p0, p1) of 4 output rows for all the input rows, weights decoded in registers. */
static void small_range(void *arg, long p0, long p1, int thread) {
    (void)thread;
    fp4rt_cpu_linear_small(arg, p0, p1);
}

/* Panels [p0, p1) of FP4RT_TILE_ROWS output rows for all the input rows. */
static void tile_range(void *arg, long p0, long p1, int thread) {
    const cpu_lin_job *j = arg;
    fp4rt_cpu_linear_tiles(j, j->s->ctx->isa, p0, p1, j->s->ctx->thread_ws[thread]);
}

/* Row tiles [p0, p1) of 16 output rows on AMX, from the pack in the shared workspace. */
static void amx_range(void *arg, long p0, long p1, int thread) {
    const cpu_lin_job *j = arg;
    fp4rt_cpu_linear_amx(j, p0, p1, j->s->ctx->thread_ws[thread]);
}

fp4rt_status fp4rt_cpu_linear(const cpu_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    int T = s->step->n_tokens, K = l->n_in;
    if (op->x.cols != K || op->y.cols != l->n_out)
        return fp4rt_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module,
                          op->x.cols, op->y.cols, l->n_out, K);
    if (op->is_logits && s->step->no_logits) return FP4RT_OK;
    int t0 = 0;
    if (op->is_logits && !s->step->all_logits) t0 = T - 1;
    int rows = T - t0, tiled = rows > 1 && s->ctx->tiled && s->ctx->isa >= FP4RT_CPU_ISA_AVX2;
    int small = s->ctx->tiled && fp4rt_cpu_linear_small_ok(l, s->ctx->isa, rows);
    /* BF16 in the default mode on AMX: chosen by the format, the mode and the
     * machine only, never by the number of rows, so an output has the same
     * bits in decode, verify and prefill steps */
    int amx = l->fmt == FP4RT_W_BF16 && s->step->relaxed && s->ctx->amx && s->ctx->tiled &&
              s->ctx->isa >= FP4RT_CPU_ISA_AVX512;
    /* shared: the quantized rows, then the per-row post scales (AMX: the pack) */
    size_t shared = amx ? fp4rt_cpu_amx_pack_floats(K, rows) : (size_t)rows * K + (size_t)rows;
    size_t per_thread = amx ? fp4rt_cpu_amx_ws_floats() : tiled ? fp4rt_cpu_tile_ws_floats(K) : (size_t)K;
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, shared, per_thread);
    if (st) return st;
    /* FP8 W8A8 and NVFP4 W4A4 run the FMA kernels in both modes: their products
     * are exact in FP32 (FP4RT_CPU_CHAIN), so a fused step is the exact mode's
     * multiply and add, bit for bit (test_cpu_tile holds them to a reference of
     * separate operations), and one instruction instead of two. */
    int fused = s->step->relaxed || l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4;
    cpu_lin_job j = {.s = s, .l = l, .n_rows = rows, .n_out = l->n_out, .post = 1.0f, .relaxed = fused};
    if (op->is_logits && s->step->logits_rows) j.n_out = s->step->logits_rows; /* the draft vocabulary */
    j.x = cpu_row(s, op->x, t0);
    j.x_stride = (size_t)s->p->arena_width;
    if (s->ctx->observer) s->ctx->observer(s->ctx->observer_user, l, j.x, j.x_stride, rows);
    if (l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4) {
        for (int r = 0; r < rows; r++) {
            const float *x = cpu_row(s, op->x, t0 + r);
            float *q = s->ctx->shared + (size_t)r * K;
            if (l->fmt == FP4RT_W_FP8) {
                if (s->ctx->isa < FP4RT_CPU_ISA_AVX2 || !fp4rt_fp8_act_quantize_simd(x, K, l->input_scale, q))
                    fp4rt_fp8_act_quantize(x, K, l->input_scale, q);
            } else if (l->act_dynamic) {
                float rs = fp4rt_nvfp4_act_row_scale(x, K);
                fp4rt_nvfp4_act_quantize(x, K, rs, q);
                s->ctx->shared[(size_t)rows * K + r] = rs * l->weight_scale;
            } else {
                fp4rt_nvfp4_act_quantize(x, K, l->input_scale, q);
            }
        }
        if (l->act_dynamic && l->fmt == FP4RT_W_NVFP4_W4A4) j.row_post = s->ctx->shared + (size_t)rows * K;
        j.x = s->ctx->shared;
        j.x_stride = (size_t)K;
    }
    switch (l->fmt) {
    case FP4RT_W_FP8:
    case FP4RT_W_NVFP4_W4A4: j.post = l->input_scale * l->weight_scale; break;
    case FP4RT_W_NVFP4: j.post = l->weight_scale; break;
    default: break;
    }
    if (op->is_logits) {
        j.y = s->logits; /* row 0 holds input row t0 */
        j.y_stride = (size_t)s->p->weights->cfg.vocab;
    } else {
        j.y = cpu_row(s, op->y, t0);
        j.y_stride = (size_t)s->p->arena_width;
    }
    if (amx) {
        fp4rt_cpu_amx_pack(&j);
        fp4rt_pool_for(s->ctx->pool, (j.n_out + 15) / 16, 1, amx_range, &j);
    } else if (small)
        fp4rt_pool_for(s->ctx->pool, (j.n_out + 3) / 4, 4, small_range, &j);
    else if (tiled)
        fp4rt_pool_for(s->ctx->pool, (j.n_out + FP4RT_TILE_ROWS - 1) / FP4RT_TILE_ROWS, 4, tile_range, &j);
    else
        fp4rt_pool_for(s->ctx->pool, j.n_out, 16, lin_range, &j);
    return FP4RT_OK;
}
