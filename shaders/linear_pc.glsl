// The push constants of every linear kernel (mirrored by vk_pc_linear in
// runtime/backend/vulkan/vk_internal.h).
layout(push_constant) uniform PC {
    uint K, fmt, x_off, x_stride;   // x row t at x_off + t * x_stride (floats; linear_i8: words of codes)
    uint y_off, y_stride, N, T;     // y row t at y_off + t * y_stride, columns 0..N-1
    uint w_off, s_off, aligned;     // byte offsets of row 0 of W / of the scales; aligned: kernel-specific
    float post;                     // post_off != 0: the post of token t is x[post_off + t]
    uint post_off;                  // (act_quant modes 2 / 4: per-row activation scales)
    uint il;                        // the weights' stored order: 0 the checkpoint's, else wlayout.glsl
    // linear_mvi only: the element-wise op before the linear, applied while x is
    // staged (vk_fuse_linear.c). pre 0: none; 1 SWIGLU: x[k] -> silu(x[k]) * g[k];
    // 2 SIGMOID_GATE: x[k] -> x[k] * sigmoid(g[k]); g[k] of token t at pre_off +
    // t * x_stride + (k / pre_gd) * pre_gs + k % pre_gd (the x binding).
    uint pre, pre_off, pre_gd, pre_gs;
} pc;
