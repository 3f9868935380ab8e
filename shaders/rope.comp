#version 450
// Partial NeoX RoPE (rotate-half on the first rotary_dim lanes of each group),
// one workgroup per (group g, row t). Frequency j turns by the position
// component comp(j) of row t (the host writes each row's (t, h, w) into rpos at
// the step's start: step->positions, or pos0 + row + rope_delta), comp(j) as
// runtime/backend/backend.h fp4rt_rope_component: mode 1 (the vision 2-D
// rotary): h for j < rotary_dim / 4, else w; mode 0: h where j % 3 == 1 and
// j < 3 * s1, w where j % 3 == 2 and j < 3 * s2, else t (s1 = s2 = 0: plain
// RoPE). cos / sin come from a table the host fills with the CPU's exact FP32
// values: cs[(pos * half + j) * 2 + {0, 1}]. Lanes past rotary_dim are copied
// when y is not x.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer CS { float cs[]; };
layout(set = 0, binding = 2) readonly buffer P { int rpos[]; };
layout(push_constant) uniform PC {
    uint x_off, y_off, stride, group_dim;
    uint group_stride, rotary_dim, mode, s1;
    uint s2;
} pc;

void main() {
    uint g = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint half_ = pc.rotary_dim / 2u;
    uint o = t * pc.stride + g * pc.group_stride;
    for (uint j = tid; j < half_; j += WG) {
        uint comp = 0u;
        if (pc.mode == 1u) comp = j < pc.rotary_dim / 4u ? 1u : 2u;
        else if (j % 3u == 1u && j < 3u * pc.s1) comp = 1u;
        else if (j % 3u == 2u && j < 3u * pc.s2) comp = 2u;
        uint pos = uint(rpos[t * 3u + comp]);
        float c = cs[(pos * half_ + j) * 2u], s = cs[(pos * half_ + j) * 2u + 1u];
        float x1 = arena[pc.x_off + o + j], x2 = arena[pc.x_off + o + j + half_];
        // precise: two products and one add / subtract, each rounded (the CPU's
        // bits; without it spirv-opt -O fuses them into an Fma)
        precise float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
        arena[pc.y_off + o + j] = y1;
        arena[pc.y_off + o + j + half_] = y2;
    }
    if (pc.x_off != pc.y_off)
        for (uint i = pc.rotary_dim + tid; i < pc.group_dim; i += WG)
            arena[pc.y_off + o + i] = arena[pc.x_off + o + i];
}
