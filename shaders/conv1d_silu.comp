#version 450
// Causal depthwise conv1d + SiLU with carried state, one invocation per channel:
// the last K - 1 inputs (oldest first, state [C][K - 1]) and the T new ones,
// y[t, c] = silu(sum_i w[c, i] * in[t + i]) summed in the CPU order. K <= 9.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Wt { float wt[]; };
layout(set = 0, binding = 2) buffer St { float st[]; };
layout(push_constant) uniform PC {
    uint C, K, T, x_off;
    uint y_off, stride, w_off, st_off; // w_off, st_off: window skews in floats
} pc;

void main() {
    uint c = gl_GlobalInvocationID.x;
    if (c >= pc.C) return;
    uint K1 = pc.K - 1u;
    float hist[8];
    for (uint i = 0; i < K1; i++) hist[i] = st[pc.st_off + c * K1 + i];
    for (uint t = 0; t < pc.T; t++) {
        float cur = arena[pc.x_off + t * pc.stride + c];
        precise float acc = 0.0;
        for (uint i = 0; i < K1; i++) acc += wt[pc.w_off + c * pc.K + i] * hist[i];
        acc += wt[pc.w_off + c * pc.K + K1] * cur;
        for (uint i = 0; i + 1u < K1; i++) hist[i] = hist[i + 1u];
        if (K1 > 0u) hist[K1 - 1u] = cur;
        arena[pc.y_off + t * pc.stride + c] = silu(acc);
    }
    for (uint i = 0; i < K1; i++) st[pc.st_off + c * K1 + i] = hist[i];
}
