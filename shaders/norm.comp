#version 450
// Per-group norms, one workgroup per (group g, row t):
// mode 0 RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w
// mode 1 gated RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w * silu(z)
// mode 2 L2 norm: y = x * rsqrt(sum(x^2) + eps) * scale
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Wt { float wt[]; };
layout(push_constant) uniform PC {
    uint mode, x_off, z_off, y_off;
    uint stride, group_dim, group_stride, w_off;
    float eps, scale;
} pc;

shared float red[WG];

void main() {
    uint g = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint o = t * pc.stride + g * pc.group_stride;
    float ss = 0.0;
    for (uint i = tid; i < pc.group_dim; i += WG) {
        float v = arena[pc.x_off + o + i];
        ss += v * v;
    }
    red[tid] = ss;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    float tot = red[0];
    float r = pc.mode == 2u ? 1.0 / sqrt(tot + pc.eps) : 1.0 / sqrt(tot / float(pc.group_dim) + pc.eps);
    for (uint i = tid; i < pc.group_dim; i += WG) {
        float v = arena[pc.x_off + o + i];
        float outv;
        if (pc.mode == 0u) outv = v * r * wt[pc.w_off + i];
        else if (pc.mode == 1u) outv = v * r * wt[pc.w_off + i] * silu(arena[pc.z_off + o + i]);
        else outv = v * r * pc.scale;
        arena[pc.y_off + o + i] = outv;
    }
}
