#version 450
// y[t, :] = embed[token] for one token (one dispatch per token: the row is bound
// as its own window so any vocabulary size fits maxStorageBufferRange).
// dtype: 0 BF16, 1 F16, 2 F32; e_off: element offset of the row in the window.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer E { uint e[]; };
layout(push_constant) uniform PC { uint hidden, dtype, e_off, y_off; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.hidden) return;
    float v;
    if (pc.dtype == 2u) v = uintBitsToFloat(e[pc.e_off + i]);
    else if (pc.dtype == 1u) v = unpackHalf2x16(HALF_AT(e, pc.e_off + i)).x;
    else v = bf16_to_f32(HALF_AT(e, pc.e_off + i));
    arena[pc.y_off + i] = v;
}
