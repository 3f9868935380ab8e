#version 450
// Element-wise ops over rows of the arena, one invocation per element:
// mode 0 sigmoid gate: y[g, i] = x[g, i] * sigmoid(z[g, i]) (group strides differ)
// mode 1 SwiGLU: y = silu(x) * z;  mode 2 add: y = x + z.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(push_constant) uniform PC {
    uint mode, x_off, z_off, y_off;
    uint stride, n, group_dim, group_stride;
    uint z_group_stride;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.n) return;
    uint r = t * pc.stride;
    if (pc.mode == 0u) {
        uint g = i / pc.group_dim, e = i % pc.group_dim;
        uint xo = r + g * pc.group_stride + e;
        arena[pc.y_off + xo] = arena[pc.x_off + xo] * sigmoid(arena[pc.z_off + r + g * pc.z_group_stride + e]);
    } else if (pc.mode == 1u) {
        arena[pc.y_off + r + i] = silu(arena[pc.x_off + r + i]) * arena[pc.z_off + r + i];
    } else {
        arena[pc.y_off + r + i] = arena[pc.x_off + r + i] + arena[pc.z_off + r + i];
    }
}
