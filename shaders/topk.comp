#version 450
// Device top-k (runtime/backend/backend.h top_k, runtime/backend/vulkan/vk_topk.c): the k best
// (value, id) pairs of a logits row after the CPU sampler's masking, penalties
// and temperature; higher value first, ties by lower id.
//
// Levels, one dispatch each. Every workgroup sorts a slice of S entries in
// shared memory with a bitonic network (barriers only: no subgroup size is
// assumed, the result is the same on every device) and writes its k best.
// Level 0 (pc.level == 0) reads logits: slice g is ids [g S, g S + S). Later
// levels read the previous level's output, a flat list of pc.n pairs. The
// host runs levels until one workgroup remains.
//
// Pairs are stored as two words: the value's bits and the id (all buffers are
// read and written as uint, so no float bits are ever reinterpreted in memory). Padding past
// the end is (-inf, PAD), which sorts after every real -inf entry. An id whose
// value is NaN becomes NAN_ID, which sorts first at every level, so the last
// level's first id tells the host that the CPU sampler must decide.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer Src { uint src[]; };       // level 0: logits, else pairs
layout(set = 0, binding = 1) readonly buffer M { uint valid[]; };       // bit per id (level 0, has_mask)
layout(set = 0, binding = 2) readonly buffer P { uvec2 pen[]; };        // (id, count), ids ascending
layout(set = 0, binding = 3) writeonly buffer Dst { uint dst[]; };      // [n_groups][k] pairs
layout(push_constant) uniform PC {
    uint n;        // level 0: logits; else input pairs
    uint level, k;
    uint src_off;  // words from the binding start (window skew)
    uint dst_off;
    uint has_mask, n_pen;
    float temperature, rep, presence, frequency;
} pc;

const uint S = 1024u;
const uint PAD = 0xffffffffu;
const uint NAN_ID = 0xfffffffeu;

shared float sv[S];
shared uint si[S];
shared uint s_lo;

// a sorts before b
bool before(float a, uint ia, float b, uint ib) {
    if (ia == NAN_ID) return ib != NAN_ID;
    if (ib == NAN_ID) return false;
    return a > b || (a == b && ia < ib);
}

// a / b correctly rounded (to nearest, ties to even; subnormals kept) for b a
// positive normal float, by integer long division: Vulkan allows OpFDiv an
// error of 2.5 ulp, and the contract is the CPU's IEEE division bit for bit.
float div_rn(float a, float b) {
    uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
    uint ea = (ua >> 23) & 0xffu, ma = ua & 0x7fffffu;
    if (ea == 255u || (ea == 0u && ma == 0u)) return a; // inf, NaN, zero: the quotient is a itself
    int e;
    if (ea == 0u) { // subnormal: normalize so bit 23 is set
        int sh = 23 - findMSB(ma);
        ma <<= uint(sh);
        e = 1 - sh;
    } else {
        ma |= 0x800000u;
        e = int(ea);
    }
    uint mb = (ub & 0x7fffffu) | 0x800000u;
    int qe = e - int((ub >> 23) & 0xffu) + 127; // biased exponent of the quotient
    if (ma < mb) {
        ma <<= 1u;
        qe -= 1;
    }
    // ma / mb in [1, 2): 26 quotient bits (1 + 23 + 2 for rounding), then the sticky remainder
    uint q = 0u, r = ma;
    for (int i = 0; i < 26; i++) {
        q <<= 1u;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1u;
    }
    uint sign = ua & 0x80000000u;
    if (qe > 254) return uintBitsToFloat(sign | 0x7f800000u);
    uint shift = qe >= 1 ? 2u : uint(3 - qe); // subnormal results lose more bits
    if (shift > 26u) return uintBitsToFloat(sign); // below half the smallest subnormal
    uint m = q >> shift, rem = q & ((1u << shift) - 1u), half_ = 1u << (shift - 1u);
    if (rem > half_ || (rem == half_ && (r != 0u || (m & 1u) != 0u))) m++;
    // m carries the implicit bit: adding it to (qe - 1) << 23 gives the exponent, a carry included
    uint bits = qe >= 1 ? (uint(qe - 1) << 23) + m : m;
    return uintBitsToFloat(sign | min(bits, 0x7f800000u));
}

void main() {
    uint tid = gl_LocalInvocationID.x, g = gl_WorkGroupID.x;
    uint base = g * S;
    for (uint t = tid; t < S; t += WG) {
        uint i = base + t;
        float v = uintBitsToFloat(0xff800000u);
        uint id = PAD;
        if (i < pc.n) {
            if (pc.level == 0u) {
                v = uintBitsToFloat(src[pc.src_off + i]);
                if (pc.has_mask != 0u && ((valid[i >> 5] >> (i & 31u)) & 1u) == 0u) v = uintBitsToFloat(0xff800000u);
                id = i;
            } else {
                v = uintBitsToFloat(src[pc.src_off + 2u * i]);
                id = src[pc.src_off + 2u * i + 1u];
            }
        }
        sv[t] = v;
        si[t] = id;
    }
    if (pc.level == 0u) {
        if (pc.n_pen > 0u) { // the listed ids of this slice: [s_lo, ...) by binary search
            if (tid == 0u) {
                uint lo = 0u, hi = pc.n_pen;
                while (lo < hi) {
                    uint mid = (lo + hi) / 2u;
                    if (pen[mid].x < base) lo = mid + 1u;
                    else hi = mid;
                }
                s_lo = lo;
            }
            barrier();
            for (uint j = s_lo + tid; j < pc.n_pen && pen[j].x < base + S && pen[j].x < pc.n; j += WG) {
                uint t = pen[j].x - base;
                precise float x = sv[t];
                if (pc.rep != 1.0) x = x > 0.0 ? div_rn(x, pc.rep) : x * pc.rep;
                if (pen[j].y != 0u) {
                    precise float sub = pc.presence + pc.frequency * float(pen[j].y);
                    x = x - sub;
                }
                sv[t] = x;
            }
        }
        barrier();
        for (uint t = tid; t < S; t += WG) {
            if (si[t] == PAD) continue;
            float v = div_rn(sv[t], pc.temperature);
            sv[t] = v;
            if (isnan(v)) si[t] = NAN_ID;
        }
    }
    barrier();
    // bitonic sort of the slice: blocks of `size` alternate direction until the last
    for (uint size = 2u; size <= S; size <<= 1u) {
        for (uint stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (uint t = tid; t < S / 2u; t += WG) {
                uint a = 2u * t - (t & (stride - 1u)), b = a + stride;
                bool first = (a & size) == 0u; // this block ends best-first
                bool sw = first ? before(sv[b], si[b], sv[a], si[a]) : before(sv[a], si[a], sv[b], si[b]);
                if (sw) {
                    float tv = sv[a];
                    sv[a] = sv[b];
                    sv[b] = tv;
                    uint ti = si[a];
                    si[a] = si[b];
                    si[b] = ti;
                }
            }
            barrier();
        }
    }
    for (uint t = tid; t < pc.k; t += WG) {
        dst[pc.dst_off + 2u * (g * pc.k + t)] = floatBitsToUint(sv[t]);
        dst[pc.dst_off + 2u * (g * pc.k + t) + 1u] = si[t];
    }
}
