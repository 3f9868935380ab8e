/* Why tests/gpu-check.sh runs its validation-layer steps with
 * FP4RT_VK_COOPMAT=nv (issue 19 item 7), reproduced on lavapipe: Debian 12's
 * Khronos validation layer (1.3.239) predates VK_KHR_cooperative_matrix, so the
 * KHR rewrite of linear_coop.comp (vk_spirv_coop.c) is "SPIR-V module not
 * valid: Invalid capability operand" to it, while the NV module as glslc wrote
 * it passes. Module creation only (no pipeline: lavapipe has no matrix units).
 * A newer layer that knows the KHR capability is reported and accepted. Skips
 * without a Vulkan device; the KHR half needs the layer (VK_INSTANCE_LAYERS). */
#include "tests/test_util.h"

#include "runtime/backend/vulkan/vk_internal.h"
#include "runtime/backend/vulkan/vk_spirv_coop.h"

static long module_messages(vk_ctx *c, const uint32_t *code, size_t bytes) {
    long m0 = fp4rt_vk_message_count();
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = bytes,
                                    .pCode = code};
    VkShaderModule mod;
    if (c->vt.vkCreateShaderModule(c->dev, &mci, NULL, &mod) == VK_SUCCESS)
        c->vt.vkDestroyShaderModule(c->dev, mod, NULL);
    return fp4rt_vk_message_count() - m0;
}

int main(void) {
    if (fp4rt_vk_device_count() == 0) {
        printf("skipped: no Vulkan device (%s)\n", fp4rt_vk_unavailable_reason());
        return 0;
    }
    void *ctx = NULL;
    if (fp4rt_vk_backend_create(0, &ctx)) {
        printf("skipped: vulkan:0: %s\n", fp4rt_last_error());
        return 0;
    }
    vk_ctx *c = ctx;
    const fp4rt_vk_shader *sh = &fp4rt_vk_shaders[FP4RT_VK_SHADER_LINEAR_COOP];
    long nv = module_messages(c, sh->code, sh->bytes);
    CHECK_MSG(nv == 0, "the NV cooperative-matrix module as glslc wrote it: %ld validation messages", nv);
    uint32_t *khr = NULL;
    size_t words = 0;
    CHECK(fp4rt_spirv_coop_nv_to_khr(sh->code, sh->bytes / 4, &khr, &words) == FP4RT_OK);
    const char *layers = getenv("VK_INSTANCE_LAYERS");
    if (khr && layers && strstr(layers, "VK_LAYER_KHRONOS_validation")) {
        long k = module_messages(c, khr, words * 4);
        if (k > 0)
            printf("reproduced: this validation layer reports the KHR rewrite as invalid SPIR-V (%ld message%s): "
                   "gpu-check.sh's layer steps use FP4RT_VK_COOPMAT=nv\n",
                   k, k == 1 ? "" : "s");
        else
            printf("this validation layer accepts the KHR rewrite (newer than Debian 12's)\n");
    } else {
        printf("KHR half skipped: the validation layer is not loaded (VK_INSTANCE_LAYERS)\n");
    }
    free(khr);
    fp4rt_backend_vulkan.destroy(ctx);
    return test_summary("test_vk_layer_khr");
}
