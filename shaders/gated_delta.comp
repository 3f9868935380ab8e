#version 450
// Gated delta rule, recurrent form (token by token: decode, and the fallback for
// prefill). Workgroup (h, cb) owns value head h and state columns
// e = cb * 16 .. cb * 16 + 15 of its FP32 state S [dk][dv] (kept on the GPU);
// the 64 invocations are 16 columns x 4 parts of dk, so a head's columns spread
// over ceil(dv / 16) workgroups (48 heads x dv 128: 384 workgroups). Per token,
// as the CPU (runtime/cpu_gdn.c):
//   beta = sigmoid(b[h]); g = neg_A[h] * softplus(a[h] + dt_bias[h])
//   S *= exp(g); m = k S; u = beta (v - m); S += k^T u; o = q S
// m and o are summed per part in CPU order, then the 4 parts in a fixed order.
// x = [q | k | v] per token (key head h / (V/K)); dk <= 256.
#include "common.glsl"
#include "gdn.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) buffer St { float S[]; };
layout(set = 0, binding = 2) readonly buffer Dt { float dt_bias[]; };
layout(set = 0, binding = 3) readonly buffer Na { float neg_a[]; };
layout(push_constant) uniform PC {
    uint T, dk, dv, ratio;
    uint key_dim, x_off, z_off, a_off;
    uint y_off, stride, dt_off, na_off;
    uint s_off; // window skews in floats
} pc;

#define COLS 16u
#define PARTS 4u
shared float qs[256], ks[256], red[PARTS][COLS];

void main() {
    uint h = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint kh = h / pc.ratio, dk = pc.dk, dv = pc.dv;
    uint lc = tid % COLS, part = tid / COLS, e = gl_WorkGroupID.y * COLS + lc;
    uint per = (dk + PARTS - 1u) / PARTS, i0 = min(part * per, dk), i1 = min(i0 + per, dk);
    bool live = e < dv;
    uint sb = pc.s_off + h * dk * dv + e;
    for (uint t = 0; t < pc.T; t++) {
        uint r = t * pc.stride;
        for (uint i = tid; i < dk; i += WG) {
            qs[i] = arena[pc.x_off + r + kh * dk + i];
            ks[i] = arena[pc.x_off + r + pc.key_dim + kh * dk + i];
        }
        float beta = sigmoid(arena[pc.z_off + r + h]);
        float decay = exp(gdn_g(neg_a[pc.na_off + h], arena[pc.a_off + r + h], dt_bias[pc.dt_off + h]));
        barrier();
        float m = 0.0;
        if (live)
            for (uint i = i0; i < i1; i++) m += ks[i] * (S[sb + i * dv] * decay);
        red[part][lc] = m;
        barrier();
        m = ((red[0][lc] + red[1][lc]) + red[2][lc]) + red[3][lc];
        float u = live ? beta * (arena[pc.x_off + r + 2u * pc.key_dim + h * dv + e] - m) : 0.0;
        float o = 0.0;
        if (live)
            for (uint i = i0; i < i1; i++) {
                float s = S[sb + i * dv] * decay + ks[i] * u;
                S[sb + i * dv] = s;
                o += qs[i] * s;
            }
        barrier();
        red[part][lc] = o;
        barrier();
        if (live && part == 0u)
            arena[pc.y_off + r + h * dv + e] = ((red[0][lc] + red[1][lc]) + red[2][lc]) + red[3][lc];
        barrier();
    }
}
