#version 450
// y[t, n] = post * sum_k x[t, k] * W[n, k] for rows n of one bound piece of W.
// One workgroup per (output n, input row t); invocation i sums k = i, i + 64, ...
// in FP32, then a fixed shared-memory tree adds the 64 partial sums.
// Formats (pc.fmt, FP4RT_W_*): 0 BF16, 1 F16, 2 F32, 3 FP8 E4M3, 4/5 NVFP4 (E2M1
// codes dequantized to FP16 in registers with the block scale folded in). The FP8
// and W4A4 activation quantization is a separate pass (act_quant.comp).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform PC {
    uint K, fmt, x_off, x_stride;  // x row t at x_off + t * x_stride (floats)
    uint y_off, y_stride, n0, w_off; // y row t at y_off + t * y_stride, columns n0 + n
    uint s_off, post_off, pad1;    // w_off, s_off: byte offsets of row 0 of the piece
    float post;                    // post_off != 0: post of row t is x[post_off + t] instead
} pc;

shared float red[WG];

float weight(uint n, uint k) {
    uint i = n * pc.K + k;
    switch (pc.fmt) {
    case 0u: return bf16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 1u: return unpackHalf2x16(HALF_AT(w, (pc.w_off >> 1) + i)).x;
    case 2u: return uintBitsToFloat(w[(pc.w_off >> 2) + i]);
    case 3u: return e4m3_to_f32(BYTE_AT(w, pc.w_off + i));
    default: {
        uint c = (BYTE_AT(w, pc.w_off + (i >> 1)) >> (4u * (i & 1u))) & 15u;
        float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + (i >> 4))) * 16384.0;
        return unpackHalf2x16(e2m1_to_f16_bits(c)).x * s;
    }
    }
}

void main() {
    uint n = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint xb = pc.x_off + t * pc.x_stride;
    float acc = 0.0;
    for (uint k = tid; k < pc.K; k += WG) acc += weight(n, k) * x[xb + k];
    red[tid] = acc;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    float post = pc.post_off != 0u ? x[pc.post_off + t] : pc.post;
    if (tid == 0) y[pc.y_off + t * pc.y_stride + pc.n0 + n] = red[0] * post;
}
