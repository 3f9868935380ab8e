/* The CPU as a registry device (cpu.h). */
#include "runtime/backend/cpu/cpu.h"

#include "runtime/base/common.h"

#include <stdio.h>
#include <unistd.h>

int fp4rt_cpu_device_count(void) { return 1; }

const char *fp4rt_cpu_unavailable_reason(void) { return ""; }

fp4rt_status fp4rt_cpu_device_get(int index, fp4rt_device_desc *out) {
    if (index != 0) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "cpu: no device %d (1 device)", index);
    long cores = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    snprintf(out->description, sizeof out->description,
             "%ld cores, %.1f GiB memory, FP32 reference kernels (NVFP4/FP8 decoded in registers)", cores,
             out->memory_bytes / 1073741824.0);
    snprintf(out->title, sizeof out->title, "%s", out->description);
    out->usable = 1;
    out->score = 1; /* the last resort of --device auto */
    return FP4RT_OK;
}

fp4rt_status fp4rt_cpu_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx) {
    *ctx = NULL;
    *ops = &fp4rt_backend_cpu;
    if (index != 0) return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "cpu: no device %d (1 device)", index);
    return fp4rt_backend_cpu.create(n_threads, ctx);
}
