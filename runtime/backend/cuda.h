/* The CUDA backend as the rest of the runtime sees it. The backend lives in a
 * separate module, libfp4rt-cuda.so, opened on first use (runtime/backend/cuda_loader.c);
 * everything here works, and reports no device with the reason, when the module
 * or the NVIDIA driver is absent. */
#ifndef FP4RT_CUDA_H
#define FP4RT_CUDA_H

#include "runtime/backend/cu_abi.h"
#include "runtime/backend/registry.h"

/* CUDA devices (0 when the module, the driver or a device is missing; the
 * reason is in fp4rt_cuda_unavailable_reason()). Loaded once per process. */
int fp4rt_cuda_device_count(void);
fp4rt_status fp4rt_cuda_device_get(int index, fp4rt_cuda_device_desc *out);
const char *fp4rt_cuda_unavailable_reason(void);
/* The module's path ("" when no file was found) and build line ("" when it did not start). */
const char *fp4rt_cuda_module_path(void);
const char *fp4rt_cuda_module_build(void);

/* The backend table (NULL when the module did not load) and a context on
 * device `index`. */
const fp4rt_backend_ops *fp4rt_cuda_backend(void);
fp4rt_status fp4rt_cuda_backend_create(int index, void **ctx);

/* The registry record's functions (runtime/backend/registry.h, in
 * cuda_device.c): device `index` described for fp4rt devices and --device
 * auto (the highest memory bandwidth), the module line fp4rt devices prints
 * after the devices, and a backend context (*ops NULL unless it starts). */
fp4rt_status fp4rt_cuda_device_fill(int index, fp4rt_device_desc *out);
int fp4rt_cuda_notes(char (*lines)[FP4RT_DEVICE_LINE], int max);
fp4rt_status fp4rt_cuda_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx);

/* "native FP4 MMA", "in-register dequant", ... */
const char *fp4rt_cuda_fp4_path_name(int path);

#endif
