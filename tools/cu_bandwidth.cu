/* Standalone device memory bandwidth (the same measurement as the CUDA
 * backend's measure_bandwidth, cuda/cu_bandwidth.cuh): prints
 * "copy bandwidth: N GB/s (read + written, median of 9 copies of B MiB)".
 * Build: nvcc -O2 -Icuda tools/cu_bandwidth.cu -o cu_bandwidth
 * Usage: cu_bandwidth [MiB per buffer, default 2048]. Exit 77: no CUDA device. */
#include "cuda/cu_bandwidth.cuh"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("skipped: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 2048;
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    double bps = 0;
    const char *what = "";
    e = cu_bw_measure(0, mib << 20, &bps, &what);
    if (e != cudaSuccess) {
        fprintf(stderr, "cu_bandwidth: %s: %s\n", what, cudaGetErrorString(e));
        return 1;
    }
    printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    printf("copy bandwidth: %.1f GB/s (read + written, median of %d copies of %zu MiB)\n", bps / 1e9, CU_BW_REPS,
           mib);
    return 0;
}
