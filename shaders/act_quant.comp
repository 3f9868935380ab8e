#version 450
// Activation quantization before a quantized linear, as the CPU does:
// mode 0 (FP8 W8A8): q = e4m3_sat(x / input_scale), one invocation per element;
// mode 1 (NVFP4 W4A4): per block of 16, sf = e4m3(min(amax / 6 / input_scale, 448)),
// q = e2m1(x / (sf * input_scale)) * sf, one invocation per block.
// Output rows are dense: q[t * K + k].
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Q { float q[]; };
layout(push_constant) uniform PC {
    uint K, mode, x_off, x_stride;
    float input_scale;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    uint xb = pc.x_off + t * pc.x_stride, qb = t * pc.K;
    if (pc.mode == 0u) {
        if (i < pc.K) q[qb + i] = round_e4m3(x[xb + i] / pc.input_scale);
        return;
    }
    uint k0 = i * 16u;
    if (k0 >= pc.K) return;
    float amax = 0.0;
    for (uint j = 0; j < 16u; j++) amax = max(amax, abs(x[xb + k0 + j]));
    float sf = round_e4m3(min(amax / 6.0 / pc.input_scale, 448.0));
    if (sf == 0.0) {
        for (uint j = 0; j < 16u; j++) q[qb + k0 + j] = 0.0;
        return;
    }
    float div = sf * pc.input_scale;
    for (uint j = 0; j < 16u; j++) q[qb + k0 + j] = round_e2m1(x[xb + k0 + j] / div) * sf;
}
