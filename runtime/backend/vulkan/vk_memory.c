/* Vulkan memory: one allocation per buffer (the backend makes few, large
 * buffers: weights, the session parts, staging), memory types from an ordered
 * preference list, and transfers through one bounded host-visible staging
 * buffer (peak host memory for an upload: the staging size, not the tensor).
 * Uploads use its two halves in turn, each with its own command buffer and
 * fence, so the host fills one half while the device copies the other. */
#include "runtime/backend/vulkan/vk_internal.h"

#include "runtime/base/common.h"

#include <stdlib.h>

#include <string.h>

#define STAGING_BYTES ((VkDeviceSize)16 << 20)

static int pick_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->mem_props.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

fp4rt_status fp4rt_vk_buffer_create(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what,
                                    fp4rt_buffer **out) {
    *out = NULL;
    fp4rt_buffer *b = fp4rt_calloc(1, sizeof *b, what);
    if (!b) return FP4RT_OUT_OF_MEMORY;
    b->bytes = bytes;
    b->what = what;
    if (bytes == 0) bytes = 4;
    bytes = (bytes + 3) & ~(VkDeviceSize)3;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    fp4rt_status st = fp4rt_vk_check(c->vt.vkCreateBuffer(c->dev, &bci, NULL, &b->buf), what);
    if (st) {
        free(b);
        return st;
    }
    VkMemoryRequirements req;
    c->vt.vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    /* preference: device-local (falling back to any) for device buffers,
     * host-visible coherent (cached if possible) for staging */
    int type = host_visible
                   ? pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                          VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                          VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                   : pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0)
        type = host_visible ? pick_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                                   VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
                            : pick_type(c, req.memoryTypeBits, 0);
    if (type < 0) {
        c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
        free(b);
        return fp4rt_fail(FP4RT_DEVICE, "vulkan: no memory type for %s", what);
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)type};
    VkResult r = c->vt.vkAllocateMemory(c->dev, &mai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
        free(b);
        return fp4rt_fail(FP4RT_OUT_OF_MEMORY, "vulkan: allocating %llu bytes for %s failed: %s",
                          (unsigned long long)req.size, what, fp4rt_vk_result_name(r));
    }
    st = fp4rt_vk_check(c->vt.vkBindBufferMemory(c->dev, b->buf, b->mem, 0), what);
    if (!st && host_visible) st = fp4rt_vk_check(c->vt.vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped), what);
    if (st) {
        fp4rt_vk_buffer_destroy(c, b);
        return st;
    }
    *out = b;
    return FP4RT_OK;
}

void fp4rt_vk_buffer_destroy(vk_ctx *c, fp4rt_buffer *b) {
    if (!b) return;
    if (c->lost == 1) { /* a timed-out submission may still use it: wait for the driver to finish or give up */
        c->vt.vkDeviceWaitIdle(c->dev);
        c->lost = 2;
    }
    c->replay.valid = 0; /* the recorded decode step may bind it */
    if (b->mapped) c->vt.vkUnmapMemory(c->dev, b->mem);
    if (b->buf) c->vt.vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) c->vt.vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
}

static fp4rt_status ensure_staging(vk_ctx *c) {
    if (c->staging) return FP4RT_OK;
    return fp4rt_vk_buffer_create(c, STAGING_BYTES, 1, "staging buffer", &c->staging);
}

static fp4rt_status check_range(const fp4rt_buffer *b, VkDeviceSize off, size_t n, const char *op) {
    if (off > b->bytes || n > b->bytes - off)
        return fp4rt_fail(FP4RT_INVALID_ARGUMENT, "vulkan: %s of %zu bytes at %llu past the %llu-byte %s", op, n,
                          (unsigned long long)off, (unsigned long long)b->bytes, b->what);
    return FP4RT_OK;
}

/* Copies between a buffer and the staging buffer: one submission per piece. */
static fp4rt_status copy_piece(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize n, int to_device) {
    if (!c->recording) fp4rt_vk_set_work(c, "the %s of %s", to_device ? "upload" : "download", b->what);
    fp4rt_status st = fp4rt_vk_begin(c);
    if (st) return st;
    /* copies may be unaligned at the end: round n up within the buffers */
    VkBufferCopy r = {.srcOffset = to_device ? 0 : off, .dstOffset = to_device ? off : 0, .size = n};
    c->vt.vkCmdCopyBuffer(c->cmd, to_device ? c->staging->buf : b->buf, to_device ? b->buf : c->staging->buf, 1, &r);
    return fp4rt_vk_submit_wait(c);
}

/* Writes k bytes of the source, from byte `done` on, to dst. */
typedef struct upload_src {
    void (*fill)(const struct upload_src *s, size_t done, size_t k, void *dst);
    const void *data;
    const fp4rt_weights *w; /* synthetic weights: their generator and seed */
    uint64_t seed;
} upload_src;

static void fill_copy(const upload_src *s, size_t done, size_t k, void *dst) {
    memcpy(dst, (const char *)s->data + done, k);
}

static void fill_synth(const upload_src *s, size_t done, size_t k, void *dst) {
    fp4rt_weights_synth_bytes(s->w, (const char *)s->data + done, k, s->seed, dst);
}

