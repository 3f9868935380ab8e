#version 450
// Causal GQA attention over one layer's cache, one workgroup per (query head h,
// row t): positions 0 .. pos0 (step info) + t in tiles of 64 with an online softmax (FP32);
// invocation i scores position tile + i, then owns output lanes i, i + 64, ...
// (head_dim <= 256). Query head h reads KV head h / (n_heads / n_kv_heads).
#include "common.glsl"
#include "step.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer KV { uint kv[]; };
layout(push_constant) uniform PC {
    uint q_off, y_off, stride, q_group_stride;
    uint n_heads, n_kv_heads, head_dim, n_ctx;
    uint kv_type, kv_elem_off; // kv_elem_off: window skew in elements
    float scale, k_scale, v_scale;
} pc;

shared float wts[WG];

float kv_load(uint which, uint p, uint i) {
    uint e = pc.kv_elem_off + (which * pc.n_ctx + p) * pc.n_kv_heads * pc.head_dim + i;
    if (pc.kv_type == 1u) return uintBitsToFloat(kv[e]);
    if (pc.kv_type == 0u) return bf16_to_f32(HALF_AT(kv, e));
    return e4m3_to_f32(BYTE_AT(kv, e)) * (which == 0u ? pc.k_scale : pc.v_scale);
}

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint hd = pc.head_dim, kvh = h / (pc.n_heads / pc.n_kv_heads), pos = sinfo.pos0 + t;
    uint qb = pc.q_off + t * pc.stride + h * pc.q_group_stride;
    float m = uintBitsToFloat(0xff800000u), l = 0.0;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint p0 = 0; p0 <= pos; p0 += WG) {
        uint p = p0 + tid;
        float sc = uintBitsToFloat(0xff800000u);
        if (p <= pos) {
            float d = 0.0;
            for (uint e = 0; e < hd; e++) d += arena[qb + e] * kv_load(0u, p, kvh * hd + e);
            sc = d * pc.scale;
        }
        wts[tid] = sc;
        barrier();
        float tm = wts[0];
        for (uint j = 1; j < WG; j++) tm = max(tm, wts[j]);
        float mn = max(m, tm), corr = exp(m - mn);
        barrier();
        wts[tid] = p <= pos ? exp(sc - mn) : 0.0;
        barrier();
        float ts = 0.0;
        uint cnt = min(uint(WG), pos + 1u - p0);
        for (uint j = 0; j < cnt; j++) ts += wts[j];
        l = l * corr + ts;
        for (uint r = 0; r < 4u; r++) {
            uint e = tid + r * WG;
            if (e >= hd) break;
            float a = acc[r] * corr;
            for (uint j = 0; j < cnt; j++) a += wts[j] * kv_load(1u, p0 + j, kvh * hd + e);
            acc[r] = a;
        }
        m = mn;
        barrier();
    }
    uint yb = pc.y_off + t * pc.stride + h * hd;
    for (uint r = 0; r < 4u; r++) {
        uint e = tid + r * WG;
        if (e < hd) arena[yb + e] = acc[r] / l;
    }
}
