#version 450
// LayerNorm with bias, one workgroup per (group g, row t), bit for bit the CPU's
// (runtime/backend/cpu/cpu_vision_ops.c): mean = sum(x) / n and var = sum((x -
// mean)^2) / n, each sum in the numerics contract's order (invocation j < 16
// runs chain j over i = j, j + 16, ..., then the fixed tree of fp4rt_csumsq_tree),
// r = 1 / sqrt(var + eps), y = ((x - mean) * r) * w + b, nothing fused.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Wt { float wt[]; };
layout(set = 0, binding = 2) readonly buffer Bs { float bs[]; };
layout(push_constant) uniform PC {
    uint x_off, y_off, stride, group_dim;
    uint group_stride, w_off, b_off;
    float eps;
} pc;

shared float red[16];

float tree16() {
    precise float a0 = red[0] + red[8], a1 = red[1] + red[9], a2 = red[2] + red[10], a3 = red[3] + red[11];
    precise float a4 = red[4] + red[12], a5 = red[5] + red[13], a6 = red[6] + red[14], a7 = red[7] + red[15];
    precise float tot = ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7));
    return tot;
}

void main() {
    uint g = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint o = pc.x_off + t * pc.stride + g * pc.group_stride;
    if (tid < 16u) {
        precise float s = 0.0;
        for (uint i = tid; i < pc.group_dim; i += 16u) s = s + arena[o + i];
        red[tid] = s;
    }
    barrier();
    precise float mean = tree16() / float(pc.group_dim);
    barrier();
    if (tid < 16u) {
        precise float s = 0.0;
        for (uint i = tid; i < pc.group_dim; i += 16u) {
            precise float d = arena[o + i] - mean;
            precise float p = d * d;
            s = s + p;
        }
        red[tid] = s;
    }
    barrier();
    precise float var = tree16() / float(pc.group_dim);
    precise float r = 1.0 / sqrt(var + pc.eps);
    uint yo = pc.y_off + t * pc.stride + g * pc.group_stride;
    for (uint i = tid; i < pc.group_dim; i += WG) {
        precise float d = arena[o + i] - mean;
        d = d * r;
        d = d * wt[pc.w_off + i];
        d = d + bs[pc.b_off + i];
        arena[yo + i] = d;
    }
}
