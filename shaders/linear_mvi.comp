#version 450
// Decode linear on the decode layout (wlayout.glsl): y[t, n] = post * sum_k
// x[t, k] * W[n, k] for the N rows of one bound piece of W and the tokens of
// one bound piece of x / y, bit-identical to the CPU backend
// (runtime/backend/cpu/cpu_linear.c) and to linear_mv.comp: the same decoded
// weights, the same products, the same 16 accumulation chains (chain j sums
// k = j, j + 16, ... in order; no FMA contraction: `precise`), the same final
// tree ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) with a_j = chain j +
// chain j + 8, then * post. Only K % 16 == 0 (no tail): the host sends other
// rows, and F16 / F32 weights, to linear_mv.comp.
//
// One kernel per weight format (WFMT; cmake/shaders.cmake): linear_mvi_nvfp4
// (4: NVFP4 W4A16 and W4A4), linear_mvi_fp8 (3), linear_mvi_bf16 (0).
//
// Layout: a workgroup of WG = 64 invocations computes RPW = 16 output rows for
// up to MT = 4 tokens; invocation i runs chains 4q .. 4q + 3 (q = i % 4) of
// row i / 4 as the four lanes of a vec4, so one vector multiply and one vector
// add serve the four weights of a quarter-group (each lane its own chain, in
// k order). Per full block of B groups (wlayout.glsl) an invocation loads its
// 16-byte quarter (one uvec4) and, for NVFP4, the block's B scale bytes (two
// 32-bit words); it decodes codes through tables in shared memory (E4M3 code
// -> value, E2M1 code -> value), one scale per 4 weights; x comes from shared
// memory, staged CG = 32 groups at a time per workgroup as vec4 (inputs
// 16 g + 4 q .. + 3 in one vec4, the quarter an invocation multiplies).
// pc.aligned = 1 when every row's quarters start on 16 bytes and (NVFP4) its
// block scales on 4; otherwise, and for a row's last partial block, the
// per-group path reads one quarter at a time (16- or 32-bit loads).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define RPW 16u // output rows per workgroup (FP4RT_VK_MVI_ROWS)
#define MT 4u   // tokens per workgroup (FP4RT_VK_MVI_TOKENS)
#define CG 32u  // groups of x staged per step (a multiple of B)
#if WFMT == 4
#define B 8u    // groups per block (wlayout.glsl: 16 / bytes of 4 weights)
#elif WFMT == 3
#define B 4u
#else
#define B 2u
#endif

layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W4 { uvec4 w4[]; }; // full blocks (pc.aligned)
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };    // the per-group path (same binding)
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"

#ifdef COUNT_ONE_TOKEN // tools/spirv_count.py: the one-token decode path alone
#define N_TOK 1u
#else
#define N_TOK nt
#endif

shared vec4 xs[MT][CG * 4u]; // xs[t][4 g + q] = x[t, 16 (g0 + g) + 4 q .. + 3]
shared vec4 part[MT][WG];    // the chains, for the final tree
#if WFMT == 4
shared float lut_s[256];     // E4M3 block-scale code -> value * 2^14
shared float lut_c[16];      // E2M1 code -> value * 2^-14 (their products: code * scale, exact)
#elif WFMT == 3
shared float lut_s[256];     // E4M3 weight code -> value
#endif

// The 4 weights of a quarter whose bits are v (NVFP4: 16 bits, FP8: 32, BF16:
// v.x and v.y), times the block scale s (NVFP4; exact products).
#if WFMT == 4
#define QUARTER(v, sh, s) (vec4(lut_c[bitfieldExtract(v, int(sh), 4)], lut_c[bitfieldExtract(v, int(sh) + 4, 4)], \
                                lut_c[bitfieldExtract(v, int(sh) + 8, 4)], lut_c[bitfieldExtract(v, int(sh) + 12, 4)]) * (s))
#elif WFMT == 3
#define QUARTER(v) vec4(lut_s[bitfieldExtract(v, 0, 8)], lut_s[bitfieldExtract(v, 8, 8)], \
                        lut_s[bitfieldExtract(v, 16, 8)], lut_s[bitfieldExtract(v, 24, 8)])
#else
#define QUARTER(a, b) uintBitsToFloat(uvec4((a) << 16, (a) & 0xffff0000u, (b) << 16, (b) & 0xffff0000u))
#endif

// chains[t] += wv * x[t, quarter xi of the stage], t < n_tok, never fused.
// Unrolled by hand: spirv-opt's unroller ([[unroll]]) drops the NoContraction
// decoration of `precise` from the copies it makes, and -O then fuses the
// multiply and add into an Fma (tests/shaders/check_no_fma.sh).
#define MAC1(w_, xi, t)                                                           \
    if (t < N_TOK) {                                                              \
        precise vec4 p = w_ * xs[t][xi];                                          \
        acc[t] += p;                                                              \
    }
#define MAC(wv, xi)                                                               \
    {                                                                             \
        precise vec4 w_ = (wv);                                                   \
        uint xi_ = (xi);                                                          \
        MAC1(w_, xi_, 0u) MAC1(w_, xi_, 1u) MAC1(w_, xi_, 2u) MAC1(w_, xi_, 3u)   \
    }

// Group j of the block in v (NVFP4: scale words s2), x quarter xi.
#if WFMT == 4
#define GROUP(j, xi) MAC(QUARTER(v[(j) / 2u], 16u * ((j) % 2u), lut_s[bitfieldExtract(s2[(j) / 4u], int(8u * ((j) % 4u)), 8)]), xi)
#elif WFMT == 3
#define GROUP(j, xi) MAC(QUARTER(v[j]), xi)
#else
#define GROUP(j, xi) MAC(QUARTER(v[2u * (j)], v[2u * (j) + 1u]), xi)
#endif

