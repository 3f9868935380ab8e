/* Which bindings each embedded kernel writes, read from its SPIR-V
 * (runtime/backend/vulkan/vk_spirv_access.c), which the recorder orders
 * dispatches by: every module reads; the linear kernels write only their
 * output (binding 3); every kernel writes something; a damaged module gives
 * INVALID_ARGUMENT and "writes everything". No device needed. */
#include "tests/test_util.h"

#include "runtime/backend/vulkan/vk_shaders.h"
#include "runtime/backend/vulkan/vk_spirv_access.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    for (int k = 0; k < FP4RT_VK_SHADER_COUNT; k++) {
        const fp4rt_vk_shader *sh = &fp4rt_vk_shaders[k];
        uint32_t m = 0;
        fp4rt_status st = fp4rt_spirv_written_bindings(sh->code, sh->bytes / 4, &m);
        CHECK_MSG(st == FP4RT_OK, "%s: status %d", sh->name, (int)st);
        CHECK_MSG(m != 0 && m < 16, "%s: written bindings 0x%x (expected some of 0..3)", sh->name, m);
        if (!strncmp(sh->name, "linear", 6)) CHECK_MSG(m == 8, "%s writes 0x%x, not only binding 3", sh->name, m);
    }
    /* damaged modules: wrong magic, truncated instruction, binding out of range */
    const fp4rt_vk_shader *sh = &fp4rt_vk_shaders[0];
    size_t n = sh->bytes / 4;
    uint32_t *w = malloc(sh->bytes);
    CHECK(w != NULL);
    if (w) {
        uint32_t m = 0;
        memcpy(w, sh->code, sh->bytes);
        w[0] ^= 1;
        CHECK(fp4rt_spirv_written_bindings(w, n, &m) == FP4RT_INVALID_ARGUMENT && m == 0xffffffffu);
        memcpy(w, sh->code, sh->bytes);
        w[5] = (0xffffu << 16) | (w[5] & 0xffffu); /* first instruction runs past the end */
        CHECK(fp4rt_spirv_written_bindings(w, n, &m) == FP4RT_INVALID_ARGUMENT && m == 0xffffffffu);
        CHECK(fp4rt_spirv_written_bindings(w, 3, &m) == FP4RT_INVALID_ARGUMENT);
        free(w);
    }
    return test_summary("test_vk_spirv_access");
}
