// Decode linear (matrix-vector, a few tokens): y[t, n] = post * sum_k x[t, k] * W[n, k]
// for the N rows of one bound piece of W and the tokens of one bound piece of x / y.
//
// Included by linear.comp (USE_SUBGROUP: subgroup reductions) and
// linear_shmem.comp (shared-memory tree, for devices without subgroup arithmetic
// in compute shaders).
//
// Layout: a workgroup of WG invocations computes NR output rows for up to MT
// tokens. Invocation i serves row i / LPR (LPR = WG / NR invocations per row);
// those LPR invocations sweep the row in 16-byte pieces (uvec4 loads), each
// keeping one FP32 partial sum per token. Reduction, fixed order per device:
//   subgroup: every subgroup adds its lanes of each row (subgroupAdd over a
//   row mask: no assumption on the subgroup size or on how rows fall into
//   subgroups), one partial per (row, subgroup) in shared memory, then the
//   partials summed in subgroup order;
//   shmem: a tree over the LPR lanes of each row.
//
// Weights (pc.fmt, FP4RT_W_*): 0 BF16, 1 F16, 2 F32, 3 FP8 E4M3, 4/5 NVFP4. NVFP4
// E2M1 codes become FP16 bits of code * 2^-14 (NVFP4.md 4.1, two codes per
// 32-bit pair), unpacked and multiplied by the E4M3 block scale * 2^14: the
// exact value code * scale, as the CPU decodes it. FP8 codes become FP16 bits of
// value * 2^-8 (exact, subnormals included); the 2^8 is applied to the sum
// (exact), NaN codes stay NaN. FP32 accumulation. The FP8 and W4A4 activation
// quantization is a separate pass (act_quant.comp).
//
// pc.aligned = 1 when every row starts 16-byte aligned in the binding and is a
// whole number of 16-byte pieces (K * bytes per weight % 16 == 0); else the
// scalar path reads one weight at a time.
#include "common.glsl"

#define NR 4u         // output rows per workgroup
#define LPR (WG / NR) // invocations per row
#define MT 4u         // tokens per workgroup

layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uvec4 w4[]; }; // the vector path
layout(set = 0, binding = 1) readonly buffer Wu { uint w[]; };   // the scalar path (same binding)
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform PC {
    uint K, fmt, x_off, x_stride;   // x row t at x_off + t * x_stride (floats)
    uint y_off, y_stride, N, T;     // y row t at y_off + t * y_stride, columns 0..N-1
    uint w_off, s_off, aligned;     // byte offsets of row 0 of W / of the scales
    float post;
} pc;

float acc[MT];
uint n_tok, xbase;

// Adds w * x[t, k] for the tokens of this workgroup.
void add(float w, uint k) {
    for (uint t = 0; t < MT; t++)
        if (t < n_tok) acc[t] += w * x[xbase + t * pc.x_stride + k];
}

// One weight, any alignment (the scalar path).
float weight1(uint n, uint k) {
    uint i = n * pc.K + k;
    switch (pc.fmt) {
    case 0u: return bf16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 1u: return unpackHalf2x16(HALF_AT(w, (pc.w_off >> 1) + i)).x;
    case 2u: return uintBitsToFloat(w[(pc.w_off >> 2) + i]);
    case 3u: return e4m3_to_f32(BYTE_AT(w, pc.w_off + i));
    default: {
        uint c = (BYTE_AT(w, pc.w_off + (i >> 1)) >> (4u * (i & 1u))) & 15u;
        float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + (i >> 4))) * 16384.0;
        return unpackHalf2x16(e2m1_to_f16_bits(c)).x * s;
    }
    }
}

// FP16 bits of the two E2M1 codes in bits 0..7 of u, scaled by 2^-14, as a pair.
uint e2m1_pair(uint u) {
    return ((u & 0x8u) << 12) | ((u & 0x7u) << 9) | ((u & 0x80u) << 24) | ((u & 0x70u) << 21);
}

// FP16 bits of the two E4M3 codes in bits 0..15 of u, scaled by 2^-8, as a pair.
uint e4m3_pair(uint u) {
    return ((u & 0x80u) << 8) | ((u & 0x7fu) << 7) | ((u & 0x8000u) << 16) | ((u & 0x7f00u) << 15);
}

