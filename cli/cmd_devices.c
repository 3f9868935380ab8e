/* fp4rt devices: the devices this build can use. */
#include "commands.h"

#include <stdio.h>
#include <unistd.h>

int fp4rt_cmd_devices(int argc, char **argv) {
    (void)argv;
    if (argc != 1) return fp4rt_cli_usage("devices", "");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    printf("cpu      %ld cores, %.1f GiB memory, FP32 reference kernels (NVFP4/FP8 decoded in registers)\n",
           cores, pages > 0 && page > 0 ? (double)pages * page / (1u << 30) : 0.0);
    printf("vulkan   not in this build (the Vulkan backend is not implemented yet)\n");
    printf("cuda     not in this build (the CUDA backend is not implemented yet)\n");
    printf("auto     -> cpu\n");
    return 0;
}
