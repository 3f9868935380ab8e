#version 450
// y[t, :] = input[t, :]: the step's embedding rows, gathered and converted to
// FP32 (exactly) by the host into a host-visible buffer [n_tokens, hidden]
// (the embedding table itself is not on the device). One invocation per
// element, workgroups (hidden / 64, n_tokens).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer I { float rows[]; };
layout(push_constant) uniform PC { uint hidden, y_off, stride; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.hidden) return;
    arena[pc.y_off + t * pc.stride + i] = rows[t * pc.hidden + i];
}
