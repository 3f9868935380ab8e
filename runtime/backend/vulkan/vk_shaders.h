/* The embedded SPIR-V of shaders/ (*.comp) (generated at build time by
 * cmake/embed_spirv.cmake into the build tree; nothing generated is committed). */
#ifndef FP4RT_VK_SHADERS_H
#define FP4RT_VK_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fp4rt_vk_shader {
    const char *name; /* file name without .comp: "linear" */
    const uint32_t *code;
    size_t bytes;
} fp4rt_vk_shader;

extern const fp4rt_vk_shader fp4rt_vk_shaders[];
extern const int fp4rt_vk_n_shaders;

#endif
