/* The embedded SPIR-V of the Vulkan kernels (the table of cmake/shaders.cmake;
 * generated at build time by cmake/embed_spirv.cmake into the build tree,
 * nothing generated is committed), indexed by fp4rt_vk_shader_id
 * (FP4RT_VK_SHADER_<NAME>, generated/vk_shader_ids.h). */
#ifndef FP4RT_VK_SHADERS_H
#define FP4RT_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

#include "generated/vk_shader_ids.h" /* in the build tree (cmake/shaders.cmake) */

typedef struct fp4rt_vk_shader {
    const char *name; /* the kernel's name in the table: "linear" */
    const uint32_t *code;
    size_t bytes;
} fp4rt_vk_shader;

extern const fp4rt_vk_shader fp4rt_vk_shaders[FP4RT_VK_SHADER_COUNT];

#endif
