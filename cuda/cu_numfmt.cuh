/* Number-format conversions for the CUDA kernels, written as __host__ __device__
 * functions so that the host-side unit test (tests/cuda/test_cu_linear_host.cu)
 * checks them against the CPU backend's runtime/base/numfmt.c on this machine.
 * Shareable by every CUDA op family (header-only, no state).
 *
 * Formats (runtime/base/numfmt.h): E2M1 (bit 3 sign, values 0 .5 1 1.5 2 3 4 6),
 * E4M3 FN (bias 7, max 448, 0x7F/0xFF NaN), F16, BF16. NVFP4 bytes hold two
 * codes, the even element in the low nibble.
 *
 * The exactness arguments the kernels rely on:
 *  - e2m1 * e4m3 (the dequantized NVFP4 weight before the tensor scale) is a
 *    multiple of 2^-10 with at most 5 significant bits and |v| <= 2688: exact in
 *    F16 and in BF16 (and in FP32).
 *  - E4M3 values are exact in F16 (max 448, smallest subnormal 2^-9). */
#ifndef FP4RT_CU_NUMFMT_CUH
#define FP4RT_CU_NUMFMT_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#define FP4RT_HD __host__ __device__ __forceinline__

namespace cunf {

FP4RT_HD float u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

FP4RT_HD uint32_t f2u(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
#endif
}

/* ---- E2M1 -> F16, the register bit trick (docs/NVFP4.md §4.1) ------------------
 * A 32-bit word q holds 8 codes (element i in bits 4i..4i+3). For j = 0..3,
 * e2m1x2_f16_scaled(q, j) is a half2 word whose low half is element j and high
 * half element j + 4, each as the F16 bits of value * 2^-14 (exact: the E2M1
 * subnormal 0.5 lands on the F16 subnormal 2^-15).
 *   w = (q << 4 (3 - j)) & 0xF000F000  puts codes j, j + 4 in bits 15..12 of each half;
 *   (w | w >> 3) & 0x8E008E00          keeps the sign at bit 15, moves e1 e0 m to 11..9. */
FP4RT_HD uint32_t e2m1x2_f16_scaled(uint32_t q, int j) {
    uint32_t w = (q << (4 * (3 - j))) & 0xF000F000u;
    return (w | (w >> 3)) & 0x8E008E00u;
}
/* The element indices (low, high) that e2m1x2_f16_scaled(q, j) yields. */
FP4RT_HD int e2m1x2_elem_lo(int j) {
    return j;
}
FP4RT_HD int e2m1x2_elem_hi(int j) {
    return j + 4;
}
#define FP4RT_E2M1_F16_FACTOR 16384.0f /* 2^14 */

/* F16 bits -> FP32 (exact; host: software, device: the conversion instruction). */
FP4RT_HD float f16_bits_to_f32(uint16_t h) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(h));
#else
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return s ? -v : v;
    }
    if (e == 31) return u2f(s | 0x7f800000u | (m << 13));
    return u2f(s | ((e + 112) << 23) | (m << 13));
#endif
}

/* FP32 -> F16 bits, round to nearest even, overflow to infinity. */
FP4RT_HD uint16_t f32_to_f16_bits(float f) {
#ifdef __CUDA_ARCH__
    return __half_as_ushort(__float2half_rn(f));
#else
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;
    if (a >= 0x477ff000u) return sign | 0x7c00;
    if (a < 0x38800000u) return sign | (uint16_t)nearbyintf(u2f(a) * 16777216.0f);
    uint32_t e = (a >> 23) - 112, m = a & 0x7fffffu;
    uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return sign | (uint16_t)h;
#endif
}

