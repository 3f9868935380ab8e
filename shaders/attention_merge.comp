#version 450
// Merge of the attention partials of attention.comp: workgroup (h, t) combines
// the n_parts partials [m, l, acc[head_dim]] of query head h, row t (one per
// split of the context, in order) with online-softmax rescaling:
//   M = max m_i;  y = sum_i exp(m_i - M) acc_i / sum_i exp(m_i - M) l_i
// Neutral partials (m = -inf, l = 0) contribute nothing.
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) buffer A { float arena[]; };
layout(set = 0, binding = 1) readonly buffer Ws { float ws[]; };
layout(push_constant) uniform PC {
    uint y_off, stride, n_heads, head_dim;
    uint T, n_parts;
} pc;

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, hd = pc.head_dim;
    uint rec = hd + 2u, step = pc.T * pc.n_heads * rec, b0 = (t * pc.n_heads + h) * rec;
    float M = uintBitsToFloat(0xff800000u);
    for (uint i = 0; i < pc.n_parts; i++) M = max(M, ws[b0 + i * step]);
    precise float L = 0.0;
    for (uint i = 0; i < pc.n_parts; i++) {
        float mi = ws[b0 + i * step];
        if (mi != uintBitsToFloat(0xff800000u)) L += cexp(mi - M) * ws[b0 + i * step + 1u];
    }
    for (uint e = tid; e < hd; e += WG) {
        precise float a = 0.0;
        for (uint i = 0; i < pc.n_parts; i++) {
            float mi = ws[b0 + i * step];
            if (mi != uintBitsToFloat(0xff800000u)) a += cexp(mi - M) * ws[b0 + i * step + 2u + e];
        }
        arena[pc.y_off + t * pc.stride + h * hd + e] = a / L;
    }
}
