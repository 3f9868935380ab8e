#version 450
// KV-cache append: rows pos0 .. pos0 + T - 1 of one attention layer's cache get
// K = x and V = z, restricted to the piece of cache positions c0 .. c1 - 1 bound
// here (K window at binding 1, V window at binding 2, [c1 - c0][n] elements
// each), so a cache larger than maxStorageBufferRange is written in pieces.
// One invocation per 32-bit word of a row: kv_type 1 F32 (1 element), 0 BF16
// (2, RNE), 2 FP8 (4, e4m3_sat(v / scale)). Grid: (words, T, 2 (K, V)).
#include "common.glsl"
#include "step.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer A { float arena[]; };
layout(set = 0, binding = 1) buffer Kc { uint kc[]; };
layout(set = 0, binding = 2) buffer Vc { uint vc[]; };
layout(push_constant) uniform PC {
    uint n, kv_type, c0, c1;
    uint x_off, z_off, stride;
    uint k_word_off, v_word_off; // window skews in words
    float k_scale, v_scale;
} pc;

// The step's first position (step info): the one place this shader reads it.
uint step_pos0() { return sinfo.pos0; }

void main() {
    uint wi = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y, which = gl_WorkGroupID.z;
    uint per = pc.kv_type == 1u ? 1u : pc.kv_type == 0u ? 2u : 4u;
    uint pos = step_pos0() + t;
    if (wi * per >= pc.n || pos < pc.c0 || pos >= pc.c1) return;
    uint src = (which == 0u ? pc.x_off : pc.z_off) + t * pc.stride + wi * per;
    float scale = which == 0u ? pc.k_scale : pc.v_scale;
    uint v;
    if (per == 1u) v = floatBitsToUint(arena[src]);
    else if (per == 2u) v = f32_to_bf16(arena[src]) | (f32_to_bf16(arena[src + 1u]) << 16);
    else v = f32_to_e4m3_sat(arena[src] / scale) | (f32_to_e4m3_sat(arena[src + 1u] / scale) << 8) |
             (f32_to_e4m3_sat(arena[src + 2u] / scale) << 16) | (f32_to_e4m3_sat(arena[src + 3u] / scale) << 24);
    uint word = ((pos - pc.c0) * pc.n) / per + wi;
    if (which == 0u) kc[pc.k_word_off + word] = v;
    else vc[pc.v_word_off + word] = v;
}
