#version 450
// KV-cache append: rows pos0 (step info) .. pos0 + T - 1 of one attention layer's cache
// (bound as its own window [2 (K, V)][n_ctx][n] elements) get K = x and V = z.
// One invocation per 32-bit word of a row: kv_type 1 F32 (1 element), 0 BF16
// (2, RNE), 2 FP8 (4, e4m3_sat(v / scale)).
#include "common.glsl"
#include "step.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer A { float arena[]; };
layout(set = 0, binding = 1) buffer KV { uint kv[]; };
layout(push_constant) uniform PC {
    uint n, kv_type, n_ctx;
    uint x_off, z_off, stride, kv_word_off; // kv_word_off: window skew in words
    float k_scale, v_scale;
} pc;

void main() {
    uint wi = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y, which = gl_WorkGroupID.z;
    uint per = pc.kv_type == 1u ? 1u : pc.kv_type == 0u ? 2u : 4u;
    if (wi * per >= pc.n) return;
    uint src = (which == 0u ? pc.x_off : pc.z_off) + t * pc.stride + wi * per;
    float scale = which == 0u ? pc.k_scale : pc.v_scale;
    uint row = which * pc.n_ctx + sinfo.pos0 + t; // row of n elements
    uint word = pc.kv_word_off + (row * pc.n) / per + wi;
    uint v;
    if (per == 1u) v = floatBitsToUint(arena[src]);
    else if (per == 2u) v = f32_to_bf16(arena[src]) | (f32_to_bf16(arena[src + 1u]) << 16);
    else v = f32_to_e4m3_sat(arena[src] / scale) | (f32_to_e4m3_sat(arena[src + 1u] / scale) << 8) |
             (f32_to_e4m3_sat(arena[src + 2u] / scale) << 16) | (f32_to_e4m3_sat(arena[src + 3u] / scale) << 24);
    kv[word] = v;
}
