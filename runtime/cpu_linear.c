/* CPU linear layer: y[t, n] = post_scale * sum_k x'[t, k] * w'[n, k], where w' is the
 * weight row decoded to FP32 (BF16/F16/F32 values; E4M3 values for FP8; E2M1
 * code * E4M3 block scale for NVFP4 — exact in FP32) and x' is the activation
 * row, quantized first when the format says so (FP8 W8A8: e4m3(x / input_scale);
 * NVFP4 W4A4: per-16 NVFP4 divided by input_scale). post_scale is 1, or
 * input_scale * weight_scale (FP8), weight_scale_2 (W4A16), input_scale *
 * weight_scale_2 (W4A4): the tensor scales are applied after the sum.
 *
 * Parallel over output rows; each row is decoded once per step and reused for
 * all the step's tokens. */
#include "cpu_ops.h"

#include "common.h"
#include "numfmt.h"

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

/* Decodes row n of the weight into w[K] (FP32, unscaled by the tensor scale). */
static void decode_row(const fp4rt_linear *l, int n, float *w) {
    int K = l->n_in;
    switch (l->fmt) {
    case FP4RT_W_BF16: {
        const unsigned char *r = (const unsigned char *)l->weight + (size_t)n * K * 2;
        for (int k = 0; k < K; k++) {
            uint16_t h;
            memcpy(&h, r + 2 * (size_t)k, 2);
            w[k] = fp4rt_bf16_to_f32(h);
        }
        break;
    }
    case FP4RT_W_F16: {
        const unsigned char *r = (const unsigned char *)l->weight + (size_t)n * K * 2;
        for (int k = 0; k < K; k++) {
            uint16_t h;
            memcpy(&h, r + 2 * (size_t)k, 2);
            w[k] = fp4rt_f16_to_f32(h);
        }
        break;
    }
    case FP4RT_W_F32:
        memcpy(w, (const unsigned char *)l->weight + (size_t)n * K * 4, (size_t)K * 4);
        break;
    case FP4RT_W_FP8: {
        const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * K;
        for (int k = 0; k < K; k++) w[k] = fp4rt_e4m3_to_f32(r[k]);
        break;
    }
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4: {
        const uint8_t *r = (const uint8_t *)l->weight + (size_t)n * (K / 2);
        const uint8_t *sb = l->block_scale + (size_t)n * (K / 16);
        for (int b = 0; b < K / 16; b++) {
            float s = fp4rt_e4m3_to_f32(sb[b]);
            for (int i = 0; i < 8; i++) {
                uint8_t byte = r[b * 8 + i];
                w[b * 16 + 2 * i] = fp4rt_e2m1_to_f32(byte & 15) * s;
                w[b * 16 + 2 * i + 1] = fp4rt_e2m1_to_f32(byte >> 4) * s;
            }
        }
        break;
    }
    default:
        break;
    }
}

/* Dot product with 8 fixed partial sums (deterministic, vectorizable). */
static float dot(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[k + j] * b[k + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

typedef struct lin_job {
    const cpu_step *s;
    const fp4rt_linear *l;
    const float *x;   /* row 0 of the (maybe quantized) input */
    size_t x_stride;
    int t0, n_rows;   /* input rows t0 .. t0 + n_rows - 1 */
    float *y;         /* output row for input row t0 */
    size_t y_stride;
    float post;
} lin_job;

static void lin_range(void *arg, long n0, long n1, int thread) {
    const lin_job *j = arg;
    float *w = j->s->ctx->thread_ws[thread];
    for (long n = n0; n < n1; n++) {
        decode_row(j->l, (int)n, w);
        for (int r = 0; r < j->n_rows; r++)
            j->y[(size_t)r * j->y_stride + n] =
                dot(w, j->x + (size_t)r * j->x_stride, j->l->n_in) * j->post;
    }
}

fp4rt_status fp4rt_cpu_linear(const cpu_step *s, const fp4rt_op *op) {
    const fp4rt_linear *l = op->lin;
    int T = s->step->n_tokens, K = l->n_in;
    if (op->x.cols != K || op->y.cols != l->n_out)
        return fp4rt_fail(FP4RT_INTERNAL, "linear %s: view %dx%d for a [%d, %d] weight", l->module,
                          op->x.cols, op->y.cols, l->n_out, K);
    int t0 = 0;
    if (op->is_logits && !s->step->all_logits) t0 = T - 1;
    int rows = T - t0;
    fp4rt_status st = fp4rt_cpu_reserve(s->ctx, (size_t)rows * K, (size_t)K);
    if (st) return st;
    lin_job j = {.s = s, .l = l, .t0 = t0, .n_rows = rows, .post = 1.0f};
    j.x = cpu_row(s, op->x, t0);
    j.x_stride = (size_t)s->p->arena_width;
    if (l->fmt == FP4RT_W_FP8 || l->fmt == FP4RT_W_NVFP4_W4A4) {
        for (int r = 0; r < rows; r++) {
            const float *x = cpu_row(s, op->x, t0 + r);
            float *q = s->ctx->shared + (size_t)r * K;
            if (l->fmt == FP4RT_W_FP8)
                fp4rt_fp8_act_quantize(x, K, l->input_scale, q);
            else
                fp4rt_nvfp4_act_quantize(x, K, l->input_scale, q);
        }
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
    fp4rt_pool_for(s->ctx->pool, l->n_out, 16, lin_range, &j);
    return FP4RT_OK;
}
