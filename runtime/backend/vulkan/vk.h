/* The Vulkan backend as the rest of the runtime sees it: device listing, backend
 * creation on one device, and the validation-message counter tests check.
 * Everything here works (and reports no device) when libvulkan is absent. */
#ifndef FP4RT_VK_H
#define FP4RT_VK_H

#include "runtime/backend/registry.h"

#include <stdint.h>

typedef struct fp4rt_vk_device_desc {
    char name[256];        /* "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char type[16];         /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver[512];       /* driver name and version */
    uint64_t memory_bytes; /* largest device-local heap */
    int software;          /* a CPU implementation (lavapipe): never picked by --device auto */
    int fp16, int8, int64, storage16, storage8, push_descriptor;
    int coopmat;           /* FP4RT_VK_COOP_*: the matrix units linear_coop.comp uses (KHR over NV) */
    int coop_kinds;        /* bit FP4RT_VK_COOP_KHR / _NV: every kind the device offers */
    int idot, idot_fast;   /* shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product); 4x8 packed
                              signed dot products accelerated */
    uint32_t subgroup_size;
    int subgroup_shuffle;  /* basic, vote and shuffle subgroup ops in compute shaders (else shared-memory trees) */
    uint64_t max_storage_range; /* maxStorageBufferRange */
    uint64_t max_alloc;    /* maxMemoryAllocationSize (Vulkan 1.1) */
    uint64_t max_buffer;   /* maxBufferSize (Vulkan 1.3 / VK_KHR_maintenance4), else max_alloc */
    uint64_t budget_bytes; /* VK_EXT_memory_budget: what this process may still allocate in the largest
                              device-local heap at enumeration time; 0: the driver does not say */
    uint32_t api_version;
    int usable;            /* 0: reason says why */
    char reason[128];
} fp4rt_vk_device_desc;

/* Up to this many tokens a linear's piece runs the matrix-vector kernel, which
 * reproduces the CPU's sums bit for bit (vk_linear_policy.c). */
#define FP4RT_VK_MV_MAX_T 8

/* Cooperative-matrix kinds (vk_coop.c): none; VK_NV_cooperative_matrix;
 * VK_KHR_cooperative_matrix; the emulated kernel (tests, FP4RT_VK_COOPMAT=emu). */
enum { FP4RT_VK_COOP_NONE, FP4RT_VK_COOP_NV, FP4RT_VK_COOP_KHR, FP4RT_VK_COOP_EMU };
const char *fp4rt_vk_coop_name(int kind);

/* Vulkan physical devices (0 when there is no loader or driver; the reason is in
 * fp4rt_vk_unavailable_reason()). Enumerated once per process. */
int fp4rt_vk_device_count(void);
fp4rt_status fp4rt_vk_device_get(int index, fp4rt_vk_device_desc *out);
const char *fp4rt_vk_unavailable_reason(void);

/* The registry record's functions (runtime/backend/registry.h): device
 * `index` described for fp4rt devices and --device auto (discrete over
 * integrated over the rest), and a backend context on it. */
fp4rt_status fp4rt_vk_device_fill(int index, fp4rt_device_desc *out);
fp4rt_status fp4rt_vk_device_create(int index, int n_threads, const fp4rt_backend_ops **ops, void **ctx);

/* Creates the backend context on device `index` (fp4rt_backend_vulkan's create
 * uses device 0). */
fp4rt_status fp4rt_vk_backend_create(int index, void **ctx);
extern const fp4rt_backend_ops fp4rt_backend_vulkan;

/* Validation-layer / driver messages (warning or error) seen by the debug-utils
 * messenger since the process started. Tests require 0. */
long fp4rt_vk_message_count(void);

/* For tests: bytes of on-disk pipeline cache data handed to vkCreatePipelineCache
 * by the most recent backend create (0: started empty), and the number of cache
 * files written since the process started. */
size_t fp4rt_vk_pipeline_cache_loaded_bytes(void);
long fp4rt_vk_pipeline_cache_saves(void);

/* For tests: linear_coop dispatches recorded since the process started. */
long fp4rt_vk_coop_dispatches(void);
/* For tests: linear_i8 dispatches (W4A4 prefill on integer dot products) recorded
 * since the process started. */
long fp4rt_vk_i8_dispatches(void);
/* For tests: linears recorded with a fused SWIGLU / SIGMOID_GATE (vk_fuse_linear.c)
 * since the process started. */
long fp4rt_vk_pre_linears(void);
/* For tests: workgroups of the LM head's linear (the logits; fewer with
 * fp4rt_step.logits_rows) recorded since the process started. */
long fp4rt_vk_logits_groups(void);

/* For tests: dequantizes n NVFP4 elements (packed[n/2], scales[n/16]) to FP16 on
 * the device with the standalone kernel. */
fp4rt_status fp4rt_vk_dequant_nvfp4(void *ctx, const uint8_t *packed, const uint8_t *scales, size_t n,
                                    uint16_t *out);

#endif
