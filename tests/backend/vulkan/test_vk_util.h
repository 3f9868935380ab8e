/* Shared by the Vulkan tests: which device to test. */
#ifndef FP4RT_TEST_VK_UTIL_H
#define FP4RT_TEST_VK_UTIL_H

#include "runtime/backend/vulkan/vk.h"

#include <stdio.h>
#include <stdlib.h>

/* The device under test: $FP4RT_TEST_VK_DEVICE, else vulkan:0. Writes its name to
 * dev and its description to d; returns 0 (after printing "skipped: ...") when
 * there is no Vulkan device or it is not usable, so the test exits 0. */
static inline int test_vk_pick_device(char *dev, size_t n, fp4rt_vk_device_desc *d) {
    if (fp4rt_vk_device_count() == 0) {
        printf("skipped: no Vulkan device (%s)\n", fp4rt_vk_unavailable_reason());
        return 0;
    }
    const char *env = getenv("FP4RT_TEST_VK_DEVICE");
    snprintf(dev, n, "%s", env && env[0] ? env : "vulkan:0");
    if (fp4rt_vk_device_get(atoi(dev + 7), d) || !d->usable) {
        printf("skipped: %s is not usable (%s)\n", dev, d->reason);
        return 0;
    }
    return 1;
}

#endif
