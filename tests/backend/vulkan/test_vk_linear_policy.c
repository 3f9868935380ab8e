/* The Vulkan linear kernel policy (vk_linear_policy.c fp4rt_vk_linear_kernel):
 * a pure function of the format, the activation quantization, the token count,
 * the device's capabilities and the knobs. No device needed. */
#include "tests/test_util.h"

#include "runtime/backend/vulkan/vk_ops.h"

static const int MAX_T = FP4RT_VK_MV_MAX_T; /* the kernel's own bound, not a copy */

#define KERNEL(fmt, aq, K, n, caps, aligned) fp4rt_vk_linear_kernel(fmt, aq, K, (uint64_t)(n), &(caps), aligned)

static void test_act_quant(void) {
    fp4rt_linear l = {.fmt = FP4RT_W_FP8};
    CHECK_EQ_INT(fp4rt_vk_act_quant_of(&l), FP4RT_VK_ACT_FP8);
    l.fmt = FP4RT_W_NVFP4_W4A4;
    CHECK_EQ_INT(fp4rt_vk_act_quant_of(&l), FP4RT_VK_ACT_NVFP4);
    l.act_dynamic = 1;
    CHECK_EQ_INT(fp4rt_vk_act_quant_of(&l), FP4RT_VK_ACT_NVFP4_DYNAMIC);
    fp4rt_wfmt plain[] = {FP4RT_W_BF16, FP4RT_W_F16, FP4RT_W_F32, FP4RT_W_NVFP4};
    for (int i = 0; i < 4; i++) {
        l.fmt = plain[i];
        CHECK_EQ_INT(fp4rt_vk_act_quant_of(&l), FP4RT_VK_ACT_NONE);
    }
}

/* A GPU with matrix units: quantized prefill on them, the rest on the tiled kernel. */
static void test_gpu(void) {
    fp4rt_vk_linear_caps gpu = {.coop = FP4RT_VK_COOP_KHR, .idot = 1, .linear_subgroup = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, MAX_T + 1, gpu, 1), FP4RT_VK_SHADER_LINEAR_COOP);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 512, gpu, 1), FP4RT_VK_SHADER_LINEAR_COOP);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 512, gpu, 1), FP4RT_VK_SHADER_LINEAR_MM);
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 256, MAX_T + 1, gpu, 1), FP4RT_VK_SHADER_LINEAR_MM);
    /* decode and small pieces: the matrix-vector kernel, whatever the format */
    fp4rt_wfmt fmts[] = {FP4RT_W_BF16, FP4RT_W_FP8, FP4RT_W_NVFP4, FP4RT_W_NVFP4_W4A4};
    fp4rt_vk_act_quant aqs[] = {FP4RT_VK_ACT_NONE, FP4RT_VK_ACT_FP8, FP4RT_VK_ACT_NONE, FP4RT_VK_ACT_NVFP4_DYNAMIC};
    for (int i = 0; i < 4; i++)
        for (int n = 1; n <= MAX_T; n++) CHECK_EQ_INT(KERNEL(fmts[i], aqs[i], 256, n, gpu, 1), FP4RT_VK_SHADER_LINEAR);
    fp4rt_vk_linear_caps shmem = gpu;
    shmem.linear_subgroup = 0;
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 1, shmem, 1), FP4RT_VK_SHADER_LINEAR_SHMEM);
    fp4rt_vk_linear_caps emu = gpu;
    emu.coop = FP4RT_VK_COOP_EMU;
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 64, emu, 1), FP4RT_VK_SHADER_LINEAR_COOP_EMU);
}

/* Without matrix units: W4A4 on integer dot products when K is whole blocks. */
static void test_idot(void) {
    fp4rt_vk_linear_caps c = {.idot = 1, .linear_subgroup = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_I8);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4_DYNAMIC, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_I8);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 264, 64, c, 1), FP4RT_VK_SHADER_LINEAR_MM);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_MM);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, MAX_T, c, 1), FP4RT_VK_SHADER_LINEAR);
    c.idot = 0;
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_MM);
}

