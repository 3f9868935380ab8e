#version 450
// Gated delta rule, recurrent form (one token per step: decode, and prefill
// where the chunked kernel cannot run). Workgroup (h, cb) owns value head h and
// state columns e = cb * 64 .. cb * 64 + 63 of its FP32 state S [dk][dv] (kept
// on the GPU), one column per invocation. Per token, exactly as the CPU
// (runtime/backend/cpu/cpu_gdn.c fp4rt_gdn_recurrent), every sum over i in order, nothing
// fused (`precise`), exp / sigmoid / softplus of the numerics contract
// (canon.glsl): bit-identical to the CPU where fp32 add, multiply and divide
// are correctly rounded:
//   beta = sigmoid(b[h]); g = neg_A[h] * softplus(a[h] + dt_bias[h])
//   S *= exp(g); m = k S; u = beta (v - m); S += k^T u; o = q S
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

#define COLS WG
shared float qs[256], ks[256];

void main() {
    uint h = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint kh = h / pc.ratio, dk = pc.dk, dv = pc.dv;
    uint e = gl_WorkGroupID.y * COLS + tid;
    bool live = e < dv;
    uint sb = pc.s_off + h * dk * dv + e;
    for (uint t = 0; t < pc.T; t++) {
        uint r = t * pc.stride;
        for (uint i = tid; i < dk; i += WG) {
            qs[i] = arena[pc.x_off + r + kh * dk + i];
            ks[i] = arena[pc.x_off + r + pc.key_dim + kh * dk + i];
        }
        float beta = sigmoid(arena[pc.z_off + r + h]);
        float decay = cexp(gdn_g(neg_a[pc.na_off + h], arena[pc.a_off + r + h], dt_bias[pc.dt_off + h]));
        barrier();
        if (live) {
            precise float m = 0.0;
            for (uint i = 0; i < dk; i++) {
                precise float sd = S[sb + i * dv] * decay;
                m += ks[i] * sd;
            }
            precise float u = beta * (arena[pc.x_off + r + 2u * pc.key_dim + h * dv + e] - m);
            precise float o = 0.0;
            for (uint i = 0; i < dk; i++) {
                precise float sd = S[sb + i * dv] * decay;
                precise float s = sd + ks[i] * u;
                S[sb + i * dv] = s;
                o += qs[i] * s;
            }
            arena[pc.y_off + r + h * dv + e] = o;
        }
        barrier();
    }
}
