/* The bindings a compute shader may write, from its SPIR-V (vk_spirv_access.c). */
#ifndef FP4RT_VK_SPIRV_ACCESS_H
#define FP4RT_VK_SPIRV_ACCESS_H

#include "runtime/base/common.h"

#include <stddef.h>
#include <stdint.h>

/* Bit b of *mask: the storage buffer at binding b may be written (not every
 * variable bound there is NonWritable). On a module it cannot read (not
 * SPIR-V, truncated, a binding >= 32) it returns INVALID_ARGUMENT and sets
 * every bit (callers then order as if every binding were written). */
fp4rt_status fp4rt_spirv_written_bindings(const uint32_t *words, size_t n_words, uint32_t *mask);

#endif
