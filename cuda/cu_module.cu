/* The module's face to libfp4rt (cu_abi.h): the one exported entry point, the
 * driver check at init (no driver / a driver too old for this module), the
 * device list, and error recording through the host table. */
#include "cuda/cu_internal.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef FP4RT_CUDA_ARCH_LIST /* set by CMake: FP4RT_CUDA_ARCHS and the PTX */
#define FP4RT_CUDA_ARCH_LIST "?"
#endif
#ifndef FP4RT_CUDA_TOOLKIT
#define FP4RT_CUDA_TOOLKIT "?"
#endif

const fp4rt_cuda_host *fp4rt_cu_host;

static int g_count;
static fp4rt_cuda_device_desc *g_desc;

fp4rt_status fp4rt_cu_fail(fp4rt_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fp4rt_cu_host) return fp4rt_cu_host->fail(st, msg);
    fprintf(stderr, "fp4rt-cuda: %s\n", msg);
    return st;
}

void fp4rt_cu_log(fp4rt_log_level level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fp4rt_cu_host) fp4rt_cu_host->log(level, msg);
}

fp4rt_status fp4rt_cu_error(cudaError_t e, const char *what) {
    fp4rt_status st = e == cudaErrorMemoryAllocation ? FP4RT_OUT_OF_MEMORY : FP4RT_DEVICE;
    return fp4rt_cu_fail(st, "cuda: %s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

fp4rt_status fp4rt_cu_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return FP4RT_OK;
    return fp4rt_cu_fail(FP4RT_DEVICE, "cuda: launch of %s failed: %s (%s)", what, cudaGetErrorName(e),
                         cudaGetErrorString(e));
}

/* A kernel whose presence for the device's architecture says whether this
 * build has machine code (or PTX) the device can run. */
__global__ void cu_probe_kernel(int *x) {
    if (x) *x = 1;
}

/* Whether the build lists arch `a` ("120a") among FP4RT_CUDA_ARCHS. */
static int built_for(const char *a) {
    char list[256];
    snprintf(list, sizeof list, ";%s;", FP4RT_CUDA_ARCH_LIST);
    char want[32];
    snprintf(want, sizeof want, ";%s;", a);
    return strstr(list, want) != NULL;
}

static void describe_device(int i, fp4rt_cuda_device_desc *d) {
    memset(d, 0, sizeof *d);
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, i);
    if (e) {
        snprintf(d->name, sizeof d->name, "CUDA device %d", i);
        snprintf(d->reason, sizeof d->reason, "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
        return;
    }
    snprintf(d->name, sizeof d->name, "%s", prop.name);
    d->cc_major = prop.major;
    d->cc_minor = prop.minor;
    d->sm_count = prop.multiProcessorCount;
    d->memory_bytes = prop.totalGlobalMem;
    d->bus_width_bits = prop.memoryBusWidth;
    cudaDeviceGetAttribute(&d->mem_clock_khz, cudaDevAttrMemoryClockRate, i);
    /* double data rate: two transfers per clock */
    d->bandwidth_gbs = 2.0 * d->mem_clock_khz * 1e3 * (d->bus_width_bits / 8.0) / 1e9;
    char arch[16];
    snprintf(arch, sizeof arch, "%d%da", prop.major, prop.minor);
    if (prop.major == 12 && (prop.minor == 0 || prop.minor == 1) && built_for(arch))
        d->fp4_path = FP4RT_CUDA_FP4_NATIVE;
    else if (prop.major == 10)
        d->fp4_path = FP4RT_CUDA_FP4_DEQUANT_TCGEN05;
    else
        d->fp4_path = FP4RT_CUDA_FP4_DEQUANT;
    /* does the build have code this device runs? */
    int prev = 0;
    cudaGetDevice(&prev);
    cudaFuncAttributes fa;
    e = cudaSetDevice(i);
    if (!e) e = cudaFuncGetAttributes(&fa, cu_probe_kernel);
    cudaSetDevice(prev);
    cudaGetLastError();
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) {
        snprintf(d->reason, sizeof d->reason, "no kernels for sm_%d%d in this build (built for %s: set FP4RT_CUDA_ARCHS)",
                 prop.major, prop.minor, FP4RT_CUDA_ARCH_LIST);
        return;
    }
    if (e) {
        snprintf(d->reason, sizeof d->reason, "cannot start: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        return;
    }
    d->usable = 1;
}

static fp4rt_status too_old(int drv) {
    return fp4rt_cu_fail(FP4RT_DEVICE,
                         "the NVIDIA driver is too old for this module (cudaErrorInsufficientDriver): the driver "
                         "supports CUDA %d.%d, the module was built with CUDA %d.%d and needs a driver for CUDA %d.0 "
                         "or newer (update the driver or build the module with an older CUDA toolkit)",
                         drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10,
                         CUDART_VERSION / 1000);
}

static fp4rt_status module_init(const fp4rt_cuda_host *host) {
    if (!host || host->abi_version != FP4RT_CUDA_ABI_VERSION) {
        fprintf(stderr, "fp4rt-cuda: host of another ABI version\n");
        return FP4RT_DEVICE;
    }
    fp4rt_cu_host = host;
    if (host->layout != FP4RT_CUDA_LAYOUT)
        return fp4rt_cu_fail(FP4RT_DEVICE, "the CUDA module was built from another fp4rt source tree (layout %08x, "
                                           "libfp4rt %08x): rebuild both", FP4RT_CUDA_LAYOUT, host->layout);
    /* the driver first: the runtime's own error for a missing driver reads
     * "insufficient driver", which would mislead */
    void *cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cu) {
        const char *why = dlerror();
        return fp4rt_cu_fail(FP4RT_DEVICE, "no CUDA driver (libcuda.so.1: %s)",
                             why && strstr(why, "No such file") ? "not found" : why ? why : "cannot be opened");
    }
    typedef int (*version_fn)(int *);
    version_fn ver = (version_fn)dlsym(cu, "cuDriverGetVersion");
    int drv = 0;
    if (!ver || ver(&drv) != 0 || drv <= 0)
        return fp4rt_cu_fail(FP4RT_DEVICE, "no CUDA driver (libcuda.so.1 does not report a version)");
    if (drv / 1000 < CUDART_VERSION / 1000) return too_old(drv);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorInsufficientDriver) return too_old(drv);
    if (e == cudaErrorNoDevice) {
        cudaGetLastError();
        n = 0;
    } else if (e) {
        cudaGetLastError();
        return fp4rt_cu_fail(FP4RT_DEVICE, "CUDA driver %d.%d: cannot list devices: %s (%s)", drv / 1000,
                             drv % 1000 / 10, cudaGetErrorName(e), cudaGetErrorString(e));
    }
    g_desc = (fp4rt_cuda_device_desc *)calloc(n > 0 ? (size_t)n : 1, sizeof *g_desc);
    if (!g_desc) return fp4rt_cu_fail(FP4RT_OUT_OF_MEMORY, "out of memory listing CUDA devices");
    for (int i = 0; i < n; i++) describe_device(i, &g_desc[i]);
    g_count = n;
    return FP4RT_OK;
}

static int module_device_count(void) { return g_count; }

fp4rt_status fp4rt_cu_device_desc(int index, fp4rt_cuda_device_desc *out) {
    if (index < 0 || index >= g_count)
        return fp4rt_cu_fail(FP4RT_DEVICE, "cuda:%d is not available: %d CUDA device%s", index, g_count,
                             g_count == 1 ? "" : "s");
    *out = g_desc[index];
    return FP4RT_OK;
}

static const fp4rt_cuda_module g_module = {
    FP4RT_CUDA_ABI_VERSION,
    FP4RT_CUDA_LAYOUT,
    "CUDA " FP4RT_CUDA_TOOLKIT ", built for " FP4RT_CUDA_ARCH_LIST,
    module_init,
    module_device_count,
    fp4rt_cu_device_desc,
    fp4rt_cu_backend_create,
    &fp4rt_cu_backend_ops,
};

extern "C" __attribute__((visibility("default"))) const fp4rt_cuda_module *fp4rt_cuda_module_v1(uint32_t abi) {
    return abi == FP4RT_CUDA_ABI_VERSION ? &g_module : NULL;
}
