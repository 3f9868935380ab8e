#version 450
// Standalone NVFP4 -> FP16 dequantization: out[i] = f16(e2m1(code i) * e4m3(scale i / 16)),
// exact (the tensor scale is not applied). Two elements per invocation, one
// output word each.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer W { uint w[]; };
layout(set = 0, binding = 1) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 2) writeonly buffer O { uint o[]; };
layout(push_constant) uniform PC { uint n_pairs; } pc;

void main() {
    uint p = gl_GlobalInvocationID.x;
    if (p >= pc.n_pairs) return;
    uint b = BYTE_AT(w, p);
    float s = e4m3_to_f32(BYTE_AT(sc, p >> 3)) * 16384.0;
    vec2 v = vec2(e2m1_scaled(b & 15u), e2m1_scaled(b >> 4)) * s;
    o[p] = packHalf2x16(v);
}
