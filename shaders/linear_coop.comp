#version 450
// Prefill linear on the device's matrix units (cooperative matrices), for the
// linears that re-quantize their activations: FP8 W8A8 (fmt 3) and NVFP4 W4A4
// (fmt 5), y[t, n] = post * sum_k x[t, k] * W[n, k]. There both operands are
// exact in FP16: an E4M3 value, or an E2M1 code times an E4M3 block scale (at
// most 6 significant bits, magnitudes 2^-10 .. 2688), and act_quant.comp has
// already rounded x to the same kind of values. So every product is exact and
// only the FP32 accumulation order differs from the CPU's 16 chains.
//
// Layout: a workgroup is one subgroup (SUBGROUP_SIZE invocations, the
// specialization constant) computing a TM = 32 (rows n) x TN = 32 (tokens t)
// tile as 2 x 2 fragments of 16 x 16 (FP16 A and B, FP32 accumulator). K goes
// through shared memory BK = 32 at a time: the invocations decode the weights
// ws[n][k] and copy the quantized activations xs[t][k] to FP16 (zeros past N,
// T and K). A fragment is ws rows n.. n+15 (row-major), B is xs read
// column-major (element (k, t) at t * LDS + k). The accumulators go through the
// FP32 tile cs[t][n] (column-major store) to y with the bounds and the post
// scale (per token with act_quant mode 2).
//
// If the driver runs the workgroup as several smaller subgroups, each computes
// the whole tile (the same values) and only subgroup 0 stores it. The host
// checks the kernel against exact sums once per device (vk_coop.c) before
// using it.
//
// Two kernels (cmake/shaders.cmake): linear_coop (the matrix units:
// GL_NV_cooperative_matrix, rewritten to SPV_KHR_cooperative_matrix at run time
// where the device has the KHR extension, see vk_spirv_coop.c) and
// linear_coop_emu (COOP_EMU: the fragments emulated with plain arithmetic, so
// lavapipe can test the staging, fragment offsets, strides, layouts and the
// store; tests run it with FP4RT_VK_COOPMAT=emu).
#ifndef COOP_EMU
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"

#define TM 32u  // weight rows per workgroup
#define TN 32u  // tokens per workgroup
#define BK 32u  // k per stage: two fragments
#define LDS 40u // row stride of ws / xs in halves (80 bytes: a multiple of 16)
#define CST 36u // column stride of cs in floats (144 bytes)

layout(local_size_x_id = 0) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer S { uint sc[]; };
layout(set = 0, binding = 3) buffer Y { float y[]; };
#include "linear_pc.glsl"
#include "wlayout.glsl"

shared float16_t ws[TM * LDS]; // [row n][k]
shared float16_t xs[TN * LDS]; // [token t][k]
shared float cs[TN * CST];     // [token t][row n]

// Weight (n, k) of a FP8 or NVFP4 matrix: exact, the decode of linear_mv.comp.
float weight1(uint n, uint k) {
    uint i = n * pc.K + wpos(k);
    if (pc.fmt == 3u) return e4m3_to_f32(BYTE_AT(w, pc.w_off + i));
    uint c = (BYTE_AT(w, pc.w_off + (i >> 1)) >> (4u * (i & 1u))) & 15u;
    float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + n * (pc.K / 16u) + k / 16u)) * 16384.0;
    return e2m1_scaled(c) * s;
}

// The 32-bit word at byte b of W (one load where b is 4-byte aligned).
uint word_at(uint b) {
    if ((b & 3u) == 0u) return w[b >> 2];
    return BYTE_AT(w, b) | (BYTE_AT(w, b + 1u) << 8) | (BYTE_AT(w, b + 2u) << 16) | (BYTE_AT(w, b + 3u) << 24);
}

// Weights k .. k + 15 of row n (k % 16 == 0, whole inside the matrix) to ws[o ..
// o + 15]: the same values as weight1, one block scale read and 32-bit loads
// (16-bit ones for the quarters of NVFP4 in the decode layout, wlayout.glsl).
void stage_weights(uint o, uint n, uint k) {
    uint i = n * pc.K + k;
    if (pc.fmt == 3u) {
        for (uint q = 0u; q < 4u; q++) {
            uint v = word_at(pc.w_off + n * pc.K + wpos(k + 4u * q));
            for (uint j = 0u; j < 4u; j++) ws[o + 4u * q + j] = float16_t(e4m3_to_f32((v >> (8u * j)) & 0xffu));
        }
        return;
    }
    float s = e4m3_to_f32(BYTE_AT(sc, pc.s_off + (i >> 4))) * 16384.0;
    for (uint q = 0u; q < 4u; q++) {
        uint b = pc.w_off + ((n * pc.K + wpos(k + 4u * q)) >> 1); // 4 codes: 2 bytes
        uint v = BYTE_AT(w, b) | (BYTE_AT(w, b + 1u) << 8);
        for (uint j = 0u; j < 4u; j++) ws[o + 4u * q + j] = float16_t(e2m1_scaled((v >> (4u * j)) & 15u) * s);
    }
}

