#version 450
// The vision encoder's element-wise ops over rows of the arena, one invocation
// per element, bit for bit the CPU's (runtime/backend/cpu/cpu_vision_ops.c):
// mode 0 bias: y = x + b[i];  mode 1 GELU, erf form: y = x Phi(x) (cgelu_erf);
// mode 2 GELU, tanh form (cgelu_tanh). Binding 1 (the bias) only in mode 0.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Bs { float bs[]; };
layout(push_constant) uniform PC { uint mode, x_off, y_off, stride, n, b_off; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.n) return;
    uint r = t * pc.stride;
    float x = arena[pc.x_off + r + i];
    precise float y;
    if (pc.mode == 0u) y = x + bs[pc.b_off + i];
    else if (pc.mode == 1u) y = cgelu_erf(x);
    else y = cgelu_tanh(x);
    arena[pc.y_off + r + i] = y;
}
