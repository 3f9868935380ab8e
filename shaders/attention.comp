#version 450
// Causal GQA attention over one piece of one layer's KV cache (FP32 math,
// online softmax), for decode and prefill alike.
//
// Queries: the (row t, query head h) pairs of KV head kvh, numbered
// q = t * group + g (h = kvh * group + g, group = n_heads / n_kv_heads); a
// workgroup takes QB = 8 consecutive ones (so the query heads of one KV head
// share every K/V tile load) and gl_WorkGroupID.y picks its split of the piece.
// Grid: x = n_kv_heads * ceil(T * group / QB), y = n_splits.
//
// Positions: the piece holds cache positions c0 .. c1 - 1, bound as two windows
// (K at binding 1, V at binding 2, [c1 - c0][n_kv_heads][head_dim] elements
// each), so a cache larger than maxStorageBufferRange is read in pieces. Row t
// sees positions 0 .. pos0 + t. The visible part of the piece, c0 .. min(c1,
// pos0 + T) - 1, is cut into n_splits equal spans (multiples of the KV tile)
// at run time from pos0, so a recorded command buffer serves every position;
// an empty span writes neutral partials (m = -inf, l = 0, acc = 0).
//
// Output: with one piece and one split (flags bit 2) y = acc / l directly;
// otherwise partials [m, l, acc[head_dim]] go to the workspace at
// ((ps0 + split) * T + t) * n_heads + h, merged by attention_merge.comp.
// K/V tiles of KT positions are decoded to FP32 in shared memory (head_dim <= 256).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Kc { uint kc[]; };
layout(set = 0, binding = 2) readonly buffer Vc { uint vc[]; };
layout(set = 0, binding = 3) writeonly buffer Ws { float ws[]; };
layout(push_constant) uniform PC {
    uint q_off, y_off, stride, q_group_stride;
    uint heads;      // n_heads << 16 | n_kv_heads
    uint head_dim, pos0_pc, T;
    uint flags;      // kv_type (0 BF16, 1 F32, 2 FP8) | direct << 2 | n_splits << 8
    uint skews;      // K window skew | V window skew << 16, in elements
    uint c0, c1, ps0;
    float scale, k_scale, v_scale;
} pc;

// The step's first position: the one place this shader reads it.
uint step_pos0() { return pc.pos0_pc; }

#define QB 8u   // queries per workgroup
#define KT 16u  // positions per K/V tile
#define LPQ 8u  // invocations per query (WG / QB)
#define MAXJ 32u // output lanes per invocation (256 / LPQ)

shared float qs[QB * 256u], tile[KT * 256u], sc[QB * KT];

float kv_elem(uint which, uint i) {
    uint kt = pc.flags & 3u;
    uint e = i + (which == 0u ? (pc.skews & 0xffffu) : (pc.skews >> 16));
    uint w = kt == 1u ? e : kt == 0u ? e >> 1 : e >> 2;
    uint word = which == 0u ? kc[w] : vc[w];
    if (kt == 1u) return uintBitsToFloat(word);
    if (kt == 0u) return bf16_to_f32((word >> (16u * (e & 1u))) & 0xffffu);
    return e4m3_to_f32((word >> (8u * (e & 3u))) & 0xffu) * (which == 0u ? pc.k_scale : pc.v_scale);
}

