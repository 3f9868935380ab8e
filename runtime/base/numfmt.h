/* Number formats: BF16, F16, FP8 E4M3 (FN variant), FP4 E2M1.
 *
 * All narrowing conversions round to nearest, ties to even (RNE).
 * E4M3 (FN): bias 7, max 448 (0x7E), no infinities, 0x7F/0xFF are NaN.
 * E2M1: bit 3 sign, values {0, .5, 1, 1.5, 2, 3, 4, 6}; no Inf/NaN.
 * NVFP4 packing: byte = code(2i) | code(2i+1) << 4 (even element in the low nibble). */
#ifndef FP4RT_NUMFMT_H
#define FP4RT_NUMFMT_H

#include <stdint.h>
#include <string.h>

#define FP4RT_E4M3_MAX 448.0f
#define FP4RT_E2M1_MAX 6.0f

static inline float fp4rt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* RNE; NaN stays NaN (quiet), infinities stay infinite. */
uint16_t fp4rt_f32_to_bf16(float f);
float fp4rt_f16_to_f32(uint16_t h);
/* RNE; overflow goes to infinity as IEEE prescribes. */
uint16_t fp4rt_f32_to_f16(float f);

/* Constant lookup tables (built at compile time: valid before any call). */
extern const float fp4rt_e4m3_table[256];
extern const float fp4rt_e2m1_table[16];
/* No-op (the tables are constant); kept so existing callers compile. */
void fp4rt_numfmt_init(void);

static inline float fp4rt_e4m3_to_f32(uint8_t c) { return fp4rt_e4m3_table[c]; }
static inline float fp4rt_e2m1_to_f32(uint8_t c) { return fp4rt_e2m1_table[c & 15]; }

/* E4M3 with saturation: |x| > 448 (and +-Inf) -> +-448 ("satfinite"), NaN -> 0x7F. */
uint8_t fp4rt_f32_to_e4m3_sat(float f);
/* Like torch's cast to float8_e4m3fn: values that round past 448 become NaN (0x7F). */
uint8_t fp4rt_f32_to_e4m3(float f);
/* E2M1 with RNE and saturation at +-6 (ModelOpt _cast_fp4): the sign bit is set for
 * x < 0 even when the magnitude rounds to 0. NaN maps to +0. */
uint8_t fp4rt_f32_to_e2m1(float f);

/* Round x to the nearest E4M3 value (saturating) and return it as float. */
static inline float fp4rt_round_e4m3(float f) { return fp4rt_e4m3_to_f32(fp4rt_f32_to_e4m3_sat(f)); }

#endif
