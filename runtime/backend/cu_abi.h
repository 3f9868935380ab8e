/* The binary interface between libfp4rt (runtime/backend/cuda_loader.c, C) and the
 * CUDA module libfp4rt-cuda.so (cuda/cu_module.cu, C++), which libfp4rt opens
 * with dlopen. Plain C, included by both sides.
 *
 * The module exports exactly one symbol, FP4RT_CUDA_ENTRY, a function that
 * returns its table for the ABI version the caller asks for (NULL when it
 * does not speak that version). The module never calls libfp4rt's internal
 * symbols (libfp4rt exports only FP4RT_API): it records errors and logs
 * through the host table passed to init. Both sides compare FP4RT_CUDA_LAYOUT,
 * a fingerprint of the sizes of the structs they exchange (program, weights,
 * backend table), so a module built from another source tree is refused
 * instead of misreading them. */
#ifndef FP4RT_CU_ABI_H
#define FP4RT_CU_ABI_H

#include "runtime/backend/backend.h"

#include <stdint.h>

#define FP4RT_CUDA_ABI_VERSION 1u
#define FP4RT_CUDA_ENTRY "fp4rt_cuda_module_v1"
#define FP4RT_CUDA_MODULE_NAME "libfp4rt-cuda.so"

/* A fingerprint of the exchanged structs' layout (sizes, and the op count). */
#define FP4RT_CUDA_LAYOUT                                                                                   \
    ((uint32_t)(sizeof(fp4rt_op) + 97u * sizeof(fp4rt_program) + 9973u * sizeof(fp4rt_linear) +          \
                31u * sizeof(fp4rt_weights) + 7919u * sizeof(fp4rt_layer_weights) +                         \
                131u * sizeof(fp4rt_config) + 1009u * sizeof(fp4rt_backend_ops) +                           \
                257u * sizeof(fp4rt_session_buffers) + 65537u * sizeof(fp4rt_step) + 613u * FP4RT_OP_COUNT + \
                4099u * FP4RT_W_COUNT + 8191u * sizeof(fp4rt_topk_request)))

/* What libfp4rt lends the module (valid for the life of the process). */
typedef struct fp4rt_cuda_host {
    uint32_t abi_version; /* FP4RT_CUDA_ABI_VERSION */
    uint32_t layout;      /* FP4RT_CUDA_LAYOUT as libfp4rt was compiled */
    /* fp4rt_fail / fp4rt_fail_context with an already formatted message; return st */
    fp4rt_status (*fail)(fp4rt_status st, const char *msg);
    fp4rt_status (*fail_context)(fp4rt_status st, const char *msg);
    void (*log)(fp4rt_log_level level, const char *msg);
} fp4rt_cuda_host;

/* The NVFP4 kernel path a device gets. */
typedef enum fp4rt_cuda_fp4_path {
    FP4RT_CUDA_FP4_DEQUANT = 0,         /* in-register dequant to FP16/BF16 */
    FP4RT_CUDA_FP4_NATIVE = 1,          /* sm_120a / sm_121a: block-scaled FP4 mma.sync */
    FP4RT_CUDA_FP4_DEQUANT_TCGEN05 = 2, /* sm_100-class: dequant (tcgen05 FP4 not implemented yet) */
} fp4rt_cuda_fp4_path;

typedef struct fp4rt_cuda_device_desc {
    char name[256];          /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;  /* compute capability */
    int sm_count;
    uint64_t memory_bytes;   /* total device memory */
    int mem_clock_khz;       /* peak memory clock */
    int bus_width_bits;
    double bandwidth_gbs;    /* theoretical: 2 (DDR) * clock * bus width / 8, in GB/s */
    int fp4_path;            /* fp4rt_cuda_fp4_path */
    int usable;              /* 0: reason says why (no kernels for this architecture, ...) */
    char reason[160];
} fp4rt_cuda_device_desc;

typedef struct fp4rt_cuda_module {
    uint32_t abi_version; /* FP4RT_CUDA_ABI_VERSION */
    uint32_t layout;      /* FP4RT_CUDA_LAYOUT as the module was compiled */
    const char *build;    /* "CUDA 13.0, sm_80 sm_90a sm_120a" */
    /* Finds the driver and the devices. FP4RT_OK (maybe 0 devices), else an
     * error recorded through host->fail ("no CUDA driver (...)", "the NVIDIA
     * driver supports CUDA 12.4 but ..."). Called once. */
    fp4rt_status (*init)(const fp4rt_cuda_host *host);
    int (*device_count)(void);
    fp4rt_status (*device_get)(int index, fp4rt_cuda_device_desc *out);
    /* A backend context on device `index` (ops->create uses device 0). */
    fp4rt_status (*backend_create)(int index, void **ctx);
    const fp4rt_backend_ops *ops;
} fp4rt_cuda_module;

typedef const fp4rt_cuda_module *(*fp4rt_cuda_entry_fn)(uint32_t abi_version);

#endif
