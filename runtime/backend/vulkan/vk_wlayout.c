/* The decode layout of linear weights on the Vulkan device (shaders/wlayout.glsl
 * has the contract and the shaders' side): the host permutes each row at
 * upload, 4 weights (u bytes) at a time, so that the invocation running chains
 * 4q .. 4q + 3 of a row reads one 16-byte vector per block of B = 16 / u
 * groups. The permutation stays inside the row: windows of whole rows and the
 * block scales are unchanged. */
#include "runtime/backend/vulkan/vk_internal.h"

#include <string.h>

uint32_t fp4rt_vk_wlayout_blocks(const fp4rt_linear *l) {
    if (l->n_in % 16) return 0;
    switch (l->fmt) {
    case FP4RT_W_BF16: return 2;
    case FP4RT_W_FP8: return 4;
    case FP4RT_W_NVFP4:
    case FP4RT_W_NVFP4_W4A4: return 8;
    default: return 0;
    }
}

/* One row, U bytes per 4 weights (a constant per instance: small memcpy inlined). */
#define PERMUTE_ROW(U)                                                                                       \
    for (uint32_t b0 = 0; b0 < G; b0 += B) {                                                                 \
        uint32_t gb = G - b0 < B ? G - b0 : B;                                                               \
        uint8_t *blk = dst + (size_t)b0 * 4 * (U);                                                           \
        for (uint32_t q = 0; q < 4; q++)                                                                     \
            for (uint32_t gi = 0; gi < gb; gi++)                                                             \
                memcpy(blk + (size_t)(U) * (gb * q + gi), src + (size_t)(U) * (4 * (b0 + gi) + q), (U));     \
    }

void fp4rt_vk_wlayout_row(const uint8_t *src, uint8_t *dst, uint32_t G, uint32_t B) {
    switch (B) {
    case 2: PERMUTE_ROW(8) break;
    case 4: PERMUTE_ROW(4) break;
    default: PERMUTE_ROW(2) break;
    }
}
