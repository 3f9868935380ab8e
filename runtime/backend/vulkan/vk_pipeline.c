/* Vulkan pipelines: one compute pipeline per kernel (fp4rt_vk_shader_id: a row
 * of cmake/shaders.cmake, embedded SPIR-V), created on first use with the device's subgroup size as
 * specialization constant 0, through a VkPipelineCache loaded from and saved to
 * disk (vk_pipeline_cache.c). Every
 * pipeline shares one layout: FP4RT_VK_MAX_BINDINGS push-descriptor storage buffers,
 * the step-info uniform buffer at FP4RT_VK_STEP_BINDING and FP4RT_VK_PUSH_BYTES of push
 * constants. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"
#include "runtime/backend/vulkan/vk_shaders.h"
#include "runtime/backend/vulkan/vk_spirv_access.h"
#include "runtime/backend/vulkan/vk_spirv_coop.h"

#include <stdlib.h>
#include <string.h>

fp4rt_status fp4rt_vk_pipelines_init(vk_ctx *c) {
    VkDescriptorSetLayoutBinding b[FP4RT_VK_MAX_BINDINGS + 1];
    for (int i = 0; i <= FP4RT_VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = i == FP4RT_VK_STEP_BINDING
                                                                    ? VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
                                                                    : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
                                           .bindingCount = FP4RT_VK_MAX_BINDINGS + 1, .pBindings = b};
    fp4rt_status st = fp4rt_vk_check(c->vt.vkCreateDescriptorSetLayout(c->dev, &dci, NULL, &c->dsl),
                                     "vkCreateDescriptorSetLayout");
    if (st) return st;
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = FP4RT_VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &c->dsl, .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr};
    st = fp4rt_vk_check(c->vt.vkCreatePipelineLayout(c->dev, &lci, NULL, &c->layout), "vkCreatePipelineLayout");
    if (st) return st;
    void *data = NULL;
    size_t n = 0;
    fp4rt_vk_pipeline_cache_load(c, &data, &n);
    VkPipelineCacheCreateInfo cci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = n,
                                     .pInitialData = data};
    st = fp4rt_vk_check(c->vt.vkCreatePipelineCache(c->dev, &cci, NULL, &c->cache), "vkCreatePipelineCache");
    free(data);
    return st;
}

void fp4rt_vk_pipelines_free(vk_ctx *c) {
    if (!c->dev) return;
    fp4rt_vk_pipeline_cache_save(c);
    for (int k = 0; k < FP4RT_VK_SHADER_COUNT; k++)
        if (c->pipes[k]) c->vt.vkDestroyPipeline(c->dev, c->pipes[k], NULL);
    if (c->cache) c->vt.vkDestroyPipelineCache(c->dev, c->cache, NULL);
    if (c->layout) c->vt.vkDestroyPipelineLayout(c->dev, c->layout, NULL);
    if (c->dsl) c->vt.vkDestroyDescriptorSetLayout(c->dev, c->dsl, NULL);
    free(c->cache_path);
    c->cache_path = NULL;
}

fp4rt_status fp4rt_vk_pipeline_get(vk_ctx *c, vk_kernel k, VkPipeline *out) {
    if (c->pipes[k]) {
        *out = c->pipes[k];
        return FP4RT_OK;
    }
    const fp4rt_vk_shader *sh = &fp4rt_vk_shaders[k];
    /* the bindings it writes, for ordering dispatches (all when unreadable) */
    if (fp4rt_spirv_written_bindings(sh->code, sh->bytes / 4, &c->writes[k]))
        fp4rt_log(FP4RT_LOG_WARN, "vulkan: %s.comp: could not read which buffers it writes; ordering it as if "
                                  "it wrote every binding", sh->name);
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = sh->bytes,
                                    .pCode = sh->code};
    /* linear_coop.comp is compiled against GL_NV_cooperative_matrix: KHR devices
     * get its SPIR-V rewritten (vk_spirv_coop.c) */
    uint32_t *khr = NULL;
    size_t khr_words = 0;
    if (k == FP4RT_VK_SHADER_LINEAR_COOP && c->coop == FP4RT_VK_COOP_KHR) {
        fp4rt_status st = fp4rt_spirv_coop_nv_to_khr(sh->code, sh->bytes / 4, &khr, &khr_words);
        if (st) return fp4rt_fail_context(st, "vulkan: %s.comp", sh->name);
        mci.codeSize = khr_words * 4;
        mci.pCode = khr;
    }
    VkShaderModule mod;
    fp4rt_status st = fp4rt_vk_check(c->vt.vkCreateShaderModule(c->dev, &mci, NULL, &mod), sh->name);
    free(khr);
    if (st) return st;
    uint32_t subgroup = c->desc.subgroup_size ? c->desc.subgroup_size : 32;
    VkSpecializationMapEntry me = {.constantID = 0, .offset = 0, .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = 1, .pMapEntries = &me, .dataSize = 4, .pData = &subgroup};
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod, .pName = "main", .pSpecializationInfo = &si},
        .layout = c->layout};
    st = fp4rt_vk_check(c->vt.vkCreateComputePipelines(c->dev, c->cache, 1, &pci, NULL, &c->pipes[k]), sh->name);
    c->vt.vkDestroyShaderModule(c->dev, mod, NULL);
    if (st) return st;
    c->pipes_created++;
    *out = c->pipes[k];
    return FP4RT_OK;
}
