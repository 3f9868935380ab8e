/* Which kernel runs a Vulkan linear (vk_ops.h fp4rt_vk_linear_kernel).
 *
 * The prefill kernels sum in other orders than the CPU (linear_coop: exact
 * products, FP32 sums in the hardware's order; linear_i8: exact 16-blocks;
 * linear_mm: tiled FP32); in a model that re-quantizes activations a last-bit
 * difference can move an activation code (test_vk_parity's rules).
 * FP4RT_VK_EXACT=1 keeps every linear on the matrix-vector kernel, which
 * reproduces the CPU's sums bit for bit at any number of tokens. Software
 * devices (lavapipe) run the exact whole-rows kernel unless a test forces the
 * others. */
#include "runtime/backend/vulkan/vk_ops.h"

fp4rt_vk_act_quant fp4rt_vk_act_quant_of(const fp4rt_linear *l) {
    if (l->fmt == FP4RT_W_FP8) return FP4RT_VK_ACT_FP8;
    if (l->fmt != FP4RT_W_NVFP4_W4A4) return FP4RT_VK_ACT_NONE;
    return l->act_dynamic ? FP4RT_VK_ACT_NVFP4_DYNAMIC : FP4RT_VK_ACT_NVFP4;
}

static vk_kernel rows_kernel(fp4rt_wfmt f) {
    switch (f) {
    case FP4RT_W_BF16:
    case FP4RT_W_F16: return FP4RT_VK_SHADER_LINEAR_ROWS_HALF;
    case FP4RT_W_F32: return FP4RT_VK_SHADER_LINEAR_ROWS_F32;
    case FP4RT_W_FP8: return FP4RT_VK_SHADER_LINEAR_ROWS_FP8;
    default: return FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4;
    }
}

static vk_kernel mvi_kernel(fp4rt_wfmt f) {
    switch (f) {
    case FP4RT_W_BF16: return FP4RT_VK_SHADER_LINEAR_MVI_BF16;
    case FP4RT_W_FP8: return FP4RT_VK_SHADER_LINEAR_MVI_FP8;
    default: return FP4RT_VK_SHADER_LINEAR_MVI_NVFP4;
    }
}

vk_kernel fp4rt_vk_linear_kernel(fp4rt_wfmt fmt, fp4rt_vk_act_quant aq, int K, uint64_t n_tokens,
                                 const fp4rt_vk_linear_caps *caps, int rows_aligned) {
    int big = n_tokens > FP4RT_VK_MV_MAX_T && !caps->exact;
    int w4a4 = aq == FP4RT_VK_ACT_NVFP4 || aq == FP4RT_VK_ACT_NVFP4_DYNAMIC;
    if (big && aq != FP4RT_VK_ACT_NONE && caps->coop != FP4RT_VK_COOP_NONE)
        return caps->coop == FP4RT_VK_COOP_EMU ? FP4RT_VK_SHADER_LINEAR_COOP_EMU : FP4RT_VK_SHADER_LINEAR_COOP;
    if (big && w4a4 && caps->idot && K % 16 == 0) return FP4RT_VK_SHADER_LINEAR_I8;
    if (caps->linear_rows && rows_aligned && K % 16 == 0) return rows_kernel(fmt);
    if (big && !caps->linear_rows) return FP4RT_VK_SHADER_LINEAR_MM;
    if (caps->interleaved) return mvi_kernel(fmt);
    return caps->linear_subgroup ? FP4RT_VK_SHADER_LINEAR : FP4RT_VK_SHADER_LINEAR_SHMEM;
}
