/* The backend's measure_bandwidth slot (runtime/backend/backend.h): the device's
 * copy bandwidth, bytes read + written per second, the median of several
 * 2 x 1 GiB device-to-device copies (less when the device has little free
 * memory) timed with CUDA events on the context's stream. */
#include "cuda/cu_bandwidth.cuh"
#include "cuda/cu_internal.h"

#include <stdio.h>

fp4rt_status fp4rt_cu_measure_bandwidth(void *vc, double *bytes_per_s) {
    fp4rt_cu_ctx *c = (fp4rt_cu_ctx *)vc;
    *bytes_per_s = 0;
    cudaError_t e = cudaSetDevice(c->device);
    if (e != cudaSuccess) return fp4rt_cu_error(e, "measuring bandwidth: selecting the device");
    /* 1 GiB each, or a quarter of what is free: far beyond any L2 */
    size_t bytes = (size_t)1 << 30, free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && free_b / 4 < bytes) bytes = free_b / 4;
    const char *what = "";
    e = cu_bw_measure(c->stream, bytes, bytes_per_s, &what);
    if (e != cudaSuccess) {
        char msg[128];
        snprintf(msg, sizeof msg, "measuring bandwidth: %s", what);
        return fp4rt_cu_error(e, msg);
    }
    return FP4RT_OK;
}
