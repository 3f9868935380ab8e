/* ModelOpt-exact absmax quantizers for NVFP4 and FP8 weights (see nvfp4.h). */
#include "runtime/tools/nvfp4.h"

#include "runtime/base/numfmt.h"

#include <math.h>

float fp4rt_absmax(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    return m;
}

float fp4rt_nvfp4_weight_tensor_scale(float amax) {
    /* ModelOpt: reduce_amax(W).float() / (6.0 * 448.0); 2688 is exact in fp32. */
    if (amax == 0.0f) return 1.0f;
    return amax / (FP4RT_E2M1_MAX * FP4RT_E4M3_MAX);
}

uint8_t fp4rt_nvfp4_block_scale(float amax_b, float s2) {
    /* ModelOpt: per_block_amax / (6.0 * weights_scaling_factor_2), both fp32. */
    float denom = FP4RT_E2M1_MAX * s2;
    float sb = amax_b / denom;
    if (sb == 0.0f) sb = 1.0f;
    const float lo = 0.001953125f; /* 2^-9, the smallest E4M3 subnormal */
    if (sb < lo) sb = lo;
    if (sb > FP4RT_E4M3_MAX) sb = FP4RT_E4M3_MAX;
    return fp4rt_f32_to_e4m3_sat(sb);
}

void fp4rt_nvfp4_quantize_row(const float *x, size_t k, float s2, uint8_t *packed,
                              uint8_t *scales) {
    fp4rt_numfmt_init();
    for (size_t b = 0; b < k / FP4RT_NVFP4_BLOCK; b++) {
        const float *xb = x + b * FP4RT_NVFP4_BLOCK;
        float amax_b = fp4rt_absmax(xb, FP4RT_NVFP4_BLOCK);
        uint8_t sc = fp4rt_nvfp4_block_scale(amax_b, s2);
        scales[b] = sc;
        float div = fp4rt_e4m3_to_f32(sc) * s2; /* fp32, as (per_block_scale.float() * s2) */
        uint8_t *pb = packed + b * (FP4RT_NVFP4_BLOCK / 2);
        for (int i = 0; i < FP4RT_NVFP4_BLOCK; i += 2) {
            /* An all-zero block has amax 0 and codes 0 whatever the divisor. */
            uint8_t c0 = amax_b == 0.0f ? 0 : fp4rt_f32_to_e2m1(xb[i] / div);
            uint8_t c1 = amax_b == 0.0f ? 0 : fp4rt_f32_to_e2m1(xb[i + 1] / div);
            pb[i / 2] = (uint8_t)(c0 | (c1 << 4));
        }
    }
}

void fp4rt_nvfp4_dequantize_row(const uint8_t *packed, const uint8_t *scales, size_t k, float s2,
                                float *out) {
    fp4rt_numfmt_init();
    for (size_t i = 0; i < k; i++) {
        uint8_t byte = packed[i / 2];
        uint8_t code = (i & 1) ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 15);
        out[i] = fp4rt_e2m1_to_f32(code) * fp4rt_e4m3_to_f32(scales[i / FP4RT_NVFP4_BLOCK]) * s2;
    }
}

float fp4rt_fp8_weight_scale(float amax) {
    if (amax == 0.0f) return 1.0f;
    return amax / FP4RT_E4M3_MAX;
}

void fp4rt_fp8_quantize_row(const float *x, size_t k, float scale, uint8_t *out) {
    for (size_t i = 0; i < k; i++) out[i] = fp4rt_f32_to_e4m3_sat(x[i] / scale);
}