// Row n, 16-byte pieces q = first, first + LPR, ... (the vector path).
void row_vec4(uint n, uint first) {
    uint bpw = pc.fmt == 2u ? 4u : pc.fmt <= 1u ? 2u : pc.fmt == 3u ? 1u : 0u; // bytes per weight
    uint epq = bpw == 0u ? 32u : 16u / bpw;                                  // weights per piece
    uint rq = pc.K / epq;                                                    // pieces per row
    uint base = pc.w_off / 16u + n * rq;
    for (uint q = first; q < rq; q += LPR) {
        uvec4 u = w4[base + q];
        uint k0 = q * epq;
        switch (pc.fmt) {
        case 0u:
            for (uint j = 0; j < 4u; j++) {
                add(uintBitsToFloat(u[j] << 16), k0 + 2u * j);
                add(uintBitsToFloat(u[j] & 0xffff0000u), k0 + 2u * j + 1u);
            }
            break;
        case 1u:
            for (uint j = 0; j < 4u; j++) {
                vec2 v = unpackHalf2x16(u[j]);
                add(v.x, k0 + 2u * j);
                add(v.y, k0 + 2u * j + 1u);
            }
            break;
        case 2u:
            for (uint j = 0; j < 4u; j++) add(uintBitsToFloat(u[j]), k0 + j);
            break;
        case 3u:
            for (uint j = 0; j < 4u; j++) {
                uint v = u[j];
                if ((((v & 0x7f7f7f7fu) + 0x01010101u) & 0x80808080u) != 0u) {
                    // a NaN code (0x7f / 0xff): decode this word exactly, scaled like the rest
                    for (uint b = 0; b < 4u; b++)
                        add(e4m3_to_f32((v >> (8u * b)) & 0xffu) * (1.0 / 256.0), k0 + 4u * j + b);
                    continue;
                }
                vec2 lo = unpackHalf2x16(e4m3_pair(v)), hi = unpackHalf2x16(e4m3_pair(v >> 16));
                add(lo.x, k0 + 4u * j);
                add(lo.y, k0 + 4u * j + 1u);
                add(hi.x, k0 + 4u * j + 2u);
                add(hi.y, k0 + 4u * j + 3u);
            }
            break;
        default: {
            uint sb = pc.s_off + (n * pc.K + k0) / 16u; // two blocks: words 0-1, 2-3
            float s0 = e4m3_to_f32(BYTE_AT(sc, sb)) * 16384.0;
            float s1 = e4m3_to_f32(BYTE_AT(sc, sb + 1u)) * 16384.0;
            for (uint j = 0; j < 4u; j++) {
                uint v = u[j];
                float s = j < 2u ? s0 : s1;
                for (uint b = 0; b < 4u; b++) {
                    vec2 h = unpackHalf2x16(e2m1_pair(v >> (8u * b))) * s;
                    add(h.x, k0 + 8u * j + 2u * b);
                    add(h.y, k0 + 8u * j + 2u * b + 1u);
                }
            }
        }
        }
    }
}

#ifdef USE_SUBGROUP
shared float part[MT * NR * WG]; // [token][row][subgroup]
#else
shared float part[MT * WG]; // [token][invocation]
#endif

void main() {
    uint tid = gl_LocalInvocationID.x, r = tid / LPR, lane = tid % LPR;
    uint n = gl_WorkGroupID.x * NR + r, t0 = gl_WorkGroupID.y * MT;
    n_tok = min(MT, pc.T - t0);
    xbase = pc.x_off + t0 * pc.x_stride;
    for (uint t = 0; t < MT; t++) acc[t] = 0.0;
    if (n < pc.N) {
        if (pc.aligned != 0u) row_vec4(n, lane);
        else
            for (uint k = lane; k < pc.K; k += LPR) add(weight1(n, k), k);
    }
    float scale = pc.fmt == 3u && pc.aligned != 0u ? 256.0 : 1.0;
#ifdef USE_SUBGROUP
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
    for (uint t = 0; t < n_tok; t++)
        for (uint rr = 0; rr < NR; rr++) {
            float s = subgroupAdd(r == rr ? acc[t] : 0.0);
            if (subgroupElect()) part[(t * NR + rr) * WG + sg] = s;
        }
    barrier();
    if (tid < NR * n_tok) {
        uint rr = tid % NR, t = tid / NR, nn = gl_WorkGroupID.x * NR + rr;
        float s = 0.0;
        for (uint g = 0; g < nsg; g++) s += part[(t * NR + rr) * WG + g];
        if (nn < pc.N) y[pc.y_off + (t0 + t) * pc.y_stride + nn] = s * scale * pc.post;
    }
#else
    for (uint t = 0; t < n_tok; t++) part[t * WG + tid] = acc[t];
    barrier();
    for (uint s = LPR / 2u; s > 0u; s >>= 1) {
        if (lane < s)
            for (uint t = 0; t < n_tok; t++) part[t * WG + tid] += part[t * WG + tid + s];
        barrier();
    }
    if (tid < NR * n_tok) {
        uint rr = tid % NR, t = tid / NR, nn = gl_WorkGroupID.x * NR + rr;
        if (nn < pc.N) y[pc.y_off + (t0 + t) * pc.y_stride + nn] = part[t * WG + rr * LPR] * scale * pc.post;
    }
#endif
}
