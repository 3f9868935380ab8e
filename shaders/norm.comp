#version 450
// Per-group norms, one workgroup per (group g, row t):
// mode 0 RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w
// mode 1 gated RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w * silu(z)
// mode 2 L2 norm: y = x * rsqrt(sum(x^2) + eps) * scale
// mode 3 residual add, then RMSNorm (one group per row; the recorder fuses an
// ADD and the RMSNORM that reads its output, vk_op_basic.c): x = a + b written
// to x (the ADD's bits), then mode 0 on it. Element i is added, squared, and
// normed by the one invocation i % 16, so no invocation reads a sum another
// wrote, and an in-place add (x the same as a or b) reads each input before
// writing it.
// As the CPU (runtime/backend/cpu/cpu_elementwise.c), bit for bit: the sum of squares of
// fp4rt_csumsq, r = 1 / sqrt(...), y = (x * r) * w [* silu(z)], nothing fused.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Wt { float wt[]; };
layout(push_constant) uniform PC {
    uint mode, x_off, z_off, y_off;
    uint stride, group_dim, group_stride, w_off;
    float eps, scale;
    uint a_off, b_off; // mode 3: the ADD's inputs
} pc;

shared float red[16];

void main() {
    uint g = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint o = t * pc.stride + g * pc.group_stride;
    // the sum of squares in the numerics contract's order: chain j (invocation
    // j < 16) sums i = j, j + 16, ... in order, then the fixed tree of reduce16
    if (tid < 16u) {
        precise float ss = 0.0;
        for (uint i = tid; i < pc.group_dim; i += 16u) {
            float v;
            if (pc.mode == 3u) {
                precise float sum = arena[pc.a_off + o + i] + arena[pc.b_off + o + i];
                arena[pc.x_off + o + i] = sum;
                v = sum;
            } else
                v = arena[pc.x_off + o + i];
            precise float p = v * v;
            ss += p;
        }
        red[tid] = ss;
    }
    barrier();
    precise float a0 = red[0] + red[8], a1 = red[1] + red[9], a2 = red[2] + red[10], a3 = red[3] + red[11];
    precise float a4 = red[4] + red[12], a5 = red[5] + red[13], a6 = red[6] + red[14], a7 = red[7] + red[15];
    precise float tot = ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7));
    precise float r = pc.mode == 2u ? 1.0 / sqrt(tot + pc.eps) : 1.0 / sqrt(tot / float(pc.group_dim) + pc.eps);
    // mode 3: only invocations 0..15, each over the elements it summed
    uint step = pc.mode == 3u ? 16u : WG;
    for (uint i = tid; i < (pc.mode == 3u && tid >= 16u ? 0u : pc.group_dim); i += step) {
        float v = arena[pc.x_off + o + i];
        float outv;
        if (pc.mode == 0u || pc.mode == 3u) outv = v * r * wt[pc.w_off + i];
        else if (pc.mode == 1u) outv = v * r * wt[pc.w_off + i] * silu(arena[pc.z_off + o + i]);
        else outv = v * r * pc.scale;
        arena[pc.y_off + o + i] = outv;
    }
}
