#version 450
// Greedy pick: the index of the largest of n logits (ids whose bit in the valid
// mask is 0 count as -inf; ties: the lowest index), which is exactly what the
// CPU sampler's strict-greater scan returns when no logit is NaN. One
// workgroup: invocation i scans i, i + 64, ...; a fixed-order tree merges.
// out[o_off] = the index, out[o_off + 1] = 1 if a (valid) logit was NaN (the
// host then samples on the CPU).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer L { float logits[]; };
layout(set = 0, binding = 1) readonly buffer M { uint valid[]; };
layout(set = 0, binding = 2) buffer O { uint outv[]; };
layout(push_constant) uniform PC { uint n, l_off, has_mask, o_off; } pc;

shared float sv[WG];
shared uint si[WG], sn[WG];

const uint NONE = 0xffffffffu;

bool better(float a, uint ia, float b, uint ib) {
    return ib == NONE || (ia != NONE && (a > b || (a == b && ia < ib)));
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    float bv = 0.0;
    uint bi = NONE, nan_ = 0u;
    for (uint i = tid; i < pc.n; i += WG) {
        float v = logits[pc.l_off + i];
        if (pc.has_mask != 0u && ((valid[i >> 5] >> (i & 31u)) & 1u) == 0u) v = uintBitsToFloat(0xff800000u);
        if (isnan(v)) {
            nan_ = 1u;
            continue;
        }
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    sv[tid] = bv;
    si[tid] = bi;
    sn[tid] = nan_;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            if (better(sv[tid + s], si[tid + s], sv[tid], si[tid])) {
                sv[tid] = sv[tid + s];
                si[tid] = si[tid + s];
            }
            sn[tid] |= sn[tid + s];
        }
        barrier();
    }
    if (tid == 0u) {
        outv[pc.o_off] = si[0] == NONE ? 0u : si[0];
        outv[pc.o_off + 1u] = sn[0];
    }
}
