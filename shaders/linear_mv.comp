#version 450
// Decode linear (matrix-vector, a few tokens): y[t, n] = post * sum_k x[t, k] * W[n, k]
// for the N rows of one bound piece of W and the tokens of one bound piece of x / y,
// bit-identical to the CPU backend (runtime/backend/cpu/cpu_linear.c): the same decoded
// weights, the same products, the same 16 accumulation chains (chain j sums
// k = j, j + 16, ... in order; no FMA contraction: `precise`), the same final
// tree ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) with a_j = chain j +
// chain j + 8, then the tail k >= 16 * (K / 16) in order, then * post.
//
// Two kernels (cmake/shaders.cmake): linear (USE_SUBGROUP: the tree by
// subgroupShuffleXor where a row's 16 lanes share one subgroup, checked at run
// time; for devices with basic, vote and shuffle subgroup operations in compute
// shaders) and linear_shmem (the tree through shared memory, for devices
// without subgroup shuffles).
//
// Layout: a workgroup of WG = 64 invocations computes NR = 4 output rows for up
// to MT = 4 tokens; invocation i is chain i % 16 of row i / 16. The weight
// stream: each step the 16 lanes of a row load 16 consecutive 16-byte pieces of
// it (uvec4, coalesced: 256 bytes) into shared memory, then every lane walks its
// chain through them. Rows that are not whole 16-byte pieces, or not 16-byte
// aligned in the binding (pc.aligned = 0), read one weight at a time instead.
//
// Weights (pc.fmt, FP4RT_W_*): 0 BF16, 1 F16, 2 F32, 3 FP8 E4M3, 4/5 NVFP4. NVFP4
// E2M1 codes become FP16 bits of code * 2^-14 (docs/NVFP4.md 4.1) times the E4M3
// block scale * 2^14: the exact value code * scale. FP8 codes become FP16 bits of
// value * 2^-8 (exact, subnormals included) times 2^8; NaN codes stay NaN. FP32
// accumulation. The FP8 and W4A4 activation quantization is a separate pass
// (act_quant.comp).
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "common.glsl"

#define NR 4u          // output rows per workgroup
#define LPR 16u        // invocations per row: the CPU's 16 chains
#define MT 4u          // tokens per workgroup

layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uvec4 w4[]; }; // the staged path
layout(set = 0, binding = 1) readonly buffer Wu { uint w[]; };   // the scalar path (same binding)
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"

uint n_tok, xbase;

// tools/spirv_count.py compiles one format (COUNT_FMT) and the one-token path
// (COUNT_ONE_TOKEN) alone, so the loop it counts is that format's decode path.
#ifdef COUNT_FMT
#define FMT COUNT_FMT
#else
#define FMT pc.fmt
#endif

// Adds wv * x[t, k] to this chain (acc[], local to main) for the tokens of this workgroup.
// (one token, the decode case, apart: no token loop)
#define ADD(wv, k)                                                                 \
    {                                                                              \
        float w_ = (wv);                                                           \
        uint k_ = (k);                                                             \
        if (n_tok == 1u) {                                                         \
            precise float p = w_ * x[xbase + k_];                                  \
            acc[0] += p;                                                           \
        } else                                                                     \
            for (uint t = 0; t < MT; t++)                                          \
                if (t < n_tok) {                                                   \
                    precise float p = w_ * x[xbase + t * pc.x_stride + k_];        \
                    acc[t] += p;                                                   \
                }                                                                  \
    }

// One weight, any alignment (the scalar path and the tail).
float weight1(uint n, uint k) {
    uint i = n * pc.K + k;
    switch (FMT) {
    case 0u: return bf16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 1u: return f16_to_f32(HALF_AT(w, (pc.w_off >> 1) + i));
    case 2u: return uintBitsToFloat(w[(pc.w_off >> 2) + i]);
    case 3u: return e4m3_to_f32(BYTE_AT(w, pc.w_off + i));
    default: {
        uint c = (BYTE_AT(w, pc.w_off + (i >> 1)) >> (4u * (i & 1u))) & 15u;
        float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + (i >> 4))) * 16384.0;
        return e2m1_scaled(c) * s;
    }
    }
}

shared uint stage[WG * 4u]; // [row][64 words]: 256 bytes of each row
shared float part[MT * WG]; // [token][invocation]: the chains, for the final tree
#ifdef USE_SUBGROUP
shared uint sg_bad;         // some subgroup does not hold whole rows in order
#endif

