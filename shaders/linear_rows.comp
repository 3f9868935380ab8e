#version 450
// Linear, whole rows per invocation: y[t, n] = post * sum_k x[t, k] * W[n, k]
// for the N rows of one bound piece of W and the T tokens of one bound piece of
// x / y, bit-identical to the CPU backend (runtime/backend/cpu/cpu_linear.c) and to
// linear_mv.comp: the same decoded weights, the same products, the same 16
// accumulation chains (chain j sums k = j, j + 16, ... in order; no FMA
// contraction: `precise`), the same final tree ((a0 + a4) + (a1 + a5)) +
// ((a2 + a6) + (a3 + a7)) with a_j = chain j + chain j + 8, then the tail
// k >= 16 * (K / 16) in order, then * post.
//
// The kernel for software devices (lavapipe), which run the invocations of a
// workgroup as the SIMD lanes of a CPU and load memory lane by lane (a loop
// over the lanes per 32- or 64-bit value): every invocation walks R whole rows
// for up to MT tokens, so a group of 16 inputs x[t, k .. k + 15] (eight 64-bit
// loads) serves R rows and a group of 16 weights (one 64-bit load of NVFP4
// codes; 8 block scales per 64-bit load) serves MT tokens. The 16 chains of a
// (row, token) are the columns of a mat4 and every row / token is spelled out
// (ROW, MAC below), with no arrays and no inner loops: a software compiler that
// does not unroll them would keep the chains in memory. No shared memory, no
// barriers. On a GPU linear_mv.comp's coalesced layout is the fast one; the
// host picks (runtime/backend/vulkan/vk_op_linear.c; needs shaderInt64).
//
// One kernel per weight format (WFMT, compiled in, so the code stays small;
// cmake/shaders.cmake): linear_rows_nvfp4 (WFMT 4: NVFP4 W4A16 and W4A4, E2M1
// codes times the E4M3 block scale), linear_rows_fp8 (3), linear_rows_half (0:
// BF16 / F16 by pc.fmt), linear_rows_f32 (2). Only for K % 16 == 0, rows of W on 8 bytes and
// x_off, x_stride even (pc.aligned = 3); the host sends the rest to linear_mv.
//
// Layout: workgroups of WGR = 8 invocations; invocation i of workgroup (gx, gy)
// computes rows gx * WGR * R + r * WGR + i (r < R) for the tokens gy * MT ..
// gy * MT + MT - 1 (those < T).
//
// Push constants as linear_mv.comp (pc_linear in vk_op_linear.c), but pc.aligned
// is 2 when x_off and x_stride are even (x by 64-bit loads), else 0.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "common.glsl"

#define WGR 8u // invocations per workgroup (FP4RT_VK_ROWS_WG = WGR * R rows)
#define R 4u   // rows per invocation (ROW(0) .. ROW(3) in main)
#define MT 2u  // tokens per invocation (FP4RT_VK_ROWS_TOKENS)

