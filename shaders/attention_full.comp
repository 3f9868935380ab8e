#version 450
// Bidirectional attention over all rows of the step (the vision encoder's),
// one workgroup per (head h, row t), bit for bit the CPU's
// (runtime/backend/cpu/cpu_vision_ops.c): positions p = 0 .. T - 1 in tiles of
// WG. Invocation i of a tile computes the score of position p0 + i (the dot
// product in element order, times scale) into shared memory; then every
// invocation walks the tile's scores in order with the same online softmax
// (m, l, and its lanes e = tid, tid + WG, ... of acc): when s > m: corr =
// e^(m - s), l *= corr, acc *= corr, m = s; w = e^(s - m), l += w, acc += w v.
// y = acc / l. Head h is at columns h * head_dim of q, k, v and y; head_dim <= 4 WG.
#include "common.glsl"
#include "step.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(push_constant) uniform PC {
    uint q_off, k_off, v_off, y_off;
    uint stride, head_dim;
    float scale;
} pc;

shared float qs[4 * WG];
shared float sc[WG];

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint hd = pc.head_dim, T = sinfo.n_tokens, ho = h * hd;
    for (uint e = tid; e < hd; e += WG) qs[e] = arena[pc.q_off + t * pc.stride + ho + e];
    barrier();
    precise float m = uintBitsToFloat(0xff800000u), l = 0.0;
    precise float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint p0 = 0u; p0 < T; p0 += WG) {
        uint p = p0 + tid;
        if (p < T) {
            uint ko = pc.k_off + p * pc.stride + ho;
            precise float d = 0.0;
            for (uint e = 0u; e < hd; e++) {
                precise float pr = qs[e] * arena[ko + e];
                d = d + pr;
            }
            precise float s = d * pc.scale;
            sc[tid] = s;
        }
        barrier();
        uint n = min(uint(WG), T - p0);
        for (uint i = 0u; i < n; i++) {
            float s = sc[i];
            if (s > m) {
                precise float corr = cexp(m - s);
                l = l * corr;
                for (uint k = 0u; k < 4u; k++) acc[k] = acc[k] * corr;
                m = s;
            }
            precise float w = cexp(s - m);
            l = l + w;
            uint vo = pc.v_off + (p0 + i) * pc.stride + ho;
            for (uint k = 0u; k < 4u; k++) {
                uint e = tid + k * WG;
                if (e < hd) {
                    precise float pv = w * arena[vo + e];
                    acc[k] = acc[k] + pv;
                }
            }
        }
        barrier();
    }
    uint yo = pc.y_off + t * pc.stride + ho;
    for (uint k = 0u; k < 4u; k++) {
        uint e = tid + k * WG;
        if (e < hd) {
            precise float o = acc[k] / l;
            arena[yo + e] = o;
        }
    }
}