// Weight `lane` of group g (16 weights) of row r's stage, the group starting at
// byte gb of the stage.
float staged(uint r, uint gb, uint lane, uint n, uint g) {
    switch (FMT) {
    case 0u:
    case 1u: {
        uint b = gb + 2u * lane;
        uint h = (stage[r * LPR * 4u + (b >> 2)] >> (8u * (b & 3u))) & 0xffffu;
        return FMT == 0u ? bf16_to_f32(h) : f16_to_f32(h);
    }
    case 2u: {
        uint b = gb + 4u * lane;
        return uintBitsToFloat(stage[r * LPR * 4u + (b >> 2)]);
    }
    case 3u: {
        uint b = gb + lane;
        return e4m3_to_f32((stage[r * LPR * 4u + (b >> 2)] >> (8u * (b & 3u))) & 0xffu);
    }
    default: {
        uint b = gb + (lane >> 1);
        uint c = (stage[r * LPR * 4u + (b >> 2)] >> (8u * (b & 3u) + 4u * (lane & 1u))) & 15u;
        float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + n * (pc.K / 16u) + g)) * 16384.0;
        return e2m1_scaled(c) * s;
    }
    }
}

// ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), a_j = p[j] + p[j + 8]: the CPU's reduce16.
float reduce16(uint base) {
    precise float a[8];
    for (uint j = 0; j < 8u; j++) a[j] = part[base + j] + part[base + j + 8u];
    precise float r = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    return r;
}

void main() {
    uint tid = gl_LocalInvocationID.x, r = tid / LPR, lane = tid % LPR;
    uint n = gl_WorkGroupID.x * NR + r, t0 = gl_WorkGroupID.y * MT;
    bool live = n < pc.N;
#ifdef COUNT_ONE_TOKEN
    n_tok = 1u;
#else
    n_tok = min(MT, pc.T - t0);
#endif
    xbase = pc.x_off + t0 * pc.x_stride;
    precise float acc[MT];
    for (uint t = 0; t < MT; t++) acc[t] = 0.0;
    uint ng = pc.K / 16u; // whole groups of 16: the chains; the rest is the tail
    if (pc.aligned != 0u) {
        uint gbytes = FMT == 2u ? 64u : FMT <= 1u ? 32u : FMT == 3u ? 16u : 8u;
        uint rq = ng * gbytes / 16u; // 16-byte pieces of the whole groups of a row
        uint rowq = FMT == 2u ? pc.K / 4u : FMT <= 1u ? pc.K / 8u : FMT == 3u ? pc.K / 16u : pc.K / 32u;
        uint base = pc.w_off / 16u + n * rowq; // (K * bytes % 16 == 0 here)
        for (uint q0 = 0; q0 < rq; q0 += LPR) { // uniform: every row has rq pieces
            uint q = q0 + lane;
            uvec4 v = live && q < rq ? w4[base + q] : uvec4(0u);
            stage[4u * tid] = v.x;
            stage[4u * tid + 1u] = v.y;
            stage[4u * tid + 2u] = v.z;
            stage[4u * tid + 3u] = v.w;
            barrier();
            uint g0 = q0 * 16u / gbytes, gn = min(LPR * 16u / gbytes, ng - g0);
            if (live)
                for (uint gi = 0; gi < gn; gi++) ADD(staged(r, gi * gbytes, lane, n, g0 + gi), (g0 + gi) * 16u + lane);
            barrier();
        }
    } else if (live) {
        for (uint g = 0; g < ng; g++) ADD(weight1(n, g * 16u + lane), g * 16u + lane);
    }
#ifdef USE_SUBGROUP
    // the tree by shuffles (xor 8, 4, 1, 2 leaves exactly reduce16's sum in lane
    // 0 of each row) when every subgroup holds whole rows in invocation order;
    // else through shared memory. Both give the same bits.
    if (tid == 0u) sg_bad = 0u;
    barrier();
    bool ok = gl_SubgroupSize >= LPR && subgroupAll(gl_SubgroupInvocationID == tid % gl_SubgroupSize);
    if (!ok) atomicOr(sg_bad, 1u);
    barrier();
    bool shuffled = sg_bad == 0u;
    if (shuffled)
        for (uint t = 0; t < n_tok; t++) {
            precise float v = acc[t];
            v += subgroupShuffleXor(v, 8u);
            v += subgroupShuffleXor(v, 4u);
            v += subgroupShuffleXor(v, 1u);
            v += subgroupShuffleXor(v, 2u);
            if (lane == 0u) part[t * WG + tid] = v;
        }
    else
        for (uint t = 0; t < n_tok; t++) part[t * WG + tid] = acc[t];
#else
    const bool shuffled = false;
    for (uint t = 0; t < n_tok; t++) part[t * WG + tid] = acc[t];
#endif
    barrier();
    if (tid < NR * n_tok) {
        uint rr = tid % NR, t = tid / NR, nn = gl_WorkGroupID.x * NR + rr;
        if (nn < pc.N) {
            precise float s = shuffled ? part[t * WG + rr * LPR] : reduce16(t * WG + rr * LPR);
            uint xb = xbase + t * pc.x_stride;
            for (uint k = ng * 16u; k < pc.K; k++) {
                precise float p = weight1(nn, k) * x[xb + k];
                s += p;
            }
            float post = pc.post_off != 0u ? x[pc.post_off + t0 + t] : pc.post;
            y[pc.y_off + (t0 + t) * pc.y_stride + nn] = s * post;
        }
    }
}
