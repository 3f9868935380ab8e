/* Weight quantizers for the ModelOpt formats: NVFP4 (E2M1 codes, one E4M3 scale
 * per 16 elements along K, one FP32 tensor scale) and FP8 E4M3 per tensor.
 *
 * The absmax ("max calibration") NVFP4 quantizer reproduces ModelOpt's
 * NVFP4QTensor exactly (docs/NVFP4.md §1.3): every step is the same fp32 operation in
 * the same order, so the bytes match what ModelOpt would export for the same
 * weights. Rows are independent: callers may quantize rows in any order or in
 * parallel. Inputs must be finite (the quantizer checks that before calling). */
#ifndef FP4RT_NVFP4_H
#define FP4RT_NVFP4_H

#include <stddef.h>
#include <stdint.h>

#define FP4RT_NVFP4_BLOCK 16

/* Largest |x| over n floats (0 for n == 0). */
float fp4rt_absmax(const float *x, size_t n);

/* NVFP4 weight_scale_2 for a tensor (or fused group) whose largest |W| is amax:
 * amax / (6 * 448) in fp32. An all-zero tensor (amax == 0) gets 1.0 so that no
 * later division is by zero; its codes are all zero either way. */
float fp4rt_nvfp4_weight_tensor_scale(float amax);

/* E4M3 block scale for a block with largest |x| amax_b under tensor scale s2:
 * amax_b / (6 * s2) in fp32; 0 -> 1.0 (all-zero block); clamped to [2^-9, 448];
 * rounded to E4M3 (RNE). Returns the E4M3 code. */
uint8_t fp4rt_nvfp4_block_scale(float amax_b, float s2);

/* Quantizes one row of k elements (k a multiple of 16) with tensor scale s2:
 * packed[k/2] gets the E2M1 codes (element 2i in the low nibble of byte i),
 * scales[k/16] the E4M3 block scales. Codes are E2M1 RNE (saturating at 6) of
 * x / (float(sb) * s2), with the divisor computed in fp32 first. */
void fp4rt_nvfp4_quantize_row(const float *x, size_t k, float s2, uint8_t *packed,
                              uint8_t *scales);

/* Dequantizes a row produced by fp4rt_nvfp4_quantize_row:
 * out[i] = e2m1(code i) * float(scales[i/16]) * s2 (products in fp32). */
void fp4rt_nvfp4_dequantize_row(const uint8_t *packed, const uint8_t *scales, size_t k, float s2,
                                float *out);

/* ---- better-than-absmax block scales (runtime/tools/quant_scale.c) ---------------
 *
 * Every strategy writes the standard format: E2M1 codes, E4M3 block scales and
 * one FP32 tensor scale s2, dequantized as e2m1 * float(sb) * s2. They differ in
 * the tensor scale and in how each block's E4M3 scale code is chosen; the codes
 * for a chosen scale are always E2M1 RNE (saturating) of x / (float(sb) * s2),
 * which is the nearest grid value, optimal per element for any error metric.
 *
 *   ABSMAX  ModelOpt (fp4rt_nvfp4_quantize_row above, bit-exact).
 *   4OVER6  Four Over Six (docs/NVFP4.md §2.2): s2 = amax / (6 * 256); per block the
 *           candidates s6 = e4m3(amax_b / (6 s2)) and s4 = e4m3(amax_b / (4 s2));
 *           4 is kept only if its error is strictly lower (ties go to 6).
 *   MSE     s2 = amax / (6 * 256) as 4OVER6 (so the 4-candidate of the largest
 *           block, 384, still fits E4M3); per block every E4M3 code from
 *           code(s6) - 3 to code(s6) + 7 (clamped to [2^-9, 448]) is tried, s6
 *           first, then s4, then the rest, keeping the first with the lowest
 *           (importance-weighted) squared error. The range covers s4 (4-5 codes
 *           above s6) with margin; bench/RESULTS.md has the measurement that
 *           wider ranges change nothing. Because s6 and s4 are tried first and
 *           only a strictly lower error replaces them, every block's error is <=
 *           its 4OVER6 (MSE metric) error, which is <= its error at s6.
 * Block errors are computed on the dequantized values exactly as the runtime
 * forms them: (e2m1 * float(sb)) * s2 in fp32. */
typedef enum fp4rt_scale_strategy {
    FP4RT_SCALE_ABSMAX = 0,
    FP4RT_SCALE_4OVER6 = 1,
    FP4RT_SCALE_MSE = 2
} fp4rt_scale_strategy;

typedef enum fp4rt_err_metric {
    FP4RT_ERR_MSE = 0, /* sum of squared errors */
    FP4RT_ERR_MAE = 1  /* sum of absolute errors (4OVER6 only) */
} fp4rt_err_metric;

/* The mse search range in E4M3 codes around code(s6). */
#define FP4RT_MSE_CODES_BELOW 3
#define FP4RT_MSE_CODES_ABOVE 7

/* "absmax", "4over6", "mse"; NULL for an unknown value. */
const char *fp4rt_scale_strategy_name(fp4rt_scale_strategy s);
/* Parses a name; -1 if unknown. */
int fp4rt_scale_strategy_parse(const char *name);

/* Tensor scale s2 for a tensor (or fused group) with largest |W| amax under a
 * strategy: amax / 2688 (ABSMAX) or amax / 1536 (4OVER6, MSE); 1.0 if amax == 0. */
float fp4rt_nvfp4_tensor_scale_for(fp4rt_scale_strategy s, float amax);

/* Error of one 16-element block quantized with E4M3 scale code `code` under s2:
 * sum of w[i] * e_i^2 (metric MSE) or w[i] * |e_i| (MAE), e = x - dequantized x;
 * w == NULL means all ones. Summed in fp32 in a fixed pairwise order. */
float fp4rt_nvfp4_block_error(const float *x, const float *w, uint8_t code, float s2,
                              fp4rt_err_metric metric);

/* Quantizes one row of k elements (k a multiple of 16) with strategy s (ABSMAX
 * calls fp4rt_nvfp4_quantize_row), tensor scale s2 (from
 * fp4rt_nvfp4_tensor_scale_for), metric (4OVER6 only) and optional per-element
 * importance w[k] (MSE only; NULL = unweighted). Outputs as
 * fp4rt_nvfp4_quantize_row. Inputs must be finite. Thread-safe. */
void fp4rt_nvfp4_quantize_row_with(const float *x, size_t k, float s2, fp4rt_scale_strategy s,
                                   fp4rt_err_metric metric, const float *w, uint8_t *packed,
                                   uint8_t *scales);

/* FP8 per-tensor weight_scale: amax / 448 in fp32 (1.0 for an all-zero tensor). */
float fp4rt_fp8_weight_scale(float amax);

/* out[i] = E4M3 (RNE, saturating at +-448) of x[i] / scale (fp32 division). */
void fp4rt_fp8_quantize_row(const float *x, size_t k, float scale, uint8_t *out);

#endif
