/* Device memory bandwidth: a device-to-device copy of a buffer much larger
 * than the L2 cache, timed with CUDA events on `stream`, counting the bytes
 * read plus the bytes written (2 x size per copy); the median of several
 * timed copies after a warm-up. Shared by the backend's measure_bandwidth
 * (cu_bandwidth.cu) and the standalone tools/cu_bandwidth.cu. Header-only,
 * CUDA runtime API only (no fp4rt symbols). */
#ifndef FP4RT_CU_BANDWIDTH_CUH
#define FP4RT_CU_BANDWIDTH_CUH

#include <algorithm>
#include <cuda_runtime.h>

#define CU_BW_REPS 9

/* Fills the source with a non-constant pattern so nothing can be elided. */
static __global__ void cu_bw_fill(unsigned *p, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned)(i * 2654435761u);
}

/* Copies of `bytes` (rounded down to 4 KiB; tried at half the size down to
 * 64 MiB when the allocation fails) on the current device. *bytes_per_s: the
 * median over CU_BW_REPS copies of 2 * size / time. *what names the failing
 * call on error. */
static cudaError_t cu_bw_measure(cudaStream_t stream, size_t bytes, double *bytes_per_s, const char **what) {
    *bytes_per_s = 0;
    bytes &= ~(size_t)4095;
    unsigned char *src = NULL, *dst = NULL;
    cudaEvent_t ev[CU_BW_REPS + 1] = {};
    cudaError_t e = cudaSuccess;
    for (;;) {
        *what = "allocating the copy buffers";
        e = cudaMalloc((void **)&src, bytes);
        if (e == cudaSuccess) e = cudaMalloc((void **)&dst, bytes);
        if (e == cudaSuccess) break;
        cudaFree(src);
        src = NULL;
        cudaGetLastError();
        if (e != cudaErrorMemoryAllocation || bytes <= ((size_t)64 << 20)) return e;
        bytes /= 2;
    }
    float ms[CU_BW_REPS];
    *what = "creating events";
    for (int i = 0; i <= CU_BW_REPS && e == cudaSuccess; i++) e = cudaEventCreate(&ev[i]);
    if (e == cudaSuccess) {
        *what = "filling the source buffer";
        cu_bw_fill<<<1024, 256, 0, stream>>>((unsigned *)src, bytes / 4);
        e = cudaGetLastError();
    }
    /* warm-up copy, then one event between consecutive copies */
    if (e == cudaSuccess) *what = "copying", e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
    if (e == cudaSuccess) e = cudaEventRecord(ev[0], stream);
    for (int i = 0; i < CU_BW_REPS && e == cudaSuccess; i++) {
        e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
        if (e == cudaSuccess) e = cudaEventRecord(ev[i + 1], stream);
    }
    if (e == cudaSuccess) *what = "waiting for the copies", e = cudaEventSynchronize(ev[CU_BW_REPS]);
    for (int i = 0; i < CU_BW_REPS && e == cudaSuccess; i++) e = cudaEventElapsedTime(&ms[i], ev[i], ev[i + 1]);
    if (e == cudaSuccess) {
        std::sort(ms, ms + CU_BW_REPS);
        double med = ms[CU_BW_REPS / 2] * 1e-3;
        *bytes_per_s = med > 0 ? 2.0 * (double)bytes / med : 0;
    }
    for (int i = 0; i <= CU_BW_REPS; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    cudaFree(src);
    cudaFree(dst);
    return e;
}

#endif
