/* Weight quantizers for the ModelOpt formats: NVFP4 (E2M1 codes, one E4M3 scale
 * per 16 elements along K, one FP32 tensor scale) and FP8 E4M3 per tensor.
 *
 * The absmax ("max calibration") NVFP4 quantizer reproduces ModelOpt's
 * NVFP4QTensor exactly (NVFP4.md §1.3): every step is the same fp32 operation in
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

/* FP8 per-tensor weight_scale: amax / 448 in fp32 (1.0 for an all-zero tensor). */
float fp4rt_fp8_weight_scale(float amax);

/* out[i] = E4M3 (RNE, saturating at +-448) of x[i] / scale (fp32 division). */
void fp4rt_fp8_quantize_row(const float *x, size_t k, float scale, uint8_t *out);

#endif
