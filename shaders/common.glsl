// Shared helpers for the fp4rt compute shaders: number-format decoding and
// encoding that reproduce runtime/base/numfmt.c bit for bit, and the workgroup size.
// Every shader runs 64 invocations per workgroup and reduces through shared
// memory in a fixed order (deterministic, independent of the subgroup size).
#extension GL_GOOGLE_include_directive : require

#define WG 64
// The device's subgroup size (specialization constant 0). No shader depends on
// its value for correctness; it is there for tuning.
layout(constant_id = 0) const uint SUBGROUP_SIZE = 32;

// E4M3 code of f, round to nearest even, saturating at +-448; NaN -> 0x7F.
uint f32_to_e4m3_sat(float f) {
    if (isnan(f)) return 0x7fu;
    uint s = (floatBitsToUint(f) >> 24) & 0x80u;
    float a = abs(f);
    if (a >= 448.0) return s | 0x7eu;
    int e;
    frexp(a, e); // a = m 2^e, m in [0.5, 1): floor(log2 a) = e - 1
    float q = a < 0.015625 ? exp2(-9.0) : exp2(float(e - 4));
    float r = roundEven(a / q) * q;
    if (r == 0.0) return s;
    if (r >= 448.0) return s | 0x7eu;
    int re;
    frexp(r, re);
    int E = re - 1;
    if (E < -6) return s | uint(r / exp2(-9.0));
    return s | (uint(E + 7) << 3) | uint((r / exp2(float(E)) - 1.0) * 8.0);
}

// Decoders of stored numbers (weights, block scales) build FP32 bits with
// integer operations and never go through FP16 (no unpackHalf2x16): a driver
// may flush FP16 denormals unless shaderDenormPreserveFloat16 is enabled, which
// would zero E2M1 +-0.5, every E4M3 subnormal and F16 subnormal weights. Every
// value they produce is a normal FP32 number (or zero), so FP32 denormal modes
// do not matter either. tests/shaders/check_no_f16_decode.sh keeps it so.

// FP16 bits -> float, exact for every code (subnormals, Inf, NaN).
float f16_to_f32(uint h) {
    uint e = (h >> 10) & 31u, m = h & 1023u;
    float v = e == 0u ? float(m) * exp2(-24.0) : uintBitsToFloat((e == 31u ? 0x7f800000u : (e + 112u) << 23) | (m << 13));
    return uintBitsToFloat(floatBitsToUint(v) | ((h & 0x8000u) << 16));
}

// The two FP16 numbers of a word, lower first.
vec2 f16x2_to_f32(uint word) { return vec2(f16_to_f32(word & 0xffffu), f16_to_f32(word >> 16)); }

// E4M3 (FN) code b -> its value, exact; NaN codes (0x7F, 0xFF) give NaN. The
// one E4M3 decoder of the shaders (weights, block scales, the FP8 KV cache,
// round_e4m3): FP32 bits by integer operations for normal codes, m * 2^-9 (a
// normal FP32 number) for subnormal ones, so no FP16 or FP32 denormal is
// involved (tests/shaders/check_no_f16_decode.sh keeps it the only one).
float e4m3_to_f32(uint b) {
    if ((b & 0x7fu) == 0x7fu) return uintBitsToFloat(0x7fc00000u);
    float v = (b & 0x78u) == 0u ? float(b & 7u) * exp2(-9.0) : uintBitsToFloat(((b & 0x7fu) << 20) + (120u << 23));
    return uintBitsToFloat(floatBitsToUint(v) | ((b & 0x80u) << 24));
}

// f rounded to E4M3 (f32_to_e4m3_sat), as a float.
float round_e4m3(float f) { return e4m3_to_f32(f32_to_e4m3_sat(f)); }

// E2M1 of f, round to nearest even, saturating at +-6; NaN -> +0. Returns the value.
float round_e2m1(float f) {
    if (isnan(f)) return 0.0;
    float a = abs(f), v;
    if (a <= 0.25) v = 0.0;
    else if (a < 0.75) v = 0.5;
    else if (a <= 1.25) v = 1.0;
    else if (a < 1.75) v = 1.5;
    else if (a <= 2.5) v = 2.0;
    else if (a < 3.5) v = 3.0;
    else if (a <= 5.0) v = 4.0;
    else v = 6.0;
    return f < 0.0 ? -v : v;
}

// E2M1 nibble -> its value * 2^-14 (docs/NVFP4.md 4.1), exact: the factor 2^14
// is folded into the block scale by the caller (value * 2^-14 * (scale * 2^14)
// rounds exactly as value * scale).
float e2m1_scaled(uint c) {
    float v = (c & 6u) == 0u ? float(c & 1u) * exp2(-15.0) : uintBitsToFloat(((c & 7u) << 22) + (112u << 23));
    return uintBitsToFloat(floatBitsToUint(v) | ((c & 8u) << 28));
}

float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }

// f32 -> BF16 bits, round to nearest even; NaN stays a quiet NaN.
uint f32_to_bf16(float f) {
    uint u = floatBitsToUint(f);
    if (isnan(f)) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Byte b / 16-bit half h of a uint array (little-endian).
#define BYTE_AT(arr, b) ((arr[(b) >> 2] >> (8u * ((b) & 3u))) & 0xffu)
#define HALF_AT(arr, h) ((arr[(h) >> 1] >> (16u * ((h) & 1u))) & 0xffffu)

// silu and sigmoid of the numerics contract (canon.glsl: the CPU's bits)
#include "canon.glsl"
float silu(float x) { return csilu(x); }
float sigmoid(float x) { return csigmoid(x); }
