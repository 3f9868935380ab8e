#version 450
// Causal GQA attention over one piece of one layer's KV cache (FP32 math,
// online softmax), for decode and prefill alike. This is the numerics
// contract's attention: the CPU (runtime/backend/cpu/cpu_attention.c) runs the same
// per-position updates, splits (fp4rt_attn_splits) and merge in the same order
// with the same exp (canon.glsl), so the two agree bit for bit.
//
// Queries: the (row t, query head h) pairs of KV head kvh, numbered
// q = t * group + g (h = kvh * group + g, group = n_heads / n_kv_heads); a
// workgroup takes QB = 8 consecutive ones (so the query heads of one KV head
// share every K/V tile load) and gl_WorkGroupID.y picks its split.
// Grid: x = n_kv_heads * ceil(T * group / QB), y = n_splits; with flags bit 4
// (rows: a verify step, fp4rt_step.decode_rows) x = n_kv_heads * T *
// ceil(group / QB): a workgroup holds the queries of one row only, so its
// spans are those of a 1-token step at that row's position.
//
// Splits: the positions a workgroup sees, 0 .. pos0 + t_last, are cut into
// n_splits equal spans (multiples of the KV tile) at run time from pos0 (step
// info), so a recorded command buffer serves every position; n_splits is fixed
// by the host from n_ctx alone. Pieces: the cache is bound as pieces of
// positions c0 .. c1 - 1 (K at binding 1, V at binding 2, [c1 - c0][n_kv_heads]
// [head_dim] elements each), one dispatch per piece in order; a split carries
// its running (m, l, acc) from piece to piece through the workspace (flags:
// first piece starts from m = -inf, l = 0, acc = 0). The softmax is updated one
// position at a time, in position order, so the result does not depend on the
// tile or piece layout: a cache bound in pieces gives bit-identical outputs.
//
// Output: after the last piece, with one split, y = acc / l; otherwise the
// split's partial [m, l, acc[head_dim]] stays in the workspace at
// (split * T + t) * n_heads + h (a split that saw nothing: m = -inf, l = 0) and
// attention_merge.comp combines them.
// K/V tiles of KT positions are decoded to FP32 in shared memory (head_dim <= 256).
#include "common.glsl"
#include "step.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Kc { uint kc[]; };
layout(set = 0, binding = 2) readonly buffer Vc { uint vc[]; };
layout(set = 0, binding = 3) buffer Ws { float ws[]; };
layout(push_constant) uniform PC {
    uint q_off, y_off, stride, q_group_stride;
    uint heads;      // n_heads << 16 | n_kv_heads
    uint head_dim, T;
    uint flags;      // kv_type (0 BF16, 1 F32, 2 FP8) | first piece << 2 | last piece << 3 | rows << 4 | n_splits << 8
    uint skews;      // K window skew | V window skew << 16, in elements
    uint c0, c1;
    float scale, k_scale, v_scale;
} pc;

// The step's first position (step info): the one place this shader reads it.
uint step_pos0() { return sinfo.pos0; }

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
    uint rows = (pc.flags >> 4) & 1u, per_row = (group + QB - 1u) / QB;
    uint nqb = rows != 0u ? pc.T * per_row : (pc.T * group + QB - 1u) / QB;
    uint wg = gl_WorkGroupID.x % nqb, kvh = gl_WorkGroupID.x / nqb;
    uint q0 = rows != 0u ? (wg / per_row) * group + (wg % per_row) * QB : wg * QB;
    uint split = gl_WorkGroupID.y, ns = pc.flags >> 8;
    // nq: the end of the workgroup's queries (its row's end with rows)
    uint pos0 = step_pos0(), nq = rows != 0u ? (q0 / group + 1u) * group : pc.T * group;
    uint row = nkv * hd;

    // this split's span of the positions the workgroup sees, within the piece
    uint last = min(q0 + QB, nq) - 1u;    // the workgroup's last query
    uint len = pos0 + last / group + 1u;  // it sees positions 0 .. len - 1
    uint span = ((len + ns - 1u) / ns + KT - 1u) / KT * KT;
    uint p_begin = max(pc.c0, min(split * span, len)), p_end = min(pc.c1, min(split * span + span, len));

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
    uint t = qi / group, h = kvh * group + qi % group;
    uint wb = ((split * pc.T + t) * nh + h) * (hd + 2u);
    float m = uintBitsToFloat(0xff800000u);
    precise float l = 0.0;
    precise float acc[MAXJ];
    for (uint j = 0; j < MAXJ; j++) acc[j] = 0.0;
    if ((pc.flags & 4u) == 0u && qi < nq) { // carried from the previous piece
        m = ws[wb];
        l = ws[wb + 1u];
        for (uint jj = 0; jj < MAXJ; jj++) {
            uint e = li + jj * LPQ;
            if (e < hd) acc[jj] = ws[wb + 2u + e];
        }
    }
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
                precise float d = 0.0;
                for (uint e = 0; e < hd; e++) d += qs[a * hd + e] * tile[j * hd + e];
                s = d * pc.scale;
            }
            sc[i] = s;
        }
        barrier();
        for (uint i = tid; i < n * hd; i += WG)
            tile[i] = kv_elem(1u, (p0 - pc.c0 + i / hd) * row + kvh * hd + i % hd);
        barrier();
        for (uint j = 0; j < n; j++) { // one position at a time, in order
            float sj = sc[my * KT + j];
            if (sj == uintBitsToFloat(0xff800000u)) continue; // masked
            if (sj > m) {
                float corr = cexp(m - sj);
                l *= corr;
                for (uint jj = 0; jj < MAXJ; jj++) acc[jj] *= corr;
                m = sj;
            }
            float w = cexp(sj - m);
            l += w;
            for (uint jj = 0; jj < MAXJ; jj++) {
                uint e = li + jj * LPQ;
                if (e < hd) acc[jj] += w * tile[j * hd + e];
            }
        }
        barrier();
    }

    if (qi >= nq) return;
    if ((pc.flags & 8u) != 0u && ns == 1u) {
        uint yb = pc.y_off + t * pc.stride + h * hd;
        for (uint jj = 0; jj < MAXJ; jj++) {
            uint e = li + jj * LPQ;
            if (e < hd) arena[yb + e] = acc[jj] / l;
        }
        return;
    }
    if (li == 0u) {
        ws[wb] = m;
        ws[wb + 1u] = l;
    }
    for (uint jj = 0; jj < MAXJ; jj++) {
        uint e = li + jj * LPQ;
        if (e < hd) ws[wb + 2u + e] = acc[jj];
    }
}