layout(local_size_x = WGR) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 0) readonly buffer X8 { uint64_t x8[]; };
layout(set = 0, binding = 1) readonly buffer Wu { uint w[]; };
layout(set = 0, binding = 1) readonly buffer W8 { uint64_t w8[]; };
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 2) readonly buffer S8 { uint64_t sc8[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"

// The four E4M3 codes of a word, lowest byte first, exact (e4m3_to_f32, common.glsl).
vec4 fp8_values(uint word) {
    return vec4(e4m3_to_f32(word & 0xffu), e4m3_to_f32((word >> 8) & 0xffu), e4m3_to_f32((word >> 16) & 0xffu),
                e4m3_to_f32(word >> 24));
}

// Four E2M1 codes (nibbles 0..3 of c) times s = block scale * 2^14, exact.
vec4 e2m1_values(uint c, float s) {
    return vec4(e2m1_scaled(c & 15u), e2m1_scaled((c >> 4) & 15u), e2m1_scaled((c >> 8) & 15u),
                e2m1_scaled((c >> 12) & 15u)) * s;
}

// The two 16-bit weights of a word (BF16 or F16), lower first.
vec2 half_values(uint word) {
    return pc.fmt == 0u ? vec2(uintBitsToFloat(word << 16), uintBitsToFloat(word & 0xffff0000u))
                        : f16x2_to_f32(word);
}

// 64-bit word q of row n's group g (`per` words per group).
uvec2 wword(uint n, uint g, uint per, uint q) {
    return unpack32(w8[(pc.w_off >> 3) + (n * (pc.K / 16u) + g) * per + q]);
}

// The 16 weights of group g of row n: column q = weights 4q .. 4q + 3. scw holds
// the row's NVFP4 block scales of groups g & ~7 .. (g & ~7) + 7, lowest byte first.
mat4 group_weights(uint n, uint g, uint64_t scw) {
    mat4 m;
#if WFMT == 4 // NVFP4: one 64-bit word
    uvec2 c = wword(n, g, 1u, 0u);
    float s = e4m3_to_f32(uint(scw >> (8u * (g & 7u))) & 0xffu) * 16384.0;
    m[0] = e2m1_values(c.x, s);
    m[1] = e2m1_values(c.x >> 16, s);
    m[2] = e2m1_values(c.y, s);
    m[3] = e2m1_values(c.y >> 16, s);
#elif WFMT == 3 // FP8: two
    uvec2 a = wword(n, g, 2u, 0u), b = wword(n, g, 2u, 1u);
    m[0] = fp8_values(a.x);
    m[1] = fp8_values(a.y);
    m[2] = fp8_values(b.x);
    m[3] = fp8_values(b.y);
#elif WFMT == 2 // F32: eight
    for (uint q = 0; q < 4u; q++)
        m[q] = uintBitsToFloat(uvec4(wword(n, g, 8u, 2u * q), wword(n, g, 8u, 2u * q + 1u)));
#else // BF16 / F16: four
    for (uint q = 0; q < 4u; q++) {
        uvec2 a = wword(n, g, 4u, q);
        m[q] = vec4(half_values(a.x), half_values(a.y));
    }
#endif
    return m;
}

// x[t, k .. k + 15] (relative to x row t0), column q = inputs 4q .. 4q + 3.
// 64-bit loads when x_off and x_stride are even (pc.aligned bit 1), else 32-bit.
mat4 group_x(uint xb) {
    mat4 m;
    if ((pc.aligned & 2u) != 0u)
        for (uint q = 0; q < 4u; q++)
            m[q] = uintBitsToFloat(uvec4(unpack32(x8[xb / 2u + 2u * q]), unpack32(x8[xb / 2u + 2u * q + 1u])));
    else
        for (uint q = 0; q < 4u; q++) m[q] = vec4(x[xb + 4u * q], x[xb + 4u * q + 1u], x[xb + 4u * q + 2u], x[xb + 4u * q + 3u]);
    return m;
}

// chains += products, component by component, never fused.
void mac(inout mat4 a, mat4 wm, mat4 xm) {
    for (uint q = 0; q < 4u; q++) {
        precise vec4 p = wm[q] * xm[q];
        precise vec4 s = a[q] + p;
        a[q] = s;
    }
}

// The CPU's final tree over the 16 chains: ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), a_j = c_j + c_{j+8}.
float reduce16(mat4 a) {
    precise vec4 lo = a[0] + a[2], hi = a[1] + a[3]; // a_0..3, a_4..7
    precise vec4 b = lo + hi;                        // a0 + a4, a1 + a5, a2 + a6, a3 + a7
    precise float r = (b.x + b.y) + (b.z + b.w);
    return r;
}

// y[t0 + t, n] from the chains of row n, token t.
void finish(uint n, uint t, mat4 a) {
    float s = reduce16(a);
    uint tt = gl_WorkGroupID.y * MT + t;
    float post = pc.post_off != 0u ? x[pc.post_off + tt] : pc.post;
    y[pc.y_off + tt * pc.y_stride + n] = s * post;
}

// The scales of row n for groups g .. g + 7 (g % 8 == 0), lowest byte first
// (one 64-bit load when every row's scales start on 8 bytes).
uint64_t scale_word(uint n, uint g, bool words) {
    uint ng = pc.K / 16u;
    if (words) return sc8[(pc.s_off >> 3) + n * (ng >> 3) + (g >> 3)];
    uint64_t v = 0ul;
    for (uint q = 0; q < 8u; q++)
        if (g + q < ng) v |= uint64_t(BYTE_AT(sc, pc.s_off + n * ng + g + q)) << (8u * q);
    return v;
}

void main() {
    uint i = gl_LocalInvocationID.x, nb = gl_WorkGroupID.x * WGR * R, t0 = gl_WorkGroupID.y * MT;
    bool two = pc.T - t0 > 1u; // the second token of this invocation exists
    uint ng = pc.K / 16u;
    uint n0 = nb + i, n1 = n0 + WGR, n2 = n1 + WGR, n3 = n2 + WGR;
    precise mat4 a00 = mat4(0.0), a01 = mat4(0.0), a10 = mat4(0.0), a11 = mat4(0.0);
    precise mat4 a20 = mat4(0.0), a21 = mat4(0.0), a30 = mat4(0.0), a31 = mat4(0.0);
    uint64_t s0 = 0ul, s1 = 0ul, s2 = 0ul, s3 = 0ul;
    bool nvfp4 = WFMT == 4;
    bool sc_words = (pc.s_off & 7u) == 0u && (ng & 7u) == 0u;
    for (uint g = 0; g < ng; g++) {
        uint xb = pc.x_off + t0 * pc.x_stride + g * 16u;
        mat4 x0 = group_x(xb), x1 = two ? group_x(xb + pc.x_stride) : mat4(0.0);
#define ROW(r)                                                                                  \
        if (n##r < pc.N) {                                                                      \
            if (nvfp4 && (g & 7u) == 0u) s##r = scale_word(n##r, g, sc_words);                 \
            mat4 wm = group_weights(n##r, g, s##r);                                             \
            mac(a##r##0, wm, x0);                                                               \
            if (two) mac(a##r##1, wm, x1);                                                      \
        }
        ROW(0)
        ROW(1)
        ROW(2)
        ROW(3)
#undef ROW
    }
#define OUT(r)                                                                                  \
    if (n##r < pc.N) {                                                                          \
        finish(n##r, 0u, a##r##0);                                                              \
        if (two) finish(n##r, 1u, a##r##1);                                                     \
    }
    OUT(0)
    OUT(1)
    OUT(2)
    OUT(3)
#undef OUT
}
