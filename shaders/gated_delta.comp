#version 450
// Gated delta rule, recurrent form (token by token, also for prefill), one
// workgroup per value head h; invocation i owns columns e = i, i + 64, ... of the
// FP32 state S [dk][dv] (kept on the GPU). Per token, as the CPU:
//   beta = sigmoid(b[h]); g = neg_A[h] * softplus(a[h] + dt_bias[h])
//   S *= exp(g); m = k S; u = beta (v - m); S += k^T u; o = q S
// x = [q | k | v] per token (key head h / (V/K)); dk <= 256.
#include "common.glsl"
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

shared float qs[256], ks[256];

float log1p_(float y) {
    float u = 1.0 + y;
    return u == 1.0 ? y : log(u) * (y / (u - 1.0));
}

void main() {
    uint h = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint kh = h / pc.ratio, dk = pc.dk, dv = pc.dv;
    uint sb = pc.s_off + h * dk * dv;
    for (uint t = 0; t < pc.T; t++) {
        uint r = t * pc.stride;
        for (uint i = tid; i < dk; i += WG) {
            qs[i] = arena[pc.x_off + r + kh * dk + i];
            ks[i] = arena[pc.x_off + r + pc.key_dim + kh * dk + i];
        }
        barrier();
        float beta = sigmoid(arena[pc.z_off + r + h]);
        float sp = arena[pc.a_off + r + h] + dt_bias[pc.dt_off + h];
        sp = sp > 20.0 ? sp : log1p_(exp(sp));
        float decay = exp(neg_a[pc.na_off + h] * sp);
        for (uint e = tid; e < dv; e += WG) {
            float m = 0.0;
            for (uint i = 0; i < dk; i++) {
                float s = S[sb + i * dv + e] * decay;
                S[sb + i * dv + e] = s;
                m += ks[i] * s;
            }
            float u = beta * (arena[pc.x_off + r + 2u * pc.key_dim + h * dv + e] - m);
            float o = 0.0;
            for (uint i = 0; i < dk; i++) {
                float s = S[sb + i * dv + e] + ks[i] * u;
                S[sb + i * dv + e] = s;
                o += qs[i] * s;
            }
            arena[pc.y_off + r + h * dv + e] = o;
        }
        barrier();
    }
}
