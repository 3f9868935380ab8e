#version 450
// Prefill linear (matrix-matrix, many tokens), FP32:
// y[t, n] = post * sum_k x[t, k] * W[n, k] for the N rows of one bound piece of W
// and the T tokens of one bound piece of x / y.
//
// A workgroup of 256 invocations computes a 64 (rows n) x 64 (tokens t) output
// tile; the K axis goes through shared memory in steps of 16: the 64 x 16
// weights decoded to FP32 (same values as the CPU: BF16/F16/F32, E4M3, E2M1 code
// x E4M3 block scale via the FP16 bit trick of docs/NVFP4.md 4.1) and the 64 x 16
// activations. Each invocation keeps a 4 x 4 register micro-tile (rows
// tn + 16 i, tokens tt + 16 j) and adds the 16 products of a step in k order:
// a fixed order, no atomics. Weights past K and rows / tokens past the tile's
// end are zero and never stored.
#include "common.glsl"

#define TILE 64u
#define BK 16u
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"
#include "wlayout.glsl"

shared float ws[BK][TILE + 1u];
shared float xs[BK][TILE + 1u];

// Weight (n, k), stored in the order pc.il names (wlayout.glsl).
float weight1(uint n, uint k) {
    uint i = n * pc.K + wpos(k);
    switch (pc.fmt) {
    case 0u: return bf16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 1u: return f16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 2u: return uintBitsToFloat(w[(pc.w_off >> 2) + i]);
    case 3u: return e4m3_to_f32(BYTE_AT(w, pc.w_off + i));
    default: {
        uint c = (BYTE_AT(w, pc.w_off + (i >> 1)) >> (4u * (i & 1u))) & 15u;
        float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + n * (pc.K / 16u) + k / 16u)) * 16384.0;
        return e2m1_scaled(c) * s;
    }
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint n0 = gl_WorkGroupID.x * TILE, t0 = gl_WorkGroupID.y * TILE;
    uint tn = tid % 16u, tt = tid / 16u;
    // loads: invocation tid fills row (tid / 4) of both tiles, k = 4 (tid % 4) .. + 4
    uint lr = tid / 4u, lk = (tid % 4u) * 4u;
    uint ln = n0 + lr, lt = t0 + lr;
    float acc[4][4];
    for (uint i = 0; i < 4u; i++)
        for (uint j = 0; j < 4u; j++) acc[i][j] = 0.0;
    for (uint kb = 0; kb < pc.K; kb += BK) {
        for (uint e = 0; e < 4u; e++) {
            uint k = kb + lk + e;
            ws[lk + e][lr] = ln < pc.N && k < pc.K ? weight1(ln, k) : 0.0;
            xs[lk + e][lr] = lt < pc.T && k < pc.K ? x[pc.x_off + lt * pc.x_stride + k] : 0.0;
        }
        barrier();
        for (uint k = 0; k < BK; k++) {
            float a[4], b[4];
            for (uint i = 0; i < 4u; i++) a[i] = ws[k][tn + 16u * i];
            for (uint j = 0; j < 4u; j++) b[j] = xs[k][tt + 16u * j];
            for (uint i = 0; i < 4u; i++)
                for (uint j = 0; j < 4u; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    for (uint i = 0; i < 4u; i++)
        for (uint j = 0; j < 4u; j++) {
            uint n = n0 + tn + 16u * i, t = t0 + tt + 16u * j;
            if (n < pc.N && t < pc.T)
                y[pc.y_off + t * pc.y_stride + n] = acc[i][j] * (pc.post_off != 0u ? x[pc.post_off + t] : pc.post);
        }
}
