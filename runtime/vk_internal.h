/* Vulkan backend internals, shared by vk_*.c: the context, buffers, the
 * pipeline table and the recording helpers. One context = one VkDevice with one
 * compute queue; all work is recorded into one command buffer per step and
 * waited for (synchronous: correctness first). */
#ifndef FP4RT_VK_INTERNAL_H
#define FP4RT_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <volk.h>

#include "vk.h"

/* A device buffer: one VkBuffer on its own allocation (few, large). */
struct fp4rt_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize bytes;
    void *mapped; /* host-visible buffers only (staging), else NULL */
    const char *what;
};

typedef enum vk_kernel {
    VK_K_LINEAR, VK_K_ACT_QUANT, VK_K_DEQUANT_NVFP4, VK_K_NORM, VK_K_ELTWISE, VK_K_EMBED,
    VK_K_ROPE, VK_K_KV_APPEND, VK_K_ATTENTION, VK_K_CONV1D_SILU, VK_K_GATED_DELTA, VK_K_COUNT
} vk_kernel;

/* A host tensor uploaded to the weights buffer (dedup by host pointer). */
typedef struct vk_tensor {
    const void *host;
    VkDeviceSize bytes, offset; /* in the weights buffer */
    const char *name;
} vk_tensor;

/* One storage-buffer binding: a window of a buffer. */
typedef struct vk_bind {
    const fp4rt_buffer *b;
    VkDeviceSize offset, range;
} vk_bind;

#define VK_MAX_BINDINGS 4
#define VK_PUSH_BYTES 64

typedef struct vk_ctx {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pdev;
    VkDevice dev;
    struct VolkDeviceTable vt; /* device functions of this context */
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    fp4rt_vk_device_desc desc;
    int index;
    VkDeviceSize max_range;  /* binding limit: maxStorageBufferRange */
    VkDeviceSize align;      /* minStorageBufferOffsetAlignment */
    VkDeviceSize piece_range; /* largest weight piece bound at once: max_range, or FP4RT_VK_MAX_RANGE (tests) */

    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int recording;
    fp4rt_buffer *staging; /* bounded host-visible buffer for uploads / downloads */

    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache cache;
    VkPipeline pipes[VK_K_COUNT]; /* created on first use */
    int pipes_created;            /* pipelines created by this context (save the cache if any) */
    char *cache_path;             /* on-disk pipeline cache file, NULL: no location known */
    size_t cache_loaded_bytes;    /* Vulkan cache data loaded from it (0: started empty) */
    uint64_t cache_loaded_sum;    /* its checksum: an unchanged cache is not rewritten */

    fp4rt_buffer *dummy;     /* bound to unused bindings */
    fp4rt_buffer *weights;   /* every tensor of the prepared program */
    vk_tensor *tensors;
    int n_tensors, cap_tensors;
    const fp4rt_program *prepared;
    fp4rt_buffer *xq;        /* quantized activations [chunk, max K] f32 */
    fp4rt_buffer *rope_tab;  /* [n_ctx][rotary_dim / 2][cos, sin] */
    int rope_ctx, rope_dim;
    double rope_theta;
} vk_ctx;

/* vk_loader.c */
fp4rt_status fp4rt_vk_load(void);
fp4rt_status fp4rt_vk_instance_create(VkInstance *inst, VkDebugUtilsMessengerEXT *msg);
void fp4rt_vk_instance_destroy(VkInstance inst, VkDebugUtilsMessengerEXT msg);
const char *fp4rt_vk_result_name(VkResult r);
fp4rt_status fp4rt_vk_check(VkResult r, const char *what);

/* vk_device.c */
void fp4rt_vk_describe_physical(VkPhysicalDevice pd, fp4rt_vk_device_desc *d);
fp4rt_status fp4rt_vk_device_open(vk_ctx *c, int index);
void fp4rt_vk_device_close(vk_ctx *c);

/* vk_memory.c */
fp4rt_status fp4rt_vk_buffer_create(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what,
                                    fp4rt_buffer **out);
void fp4rt_vk_buffer_destroy(vk_ctx *c, fp4rt_buffer *b);
fp4rt_status fp4rt_vk_upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *src, size_t n);
fp4rt_status fp4rt_vk_download(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, void *dst, size_t n);
fp4rt_status fp4rt_vk_fill_zero(vk_ctx *c, fp4rt_buffer *b);

/* vk_pipeline.c */
fp4rt_status fp4rt_vk_pipelines_init(vk_ctx *c);
void fp4rt_vk_pipelines_free(vk_ctx *c);
fp4rt_status fp4rt_vk_pipeline_get(vk_ctx *c, vk_kernel k, VkPipeline *out);

/* vk_pipeline_cache.c: *data (malloc'd, freed by the caller) gets the
 * validated Vulkan cache data of the on-disk cache, or NULL (missing, stale or
 * corrupt: logged, never an error). save writes it back on destroy when
 * pipelines were created and the data changed; failures are logged only. */
void fp4rt_vk_pipeline_cache_load(vk_ctx *c, void **data, size_t *n);
void fp4rt_vk_pipeline_cache_save(vk_ctx *c);

/* vk_dispatch.c */
fp4rt_status fp4rt_vk_begin(vk_ctx *c);
fp4rt_status fp4rt_vk_submit_wait(vk_ctx *c);
/* Binds the windows (NULL buffer: the dummy), pushes the constants and records
 * one dispatch followed by a full compute barrier. */
fp4rt_status fp4rt_vk_dispatch(vk_ctx *c, vk_kernel k, const vk_bind *binds, int n_binds,
                               const void *push, size_t push_bytes, uint32_t gx, uint32_t gy,
                               uint32_t gz);
/* A window of `bytes` at byte `offset` of b, aligned down to the device's offset
 * alignment; *skew gets the bytes between the window start and offset. Fails,
 * naming `what`, if the window exceeds maxStorageBufferRange. */
fp4rt_status fp4rt_vk_window(const vk_ctx *c, const fp4rt_buffer *b, VkDeviceSize offset, VkDeviceSize bytes,
                             const char *what, vk_bind *out, VkDeviceSize *skew);

/* vk_bandwidth.c: backend.h measure_bandwidth */
fp4rt_status fp4rt_vk_measure_bandwidth(void *ctx, double *bytes_per_s);

/* vk_ops.c */
typedef struct vk_step {
    vk_ctx *c;
    const fp4rt_program *p;
    const fp4rt_session_buffers *sb;
    const fp4rt_step *step;
} vk_step;
fp4rt_status fp4rt_vk_record_op(const vk_step *s, const fp4rt_op *op);
/* The uploaded copy of host tensor `host`, or NULL. */
const vk_tensor *fp4rt_vk_tensor_find(const vk_ctx *c, const void *host);

#endif