void main() {
    uint tid = gl_LocalInvocationID.x, hd = pc.head_dim;
    uint nh = pc.heads >> 16, nkv = pc.heads & 0xffffu, group = nh / nkv;
    uint nqb = (pc.T * group + QB - 1u) / QB;
    uint kvh = gl_WorkGroupID.x / nqb, q0 = (gl_WorkGroupID.x % nqb) * QB;
    uint split = gl_WorkGroupID.y, ns = pc.flags >> 8;
    uint pos0 = step_pos0(), nq = pc.T * group;
    uint row = nkv * hd;

    // this split's span of the visible part of the piece
    uint last = min(q0 + QB, nq) - 1u;             // the workgroup's last query
    uint vis = min(pc.c1, pos0 + last / group + 1u); // positions c0 .. vis - 1 visible to it
    uint len = vis > pc.c0 ? vis - pc.c0 : 0u;
    uint span = ((len + ns - 1u) / ns + KT - 1u) / KT * KT;
    uint p_begin = pc.c0 + min(split * span, len), p_end = pc.c0 + min(split * span + span, len);

    for (uint i = tid; i < QB * hd; i += WG) {
        uint qi = q0 + i / hd, e = i % hd;
        float v = 0.0;
        if (qi < nq) {
            uint t = qi / group, h = kvh * group + qi % group;
            v = arena[pc.q_off + t * pc.stride + h * pc.q_group_stride + e];
        }
        qs[i] = v;
    }
    uint my = tid / LPQ, li = tid % LPQ, qi = q0 + my;
    uint my_pos = pos0 + qi / group; // causal limit of this invocation's query
    float m = uintBitsToFloat(0xff800000u), l = 0.0;
    float acc[MAXJ];
    for (uint j = 0; j < MAXJ; j++) acc[j] = 0.0;
    barrier();

    for (uint p0 = p_begin; p0 < p_end; p0 += KT) {
        uint n = min(KT, p_end - p0);
        for (uint i = tid; i < n * hd; i += WG)
            tile[i] = kv_elem(0u, (p0 - pc.c0 + i / hd) * row + kvh * hd + i % hd);
        barrier();
        for (uint i = tid; i < QB * KT; i += WG) {
            uint a = i / KT, j = i % KT, qa = q0 + a;
            float s = uintBitsToFloat(0xff800000u);
            if (j < n && qa < nq && p0 + j <= pos0 + qa / group) {
                float d = 0.0;
                for (uint e = 0; e < hd; e++) d += qs[a * hd + e] * tile[j * hd + e];
                s = d * pc.scale;
            }
            sc[i] = s;
        }
        barrier();
        for (uint i = tid; i < n * hd; i += WG)
            tile[i] = kv_elem(1u, (p0 - pc.c0 + i / hd) * row + kvh * hd + i % hd);
        barrier();
        float tm = sc[my * KT];
        for (uint j = 1; j < n; j++) tm = max(tm, sc[my * KT + j]);
        if (tm != uintBitsToFloat(0xff800000u)) { // some position of the tile visible
            float mn = max(m, tm), corr = exp(m - mn), ts = 0.0, w[KT];
            for (uint j = 0; j < KT; j++) {
                w[j] = j < n ? exp(sc[my * KT + j] - mn) : 0.0;
                ts += w[j];
            }
            l = l * corr + ts;
            for (uint jj = 0; jj < MAXJ; jj++) {
                uint e = li + jj * LPQ;
                if (e < hd) {
                    float a = acc[jj] * corr;
                    for (uint j = 0; j < n; j++) a += w[j] * tile[j * hd + e];
                    acc[jj] = a;
                }
            }
            m = mn;
        }
        barrier();
    }

    if (qi >= nq) return;
    uint t = qi / group, h = kvh * group + qi % group;
    if ((pc.flags & 4u) != 0u) {
        uint yb = pc.y_off + t * pc.stride + h * hd;
        for (uint jj = 0; jj < MAXJ; jj++) {
            uint e = li + jj * LPQ;
            if (e < hd) arena[yb + e] = acc[jj] / l;
        }
        return;
    }
    uint wb = (((pc.ps0 + split) * pc.T + t) * nh + h) * (hd + 2u);
    if (li == 0u) {
        ws[wb] = m;
        ws[wb + 1u] = l;
    }
    for (uint jj = 0; jj < MAXJ; jj++) {
        uint e = li + jj * LPQ;
        if (e < hd) ws[wb + 2u + e] = acc[jj];
    }
}
