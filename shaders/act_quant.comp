#version 450
// Activation quantization before a quantized linear, as the CPU does:
// mode 0 (FP8 W8A8): q = e4m3_sat(x / input_scale), one invocation per element;
// mode 1 (NVFP4 W4A4): per block of 16, sf = e4m3(min(amax / 6 / s, 448)),
// q = e2m1(x / (sf * s)) * sf, one invocation per block, with s = input_scale;
// mode 2 (NVFP4 W4A4, act_dynamic: --fp4-activations without input_scale): as mode
// 1 with the per-row tensor scale s = amax(|row|) / 2688 (1 for an all-zero row),
// reduced by every workgroup of the row (max: exact in any order); the row's
// post scale s * weight_scale goes to q[post_off + t] for the linear kernels.
// Output rows are dense: q[t * K + k].
// Modes 3 and 4 (W4A4 for linear_i8.comp, as 1 and 2): the codes instead of the
// values, row t at word t * RW (RW = 5 K / 16): K / 4 words of signed bytes
// 2 * e2m1 (4 per word, k order), then K / 16 floats, the block scales sf
// (the activation is code / 2 * sf * s, s going into the post scale).
#include "common.glsl"
layout(local_size_x = WG) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Q { float q[]; };
layout(set = 0, binding = 1) writeonly buffer QI { uint qi[]; }; // modes 3, 4 (same binding)
layout(push_constant) uniform PC {
    uint K, mode, x_off, x_stride;
    float input_scale;
    uint post_off;      // mode 2: where the per-row post scales go
    float weight_scale; // mode 2
    // the element-wise op before the linear, applied to every x read (as
    // linear_pc.glsl's pre: 0 none, 1 SWIGLU, 2 SIGMOID_GATE; vk_fuse_linear.c)
    uint pre, pre_off, pre_gd, pre_gs;
} pc;

// x[k] of the row starting at float xb of X, token t: with pc.pre the
// expressions of eltwise.comp (modes 1 and 0) on the same canonical silu /
// sigmoid, so the same bits as the separate dispatch.
float xk(uint xb, uint t, uint k) {
    float v = x[xb + k];
    if (pc.pre == 0u) return v;
    float g = x[pc.pre_off + t * pc.x_stride + (k / pc.pre_gd) * pc.pre_gs + k % pc.pre_gd];
    return pc.pre == 1u ? silu(v) * g : v * sigmoid(g);
}

shared float red[WG];

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    uint xb = pc.x_off + t * pc.x_stride, qb = t * pc.K;
    if (pc.mode == 0u) {
        if (i < pc.K) q[qb + i] = round_e4m3(xk(xb, t, i) / pc.input_scale);
        return;
    }
    float s = pc.input_scale;
    bool codes = pc.mode >= 3u;
    uint rw = pc.K / 16u * 5u;
    if (pc.mode == 2u || pc.mode == 4u) { // uniform branch: the barriers are reached by the whole workgroup
        float m = 0.0;
        for (uint k = tid; k < pc.K; k += WG) m = max(m, abs(xk(xb, t, k)));
        red[tid] = m;
        barrier();
        for (uint h = WG / 2; h > 0; h >>= 1) {
            if (tid < h) red[tid] = max(red[tid], red[tid + h]);
            barrier();
        }
        float amax = red[0];
        // `precise`: a compiler may turn a division by a constant into a
        // multiplication by its (rounded) reciprocal; the CPU divides
        precise float rs = amax / 2688.0;
        s = amax > 0.0 ? rs : 1.0;
        if (i == 0u) q[pc.post_off + t] = s * pc.weight_scale;
    }
    uint k0 = i * 16u;
    if (k0 >= pc.K) return;
    float amax = 0.0;
    for (uint j = 0; j < 16u; j++) amax = max(amax, abs(xk(xb, t, k0 + j)));
    precise float a6 = amax / 6.0, as = a6 / s;
    float sf = round_e4m3(min(as, 448.0));
    float div = sf * s;
    if (codes) { // 2 * e2m1 as signed bytes, then the block scale
        for (uint w4 = 0; w4 < 4u; w4++) {
            uint packed = 0u;
            for (uint j = 0; j < 4u; j++) {
                float v = sf == 0.0 ? 0.0 : round_e2m1(xk(xb, t, k0 + 4u * w4 + j) / div);
                packed |= (uint(int(v * 2.0)) & 0xffu) << (8u * j);
            }
            qi[t * rw + i * 4u + w4] = packed;
        }
        q[t * rw + pc.K / 4u + i] = sf;
        return;
    }
    if (sf == 0.0) {
        for (uint j = 0; j < 16u; j++) q[qb + k0 + j] = 0.0;
        return;
    }
    for (uint j = 0; j < 16u; j++) q[qb + k0 + j] = round_e2m1(xk(xb, t, k0 + j) / div) * sf;
}