/* FP32 -> BF16 bits, round to nearest even (NaN stays a quiet NaN). */
FP4RT_HD uint16_t f32_to_bf16_bits(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* ---- E4M3 ------------------------------------------------------------------ */

/* E4M3 code -> FP32, exact, NaN for 0x7F / 0xFF. Bit trick: the 7 magnitude bits
 * go to FP32 bits 26..20 (value * 2^-120, E4M3 subnormals become FP32
 * subnormals), then * 2^120. */
FP4RT_HD float e4m3_to_f32(uint32_t c) {
    float v = u2f(((c & 0x80u) << 24) | ((c & 0x7fu) << 20)) * u2f(0x7b800000u); /* 2^120 */
    return (c & 0x7fu) == 0x7fu ? u2f(0x7fc00000u) : v;
}

/* Two E4M3 codes (bits 0..7 and 8..15 of c2) -> F16 bits in a half2 word, exact
 * for non-NaN codes. sm_89+: the conversion instruction (NaN stays NaN);
 * elsewhere the bit trick (value * 2^-8 placed in F16, then * 256 in F16). */
FP4RT_HD __half2 e4m3x2_to_half2(uint32_t c2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    __half2_raw r = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(c2 & 0xffffu), __NV_E4M3);
    return __half2(r);
#else
    float lo = e4m3_to_f32(c2 & 0xffu), hi = e4m3_to_f32((c2 >> 8) & 0xffu);
    return __floats2half2_rn(lo, hi);
#endif
}

/* FP32 -> E4M3 code, round to nearest even, saturating to +-448 ("satfinite"),
 * NaN -> 0x7F. Bit-identical to fp4rt_f32_to_e4m3_sat (runtime/base/numfmt.c). */
FP4RT_HD uint32_t f32_to_e4m3_sat(float f) {
    uint32_t u = f2u(f);
    uint32_t s = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7fu;      /* NaN */
    if (a >= 0x43e00000u) return s | 0x7eu; /* >= 448 (and +-Inf): 448 */
    if (a < 0x3c800000u) {                  /* below 2^-6: subnormal unit 2^-9 */
        float r = rintf(u2f(a) * 512.0f);   /* exact scaling, RNE; r <= 8 */
        return s | (uint32_t)r;             /* 8 encodes 2^-6 */
    }
    uint32_t e = (a >> 23) - 120; /* E4M3 exponent field 1..15 */
    uint32_t m = (a >> 20) & 7u, rest = a & 0xfffffu;
    uint32_t code = (e << 3) | m;
    if (rest > 0x80000u || (rest == 0x80000u && (m & 1u))) code++; /* carries into the exponent */
    return s | code; /* a < 448 never rounds past 0x7E */
}

/* The CPU's fp4rt_round_e4m3: nearest E4M3 value of f as FP32. */
FP4RT_HD float round_e4m3(float f) {
    return e4m3_to_f32(f32_to_e4m3_sat(f));
}

/* ---- NVFP4 dequantization ---------------------------------------------------
 * F16 bits of e2m1(code) * e4m3(scale), exact (no tensor scale): the 16-bit
 * value the standalone dequant kernel writes and the GEMM feeds the tensor
 * cores. sc_f14 = e4m3_to_f32(scale) * 2^14 (folds in the bit trick's 2^-14). */
FP4RT_HD uint16_t nvfp4_f16_bits(uint32_t f16_scaled_bits, float sc_f14) {
    return f32_to_f16_bits(f16_bits_to_f32((uint16_t)f16_scaled_bits) * sc_f14);
}

/* One byte of NVFP4 codes (element 0 in the low nibble) under E4M3 block scale
 * `scale` -> two F16 values (element 0 in the low half). */
FP4RT_HD uint32_t nvfp4_dequant_pair(uint32_t byte, uint32_t scale) {
    float s = e4m3_to_f32(scale) * FP4RT_E2M1_F16_FACTOR;
    uint32_t h0 = e2m1x2_f16_scaled(byte, 0) & 0xffffu, h1 = e2m1x2_f16_scaled(byte, 1) & 0xffffu;
    return (uint32_t)nvfp4_f16_bits(h0, s) | ((uint32_t)nvfp4_f16_bits(h1, s) << 16);
}

} // namespace cunf

#endif
