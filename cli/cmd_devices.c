/* fp4rt devices: the devices this build can use, and what --device auto picks. */
#include "cli/commands.h"

#include <stdio.h>
#include <unistd.h>

#include "runtime/backend/cuda.h"
#ifdef FP4RT_HAVE_VULKAN
#include "runtime/backend/vulkan/vk.h"
#endif

int fp4rt_cmd_devices(int argc, char **argv) {
    if (argc > 1) return fp4rt_cli_unknown("(no options)", argv[1]);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    printf("cpu        %ld cores, %.1f GiB memory, FP32 reference kernels (NVFP4/FP8 decoded in registers)\n",
           cores, pages > 0 && page > 0 ? (double)pages * page / (1u << 30) : 0.0);
    const char *pick = "cpu";
#ifdef FP4RT_HAVE_VULKAN
    static char best[32];
    int n = fp4rt_vk_device_count();
    if (n == 0) printf("vulkan     none: %s\n", fp4rt_vk_unavailable_reason());
    for (int i = 0; i < n; i++) {
        fp4rt_vk_device_desc d;
        if (fp4rt_vk_device_get(i, &d)) continue;
        printf("vulkan:%-3d %s\n", i, d.name);
        printf("           type %s%s, driver %s, Vulkan %u.%u, %.1f GiB device-local\n", d.type,
               d.software ? " (software: used only when named)" : "", d.driver, (d.api_version >> 22) & 0x7f,
               (d.api_version >> 12) & 0x3ff, d.memory_bytes / 1073741824.0);
        const char *coop = d.coop_kinds == (1 << FP4RT_VK_COOP_KHR | 1 << FP4RT_VK_COOP_NV) ? "KHR and NV"
                           : d.coopmat                                                    ? fp4rt_vk_coop_name(d.coopmat)
                                                                                          : "no";
        printf("           fp16 %s, int8 %s, 16-bit storage %s, 8-bit storage %s, subgroup %u, "
               "maxStorageBufferRange %.0f MiB\n",
               d.fp16 ? "yes" : "no", d.int8 ? "yes" : "no", d.storage16 ? "yes" : "no", d.storage8 ? "yes" : "no",
               d.subgroup_size, d.max_storage_range / 1048576.0);
        printf("           cooperative matrix %s, integer dot product %s\n", coop,
               d.idot_fast ? "yes (4x8 packed, accelerated)" : d.idot ? "yes (not accelerated)" : "no");
        printf("           %s%s\n", d.usable ? "usable" : "not usable: ", d.usable ? "" : d.reason);
    }
    int b = fp4rt_vk_best_device();
    if (b >= 0) {
        snprintf(best, sizeof best, "vulkan:%d", b);
        pick = best;
    }
#else
    printf("vulkan     not in this build (configure found no glslc / volk.h)\n");
#endif
    static char best_cu[32];
    int nc = fp4rt_cuda_device_count();
    if (nc == 0) printf("cuda       none: %s\n", fp4rt_cuda_unavailable_reason());
    for (int i = 0; i < nc; i++) {
        fp4rt_cuda_device_desc d;
        if (fp4rt_cuda_device_get(i, &d)) continue;
        printf("cuda:%-5d %s\n", i, d.name);
        printf("           compute capability %d.%d, %d SMs, %.1f GiB, %.0f GB/s (memory clock %.0f MHz x %d-bit bus)\n",
               d.cc_major, d.cc_minor, d.sm_count, d.memory_bytes / 1073741824.0, d.bandwidth_gbs,
               d.mem_clock_khz / 1e3, d.bus_width_bits);
        printf("           NVFP4: %s\n", fp4rt_cuda_fp4_path_name(d.fp4_path));
        printf("           %s%s\n", d.usable ? "usable" : "not usable: ", d.usable ? "" : d.reason);
    }
    if (fp4rt_cuda_module_path()[0])
        printf("           module %s%s%s%s\n", fp4rt_cuda_module_path(), fp4rt_cuda_module_build()[0] ? " (" : "",
               fp4rt_cuda_module_build(), fp4rt_cuda_module_build()[0] ? ")" : "");
    int bc = fp4rt_cuda_best_device();
    if (bc >= 0) {
        snprintf(best_cu, sizeof best_cu, "cuda:%d", bc);
        pick = best_cu;
    }
    printf("auto       -> %s\n", pick);
    return 0;
}
