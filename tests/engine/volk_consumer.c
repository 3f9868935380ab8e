/* An application that links its own volk (volk.c compiled in) beside the
 * installed static libfp4rt.a (tests/engine/install_test.sh). libfp4rt.a
 * defines no volk or vk* symbol, so the link has no duplicates and the two
 * loaders are separate: fp4rt starting its Vulkan loader (fp4rt_device_count)
 * leaves the application's volk untouched. Exit 0: separate (or no Vulkan
 * loader to tell), 1: the application's volk was initialised by fp4rt. */
#include "fp4rt.h"

#include <stdio.h>
#include <volk.h>

int main(void) {
    int n = fp4rt_device_count();
    PFN_vkGetInstanceProcAddr before = vkGetInstanceProcAddr;
    if (volkInitialize() != VK_SUCCESS) {
        printf("volk consumer: %d devices; no Vulkan loader, the separation is not checked\n", n);
        return 0;
    }
    if (before) {
        printf("volk consumer: fp4rt initialised the application's volk (the libraries share volk's symbols)\n");
        return 1;
    }
    uint32_t v = volkGetInstanceVersion();
    if (fp4rt_device_count() != n) {
        printf("volk consumer: fp4rt's device count changed after the application's volkInitialize\n");
        return 1;
    }
    printf("volk consumer: %d devices, the application's volk separate (Vulkan %u.%u)\n", n, VK_VERSION_MAJOR(v),
           VK_VERSION_MINOR(v));
    return 0;
}