// The fused element-wise op (pc.pre) on input kk of the token whose row starts
// at float `row` of the x binding: the expressions of eltwise.comp (modes 1
// and 0) on the same canonical silu / sigmoid, so the same bits. Called four
// times by hand, not in a loop (see MAC1 on the unroller and `precise`).
float pre1(float xv, uint row, uint kk) {
    float g = x[pc.pre_off + row + (kk / pc.pre_gd) * pc.pre_gs + kk % pc.pre_gd];
    return pc.pre == 1u ? silu(xv) * g : xv * sigmoid(g);
}
vec4 pre_op(vec4 xv, uint row, uint k) {
    return vec4(pre1(xv.x, row, k), pre1(xv.y, row, k + 1u), pre1(xv.z, row, k + 2u), pre1(xv.w, row, k + 3u));
}

void main() {
    uint tid = gl_LocalInvocationID.x, r = tid / 4u, q = tid % 4u;
    uint n = gl_WorkGroupID.x * RPW + r, t0 = gl_WorkGroupID.y * MT;
    bool live = n < pc.N;
    uint nt = min(MT, pc.T - t0);
    uint G = pc.K / 16u, Gfull = G - G % B; // groups; those in full blocks
#if WFMT == 4
    for (uint i = tid; i < 256u; i += WG) lut_s[i] = e4m3_to_f32(i) * 16384.0;
    if (tid < 16u) lut_c[tid] = e2m1_scaled(tid);
#elif WFMT == 3
    for (uint i = tid; i < 256u; i += WG) lut_s[i] = e4m3_to_f32(i);
#endif
    precise vec4 acc[MT];
    for (uint t = 0u; t < MT; t++) acc[t] = vec4(0.0);
    uint rowb = pc.w_off + n * G * (4u * 16u / B); // byte of row n (4 u G bytes)
    uint srow = pc.s_off + n * G;                  // byte of row n's first block scale
    for (uint g0 = 0u; g0 < G; g0 += CG) {
        uint cg = min(CG, G - g0);
        for (uint t = 0u; t < nt; t++)
            for (uint v = tid; v < cg * 4u; v += WG) {
                uint xb = pc.x_off + (t0 + t) * pc.x_stride + g0 * 16u + 4u * v;
                vec4 xv = vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
                if (pc.pre != 0u) xv = pre_op(xv, (t0 + t) * pc.x_stride, g0 * 16u + 4u * v);
                xs[t][v] = xv;
            }
        barrier();
        uint gl = 0u; // groups of this step done
        if (live && pc.aligned != 0u) {
            uint nb = g0 + cg <= Gfull ? cg / B : g0 < Gfull ? (Gfull - g0) / B : 0u;
            uint wq = (rowb + 64u * (g0 / B)) / 16u + q; // uvec4 of quarter q of the step's first block
#if WFMT == 4
            uint sw = (srow + g0) / 4u;
#endif
            for (uint bi = 0u; bi < nb; bi++) {
                uvec4 v = w4[wq + 4u * bi];
#if WFMT == 4
                uvec2 s2 = uvec2(sc[sw + 2u * bi], sc[sw + 2u * bi + 1u]);
#endif
                uint xq = 4u * B * bi + q; // x quarter of the block's group 0
                GROUP(0u, xq)
                GROUP(1u, xq + 4u)
#if WFMT != 0 // B > 2
                GROUP(2u, xq + 8u)
                GROUP(3u, xq + 12u)
#endif
#if WFMT == 4 // B > 4
                GROUP(4u, xq + 16u)
                GROUP(5u, xq + 20u)
                GROUP(6u, xq + 24u)
                GROUP(7u, xq + 28u)
#endif
            }
            gl = nb * B;
        }
        if (live)
            for (; gl < cg; gl++) { // one quarter at a time (wlayout.glsl's addresses)
                uint g = g0 + gl, b = g / B, gb = min(B, G - b * B);
                uint qb = rowb + 64u * b + (64u / B) * (gb * q + g - b * B) / 4u; // byte of the quarter
#if WFMT == 4
                float s = lut_s[BYTE_AT(sc, srow + g)];
                MAC(QUARTER(HALF_AT(w, qb >> 1), 0u, s), 4u * gl + q)
#elif WFMT == 3
                MAC(QUARTER(w[qb >> 2]), 4u * gl + q)
#else
                MAC(QUARTER(w[qb >> 2], w[(qb >> 2) + 1u]), 4u * gl + q)
#endif
            }
        barrier();
    }
    for (uint t = 0u; t < nt; t++) part[t][tid] = acc[t];
    barrier();
    if (live && q == 0u)
        for (uint t = 0u; t < nt; t++) {
            // invocation tid + j holds chains 4j .. 4j + 3: a_0..3 = (0) + (2), a_4..7 = (1) + (3)
            precise vec4 lo = part[t][tid] + part[t][tid + 2u], hi = part[t][tid + 1u] + part[t][tid + 3u];
            precise vec4 b = lo + hi; // a0 + a4, a1 + a5, a2 + a6, a3 + a7
            precise float s = (b.x + b.y) + (b.z + b.w);
            float post = pc.post_off != 0u ? x[pc.post_off + t0 + t] : pc.post;
            y[pc.y_off + (t0 + t) * pc.y_stride + n] = s * post;
        }
}