#ifdef COOP_EMU
// A / B fragment: a view of ws / xs (offset, stride, layout). Accumulator:
// element e = 16 r + c of the fragment kept by invocation e % SUBGROUP_SIZE in
// slot e / SUBGROUP_SIZE (subgroups of at least 8 invocations).
#define EMU_SLOTS 32u
struct FragAB { uint off; bool col; };
struct FragC { float v[EMU_SLOTS]; };
#define FRAG_A FragAB
#define FRAG_B FragAB
#define FRAG_C FragC
#define C_ZERO(m) for (uint s_ = 0u; s_ < EMU_SLOTS; s_++) m.v[s_] = 0.0
#define LOAD_A(m, o) m = FragAB(o, false)
#define LOAD_B(m, o) m = FragAB(o, true)
#define MUL_ADD(a, b, c) c = emu_mul_add(a, b, c)
#define STORE_C(m, o) emu_store(m, o)
float emu_at(bool is_b, FragAB f, uint r, uint c) {
    uint i = f.off + (f.col ? c * LDS + r : r * LDS + c);
    return float(is_b ? xs[i] : ws[i]);
}
FragC emu_mul_add(FragAB a, FragAB b, FragC acc) {
    for (uint s = 0u; s < EMU_SLOTS; s++) {
        uint e = gl_SubgroupInvocationID + s * gl_SubgroupSize;
        if (e >= 256u) break;
        uint r = e / 16u, c = e % 16u;
        float d = 0.0;
        for (uint k = 0u; k < 16u; k++) d += emu_at(false, a, r, k) * emu_at(true, b, k, c);
        acc.v[s] += d;
    }
    return acc;
}
void emu_store(FragC m, uint o) {
    for (uint s = 0u; s < EMU_SLOTS; s++) {
        uint e = gl_SubgroupInvocationID + s * gl_SubgroupSize;
        if (e >= 256u) break;
        cs[o + (e % 16u) * CST + e / 16u] = m.v[s]; // column-major: (r, c) at c * CST + r
    }
}
#else
#define FRAG_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define FRAG_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define FRAG_C fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define C_ZERO(m) m = FRAG_C(0.0)
#define LOAD_A(m, o) coopMatLoadNV(m, ws, o, LDS, false)
#define LOAD_B(m, o) coopMatLoadNV(m, xs, o, LDS, true)
#define MUL_ADD(a, b, c) c = coopMatMulAddNV(a, b, c)
#define STORE_C(m, o) coopMatStoreNV(m, cs, o, CST, true)
#endif

void main() {
    uint lane = gl_LocalInvocationID.x, nl = gl_WorkGroupSize.x;
    uint n0 = gl_WorkGroupID.x * TM, t0 = gl_WorkGroupID.y * TN;
    // no arrays of fragments: the run-time rewrite to KHR follows plain values
    FRAG_C c00, c01, c10, c11;
    C_ZERO(c00);
    C_ZERO(c01);
    C_ZERO(c10);
    C_ZERO(c11);
    for (uint kb = 0u; kb < pc.K; kb += BK) {
        // stage: 64 groups of 16 weights (row r, k half kk) and 64 of activations
        for (uint g = lane; g < 2u * TM; g += nl) {
            uint r = g / 2u, kk = (g % 2u) * 16u, n = n0 + r, t = t0 + r, k0 = kb + kk;
            if (n < pc.N && k0 + 16u <= pc.K)
                stage_weights(r * LDS + kk, n, k0);
            else
                for (uint j = 0u; j < 16u; j++)
                    ws[r * LDS + kk + j] = float16_t(n < pc.N && k0 + j < pc.K ? weight1(n, k0 + j) : 0.0);
            for (uint j = 0u; j < 16u; j++)
                xs[r * LDS + kk + j] = float16_t(t < pc.T && k0 + j < pc.K ? x[pc.x_off + t * pc.x_stride + k0 + j] : 0.0);
        }
        barrier();
        for (uint kf = 0u; kf < BK; kf += 16u) {
            FRAG_A a0, a1;
            FRAG_B b0, b1;
            LOAD_A(a0, kf);
            LOAD_A(a1, 16u * LDS + kf);
            LOAD_B(b0, kf);
            LOAD_B(b1, 16u * LDS + kf);
            MUL_ADD(a0, b0, c00);
            MUL_ADD(a0, b1, c01);
            MUL_ADD(a1, b0, c10);
            MUL_ADD(a1, b1, c11);
        }
        barrier();
    }
    // c_ij: rows 16 i.., tokens 16 j..: cs[t][n] at t * CST + n
    if (gl_SubgroupID == 0u) {
        STORE_C(c00, 0u);
        STORE_C(c01, 16u * CST);
        STORE_C(c10, 16u);
        STORE_C(c11, 16u * CST + 16u);
    }
    barrier();
    for (uint e = lane; e < TM * TN; e += nl) {
        uint r = e % TM, tt = e / TM, n = n0 + r, t = t0 + tt;
        if (n < pc.N && t < pc.T)
            y[pc.y_off + t * pc.y_stride + n] = cs[tt * CST + r] * (pc.post_off != 0u ? x[pc.post_off + t] : pc.post);
    }
}