/* FP4RT_VK_EXACT=1: the bit-exact matrix-vector kernel at any token count. */
static void test_exact(void) {
    fp4rt_vk_linear_caps c = {.coop = FP4RT_VK_COOP_NV, .idot = 1, .linear_subgroup = 1, .exact = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 4096, c, 1), FP4RT_VK_SHADER_LINEAR);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 4096, c, 1), FP4RT_VK_SHADER_LINEAR);
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 256, 4096, c, 1), FP4RT_VK_SHADER_LINEAR);
}

/* Weights in the decode layout (caps.interleaved): decode and exact pieces on
 * linear_mvi of the format, prefill still on the fast kernels (which read the
 * layout: shaders/wlayout.glsl). */
static void test_interleaved(void) {
    fp4rt_vk_linear_caps c = {.coop = FP4RT_VK_COOP_KHR, .linear_subgroup = 1, .interleaved = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 256, 1, c, 1), FP4RT_VK_SHADER_LINEAR_MVI_BF16);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, MAX_T, c, 1), FP4RT_VK_SHADER_LINEAR_MVI_FP8);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 1, c, 0), FP4RT_VK_SHADER_LINEAR_MVI_NVFP4);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 3, c, 1), FP4RT_VK_SHADER_LINEAR_MVI_NVFP4);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_COOP);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 64, c, 1), FP4RT_VK_SHADER_LINEAR_MM);
    c.exact = 1;
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 4096, c, 1), FP4RT_VK_SHADER_LINEAR_MVI_NVFP4);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 4096, c, 1), FP4RT_VK_SHADER_LINEAR_MVI_FP8);
}

/* Software devices: the whole-rows kernel of the format where the loads align,
 * never the tiled kernel; forced matrix units / integer dots still win prefill. */
static void test_software(void) {
    fp4rt_vk_linear_caps sw = {.linear_rows = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 256, 1, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_HALF);
    CHECK_EQ_INT(KERNEL(FP4RT_W_F16, FP4RT_VK_ACT_NONE, 256, 64, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_HALF);
    CHECK_EQ_INT(KERNEL(FP4RT_W_F32, FP4RT_VK_ACT_NONE, 256, 64, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_F32);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 64, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_FP8);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 64, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 1, sw, 1), FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4);
    /* unaligned window or K not whole 16-groups: the matrix-vector kernel, even for prefill */
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 256, 64, sw, 0), FP4RT_VK_SHADER_LINEAR_SHMEM);
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 24, 64, sw, 1), FP4RT_VK_SHADER_LINEAR_SHMEM);
    sw.linear_subgroup = 1;
    CHECK_EQ_INT(KERNEL(FP4RT_W_BF16, FP4RT_VK_ACT_NONE, 24, 64, sw, 1), FP4RT_VK_SHADER_LINEAR);
    fp4rt_vk_linear_caps forced = {.linear_rows = 1, .coop = FP4RT_VK_COOP_EMU, .idot = 1};
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, 64, forced, 1), FP4RT_VK_SHADER_LINEAR_COOP_EMU);
    CHECK_EQ_INT(KERNEL(FP4RT_W_FP8, FP4RT_VK_ACT_FP8, 256, MAX_T, forced, 1), FP4RT_VK_SHADER_LINEAR_ROWS_FP8);
    forced.coop = FP4RT_VK_COOP_NONE;
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4_W4A4, FP4RT_VK_ACT_NVFP4, 256, 64, forced, 1), FP4RT_VK_SHADER_LINEAR_I8);
    CHECK_EQ_INT(KERNEL(FP4RT_W_NVFP4, FP4RT_VK_ACT_NONE, 256, 64, forced, 1), FP4RT_VK_SHADER_LINEAR_ROWS_NVFP4);
}

int main(void) {
    test_act_quant();
    test_gpu();
    test_idot();
    test_exact();
    test_interleaved();
    test_software();
    return test_summary("test_vk_linear_policy");
}