/* One half's copy: staging[half] -> b[off, off + k), submitted with its fence. */
static fp4rt_status submit_half(vk_ctx *c, int half, fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize k) {
    VkCommandBuffer cb = c->cmd_xfer[half];
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    fp4rt_status st = fp4rt_vk_result(c, c->vt.vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
    if (!st) st = fp4rt_vk_result(c, c->vt.vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    if (st) return st;
    /* earlier submissions' writes to b before this copy writes it */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                               NULL, 0, NULL);
    VkBufferCopy r = {.srcOffset = (VkDeviceSize)half * (STAGING_BYTES / 2), .dstOffset = off, .size = k};
    c->vt.vkCmdCopyBuffer(cb, c->staging->buf, b->buf, 1, &r);
    st = fp4rt_vk_result(c, c->vt.vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    if (!st) st = fp4rt_vk_result(c, c->vt.vkQueueSubmit(c->queue, 1, &si, c->xfer_fence[half]), "vkQueueSubmit");
    return st;
}

/* n bytes of src to b at off, in pieces of half the staging buffer, the two
 * halves in turn; returns when every copy has finished. While a step is being
 * recorded the pieces go into that recording instead (one piece at a time). */
static fp4rt_status upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, size_t n, const upload_src *src) {
    fp4rt_status st = check_range(b, off, n, "upload");
    if (!st) st = ensure_staging(c);
    if (!st && c->lost) st = fp4rt_fail(FP4RT_DEVICE, "vulkan: device %d was lost or hung earlier: free the model "
                                                      "and load it again", c->index);
    if (st) return st;
    if (c->recording) {
        for (size_t done = 0; !st && done < n;) {
            size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
            src->fill(src, done, k, c->staging->mapped);
            st = copy_piece(c, b, off + done, k, 1);
            done += k;
        }
        return st;
    }
    const size_t piece = STAGING_BYTES / 2;
    int pending[2] = {0, 0}, half = 0;
    fp4rt_vk_set_work(c, "the upload of %s", b->what);
    for (size_t done = 0; !st && done < n; half ^= 1) {
        if (pending[half]) { /* the copy out of this half has finished before it is refilled */
            pending[half] = 0;
            st = fp4rt_vk_wait_fence(c, c->xfer_fence[half]);
            if (st) break;
        }
        size_t k = n - done < piece ? n - done : piece;
        src->fill(src, done, k, (char *)c->staging->mapped + (size_t)half * piece);
        st = submit_half(c, half, b, off + done, k);
        if (!st) pending[half] = 1;
        done += k;
    }
    for (int h = 0; h < 2; h++) /* also after a failure: no copy may still read the staging buffer */
        if (pending[h] && !c->lost) {
            fp4rt_status w = fp4rt_vk_wait_fence(c, c->xfer_fence[h]);
            if (!st) st = w;
        }
    c->work[0] = 0;
    return st;
}

fp4rt_status fp4rt_vk_upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *src, size_t n) {
    upload_src s = {.fill = fill_copy, .data = src};
    return upload(c, b, off, n, &s);
}

fp4rt_status fp4rt_vk_upload_synth(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const fp4rt_weights *w,
                                   const void *ptr, size_t n, uint64_t seed) {
    upload_src s = {.fill = fill_synth, .data = ptr, .w = w, .seed = seed};
    return upload(c, b, off, n, &s);
}

fp4rt_status fp4rt_vk_download(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, void *dst, size_t n) {
    fp4rt_status st = check_range(b, off, n, "download");
    if (!st) st = ensure_staging(c);
    for (size_t done = 0; !st && done < n;) {
        size_t k = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        st = copy_piece(c, b, off + done, k, 0);
        if (!st) memcpy((char *)dst + done, c->staging->mapped, k);
        done += k;
    }
    return st;
}

fp4rt_status fp4rt_vk_record_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                                  VkDeviceSize src_off, size_t n) {
    fp4rt_status st = check_range(src, src_off, n, "copy source");
    if (!st) st = check_range(dst, dst_off, n, "copy destination");
    if (!st) st = fp4rt_vk_begin(c);
    if (st || !n) return st;
    VkBufferCopy r = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    c->vt.vkCmdCopyBuffer(c->cmd, src->buf, dst->buf, 1, &r);
    /* the copy before later dispatches and copies (they may overwrite its source) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    c->vt.vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                               VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0,
                               NULL, 0, NULL);
    return FP4RT_OK;
}

fp4rt_status fp4rt_vk_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                           VkDeviceSize src_off, size_t n) {
    fp4rt_status st = fp4rt_vk_record_copy(c, dst, dst_off, src, src_off, n);
    return st ? st : fp4rt_vk_submit_wait(c);
}

fp4rt_status fp4rt_vk_fill_zero(vk_ctx *c, fp4rt_buffer *b) {
    fp4rt_status st = fp4rt_vk_begin(c);
    if (st) return st;
    c->vt.vkCmdFillBuffer(c->cmd, b->buf, 0, VK_WHOLE_SIZE, 0);
    return fp4rt_vk_submit_wait(c);
}
