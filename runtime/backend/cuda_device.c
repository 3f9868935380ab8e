/* The CUDA module's devices as registry records (cuda.h). */
#include "runtime/backend/cuda.h"

#include "runtime/base/common.h"

#include <stdio.h>

fp4rt_status fp4rt_cuda_device_fill(int index, fp4rt_device_desc *out) {
    fp4rt_cuda_device_desc d;
    fp4rt_status st = fp4rt_cuda_device_get(index, &d);
    if (st) return st;
    snprintf(out->title, sizeof out->title, "%.200s", d.name);
    snprintf(out->description, sizeof out->description, "%.80s (sm_%d%d, %.0f GB/s), NVFP4 %s%s%.60s", d.name,
             d.cc_major, d.cc_minor, d.bandwidth_gbs, fp4rt_cuda_fp4_path_name(d.fp4_path),
             d.usable ? "" : ", not usable: ", d.usable ? "" : d.reason);
    out->memory_bytes = d.memory_bytes;
    out->usable = d.usable;
    snprintf(out->reason, sizeof out->reason, "%.120s", d.reason);
    out->score = 1 + (d.bandwidth_gbs > 0 ? d.bandwidth_gbs : 0); /* the highest memory bandwidth */
    char(*l)[FP4RT_DEVICE_LINE] = out->details;
    snprintf(l[0], sizeof l[0],
             "compute capability %d.%d, %d SMs, %.1f GiB, %.0f GB/s (memory clock %.0f MHz x %d-bit bus)",
             d.cc_major, d.cc_minor, d.sm_count, d.memory_bytes / 1073741824.0, d.bandwidth_gbs,
             d.mem_clock_khz / 1e3, d.bus_width_bits);
    snprintf(l[1], sizeof l[1], "NVFP4: %s", fp4rt_cuda_fp4_path_name(d.fp4_path));
    snprintf(l[2], sizeof l[2], "%s%.160s", d.usable ? "usable" : "not usable: ", d.usable ? "" : d.reason);
    out->n_details = 3;
    return FP4RT_OK;
}

int fp4rt_cuda_notes(char (*lines)[FP4RT_DEVICE_LINE], int max) {
    if (max < 1 || !fp4rt_cuda_module_path()[0]) return 0;
    const char *build = fp4rt_cuda_module_build();
    snprintf(lines[0], FP4RT_DEVICE_LINE, "module %.150s%s%.80s%s", fp4rt_cuda_module_path(), build[0] ? " (" : "",
             build, build[0] ? ")" : "");
    return 1;
}

fp4rt_status fp4rt_cuda_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx) {
    (void)n_threads;
    *ops = NULL;
    fp4rt_status st = fp4rt_cuda_backend_create(index, ctx);
    if (!st) *ops = fp4rt_cuda_backend();
    return st;
}
